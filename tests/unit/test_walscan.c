/*
 * test_walscan.c - the WAL scanner on WAL written by walgen: records of
 * every size, headers split across pages, segment crossings, switch
 * records, mid-record starts, overwrite-contrecord, and each kind of
 * damage, fed in pieces of every size.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "server/core/crc32c.h"
#include "storage/pg/pgwal.h"
#include "storage/pg/walgen.h"
#include "storage/pg/walscan.h"

#define SEG   (1u << 20)
#define SYSID 7301234567890123456ULL

typedef struct seen {
    walscan_rec recs[4096];
    uint8_t *data[4096];
    size_t n;
} seen;

static tarn_rc
collect(void *arg, const walscan_rec *r, tarn_err *err)
{
    seen *s = arg;

    (void)err;
    if (s->n < 4096) {
        s->recs[s->n] = *r;
        if (r->data) {
            s->data[s->n] = malloc(r->tot_len);
            memcpy(s->data[s->n], r->data, r->tot_len);
        }
        s->n++;
    }
    return TARN_OK;
}

static void
seen_free(seen *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->data[i]);
    free(s);
}

/* Deterministic pseudo-random numbers. */
static uint32_t
rnd(uint64_t *state)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*state >> 33);
}

typedef struct expect {
    tarn_lsn start, end;
    size_t len;
    uint8_t fill;
} expect;

/* Write @p n records of assorted sizes starting at segment 3. */
static walgen *
make_wal(size_t n, expect *ex, uint64_t seed)
{
    walgen *g;
    tarn_err e;
    uint8_t *body = malloc(40000);
    uint64_t st = seed;

    assert_int_equal(walgen_create(SYSID, SEG, 1, 3ULL * SEG, 0, &g, &e),
                     TARN_OK);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        switch (rnd(&st) % 6) {
        case 0:
            len = 0;
            break;
        case 1:
            len = rnd(&st) % 64;
            break;
        case 2:
            len = 8000 + rnd(&st) % 30000; /* spans pages */
            break;
        default:
            len = rnd(&st) % 600;
            break;
        }
        memset(body, (int)(i & 0xff), len);
        ex[i].len = len;
        ex[i].fill = (uint8_t)(i & 0xff);
        assert_int_equal(walgen_append(g, 10, 0x10, (uint32_t)i, body, len,
                                       &ex[i].start, &ex[i].end, &e),
                         TARN_OK);
    }
    free(body);
    return g;
}

/* Feed @p data in random chunks of at most @p maxchunk bytes. */
static tarn_rc
feed_chunks(walscan *s, const uint8_t *data, size_t len, size_t maxchunk,
            uint64_t seed, seen *out, tarn_err *e)
{
    uint64_t st = seed;

    while (len > 0) {
        size_t n = 1 + rnd(&st) % maxchunk;
        if (n > len)
            n = len;
        tarn_rc rc = walscan_feed(s, data, n, collect, out, e);
        if (rc != TARN_OK)
            return rc;
        data += n;
        len -= n;
    }
    return TARN_OK;
}

static void
test_records_any_chunking(void **state)
{
    enum { N = 700 };
    static expect ex[N];
    size_t chunks[] = {1, 7, 24, 8192, 200000, 1 << 24};
    walgen *g;
    const uint8_t *data;
    size_t len;
    tarn_err e;

    (void)state;
    g = make_wal(N, ex, 42);
    data = walgen_data(g, &len);
    assert_true(walgen_pos(g) > 4ULL * SEG); /* crossed a segment */
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        walscan_opts o = {
            .seg_size = SEG, .start = 3ULL * SEG, .assemble = true};
        seen *out = calloc(1, sizeof(*out));
        walscan *s;
        assert_int_equal(walscan_create(&o, &s, &e), TARN_OK);
        assert_int_equal(feed_chunks(s, data, len, chunks[c], c, out, &e),
                         TARN_OK);
        assert_int_equal(out->n, N);
        for (size_t i = 0; i < N; i++) {
            assert_true(out->recs[i].start == ex[i].start);
            assert_true(out->recs[i].end == ex[i].end);
            assert_int_equal(out->recs[i].tot_len, 24 + ex[i].len);
            assert_int_equal(out->recs[i].xid, i);
            assert_int_equal(out->recs[i].rmid, 10);
            assert_true(out->recs[i].prev == (i ? ex[i - 1].start : 0));
            for (size_t k = 24; k < 24 + ex[i].len; k++)
                if (out->data[i][k] != ex[i].fill)
                    fail_msg("record %zu byte %zu", i, k);
        }
        assert_true(walscan_boundary(s) == ex[N - 1].end);
        assert_true(walscan_last_start(s) == ex[N - 1].start);
        assert_true(walscan_sysid(s) == SYSID);
        assert_int_equal(walscan_tli(s), 1);
        walscan_destroy(s);
        seen_free(out);
    }
    walgen_destroy(g);
}

