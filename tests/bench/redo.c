/*
 * redo.c - the cost of tarn's native redo, straight into redo_apply().
 *
 *   redo PG_WAL_DIR START_LSN END_LSN [ROUNDS]
 *
 * Reads the WAL of [START_LSN, END_LSN) (START_LSN a segment start; the
 * scanner skips the record it starts inside) and turns it into the values
 * tarn stores: for every block reference, the full-page image when the
 * record applies one, else the record as a PGREC value.  A block's values
 * are kept from its first image or will_init record on, so that each
 * applies to a known page.
 *
 * 1. Replay on cached pages: all values applied in WAL order to pages in
 *    memory, ROUNDS times; each PGREC apply is timed on its own (less the
 *    timer's own cost, measured first) and summed per resource manager.
 *    Prints records per second per core for Heap/Heap2 and Btree.  Pages
 *    where a value fails (redo tarn lacks) are left out of the timed
 *    rounds, and counted.
 * 2. Reconstruction: for pages with an image followed by at least 100
 *    records, the time to rebuild the page from the image plus 1, 10 and
 *    100 of them (p50 and p99 over those pages).
 * 3. Handoff: the round trip of an empty job from a libevent reactor to
 *    the worker pool and back (what a read pays to run its redo off the
 *    reactor), and the number of heap records whose redo costs as much:
 *    the basis of redo_inline_max.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "server/core/wpool.h"
#include "storage/key.h"
#include "storage/pg/pgdefs.h"
#include "storage/pg/walrec.h"
#include "storage/pg/walscan.h"
#include "storage/redo/redo.h"
#include "storage/value.h"

enum { K_IMAGE, K_HEAP, K_BTREE, K_OTHER, K_N };
static const char *const kind_names[K_N] = {"image", "heap", "btree", "other"};

typedef struct op {
    uint32_t page;
    uint8_t kind;
    size_t off;
    uint32_t len;
    tarn_lsn lsn;
    tkey key;
} op;

typedef struct page_slot {
    bool used, known, failed;
    uint32_t spc, db, rel, blk;
    uint8_t fork;
} page_slot;

static struct {
    op *ops;
    size_t nops, capops;
    uint8_t *pool;
    size_t npool, cappool;
    page_slot *slots;
    size_t nslots; /* power of two */
    uint8_t (*pages)[PG_BLCKSZ];
    uint32_t *page_of_slot;
    uint32_t npages, cappages;
} B;

static void
die(const char *msg)
{
    fprintf(stderr, "redo bench: %s\n", msg);
    exit(1);
}

static int64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The page index of a block, created on first sight. */
static uint32_t
page_for(const walrec_block *b, page_slot **out)
{
    uint64_t h = (uint64_t)b->rel.rel * 0x9E3779B97F4A7C15ULL
                 ^ ((uint64_t)b->blkno << 3 | b->fork) * 0xC2B2AE3D27D4EB4FULL
                 ^ b->rel.db;
    size_t i = (size_t)(h ^ (h >> 29)) & (B.nslots - 1);

    for (;; i = (i + 1) & (B.nslots - 1)) {
        page_slot *s = &B.slots[i];
        if (!s->used) {
            if (B.npages == B.cappages)
                die("too many pages; shorten the WAL range");
            *s = (page_slot){.used = true,
                             .spc = b->rel.spc,
                             .db = b->rel.db,
                             .rel = b->rel.rel,
                             .blk = b->blkno,
                             .fork = b->fork};
            B.page_of_slot[i] = B.npages++;
            *out = s;
            return B.page_of_slot[i];
        }
        if (s->spc == b->rel.spc && s->db == b->rel.db && s->rel == b->rel.rel
            && s->blk == b->blkno && s->fork == b->fork) {
            *out = s;
            return B.page_of_slot[i];
        }
    }
}

