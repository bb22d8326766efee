/*
 * redocheck.c - the native-redo oracle over a whole WAL stream: replay
 * every record with tarn's redo and compare each page it changes with the
 * image PostgreSQL logged for wal_consistency_checking.
 *
 *   redocheck [--dump FILE] [--show N] [--json] [--minimal-mask]
 *             WALDIR START_LSN END_LSN
 *
 * WALDIR holds the compute's WAL segments (see waldir.h); START must be a
 * record boundary.  The compute ran with wal_consistency_checking = all,
 * so every block reference carries an image of the page as the primary
 * left it.  redocheck keeps every page it has seen in memory and, for each
 * record and each block, in WAL order:
 *
 *   - applies the record with redo_apply(), the function tarnd's read
 *     path calls, to the page as it stands (a zero page when the block is
 *     WILL_INIT); for an image PostgreSQL's redo restores (BKPIMAGE_APPLY)
 *     redo_apply() restores it;
 *   - for any other image, masks the result and the logged image with the
 *     record's rm_mask and compares them: that is PostgreSQL's own
 *     verifyBackupPageConsistency(), done by tarn's redo;
 *   - a block whose page is not known yet (first touched before START
 *     without an image since) cannot be replayed: its logged image becomes
 *     the page, and the block counts as "adopted", not as checked.
 *
 * After a mismatch, an error or a record tarn has no redo for, the logged
 * image becomes the page, so one difference is reported once.  What
 * PostgreSQL changes without a block reference is mirrored: the
 * visibility-map bits heap records clear (walrec_heap_vm_clears, as
 * ingest does), and relation truncation and database drops, which make
 * the pages concerned unknown again.
 *
 * Output: up to N (--show, default 20) mismatches and errors on stdout,
 * each with the record, the block and the first differing byte ranges;
 * then a table per resource manager; with --json, one JSON object as the
 * last line.  --dump FILE writes, for every page whose last change was
 * checked equal to its image, the page as redo left it (for comparing
 * tarnd's read path at END, tests/integration/test_regress.py): records of
 * spc, db, rel (u32 LE each), fork (u8), blkno (u32 LE), rmid (u8), the
 * record's end LSN (u64 LE), then the 8192-byte page.
 *
 * --minimal-mask masks only pd_lsn and pd_checksum (the logged image has
 * the LSN of the change before): hint bits and the like then differ, which
 * shows the comparison can fail.
 *
 * Exit status: 0 when nothing mismatched and redo raised no error, 1
 * otherwise (records without redo do not fail the run: the caller decides
 * which resource managers must be complete), 2 for usage errors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/core/types.h"
#include "storage/key.h"
#include "storage/pg/pgdefs.h"
#include "storage/pg/walrec.h"
#include "storage/redo/redo.h"
#include "storage/value.h"
#include "tests/tools/pgmask.h"
#include "tests/tools/waldir.h"

#define LSN_ARGS(x) (unsigned)((x) >> 32), (unsigned)(x)

/* A block's address. */
typedef struct pkey {
    uint32_t spc, db, rel, blk;
    uint8_t fork;
} pkey;

/* A page redocheck knows, in an open-addressing table. */
typedef struct pent {
    pkey k;
    bool used;
    bool exact;    /* the last change was checked equal to its image */
    uint8_t rmid;  /* of that change */
    tarn_lsn lsn;  /* its record's end */
    uint8_t *page; /* NULL: not known (never seen, truncated, dropped) */
} pent;

typedef struct rmstat {
    uint64_t records, redone, checked, mismatches, unsupported, errors, adopted,
        images;
} rmstat;

typedef struct check {
    walrec rec;
    tbuf val;
    pent *tab;
    size_t cap, used, known;
    redo_stats rst;
    rmstat rm[256];
    uint64_t records, vm_clears, invalidated, mask_refused;
    unsigned show, shown;
    bool minimal_mask; /* mask only pd_lsn and pd_checksum */
    uint8_t a[PG_BLCKSZ], b[PG_BLCKSZ];
} check;

static uint64_t
pkey_hash(const pkey *k)
{
    uint64_t h = 0x9E3779B97F4A7C15ull;

    h = (h ^ k->spc) * 0x100000001B3ull;
    h = (h ^ k->db) * 0x100000001B3ull;
    h = (h ^ k->rel) * 0x100000001B3ull;
    h = (h ^ k->fork) * 0x100000001B3ull;
    h = (h ^ k->blk) * 0x100000001B3ull;
    return h ^ (h >> 29);
}

