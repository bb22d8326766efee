/*
 * basebackup.c - the tar stream of a base backup.
 *
 * The archive is a sequence of entries, each a 512-byte GNU tar header,
 * its data and padding to 512 bytes; two zero blocks end it.  The stages,
 * in order:
 *
 *   dirs      the directories initdb makes (mode 0755)
 *   files     PG_VERSION and the config files
 *   slru      pg_xact, pg_multixact/members and offsets segments
 *   twophase  pg_twophase/<XID>: the stored state, then its CRC-32C
 *   dbs       per database: base/<db>/, PG_VERSION, pg_filenode.map, and
 *             every relation fork in 1 GiB segments (global/ for 1664/0)
 *   control   global/pg_control, generated
 *   wal       pg_wal/<segment>: real WAL below the LSN, tarn's shutdown
 *             checkpoint record at it, zeros after
 *   trailer   two zero blocks
 *
 * Only the current entry is in memory (a file's data is produced a chunk
 * at a time), plus the per-timeline lists (databases, SLRU segments,
 * prepared xids) and the relation list of the current database.
 */
#include "storage/basebackup.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "server/core/crc32c.h"
#include "storage/key.h"
#include "storage/pg/controlfile.h"
#include "storage/pg/pgdefs.h"
#include "storage/pg/pgwal.h"
#include "storage/pg/walgen.h"
#include "storage/pg/walscan.h"
#include "storage/value.h"

/* Relation files are cut into 1 GiB segments (RELSEG_SIZE). */
#define TAR_BLOCK     512
#define RELSEG_BLOCKS 131072u
#define CHUNK_PAGES   32
#define CHUNK_BYTES   (CHUNK_PAGES * PG_BLCKSZ)
#define SCAN_CHUNK    (1u << 20)
#define WAL_TLI       1
#define GLOBAL_SPC    PG_GLOBALTABLESPACE_OID
#define DEFAULT_SPC   PG_DEFAULTTABLESPACE_OID

typedef enum bb_stage {
    ST_DIRS,
    ST_FILES,
    ST_SLRU,
    ST_TWOPHASE,
    ST_DBS,
    ST_CONTROL,
    ST_WAL,
    ST_TRAILER,
    ST_DONE
} bb_stage;

typedef enum src_kind { SRC_NONE, SRC_MEM, SRC_PAGES, SRC_WAL } src_kind;

/* The entry being written. */
typedef struct bb_file {
    src_kind src;
    bool dir;
    bool header_done;
    char name[100];
    uint64_t size, off;
    uint8_t *mem;     /* SRC_MEM (owned) */
    tkey first;       /* SRC_PAGES: the key of the file's first page */
    tarn_lsn wal_lsn; /* SRC_WAL: LSN of the file's first byte */
} bb_file;

typedef struct bb_slru {
    uint8_t kind;
    uint32_t seg, nblocks;
} bb_slru;

/* One relation file set to write: fork @p src read, named as @p name. */
typedef struct bb_rel {
    uint32_t rel, nblocks;
    uint8_t src, name;
} bb_rel;

struct basebackup {
    bb_opts o;
    tarn_lsn lsn, prev, ckpt_lsn;
    uint64_t sysid;
    uint32_t seg_size;
    int64_t now;
    uint8_t control[PG_CONTROL_FILE_SIZE];
    uint8_t *gen; /* WAL tarn writes, from lsn on */
    size_t gen_len;
    bool wal_real;          /* the timeline's WAL below lsn can be read */
    uint64_t seg, seg_last; /* WAL segments to write: [seg, seg_last] */

    bb_stage stage;
    size_t idx; /* position within the stage */
    uint64_t *dbs;
    size_t ndbs;
    bb_slru *slrus;
    size_t nslrus;
    uint32_t *xids;
    size_t nxids;

    /* the current database */
    int dbstep;
    bb_rel *rels;
    size_t nrels, relcap, reli;
    uint32_t relseg;

    bb_file f;
    uint8_t *chunk; /* CHUNK_BYTES */
    tbuf tmp;
    tarn_err *scan_err;

    bool z_on;
    z_stream z;
    struct evbuffer *raw; /* tar before compression (gzip) */
    uint64_t tar_bytes;
};

/* ---- arguments ------------------------------------------------------- */

tarn_rc
bb_parse_args(char *const *args, int nargs, bb_opts *o, tarn_err *err)
{
    bool have_lsn = false;

    o->latest = true;
    o->lsn = 0;
    o->gzip = o->replica = false;
    if (nargs < 2)
        return tarn_err_set(err, TARN_EINVAL,
                            "basebackup takes <tenant_id> <timeline_id> "
                            "[lsn|latest] [--gzip] [--replica]");
    if (tarn_id_parse(args[0], &o->tenant, err) != TARN_OK)
        return tarn_err_prefix(err, "basebackup: tenant id: ");
    if (tarn_id_parse(args[1], &o->tl, err) != TARN_OK)
        return tarn_err_prefix(err, "basebackup: timeline id: ");
    for (int i = 2; i < nargs; i++) {
        const char *a = args[i];
        if (strncmp(a, "--", 2) == 0) {
            bool *flag = strcmp(a, "--gzip") == 0      ? &o->gzip
                         : strcmp(a, "--replica") == 0 ? &o->replica
                                                       : NULL;
            if (flag == NULL)
                return tarn_err_set(err, TARN_EINVAL,
                                    "basebackup: unknown flag %.64s "
                                    "(known: --gzip, --replica)",
                                    a);
            if (*flag)
                return tarn_err_set(err, TARN_EINVAL,
                                    "basebackup: flag %s given twice", a);
            *flag = true;
            continue;
        }
        if (i != 2 || have_lsn)
            return tarn_err_set(err, TARN_EINVAL,
                                "basebackup: unexpected argument %.64s (the "
                                "LSN or \"latest\" comes third, flags "
                                "after)",
                                a);
        have_lsn = true;
        if (strcmp(a, "latest") == 0)
            continue;
        if (tarn_lsn_parse(a, &o->lsn, err) != TARN_OK)
            return tarn_err_prefix(err, "basebackup: ");
        o->latest = false;
    }
    return TARN_OK;
}