static void
add_op(uint32_t page, uint8_t kind, const tbuf *v, const tkey *k, tarn_lsn lsn)
{
    if (B.nops == B.capops) {
        B.capops = B.capops ? B.capops * 2 : 1 << 16;
        B.ops = realloc(B.ops, B.capops * sizeof(op));
    }
    while (B.npool + v->len > B.cappool) {
        B.cappool = B.cappool ? B.cappool * 2 : 1 << 24;
        B.pool = realloc(B.pool, B.cappool);
    }
    if (B.ops == NULL || B.pool == NULL)
        die("out of memory");
    memcpy(B.pool + B.npool, v->p, v->len);
    B.ops[B.nops++] = (op){.page = page,
                           .kind = kind,
                           .off = B.npool,
                           .len = (uint32_t)v->len,
                           .lsn = lsn,
                           .key = *k};
    B.npool += v->len;
}

static tarn_rc
on_record(void *arg, const walscan_rec *rec, tarn_err *err)
{
    static walrec w;
    static uint8_t img[PG_BLCKSZ];
    tbuf *v = arg;
    tarn_rc rc;

    if (rec->rmid != PG_RM_HEAP && rec->rmid != PG_RM_HEAP2
        && rec->rmid != PG_RM_BTREE && rec->rmid != PG_RM_XLOG)
        return TARN_OK;
    rc = walrec_decode(rec->data, rec->tot_len, rec->start, rec->end, &w, err);
    if (rc != TARN_OK)
        return rc;
    for (int id = 0; id <= w.max_block_id; id++) {
        const walrec_block *b = &w.blocks[id];
        page_slot *s;
        uint32_t p;
        tkey k;
        if (!b->in_use)
            continue;
        p = page_for(b, &s);
        k = tkey_rel_block(b->rel.spc, b->rel.db, b->rel.rel, b->fork,
                           b->blkno);
        if (b->has_image && b->apply) {
            if ((rc = walrec_restore_image(b, img, err)) != TARN_OK
                || (rc = tval_image(v, img, PG_BLCKSZ, err)) != TARN_OK)
                return rc;
            add_op(p, K_IMAGE, v, &k, rec->end);
            s->known = true;
        } else if (s->known || b->will_init) {
            uint8_t kind = w.rmid == PG_RM_BTREE ? K_BTREE
                           : (w.rmid == PG_RM_HEAP || w.rmid == PG_RM_HEAP2)
                               ? K_HEAP
                               : K_OTHER;
            if ((rc = tval_pgrec(v, (uint8_t)id, b->will_init, rec->data,
                                 rec->tot_len, err))
                != TARN_OK)
                return rc;
            add_op(p, kind, v, &k, rec->end);
            s->known = true;
        }
    }
    return TARN_OK;
}

static void
read_wal(const char *dir, tarn_lsn start, tarn_lsn end)
{
    const uint32_t seg = 16u << 20;
    walscan_opts o = {
        .seg_size = seg, .start = start, .mid_record = true, .assemble = true};
    uint8_t *buf = malloc(seg);
    tarn_err err = {0};
    walscan *s;
    tbuf v = {0};

    if (buf == NULL || walscan_create(&o, &s, &err) != TARN_OK)
        die(err.msg);
    for (tarn_lsn pos = start; pos < end; pos += seg) {
        char path[4096];
        ssize_t n;
        size_t want = end - pos < seg ? (size_t)(end - pos) : seg;
        int fd;
        snprintf(path, sizeof(path), "%s/%08X%08X%08X", dir, 1,
                 (uint32_t)(pos / seg / 256), (uint32_t)(pos / seg % 256));
        if ((fd = open(path, O_RDONLY)) < 0)
            die(strerror(errno));
        n = pread(fd, buf, want, 0);
        close(fd);
        if (n != (ssize_t)want)
            die("short read of a WAL segment");
        if (walscan_feed(s, buf, want, on_record, &v, &err) != TARN_OK)
            die(err.msg);
    }
    walscan_destroy(s);
    tbuf_free(&v);
    free(buf);
}

/* One handoff: submitted at t0, done on the reactor. */
typedef struct handoff {
    struct event_base *base;
    int64_t t0, spent;
} handoff;

static void
handoff_work(void *arg)
{
    (void)arg;
}

static void
handoff_done(void *arg)
{
    handoff *h = arg;

    h->spent = now_ns() - h->t0;
    event_base_loopbreak(h->base);
}

