/*
 * test_walrec.c - the WAL record decoder on crafted records: every way a
 * record can be malformed, the valid forms (block id gaps, SAME_REL,
 * origin, top-level xid, short and long main data, images with data),
 * image restoration for each compression and the pglz decompressor on
 * hand-built streams.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <lz4.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "storage/pg/pgdefs.h"
#include "storage/pg/pgwal.h"
#include "storage/pg/walrec.h"

#define START 0x1000028ULL
#define END   0x1000100ULL

/* A record under construction: the 24-byte header, then what is put. */
typedef struct rb {
    uint8_t b[3 * PG_BLCKSZ];
    size_t n;
} rb;

static rb *
rb_new(uint8_t rmid, uint8_t info, uint32_t xid)
{
    rb *r = calloc(1, sizeof(*r));

    assert_non_null(r);
    tarn_put_u32(r->b + PG_REC_XID, xid);
    tarn_put_u64(r->b + PG_REC_PREV, START - 0x28);
    r->b[PG_REC_INFO] = info;
    r->b[PG_REC_RMID] = rmid;
    r->n = PG_REC_HDR;
    return r;
}

static void
put8(rb *r, uint8_t v)
{
    r->b[r->n++] = v;
}

static void
put16(rb *r, uint16_t v)
{
    tarn_put_u16(r->b + r->n, v);
    r->n += 2;
}

static void
put32(rb *r, uint32_t v)
{
    tarn_put_u32(r->b + r->n, v);
    r->n += 4;
}

static void
putn(rb *r, const void *p, size_t len)
{
    memcpy(r->b + r->n, p, len);
    r->n += len;
}

static void
putfill(rb *r, uint8_t v, size_t len)
{
    memset(r->b + r->n, v, len);
    r->n += len;
}

/* A block header: id, fork_flags, data length. */
static void
blk(rb *r, uint8_t id, uint8_t flags, uint16_t data_len)
{
    put8(r, id);
    put8(r, flags);
    put16(r, data_len);
}

static void
rel(rb *r, uint32_t spc, uint32_t db, uint32_t relno)
{
    put32(r, spc);
    put32(r, db);
    put32(r, relno);
}

/* An image header; @p hole_len < 0: no compression header. */
static void
img(rb *r, uint16_t len, uint16_t hole_off, uint8_t bimg, int hole_len)
{
    put16(r, len);
    put16(r, hole_off);
    put8(r, bimg);
    if (hole_len >= 0)
        put16(r, (uint16_t)hole_len);
}

/* Set xl_tot_len to what was put and decode. */
static tarn_rc
dec(rb *r, walrec *w, tarn_err *e)
{
    tarn_put_u32(r->b + PG_REC_TOT_LEN, (uint32_t)r->n);
    return walrec_decode(r->b, r->n, START, END, w, e);
}

/* Decoding must fail as corrupt with @p msg in the message. */
static void
expect_corrupt(rb *r, const char *msg)
{
    walrec *w = malloc(sizeof(*w));
    tarn_err e;

    assert_non_null(w);
    assert_int_equal(dec(r, w, &e), TARN_ECORRUPT);
    if (strstr(e.msg, msg) == NULL)
        fail_msg("expected \"%s\" in \"%s\"", msg, e.msg);
    assert_non_null(strstr(e.msg, "0/1000028"));
    free(w);
    free(r);
}

/* A standard page: header with pd_lower/pd_upper, a pattern elsewhere. */
static void
make_page(uint8_t *pg, uint16_t lower, uint16_t upper)
{
    for (int i = 0; i < PG_BLCKSZ; i++)
        pg[i] = (uint8_t)(i * 7 + i / 251);
    memset(pg + lower, 0, (size_t)(upper - lower));
    tarn_put_u16(pg + PG_PD_LOWER, lower);
    tarn_put_u16(pg + PG_PD_UPPER, upper);
    tarn_put_u16(pg + PG_PD_SPECIAL, PG_BLCKSZ);
    tarn_put_u16(pg + PG_PD_PAGESIZE_VERSION, PG_BLCKSZ | 4);
}

/* ---- malformed records ---- */

