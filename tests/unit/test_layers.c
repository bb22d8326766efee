/*
 * test_layers.c - the in-memory layer, layer files (write, read, index
 * across blocks, Bloom filter, corruption), the page cache, and the
 * timeline read path over open, frozen, delta and image layers and an
 * ancestor.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/core/fsutil.h"
#include "storage/layerfile.h"
#include "storage/memlayer.h"
#include "storage/pagecache.h"
#include "storage/timeline.h"
#include "storage/value.h"

static char dir[] = "/tmp/tarn-test-layers-XXXXXX";

static int
setup(void **state)
{
    (void)state;
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
    tarn_err err;

    (void)state;
    return tarn_rmtree(dir, &err) == TARN_OK ? 0 : -1;
}

/* An 8 KiB image value whose bytes all equal @p fill. */
static void
page_value(tbuf *b, uint8_t fill)
{
    uint8_t page[8192];
    tarn_err err;

    memset(page, fill, sizeof(page));
    assert_int_equal(tval_image(b, page, sizeof(page), &err), TARN_OK);
}

static void
test_key_format(void **state)
{
    tkey k = tkey_rel_block(1663, 5, 16384, 0, 7), p;
    char buf[TKEY_STRLEN], d[128];
    tarn_err err;

    (void)state;
    assert_string_equal(tkey_format(&k, buf),
                        "000000067F00000005000040000000000007");
    assert_int_equal(tkey_parse(buf, &p, &err), TARN_OK);
    assert_true(tkey_eq(&k, &p));
    assert_int_equal(tkey_parse("00", &p, &err), TARN_EINVAL);
    assert_string_equal(tkey_describe(&k, d, sizeof(d)),
                        "rel 1663/5/16384 fork 0 blk 7");
    /* The size key sorts right after the last block. */
    p = tkey_rel_size(1663, 5, 16384, 0);
    assert_true(tkey_cmp(&k, &p) < 0);
    k = tkey_rel_block(1663, 5, 16384, 1, 0);
    assert_true(tkey_cmp(&p, &k) < 0);
    k = tkey_next(&p);
    assert_true(tkey_cmp(&p, &k) < 0);
}

static void
test_memlayer(void **state)
{
    memlayer *m;
    tarn_err err;
    tkey a = tkey_rel_block(1663, 5, 1, 0, 0),
         b = tkey_rel_block(1663, 5, 1, 0, 1);
    uint8_t rec[TVAL_PGREC_HDR + 24] = {TVAL_PGREC, 0, 0};
    tbuf img = {0};
    vcollect c;
    memlayer_iter it;
    tkey k;
    tarn_lsn lsn;
    const uint8_t *v;
    uint32_t len;
    bool wi;
    int n = 0;

    (void)state;
    page_value(&img, 1);
    assert_int_equal(memlayer_create(100, NULL, &m, &err), TARN_OK);
    assert_int_equal(memlayer_put(m, &a, 100, img.p, img.len, &err), TARN_OK);
    assert_int_equal(memlayer_put(m, &a, 110, rec, sizeof(rec), &err), TARN_OK);
    assert_int_equal(memlayer_put(m, &a, 120, rec, sizeof(rec), &err), TARN_OK);
    assert_int_equal(memlayer_put(m, &b, 115, rec, sizeof(rec), &err), TARN_OK);
    /* Newest first, stopping at the image. */
    vcollect_init(&c);
    assert_int_equal(memlayer_collect(m, &a, 0, 119, &c, &err), TARN_OK);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.v[0].lsn, 110);
    assert_int_equal(c.v[1].lsn, 100);
    assert_true(c.complete);
    vcollect_free(&c);
    vcollect_init(&c);
    assert_int_equal(memlayer_collect(m, &a, 105, 200, &c, &err), TARN_OK);
    assert_int_equal(c.n, 2);
    assert_false(c.complete);
    vcollect_free(&c);
    memlayer_freeze(m, 121);
    assert_int_equal(memlayer_iter_begin(m, &it, &err), TARN_OK);
    while (memlayer_iter_next(&it, &k, &lsn, &v, &len, &wi)) {
        if (n < 3)
            assert_true(tkey_eq(&k, &a));
        else
            assert_true(tkey_eq(&k, &b));
        assert_int_equal(wi, n == 0);
        n++;
    }
    memlayer_iter_end(&it);
    assert_int_equal(n, 4);
    memlayer_unref(m);
    tbuf_free(&img);
}