/* ---- tar ------------------------------------------------------------- */

static void
tar_header(uint8_t *h, const char *name, bool dir, uint64_t size, int64_t mtime)
{
    unsigned sum = 0;

    memset(h, 0, TAR_BLOCK);
    memcpy(h, name, strlen(name)); /* < 100: the names are ours */
    snprintf((char *)h + 100, 8, "%07o", dir ? 0755 : 0600);
    snprintf((char *)h + 108, 8, "%07o", 0);
    snprintf((char *)h + 116, 8, "%07o", 0);
    snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
    snprintf((char *)h + 136, 12, "%011llo", (unsigned long long)mtime);
    memset(h + 148, ' ', 8);
    h[156] = dir ? '5' : '0';
    memcpy(h + 257, "ustar  ", 8); /* GNU magic and version */
    for (int i = 0; i < TAR_BLOCK; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
}

/* ---- reading the lists at the start ------------------------------------ */

static tarn_rc
read_value(basebackup *bb, const tkey *k, bool *found, tarn_err *err)
{
    return repo_read_value(bb->o.repo, &bb->o.tenant, &bb->o.tl, k, bb->lsn,
                           &bb->tmp, found, err);
}

/* A u32 list value (count, members) in bb->tmp; a copy into *out. */
static tarn_rc
take_u32_list(basebackup *bb, const tkey *k, uint32_t **out, size_t *n,
              tarn_err *err)
{
    bool found;
    uint32_t cnt;
    tarn_rc rc = read_value(bb, k, &found, err);

    *out = NULL;
    *n = 0;
    if (rc != TARN_OK || !found)
        return rc;
    if (bb->tmp.len < 4
        || (cnt = tarn_get_u32(bb->tmp.p), bb->tmp.len != 4 + 4 * (size_t)cnt))
        return tarn_err_set(err, TARN_ECORRUPT, "a malformed directory value");
    *out = malloc(((size_t)cnt + 1) * sizeof(uint32_t));
    if (*out == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < cnt; i++)
        (*out)[i] = tarn_get_u32(bb->tmp.p + 4 + 4 * i);
    *n = cnt;
    return TARN_OK;
}

static tarn_rc
load_lists(basebackup *bb, tarn_err *err)
{
    bool found;
    uint32_t n;
    tkey k = tkey_dbdir();
    tarn_rc rc = read_value(bb, &k, &found, err);

    if (rc != TARN_OK)
        return rc;
    n = found && bb->tmp.len >= 4 ? tarn_get_u32(bb->tmp.p) : 0;
    if (found && bb->tmp.len != 4 + 8 * (size_t)n)
        return tarn_err_set(err, TARN_ECORRUPT,
                            "the database directory is malformed");
    bb->dbs = malloc(((size_t)n + 1) * sizeof(uint64_t));
    if (bb->dbs == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        uint32_t spc = tarn_get_u32(bb->tmp.p + 4 + 8 * i),
                 db = tarn_get_u32(bb->tmp.p + 8 + 8 * i);
        if (spc != DEFAULT_SPC && spc != GLOBAL_SPC)
            return tarn_err_set(err, TARN_EUNSUPPORTED,
                                "database %u is in tablespace %u; tarn "
                                "supports only pg_default and pg_global",
                                db, spc);
        bb->dbs[bb->ndbs++] = (uint64_t)spc << 32 | db;
    }
    for (int kind = 0; kind < SLRU_NKINDS; kind++) {
        uint32_t *segs;
        size_t nsegs;
        bb_slru *v;
        k = tkey_slru_dir((slru_kind)kind);
        if ((rc = take_u32_list(bb, &k, &segs, &nsegs, err)) != TARN_OK)
            return rc;
        if (nsegs > 0)
            qsort(segs, nsegs, sizeof(uint32_t), tarn_cmp_u32);
        v = realloc(bb->slrus, (bb->nslrus + nsegs + 1) * sizeof(*v));
        if (v == NULL) {
            free(segs);
            return tarn_err_set(err, TARN_ENOMEM, "out of memory");
        }
        bb->slrus = v;
        for (size_t i = 0; i < nsegs; i++) {
            k = tkey_slru_size((slru_kind)kind, segs[i]);
            if ((rc = read_value(bb, &k, &found, err)) != TARN_OK) {
                free(segs);
                return rc;
            }
            if (!found)
                continue;
            if (bb->tmp.len != 4) {
                free(segs);
                return tarn_err_set(err, TARN_ECORRUPT,
                                    "an SLRU segment size is malformed");
            }
            bb->slrus[bb->nslrus++] =
                (bb_slru){(uint8_t)kind, segs[i], tarn_get_u32(bb->tmp.p)};
        }
        free(segs);
    }
    k = tkey_twophase_dir();
    if ((rc = take_u32_list(bb, &k, &bb->xids, &bb->nxids, err)) != TARN_OK)
        return rc;
    if (bb->nxids > 0)
        qsort(bb->xids, bb->nxids, sizeof(uint32_t), tarn_cmp_u32);
    return TARN_OK;
}

/* ---- the LSN: a record boundary, and the record before it ---------------- */

typedef struct scan_ctx {
    tarn_lsn want;
    bool found;
    tarn_lsn prev;
    tarn_lsn first; /* start of the first record seen */
} scan_ctx;

static tarn_rc
on_scan_rec(void *arg, const walscan_rec *rec, tarn_err *err)
{
    scan_ctx *c = arg;

    (void)err;
    if (c->first == 0)
        c->first = rec->start;
    if (rec->end == c->want) {
        c->found = true;
        c->prev = rec->start;
    }
    return TARN_OK;
}

/*
 * Scan the WAL [from, to) (from a page boundary, possibly inside a
 * record) for a record that ends at @p c->want.  *first gets the first
 * record boundary of the range.  TARN_ENOTFOUND: the WAL is not there.
 */
static tarn_rc
scan_wal(basebackup *bb, tarn_lsn from, tarn_lsn to, scan_ctx *c,
         tarn_lsn *first, tarn_err *err)
{
    walscan_opts so = {.seg_size = bb->seg_size,
                       .sysid = bb->sysid,
                       .tli = WAL_TLI,
                       .start = from,
                       .mid_record = true};
    walscan *s = NULL;
    uint8_t *buf = malloc(SCAN_CHUNK);
    tarn_rc rc;

    *first = 0;
    if (buf == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    if ((rc = walscan_create(&so, &s, err)) != TARN_OK)
        goto done;
    for (tarn_lsn at = from; at < to;) {
        size_t n = to - at < SCAN_CHUNK ? (size_t)(to - at) : SCAN_CHUNK;
        if ((rc = repo_read_wal(bb->o.repo, &bb->o.tenant, &bb->o.tl, at, buf,
                                n, err))
            != TARN_OK) {
            rc = TARN_ENOTFOUND;
            goto done;
        }
        if ((rc = walscan_feed(s, buf, n, on_scan_rec, c, err)) != TARN_OK)
            goto done;
        at += n;
    }
    *first = c->first ? c->first : walscan_boundary(s);
done:
    walscan_destroy(s);
    free(buf);
    return rc;
}

static tarn_rc
check_range(basebackup *bb, const repo_backup_info *bi, tarn_err *err)
{
    char l1[TARN_LSN_STRLEN], l2[TARN_LSN_STRLEN];

    if (bb->lsn < bi->start_lsn)
        return tarn_err_set(err, TARN_EINVAL,
                            "LSN %s is before the start of the timeline at %s",
                            tarn_lsn_format(bb->lsn, l1),
                            tarn_lsn_format(bi->start_lsn, l2));
    if (bb->lsn > bi->last_record_lsn)
        return tarn_err_set(err, TARN_EINVAL,
                            "LSN %s is past the last record ingested on the "
                            "timeline, %s (wait until the timeline's "
                            "last_record_lsn reaches it)",
                            tarn_lsn_format(bb->lsn, l1),
                            tarn_lsn_format(bi->last_record_lsn, l2));
    return TARN_OK;
}

/*
 * Settle bb->lsn (a record's end), bb->prev (that record's start, 0 if
 * unknown) and bb->wal_real.
 */
static tarn_rc
check_lsn(basebackup *bb, const repo_backup_info *bi, tarn_err *err)
{
    char l1[TARN_LSN_STRLEN];
    tarn_lsn L = bb->lsn, page_off = L % PG_XLOG_BLCKSZ, hdr, from, first;
    bool known = L == bi->last_record_lsn || L == bi->start_lsn
                 || (bi->has_ancestor && L == bi->ancestor_lsn);
    scan_ctx c = {.want = L};
    tarn_rc rc;

    /* The start of a record just past a page header: the same point as
     * the page boundary where the record before it ended. */
    hdr = pg_page_header_size(L - page_off, bb->seg_size);
    if (page_off == hdr && !known)
        c.want = L - hdr;
    from = (c.want - 1) / bb->seg_size * bb->seg_size;
    rc = scan_wal(bb, from, c.want, &c, &first, err);
    if (rc == TARN_ENOTFOUND) {
        /* The WAL is gone (layers cover it): only known boundaries. */
        if (!known)
            return tarn_err_set(err, TARN_EINVAL,
                                "cannot check that %s is a record boundary: "
                                "the timeline's WAL there has been removed; "
                                "use latest or the timeline's start LSN",
                                tarn_lsn_format(L, l1));
        bb->wal_real = false;
        bb->prev = L == bi->last_record_lsn ? bi->prev_record_lsn : 0;
        return TARN_OK;
    }
    if (rc != TARN_OK)
        return tarn_err_prefix(
            err, "reading WAL before %s: ", tarn_lsn_format(L, l1));
    if (!c.found && first == c.want && from >= bb->seg_size) {
        /* The first boundary of the segment: its record began before. */
        c.first = 0;
        rc = scan_wal(bb, from - bb->seg_size, c.want, &c, &first, err);
        if (rc != TARN_OK && rc != TARN_ENOTFOUND)
            return rc;
        c.found = true; /* a boundary either way */
    }
    if (!c.found && !known)
        return tarn_err_set(err, TARN_EINVAL,
                            "LSN %s is not a record boundary on the "
                            "timeline (give the end of a record, e.g. "
                            "pg_current_wal_insert_lsn() after a commit)",
                            tarn_lsn_format(L, l1));
    bb->lsn = c.want;
    bb->prev = c.prev;
    if (bb->prev == 0 && bb->lsn == bi->last_record_lsn)
        bb->prev = bi->prev_record_lsn;
    bb->wal_real = true;
    return TARN_OK;
}

/* ---- pg_control and the checkpoint record ----------------------------- */

static tarn_rc
build_control(basebackup *bb, tarn_err *err)
{
    pg_control pc;
    bool found;
    tkey k = tkey_control();
    tarn_rc rc = read_value(bb, &k, &found, err);

    if (rc != TARN_OK)
        return rc;
    if (!found)
        return tarn_err_set(err, TARN_EPRECOND,
                            "the timeline has no pg_control (it was not "
                            "bootstrapped or imported)");
    memset(bb->control, 0, sizeof(bb->control));
    memcpy(bb->control, bb->tmp.p,
           bb->tmp.len < sizeof(bb->control) ? bb->tmp.len
                                             : sizeof(bb->control));
    if ((rc = pg_control_parse(bb->control, sizeof(bb->control), &pc, err))
        != TARN_OK)
        return tarn_err_prefix(err, "stored pg_control: ");
    bb->sysid = pc.system_id;
    bb->seg_size = pc.wal_seg_size;
    if (!pg_seg_size_valid(bb->seg_size))
        return tarn_err_set(err, TARN_ECORRUPT,
                            "stored pg_control has WAL segment size %u",
                            bb->seg_size);
    return TARN_OK;
}

/*
 * The shutdown checkpoint record at bb->lsn, as CreateCheckPoint writes
 * it at shutdown: redo is the record itself, oldestActiveXid is invalid;
 * the xid, OID and multixact counters and the oldest values are those
 * ingest tracked.
 */
static tarn_rc
build_checkpoint(basebackup *bb, tarn_err *err)
{
    uint8_t ckpt[PG_CKPT_SIZE];
    tarn_lsn start, end, page_off = bb->lsn % PG_XLOG_BLCKSZ;
    walgen *g = NULL;
    const uint8_t *data;
    size_t len;
    bool found;
    tkey k = tkey_checkpoint();
    tarn_rc rc = read_value(bb, &k, &found, err);

    if (rc != TARN_OK)
        return rc;
    if (!found || bb->tmp.len != PG_CKPT_SIZE)
        return tarn_err_set(err, TARN_ECORRUPT,
                            "the timeline's checkpoint state is missing or "
                            "malformed");
    memcpy(ckpt, bb->tmp.p, PG_CKPT_SIZE);
    bb->ckpt_lsn = page_off == 0
                       ? bb->lsn + pg_page_header_size(bb->lsn, bb->seg_size)
                       : bb->lsn;
    tarn_put_u64(ckpt + PG_CKPT_REDO, bb->ckpt_lsn);
    tarn_put_u32(ckpt + PG_CKPT_THIS_TLI, WAL_TLI);
    tarn_put_u32(ckpt + PG_CKPT_PREV_TLI, WAL_TLI);
    memset(ckpt + PG_CKPT_FULL_PAGE_WRITES + 1, 0, 7); /* padding */
    memset(ckpt + PG_CKPT_OLDEST_MULTI_DB + 4, 0, 4);
    tarn_put_u64(ckpt + PG_CKPT_TIME, (uint64_t)bb->now);
    tarn_put_u32(ckpt + PG_CKPT_OLDEST_ACTIVE_XID, 0);
    memset(ckpt + PG_CKPT_OLDEST_ACTIVE_XID + 4, 0, 4);
    if ((rc = walgen_create(bb->sysid, bb->seg_size, WAL_TLI, bb->lsn, bb->prev,
                            &g, err))
        != TARN_OK)
        return rc;
    rc = walgen_append_main(g, PG_RM_XLOG, PG_XLOG_CHECKPOINT_SHUTDOWN, 0, ckpt,
                            PG_CKPT_SIZE, &start, &end, err);
    if (rc == TARN_OK && start != bb->ckpt_lsn)
        rc = tarn_err_set(err, TARN_ECORRUPT,
                          "the checkpoint record landed at an unexpected LSN");
    if (rc == TARN_OK) {
        data = walgen_data(g, &len);
        bb->gen = malloc(len ? len : 1);
        if (bb->gen == NULL)
            rc = tarn_err_set(err, TARN_ENOMEM, "out of memory");
        else {
            memcpy(bb->gen, data, len);
            bb->gen_len = len;
        }
    }
    walgen_destroy(g);
    if (rc != TARN_OK)
        return rc;
    pg_control_set_shutdown(bb->control, bb->ckpt_lsn, ckpt, bb->now);
    /* The segments: the one with the LSN (and the one the record before
     * it starts in, so a client can resume streaming there) up to the
     * one where the checkpoint record ends. */
    bb->seg = bb->lsn / bb->seg_size;
    bb->seg_last = (bb->lsn + bb->gen_len - 1) / bb->seg_size;
    if (bb->wal_real && bb->prev != 0 && bb->prev / bb->seg_size + 1 == bb->seg
        && bb->prev >= bb->seg_size) {
        uint8_t probe[PG_LONG_PHD];
        tarn_err e2;
        if (repo_read_wal(bb->o.repo, &bb->o.tenant, &bb->o.tl,
                          (bb->seg - 1) * bb->seg_size, probe, sizeof(probe),
                          &e2)
            == TARN_OK)
            bb->seg--;
    }
    return TARN_OK;
}

/* ---- creating ------------------------------------------------------------ */

tarn_rc
bb_create(const bb_opts *o, basebackup **out, tarn_err *err)
{
    basebackup *bb = calloc(1, sizeof(*bb));
    repo_backup_info bi;
    tarn_rc rc;

    if (bb == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    bb->o = *o;
    bb->now = (int64_t)time(NULL);
    bb->chunk = malloc(CHUNK_BYTES);
    if (bb->chunk == NULL) {
        rc = tarn_err_set(err, TARN_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = repo_backup_info_get(o->repo, &o->tenant, &o->tl, &bi, err))
        != TARN_OK)
        goto fail;
    bb->lsn = o->latest ? bi.last_record_lsn : o->lsn;
    if ((rc = check_range(bb, &bi, err)) != TARN_OK
        || (rc = build_control(bb, err)) != TARN_OK
        || (rc = check_lsn(bb, &bi, err)) != TARN_OK
        || (rc = build_checkpoint(bb, err)) != TARN_OK
        || (rc = load_lists(bb, err)) != TARN_OK)
        goto fail;
    if (o->gzip) {
        if (deflateInit2(&bb->z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8,
                         Z_DEFAULT_STRATEGY)
            != Z_OK) {
            rc = tarn_err_set(err, TARN_ENOMEM, "zlib: deflateInit2 failed");
            goto fail;
        }
        bb->z_on = true;
        if ((bb->raw = evbuffer_new()) == NULL) {
            rc = tarn_err_set(err, TARN_ENOMEM, "out of memory");
            goto fail;
        }
    }
    *out = bb;
    return TARN_OK;
fail:
    bb_destroy(bb);
    return rc;
}

void
bb_destroy(basebackup *bb)
{
    if (bb == NULL)
        return;
    if (bb->z_on)
        deflateEnd(&bb->z);
    if (bb->raw != NULL)
        evbuffer_free(bb->raw);
    free(bb->f.mem);
    free(bb->gen);
    free(bb->dbs);
    free(bb->slrus);
    free(bb->xids);
    free(bb->rels);
    free(bb->chunk);
    tbuf_free(&bb->tmp);
    free(bb);
}

tarn_lsn
bb_lsn(const basebackup *bb)
{
    return bb->lsn;
}

tarn_lsn
bb_checkpoint_lsn(const basebackup *bb)
{
    return bb->ckpt_lsn;
}

uint64_t
bb_tar_bytes(const basebackup *bb)
{
    return bb->tar_bytes;
}

/* ---- entries --------------------------------------------------------- */

static void
file_dir(basebackup *bb, const char *name)
{
    memset(&bb->f, 0, sizeof(bb->f));
    bb->f.src = SRC_MEM;
    bb->f.dir = true;
    snprintf(bb->f.name, sizeof(bb->f.name), "%s/", name);
}

/* A small file; takes @p mem (malloc'd) or copies @p text. */
static tarn_rc
file_mem(basebackup *bb, const char *name, uint8_t *mem, const char *text,
         size_t len, tarn_err *err)
{
    memset(&bb->f, 0, sizeof(bb->f));
    bb->f.src = SRC_MEM;
    snprintf(bb->f.name, sizeof(bb->f.name), "%s", name);
    if (mem == NULL) {
        mem = malloc(len ? len : 1);
        if (mem == NULL)
            return tarn_err_set(err, TARN_ENOMEM, "out of memory");
        memcpy(mem, text, len);
    }
    bb->f.mem = mem;
    bb->f.size = len;
    return TARN_OK;
}

static void
file_pages(basebackup *bb, const char *name, tkey first, uint32_t nblocks)
{
    memset(&bb->f, 0, sizeof(bb->f));
    bb->f.src = SRC_PAGES;
    snprintf(bb->f.name, sizeof(bb->f.name), "%s", name);
    bb->f.first = first;
    bb->f.size = (uint64_t)nblocks * PG_BLCKSZ;
}

/* initdb's directories, parents first. */
static const char *const dirs[] = {"global",
                                   "pg_wal",
                                   "pg_wal/archive_status",
                                   "pg_commit_ts",
                                   "pg_dynshmem",
                                   "pg_notify",
                                   "pg_serial",
                                   "pg_snapshots",
                                   "pg_subtrans",
                                   "pg_twophase",
                                   "pg_multixact",
                                   "pg_multixact/members",
                                   "pg_multixact/offsets",
                                   "base",
                                   "pg_replslot",
                                   "pg_tblspc",
                                   "pg_stat",
                                   "pg_stat_tmp",
                                   "pg_xact",
                                   "pg_logical",
                                   "pg_logical/snapshots",
                                   "pg_logical/mappings"};

static const char pg_version[] = "15\n";

static const char postgresql_conf[] =
    "# postgresql.conf of a base backup from tarn.  tarn does not keep the\n"
    "# compute's configuration: PostgreSQL's defaults apply.  Add settings\n"
    "# here or in postgresql.auto.conf.\n";

static const char auto_conf[] =
    "# Do not edit this file manually!\n"
    "# It will be overwritten by the ALTER SYSTEM command.\n";

static const char hba_conf[] =
    "# pg_hba.conf of a base backup from tarn: trust on this host only.\n"
    "# TYPE  DATABASE        USER            ADDRESS                 METHOD\n"
    "local   all             all                                     trust\n"
    "host    all             all             127.0.0.1/32            trust\n"
    "host    all             all             ::1/128                 trust\n"
    "local   replication     all                                     trust\n"
    "host    replication     all             127.0.0.1/32            trust\n"
    "host    replication     all             ::1/128                 trust\n";

static const char ident_conf[] =
    "# MAPNAME       SYSTEM-USERNAME         PG-USERNAME\n";

static const struct {
    const char *name, *text;
    size_t len;
} small_files[] = {
    {"PG_VERSION", pg_version, sizeof(pg_version) - 1},
    {"postgresql.conf", postgresql_conf, sizeof(postgresql_conf) - 1},
    {"postgresql.auto.conf", auto_conf, sizeof(auto_conf) - 1},
    {"pg_hba.conf", hba_conf, sizeof(hba_conf) - 1},
    {"pg_ident.conf", ident_conf, sizeof(ident_conf) - 1}};

static const char *const slru_dirs[SLRU_NKINDS] = {
    "pg_xact", "pg_multixact/members", "pg_multixact/offsets"};

static const char *const fork_suffix[] = {"", "_fsm", "_vm", "_init"};

static tarn_rc
on_reldir(void *arg, const tkey *k, const uint8_t *val, size_t len,
          tarn_err *err)
{
    basebackup *bb = arg;
    tkey sk = tkey_rel_size(tkey_f2(k), tkey_f3(k), tkey_f4(k), tkey_f5(k));
    bool found;
    tarn_rc rc;

    (void)val;
    (void)len;
    if (tkey_f5(k) > PG_MAX_FORKNUM)
        return TARN_OK;
    if ((rc = repo_read_value(bb->o.repo, &bb->o.tenant, &bb->o.tl, &sk,
                              bb->lsn, &bb->tmp, &found, err))
        != TARN_OK)
        return rc;
    if (!found)
        return TARN_OK;
    if (bb->tmp.len != 4)
        return tarn_err_set(err, TARN_ECORRUPT,
                            "relation size value of %zu bytes", bb->tmp.len);
    if (bb->nrels == bb->relcap) {
        size_t cap = bb->relcap ? bb->relcap * 2 : 256;
        bb_rel *v = realloc(bb->rels, cap * sizeof(*v));
        if (v == NULL)
            return tarn_err_set(err, TARN_ENOMEM, "out of memory");
        bb->rels = v;
        bb->relcap = cap;
    }
    bb->rels[bb->nrels++] =
        (bb_rel){tkey_f4(k), tarn_get_u32(bb->tmp.p), tkey_f5(k), tkey_f5(k)};
    return TARN_OK;
}

/*
 * The relation forks of a database, in (relation, fork) order.  An
 * unlogged relation (one with an init fork) gets its init fork twice,
 * under its own name and as the main fork, and nothing else: PostgreSQL
 * resets unlogged relations only after a crash, and a clean start must
 * find them empty (as Neon does).
 */
static tarn_rc
load_rels(basebackup *bb, uint32_t spc, uint32_t db, tarn_err *err)
{
    tkey lo = tkey_make(TKEY_RELDIR, spc, db, 0, 0, 0),
         hi = tkey_make(TKEY_RELDIR, spc, db, UINT32_MAX, 0xff, UINT32_MAX);
    size_t i, j, n, out = 0;
    bb_rel *v;
    tarn_rc rc;

    bb->nrels = 0;
    if ((rc = repo_scan(bb->o.repo, &bb->o.tenant, &bb->o.tl, &lo, &hi, bb->lsn,
                        on_reldir, bb, err))
        != TARN_OK)
        return rc;
    n = bb->nrels;
    v = malloc((2 * n + 1) * sizeof(*v));
    if (v == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    for (i = 0; i < n; i = j) {
        const bb_rel *init = NULL;
        for (j = i; j < n && bb->rels[j].rel == bb->rels[i].rel; j++)
            if (bb->rels[j].src == PG_INIT_FORKNUM)
                init = &bb->rels[j];
        if (init == NULL) {
            memcpy(v + out, bb->rels + i, (j - i) * sizeof(*v));
            out += j - i;
            continue;
        }
        v[out] = *init;
        v[out++].name = PG_MAIN_FORKNUM;
        v[out++] = *init;
    }
    free(bb->rels);
    bb->rels = v;
    bb->relcap = 2 * n + 1;
    bb->nrels = out;
    bb->reli = 0;
    bb->relseg = 0;
    return TARN_OK;
}

static void
rel_path(basebackup *bb, uint32_t spc, uint32_t db, const bb_rel *r,
         uint32_t seg, char *buf, size_t len)
{
    char segs[16] = "";

    (void)bb;
    if (seg > 0)
        snprintf(segs, sizeof(segs), ".%u", seg);
    if (spc == GLOBAL_SPC)
        snprintf(buf, len, "global/%u%s%s", r->rel, fork_suffix[r->name], segs);
    else
        snprintf(buf, len, "base/%u/%u%s%s", db, r->rel, fork_suffix[r->name],
                 segs);
}

/*
 * The next entry of the current database into bb->f.  *more is false
 * when the database is finished.
 */
static tarn_rc
next_db_entry(basebackup *bb, bool *more, tarn_err *err)
{
    uint32_t spc = (uint32_t)(bb->dbs[bb->idx] >> 32),
             db = (uint32_t)bb->dbs[bb->idx];
    char name[100];
    tarn_rc rc;

    *more = true;
    for (;;) {
        switch (bb->dbstep) {
        case 0: { /* the relations and the relmapper file */
            tkey k = tkey_relmap(spc, db);
            bool found;
            if ((rc = load_rels(bb, spc, db, err)) != TARN_OK)
                return rc;
            if ((rc = read_value(bb, &k, &found, err)) != TARN_OK)
                return rc;
            if (found && bb->tmp.len != PG_RELMAP_FILE_SIZE)
                return tarn_err_set(err, TARN_ECORRUPT,
                                    "the relmapper file of %u/%u is %zu "
                                    "bytes, not %d",
                                    spc, db, bb->tmp.len, PG_RELMAP_FILE_SIZE);
            if (!found && bb->nrels == 0) {
                *more = false; /* an empty database entry: skip it */
                return TARN_OK;
            }
            bb->dbstep = found ? 1 : 4;
            if (spc == GLOBAL_SPC) {
                if (found)
                    bb->dbstep = 3;
                continue;
            }
            snprintf(name, sizeof(name), "base/%u", db);
            file_dir(bb, name);
            return TARN_OK;
        }
        case 1:
            snprintf(name, sizeof(name), "base/%u/PG_VERSION", db);
            bb->dbstep = 2;
            return file_mem(bb, name, NULL, pg_version, sizeof(pg_version) - 1,
                            err);
        case 2:
        case 3: {
            tkey k = tkey_relmap(spc, db);
            bool found;
            if ((rc = read_value(bb, &k, &found, err)) != TARN_OK)
                return rc;
            if (!found || bb->tmp.len != PG_RELMAP_FILE_SIZE)
                return tarn_err_set(err, TARN_ECORRUPT,
                                    "the relmapper file of %u/%u changed", spc,
                                    db);
            if (spc == GLOBAL_SPC)
                snprintf(name, sizeof(name), "global/pg_filenode.map");
            else
                snprintf(name, sizeof(name), "base/%u/pg_filenode.map", db);
            bb->dbstep = 4;
            return file_mem(bb, name, NULL, (const char *)bb->tmp.p,
                            bb->tmp.len, err);
        }
        default: { /* relation files, segment by segment */
            const bb_rel *r;
            uint32_t left, n;
            if (bb->reli >= bb->nrels) {
                *more = false;
                return TARN_OK;
            }
            r = &bb->rels[bb->reli];
            left = r->nblocks - bb->relseg * RELSEG_BLOCKS;
            n = left < RELSEG_BLOCKS ? left : RELSEG_BLOCKS;
            rel_path(bb, spc, db, r, bb->relseg, name, sizeof(name));
            file_pages(bb, name,
                       tkey_rel_block(spc, db, r->rel, r->src,
                                      bb->relseg * RELSEG_BLOCKS),
                       n);
            /* A last segment of exactly RELSEG_BLOCKS is followed by no
             * empty one (PostgreSQL creates it only on extension). */
            if (left > RELSEG_BLOCKS)
                bb->relseg++;
            else {
                bb->reli++;
                bb->relseg = 0;
            }
            return TARN_OK;
        }
        }
    }
}

/* Set up the next entry in bb->f, moving through the stages. */
static tarn_rc
next_entry(basebackup *bb, tarn_err *err)
{
    char name[100];
    bool found, more;
    tarn_rc rc;

    for (;;) {
        switch (bb->stage) {
        case ST_DIRS:
            if (bb->idx < TARN_ARRAY_LEN(dirs)) {
                file_dir(bb, dirs[bb->idx++]);
                return TARN_OK;
            }
            break;
        case ST_FILES:
            if (bb->idx < TARN_ARRAY_LEN(small_files)) {
                size_t i = bb->idx++;
                return file_mem(bb, small_files[i].name, NULL,
                                small_files[i].text, small_files[i].len, err);
            }
            break;
        case ST_SLRU:
            if (bb->idx < bb->nslrus) {
                const bb_slru *s = &bb->slrus[bb->idx++];
                snprintf(name, sizeof(name), "%s/%04X", slru_dirs[s->kind],
                         s->seg);
                file_pages(bb, name,
                           tkey_slru_block((slru_kind)s->kind, s->seg, 0),
                           s->nblocks);
                return TARN_OK;
            }
            break;
        case ST_TWOPHASE:
            if (bb->idx < bb->nxids) {
                uint32_t xid = bb->xids[bb->idx++];
                tkey k = tkey_twophase(xid);
                uint8_t *mem;
                if ((rc = read_value(bb, &k, &found, err)) != TARN_OK)
                    return rc;
                if (!found)
                    continue;
                mem = malloc(bb->tmp.len + 4);
                if (mem == NULL)
                    return tarn_err_set(err, TARN_ENOMEM, "out of memory");
                memcpy(mem, bb->tmp.p, bb->tmp.len);
                tarn_put_u32(mem + bb->tmp.len,
                             tarn_crc32c(bb->tmp.p, bb->tmp.len));
                snprintf(name, sizeof(name), "pg_twophase/%08X", xid);
                return file_mem(bb, name, mem, NULL, bb->tmp.len + 4, err);
            }
            break;
        case ST_DBS:
            if (bb->idx < bb->ndbs) {
                if ((rc = next_db_entry(bb, &more, err)) != TARN_OK)
                    return rc;
                if (more)
                    return TARN_OK;
                bb->idx++;
                bb->dbstep = 0;
                continue;
            }
            break;
        case ST_CONTROL:
            if (bb->idx == 0) {
                bb->idx++;
                return file_mem(bb, "global/pg_control", NULL,
                                (const char *)bb->control, sizeof(bb->control),
                                err);
            }
            break;
        case ST_WAL:
            if (bb->seg <= bb->seg_last) {
                char seg[32];
                pg_wal_file_name(seg, WAL_TLI, bb->seg, bb->seg_size);
                memset(&bb->f, 0, sizeof(bb->f));
                bb->f.src = SRC_WAL;
                snprintf(bb->f.name, sizeof(bb->f.name), "pg_wal/%s", seg);
                bb->f.size = bb->seg_size;
                bb->f.wal_lsn = bb->seg * bb->seg_size;
                bb->seg++;
                return TARN_OK;
            }
            break;
        default:
            memset(&bb->f, 0, sizeof(bb->f));
            return TARN_OK;
        }
        bb->stage++;
        bb->idx = 0;
    }
}

/* ---- producing bytes ------------------------------------------------- */

/*
 * WAL bytes [lsn, lsn + len) below the backup LSN when the timeline's
 * WAL is gone: valid page headers and zeros.
 */
static void
synth_wal(basebackup *bb, tarn_lsn lsn, uint8_t *p, size_t len)
{
    memset(p, 0, len);
    for (tarn_lsn pg =
             (lsn + PG_XLOG_BLCKSZ - 1) / PG_XLOG_BLCKSZ * PG_XLOG_BLCKSZ;
         pg < lsn + len; pg += PG_XLOG_BLCKSZ) {
        uint8_t h[PG_LONG_PHD] = {0};
        size_t hl = pg_page_header_size(pg, bb->seg_size), n;
        tarn_put_u16(h + PG_PHD_MAGIC, PG_XLOG_PAGE_MAGIC);
        tarn_put_u16(h + PG_PHD_INFO,
                     hl == PG_LONG_PHD ? PG_XLP_LONG_HEADER : 0);
        tarn_put_u32(h + PG_PHD_TLI, WAL_TLI);
        tarn_put_u64(h + PG_PHD_PAGEADDR, pg);
        if (hl == PG_LONG_PHD) {
            tarn_put_u64(h + PG_PHD_SYSID, bb->sysid);
            tarn_put_u32(h + PG_PHD_SEG_SIZE, bb->seg_size);
            tarn_put_u32(h + PG_PHD_XLOG_BLCKSZ, PG_XLOG_BLCKSZ);
        }
        n = lsn + len - pg < hl ? (size_t)(lsn + len - pg) : hl;
        memcpy(p + (pg - lsn), h, n);
    }
}

/* WAL segment bytes [lsn, lsn + len): real, tarn's record, zeros. */
static tarn_rc
wal_bytes(basebackup *bb, tarn_lsn lsn, uint8_t *p, size_t len, tarn_err *err)
{
    tarn_lsn end = lsn + len, gen_end = bb->lsn + bb->gen_len;

    memset(p, 0, len);
    if (lsn < bb->lsn) {
        size_t n = (size_t)((end < bb->lsn ? end : bb->lsn) - lsn);
        if (!bb->wal_real)
            synth_wal(bb, lsn, p, n);
        else if (repo_read_wal(bb->o.repo, &bb->o.tenant, &bb->o.tl, lsn, p, n,
                               err)
                 != TARN_OK)
            return tarn_err_prefix(err, "base backup WAL: ");
    }
    if (end > bb->lsn && lsn < gen_end) {
        tarn_lsn a = lsn > bb->lsn ? lsn : bb->lsn,
                 b = end < gen_end ? end : gen_end;
        memcpy(p + (a - lsn), bb->gen + (a - bb->lsn), (size_t)(b - a));
    }
    return TARN_OK;
}

static tarn_rc
emit(basebackup *bb, struct evbuffer *dst, const void *p, size_t n,
     tarn_err *err)
{
    if (evbuffer_add(dst, p, n) != 0)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    bb->tar_bytes += n;
    return TARN_OK;
}

/* Produce about @p budget bytes of tar into @p dst. */
static tarn_rc
produce(basebackup *bb, struct evbuffer *dst, size_t budget, tarn_err *err)
{
    size_t made = 0;
    tarn_rc rc;

    while (made < budget && bb->stage != ST_DONE) {
        bb_file *f = &bb->f;
        if (f->src == SRC_NONE) {
            if (bb->stage == ST_TRAILER) {
                static const uint8_t zeros[2 * TAR_BLOCK];
                if ((rc = emit(bb, dst, zeros, sizeof(zeros), err)) != TARN_OK)
                    return rc;
                bb->stage = ST_DONE;
                break;
            }
            if ((rc = next_entry(bb, err)) != TARN_OK)
                return rc;
            continue;
        }
        if (!f->header_done) {
            uint8_t h[TAR_BLOCK];
            tar_header(h, f->name, f->dir, f->size, bb->now);
            if ((rc = emit(bb, dst, h, sizeof(h), err)) != TARN_OK)
                return rc;
            f->header_done = true;
            made += TAR_BLOCK;
            continue;
        }
        if (f->off < f->size) {
            size_t n = f->size - f->off < CHUNK_BYTES
                           ? (size_t)(f->size - f->off)
                           : CHUNK_BYTES;
            const uint8_t *p = bb->chunk;
            if (f->src == SRC_MEM)
                p = f->mem + f->off;
            else if (f->src == SRC_PAGES) {
                tkey k = f->first;
                tkey_put32(k.b + 14,
                           tkey_f6(&f->first) + (uint32_t)(f->off / PG_BLCKSZ));
                rc = repo_read_pages(bb->o.repo, &bb->o.tenant, &bb->o.tl, &k,
                                     (uint32_t)(n / PG_BLCKSZ), bb->lsn,
                                     bb->chunk, err);
                if (rc != TARN_OK) {
                    char d[96];
                    return tarn_err_prefix(err, "%s (%s): ", f->name,
                                           tkey_describe(&k, d, sizeof(d)));
                }
            } else if ((rc = wal_bytes(bb, f->wal_lsn + f->off, bb->chunk, n,
                                       err))
                       != TARN_OK)
                return rc;
            if ((rc = emit(bb, dst, p, n, err)) != TARN_OK)
                return rc;
            f->off += n;
            made += n;
            continue;
        }
        if (f->size % TAR_BLOCK != 0) {
            static const uint8_t pad[TAR_BLOCK];
            if ((rc = emit(bb, dst, pad, TAR_BLOCK - f->size % TAR_BLOCK, err))
                != TARN_OK)
                return rc;
        }
        free(f->mem);
        memset(f, 0, sizeof(*f));
    }
    return TARN_OK;
}

/* Compress everything in bb->raw into @p out (and finish at the end). */
static tarn_rc
deflate_out(basebackup *bb, struct evbuffer *out, bool finish, tarn_err *err)
{
    size_t n = evbuffer_get_length(bb->raw);
    uint8_t *in = n ? evbuffer_pullup(bb->raw, (ssize_t)n) : NULL;
    int zr;

    bb->z.next_in = in;
    bb->z.avail_in = (uInt)n;
    do {
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(out, 64 * 1024, &v, 1) < 1)
            return tarn_err_set(err, TARN_ENOMEM, "out of memory");
        bb->z.next_out = v.iov_base;
        bb->z.avail_out = (uInt)v.iov_len;
        zr = deflate(&bb->z, finish ? Z_FINISH : Z_NO_FLUSH);
        if (zr == Z_STREAM_ERROR)
            return tarn_err_set(err, TARN_EIO, "zlib: deflate failed");
        v.iov_len -= bb->z.avail_out;
        evbuffer_commit_space(out, &v, 1);
    } while (bb->z.avail_in > 0 || bb->z.avail_out == 0
             || (finish && zr != Z_STREAM_END));
    evbuffer_drain(bb->raw, n);
    return TARN_OK;
}

tarn_rc
bb_next(basebackup *bb, struct evbuffer *out, size_t budget, bool *done,
        tarn_err *err)
{
    tarn_rc rc;

    *done = false;
    if (!bb->z_on) {
        if ((rc = produce(bb, out, budget, err)) != TARN_OK)
            return rc;
        *done = bb->stage == ST_DONE;
        return TARN_OK;
    }
    if ((rc = produce(bb, bb->raw, budget, err)) != TARN_OK
        || (rc = deflate_out(bb, out, bb->stage == ST_DONE, err)) != TARN_OK)
        return rc;
    *done = bb->stage == ST_DONE;
    return TARN_OK;
}
