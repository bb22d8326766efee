/*
 * test_redo_brin.c - BRIN redo on crafted records: the metapage
 * CREATE_INDEX builds, an INSERT that initialises a regular page and the
 * revmap entry pointing at its tuple, SAMEPAGE_UPDATE, UPDATE's removal
 * of the old tuple (its line pointer left unused), REVMAP_EXTEND and
 * DESUMMARIZE; and the refusals, each naming the rmgr, the record type
 * and the block.
 */
#include "redo_record.h"

#include "storage/redo/bufpage.h"

#define RM_BRIN 17

#define CREATE_INDEX    0x00
#define INSERT          0x10
#define UPDATE          0x20
#define SAMEPAGE_UPDATE 0x30
#define REVMAP_EXTEND   0x40
#define DESUMMARIZE     0x50
#define INIT_PAGE       0x80

#define SPECIAL (8192 - 8)

/* A BrinTuple of @p len bytes (8-byte header: bt_blkno, bt_info). */
static void
brin_tuple(uint8_t *t, size_t len, uint32_t heapblk, uint8_t fill)
{
    memset(t, fill, len);
    tarn_put_u32(t, heapblk);
    t[4] = 8;
}

/* xl_brin_insert {heapBlk, pagesPerRange, offnum} at m. */
static void
xl_insert(uint8_t *m, uint32_t heapblk, uint32_t ppr, uint16_t off)
{
    tarn_put_u32(m, heapblk);
    tarn_put_u32(m + 4, ppr);
    tarn_put_u16(m + 8, off);
}

static void
test_create_and_extend(void **state)
{
    uint8_t page[8192], m[6];
    blockref b = {.blkno = 0, .will_init = true};
    blockref e[2] = {{.blkno = 0}, {.blkno = 1, .will_init = true}};
    tbuf v = {0};
    tarn_err err;

    (void)state;
    tarn_put_u32(m, 128);
    tarn_put_u16(m + 4, 1);
    memset(page, 0x33, sizeof page);
    redo_record(&v, RM_BRIN, CREATE_INDEX, &b, 1, 0, m, 6);
    assert_int_equal(apply(page, 0, &v, 0x1000, &err), TARN_OK);
    assert_int_equal(tarn_get_u32(page + 4), 0x1000);
    assert_int_equal(tarn_get_u16(page + 12), 40); /* pd_lower */
    assert_int_equal(tarn_get_u16(page + 14), SPECIAL);
    assert_int_equal(tarn_get_u16(page + SPECIAL + 6), 0xF091);
    assert_int_equal(tarn_get_u32(page + 24), 0xA8109CFA);
    assert_int_equal(tarn_get_u32(page + 28), 1);
    assert_int_equal(tarn_get_u32(page + 32), 128);
    assert_int_equal(tarn_get_u32(page + 36), 0);
    assert_int_equal(page[40], 0);
    /* The metapage learns its new last revmap page. */
    tarn_put_u32(m, 1);
    redo_record(&v, RM_BRIN, REVMAP_EXTEND, e, 2, 0, m, 4);
    assert_int_equal(apply(page, 0, &v, 0x1100, &err), TARN_OK);
    assert_int_equal(tarn_get_u32(page + 36), 1);
    assert_int_equal(tarn_get_u32(page + 4), 0x1100);
    /* The new revmap page. */
    memset(page, 0x44, sizeof page);
    redo_record(&v, RM_BRIN, REVMAP_EXTEND, e, 2, 1, m, 4);
    assert_int_equal(apply(page, 1, &v, 0x1100, &err), TARN_OK);
    assert_int_equal(tarn_get_u16(page + 12), 24);
    assert_int_equal(tarn_get_u16(page + SPECIAL + 6), 0xF092);
    assert_int_equal(page[100], 0);
    /* Short main data. */
    redo_record(&v, RM_BRIN, CREATE_INDEX, &b, 1, 0, m, 4);
    assert_int_equal(apply(page, 0, &v, 0x1200, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "BRIN CREATE_INDEX"));
    assert_non_null(strstr(err.msg, "main data of 4 bytes"));
    tbuf_free(&v);
}

