/*
 * test_redo_gin.c - GIN redo on crafted records: a posting tree root from
 * CREATE_PTREE; leaf INSERTs replaying segment actions (items added to a
 * segment and the segment encoded again, segments replaced, inserted and
 * deleted); entry and internal data page inserts; the pending list
 * (INSERT_LISTPAGE, UPDATE_META_PAGE, DELETE_LISTPAGE) and DELETE_PAGE;
 * and the refusals, each naming the rmgr, the record type and the block
 * (a malformed varbyte posting list among them).
 */
#include "redo_record.h"

#include "storage/redo/bufpage.h"

#define RM_GIN 13

#define CREATE_PTREE          0x10
#define INSERT                0x20
#define SPLIT                 0x30
#define DELETE_PAGE           0x50
#define UPDATE_META_PAGE      0x60
#define INSERT_LISTPAGE       0x70
#define DELETE_LISTPAGE       0x80
#define VACUUM_DATA_LEAF_PAGE 0x90

#define SPECIAL (8192 - 8)
#define DATA    32 /* header, right bound */

static void
tid(uint8_t *p, uint32_t blk, uint16_t off)
{
    tarn_put_u16(p, (uint16_t)(blk >> 16));
    tarn_put_u16(p + 2, (uint16_t)blk);
    tarn_put_u16(p + 4, off);
}

/* A segment of first TID (blk, off) and @p n varbyte bytes. */
static size_t
segment(uint8_t *p, uint32_t blk, uint16_t off, const uint8_t *bytes, size_t n)
{
    tid(p, blk, off);
    tarn_put_u16(p + 6, (uint16_t)n);
    if (n > 0)
        memcpy(p + 8, bytes, n);
    if (n & 1)
        p[8 + n++] = 0;
    return 8 + n;
}

static uint16_t
flags(const uint8_t *page)
{
    return tarn_get_u16(page + SPECIAL + 6);
}

/* A posting tree root holding (1,1), (1,2), (1,3). */
static void
ptree_root(uint8_t *page)
{
    uint8_t m[4 + 16];
    blockref b = {.blkno = 4, .will_init = true};
    tbuf v = {0};
    tarn_err err;
    size_t n = segment(m + 4, 1, 1, (const uint8_t *)"\x01\x01", 2);

    tarn_put_u32(m, (uint32_t)n);
    memset(page, 0x5A, 8192);
    redo_record(&v, RM_GIN, CREATE_PTREE, &b, 1, 0, m, (uint8_t)(4 + n));
    assert_int_equal(apply(page, 4, &v, 0x1000, &err), TARN_OK);
    tbuf_free(&v);
}

static void
test_create_ptree(void **state)
{
    uint8_t page[8192];

    (void)state;
    ptree_root(page);
    assert_int_equal(tarn_get_u32(page + 4), 0x1000);
    assert_int_equal(flags(page), 0x83); /* DATA | LEAF | COMPRESSED */
    assert_int_equal(tarn_get_u32(page + SPECIAL), 0xFFFFFFFF);
    assert_int_equal(tarn_get_u16(page + 12), DATA + 10);
    assert_int_equal(tarn_get_u16(page + 14), SPECIAL);
    assert_int_equal(tarn_get_u16(page + DATA + 2), 1); /* first: (1,1) */
    assert_int_equal(tarn_get_u16(page + DATA + 6), 2);
    assert_int_equal(page[DATA + 8], 1);
    assert_int_equal(page[DATA + 10], 0);
}