static void
test_short_and_length(void **state)
{
    walrec *w = malloc(sizeof(*w));
    uint8_t b[PG_REC_HDR + 4] = {0};
    tarn_err e;
    rb *r;

    (void)state;
    assert_int_equal(walrec_decode(b, PG_REC_HDR - 1, START, END, w, &e),
                     TARN_ECORRUPT);
    assert_non_null(strstr(e.msg, "shorter than its header"));
    assert_int_equal(walrec_decode(b, 0, START, END, w, &e), TARN_ECORRUPT);
    /* xl_tot_len disagrees with the buffer. */
    tarn_put_u32(b, PG_REC_HDR);
    assert_int_equal(walrec_decode(b, sizeof(b), START, END, w, &e),
                     TARN_ECORRUPT);
    assert_non_null(strstr(e.msg, "does not match its buffer"));
    tarn_put_u32(b, PG_REC_HDR + 5);
    assert_int_equal(walrec_decode(b, sizeof(b), START, END, w, &e),
                     TARN_ECORRUPT);
    free(w);

    /* Truncated headers of each kind. */
    r = rb_new(PG_RM_HEAP, 0, 7);
    put8(r, PG_XLR_BLOCK_ID_DATA_SHORT);
    expect_corrupt(r, "truncated main-data header");
    r = rb_new(PG_RM_HEAP, 0, 7);
    put8(r, PG_XLR_BLOCK_ID_DATA_LONG);
    put8(r, 1);
    put8(r, 0);
    put8(r, 0);
    expect_corrupt(r, "truncated main-data header");
    r = rb_new(PG_RM_HEAP, 0, 7);
    put8(r, PG_XLR_BLOCK_ID_ORIGIN);
    put8(r, 1);
    expect_corrupt(r, "truncated origin");
    r = rb_new(PG_RM_HEAP, 0, 7);
    put8(r, PG_XLR_BLOCK_ID_TOPLEVEL_XID);
    put16(r, 1);
    put8(r, 0);
    expect_corrupt(r, "truncated top-level xid");
    r = rb_new(PG_RM_HEAP, 0, 7);
    put8(r, 0);
    put8(r, 0);
    put8(r, 0);
    expect_corrupt(r, "truncated block header 0");
    r = rb_new(PG_RM_HEAP, 0, 7);
    blk(r, 0, PG_BKPBLOCK_HAS_IMAGE, 0);
    put16(r, 100);
    put16(r, 24);
    expect_corrupt(r, "truncated image header 0");
    r = rb_new(PG_RM_HEAP, 0, 7);
    blk(r, 0, PG_BKPBLOCK_HAS_IMAGE, 0);
    img(r, 100, 24,
        PG_BKPIMAGE_HAS_HOLE | PG_BKPIMAGE_APPLY | PG_BKPIMAGE_COMPRESS_PGLZ,
        -1);
    put8(r, 1);
    expect_corrupt(r, "truncated hole length 0");
    r = rb_new(PG_RM_HEAP, 0, 7);
    blk(r, 0, 0, 0);
    put32(r, 1663);
    put32(r, 5);
    put16(r, 1);
    expect_corrupt(r, "truncated relation of block 0");
    r = rb_new(PG_RM_HEAP, 0, 7);
    blk(r, 0, 0, 0);
    rel(r, 1663, 5, 16384);
    put16(r, 0);
    put8(r, 0);
    expect_corrupt(r, "truncated block number 0");
    /* A second block cut short after the first is complete. */
    r = rb_new(PG_RM_HEAP, 0, 7);
    blk(r, 0, 0, 0);
    rel(r, 1663, 5, 16384);
    put32(r, 1);
    blk(r, 1, PG_BKPBLOCK_SAME_REL, 0);
    put16(r, 0);
    expect_corrupt(r, "truncated block number 1");
}

static void
test_block_ids(void **state)
{
    rb *r;

    (void)state;
    /* Ids 33..251 are invalid. */
    for (unsigned id = PG_XLR_MAX_BLOCK_ID + 1; id < 252; id += 17) {
        r = rb_new(PG_RM_HEAP, 0, 7);
        blk(r, (uint8_t)id, 0, 0);
        rel(r, 1663, 5, 16384);
        put32(r, 1);
        expect_corrupt(r, "invalid block id");
    }
    r = rb_new(PG_RM_HEAP, 0, 7);
    blk(r, 251, 0, 0);
    expect_corrupt(r, "invalid block id 251");
    /* Repeated, then decreasing ids. */
    r = rb_new(PG_RM_HEAP, 0, 7);
    blk(r, 2, 0, 0);
    rel(r, 1663, 5, 16384);
    put32(r, 1);
    blk(r, 2, PG_BKPBLOCK_SAME_REL, 0);
    put32(r, 2);
    expect_corrupt(r, "block id 2 out of order");
    r = rb_new(PG_RM_HEAP, 0, 7);
    blk(r, 3, 0, 0);
    rel(r, 1663, 5, 16384);
    put32(r, 1);
    blk(r, 1, PG_BKPBLOCK_SAME_REL, 0);
    put32(r, 2);
    expect_corrupt(r, "block id 1 out of order");
    /* SAME_REL on the first block (even with a gap before it). */
    r = rb_new(PG_RM_HEAP, 0, 7);
    blk(r, 0, PG_BKPBLOCK_SAME_REL, 0);
    put32(r, 1);
    expect_corrupt(r, "SAME_REL without a previous relation");
    r = rb_new(PG_RM_HEAP, 0, 7);
    blk(r, 4, PG_BKPBLOCK_SAME_REL | 2, 0);
    put32(r, 1);
    expect_corrupt(r, "SAME_REL without a previous relation");
}

static void
test_flags_and_fork(void **state)
{
    rb *r;

    (void)state;
    /* HAS_DATA without data, data without HAS_DATA. */
    r = rb_new(PG_RM_HEAP, 0, 7);
    blk(r, 0, PG_BKPBLOCK_HAS_DATA, 0);
    rel(r, 1663, 5, 16384);
    put32(r, 1);
    expect_corrupt(r, "has 0 data bytes but flags 0x20");
    r = rb_new(PG_RM_HEAP, 0, 7);
    blk(r, 0, 0, 4);
    rel(r, 1663, 5, 16384);
    put32(r, 1);
    put32(r, 0);
    expect_corrupt(r, "has 4 data bytes but flags 0x00");
    /* Forks 4..15 do not exist. */
    for (uint8_t f = PG_MAX_FORKNUM + 1; f <= PG_BKPBLOCK_FORK_MASK; f++) {
        r = rb_new(PG_RM_HEAP, 0, 7);
        blk(r, 0, f, 0);
        rel(r, 1663, 5, 16384);
        put32(r, 1);
        expect_corrupt(r, "invalid fork");
    }
}

/* A record with one image block and @p len bytes of image (none when
 * @p len is more than a page). */
static rb *
img_rec(uint16_t len, uint16_t hole_off, uint8_t bimg, int hole_len)
{
    rb *r = rb_new(PG_RM_XLOG, PG_XLOG_FPI, 0);

    blk(r, 0, PG_BKPBLOCK_HAS_IMAGE, 0);
    img(r, len, hole_off, bimg, hole_len);
    rel(r, 1663, 5, 16384);
    put32(r, 9);
    if (len <= PG_BLCKSZ)
        putfill(r, 0xAB, len);
    return r;
}