/* A record header split across a page boundary, at every split point. */
static void
test_split_header(void **state)
{
    (void)state;
    for (uint32_t left = 8; left < 24; left += 8) {
        walgen *g;
        tarn_err e;
        tarn_lsn s0, e0, s1, e1;
        uint8_t body[9000] = {0};
        const uint8_t *data;
        size_t len;
        /* After the long header (40 bytes), fill so that the next record
         * starts @p left bytes before the end of the first page. */
        size_t fill = PG_XLOG_BLCKSZ - PG_LONG_PHD - left - 24;

        assert_int_equal(walgen_create(SYSID, SEG, 1, 0, 0, &g, &e), TARN_OK);
        assert_int_equal(walgen_append(g, 1, 0, 0, body, fill, &s0, &e0, &e),
                         TARN_OK);
        assert_true(e0 == PG_XLOG_BLCKSZ - left);
        assert_int_equal(walgen_append(g, 1, 0, 0, body, 100, &s1, &e1, &e),
                         TARN_OK);
        assert_true(s1 == PG_XLOG_BLCKSZ - left);
        assert_true(
            e1 == PG_MAXALIGN(PG_XLOG_BLCKSZ + PG_SHORT_PHD + 24 + 100 - left));
        data = walgen_data(g, &len);
        for (size_t split = 1; split < len; split += 97) {
            walscan_opts o = {.seg_size = SEG, .start = 0};
            seen *out = calloc(1, sizeof(*out));
            walscan *s;
            assert_int_equal(walscan_create(&o, &s, &e), TARN_OK);
            assert_int_equal(walscan_feed(s, data, split, collect, out, &e),
                             TARN_OK);
            assert_int_equal(
                walscan_feed(s, data + split, len - split, collect, out, &e),
                TARN_OK);
            assert_int_equal(out->n, 2);
            assert_true(out->recs[1].start == s1 && out->recs[1].end == e1);
            walscan_destroy(s);
            seen_free(out);
        }
        walgen_destroy(g);
    }
}

/* Start at a page boundary inside a long record: skip to the next one. */
static void
test_mid_record_start(void **state)
{
    enum { N = 300 };
    static expect ex[N];
    walgen *g = make_wal(N, ex, 7);
    const uint8_t *data;
    size_t len, found = 0;
    tarn_err e;

    (void)state;
    data = walgen_data(g, &len);
    for (size_t i = 1; i + 1 < N; i++) {
        /* A record that spans a page boundary: start the scan there. */
        tarn_lsn page =
            ex[i].start - ex[i].start % PG_XLOG_BLCKSZ + PG_XLOG_BLCKSZ;
        if (page >= ex[i].end || page == ex[i].start)
            continue;
        walscan_opts o = {.seg_size = SEG, .start = page, .mid_record = true};
        seen *out = calloc(1, sizeof(*out));
        walscan *s;
        size_t off = (size_t)(page - 3ULL * SEG);
        assert_int_equal(walscan_create(&o, &s, &e), TARN_OK);
        assert_true(walscan_boundary(s) == 0);
        assert_int_equal(
            walscan_feed(s, data + off, len - off, collect, out, &e), TARN_OK);
        /* The first record seen is the first that starts after @p page. */
        size_t j = i + 1;
        while (ex[j].start < page)
            j++;
        assert_true(out->recs[0].start == ex[j].start);
        assert_int_equal(out->n, N - j);
        walscan_destroy(s);
        seen_free(out);
        found++;
    }
    assert_true(found > 20);
    walgen_destroy(g);
}

