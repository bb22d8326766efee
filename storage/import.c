/*
 * import.c - a PostgreSQL data directory to image layers and a WAL
 * segment.
 *
 * The directory is read in two passes.  The first lists what is there
 * (databases, relation forks and their sizes, SLRU segments, relmapper
 * and two-phase files) and sorts it into key order.  The second streams
 * every block into image layers in that order, so memory does not grow
 * with the size of the cluster: only the list is kept.  Layers roll over
 * every IMPORT_LAYER_KEYS keys and tile the whole key space, because an
 * image layer is the whole truth of its key range.
 */
#include "storage/import.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/core/fsutil.h"
#include "storage/key.h"
#include "storage/pg/pgwal.h"
#include "storage/pg/walscan.h"
#include "storage/value.h"

#define IMPORT_LAYER_KEYS (128 * 1024) /* about 1 GiB of pages a layer */
#define RELSEG_BLOCKS     131072       /* 1 GiB relation segment files */
#define PROGRESS_BYTES    (256ull << 20)
#define GLOBAL_SPC        1664
#define DEFAULT_SPC       1663

typedef struct imp_rel {
    uint32_t spc, db, rel;
    uint8_t fork;
    uint32_t nblocks;
} imp_rel;

typedef struct imp_slru {
    slru_kind kind;
    uint32_t seg, nblocks;
} imp_slru;

typedef struct imp_state {
    const import_opts *o;
    char dir[PATH_MAX];
    imp_rel *rels;
    size_t nrels, rels_cap;
    uint64_t *dbs; /* spc << 32 | db */
    size_t ndbs, dbs_cap;
    imp_slru *slrus;
    size_t nslrus, slrus_cap;
    uint32_t *xids; /* two-phase */
    size_t nxids, xids_cap;
    /* output */
    layerw *w;
    tkey layer_start;
    uint64_t layer_keys;
    import_result *res;
    tbuf val;
    uint64_t next_progress;
} imp_state;