static void
test_bad_images(void **state)
{
    const uint8_t A = PG_BKPIMAGE_APPLY, H = PG_BKPIMAGE_HAS_HOLE;
    const uint8_t Z = PG_BKPIMAGE_COMPRESS_ZSTD;

    (void)state;
    /* HAS_HOLE with a zero offset, a zero length, or a whole page. */
    expect_corrupt(img_rec(8000, 0, H | A, -1), "bad hole (offset 0");
    expect_corrupt(img_rec(100, 24, H | A | Z, 0), "bad hole (offset 24");
    expect_corrupt(img_rec(PG_BLCKSZ, 24, H | A, -1), "bad hole");
    /* A hole without HAS_HOLE: an offset, or a short plain image. */
    expect_corrupt(img_rec(PG_BLCKSZ, 24, A, -1), "hole without the flag");
    expect_corrupt(img_rec(8000, 0, A, -1), "hole without the flag");
    expect_corrupt(img_rec(100, 24, A | Z, -1), "hole without the flag");
    /* A compressed image may not take a whole page. */
    expect_corrupt(img_rec(PG_BLCKSZ, 0, A | Z, -1), "compressed image");
    expect_corrupt(img_rec(PG_BLCKSZ, 0, A | PG_BKPIMAGE_COMPRESS_LZ4, -1),
                   "compressed image of 8192 bytes");
    /* Images and holes that do not fit a page. */
    expect_corrupt(img_rec(8000, 8100, H | A, -1), "do not fit a page");
    expect_corrupt(img_rec(100, 100, H | A | Z, 8100), "do not fit a page");
    expect_corrupt(img_rec(100, 8190, H | A | Z, 3), "do not fit a page");
    expect_corrupt(img_rec(0, 0, A | Z, -1), "image length 0");
    expect_corrupt(img_rec(9000, 0, A | Z, -1), "image length 9000");
    expect_corrupt(img_rec(0xFFFF, 24, H | A, -1), "image length 65535");
}

static void
test_lengths_add_up(void **state)
{
    rb *r;

    (void)state;
    /* Block data announced but missing, and one byte too many. */
    r = rb_new(PG_RM_HEAP, 0, 7);
    blk(r, 0, PG_BKPBLOCK_HAS_DATA, 10);
    rel(r, 1663, 5, 16384);
    put32(r, 1);
    putfill(r, 1, 9);
    expect_corrupt(r, "announce 10 payload bytes, 9 remain");
    r = rb_new(PG_RM_HEAP, 0, 7);
    put8(r, PG_XLR_BLOCK_ID_DATA_SHORT);
    put8(r, 3);
    putfill(r, 1, 4);
    expect_corrupt(r, "announce 3 payload bytes, 4 remain");
    /* Long main data larger than the record. */
    r = rb_new(PG_RM_HEAP, 0, 7);
    put8(r, PG_XLR_BLOCK_ID_DATA_LONG);
    put32(r, 0xFFFFFFFFu);
    putfill(r, 1, 16);
    expect_corrupt(r, "announce 4294967295 payload bytes, 16 remain");
    /* An image longer than what is left. */
    r = rb_new(PG_RM_XLOG, PG_XLOG_FPI, 0);
    blk(r, 0, PG_BKPBLOCK_HAS_IMAGE, 0);
    img(r, 300, 0, PG_BKPIMAGE_APPLY | PG_BKPIMAGE_COMPRESS_LZ4, -1);
    rel(r, 1663, 5, 16384);
    put32(r, 9);
    putfill(r, 1, 299);
    expect_corrupt(r, "announce 300 payload bytes, 299 remain");
    /* Trailing bytes after the main data: the header section goes on,
     * finds nothing valid. */
    r = rb_new(PG_RM_HEAP, 0, 7);
    put8(r, 200);
    expect_corrupt(r, "invalid block id 200");
    /* Main data header first, then a stray block header: the bytes are
     * counted as payload and do not add up. */
    r = rb_new(PG_RM_HEAP, 0, 7);
    put8(r, PG_XLR_BLOCK_ID_DATA_SHORT);
    put8(r, 1);
    blk(r, 0, 0, 0);
    expect_corrupt(r, "announce 1 payload bytes, 4 remain");
}

/* ---- valid records ---- */