/* p50 of an empty job's round trip through the worker pool, in ns. */
static int64_t measure_handoff(int threads, int n, int64_t *p99);

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static redo_stats st;

static int64_t
measure_handoff(int threads, int n, int64_t *p99)
{
    struct event_base *base;
    wpool *pool;
    tarn_err err;
    int64_t *lat = malloc(sizeof(int64_t) * (size_t)n), p50;
    handoff h;

    if (lat == NULL || evthread_use_pthreads() != 0
        || (base = event_base_new()) == NULL)
        die("cannot set up a reactor");
    if (wpool_create(base, threads, &pool, &err) != TARN_OK)
        die(err.msg);
    h.base = base;
    for (int i = 0; i < n; i++) {
        h.t0 = now_ns();
        if (wpool_submit(pool, handoff_work, handoff_done, &h) != TARN_OK)
            die("wpool_submit failed");
        event_base_dispatch(base);
        lat[i] = h.spent;
    }
    wpool_destroy(pool);
    event_base_free(base);
    qsort(lat, (size_t)n, sizeof(int64_t), cmp_i64);
    p50 = lat[n / 2];
    *p99 = lat[n * 99 / 100];
    free(lat);
    return p50;
}

static tarn_rc
apply_op(const op *o, tarn_err *err)
{
    return redo_apply(&st, B.pages[o->page], &o->key, o->lsn, B.pool + o->off,
                      o->len, err);
}