static void
test_switch(void **state)
{
    walgen *g;
    tarn_err e;
    tarn_lsn s0, e0, ss, se, s2, e2;
    const uint8_t *data;
    size_t len;
    walscan *s;
    seen *out = calloc(1, sizeof(*out));
    walscan_opts o = {.seg_size = SEG, .start = 0};

    (void)state;
    assert_int_equal(walgen_create(SYSID, SEG, 1, 0, 0, &g, &e), TARN_OK);
    assert_int_equal(walgen_append(g, 1, 0, 0, "abc", 3, &s0, &e0, &e),
                     TARN_OK);
    assert_int_equal(walgen_switch(g, &ss, &se, &e), TARN_OK);
    assert_true(se == SEG);
    assert_int_equal(walgen_append(g, 1, 0, 0, "xyz", 3, &s2, &e2, &e),
                     TARN_OK);
    assert_true(s2 == SEG + PG_LONG_PHD);
    data = walgen_data(g, &len);
    assert_int_equal(walscan_create(&o, &s, &e), TARN_OK);
    /* Up to the end of the switch record only: the boundary must not run
     * ahead of the bytes. */
    size_t cut = (size_t)(ss + 24 + 100);
    assert_int_equal(walscan_feed(s, data, cut, collect, out, &e), TARN_OK);
    assert_int_equal(out->n, 2);
    assert_true(out->recs[1].end == SEG);
    assert_true(walscan_boundary(s) == e0);
    assert_true(walscan_last_start(s) == s0);
    assert_int_equal(walscan_feed(s, data + cut, SEG - cut, collect, out, &e),
                     TARN_OK);
    assert_true(walscan_boundary(s) == SEG);
    assert_true(walscan_last_start(s) == ss);
    assert_int_equal(walscan_feed(s, data + SEG, len - SEG, collect, out, &e),
                     TARN_OK);
    assert_int_equal(out->n, 3);
    assert_true(out->recs[2].start == s2 && out->recs[2].prev == ss);
    walscan_destroy(s);
    seen_free(out);
    walgen_destroy(g);
}

/* A record's end counts only once its padding has been fed. */
static void
test_boundary_waits_for_padding(void **state)
{
    walgen *g;
    tarn_err e;
    tarn_lsn s0, e0, s1, e1;
    const uint8_t *data;
    size_t len;
    walscan *s;
    walscan_opts o = {.seg_size = SEG, .start = 0};

    (void)state;
    assert_int_equal(walgen_create(SYSID, SEG, 1, 0, 0, &g, &e), TARN_OK);
    assert_int_equal(walgen_append(g, 1, 0, 0, "abcd", 4, &s0, &e0, &e),
                     TARN_OK);
    assert_int_equal(walgen_append(g, 1, 0, 0, "abc", 3, &s1, &e1, &e),
                     TARN_OK);
    assert_true((s1 + 27) % 8 != 0); /* the second one needs padding */
    data = walgen_data(g, &len);
    assert_int_equal(walscan_create(&o, &s, &e), TARN_OK);
    assert_int_equal(walscan_feed(s, data, (size_t)(s1 + 27), NULL, NULL, &e),
                     TARN_OK);
    assert_true(walscan_pos(s) == s1 + 27);
    assert_true(walscan_boundary(s) == e0); /* not e1: padding missing */
    assert_true(walscan_last_start(s) == s0);
    assert_int_equal(walscan_feed(s, data + s1 + 27, len - (size_t)(s1 + 27),
                                  NULL, NULL, &e),
                     TARN_OK);
    assert_true(walscan_boundary(s) == e1);
    assert_true(walscan_last_start(s) == s1);
    walscan_destroy(s);
    walgen_destroy(g);
}