static void
test_empty_and_main(void **state)
{
    walrec *w = malloc(sizeof(*w));
    uint8_t big[300];
    tarn_err e;
    rb *r;

    (void)state;
    /* Header only. */
    r = rb_new(PG_RM_XLOG, PG_XLOG_NOOP, 0);
    assert_int_equal(dec(r, w, &e), TARN_OK);
    assert_int_equal(w->max_block_id, -1);
    assert_int_equal(w->main_len, 0);
    assert_null(w->main_data);
    assert_int_equal(w->tot_len, PG_REC_HDR);
    assert_int_equal(w->rmid, PG_RM_XLOG);
    assert_int_equal(w->info, PG_XLOG_NOOP);
    assert_true(w->prev == START - 0x28);
    assert_true(w->start == START && w->end == END);
    assert_ptr_equal(w->raw, r->b);
    free(r);

    /* Short main data. */
    r = rb_new(PG_RM_XACT, PG_XLOG_XACT_COMMIT, 731);
    put8(r, PG_XLR_BLOCK_ID_DATA_SHORT);
    put8(r, 255);
    putfill(r, 0x5A, 255);
    assert_int_equal(dec(r, w, &e), TARN_OK);
    assert_int_equal(w->xid, 731);
    assert_int_equal(w->main_len, 255);
    assert_ptr_equal(w->main_data, r->b + PG_REC_HDR + 2);
    assert_int_equal(w->origin, 0);
    assert_int_equal(w->toplevel_xid, 0);
    free(r);

    /* Long main data, and a long header for a short length (legal). */
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)i;
    r = rb_new(PG_RM_XLOG, PG_XLOG_CHECKPOINT_ONLINE, 0);
    put8(r, PG_XLR_BLOCK_ID_DATA_LONG);
    put32(r, sizeof(big));
    putn(r, big, sizeof(big));
    assert_int_equal(dec(r, w, &e), TARN_OK);
    assert_int_equal(w->main_len, sizeof(big));
    assert_memory_equal(w->main_data, big, sizeof(big));
    free(r);
    r = rb_new(PG_RM_XLOG, PG_XLOG_CHECKPOINT_ONLINE, 0);
    put8(r, PG_XLR_BLOCK_ID_DATA_LONG);
    put32(r, 3);
    putn(r, big, 3);
    assert_int_equal(dec(r, w, &e), TARN_OK);
    assert_int_equal(w->main_len, 3);
    free(r);

    /* Main data of length 0 announced explicitly. */
    r = rb_new(PG_RM_XLOG, PG_XLOG_NOOP, 0);
    put8(r, PG_XLR_BLOCK_ID_DATA_SHORT);
    put8(r, 0);
    assert_int_equal(dec(r, w, &e), TARN_OK);
    assert_int_equal(w->main_len, 0);
    assert_null(w->main_data);
    free(r);
    free(w);
}

static void
test_origin_toplevel(void **state)
{
    walrec *w = malloc(sizeof(*w));
    tarn_err e;
    rb *r;

    (void)state;
    r = rb_new(PG_RM_HEAP, PG_XLOG_HEAP_INSERT, 901);
    blk(r, 0, PG_BKPBLOCK_HAS_DATA, 5);
    rel(r, 1663, 5, 16384);
    put32(r, 3);
    put8(r, PG_XLR_BLOCK_ID_ORIGIN);
    put16(r, 0xBEEF);
    put8(r, PG_XLR_BLOCK_ID_TOPLEVEL_XID);
    put32(r, 900);
    put8(r, PG_XLR_BLOCK_ID_DATA_SHORT);
    put8(r, 3);
    putn(r, "abcde", 5);
    putn(r, "xyz", 3);
    assert_int_equal(dec(r, w, &e), TARN_OK);
    assert_int_equal(w->origin, 0xBEEF);
    assert_int_equal(w->toplevel_xid, 900);
    assert_int_equal(w->xid, 901);
    assert_int_equal(w->max_block_id, 0);
    assert_int_equal(w->blocks[0].data_len, 5);
    assert_memory_equal(w->blocks[0].data, "abcde", 5);
    assert_memory_equal(w->main_data, "xyz", 3);
    free(r);

    /* Either alone, with no main data. */
    r = rb_new(PG_RM_HEAP, PG_XLOG_HEAP_INSERT, 901);
    put8(r, PG_XLR_BLOCK_ID_TOPLEVEL_XID);
    put32(r, 0xFFFFFFF0u);
    assert_int_equal(dec(r, w, &e), TARN_OK);
    assert_int_equal(w->toplevel_xid, 0xFFFFFFF0u);
    assert_int_equal(w->origin, 0);
    free(r);
    r = rb_new(PG_RM_HEAP, PG_XLOG_HEAP_INSERT, 901);
    put8(r, PG_XLR_BLOCK_ID_ORIGIN);
    put16(r, 1);
    assert_int_equal(dec(r, w, &e), TARN_OK);
    assert_int_equal(w->origin, 1);
    assert_int_equal(w->toplevel_xid, 0);
    assert_int_equal(w->max_block_id, -1);
    free(r);
    free(w);
}