static tarn_rc
grow(void **p, size_t *cap, size_t n, size_t elem, tarn_err *err)
{
    size_t c;
    void *q;

    if (n < *cap)
        return TARN_OK;
    c = *cap ? *cap * 2 : 64;
    q = realloc(*p, c * elem);
    if (q == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    *p = q;
    *cap = c;
    return TARN_OK;
}

static tarn_rc
read_small(const char *path, uint8_t *buf, size_t cap, size_t *len,
           tarn_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return tarn_err_errno(err, errno, "open %s", path);
    n = read(fd, buf, cap);
    close(fd);
    if (n < 0)
        return tarn_err_errno(err, errno, "read %s", path);
    *len = (size_t)n;
    return TARN_OK;
}

tarn_rc
import_check(const char *pgdata, pg_control *out, tarn_err *err)
{
    char path[PATH_MAX + 64];
    uint8_t buf[PG_CONTROL_FILE_SIZE];
    struct stat st;
    size_t len;
    tarn_rc rc;

    if (pgdata[0] != '/')
        return tarn_err_set(err, TARN_EINVAL,
                            "import_pgdata must be an absolute path, not "
                            "'%.200s'",
                            pgdata);
    if (stat(pgdata, &st) != 0 || !S_ISDIR(st.st_mode))
        return tarn_err_set(err, TARN_EINVAL,
                            "import_pgdata '%.200s' is not a directory",
                            pgdata);
    snprintf(path, sizeof(path), "%s/PG_VERSION", pgdata);
    if (read_small(path, buf, 16, &len, NULL) != TARN_OK)
        return tarn_err_set(err, TARN_EINVAL,
                            "'%.200s' is not a PostgreSQL data directory "
                            "(no readable PG_VERSION)",
                            pgdata);
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    if (len != 2 || memcmp(buf, "15", 2) != 0)
        return tarn_err_set(err, TARN_EINVAL,
                            "'%.200s' holds PostgreSQL %.*s data; tarn imports "
                            "PostgreSQL 15",
                            pgdata, (int)(len < 8 ? len : 8), (char *)buf);
    snprintf(path, sizeof(path), "%s/global/pg_control", pgdata);
    if ((rc = read_small(path, buf, sizeof(buf), &len, err)) != TARN_OK)
        return rc;
    if ((rc = pg_control_parse(buf, len, out, err)) != TARN_OK) {
        tarn_err_prefix(err, "%.200s: ", path);
        return rc == TARN_ECORRUPT
                   ? tarn_err_set(err, TARN_EINVAL, "%s", err ? err->msg : "")
                   : rc;
    }
    if (out->state != PG_DB_SHUTDOWNED)
        return tarn_err_set(err, TARN_ECONFLICT,
                            "the cluster at '%.200s' was not shut down "
                            "cleanly (state: %s); stop it with pg_ctl stop "
                            "-m fast (or smart) first",
                            pgdata, pg_db_state_name(out->state));
    if (out->data_checksum_version != 0)
        return tarn_err_set(err, TARN_EUNSUPPORTED,
                            "the cluster at '%.200s' has data checksums; tarn "
                            "does not support them yet (initdb without "
                            "--data-checksums)",
                            pgdata);
    if (tarn_get_u32(out->ckpt + PG_CKPT_THIS_TLI) != 1)
        return tarn_err_set(err, TARN_EUNSUPPORTED,
                            "the cluster at '%.200s' is on WAL timeline %u; "
                            "tarn imports timeline 1 only",
                            pgdata, tarn_get_u32(out->ckpt + PG_CKPT_THIS_TLI));
    if (!pg_seg_size_valid(out->wal_seg_size))
        return tarn_err_set(err, TARN_EINVAL,
                            "pg_control has an invalid WAL segment size %u",
                            out->wal_seg_size);
    return TARN_OK;
}

/* ---- pass 1: what is there --------------------------------------------- */

static bool
all_digits(const char *s, size_t n)
{
    if (n == 0 || n > 10)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* "16384", "16384_fsm", "16384_vm.3", "16384_init": relation files. */
static bool
parse_relfile(const char *name, uint32_t *rel, uint8_t *fork, uint32_t *segno)
{
    const char *p = name, *dot;
    size_t n = strspn(p, "0123456789");
    unsigned long long v;

    if (!all_digits(p, n))
        return false;
    v = strtoull(p, NULL, 10);
    if (v == 0 || v > UINT32_MAX)
        return false;
    *rel = (uint32_t)v;
    p += n;
    *fork = PG_MAIN_FORKNUM;
    if (strncmp(p, "_fsm", 4) == 0) {
        *fork = PG_FSM_FORKNUM;
        p += 4;
    } else if (strncmp(p, "_vm", 3) == 0) {
        *fork = PG_VM_FORKNUM;
        p += 3;
    } else if (strncmp(p, "_init", 5) == 0) {
        *fork = PG_INIT_FORKNUM;
        p += 5;
    }
    *segno = 0;
    if (*p == '\0')
        return true;
    if (*p != '.')
        return false;
    dot = p + 1;
    n = strspn(dot, "0123456789");
    if (!all_digits(dot, n) || dot[n] != '\0')
        return false;
    v = strtoull(dot, NULL, 10);
    if (v > 1u << 20)
        return false;
    *segno = (uint32_t)v;
    return true;
}

static tarn_rc
add_rel_segment(imp_state *s, uint32_t spc, uint32_t db, uint32_t rel,
                uint8_t fork, uint32_t segno, uint64_t size, const char *path,
                tarn_err *err)
{
    uint64_t blocks;
    imp_rel *r = NULL;

    if (size % PG_BLCKSZ != 0)
        return tarn_err_set(err, TARN_EINVAL,
                            "%s is %llu bytes, not a whole number of 8 KiB "
                            "blocks",
                            path, (unsigned long long)size);
    blocks = (uint64_t)segno * RELSEG_BLOCKS + size / PG_BLCKSZ;
    for (size_t i = 0; i < s->nrels; i++)
        if (s->rels[i].spc == spc && s->rels[i].db == db
            && s->rels[i].rel == rel && s->rels[i].fork == fork) {
            r = &s->rels[i];
            break;
        }
    if (r == NULL) {
        if (grow((void **)&s->rels, &s->rels_cap, s->nrels, sizeof(imp_rel),
                 err)
            != TARN_OK)
            return TARN_ENOMEM;
        r = &s->rels[s->nrels++];
        r->spc = spc;
        r->db = db;
        r->rel = rel;
        r->fork = fork;
        r->nblocks = 0;
    }
    /* A segment that is not the last must be full; the last one counts. */
    if (size > 0 && blocks > r->nblocks)
        r->nblocks = (uint32_t)blocks;
    return TARN_OK;
}

static tarn_rc
scan_db_dir(imp_state *s, const char *path, uint32_t spc, uint32_t db,
            tarn_err *err)
{
    DIR *d = opendir(path);
    struct dirent *e;
    tarn_rc rc = TARN_OK;

    if (d == NULL)
        return tarn_err_errno(err, errno, "open directory %s", path);
    if (grow((void **)&s->dbs, &s->dbs_cap, s->ndbs, sizeof(uint64_t), err)
        != TARN_OK) {
        closedir(d);
        return TARN_ENOMEM;
    }
    s->dbs[s->ndbs++] = (uint64_t)spc << 32 | db;
    while (rc == TARN_OK && (e = readdir(d)) != NULL) {
        char fpath[PATH_MAX + 256];
        struct stat st;
        uint32_t rel, segno;
        uint8_t fork;
        if (!parse_relfile(e->d_name, &rel, &fork, &segno))
            continue; /* pg_filenode.map, PG_VERSION, temp files, ... */
        snprintf(fpath, sizeof(fpath), "%s/%s", path, e->d_name);
        if (stat(fpath, &st) != 0) {
            rc = tarn_err_errno(err, errno, "stat %s", fpath);
            break;
        }
        if (!S_ISREG(st.st_mode))
            continue;
        rc = add_rel_segment(s, spc, db, rel, fork, segno, (uint64_t)st.st_size,
                             fpath, err);
    }
    closedir(d);
    return rc;
}

/* pg_xact/0000, pg_multixact/members/0001 ...: 4 or more hex digits. */
static tarn_rc
scan_slru_dir(imp_state *s, const char *path, slru_kind kind, tarn_err *err)
{
    DIR *d = opendir(path);
    struct dirent *e;
    tarn_rc rc = TARN_OK;

    if (d == NULL)
        return tarn_err_errno(err, errno, "open directory %s", path);
    while (rc == TARN_OK && (e = readdir(d)) != NULL) {
        char fpath[PATH_MAX + 256], *end;
        size_t n = strlen(e->d_name);
        struct stat st;
        unsigned long seg;
        if (n < 4 || n > 6 || strspn(e->d_name, "0123456789ABCDEF") != n)
            continue;
        seg = strtoul(e->d_name, &end, 16);
        snprintf(fpath, sizeof(fpath), "%s/%s", path, e->d_name);
        if (stat(fpath, &st) != 0) {
            rc = tarn_err_errno(err, errno, "stat %s", fpath);
            break;
        }
        if (st.st_size % PG_BLCKSZ != 0
            || st.st_size > PG_SLRU_PAGES_PER_SEGMENT * PG_BLCKSZ) {
            rc = tarn_err_set(err, TARN_EINVAL,
                              "%s is %lld bytes, not an SLRU segment", fpath,
                              (long long)st.st_size);
            break;
        }
        if (grow((void **)&s->slrus, &s->slrus_cap, s->nslrus, sizeof(imp_slru),
                 err)
            != TARN_OK) {
            rc = TARN_ENOMEM;
            break;
        }
        s->slrus[s->nslrus].kind = kind;
        s->slrus[s->nslrus].seg = (uint32_t)seg;
        s->slrus[s->nslrus].nblocks = (uint32_t)(st.st_size / PG_BLCKSZ);
        s->nslrus++;
    }
    closedir(d);
    return rc;
}

static tarn_rc
scan_twophase(imp_state *s, const char *path, tarn_err *err)
{
    DIR *d = opendir(path);
    struct dirent *e;

    if (d == NULL)
        return errno == ENOENT ? TARN_OK
                               : tarn_err_errno(err, errno, "open %s", path);
    while ((e = readdir(d)) != NULL) {
        if (strlen(e->d_name) != 8
            || strspn(e->d_name, "0123456789ABCDEF") != 8)
            continue;
        if (grow((void **)&s->xids, &s->xids_cap, s->nxids, sizeof(uint32_t),
                 err)
            != TARN_OK) {
            closedir(d);
            return TARN_ENOMEM;
        }
        s->xids[s->nxids++] = (uint32_t)strtoul(e->d_name, NULL, 16);
    }
    closedir(d);
    return TARN_OK;
}

static int
cmp_rel(const void *a, const void *b)
{
    const imp_rel *x = a, *y = b;

    if (x->spc != y->spc)
        return x->spc < y->spc ? -1 : 1;
    if (x->db != y->db)
        return x->db < y->db ? -1 : 1;
    if (x->rel != y->rel)
        return x->rel < y->rel ? -1 : 1;
    return x->fork < y->fork ? -1 : x->fork > y->fork;
}

static int
cmp_slru(const void *a, const void *b)
{
    const imp_slru *x = a, *y = b;

    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return x->seg < y->seg ? -1 : x->seg > y->seg;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* Unlogged relations: only the init fork is imported (as PostgreSQL's own
 * base backups do); PostgreSQL rebuilds the rest from it. */
static void
drop_unlogged_forks(imp_state *s)
{
    size_t out = 0;

    for (size_t i = 0; i < s->nrels; i++) {
        imp_rel *r = &s->rels[i];
        bool has_init = false;
        if (r->fork != PG_INIT_FORKNUM)
            for (size_t j = 0; j < s->nrels; j++)
                if (s->rels[j].fork == PG_INIT_FORKNUM
                    && s->rels[j].spc == r->spc && s->rels[j].db == r->db
                    && s->rels[j].rel == r->rel)
                    has_init = true;
        if (!has_init)
            s->rels[out++] = *r;
    }
    s->nrels = out;
}

static tarn_rc
scan_all(imp_state *s, tarn_err *err)
{
    char path[PATH_MAX + 64];
    DIR *d;
    struct dirent *e;
    tarn_rc rc;

    snprintf(path, sizeof(path), "%s/global", s->o->pgdata);
    if ((rc = scan_db_dir(s, path, GLOBAL_SPC, 0, err)) != TARN_OK)
        return rc;
    snprintf(path, sizeof(path), "%s/base", s->o->pgdata);
    if ((d = opendir(path)) == NULL)
        return tarn_err_errno(err, errno, "open directory %s", path);
    rc = TARN_OK;
    while (rc == TARN_OK && (e = readdir(d)) != NULL) {
        char dpath[PATH_MAX + 320];
        size_t n = strlen(e->d_name);
        if (!all_digits(e->d_name, n))
            continue;
        snprintf(dpath, sizeof(dpath), "%s/%s", path, e->d_name);
        rc = scan_db_dir(s, dpath, DEFAULT_SPC,
                         (uint32_t)strtoul(e->d_name, NULL, 10), err);
    }
    closedir(d);
    if (rc != TARN_OK)
        return rc;
    snprintf(path, sizeof(path), "%s/pg_tblspc", s->o->pgdata);
    if ((d = opendir(path)) != NULL) {
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.') {
                closedir(d);
                return tarn_err_set(err, TARN_EUNSUPPORTED,
                                    "the cluster has tablespace %s; tarn "
                                    "supports pg_default and pg_global only",
                                    e->d_name);
            }
        closedir(d);
    }
    snprintf(path, sizeof(path), "%s/pg_xact", s->o->pgdata);
    if ((rc = scan_slru_dir(s, path, SLRU_CLOG, err)) != TARN_OK)
        return rc;
    snprintf(path, sizeof(path), "%s/pg_multixact/members", s->o->pgdata);
    if ((rc = scan_slru_dir(s, path, SLRU_MXMEMBERS, err)) != TARN_OK)
        return rc;
    snprintf(path, sizeof(path), "%s/pg_multixact/offsets", s->o->pgdata);
    if ((rc = scan_slru_dir(s, path, SLRU_MXOFFSETS, err)) != TARN_OK)
        return rc;
    snprintf(path, sizeof(path), "%s/pg_twophase", s->o->pgdata);
    if ((rc = scan_twophase(s, path, err)) != TARN_OK)
        return rc;
    drop_unlogged_forks(s);
    /* qsort's array must not be NULL even when empty (C11 7.22.5). */
    if (s->nrels > 0)
        qsort(s->rels, s->nrels, sizeof(imp_rel), cmp_rel);
    if (s->nslrus > 0)
        qsort(s->slrus, s->nslrus, sizeof(imp_slru), cmp_slru);
    if (s->ndbs > 0)
        qsort(s->dbs, s->ndbs, sizeof(uint64_t), cmp_u64);
    if (s->nxids > 0)
        qsort(s->xids, s->nxids, sizeof(uint32_t), tarn_cmp_u32);
    return TARN_OK;
}

/* ---- the WAL: find the checkpoint record, copy its segment ------------- */

typedef struct ckpt_find {
    tarn_lsn start, end;
    uint8_t rmid, info;
    bool found;
} ckpt_find;

static tarn_rc
on_first_record(void *arg, const walscan_rec *rec, tarn_err *err)
{
    ckpt_find *f = arg;

    (void)err;
    f->start = rec->start;
    f->end = rec->end;
    f->rmid = rec->rmid;
    f->info = rec->info;
    f->found = true;
    return TARN_AGAIN; /* stop here */
}

static tarn_rc
read_segment(const imp_state *s, uint64_t segno, uint32_t seg_size,
             uint8_t *buf, tarn_err *err)
{
    char name[32], path[PATH_MAX + 64];
    int fd;
    ssize_t n;
    size_t got = 0;

    pg_wal_file_name(name, 1, segno, seg_size);
    snprintf(path, sizeof(path), "%s/pg_wal/%s", s->o->pgdata, name);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return tarn_err_errno(
            err, errno, "open %s (the WAL segment of the checkpoint)", path);
    while (got < seg_size
           && (n = pread(fd, buf + got, seg_size - got, (off_t)got)) > 0)
        got += (size_t)n;
    close(fd);
    if (got != seg_size)
        return tarn_err_set(err, TARN_EINVAL, "WAL segment %s is short", path);
    return TARN_OK;
}

/* Write a segment file as the WAL store lays it out: complete segments
 * under their name, the last one as ".partial", zero after @p used. */
static tarn_rc
write_segment(const char *dir, uint64_t segno, uint32_t seg_size,
              const uint8_t *data, size_t used, bool partial, tarn_err *err)
{
    char name[32], path[PATH_MAX + 64];
    uint8_t *buf = calloc(1, seg_size);
    tarn_rc rc;

    if (buf == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    memcpy(buf, data, used);
    pg_wal_file_name(name, 1, segno, seg_size);
    snprintf(path, sizeof(path), "%s/%s%s", dir, name,
             partial ? ".partial" : "");
    rc = tarn_write_file_atomic(path, buf, seg_size, 0600, err);
    free(buf);
    return rc;
}

static tarn_rc
copy_wal(imp_state *s, tarn_err *err)
{
    const pg_control *c = &s->res->ctl;
    uint32_t seg_size = c->wal_seg_size;
    uint64_t segno = c->checkpoint / seg_size;
    walscan_opts so = {.seg_size = seg_size,
                       .sysid = c->system_id,
                       .tli = 1,
                       .start = c->checkpoint,
                       .assemble = true};
    ckpt_find f = {0};
    walscan *sc = NULL;
    uint8_t *seg = malloc(seg_size), *seg2 = NULL;
    size_t off = c->checkpoint % seg_size;
    tarn_rc rc;
    char l[TARN_LSN_STRLEN];

    if (seg == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    if ((rc = read_segment(s, segno, seg_size, seg, err)) != TARN_OK
        || (rc = walscan_create(&so, &sc, err)) != TARN_OK)
        goto done;
    rc = walscan_feed(sc, seg + off, seg_size - off, on_first_record, &f, err);
    if (rc == TARN_OK && !f.found) {
        /* The record continues in the next segment. */
        if ((seg2 = malloc(seg_size)) == NULL) {
            rc = tarn_err_set(err, TARN_ENOMEM, "out of memory");
            goto done;
        }
        if ((rc = read_segment(s, segno + 1, seg_size, seg2, err)) != TARN_OK)
            goto done;
        rc = walscan_feed(sc, seg2, seg_size, on_first_record, &f, err);
    }
    if (rc == TARN_AGAIN && f.found)
        rc = TARN_OK;
    if (rc != TARN_OK) {
        tarn_err_prefix(err, "reading the checkpoint record at %s: ",
                        tarn_lsn_format(c->checkpoint, l));
        goto done;
    }
    if (!f.found || f.rmid != PG_RM_XLOG
        || (f.info & PG_XLR_RMGR_INFO_MASK) != PG_XLOG_CHECKPOINT_SHUTDOWN) {
        rc = tarn_err_set(err, TARN_EINVAL,
                          "pg_control points at %s, which is not a shutdown "
                          "checkpoint record",
                          tarn_lsn_format(c->checkpoint, l));
        goto done;
    }
    s->res->ckpt_start = f.start;
    s->res->lsn = f.end;
    s->res->wal_start = segno * seg_size;
    if (f.end / seg_size == segno || f.end % seg_size == 0) {
        bool whole = f.end % seg_size == 0 && f.end / seg_size == segno + 1;
        rc = write_segment(s->o->wal_dir, segno, seg_size, seg,
                           whole ? seg_size : f.end % seg_size, !whole, err);
        /* A record ending exactly at the segment end: the next segment
         * is started by the WAL service when WAL arrives. */
    } else {
        rc = write_segment(s->o->wal_dir, segno, seg_size, seg, seg_size, false,
                           err);
        if (rc == TARN_OK)
            rc = write_segment(s->o->wal_dir, segno + 1, seg_size, seg2,
                               f.end % seg_size, true, err);
    }
done:
    walscan_destroy(sc);
    free(seg);
    free(seg2);
    return rc;
}

/* ---- pass 2: write the layers ----------------------------------------- */

static tarn_rc
layer_begin(imp_state *s, const tkey *start, tarn_err *err)
{
    layerw_opts wo = {.dir = s->o->layer_dir,
                      .kind = LAYER_IMAGE,
                      .tenant = s->o->tenant,
                      .timeline = s->o->timeline,
                      .lsn_start = s->res->lsn,
                      .lsn_end = s->res->lsn + 1,
                      .codec = s->o->codec};

    s->layer_start = *start;
    s->layer_keys = 0;
    return layerw_create(&wo, &s->w, err);
}

static tarn_rc
layer_end(imp_state *s, const tkey *end, tarn_err *err)
{
    import_result *r = s->res;
    layerw *w = s->w;
    tarn_rc rc;

    s->w = NULL;
    {
        char(*names)[LAYER_NAME_MAX] =
            realloc(r->names, (r->nlayers + 1) * sizeof(*names));
        layer_desc *ls;
        if (names != NULL)
            r->names = names;
        ls = names ? realloc(r->layers, (r->nlayers + 1) * sizeof(*ls)) : NULL;
        if (ls == NULL) {
            layerw_abort(w);
            return tarn_err_set(err, TARN_ENOMEM, "out of memory");
        }
        r->layers = ls;
    }
    rc = layerw_finish(w, &s->layer_start, end, &r->layers[r->nlayers],
                       r->names[r->nlayers], err);
    if (rc != TARN_OK)
        return rc;
    r->bytes += r->layers[r->nlayers].file_size;
    r->nlayers++;
    return TARN_OK;
}

/* Add one value, rolling over to a new layer at a key boundary. */
static tarn_rc
emit(imp_state *s, const tkey *k, const uint8_t *val, size_t len, tarn_err *err)
{
    tarn_rc rc;

    if (s->layer_keys >= IMPORT_LAYER_KEYS) {
        if ((rc = layer_end(s, k, err)) != TARN_OK
            || (rc = layer_begin(s, k, err)) != TARN_OK)
            return rc;
    }
    s->layer_keys++;
    return layerw_add(s->w, k, s->res->lsn, val, len, true, err);
}

static tarn_rc
emit_image(imp_state *s, const tkey *k, const void *data, size_t len,
           tarn_err *err)
{
    if (tval_image(&s->val, data, len, err) != TARN_OK)
        return TARN_ENOMEM;
    return emit(s, k, s->val.p, s->val.len, err);
}

static tarn_rc
emit_u32(imp_state *s, const tkey *k, uint32_t v, tarn_err *err)
{
    uint8_t le[4];

    tarn_put_u32(le, v);
    return emit_image(s, k, le, 4, err);
}

static void
progress(imp_state *s, uint64_t done)
{
    if (done < s->next_progress)
        return;
    s->next_progress = done + PROGRESS_BYTES;
    tlog_info(s->o->log, s->o->logctx, "import: %llu MiB of pages read",
              (unsigned long long)(done >> 20));
}

static bool
all_zero(const uint8_t *p, size_t n)
{
    static const uint8_t z[64];

    for (size_t i = 0; i < n; i += sizeof(z))
        if (memcmp(p + i, z, sizeof(z)) != 0)
            return false;
    return true;
}

/* Stream the blocks of one file (or a run of relation segments). */
static tarn_rc
emit_blocks(imp_state *s, const char *base, bool relseg, uint32_t nblocks,
            tkey (*keyfn)(const void *ctx, uint32_t blk), const void *ctx,
            uint64_t *counter, tarn_err *err)
{
    uint8_t *buf = malloc(PG_BLCKSZ * 128);
    int fd = -1;
    uint32_t cur_seg = UINT32_MAX;
    tarn_rc rc = TARN_OK;

    if (buf == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    for (uint32_t b = 0; b < nblocks && rc == TARN_OK;) {
        uint32_t seg = relseg ? b / RELSEG_BLOCKS : 0, inseg,
                 chunk = nblocks - b;
        char path[PATH_MAX + 64];
        ssize_t n;
        inseg = relseg ? b % RELSEG_BLOCKS : b;
        if (seg != cur_seg) {
            if (fd >= 0)
                close(fd);
            if (seg == 0)
                snprintf(path, sizeof(path), "%s", base);
            else
                snprintf(path, sizeof(path), "%s.%u", base, seg);
            if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
                rc = tarn_err_errno(err, errno, "open %s", path);
                break;
            }
            cur_seg = seg;
        }
        if (chunk > 128)
            chunk = 128;
        if (relseg && inseg + chunk > RELSEG_BLOCKS)
            chunk = RELSEG_BLOCKS - inseg;
        n = pread(fd, buf, (size_t)chunk * PG_BLCKSZ, (off_t)inseg * PG_BLCKSZ);
        if (n != (ssize_t)chunk * PG_BLCKSZ) {
            rc = n < 0 ? tarn_err_errno(err, errno, "read %s", base)
                       : tarn_err_set(err, TARN_EIO,
                                      "%s changed while it was imported", base);
            break;
        }
        for (uint32_t i = 0; i < chunk && rc == TARN_OK; i++) {
            tkey k = keyfn(ctx, b + i);
            const uint8_t *page = buf + (size_t)i * PG_BLCKSZ;
            if (all_zero(page, PG_BLCKSZ)) {
                if (tval_zero(&s->val, err) != TARN_OK)
                    rc = TARN_ENOMEM;
                else
                    rc = emit(s, &k, s->val.p, s->val.len, err);
            } else {
                rc = emit_image(s, &k, page, PG_BLCKSZ, err);
            }
        }
        b += chunk;
        *counter += chunk;
        progress(s, (s->res->rel_pages + s->res->slru_pages) * PG_BLCKSZ);
    }
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

static tkey
rel_block_key(const void *ctx, uint32_t blk)
{
    const imp_rel *r = ctx;

    return tkey_rel_block(r->spc, r->db, r->rel, r->fork, blk);
}

static tkey
slru_block_key(const void *ctx, uint32_t blk)
{
    const imp_slru *sl = ctx;

    return tkey_slru_block(sl->kind, sl->seg, blk);
}

static void
rel_path(const imp_state *s, const imp_rel *r, char *buf, size_t len)
{
    static const char *const suffix[] = {"", "_fsm", "_vm", "_init"};

    if (r->spc == GLOBAL_SPC)
        snprintf(buf, len, "%s/global/%u%s", s->o->pgdata, r->rel,
                 suffix[r->fork]);
    else
        snprintf(buf, len, "%s/base/%u/%u%s", s->o->pgdata, r->db, r->rel,
                 suffix[r->fork]);
}

static tarn_rc
emit_relmap(imp_state *s, uint32_t spc, uint32_t db, tarn_err *err)
{
    char path[PATH_MAX + 64];
    uint8_t buf[PG_RELMAP_FILE_SIZE + 1];
    size_t len;
    tkey k = tkey_relmap(spc, db);

    if (spc == GLOBAL_SPC)
        snprintf(path, sizeof(path), "%s/global/pg_filenode.map", s->o->pgdata);
    else
        snprintf(path, sizeof(path), "%s/base/%u/pg_filenode.map", s->o->pgdata,
                 db);
    if (access(path, F_OK) != 0)
        return TARN_OK;
    if (read_small(path, buf, sizeof(buf), &len, err) != TARN_OK)
        return err ? err->code : TARN_EIO;
    if (len != PG_RELMAP_FILE_SIZE)
        return tarn_err_set(err, TARN_EINVAL, "%s is %zu bytes, not %d", path,
                            len, PG_RELMAP_FILE_SIZE);
    return emit_image(s, &k, buf, len, err);
}

static tarn_rc
emit_u32_list(imp_state *s, const tkey *k, const uint32_t *v, size_t n,
              tarn_err *err)
{
    tbuf t = {0};
    tarn_rc rc;

    if (tbuf_reserve(&t, 4 + 4 * n, err) != TARN_OK)
        return TARN_ENOMEM;
    tarn_put_u32(t.p, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        tarn_put_u32(t.p + 4 + 4 * i, v[i]);
    rc = emit_image(s, k, t.p, 4 + 4 * n, err);
    tbuf_free(&t);
    return rc;
}

static tarn_rc
write_layers(imp_state *s, tarn_err *err)
{
    import_result *r = s->res;
    tkey k, kmin = tkey_min(), kmax = tkey_max();
    uint8_t *dbdir;
    tarn_rc rc;
    size_t ri = 0;

    if ((rc = layer_begin(s, &kmin, err)) != TARN_OK)
        return rc;
    /* The database directory. */
    dbdir = malloc(4 + 8 * s->ndbs);
    if (dbdir == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    tarn_put_u32(dbdir, (uint32_t)s->ndbs);
    for (size_t i = 0; i < s->ndbs; i++) {
        tarn_put_u32(dbdir + 4 + 8 * i, (uint32_t)(s->dbs[i] >> 32));
        tarn_put_u32(dbdir + 8 + 8 * i, (uint32_t)s->dbs[i]);
    }
    k = tkey_dbdir();
    rc = emit_image(s, &k, dbdir, 4 + 8 * s->ndbs, err);
    free(dbdir);
    if (rc != TARN_OK)
        return rc;
    /* Per database: its relmapper file, then its relations. */
    for (size_t d = 0; d < s->ndbs; d++) {
        uint32_t spc = (uint32_t)(s->dbs[d] >> 32), db = (uint32_t)s->dbs[d];
        if ((rc = emit_relmap(s, spc, db, err)) != TARN_OK)
            return rc;
        for (; ri < s->nrels && s->rels[ri].spc == spc && s->rels[ri].db == db;
             ri++) {
            char path[PATH_MAX + 64];
            imp_rel *rel = &s->rels[ri];
            rel_path(s, rel, path, sizeof(path));
            if ((rc = emit_blocks(s, path, true, rel->nblocks, rel_block_key,
                                  rel, &r->rel_pages, err))
                != TARN_OK)
                return rc;
            k = tkey_rel_size(rel->spc, rel->db, rel->rel, rel->fork);
            if ((rc = emit_u32(s, &k, rel->nblocks, err)) != TARN_OK)
                return rc;
        }
    }
    /* SLRUs: per kind, the directory, then each segment. */
    for (int kind = 0; kind < SLRU_NKINDS; kind++) {
        static const char *const dirs[] = {"pg_xact", "pg_multixact/members",
                                           "pg_multixact/offsets"};
        uint32_t segs[4096];
        size_t n = 0;
        for (size_t i = 0; i < s->nslrus; i++)
            if (s->slrus[i].kind == (slru_kind)kind && n < 4096)
                segs[n++] = s->slrus[i].seg;
        k = tkey_slru_dir((slru_kind)kind);
        if ((rc = emit_u32_list(s, &k, segs, n, err)) != TARN_OK)
            return rc;
        for (size_t i = 0; i < s->nslrus; i++) {
            imp_slru *sl = &s->slrus[i];
            char path[PATH_MAX + 64];
            if (sl->kind != (slru_kind)kind)
                continue;
            snprintf(path, sizeof(path), "%s/%s/%04X", s->o->pgdata, dirs[kind],
                     sl->seg);
            if ((rc = emit_blocks(s, path, false, sl->nblocks, slru_block_key,
                                  sl, &r->slru_pages, err))
                != TARN_OK)
                return rc;
            k = tkey_slru_size(sl->kind, sl->seg);
            if ((rc = emit_u32(s, &k, sl->nblocks, err)) != TARN_OK)
                return rc;
        }
    }
    /* Two-phase state: the directory, then each file without its CRC. */
    k = tkey_twophase_dir();
    if ((rc = emit_u32_list(s, &k, s->xids, s->nxids, err)) != TARN_OK)
        return rc;
    for (size_t i = 0; i < s->nxids; i++) {
        char path[PATH_MAX + 64];
        char *data = NULL;
        size_t len = 0;
        snprintf(path, sizeof(path), "%s/pg_twophase/%08X", s->o->pgdata,
                 s->xids[i]);
        if ((rc = tarn_read_file(path, 64u << 20, &data, &len, err)) != TARN_OK)
            return rc;
        if (len < 4) {
            free(data);
            return tarn_err_set(err, TARN_EINVAL, "%s is too short", path);
        }
        k = tkey_twophase(s->xids[i]);
        rc = emit_image(s, &k, data, len - 4, err);
        free(data);
        if (rc != TARN_OK)
            return rc;
    }
    /* pg_control and the checkpoint state. */
    {
        char path[PATH_MAX + 64];
        uint8_t buf[PG_CONTROL_FILE_SIZE];
        size_t len;
        snprintf(path, sizeof(path), "%s/global/pg_control", s->o->pgdata);
        if ((rc = read_small(path, buf, sizeof(buf), &len, err)) != TARN_OK)
            return rc;
        k = tkey_control();
        if ((rc = emit_image(s, &k, buf, len, err)) != TARN_OK)
            return rc;
        k = tkey_checkpoint();
        if ((rc = emit_image(s, &k, r->ctl.ckpt, PG_CKPT_SIZE, err)) != TARN_OK)
            return rc;
    }
    /* Relation directory entries (sorted like the relations). */
    for (size_t i = 0; i < s->nrels; i++) {
        static const uint8_t exists = 'r';
        imp_rel *rel = &s->rels[i];
        k = tkey_reldir(rel->spc, rel->db, rel->rel, rel->fork);
        if ((rc = emit_image(s, &k, &exists, 1, err)) != TARN_OK)
            return rc;
    }
    return layer_end(s, &kmax, err);
}

tarn_rc
import_run(const import_opts *o, import_result *out, tarn_err *err)
{
    imp_state s;
    tarn_rc rc;
    char l[TARN_LSN_STRLEN];

    memset(&s, 0, sizeof(s));
    memset(out, 0, sizeof(*out));
    s.o = o;
    s.res = out;
    s.next_progress = PROGRESS_BYTES;
    if ((rc = import_check(o->pgdata, &out->ctl, err)) != TARN_OK)
        goto done;
    if ((rc = copy_wal(&s, err)) != TARN_OK)
        goto done;
    if ((rc = scan_all(&s, err)) != TARN_OK)
        goto done;
    tlog_info(o->log, o->logctx,
              "import: %zu database(s), %zu relation fork(s), %zu SLRU "
              "segment(s) at %s",
              s.ndbs, s.nrels, s.nslrus, tarn_lsn_format(out->lsn, l));
    out->nrels = s.nrels;
    out->ndbs = s.ndbs;
    rc = write_layers(&s, err);
done:
    if (s.w != NULL)
        layerw_abort(s.w);
    free(s.rels);
    free(s.dbs);
    free(s.slrus);
    free(s.xids);
    tbuf_free(&s.val);
    return rc;
}

void
import_result_free(import_result *r)
{
    free(r->layers);
    free(r->names);
    r->layers = NULL;
    r->names = NULL;
    r->nlayers = 0;
}