int
main(int argc, char **argv)
{
    tarn_lsn start, end;
    tarn_err err = {0};
    int rounds = argc > 4 ? atoi(argv[4]) : 5;
    size_t counted[K_N] = {0}, failed[K_N] = {0};
    int64_t timer = INT64_MAX;
    double rate[K_N][32];
    double per_record = 0;

    if (argc < 4 || rounds < 1 || rounds > 32) {
        fprintf(stderr, "usage: redo PG_WAL_DIR START_LSN END_LSN [ROUNDS]\n");
        return 2;
    }
    if (tarn_lsn_parse(argv[2], &start, &err) != TARN_OK
        || tarn_lsn_parse(argv[3], &end, &err) != TARN_OK)
        die(err.msg);
    /* Up to 48k pages (384 MiB) in memory at once. */
    B.nslots = 1 << 17;
    B.cappages = 48 * 1024;
    B.slots = calloc(B.nslots, sizeof(page_slot));
    B.page_of_slot = calloc(B.nslots, sizeof(uint32_t));
    B.pages = malloc((size_t)B.cappages * PG_BLCKSZ);
    if (B.slots == NULL || B.page_of_slot == NULL || B.pages == NULL)
        die("out of memory");
    read_wal(argv[1], start, end);

    /* Which pages redo can rebuild all the way; the others are left out
     * of the timed rounds. */
    {
        bool *bad = calloc(B.npages, 1);
        memset(B.pages, 0, (size_t)B.npages * PG_BLCKSZ);
        for (size_t i = 0; i < B.nops; i++) {
            const op *o = &B.ops[i];
            if (bad[o->page])
                continue;
            if (apply_op(o, &err) != TARN_OK) {
                bad[o->page] = true;
                failed[o->kind]++;
                if (failed[o->kind] == 1)
                    fprintf(stderr, "first %s failure: %s\n",
                            kind_names[o->kind], err.msg);
            }
        }
        for (size_t i = 0; i < B.nops; i++)
            if (bad[B.ops[i].page])
                B.ops[i].kind |= 0x80;
        free(bad);
    }
    for (int i = 0; i < 1000; i++) {
        int64_t a = now_ns(), b = now_ns();
        if (b - a < timer)
            timer = b - a;
    }

    for (int r = 0; r < rounds; r++) {
        int64_t spent[K_N] = {0};
        size_t n[K_N] = {0};
        memset(B.pages, 0, (size_t)B.npages * PG_BLCKSZ);
        for (size_t i = 0; i < B.nops; i++) {
            const op *o = &B.ops[i];
            int64_t t0;
            if (o->kind & 0x80)
                continue;
            t0 = now_ns();
            if (apply_op(o, &err) != TARN_OK)
                die(err.msg);
            spent[o->kind] += now_ns() - t0 - timer;
            n[o->kind]++;
        }
        for (int k = 0; k < K_N; k++) {
            counted[k] = n[k];
            rate[k][r] = spent[k] > 0 ? n[k] * 1e9 / (double)spent[k] : 0;
        }
    }
    printf("WAL %s..%s: %zu values on %u pages (timer cost %lld ns, "
           "subtracted)\n",
           argv[2], argv[3], B.nops, B.npages, (long long)timer);
    for (int k = 0; k < K_N; k++) {
        double xs[32];
        memcpy(xs, rate[k], sizeof(double) * (size_t)rounds);
        for (int i = 1; i < rounds; i++)
            for (int j = i; j > 0 && xs[j - 1] > xs[j]; j--) {
                double t = xs[j];
                xs[j] = xs[j - 1];
                xs[j - 1] = t;
            }
        printf("%-6s %9zu applied  %12.0f per second (median of %d)  "
               "%zu pages left out at a failure\n",
               kind_names[k], counted[k], xs[rounds / 2], rounds, failed[k]);
    }

    /* Reconstruction: image + N deltas. */
    {
        enum { MAXS = 400 };
        size_t starts[MAXS], ns = 0;
        int depths[] = {1, 10, 100};
        size_t *next = malloc(sizeof(size_t) * B.nops);
        size_t *last = malloc(sizeof(size_t) * B.npages);
        if (next == NULL || last == NULL)
            die("out of memory");
        /* Chain each op to its page's next op. */
        for (uint32_t p = 0; p < B.npages; p++)
            last[p] = SIZE_MAX;
        for (size_t i = B.nops; i-- > 0;) {
            next[i] = last[B.ops[i].page];
            last[B.ops[i].page] = i;
        }
        for (size_t i = 0; i < B.nops && ns < MAXS; i++) {
            size_t j = next[i];
            int d = 0;
            if (B.ops[i].kind != K_IMAGE)
                continue;
            while (j != SIZE_MAX && d < 100 && B.ops[j].kind == K_HEAP)
                j = next[j], d++;
            if (d == 100)
                starts[ns++] = i;
        }
        for (int di = 0; di < 3; di++) {
            int64_t p50;
            int64_t *lat = malloc(sizeof(int64_t) * (ns ? ns : 1) * 5);
            size_t nl = 0;
            for (size_t s = 0; s < ns; s++)
                for (int rep = 0; rep < 5; rep++) {
                    size_t j = starts[s];
                    int64_t t0 = now_ns();
                    for (int d = 0; d <= depths[di]; d++) {
                        if (apply_op(&B.ops[j], &err) != TARN_OK)
                            die(err.msg);
                        j = next[j];
                    }
                    lat[nl++] = now_ns() - t0 - timer;
                }
            qsort(lat, nl, sizeof(int64_t), cmp_i64);
            p50 = nl > 0 ? lat[nl / 2] : 0;
            if (depths[di] == 100)
                per_record = p50 / 100.0;
            if (nl > 0)
                printf("reconstruct image + %3d heap records: p50 %7.2f us, "
                       "p99 %7.2f us (%zu pages x 5)\n",
                       depths[di], lat[nl / 2] / 1e3, lat[nl * 99 / 100] / 1e3,
                       ns);
            else
                printf("reconstruct image + %3d: no page has such a chain\n",
                       depths[di]);
            free(lat);
        }
        free(next);
        free(last);
    }

    /* What leaving the reactor costs. */
    {
        int64_t p99, p50 = measure_handoff(2, 20000, &p99);
        printf("handoff to the worker pool and back: p50 %.2f us, p99 %.2f "
               "us (20000 empty jobs, 2 workers)\n",
               p50 / 1e3, p99 / 1e3);
        if (per_record > 0)
            printf("heap redo: %.3f us per record (image + 100, p50): a "
                   "handoff costs as much as %.0f records\n",
                   per_record / 1e3, p50 / per_record);
    }
    return 0;
}