static void
test_gaps_same_rel(void **state)
{
    walrec *w = malloc(sizeof(*w));
    tarn_err e;
    rb *r;

    (void)state;
    /* Ids 0, 1 and 3, as a btree SPLIT_R of a rightmost internal page. */
    r = rb_new(PG_RM_BTREE, 0x40, 0);
    blk(r, 0, PG_BKPBLOCK_HAS_DATA, 2);
    rel(r, 1663, 5, 16400);
    put32(r, 10);
    blk(r, 1,
        PG_BKPBLOCK_SAME_REL | PG_BKPBLOCK_WILL_INIT | PG_BKPBLOCK_HAS_DATA, 3);
    put32(r, 11);
    blk(r, 3, PG_BKPBLOCK_SAME_REL, 0);
    put32(r, 4);
    put8(r, PG_XLR_BLOCK_ID_DATA_SHORT);
    put8(r, 1);
    putn(r, "AA", 2);
    putn(r, "BBB", 3);
    putn(r, "M", 1);
    assert_int_equal(dec(r, w, &e), TARN_OK);
    assert_int_equal(w->max_block_id, 3);
    assert_true(w->blocks[0].in_use && w->blocks[1].in_use);
    assert_false(w->blocks[2].in_use);
    assert_true(w->blocks[3].in_use);
    for (int i = 4; i <= PG_XLR_MAX_BLOCK_ID; i++)
        assert_false(w->blocks[i].in_use);
    for (int i = 0; i <= 3; i++) {
        if (i == 2)
            continue;
        assert_int_equal(w->blocks[i].rel.spc, 1663);
        assert_int_equal(w->blocks[i].rel.db, 5);
        assert_int_equal(w->blocks[i].rel.rel, 16400);
        assert_int_equal(w->blocks[i].fork, PG_MAIN_FORKNUM);
        assert_false(w->blocks[i].has_image);
    }
    assert_int_equal(w->blocks[0].blkno, 10);
    assert_int_equal(w->blocks[1].blkno, 11);
    assert_int_equal(w->blocks[3].blkno, 4);
    assert_true(w->blocks[1].will_init);
    assert_false(w->blocks[0].will_init);
    assert_memory_equal(w->blocks[0].data, "AA", 2);
    assert_memory_equal(w->blocks[1].data, "BBB", 3);
    assert_null(w->blocks[3].data);
    assert_int_equal(w->blocks[3].data_len, 0);
    assert_memory_equal(w->main_data, "M", 1);
    free(r);

    /* SAME_REL copies the last named relation; the fork may differ (heap
     * VISIBLE: the VM page, then the heap page); a new relation resets. */
    r = rb_new(PG_RM_HEAP2, PG_XLOG_HEAP2_VISIBLE, 0);
    blk(r, 0, PG_VM_FORKNUM, 0);
    rel(r, 1663, 5, 16384);
    put32(r, 0);
    blk(r, 1, PG_BKPBLOCK_SAME_REL | PG_MAIN_FORKNUM, 0);
    put32(r, 7);
    blk(r, 2, 0, 0);
    rel(r, 1664, 0, 1262);
    put32(r, 1);
    blk(r, PG_XLR_MAX_BLOCK_ID, PG_BKPBLOCK_SAME_REL | PG_FSM_FORKNUM, 0);
    put32(r, 2);
    assert_int_equal(dec(r, w, &e), TARN_OK);
    assert_int_equal(w->max_block_id, PG_XLR_MAX_BLOCK_ID);
    assert_int_equal(w->blocks[0].fork, PG_VM_FORKNUM);
    assert_int_equal(w->blocks[1].fork, PG_MAIN_FORKNUM);
    assert_int_equal(w->blocks[1].rel.rel, 16384);
    assert_int_equal(w->blocks[2].rel.spc, 1664);
    assert_int_equal(w->blocks[PG_XLR_MAX_BLOCK_ID].rel.rel, 1262);
    assert_int_equal(w->blocks[PG_XLR_MAX_BLOCK_ID].fork, PG_FSM_FORKNUM);
    assert_int_equal(w->blocks[PG_XLR_MAX_BLOCK_ID].blkno, 2);
    free(r);
    free(w);
}

static void
test_image_and_data(void **state)
{
    walrec *w = malloc(sizeof(*w));
    uint8_t *page = malloc(PG_BLCKSZ), *out = malloc(PG_BLCKSZ);
    const uint8_t *p;
    tarn_err e;
    rb *r;

    (void)state;
    make_page(page, 100, 292);
    r = rb_new(PG_RM_HEAP, PG_XLOG_HEAP_UPDATE, 55);
    /* Block 0: plain image with a hole, and data (a verification image
     * keeps its data). */
    blk(r, 0, PG_BKPBLOCK_HAS_IMAGE | PG_BKPBLOCK_HAS_DATA, 6);
    img(r, PG_BLCKSZ - 192, 100, PG_BKPIMAGE_HAS_HOLE, -1);
    rel(r, 1663, 5, 16384);
    put32(r, 1);
    /* Block 1: whole-page image, no data. */
    blk(r, 1, PG_BKPBLOCK_HAS_IMAGE | PG_BKPBLOCK_SAME_REL, 0);
    img(r, PG_BLCKSZ, 0, PG_BKPIMAGE_APPLY, -1);
    put32(r, 2);
    put8(r, PG_XLR_BLOCK_ID_DATA_SHORT);
    put8(r, 4);
    putn(r, page, 100);
    putn(r, page + 292, PG_BLCKSZ - 292);
    putn(r, "data00", 6);
    putn(r, page, PG_BLCKSZ);
    putn(r, "main", 4);
    assert_int_equal(dec(r, w, &e), TARN_OK);
    p = r->b + r->n - 4 - PG_BLCKSZ - 6 - (PG_BLCKSZ - 192);
    assert_ptr_equal(w->blocks[0].image, p);
    assert_true(w->blocks[0].has_image);
    assert_false(w->blocks[0].apply);
    assert_int_equal(w->blocks[0].image_len, PG_BLCKSZ - 192);
    assert_int_equal(w->blocks[0].hole_offset, 100);
    assert_int_equal(w->blocks[0].hole_length, 192);
    assert_int_equal(w->blocks[0].bimg_info, PG_BKPIMAGE_HAS_HOLE);
    assert_memory_equal(w->blocks[0].data, "data00", 6);
    assert_true(w->blocks[1].apply);
    assert_int_equal(w->blocks[1].hole_length, 0);
    assert_ptr_equal(w->blocks[1].image, p + PG_BLCKSZ - 192 + 6);
    assert_null(w->blocks[1].data);
    assert_memory_equal(w->main_data, "main", 4);
    assert_int_equal(walrec_restore_image(&w->blocks[0], out, &e), TARN_OK);
    assert_memory_equal(out, page, PG_BLCKSZ);
    assert_int_equal(walrec_restore_image(&w->blocks[1], out, &e), TARN_OK);
    assert_memory_equal(out, page, PG_BLCKSZ);
    free(r);

    /* A plain image whose hole runs to the end of the page. */
    r = img_rec(PG_BLCKSZ - 100, PG_BLCKSZ - 100,
                PG_BKPIMAGE_HAS_HOLE | PG_BKPIMAGE_APPLY, -1);
    assert_int_equal(dec(r, w, &e), TARN_OK);
    assert_int_equal(w->blocks[0].hole_length, 100);
    assert_int_equal(walrec_restore_image(&w->blocks[0], out, &e), TARN_OK);
    assert_int_equal(out[PG_BLCKSZ - 101], 0xAB);
    assert_int_equal(out[PG_BLCKSZ - 100], 0);
    assert_int_equal(out[PG_BLCKSZ - 1], 0);
    free(r);
    free(page);
    free(out);
    free(w);
}