static void
test_leaf_segments(void **state)
{
    uint8_t page[8192], d[64], m[2];
    blockref b = {.blkno = 4, .data = d};
    tbuf v = {0};
    tarn_err err;
    size_t n;

    (void)state;
    ptree_root(page);
    tarn_put_u16(m, 3); /* ISDATA | ISLEAF */
    /* ADDITEMS (1,5) and (2,1) to segment 0: deltas 1, 1, 2, then
     * (2 << 11 | 1) - (1 << 11 | 5) = 2044, two varbyte bytes. */
    tarn_put_u16(d, 1);
    d[2] = 0, d[3] = 4;
    tarn_put_u16(d + 4, 2);
    tid(d + 6, 1, 5);
    tid(d + 12, 2, 1);
    b.len = 18;
    redo_record(&v, RM_GIN, INSERT, &b, 1, 0, m, 2);
    assert_int_equal(apply(page, 4, &v, 0x2000, &err), TARN_OK);
    assert_int_equal(tarn_get_u16(page + 12), DATA + 14);
    assert_int_equal(tarn_get_u16(page + DATA + 6), 5);
    assert_memory_equal(page + DATA + 8, "\x01\x01\x02\xFC\x0F\x00", 6);
    assert_int_equal(tarn_get_u32(page + 4), 0x2000);

    /* VACUUM_DATA_LEAF_PAGE: REPLACE segment 0 by (3,1) alone, INSERT
     * (4,1), (4,2) after it. */
    tarn_put_u16(d, 2);
    d[2] = 0, d[3] = 3;
    n = 4 + segment(d + 4, 3, 1, NULL, 0);
    d[n] = 1, d[n + 1] = 2;
    n += 2 + segment(d + n + 2, 4, 1, (const uint8_t *)"\x01", 1);
    b.len = (uint16_t)n;
    redo_record(&v, RM_GIN, VACUUM_DATA_LEAF_PAGE, &b, 1, 0, NULL, 0);
    assert_int_equal(apply(page, 4, &v, 0x2100, &err), TARN_OK);
    assert_int_equal(tarn_get_u16(page + 12), DATA + 18);
    assert_int_equal(tarn_get_u16(page + DATA + 2), 3);
    assert_int_equal(tarn_get_u16(page + DATA + 8 + 2), 4);
    assert_int_equal(page[DATA + 8 + 8], 1);

    /* DELETE segment 0: (4,1), (4,2) move to the front. */
    tarn_put_u16(d, 1);
    d[2] = 0, d[3] = 1;
    b.len = 4;
    redo_record(&v, RM_GIN, VACUUM_DATA_LEAF_PAGE, &b, 1, 0, NULL, 0);
    assert_int_equal(apply(page, 4, &v, 0x2200, &err), TARN_OK);
    assert_int_equal(tarn_get_u16(page + 12), DATA + 10);
    assert_int_equal(tarn_get_u16(page + DATA + 2), 4);

    /* An action on segment 3 of a one-segment list. */
    d[2] = 3;
    redo_record(&v, RM_GIN, VACUUM_DATA_LEAF_PAGE, &b, 1, 0, NULL, 0);
    assert_int_equal(apply(page, 4, &v, 0x2300, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Gin VACUUM_DATA_LEAF_PAGE"));
    assert_non_null(strstr(err.msg, "block 4 of 1663/5/16384"));
    assert_non_null(strstr(err.msg, "past the end"));
    /* An unknown action. */
    d[2] = 0, d[3] = 7;
    redo_record(&v, RM_GIN, VACUUM_DATA_LEAF_PAGE, &b, 1, 0, NULL, 0);
    assert_int_equal(apply(page, 4, &v, 0x2300, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "unexpected GIN leaf action 7"));
    /* ADDITEMS whose item count runs past the data. */
    d[3] = 4;
    tarn_put_u16(d + 4, 9);
    b.len = 12;
    redo_record(&v, RM_GIN, INSERT, &b, 1, 0, m, 2);
    assert_int_equal(apply(page, 4, &v, 0x2300, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Gin INSERT"));
    assert_non_null(strstr(err.msg, "9 items"));
    tbuf_free(&v);
}

static void
test_malformed_varbyte(void **state)
{
    uint8_t page[8192], d[16], m[2];
    blockref b = {.blkno = 4, .data = d, .len = 12};
    tbuf v = {0};
    tarn_err err;

    (void)state;
    ptree_root(page);
    /* The segment's last byte has its continuation bit set: the varbyte
     * runs off the end of the segment. */
    page[DATA + 9] = 0x81;
    tarn_put_u16(m, 3);
    tarn_put_u16(d, 1);
    d[2] = 0, d[3] = 4;
    tarn_put_u16(d + 4, 1);
    tid(d + 6, 9, 1);
    redo_record(&v, RM_GIN, INSERT, &b, 1, 0, m, 2);
    assert_int_equal(apply(page, 4, &v, 0x3000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "malformed posting list segment 0"));
    /* Eight continuation bytes in a row. */
    ptree_root(page);
    tarn_put_u16(page + DATA + 6, 8);
    memset(page + DATA + 8, 0xFF, 8);
    tarn_put_u16(page + 12, DATA + 16);
    redo_record(&v, RM_GIN, INSERT, &b, 1, 0, m, 2);
    assert_int_equal(apply(page, 4, &v, 0x3000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "malformed posting list"));
    /* A segment claiming more bytes than the page's list holds. */
    ptree_root(page);
    tarn_put_u16(page + DATA + 6, 400);
    redo_record(&v, RM_GIN, INSERT, &b, 1, 0, m, 2);
    assert_int_equal(apply(page, 4, &v, 0x3000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "overruns the list"));
    tbuf_free(&v);
}

/* A PostingItem: child block, key TID. */
static void
posting_item(uint8_t *p, uint32_t child, uint32_t blk, uint16_t off)
{
    tarn_put_u16(p, (uint16_t)(child >> 16));
    tarn_put_u16(p + 2, (uint16_t)child);
    tid(p + 4, blk, off);
}

/* A 16-byte index tuple whose t_tid is (blk, off). */
static void
itup(uint8_t *t, uint32_t blk, uint16_t off, uint8_t key)
{
    memset(t, key, 16);
    tid(t, blk, off);
    tarn_put_u16(t + 6, 16);
}

static void
test_entry_and_internal(void **state)
{
    uint8_t page[8192], child[8192], d[4 + 16], m[10], t[16];
    blockref b[2] = {{.blkno = 1, .data = d, .len = 20}, {.blkno = 7}};
    tbuf v = {0};
    tarn_err err;
    unsigned len;
    uint8_t *it;

    (void)state;
    /* Entry leaf: insert at offset 1. */
    pg_page_init(page, 8);
    tarn_put_u32(page + SPECIAL, 0xFFFFFFFF);
    tarn_put_u16(page + SPECIAL + 6, 0x02);
    tarn_put_u16(m, 2); /* ISLEAF */
    tarn_put_u16(d, 1);
    d[2] = 0, d[3] = 0;
    itup(d + 4, 0, 1, 0x41);
    redo_record(&v, RM_GIN, INSERT, b, 1, 0, m, 2);
    assert_int_equal(apply(page, 1, &v, 0x4000, &err), TARN_OK);
    it = pg_page_item(page, 1, &len);
    assert_non_null(it);
    assert_int_equal(len, 16);
    assert_int_equal(it[8], 0x41);
    /* isDelete: the tuple at 1 is replaced. */
    d[2] = 1;
    itup(d + 4, 0, 1, 0x42);
    redo_record(&v, RM_GIN, INSERT, b, 1, 0, m, 2);
    assert_int_equal(apply(page, 1, &v, 0x4100, &err), TARN_OK);
    assert_int_equal(pg_page_max_offset(page), 1);
    it = pg_page_item(page, 1, &len);
    assert_int_equal(it[8], 0x42);
    /* Offset 5 on a page of 1. */
    d[2] = 0;
    tarn_put_u16(d, 5);
    redo_record(&v, RM_GIN, INSERT, b, 1, 0, m, 2);
    assert_int_equal(apply(page, 1, &v, 0x4200, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Gin INSERT"));
    assert_non_null(
        strstr(err.msg, "failed to add item (16 bytes) at offset 5"));
    /* A tuple longer than the data. */
    tarn_put_u16(d, 1);
    tarn_put_u16(d + 4 + 6, 40);
    redo_record(&v, RM_GIN, INSERT, b, 1, 0, m, 2);
    assert_int_equal(apply(page, 1, &v, 0x4200, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "tuple of 40 bytes"));

    /* Entry internal page: the insert finishing child 7's split (right
     * sibling 9) points the old downlink at 9 and puts the new tuple
     * (downlink 7) before it. */
    pg_page_init(page, 8);
    tarn_put_u16(page + SPECIAL + 6, 0);
    itup(t, 7, 0xFFFF, 0x50);
    assert_int_equal(pg_page_add_item(page, t, 16, 1, 0), 1);
    tarn_put_u16(m, 0);
    tarn_put_u16(m + 2, 0), tarn_put_u16(m + 4, 7); /* left child */
    tarn_put_u16(m + 6, 0), tarn_put_u16(m + 8, 9); /* right child */
    tarn_put_u16(d, 1);
    itup(d + 4, 7, 0xFFFF, 0x51);
    redo_record(&v, RM_GIN, INSERT, b, 2, 0, m, 10);
    assert_int_equal(apply(page, 1, &v, 0x4300, &err), TARN_OK);
    it = pg_page_item(page, 1, &len);
    assert_int_equal(it[8], 0x51);
    it = pg_page_item(page, 2, &len);
    assert_int_equal(it[8], 0x50);
    assert_int_equal(tarn_get_u16(it + 2), 9);
    assert_int_equal(tarn_get_u16(it + 4), 0);
    /* Block 1: the child's INCOMPLETE_SPLIT flag is cleared. */
    pg_page_init(child, 8);
    tarn_put_u16(child + SPECIAL + 6, 0x42);
    redo_record(&v, RM_GIN, INSERT, b, 2, 1, m, 10);
    assert_int_equal(apply(child, 7, &v, 0x4300, &err), TARN_OK);
    assert_int_equal(flags(child), 0x02);
    assert_int_equal(tarn_get_u32(child + 4), 0x4300);

    /* Internal posting tree page of two items: insert at 2. */
    pg_page_init(page, 8);
    tarn_put_u16(page + SPECIAL + 6, 0x01);
    tarn_put_u16(page + SPECIAL + 4, 2);
    posting_item(page + DATA, 3, 5, 5);
    posting_item(page + DATA + 10, 7, 0xFFFFFFFF, 0xFFFF);
    tarn_put_u16(page + 12, DATA + 20);
    tarn_put_u16(m, 1); /* ISDATA */
    tarn_put_u16(d, 2);
    posting_item(d + 2, 7, 8, 8);
    b[0].len = 12;
    redo_record(&v, RM_GIN, INSERT, b, 2, 0, m, 10);
    assert_int_equal(apply(page, 1, &v, 0x4400, &err), TARN_OK);
    assert_int_equal(tarn_get_u16(page + SPECIAL + 4), 3);
    assert_int_equal(tarn_get_u16(page + 12), DATA + 30);
    assert_int_equal(tarn_get_u16(page + DATA + 10 + 2), 7);
    assert_int_equal(tarn_get_u16(page + DATA + 10 + 8), 8);
    assert_int_equal(tarn_get_u16(page + DATA + 20 + 2), 9);
    /* Item 5 of 3. */
    tarn_put_u16(d, 5);
    redo_record(&v, RM_GIN, INSERT, b, 2, 0, m, 10);
    assert_int_equal(apply(page, 1, &v, 0x4500, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "posting item 5 on a page of 3"));

    /* DELETE_PAGE: block 1, the parent, loses item 1. */
    {
        uint8_t dm[12];
        blockref db[3] = {{.blkno = 9}, {.blkno = 1}, {.blkno = 8}};
        tarn_put_u16(dm, 1);
        tarn_put_u32(dm + 4, 11);
        tarn_put_u32(dm + 8, 777);
        redo_record(&v, RM_GIN, DELETE_PAGE, db, 3, 1, dm, 12);
        assert_int_equal(apply(page, 1, &v, 0x4600, &err), TARN_OK);
        assert_int_equal(tarn_get_u16(page + SPECIAL + 4), 2);
        assert_int_equal(tarn_get_u16(page + 12), DATA + 20);
        assert_int_equal(tarn_get_u16(page + DATA + 2), 7);
        /* Block 0, the deleted page: flag and xid. */
        redo_record(&v, RM_GIN, DELETE_PAGE, db, 3, 0, dm, 12);
        assert_int_equal(apply(child, 9, &v, 0x4600, &err), TARN_OK);
        assert_int_equal(flags(child), 0x06);
        assert_int_equal(tarn_get_u32(child + 20), 777);
        /* Block 2, the left sibling: its right link. */
        redo_record(&v, RM_GIN, DELETE_PAGE, db, 3, 2, dm, 12);
        assert_int_equal(apply(page, 8, &v, 0x4600, &err), TARN_OK);
        assert_int_equal(tarn_get_u32(page + SPECIAL), 11);
        /* Short main data. */
        redo_record(&v, RM_GIN, DELETE_PAGE, db, 3, 2, dm, 8);
        assert_int_equal(apply(page, 8, &v, 0x4700, &err), TARN_ECORRUPT);
        assert_non_null(strstr(err.msg, "Gin DELETE_PAGE"));
        assert_non_null(strstr(err.msg, "main data of 8 bytes"));
    }
    tbuf_free(&v);
}

static void
test_pending_list(void **state)
{
    uint8_t meta[8192], list[8192], m[88] = {0}, tups[32], lm[8];
    blockref b[3] = {{.blkno = 0, .will_init = true},
                     {.blkno = 2, .data = tups, .len = 32},
                     {.blkno = 3, .will_init = true}};
    tbuf v = {0};
    tarn_err err;

    (void)state;
    /* INSERT_LISTPAGE: the tail of a sublist, with one tuple. */
    itup(tups, 0, 1, 0x61);
    itup(tups + 16, 0, 2, 0x62);
    tarn_put_u32(lm, 0xFFFFFFFF);
    tarn_put_u32(lm + 4, 1);
    b[1].will_init = true, b[1].len = 16;
    redo_record(&v, RM_GIN, INSERT_LISTPAGE, b + 1, 1, 0, lm, 8);
    memset(list, 0x99, sizeof list);
    assert_int_equal(apply(list, 2, &v, 0x5000, &err), TARN_OK);
    assert_int_equal(flags(list), 0x30); /* LIST | LIST_FULLROW */
    assert_int_equal(tarn_get_u16(list + SPECIAL + 4), 1);
    assert_int_equal(tarn_get_u32(list + SPECIAL), 0xFFFFFFFF);
    assert_int_equal(pg_page_max_offset(list), 1);
    /* Two tuples announced, one given. */
    tarn_put_u32(lm + 4, 2);
    redo_record(&v, RM_GIN, INSERT_LISTPAGE, b + 1, 1, 0, lm, 8);
    assert_int_equal(apply(meta, 2, &v, 0x5000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Gin INSERT_LISTPAGE"));
    assert_non_null(strstr(err.msg, "tuple 1 cut short"));

    /* UPDATE_META_PAGE: the metapage is rebuilt from the record; two
     * tuples go to the tail page 2, whose maxoff (heap tuples) grows. */
    tarn_put_u32(m + 16, 2);      /* head */
    tarn_put_u32(m + 16 + 4, 2);  /* tail */
    tarn_put_u32(m + 16 + 48, 2); /* ginVersion */
    tarn_put_u32(m + 72, 0xFFFFFFFF);
    tarn_put_u32(m + 80, 2);
    b[1].will_init = false, b[1].len = 32;
    redo_record(&v, RM_GIN, UPDATE_META_PAGE, b, 2, 0, m, 88);
    memset(meta, 0x77, sizeof meta);
    assert_int_equal(apply(meta, 0, &v, 0x5100, &err), TARN_OK);
    assert_int_equal(flags(meta), 0x08);
    assert_int_equal(tarn_get_u16(meta + 12), 24 + 56);
    assert_int_equal(tarn_get_u32(meta + 24), 2);
    assert_int_equal(tarn_get_u32(meta + 24 + 48), 2);
    assert_int_equal(meta[24 + 56], 0);
    redo_record(&v, RM_GIN, UPDATE_META_PAGE, b, 2, 1, m, 88);
    assert_int_equal(apply(list, 2, &v, 0x5100, &err), TARN_OK);
    assert_int_equal(pg_page_max_offset(list), 3);
    assert_int_equal(tarn_get_u16(list + SPECIAL + 4), 2);
    /* A new sublist after tail 2: its right link. */
    tarn_put_u32(m + 72, 2);
    tarn_put_u32(m + 76, 5);
    tarn_put_u32(m + 80, 0);
    b[1].len = 0;
    redo_record(&v, RM_GIN, UPDATE_META_PAGE, b, 2, 1, m, 88);
    assert_int_equal(apply(list, 2, &v, 0x5200, &err), TARN_OK);
    assert_int_equal(tarn_get_u32(list + SPECIAL), 5);

    /* DELETE_LISTPAGE of two pages: block 2 becomes an empty deleted
     * page; block 3 is beyond the two. */
    memset(m, 0, sizeof m);
    tarn_put_u32(m + 56, 2);
    b[1].will_init = true;
    redo_record(&v, RM_GIN, DELETE_LISTPAGE, b, 3, 2, m, 60);
    assert_int_equal(apply(list, 3, &v, 0x5300, &err), TARN_OK);
    assert_int_equal(flags(list), 0x04);
    assert_int_equal(tarn_get_u16(list + 12), 24);
    tarn_put_u32(m + 56, 1);
    redo_record(&v, RM_GIN, DELETE_LISTPAGE, b, 3, 2, m, 60);
    assert_int_equal(apply(list, 3, &v, 0x5300, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "no part of the record"));
    tbuf_free(&v);
}

static void
test_refusals(void **state)
{
    uint8_t page[8192], m[28] = {0};
    blockref b[4] = {{.blkno = 1}, {.blkno = 2}, {.blkno = 3}, {.blkno = 4}};
    tbuf v = {0};
    tarn_err err;

    (void)state;
    pg_page_init(page, 8);
    /* SPLIT's pages 0..2 come as images only. */
    redo_record(&v, RM_GIN, SPLIT, b, 4, 0, m, 28);
    assert_int_equal(apply(page, 1, &v, 0x6000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Gin SPLIT"));
    assert_non_null(strstr(err.msg, "full-page image"));
    /* ... block 3 is the child whose split it finishes. */
    tarn_put_u16(page + SPECIAL + 6, 0x40);
    redo_record(&v, RM_GIN, SPLIT, b, 4, 3, m, 28);
    assert_int_equal(apply(page, 4, &v, 0x6000, &err), TARN_OK);
    assert_int_equal(flags(page), 0);
    /* An unknown record type. */
    redo_record(&v, RM_GIN, 0xA0, b, 1, 0, m, 28);
    assert_int_equal(apply(page, 1, &v, 0x6000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "unknown op code 0xA0"));
    /* A CREATE_PTREE whose posting list is longer than the record. */
    tarn_put_u32(m, 100);
    b[0].will_init = true;
    redo_record(&v, RM_GIN, CREATE_PTREE, b, 1, 0, m, 28);
    assert_int_equal(apply(page, 1, &v, 0x6000, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "Gin CREATE_PTREE"));
    /* A leaf insert on a page that is not a posting tree leaf. */
    {
        uint8_t d[4] = {1, 0, 0, 1}, fm[2] = {3, 0};
        b[0].will_init = false, b[0].data = d, b[0].len = 4;
        redo_record(&v, RM_GIN, INSERT, b, 1, 0, fm, 2);
        assert_int_equal(apply(page, 1, &v, 0x6000, &err), TARN_ECORRUPT);
        assert_non_null(strstr(err.msg, "not a posting tree leaf"));
    }
    tbuf_free(&v);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_ptree),
        cmocka_unit_test(test_leaf_segments),
        cmocka_unit_test(test_malformed_varbyte),
        cmocka_unit_test(test_entry_and_internal),
        cmocka_unit_test(test_pending_list),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