static tarn_rc
scan_all(const uint8_t *data, size_t len, tarn_lsn start, tarn_lsn prev,
         uint64_t sysid, seen *out, tarn_err *e)
{
    walscan_opts o = {
        .seg_size = SEG, .start = start, .prev = prev, .sysid = sysid};
    walscan *s;
    tarn_rc rc = walscan_create(&o, &s, e);

    if (rc != TARN_OK)
        return rc;
    rc = walscan_feed(s, data, len, collect, out, e);
    if (rc != TARN_OK) {
        /* A failed scanner stays failed. */
        tarn_err e2;
        assert_int_equal(walscan_feed(s, data, 1, NULL, NULL, &e2), rc);
    }
    walscan_destroy(s);
    return rc;
}

static void
test_damage(void **state)
{
    enum { N = 60 };
    static expect ex[N];
    walgen *g = make_wal(N, ex, 99);
    const uint8_t *clean;
    uint8_t *data;
    size_t len, off;
    tarn_err e;
    seen *out;

    (void)state;
    clean = walgen_data(g, &len);
    data = malloc(len);

    /* A flipped byte in a record body: CRC error at that record. */
    memcpy(data, clean, len);
    off = (size_t)(ex[30].start - 3ULL * SEG) + 24;
    if (ex[30].len == 0)
        off -= 4; /* the xid */
    data[off] ^= 0x20;
    out = calloc(1, sizeof(*out));
    assert_int_equal(scan_all(data, len, 3ULL * SEG, 0, 0, out, &e),
                     TARN_ECORRUPT);
    assert_non_null(strstr(e.msg, "incorrect CRC"));
    assert_int_equal(out->n, 30);
    seen_free(out);

    /* The wrong previous record: divergence, not corruption. */
    out = calloc(1, sizeof(*out));
    assert_int_equal(scan_all(clean, len, 3ULL * SEG, 0x1234568, 0, out, &e),
                     TARN_ECONFLICT);
    assert_non_null(strstr(e.msg, "xl_prev"));
    seen_free(out);

    /* Another system's WAL. */
    out = calloc(1, sizeof(*out));
    assert_int_equal(scan_all(clean, len, 3ULL * SEG, 0, 42, out, &e),
                     TARN_ECORRUPT);
    assert_non_null(strstr(e.msg, "belongs to system"));
    seen_free(out);

    /* Zeros where a record should be: the end of WAL. */
    memcpy(data, clean, len);
    off = (size_t)(ex[10].start - 3ULL * SEG);
    memset(data + off, 0, 24);
    out = calloc(1, sizeof(*out));
    assert_int_equal(scan_all(data, len, 3ULL * SEG, 0, 0, out, &e),
                     TARN_ECORRUPT);
    assert_non_null(strstr(e.msg, "end of WAL"));
    assert_int_equal(out->n, 10);
    seen_free(out);

    /* Page header damage: magic, address, and a missing contrecord flag. */
    for (int k = 0; k < 3; k++) {
        size_t page = 5 * PG_XLOG_BLCKSZ;
        memcpy(data, clean, len);
        if (k == 0)
            data[page] ^= 1;
        else if (k == 1)
            data[page + PG_PHD_PAGEADDR + 1] ^= 1;
        else
            data[page + PG_PHD_INFO] &= (uint8_t)~PG_XLP_FIRST_IS_CONTRECORD;
        out = calloc(1, sizeof(*out));
        tarn_rc rc = scan_all(data, len, 3ULL * SEG, 0, 0, out, &e);
        seen_free(out);
        if (k == 2 && (clean[page + PG_PHD_INFO] & 1) == 0)
            continue; /* this page did not start with a continuation */
        assert_int_equal(rc, TARN_ECORRUPT);
    }
    free(data);
    walgen_destroy(g);
}

/*
 * The primary crashed in the middle of a record that spans pages, and
 * after recovery wrote an overwrite-contrecord where the continuation
 * should have been.  The partial record is dropped.
 */