/* A walrec reused for a second record keeps nothing of the first: the
 * decoder once left has_image set on a block that had no image. */
static void
test_reuse(void **state)
{
    walrec *w = malloc(sizeof(*w));
    uint8_t *page = malloc(PG_BLCKSZ);
    tarn_err e;
    rb *r;

    (void)state;
    r = img_rec(PG_BLCKSZ - 100, 50, PG_BKPIMAGE_HAS_HOLE | PG_BKPIMAGE_APPLY,
                -1);
    assert_int_equal(dec(r, w, &e), TARN_OK);
    assert_true(w->blocks[0].has_image);
    free(r);
    r = rb_new(PG_RM_HEAP, PG_XLOG_HEAP_INSERT, 5);
    blk(r, 0, PG_BKPBLOCK_HAS_DATA, 2);
    rel(r, 1663, 5, 16384);
    put32(r, 1);
    putn(r, "hi", 2);
    assert_int_equal(dec(r, w, &e), TARN_OK);
    assert_false(w->blocks[0].has_image);
    assert_false(w->blocks[0].apply);
    assert_null(w->blocks[0].image);
    assert_int_equal(w->blocks[0].image_len, 0);
    assert_int_equal(w->blocks[0].hole_offset, 0);
    assert_int_equal(w->blocks[0].hole_length, 0);
    assert_memory_equal(w->blocks[0].data, "hi", 2);
    assert_int_equal(walrec_restore_image(&w->blocks[0], page, &e),
                     TARN_EINVAL);
    free(r);
    /* And the reverse: data then none. */
    r = rb_new(PG_RM_HEAP, PG_XLOG_HEAP_INSERT, 5);
    blk(r, 0, 0, 0);
    rel(r, 1663, 5, 16384);
    put32(r, 1);
    assert_int_equal(dec(r, w, &e), TARN_OK);
    assert_null(w->blocks[0].data);
    assert_int_equal(w->blocks[0].data_len, 0);
    free(r);
    free(page);
    free(w);
}

/* ---- image restoration ---- */

/* Decode an FPI record carrying @p stored as block 0's image. */
static rb *
fpi_rec(const uint8_t *stored, uint16_t len, uint16_t hole_off, uint8_t bimg,
        int hole_len)
{
    rb *r = rb_new(PG_RM_XLOG, PG_XLOG_FPI, 0);

    blk(r, 0, PG_BKPBLOCK_HAS_IMAGE, 0);
    img(r, len, hole_off, bimg, hole_len);
    rel(r, 1663, 5, 16384);
    put32(r, 9);
    putn(r, stored, len);
    return r;
}

/* @p page without its hole [lower, upper), as PostgreSQL stores it. */
static size_t
cut_hole(const uint8_t *page, uint16_t lower, uint16_t upper, uint8_t *out)
{
    memcpy(out, page, lower);
    memcpy(out + lower, page + upper, (size_t)(PG_BLCKSZ - upper));
    return (size_t)(PG_BLCKSZ - (upper - lower));
}

static void
test_restore_lz4_zstd(void **state)
{
    walrec *w = malloc(sizeof(*w));
    uint8_t *page = malloc(PG_BLCKSZ), *raw = malloc(PG_BLCKSZ);
    uint8_t *comp = malloc(2 * PG_BLCKSZ), *out = malloc(PG_BLCKSZ);
    const uint8_t A = PG_BKPIMAGE_APPLY, H = PG_BKPIMAGE_HAS_HOLE;
    size_t rawlen;
    tarn_err e;
    int n;
    rb *r;

    (void)state;
    make_page(page, 64, 4000);
    rawlen = cut_hole(page, 64, 4000, raw);

    /* lz4 with a hole. */
    n = LZ4_compress_default((const char *)raw, (char *)comp, (int)rawlen,
                             2 * PG_BLCKSZ);
    assert_true(n > 0 && n < PG_BLCKSZ);
    r = fpi_rec(comp, (uint16_t)n, 64, A | H | PG_BKPIMAGE_COMPRESS_LZ4,
                4000 - 64);
    assert_int_equal(dec(r, w, &e), TARN_OK);
    memset(out, 0xEE, PG_BLCKSZ);
    assert_int_equal(walrec_restore_image(&w->blocks[0], out, &e), TARN_OK);
    assert_memory_equal(out, page, PG_BLCKSZ);
    /* The stream one byte short. */
    w->blocks[0].image_len--;
    assert_int_equal(walrec_restore_image(&w->blocks[0], out, &e),
                     TARN_ECORRUPT);
    assert_non_null(strstr(e.msg, "lz4 image of block 9"));
    free(r);

    /* zstd without a hole. */
    {
        size_t z = ZSTD_compress(comp, 2 * PG_BLCKSZ, page, PG_BLCKSZ, 3);
        assert_false(ZSTD_isError(z));
        r = fpi_rec(comp, (uint16_t)z, 0, A | PG_BKPIMAGE_COMPRESS_ZSTD, -1);
        assert_int_equal(dec(r, w, &e), TARN_OK);
        assert_int_equal(w->blocks[0].hole_length, 0);
        assert_int_equal(walrec_restore_image(&w->blocks[0], out, &e), TARN_OK);
        assert_memory_equal(out, page, PG_BLCKSZ);
        free(r);
        /* zstd of the holed image, claimed to be a whole page: too short. */
        z = ZSTD_compress(comp, 2 * PG_BLCKSZ, raw, rawlen, 3);
        r = fpi_rec(comp, (uint16_t)z, 0, A | PG_BKPIMAGE_COMPRESS_ZSTD, -1);
        assert_int_equal(dec(r, w, &e), TARN_OK);
        assert_int_equal(walrec_restore_image(&w->blocks[0], out, &e),
                         TARN_ECORRUPT);
        assert_non_null(strstr(e.msg, "zstd image"));
        free(r);
        /* With the hole it is right. */
        r = fpi_rec(comp, (uint16_t)z, 64, A | H | PG_BKPIMAGE_COMPRESS_ZSTD,
                    4000 - 64);
        assert_int_equal(dec(r, w, &e), TARN_OK);
        assert_int_equal(walrec_restore_image(&w->blocks[0], out, &e), TARN_OK);
        assert_memory_equal(out, page, PG_BLCKSZ);
        free(r);
    }

    /* An uncompressed image whose length disagrees with the hole (only
     * possible for a block not made by the decoder). */
    r = fpi_rec(raw, (uint16_t)rawlen, 64, A | H, -1);
    assert_int_equal(dec(r, w, &e), TARN_OK);
    assert_int_equal(walrec_restore_image(&w->blocks[0], out, &e), TARN_OK);
    assert_memory_equal(out, page, PG_BLCKSZ);
    w->blocks[0].hole_length--;
    assert_int_equal(walrec_restore_image(&w->blocks[0], out, &e),
                     TARN_ECORRUPT);
    assert_non_null(strstr(e.msg, "expected"));
    free(r);
    free(page);
    free(raw);
    free(comp);
    free(out);
    free(w);
}