static bool
pkey_eq(const pkey *a, const pkey *b)
{
    return a->spc == b->spc && a->db == b->db && a->rel == b->rel
           && a->fork == b->fork && a->blk == b->blk;
}

static pent *
find_slot(pent *tab, size_t cap, const pkey *k)
{
    size_t i = (size_t)pkey_hash(k) & (cap - 1);

    while (tab[i].used && !pkey_eq(&tab[i].k, k))
        i = (i + 1) & (cap - 1);
    return &tab[i];
}

/* The entry for @p k, created (unknown) if absent; NULL when out of
 * memory. */
static pent *
lookup(check *c, const pkey *k)
{
    pent *e;

    if ((c->used + 1) * 4 > c->cap * 3) {
        size_t ncap = c->cap ? c->cap * 2 : 1 << 16;
        pent *n = calloc(ncap, sizeof(*n));
        if (n == NULL)
            return NULL;
        for (size_t i = 0; i < c->cap; i++)
            if (c->tab[i].used)
                *find_slot(n, ncap, &c->tab[i].k) = c->tab[i];
        free(c->tab);
        c->tab = n, c->cap = ncap;
    }
    e = find_slot(c->tab, c->cap, k);
    if (!e->used) {
        memset(e, 0, sizeof(*e));
        e->used = true, e->k = *k;
        c->used++;
    }
    return e;
}

static void
forget(check *c, pent *e)
{
    if (e->page == NULL)
        return;
    free(e->page);
    e->page = NULL, e->exact = false;
    c->known--, c->invalidated++;
}

static bool
ensure_page(check *c, pent *e)
{
    if (e->page != NULL)
        return true;
    if ((e->page = malloc(PG_BLCKSZ)) == NULL)
        return false;
    c->known++;
    return true;
}

/* Report the first differing ranges of two masked pages. */
static void
print_diff(const uint8_t *got, const uint8_t *want)
{
    unsigned n = 0;

    for (unsigned i = 0; i < PG_BLCKSZ && n < 4;) {
        unsigned j = i;
        if (got[i] == want[i]) {
            i++;
            continue;
        }
        while (j < PG_BLCKSZ && got[j] != want[j])
            j++;
        printf("    bytes %u..%u differ: redo", i, j - 1);
        for (unsigned x = i; x < j && x < i + 12; x++)
            printf(" %02X", got[x]);
        printf(" | image");
        for (unsigned x = i; x < j && x < i + 12; x++)
            printf(" %02X", want[x]);
        printf("%s\n", j - i > 12 ? " ..." : "");
        n++, i = j;
    }
}

static void
report(check *c, const walrec *r, int id, const char *what, const char *msg)
{
    const walrec_block *b = &r->blocks[id];

    if (c->shown++ >= c->show)
        return;
    printf("%s: %s record (info 0x%02X) at %X/%08X..%X/%08X, block %d = "
           "rel %u/%u/%u fork %u blk %u%s%s\n",
           what, pg_rmgr_name(r->rmid), r->info, LSN_ARGS(r->start),
           LSN_ARGS(r->end), id, b->rel.spc, b->rel.db, b->rel.rel, b->fork,
           b->blkno, msg ? ": " : "", msg ? msg : "");
}

/* The logged image of block @p b becomes the page. */
static tarn_rc
adopt(check *c, pent *e, const walrec *r, const walrec_block *b, tarn_err *err)
{
    if (!ensure_page(c, e))
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    if (walrec_restore_image(b, e->page, err) != TARN_OK)
        return TARN_ECORRUPT;
    e->exact = false, e->rmid = r->rmid, e->lsn = r->end;
    return TARN_OK;
}