/* Chunks of freed layers are kept up to the pool's limit and reused. */
static void
test_memlayer_pool(void **state)
{
    memlayer_pool *pool;
    memlayer *m;
    tarn_err err;
    static uint8_t val[4096];
    const tarn_lsn mib = 1 << 20;

    (void)state;
    assert_int_equal(memlayer_pool_create(2 << 20, &pool, &err), TARN_OK);
    assert_int_equal(memlayer_create(1, pool, &m, &err), TARN_OK);
    /* Four chunks' worth of values (the arena never splits a value). */
    for (uint32_t i = 0; i < 4 * 256; i++) {
        tkey k = tkey_rel_block(1663, 5, 16384, 0, i);
        memset(val, (int)i, sizeof(val));
        assert_int_equal(
            memlayer_put(m, &k, 1 + i, val, sizeof(val) - 64, &err), TARN_OK);
    }
    assert_true(memlayer_bytes(m) >= 4 * mib);
    assert_int_equal(memlayer_pool_bytes(pool), 0);
    memlayer_unref(m);
    assert_int_equal(memlayer_pool_bytes(pool), 2 << 20); /* kept: two */
    assert_int_equal(memlayer_create(1, pool, &m, &err), TARN_OK);
    {
        tkey k = tkey_rel_block(1663, 5, 16384, 0, 0);
        assert_int_equal(memlayer_put(m, &k, 1, val, 100, &err), TARN_OK);
    }
    assert_int_equal(memlayer_pool_bytes(pool), 1 << 20); /* one reused */
    memlayer_pool_set_keep(pool, 0);
    assert_int_equal(memlayer_pool_bytes(pool), 0);
    memlayer_unref(m);
    assert_int_equal(memlayer_pool_bytes(pool), 0);
    memlayer_pool_destroy(pool);
    memlayer_pool_destroy(NULL);
}

static void
test_pagecache(void **state)
{
    pagecache *pc;
    pc_key k;
    uint8_t blk[8192], out[8192];
    tarn_err err;
    pagecache_stats st;

    (void)state;
    assert_int_equal(pagecache_create(16 * 8192, &pc, &err), TARN_OK);
    memset(&k, 0, sizeof(k));
    k.kind = PC_INDEX;
    /* Fill well past capacity: every get of a recent entry must hit. */
    for (int i = 0; i < 100; i++) {
        k.num = (uint64_t)i;
        memset(blk, i, sizeof(blk));
        pagecache_put(pc, NULL, &k, blk);
        assert_true(pagecache_get(pc, NULL, &k, out));
        assert_int_equal(out[100], (uint8_t)i);
    }
    k.num = 0;
    assert_false(pagecache_get(pc, NULL, &k, out));
    pagecache_get_stats(pc, &st);
    assert_int_equal(st.slots, 16);
    assert_int_equal(st.hits[PC_INDEX], 100);
    assert_int_equal(st.misses[PC_INDEX], 1);
    assert_true(st.evictions >= 84);
    pagecache_destroy(pc);
}

static pc_key
index_block(uint64_t file, uint64_t num)
{
    pc_key k;

    memset(&k, 0, sizeof(k));
    k.kind = PC_INDEX;
    k.id = file;
    k.num = num;
    return k;
}

/* A bulk pass through a ring neither grows the cache nor evicts the
 * blocks that shared readers keep hot. */