/* ---- pglz ---- */

static void
test_pglz_streams(void **state)
{
    uint8_t out[600];

    (void)state;
    /* Literals only: control byte 0, then 8 bytes; then 2 more. */
    {
        const uint8_t s[] = {0x00, 'a', 'b', 'c',  'd', 'e',
                             'f',  'g', 'h', 0x00, 'i', 'j'};
        assert_int_equal(pg_pglz_decompress(s, sizeof(s), out, 10), 10);
        assert_memory_equal(out, "abcdefghij", 10);
    }
    /* A back reference: "abcd" then copy 4 from offset 4. */
    {
        const uint8_t s[] = {0x10, 'a', 'b', 'c', 'd', 0x01, 0x04};
        assert_int_equal(pg_pglz_decompress(s, sizeof(s), out, 8), 8);
        assert_memory_equal(out, "abcdabcd", 8);
    }
    /* Overlapping copies: offset 1 repeats a byte, offset 2 a pair. */
    {
        /* 'x', then 10 from offset 1 (10 x's). */
        const uint8_t s[] = {0x02, 'x', 0x07, 0x01};
        /* The same, 'y', then 5 from offset 2. */
        const uint8_t s2[] = {0x0A, 'x', 0x07, 0x01, 'y', 0x02, 0x02};
        assert_int_equal(pg_pglz_decompress(s, sizeof(s), out, 11), 11);
        assert_memory_equal(out, "xxxxxxxxxxx", 11);
        assert_int_equal(pg_pglz_decompress(s2, sizeof(s2), out, 17), 17);
        assert_memory_equal(out, "xxxxxxxxxxxyxyxyx", 17);
    }
    /* The long form: length nibble 15 means 18 plus the next byte. */
    {
        const uint8_t s[] = {0x02, 'q', 0x0F, 0x01, 200};
        uint8_t want[219];
        memset(want, 'q', sizeof(want));
        assert_int_equal(pg_pglz_decompress(s, sizeof(s), out, 219), 219);
        assert_memory_equal(out, want, 219);
        /* 18 + 0 */
        const uint8_t s0[] = {0x02, 'q', 0x0F, 0x01, 0};
        assert_int_equal(pg_pglz_decompress(s0, sizeof(s0), out, 19), 19);
        /* Offset using the high nibble: 0x1 << 8 | 0x00 = 256. */
        uint8_t lit[1 + 256 + 32 + 3];
        size_t n = 0;
        for (int i = 0; i < 256; i++) {
            if (i % 8 == 0)
                lit[n++] = 0x00;
            lit[n++] = (uint8_t)i;
        }
        lit[n++] = 0x01;
        lit[n++] = 0x11; /* length 1 + 3 = 4, offset 0x100 | 0x00 */
        lit[n++] = 0x00;
        assert_int_equal(pg_pglz_decompress(lit, (int)n, out, 260), 260);
        assert_memory_equal(out + 256, "\x00\x01\x02\x03", 4);
    }
    /* A reference longer than what is wanted is cut at rawsize. */
    {
        const uint8_t s[] = {0x02, 'z', 0x0F, 0x01, 100};
        assert_int_equal(pg_pglz_decompress(s, sizeof(s), out, 50), 50);
    }
    /* Empty input for an empty output. */
    assert_int_equal(pg_pglz_decompress(out, 0, out, 0), 0);
}