static void
test_insert_update_desummarize(void **state)
{
    uint8_t reg[8192], rev[8192], old[8192], t[40], t2[56], m[14];
    blockref b[3] = {{.blkno = 2, .data = t, .len = 40, .will_init = true},
                     {.blkno = 1},
                     {.blkno = 3}};
    tbuf v = {0};
    tarn_err err;
    uint32_t lp;
    uint8_t *e;

    (void)state;
    /* INSERT with INIT_PAGE: heap block 20 of a 4-page-per-range index
     * is range 5; its tuple is item 1 of the new regular page 2. */
    brin_tuple(t, 40, 20, 0x61);
    xl_insert(m, 20, 4, 1);
    memset(reg, 0x55, sizeof reg);
    redo_record(&v, RM_BRIN, INSERT | INIT_PAGE, b, 2, 0, m, 10);
    assert_int_equal(apply(reg, 2, &v, 0x2000, &err), TARN_OK);
    assert_int_equal(tarn_get_u16(reg + SPECIAL + 6), 0xF093);
    assert_int_equal(tarn_get_u16(reg + 12), 28);
    assert_int_equal(tarn_get_u16(reg + 14), SPECIAL - 40);
    assert_memory_equal(reg + SPECIAL - 40, t, 40);
    pg_page_init(rev, 8);
    redo_record(&v, RM_BRIN, INSERT | INIT_PAGE, b, 2, 1, m, 10);
    assert_int_equal(apply(rev, 1, &v, 0x2000, &err), TARN_OK);
    e = rev + 24 + 5 * 6;
    assert_int_equal(tarn_get_u16(e), 0);
    assert_int_equal(tarn_get_u16(e + 2), 2);
    assert_int_equal(tarn_get_u16(e + 4), 1);
    assert_int_equal(tarn_get_u32(rev + 4), 0x2000);
    /* A second INSERT (no INIT_PAGE) at offset 2. */
    b[0].will_init = false;
    brin_tuple(t, 40, 24, 0x62);
    xl_insert(m, 24, 4, 2);
    redo_record(&v, RM_BRIN, INSERT, b, 2, 0, m, 10);
    assert_int_equal(apply(reg, 2, &v, 0x2100, &err), TARN_OK);
    assert_int_equal(pg_page_max_offset(reg), 2);
    /* Offset 4 on a page of 2: PostgreSQL PANICs. */
    xl_insert(m, 24, 4, 4);
    redo_record(&v, RM_BRIN, INSERT, b, 2, 0, m, 10);
    memcpy(old, reg, sizeof reg);
    assert_int_equal(apply(old, 2, &v, 0x2200, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "BRIN INSERT"));
    assert_non_null(strstr(err.msg, "invalid offset 4"));
    /* Overwriting a used slot is refused too. */
    xl_insert(m, 24, 4, 1);
    redo_record(&v, RM_BRIN, INSERT, b, 2, 0, m, 10);
    assert_int_equal(apply(old, 2, &v, 0x2200, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "failed to add tuple"));
    /* 0 pages per range. */
    xl_insert(m, 24, 0, 3);
    redo_record(&v, RM_BRIN, INSERT, b, 2, 1, m, 10);
    assert_int_equal(apply(rev, 1, &v, 0x2200, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "0 pages per range"));

    /* SAMEPAGE_UPDATE: item 1 grows to 56 bytes; item 2's data moves
     * down by 16 with it. */
    brin_tuple(t2, 56, 20, 0x63);
    tarn_put_u16(m, 1);
    b[0].data = t2, b[0].len = 56;
    redo_record(&v, RM_BRIN, SAMEPAGE_UPDATE, b, 1, 0, m, 2);
    assert_int_equal(apply(reg, 2, &v, 0x2300, &err), TARN_OK);
    lp = pg_lp_get(reg, 1);
    assert_int_equal(pg_lp_len(lp), 56);
    assert_int_equal(pg_lp_off(lp), SPECIAL - 56);
    assert_int_equal(pg_lp_off(pg_lp_get(reg, 2)), SPECIAL - 56 - 40);
    assert_memory_equal(reg + SPECIAL - 56, t2, 56);
    assert_int_equal(reg[SPECIAL - 96 + 8], 0x62);
    /* An item that is not there. */
    tarn_put_u16(m, 7);
    redo_record(&v, RM_BRIN, SAMEPAGE_UPDATE, b, 1, 0, m, 2);
    assert_int_equal(apply(reg, 2, &v, 0x2400, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "BRIN SAMEPAGE_UPDATE"));
    assert_non_null(strstr(err.msg, "failed to replace tuple 7"));

    /* UPDATE: block 2 (the old page) loses item 1, whose line pointer
     * stays, unused; item 2's data moves up to the special space. */
    memcpy(old, reg, sizeof reg);
    tarn_put_u16(m, 1);
    xl_insert(m + 4, 20, 4, 1);
    b[0].will_init = true;
    redo_record(&v, RM_BRIN, UPDATE | INIT_PAGE, b, 3, 2, m, 14);
    assert_int_equal(apply(old, 3, &v, 0x2500, &err), TARN_OK);
    assert_int_equal(pg_page_max_offset(old), 2);
    assert_int_equal(pg_lp_get(old, 1), 0);
    assert_int_equal(pg_lp_off(pg_lp_get(old, 2)), SPECIAL - 40);
    assert_int_equal(tarn_get_u16(old + 14), SPECIAL - 40);
    assert_int_equal(old[SPECIAL - 40 + 8], 0x62);
    /* ... block 0, the new page, gets the tuple at item 1. */
    memset(reg, 0, sizeof reg);
    redo_record(&v, RM_BRIN, UPDATE | INIT_PAGE, b, 3, 0, m, 14);
    assert_int_equal(apply(reg, 2, &v, 0x2500, &err), TARN_OK);
    assert_memory_equal(reg + SPECIAL - 56, t2, 56);

    /* DESUMMARIZE range 5: its revmap entry becomes invalid; the last
     * item of the regular page goes, with its line pointer. */
    tarn_put_u32(m, 4);
    tarn_put_u32(m + 4, 20);
    tarn_put_u16(m + 8, 2);
    b[0].will_init = false;
    b[0].len = 0, b[1].len = 0;
    redo_record(&v, RM_BRIN, DESUMMARIZE, b, 2, 0, m, 10);
    assert_int_equal(apply(rev, 1, &v, 0x2600, &err), TARN_OK);
    assert_int_equal(tarn_get_u16(e), 0xFFFF);
    assert_int_equal(tarn_get_u16(e + 2), 0xFFFF);
    assert_int_equal(tarn_get_u16(e + 4), 0);
    redo_record(&v, RM_BRIN, DESUMMARIZE, b, 2, 1, m, 10);
    assert_int_equal(apply(old, 3, &v, 0x2600, &err), TARN_OK);
    assert_int_equal(pg_page_max_offset(old), 1);
    assert_int_equal(tarn_get_u16(old + 14), SPECIAL);
    /* Item 2 is gone now. */
    redo_record(&v, RM_BRIN, DESUMMARIZE, b, 2, 1, m, 10);
    assert_int_equal(apply(old, 3, &v, 0x2700, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "BRIN DESUMMARIZE"));
    assert_non_null(strstr(err.msg, "cannot delete item 2"));
    /* An unknown record type. */
    redo_record(&v, RM_BRIN, 0x60, b, 2, 1, m, 10);
    assert_int_equal(apply(old, 3, &v, 0x2700, &err), TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "unknown op code 0x60"));
    tbuf_free(&v);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_and_extend),
        cmocka_unit_test(test_insert_update_desummarize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