static void
test_overwrite_contrecord(void **state)
{
    walgen *g, *g2;
    tarn_err e;
    tarn_lsn s0, e0, s1, e1, s2, e2;
    uint8_t big[20000] = {0};
    const uint8_t *a, *b;
    size_t alen, blen;
    seen *out = calloc(1, sizeof(*out));
    walscan_opts o = {.seg_size = SEG, .start = 0};
    walscan *s;

    (void)state;
    assert_int_equal(walgen_create(SYSID, SEG, 1, 0, 0, &g, &e), TARN_OK);
    assert_int_equal(walgen_append(g, 1, 0, 0, big, 100, &s0, &e0, &e),
                     TARN_OK);
    assert_int_equal(walgen_append(g, 1, 0, 0, big, 20000, &s1, &e1, &e),
                     TARN_OK);
    a = walgen_data(g, &alen);
    /* The rest of WAL, as written after recovery: a page whose header has
     * the overwrite flag, then a record that points back at s0. */
    tarn_lsn page = PG_XLOG_BLCKSZ;
    assert_int_equal(walgen_create(SYSID, SEG, 1, page, s0, &g2, &e), TARN_OK);
    assert_int_equal(walgen_append(g2, 0, PG_XLOG_OVERWRITE_CONTRECORD, 0, big,
                                   16, &s2, &e2, &e),
                     TARN_OK);
    b = walgen_data(g2, &blen);
    uint8_t *hdr = (uint8_t *)b;
    tarn_put_u16(hdr + PG_PHD_INFO, PG_XLP_FIRST_IS_OVERWRITE_CONTRECORD);
    assert_int_equal(walscan_create(&o, &s, &e), TARN_OK);
    assert_int_equal(walscan_feed(s, a, (size_t)page, collect, out, &e),
                     TARN_OK);
    assert_int_equal(out->n, 1);
    assert_int_equal(walscan_feed(s, b, blen, collect, out, &e), TARN_OK);
    assert_int_equal(out->n, 2);
    assert_true(out->recs[1].start == s2);
    assert_true(out->recs[1].start == page + PG_SHORT_PHD);
    assert_true(walscan_boundary(s) == e2);
    walscan_destroy(s);
    seen_free(out);
    walgen_destroy(g);
    walgen_destroy(g2);
}

static void
test_file_names(void **state)
{
    char name[25];
    uint32_t tli;
    uint64_t segno;
    bool partial;

    (void)state;
    pg_wal_file_name(name, 1, 1, 16u << 20);
    assert_string_equal(name, "000000010000000000000001");
    pg_wal_file_name(name, 1, 256 + 3, 16u << 20);
    assert_string_equal(name, "000000010000000100000003");
    assert_true(pg_wal_file_parse("000000010000000100000003.partial", 16u << 20,
                                  &tli, &segno, &partial));
    assert_true(segno == 259 && partial && tli == 1);
    assert_false(pg_wal_file_parse("000000010000000100000100", 16u << 20, &tli,
                                   &segno, &partial));
    assert_false(pg_wal_file_parse("00000001000000010000000g", 16u << 20, &tli,
                                   &segno, &partial));
    assert_false(pg_wal_file_parse("000000010000000100000003.tmp", 16u << 20,
                                   &tli, &segno, &partial));
}

static void
test_bad_options(void **state)
{
    walscan *s;
    tarn_err e;
    walscan_opts o = {.seg_size = 1000};

    (void)state;
    assert_int_equal(walscan_create(&o, &s, &e), TARN_EINVAL);
    o.seg_size = SEG;
    o.start = 100;
    o.mid_record = true;
    assert_int_equal(walscan_create(&o, &s, &e), TARN_EINVAL);
    o.mid_record = false;
    o.start = 12;
    assert_int_equal(walscan_create(&o, &s, &e), TARN_EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_any_chunking),
        cmocka_unit_test(test_split_header),
        cmocka_unit_test(test_mid_record_start),
        cmocka_unit_test(test_switch),
        cmocka_unit_test(test_boundary_waits_for_padding),
        cmocka_unit_test(test_damage),
        cmocka_unit_test(test_overwrite_contrecord),
        cmocka_unit_test(test_file_names),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