static void
test_pglz_malformed(void **state)
{
    uint8_t out[600];

    (void)state;
    /* Offset 0. */
    {
        const uint8_t s[] = {0x02, 'a', 0x01, 0x00};
        assert_int_equal(pg_pglz_decompress(s, sizeof(s), out, 5), -1);
    }
    /* Offset beyond what was produced, also as the very first item. */
    {
        const uint8_t s[] = {0x02, 'a', 0x01, 0x02};
        const uint8_t s1[] = {0x01, 0x01, 0x01};
        assert_int_equal(pg_pglz_decompress(s, sizeof(s), out, 5), -1);
        assert_int_equal(pg_pglz_decompress(s1, sizeof(s1), out, 4), -1);
    }
    /* A tag cut after one byte; a long length byte missing. */
    {
        const uint8_t s[] = {0x02, 'a', 0x01};
        const uint8_t s2[] = {0x02, 'a', 0x0F, 0x01};
        assert_int_equal(pg_pglz_decompress(s, sizeof(s), out, 5), -1);
        assert_int_equal(pg_pglz_decompress(s2, sizeof(s2), out, 30), -1);
    }
    /* The output is not filled: too few literals, a lone control byte. */
    {
        const uint8_t s[] = {0x00, 'a', 'b'};
        const uint8_t s1[] = {0x00};
        assert_int_equal(pg_pglz_decompress(s, sizeof(s), out, 3), -1);
        assert_int_equal(pg_pglz_decompress(s1, sizeof(s1), out, 3), -1);
        assert_int_equal(pg_pglz_decompress(s, 0, out, 1), -1);
    }
    /* Input left over once the output is full. */
    {
        const uint8_t s[] = {0x00, 'a', 'b', 'c'};
        const uint8_t s1[] = {0x02, 'z', 0x0F, 0x01, 100, 0x00};
        assert_int_equal(pg_pglz_decompress(s, sizeof(s), out, 2), -1);
        assert_int_equal(pg_pglz_decompress(s1, sizeof(s1), out, 50), -1);
    }
}

static void
test_restore_pglz(void **state)
{
    walrec *w = malloc(sizeof(*w));
    uint8_t *page = malloc(PG_BLCKSZ), *stream = malloc(2 * PG_BLCKSZ);
    uint8_t *out = malloc(PG_BLCKSZ);
    const uint8_t A = PG_BKPIMAGE_APPLY, H = PG_BKPIMAGE_HAS_HOLE;
    const uint8_t P = PG_BKPIMAGE_COMPRESS_PGLZ;
    uint8_t raw[PG_BLCKSZ];
    size_t n = 0, rawlen, i = 0;
    tarn_err e;
    rb *r;

    (void)state;
    /* A page: header, a hole [40, 8000), then 192 bytes of "tuple"
     * repeating with period 16. */
    memset(page, 0, PG_BLCKSZ);
    tarn_put_u16(page + PG_PD_LOWER, 40);
    tarn_put_u16(page + PG_PD_UPPER, 8000);
    tarn_put_u16(page + PG_PD_SPECIAL, PG_BLCKSZ);
    tarn_put_u16(page + PG_PD_PAGESIZE_VERSION, PG_BLCKSZ | 4);
    for (int k = 8000; k < PG_BLCKSZ; k++)
        page[k] = (uint8_t)(k % 16 + 1);
    rawlen = cut_hole(page, 40, 8000, raw);
    assert_int_equal(rawlen, 232);
    /* Encode: the first 56 bytes (40 header + 16 of the period) as
     * literals, then references of offset 16 for the rest. */
    while (i < 56) {
        size_t ctrl = n++;
        stream[ctrl] = 0;
        for (int bit = 0; bit < 8 && i < 56; bit++)
            stream[n++] = raw[i++];
    }
    stream[n++] = 0x03; /* two references */
    stream[n++] = 0x0F; /* 18 + extra */
    stream[n++] = 0x10;
    stream[n++] = 100; /* 118 bytes */
    stream[n++] = 0x0F;
    stream[n++] = 0x10;
    stream[n++] = 40; /* 58 bytes: 56 + 118 + 58 = 232 */
    r = fpi_rec(stream, (uint16_t)n, 40, A | H | P, 8000 - 40);
    assert_int_equal(dec(r, w, &e), TARN_OK);
    assert_int_equal(w->blocks[0].hole_length, 7960);
    memset(out, 0xEE, PG_BLCKSZ);
    assert_int_equal(walrec_restore_image(&w->blocks[0], out, &e), TARN_OK);
    assert_memory_equal(out, page, PG_BLCKSZ);
    /* A stream one byte short of the image.  (One byte too long is
     * accepted: the last reference is cut at the end, as PostgreSQL
     * does.) */
    w->blocks[0].hole_length--;
    assert_int_equal(walrec_restore_image(&w->blocks[0], out, &e),
                     TARN_ECORRUPT);
    assert_non_null(strstr(e.msg, "pglz image of block 9"));
    free(r);
    free(page);
    free(stream);
    free(out);
    free(w);
}

static void
test_rmgr_names(void **state)
{
    (void)state;
    assert_string_equal(pg_rmgr_name(PG_RM_XLOG), "XLOG");
    assert_string_equal(pg_rmgr_name(PG_RM_HEAP), "Heap");
    assert_string_equal(pg_rmgr_name(PG_RM_REPLORIGIN), "ReplicationOrigin");
    assert_string_equal(pg_rmgr_name(PG_RM_LOGICALMSG), "LogicalMessage");
    assert_string_equal(pg_rmgr_name(PG_RM_LOGICALMSG + 1), "?");
    assert_string_equal(pg_rmgr_name(127), "?");
    assert_string_equal(pg_rmgr_name(128), "custom");
    assert_string_equal(pg_rmgr_name(255), "custom");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_short_and_length),
        cmocka_unit_test(test_block_ids),
        cmocka_unit_test(test_flags_and_fork),
        cmocka_unit_test(test_bad_images),
        cmocka_unit_test(test_lengths_add_up),
        cmocka_unit_test(test_empty_and_main),
        cmocka_unit_test(test_origin_toplevel),
        cmocka_unit_test(test_gaps_same_rel),
        cmocka_unit_test(test_image_and_data),
        cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_restore_lz4_zstd),
        cmocka_unit_test(test_pglz_streams),
        cmocka_unit_test(test_pglz_malformed),
        cmocka_unit_test(test_restore_pglz),
        cmocka_unit_test(test_rmgr_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