static void
test_pagecache_ring(void **state)
{
    pagecache *pc;
    pc_ring *ring;
    pc_key k;
    uint8_t blk[8192], out[8192];
    tarn_err err;
    pagecache_stats st;

    (void)state;
    assert_int_equal(pagecache_create(64 * 8192, &pc, &err), TARN_OK);
    memset(blk, 7, sizeof(blk));
    for (uint64_t i = 0; i < 8; i++) {
        k = index_block(1, i);
        pagecache_put(pc, NULL, &k, blk);
        assert_true(pagecache_get(pc, NULL, &k, out));
    }
    assert_int_equal(pagecache_ring_create(pc, 4, &ring, &err), TARN_OK);
    for (uint64_t i = 0; i < 1000; i++) {
        k = index_block(2, i);
        memset(blk, (int)(i & 0xff), sizeof(blk));
        pagecache_put(pc, ring, &k, blk);
        assert_true(pagecache_get(pc, ring, &k, out));
        assert_int_equal(out[9], (uint8_t)(i & 0xff));
    }
    pagecache_get_stats(pc, &st);
    assert_int_equal(st.used, 8 + 4); /* the ring's 4 slots, reused */
    assert_int_equal(st.evictions, 0);
    for (uint64_t i = 0; i < 8; i++) {
        k = index_block(1, i);
        assert_true(pagecache_get(pc, NULL, &k, out));
    }
    for (uint64_t i = 996; i < 1000; i++) {
        k = index_block(2, i);
        assert_true(pagecache_get(pc, ring, &k, out));
    }
    k = index_block(2, 995);
    assert_false(pagecache_get(pc, ring, &k, out));

    /* A block a shared reader hits is left to the shared cache. */
    k = index_block(3, 0);
    pagecache_put(pc, ring, &k, blk);
    assert_true(pagecache_get(pc, NULL, &k, out));
    for (uint64_t i = 1; i <= 8; i++) {
        pc_key o = index_block(3, i);
        pagecache_put(pc, ring, &o, blk);
    }
    assert_true(pagecache_get(pc, NULL, &k, out));
    pagecache_get_stats(pc, &st);
    assert_int_equal(st.used, 8 + 4 + 1);
    pagecache_ring_destroy(ring);
    pagecache_ring_destroy(NULL);

    /* Its slots are freed, but for the one a shared reader hit... */
    assert_true(pagecache_get(pc, NULL, &k, out));
    k = index_block(3, 8);
    assert_false(pagecache_get(pc, NULL, &k, out));
    pagecache_get_stats(pc, &st);
    assert_int_equal(st.used, 8 + 1);
    /* ...and the next ring takes them again instead of fresh memory. */
    assert_int_equal(pagecache_ring_create(pc, 4, &ring, &err), TARN_OK);
    for (uint64_t i = 0; i < 100; i++) {
        k = index_block(5, i);
        pagecache_put(pc, ring, &k, blk);
    }
    pagecache_get_stats(pc, &st);
    assert_int_equal(st.used, 8 + 1 + 4);
    assert_int_equal(st.touched, 8 + 1 + 4);
    pagecache_ring_destroy(ring);
    pagecache_get_stats(pc, &st);
    assert_int_equal(st.used, 8 + 1);
    assert_int_equal(st.touched, 8 + 1 + 4);

    /* A ring never takes most of a small cache. */
    pagecache_destroy(pc);
    assert_int_equal(pagecache_create(16 * 8192, &pc, &err), TARN_OK);
    assert_int_equal(pagecache_ring_create(pc, 1000, &ring, &err), TARN_OK);
    for (uint64_t i = 0; i < 100; i++) {
        k = index_block(4, i);
        pagecache_put(pc, ring, &k, blk);
    }
    pagecache_get_stats(pc, &st);
    assert_int_equal(st.used, 16 / 4 + 1);
    pagecache_ring_destroy(ring);
    pagecache_destroy(pc);
}

/* Write a delta layer with many versions of a few keys, spanning many
 * index blocks, and read each key back at several LSNs; with @p codec. */