static tarn_rc
check_block(check *c, const walrec *r, int id, const walscan_rec *sr,
            tarn_err *err)
{
    const walrec_block *b = &r->blocks[id];
    rmstat *st = &c->rm[r->rmid];
    pkey k = {b->rel.spc, b->rel.db, b->rel.rel, b->blkno, b->fork};
    tkey key = tkey_rel_block(k.spc, k.db, k.rel, k.fork, k.blk);
    pent *e = lookup(c, &k);
    tarn_err rerr;
    tarn_rc rc;
    bool ok_a, ok_b;
    uint8_t mask_rmid;

    if (e == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    if (e->page == NULL && !b->will_init && !(b->has_image && b->apply)) {
        if (!b->has_image)
            return TARN_OK; /* unknown page, nothing to learn */
        st->adopted++;
        return adopt(c, e, r, b, err);
    }
    if (!ensure_page(c, e))
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    if (b->will_init || (b->has_image && b->apply))
        memset(e->page, 0, PG_BLCKSZ);
    if (tval_pgrec(&c->val, (uint8_t)id, b->will_init, sr->data, sr->tot_len,
                   err)
        != TARN_OK)
        return TARN_ENOMEM;
    rc =
        redo_apply(&c->rst, e->page, &key, r->end, c->val.p, c->val.len, &rerr);
    e->exact = false, e->rmid = r->rmid, e->lsn = r->end;
    if (rc == TARN_EUNSUPPORTED || rc != TARN_OK) {
        if (rc == TARN_EUNSUPPORTED)
            st->unsupported++;
        else {
            st->errors++;
            report(c, r, id, "ERROR", rerr.msg);
        }
        if (b->has_image)
            return adopt(c, e, r, b, err);
        forget(c, e);
        return TARN_OK;
    }
    if (b->has_image && b->apply) {
        /* Restored by redo_apply, as tarnd's reads do (with what some
         * resource managers change after the restore). */
        st->images++;
        return TARN_OK;
    }
    st->redone++;
    if (!b->has_image)
        return TARN_OK; /* wal_consistency_checking was off for it */
    memcpy(c->a, e->page, PG_BLCKSZ);
    if (walrec_restore_image(b, c->b, err) != TARN_OK)
        return TARN_ECORRUPT;
    mask_rmid = c->minimal_mask ? PG_RM_XLOG : r->rmid;
    ok_a = pgmask_page(mask_rmid, c->a, b->blkno);
    ok_b = pgmask_page(mask_rmid, c->b, b->blkno);
    if (!ok_a || !ok_b) {
        /* PostgreSQL would have stopped with an error here; compare the
         * pages whole. */
        c->mask_refused++;
        memcpy(c->a, e->page, PG_BLCKSZ);
        walrec_restore_image(b, c->b, err);
    }
    st->checked++;
    if (memcmp(c->a, c->b, PG_BLCKSZ) == 0) {
        e->exact = true;
        return TARN_OK;
    }
    st->mismatches++;
    report(c, r, id, "MISMATCH", NULL);
    if (c->shown <= c->show)
        print_diff(c->a, c->b);
    return adopt(c, e, r, b, err);
}

/* Heap records clear VM bits without a block reference to the VM page. */
static tarn_rc
mirror_vm_clears(check *c, const walrec *r, tarn_err *err)
{
    walrec_vmclear v[2];
    int n = walrec_heap_vm_clears(r, v, err);
    const walrec_block *b0 = &r->blocks[0];
    tarn_err rerr;

    if (n < 0)
        return TARN_ECORRUPT;
    for (int i = 0; i < n; i++) {
        pkey k = {b0->rel.spc, b0->rel.db, b0->rel.rel,
                  v[i].blkno / PG_VM_HEAPBLOCKS_PER_PAGE, PG_VM_FORKNUM};
        tkey key = tkey_rel_block(k.spc, k.db, k.rel, k.fork, k.blk);
        pent *e = lookup(c, &k);
        if (e == NULL)
            return tarn_err_set(err, TARN_ENOMEM, "out of memory");
        if (e->page == NULL)
            continue;
        if (tval_vmclear(&c->val, v[i].blkno, TVAL_NO_BLOCK, v[i].flags, err)
            != TARN_OK)
            return TARN_ENOMEM;
        if (redo_apply(&c->rst, e->page, &key, r->end, c->val.p, c->val.len,
                       &rerr)
            != TARN_OK) {
            c->rm[r->rmid].errors++;
            report(c, r, 0, "ERROR (VM clear)", rerr.msg);
            forget(c, e);
            continue;
        }
        e->exact = false, e->lsn = r->end;
        c->vm_clears++;
    }
    return TARN_OK;
}

/* Truncation and database drops: the pages concerned are unknown again
 * (a partly truncated VM page included: it is simply not checked until
 * its next image). */
static void
mirror_drops(check *c, const walrec *r)
{
    if (r->rmid == PG_RM_SMGR && (r->info & 0xF0) == PG_XLOG_SMGR_TRUNCATE
        && r->main_len >= PG_SMGR_TRUNCATE_SIZE) {
        const uint8_t *m = r->main_data;
        uint32_t blk = tarn_get_u32(m + PG_SMGR_TRUNCATE_BLKNO);
        uint32_t spc = tarn_get_u32(m + PG_SMGR_TRUNCATE_RNODE);
        uint32_t db = tarn_get_u32(m + PG_SMGR_TRUNCATE_RNODE + 4);
        uint32_t rel = tarn_get_u32(m + PG_SMGR_TRUNCATE_RNODE + 8);
        uint32_t flags = tarn_get_u32(m + PG_SMGR_TRUNCATE_FLAGS);
        for (size_t i = 0; i < c->cap; i++) {
            pent *e = &c->tab[i];
            if (!e->used || e->page == NULL || e->k.spc != spc || e->k.db != db
                || e->k.rel != rel)
                continue;
            if ((e->k.fork == PG_MAIN_FORKNUM && (flags & PG_SMGR_TRUNCATE_HEAP)
                 && e->k.blk >= blk)
                || (e->k.fork == PG_VM_FORKNUM && (flags & PG_SMGR_TRUNCATE_VM)
                    && e->k.blk >= blk / PG_VM_HEAPBLOCKS_PER_PAGE)
                || (e->k.fork == PG_FSM_FORKNUM
                    && (flags & PG_SMGR_TRUNCATE_FSM)))
                forget(c, e);
        }
    } else if (r->rmid == PG_RM_DBASE && (r->info & 0xF0) == PG_XLOG_DBASE_DROP
               && r->main_len >= PG_DBASE_DROP_HDR) {
        uint32_t db = tarn_get_u32(r->main_data);
        for (size_t i = 0; i < c->cap; i++)
            if (c->tab[i].used && c->tab[i].k.db == db)
                forget(c, &c->tab[i]);
    }
}

static tarn_rc
on_record(void *arg, const walscan_rec *sr, tarn_err *err)
{
    check *c = arg;
    walrec *r = &c->rec;
    tarn_rc rc;

    rc = walrec_decode(sr->data, sr->tot_len, sr->start, sr->end, r, err);
    if (rc != TARN_OK)
        return rc;
    c->records++;
    c->rm[r->rmid].records++;
    for (int i = 0; i <= r->max_block_id; i++) {
        if (!r->blocks[i].in_use)
            continue;
        if ((rc = check_block(c, r, i, sr, err)) != TARN_OK)
            return tarn_err_prefix(
                err, "record at %X/%08X, block %d: ", LSN_ARGS(r->start), i);
    }
    if (r->rmid == PG_RM_HEAP || r->rmid == PG_RM_HEAP2)
        if ((rc = mirror_vm_clears(c, r, err)) != TARN_OK)
            return rc;
    mirror_drops(c, r);
    return TARN_OK;
}

static tarn_rc
dump_pages(check *c, const char *path, size_t *n, tarn_err *err)
{
    FILE *f = fopen(path, "wb");
    uint8_t hdr[26];

    *n = 0;
    if (f == NULL)
        return tarn_err_errno(err, errno, "open %s", path);
    for (size_t i = 0; i < c->cap; i++) {
        const pent *e = &c->tab[i];
        if (!e->used || e->page == NULL || !e->exact)
            continue;
        tarn_put_u32(hdr, e->k.spc);
        tarn_put_u32(hdr + 4, e->k.db);
        tarn_put_u32(hdr + 8, e->k.rel);
        hdr[12] = e->k.fork;
        tarn_put_u32(hdr + 13, e->k.blk);
        hdr[17] = e->rmid;
        tarn_put_u32(hdr + 18, (uint32_t)e->lsn);
        tarn_put_u32(hdr + 22, (uint32_t)(e->lsn >> 32));
        if (fwrite(hdr, sizeof(hdr), 1, f) != 1
            || fwrite(e->page, PG_BLCKSZ, 1, f) != 1) {
            fclose(f);
            return tarn_err_errno(err, errno, "write %s", path);
        }
        (*n)++;
    }
    if (fclose(f) != 0)
        return tarn_err_errno(err, errno, "write %s", path);
    return TARN_OK;
}

static void
print_summary(const check *c, bool json, double secs, tarn_lsn stop,
              size_t dumped)
{
    rmstat t = {0};

    printf("%-12s %10s %10s %10s %8s %8s %6s %8s %8s\n", "rmgr", "records",
           "redone", "checked", "mismatch", "no_redo", "errors", "adopted",
           "images");
    for (int i = 0; i < 256; i++) {
        const rmstat *s = &c->rm[i];
        if (s->records == 0)
            continue;
        printf("%-12s %10llu %10llu %10llu %8llu %8llu %6llu %8llu %8llu\n",
               pg_rmgr_name((uint8_t)i), (unsigned long long)s->records,
               (unsigned long long)s->redone, (unsigned long long)s->checked,
               (unsigned long long)s->mismatches,
               (unsigned long long)s->unsupported,
               (unsigned long long)s->errors, (unsigned long long)s->adopted,
               (unsigned long long)s->images);
        t.records += s->records, t.redone += s->redone;
        t.checked += s->checked, t.mismatches += s->mismatches;
        t.unsupported += s->unsupported, t.errors += s->errors;
        t.adopted += s->adopted, t.images += s->images;
    }
    printf("%-12s %10llu %10llu %10llu %8llu %8llu %6llu %8llu %8llu\n",
           "total", (unsigned long long)t.records, (unsigned long long)t.redone,
           (unsigned long long)t.checked, (unsigned long long)t.mismatches,
           (unsigned long long)t.unsupported, (unsigned long long)t.errors,
           (unsigned long long)t.adopted, (unsigned long long)t.images);
    printf("stop %X/%08X; %.1f s; %zu pages known at the end; %llu VM "
           "clears mirrored; %llu pages forgotten by truncation or drop; "
           "%llu masks refused\n",
           LSN_ARGS(stop), secs, c->known, (unsigned long long)c->vm_clears,
           (unsigned long long)c->invalidated,
           (unsigned long long)c->mask_refused);
    if (!json)
        return;
    printf("{\"stop\": \"%X/%08X\", \"seconds\": %.2f, \"pages\": %zu, "
           "\"dumped\": %zu, \"vm_clears\": %llu, \"masks_refused\": %llu, "
           "\"rmgrs\": {",
           LSN_ARGS(stop), secs, c->known, dumped,
           (unsigned long long)c->vm_clears,
           (unsigned long long)c->mask_refused);
    for (int i = 0, first = 1; i < 256; i++) {
        const rmstat *s = &c->rm[i];
        if (s->records == 0)
            continue;
        printf(
            "%s\"%s\": {\"records\": %llu, \"redone\": %llu, "
            "\"checked\": %llu, \"mismatches\": %llu, \"unsupported\": "
            "%llu, \"errors\": %llu, \"adopted\": %llu, \"images\": %llu}",
            first ? "" : ", ", pg_rmgr_name((uint8_t)i),
            (unsigned long long)s->records, (unsigned long long)s->redone,
            (unsigned long long)s->checked, (unsigned long long)s->mismatches,
            (unsigned long long)s->unsupported, (unsigned long long)s->errors,
            (unsigned long long)s->adopted, (unsigned long long)s->images);
        first = 0;
    }
    printf("}}\n");
}

static int
usage(void)
{
    fprintf(
        stderr,
        "usage: redocheck [--dump FILE] [--show N] [--json] [--minimal-mask] "
        "WALDIR START_LSN END_LSN\n");
    return 2;
}

int
main(int argc, char **argv)
{
    const char *dump = NULL, *pos[3];
    bool json = false, minimal_mask = false;
    int npos = 0, status = 0;
    tarn_lsn start, end, stop = 0;
    struct timespec t0, t1;
    size_t dumped = 0;
    unsigned show = 20;
    check *c;
    tarn_err e;
    tarn_rc rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dump") == 0 && i + 1 < argc)
            dump = argv[++i];
        else if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--minimal-mask") == 0)
            minimal_mask = true;
        else if (strcmp(argv[i], "--show") == 0 && i + 1 < argc)
            show = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (argv[i][0] == '-' || npos == 3)
            return usage();
        else
            pos[npos++] = argv[i];
    }
    if (npos != 3)
        return usage();
    if (tarn_lsn_parse(pos[1], &start, &e) != TARN_OK
        || tarn_lsn_parse(pos[2], &end, &e) != TARN_OK) {
        fprintf(stderr, "redocheck: %s\n", e.msg);
        return 2;
    }
    if (end < start) {
        fprintf(stderr, "redocheck: END_LSN is before START_LSN\n");
        return 2;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        fprintf(stderr, "redocheck: out of memory\n");
        return 1;
    }
    c->show = show, c->minimal_mask = minimal_mask;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = waldir_feed(pos[0], start, end, on_record, c, &stop, &e);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc == TARN_OK && dump != NULL)
        rc = dump_pages(c, dump, &dumped, &e);
    if (rc != TARN_OK) {
        fprintf(stderr, "redocheck: %s\n", e.msg);
        status = 1;
    } else {
        print_summary(c, json,
                      (double)(t1.tv_sec - t0.tv_sec)
                          + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
                      stop, dumped);
        for (int i = 0; i < 256; i++)
            if (c->rm[i].mismatches || c->rm[i].errors)
                status = 1;
    }
    fflush(stdout);
    for (size_t i = 0; i < c->cap; i++)
        free(c->tab[i].page);
    free(c->tab);
    tbuf_free(&c->val);
    free(c);
    return status;
}