static void
layer_roundtrip(tarn_codec codec)
{
    layerw_opts o = {.dir = dir,
                     .kind = LAYER_DELTA,
                     .lsn_start = 1000,
                     .lsn_end = 100000,
                     .codec = codec};
    layerw *w;
    layer *l;
    pagecache *pc;
    layer_desc d;
    char name[LAYER_NAME_MAX];
    tarn_err err;
    tbuf img = {0}, out = {0};
    uint8_t rec[TVAL_PGREC_HDR + 40];
    vcollect c;
    bool present;
    char path[1024];

    memset(rec, 0, sizeof(rec));
    rec[0] = TVAL_PGREC;
    assert_int_equal(pagecache_create(1 << 20, &pc, &err), TARN_OK);
    assert_int_equal(layerw_create(&o, &w, &err), TARN_OK);
    for (uint32_t key = 0; key < 4; key++) {
        tkey k = tkey_rel_block(1663, 5, 100, 0, key);
        /* An image every 100 LSNs, records in between: 1000 values. */
        for (uint32_t i = 0; i < 1000; i++) {
            tarn_lsn lsn = 1000 + i * 10;
            if (i % 100 == 0) {
                page_value(&img, (uint8_t)(i / 100));
                assert_int_equal(
                    layerw_add(w, &k, lsn, img.p, img.len, true, &err),
                    TARN_OK);
            } else {
                rec[3] = (uint8_t)i;
                assert_int_equal(
                    layerw_add(w, &k, lsn, rec, sizeof(rec), false, &err),
                    TARN_OK);
            }
        }
    }
    /* Out of order is refused. */
    {
        tkey k = tkey_rel_block(1663, 5, 100, 0, 0);
        assert_int_equal(layerw_add(w, &k, 5000, rec, sizeof(rec), false, &err),
                         TARN_EINVAL);
    }
    if (layerw_finish(w, NULL, NULL, &d, name, &err) != TARN_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(d.nvalues, 4000);
    assert_int_equal(layer_open(dir, name, &d, pc, &l, &err), TARN_OK);
    snprintf(path, sizeof(path), "%s/%s", dir, name);

    for (uint32_t key = 0; key < 4; key++) {
        tkey k = tkey_rel_block(1663, 5, 100, 0, key);
        assert_true(layer_may_contain(l, &k));
        vcollect_init(&c);
        /* At 1000 + 250*10 the history is the image at i=200 plus 50. */
        assert_int_equal(
            layer_collect(l, NULL, &k, 0, 3500, &c, &present, &err), TARN_OK);
        assert_true(present);
        assert_true(c.complete);
        assert_int_equal(c.n, 51);
        assert_int_equal(c.v[0].lsn, 3500);
        assert_int_equal(c.v[50].lsn, 3000);
        assert_int_equal(
            layer_read_value(l, c.v[50].off, c.v[50].len, &out, &err), TARN_OK);
        assert_int_equal(out.len, 8193);
        assert_int_equal(out.p[0], TVAL_IMAGE);
        assert_int_equal(out.p[4000], 2);
        {
            /* The page was stored with the codec asked for (the blob's
             * first byte), and the small record raw. */
            int fd = open(path, O_RDONLY);
            uint8_t cb = 0xff, rb = 0xff;
            assert_true(fd >= 0);
            assert_int_equal(pread(fd, &cb, 1, (off_t)c.v[50].off), 1);
            assert_int_equal(pread(fd, &rb, 1, (off_t)c.v[0].off), 1);
            close(fd);
            assert_int_equal(cb, (uint8_t)codec);
            assert_int_equal(rb, TARN_CODEC_NONE);
        }
        assert_int_equal(
            layer_read_value(l, c.v[0].off, c.v[0].len, &out, &err), TARN_OK);
        assert_int_equal(out.len, sizeof(rec));
        assert_int_equal(out.p[3], (uint8_t)250);
        vcollect_free(&c);
    }
    /* Keys that are not there. */
    {
        tkey k = tkey_rel_block(1663, 5, 100, 0, 99);
        vcollect_init(&c);
        assert_int_equal(
            layer_collect(l, NULL, &k, 0, 100000, &c, &present, &err), TARN_OK);
        assert_false(present);
        assert_int_equal(c.n, 0);
        vcollect_free(&c);
    }
    assert_int_equal(layer_verify(l, &err), TARN_OK);
    layer_unref(l);

    /* Flip one byte of a value: detected on read, never served. */
    {
        int fd;
        uint8_t b;
        tkey k = tkey_rel_block(1663, 5, 100, 0, 2);
        assert_int_equal(layer_open(dir, name, &d, pc, &l, &err), TARN_OK);
        vcollect_init(&c);
        assert_int_equal(
            layer_collect(l, NULL, &k, 0, 3500, &c, &present, &err), TARN_OK);
        fd = open(path, O_RDWR);
        assert_true(fd >= 0);
        assert_int_equal(pread(fd, &b, 1, (off_t)c.v[50].off + 20), 1);
        b ^= 0x40;
        assert_int_equal(pwrite(fd, &b, 1, (off_t)c.v[50].off + 20), 1);
        close(fd);
        assert_int_equal(
            layer_read_value(l, c.v[50].off, c.v[50].len, &out, &err),
            TARN_ECORRUPT);
        assert_non_null(strstr(err.msg, "CRC32C"));
        assert_int_equal(layer_verify(l, &err), TARN_ECORRUPT);
        vcollect_free(&c);
        layer_unref(l);
        /* A flipped header byte makes the file fail to open. */
        fd = open(path, O_RDWR);
        assert_int_equal(pread(fd, &b, 1, 100), 1);
        b ^= 1;
        assert_int_equal(pwrite(fd, &b, 1, 100), 1);
        close(fd);
        assert_int_equal(layer_open(dir, name, &d, pc, &l, &err),
                         TARN_ECORRUPT);
        assert_non_null(strstr(err.msg, "header"));
    }
    tbuf_free(&img);
    tbuf_free(&out);
    pagecache_destroy(pc);
    assert_int_equal(unlink(path), 0);
}

static void
test_layer_roundtrip_lz4(void **state)
{
    (void)state;
    layer_roundtrip(TARN_CODEC_LZ4);
}

static void
test_layer_roundtrip_zstd(void **state)
{
    (void)state;
    layer_roundtrip(TARN_CODEC_ZSTD);
}

static void
test_layer_roundtrip_raw(void **state)
{
    (void)state;
    layer_roundtrip(TARN_CODEC_NONE);
}

/* A metadata image value of a u32. */
static void
u32_value(tbuf *b, uint32_t v)
{
    uint8_t le[4];
    tarn_err err;

    tarn_put_u32(le, v);
    assert_int_equal(tval_image(b, le, 4, &err), TARN_OK);
}

static uint32_t
get_u32(const tl_view *v, const tkey *k, tarn_lsn lsn, bool *found)
{
    tbuf out = {0};
    tarn_err err;
    uint32_t r = 0;

    assert_int_equal(tl_get_value(v, k, lsn, &out, found, &err), TARN_OK);
    if (*found) {
        assert_int_equal(out.len, 4);
        r = tarn_get_u32(out.p);
    }
    tbuf_free(&out);
    return r;
}

/* Write the oldest frozen layer of @p tl to a delta file and swap it in. */
static void
flush_frozen(timeline *tl, pagecache *pc)
{
    memlayer *m = timeline_oldest_frozen(tl);
    layerw_opts o = {.dir = dir, .kind = LAYER_DELTA, .codec = TARN_CODEC_LZ4};
    memlayer_iter it;
    layerw *w;
    layer *l;
    layer_desc d;
    char name[LAYER_NAME_MAX];
    tarn_err err;
    tkey k;
    tarn_lsn lsn;
    const uint8_t *v;
    uint32_t len;
    bool wi;

    o.lsn_start = memlayer_start(m);
    o.lsn_end = memlayer_end(m);
    assert_int_equal(layerw_create(&o, &w, &err), TARN_OK);
    assert_int_equal(memlayer_iter_begin(m, &it, &err), TARN_OK);
    while (memlayer_iter_next(&it, &k, &lsn, &v, &len, &wi))
        assert_int_equal(layerw_add(w, &k, lsn, v, len, wi, &err), TARN_OK);
    memlayer_iter_end(&it);
    assert_int_equal(layerw_finish(w, NULL, NULL, &d, name, &err), TARN_OK);
    assert_int_equal(layer_open(dir, name, &d, pc, &l, &err), TARN_OK);
    assert_int_equal(timeline_frozen_done(tl, m, l, &err), TARN_OK);
    layer_unref(l);
}

/*
 * The size cache against a model: random size puts (and drops) on 3,000
 * keys, more than the cache's 2,048 slots so entries collide, reads at
 * random LSNs in between, and freezes and flushes.  Every answer of
 * timeline_get_size must equal the model's value at that LSN.
 */
#define SC_KEYS 3000
#define SC_OPS  60000

typedef struct sc_hist {
    tarn_lsn lsn[64];
    int64_t val[64]; /* -1: dropped */
    int n;
} sc_hist;

static void
test_size_cache(void **state)
{
    pagecache *pc;
    redo_stats rs = {0};
    timeline *tl;
    timeline_opts o = {0};
    sc_hist *h = calloc(SC_KEYS, sizeof(*h));
    tbuf b = {0};
    tarn_err err;
    tarn_lsn last = 99;
    uint32_t seed = 12345, reads = 0;

    (void)state;
    assert_non_null(h);
    assert_int_equal(pagecache_create(1 << 20, &pc, &err), TARN_OK);
    o.pc = pc;
    o.rs = &rs;
    o.last_record_lsn = last;
    assert_int_equal(timeline_create(&o, &tl, &err), TARN_OK);
    for (int op = 0; op < SC_OPS; op++) {
        uint32_t r, key;
        tkey k;
        seed = seed * 1103515245u + 12345u;
        r = seed >> 8;
        key = r % SC_KEYS;
        k = key % 2 ? tkey_rel_size(1663, 5, 16384 + key, 0)
                    : tkey_slru_size(SLRU_CLOG, key);
        if (r % 7 == 0 && h[key].n < 64) {
            /* A put at a new LSN: a size, or a drop now and then. */
            int64_t v = (r / 7) % 11 == 0 ? -1 : (int64_t)(r % 100000);
            last += 10;
            if (v < 0)
                assert_int_equal(tval_image(&b, NULL, 0, &err), TARN_OK);
            else
                u32_value(&b, (uint32_t)v);
            assert_int_equal(timeline_put(tl, &k, last, b.p, b.len, &err),
                             TARN_OK);
            timeline_advance(tl, last, last - 5);
            h[key].lsn[h[key].n] = last;
            h[key].val[h[key].n++] = v;
        } else if (r % 997 == 0) {
            memlayer *m = timeline_freeze(tl);
            if (m != NULL) {
                memlayer_unref(m);
                flush_frozen(tl, pc);
            }
        } else {
            /* Mostly at the latest LSN, as GetPage reads; else anywhere. */
            tarn_lsn at = (r % 3) ? last : 99 + (r % (last - 98));
            int64_t want = -1;
            bool exists;
            uint32_t n;
            for (int i = 0; i < h[key].n && h[key].lsn[i] <= at; i++)
                want = h[key].val[i];
            assert_int_equal(timeline_get_size(tl, &k, at, &exists, &n, &err),
                             TARN_OK);
            if (want < 0) {
                assert_false(exists);
            } else {
                assert_true(exists);
                assert_int_equal(n, (uint32_t)want);
            }
            reads++;
        }
    }
    assert_true(reads > SC_OPS / 2);
    timeline_destroy(tl);
    pagecache_destroy(pc);
    tbuf_free(&b);
    free(h);
}

static void
test_timeline_reads(void **state)
{
    pagecache *pc;
    redo_stats rs = {0};
    timeline *tl, *child;
    timeline_opts o = {0};
    tkey sz = tkey_rel_size(1663, 5, 42, 0),
         blk = tkey_rel_block(1663, 5, 42, 0, 3);
    tbuf b = {0};
    uint8_t page[8192];
    tarn_err err;
    bool found;
    memlayer *m;

    (void)state;
    assert_int_equal(pagecache_create(1 << 20, &pc, &err), TARN_OK);
    o.pc = pc;
    o.rs = &rs;
    o.last_record_lsn = 99;
    assert_int_equal(timeline_create(&o, &tl, &err), TARN_OK);

    /* Sizes 1 at 100, 4 at 200 (layer 1); 5 at 300 (layer 2, open). */
    u32_value(&b, 1);
    assert_int_equal(timeline_put(tl, &sz, 100, b.p, b.len, &err), TARN_OK);
    timeline_advance(tl, 100, 90);
    page_value(&b, 7);
    assert_int_equal(timeline_put(tl, &blk, 200, b.p, b.len, &err), TARN_OK);
    u32_value(&b, 4);
    assert_int_equal(timeline_put(tl, &sz, 200, b.p, b.len, &err), TARN_OK);
    timeline_advance(tl, 200, 190);
    m = timeline_freeze(tl);
    assert_non_null(m);
    memlayer_unref(m);
    assert_int_equal(timeline_open_start(tl), 201);
    /* Readable while frozen... */
    assert_int_equal(get_u32(timeline_view(tl), &sz, 250, &found), 4);
    assert_true(found);
    flush_frozen(tl, pc);
    /* ...and once written. */
    assert_int_equal(get_u32(timeline_view(tl), &sz, 250, &found), 4);
    assert_int_equal(get_u32(timeline_view(tl), &sz, 150, &found), 1);
    get_u32(timeline_view(tl), &sz, 99, &found);
    assert_false(found);
    page_value(&b, 9);
    assert_int_equal(timeline_put(tl, &blk, 300, b.p, b.len, &err), TARN_OK);
    u32_value(&b, 5);
    assert_int_equal(timeline_put(tl, &sz, 300, b.p, b.len, &err), TARN_OK);
    timeline_advance(tl, 300, 290);

    assert_int_equal(tl_get_page(timeline_view(tl), &blk, 250, page, &err),
                     TARN_OK);
    assert_int_equal(page[10], 7);
    assert_int_equal(tl_get_page(timeline_view(tl), &blk, 300, page, &err),
                     TARN_OK);
    assert_int_equal(page[10], 9);
    assert_int_equal(tl_get_page(timeline_view(tl), &blk, 199, page, &err),
                     TARN_ENOTFOUND);

    /* A branch at 250: sees the parent below, its own writes above. */
    o.ancestor = tl;
    o.ancestor_lsn = 250;
    o.last_record_lsn = 250;
    assert_int_equal(timeline_create(&o, &child, &err), TARN_OK);
    assert_int_equal(get_u32(timeline_view(child), &sz, 250, &found), 4);
    assert_int_equal(get_u32(timeline_view(child), &sz, 400, &found), 4);
    assert_int_equal(tl_get_page(timeline_view(child), &blk, 400, page, &err),
                     TARN_OK);
    assert_int_equal(page[10], 7);
    u32_value(&b, 0); /* a tombstone is an empty image */
    assert_int_equal(tval_image(&b, NULL, 0, &err), TARN_OK);
    assert_int_equal(timeline_put(child, &sz, 260, b.p, b.len, &err), TARN_OK);
    timeline_advance(child, 260, 255);
    get_u32(timeline_view(child), &sz, 260, &found);
    assert_false(found);
    assert_int_equal(get_u32(timeline_view(child), &sz, 255, &found), 4);
    /* The parent is untouched. */
    assert_int_equal(get_u32(timeline_view(tl), &sz, 300, &found), 5);

    /* A snapshot sees the frozen and file layers only. */
    {
        tl_view *snap;
        assert_int_equal(timeline_snapshot(child, &snap, &err), TARN_OK);
        assert_int_equal(get_u32(snap, &sz, 250, &found), 4);
        tl_view_release(snap);
    }
    timeline_destroy(child);
    timeline_destroy(tl);
    tbuf_free(&b);
    pagecache_destroy(pc);
}

/* An image layer hides older deltas: a key it lacks does not exist. */
static void
test_image_layer(void **state)
{
    pagecache *pc;
    redo_stats rs = {0};
    timeline *tl;
    timeline_opts o = {0};
    tkey a = tkey_reldir(1663, 5, 1, 0), bk = tkey_reldir(1663, 5, 2, 0);
    tkey lo = tkey_make(TKEY_RELDIR, 0, 0, 0, 0, 0), hi = tkey_max();
    layerw_opts wo = {
        .dir = dir, .kind = LAYER_IMAGE, .codec = TARN_CODEC_ZSTD};
    layerw *w;
    layer *l;
    layer_desc d;
    char name[LAYER_NAME_MAX];
    tbuf b = {0};
    tarn_err err;
    bool found;
    memlayer *m;

    (void)state;
    assert_int_equal(pagecache_create(1 << 20, &pc, &err), TARN_OK);
    o.pc = pc;
    o.rs = &rs;
    o.last_record_lsn = 9;
    assert_int_equal(timeline_create(&o, &tl, &err), TARN_OK);
    u32_value(&b, 1);
    assert_int_equal(timeline_put(tl, &a, 10, b.p, b.len, &err), TARN_OK);
    assert_int_equal(timeline_put(tl, &bk, 10, b.p, b.len, &err), TARN_OK);
    timeline_advance(tl, 10, 5);
    m = timeline_freeze(tl);
    memlayer_unref(m);
    flush_frozen(tl, pc);
    /* An image at 20 of the whole reldir range holds only key a. */
    wo.lsn_start = 20;
    wo.lsn_end = 21;
    assert_int_equal(layerw_create(&wo, &w, &err), TARN_OK);
    assert_int_equal(layerw_add(w, &a, 20, b.p, b.len, true, &err), TARN_OK);
    assert_int_equal(layerw_finish(w, &lo, &hi, &d, name, &err), TARN_OK);
    assert_int_equal(layer_open(dir, name, &d, pc, &l, &err), TARN_OK);
    assert_int_equal(timeline_add_layer(tl, l, &err), TARN_OK);
    layer_unref(l);
    timeline_advance(tl, 20, 15);
    get_u32(timeline_view(tl), &bk, 15, &found);
    assert_true(found);
    get_u32(timeline_view(tl), &bk, 25, &found);
    assert_false(found);
    get_u32(timeline_view(tl), &a, 25, &found);
    assert_true(found);
    timeline_destroy(tl);
    tbuf_free(&b);
    pagecache_destroy(pc);
}

static void
test_layer_name(void **state)
{
    layer_desc d = {0}, p;
    char name[LAYER_NAME_MAX];
    tarn_err err;

    (void)state;
    d.kind = LAYER_DELTA;
    d.key_start = tkey_min();
    d.key_end = tkey_max();
    d.lsn_start = 0x16B5A50;
    d.lsn_end = 0x2000000;
    layer_name(&d, name);
    assert_string_equal(name, "000000000000000000000000000000000000-"
                              "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF__"
                              "00000000016B5A50-0000000002000000");
    assert_int_equal(layer_name_parse(name, &p, &err), TARN_OK);
    assert_int_equal(p.kind, LAYER_DELTA);
    assert_int_equal(p.lsn_end, 0x2000000);
    d.kind = LAYER_IMAGE;
    d.lsn_end = d.lsn_start + 1;
    layer_name(&d, name);
    assert_int_equal(layer_name_parse(name, &p, &err), TARN_OK);
    assert_int_equal(p.kind, LAYER_IMAGE);
    assert_int_equal(layer_name_parse("layer-abc___temp", &p, &err),
                     TARN_EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_format),
        cmocka_unit_test(test_memlayer),
        cmocka_unit_test(test_memlayer_pool),
        cmocka_unit_test(test_pagecache),
        cmocka_unit_test(test_pagecache_ring),
        cmocka_unit_test(test_layer_name),
        cmocka_unit_test(test_layer_roundtrip_lz4),
        cmocka_unit_test(test_layer_roundtrip_zstd),
        cmocka_unit_test(test_layer_roundtrip_raw),
        cmocka_unit_test(test_timeline_reads),
        cmocka_unit_test(test_size_cache),
        cmocka_unit_test(test_image_layer),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
