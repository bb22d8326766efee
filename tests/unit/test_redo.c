/*
 * test_redo.c - the tarn-native values applied by redo_apply(): pg_xact
 * status bits, multixact offsets and members, visibility-map clear and
 * truncate, images and zero pages, and the answer for a PostgreSQL record
 * without redo.  Expected bytes are computed here from PostgreSQL 15's
 * layouts (clog.c, multixact.c, visibilitymap.c), independently of the
 * code under test, and malformed values must be refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "storage/key.h"
#include "storage/redo/redo.h"
#include "storage/value.h"

/* PostgreSQL 15, BLCKSZ 8192. */
#define XACTS_PER_PAGE        32768 /* 4 xids per byte */
#define OFFSETS_PER_PAGE      2048  /* 4-byte offsets */
#define MEMBERS_PER_GROUP     4
#define GROUP_SIZE            20 /* 4 flag bytes + 4 xids */
#define GROUPS_PER_PAGE       409
#define MEMBERS_PER_PAGE      (GROUPS_PER_PAGE * MEMBERS_PER_GROUP)
#define PAGE_HEADER           24
#define HEAPBLOCKS_PER_VMPAGE ((8192 - PAGE_HEADER) * 4)
#define SLRU_PAGES_PER_SEG    32

static redo_stats st;

static uint32_t
le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16
           | (uint32_t)p[3] << 24;
}

static tkey
slru_key(slru_kind kind, uint32_t pageno)
{
    return tkey_slru_block(kind, pageno / SLRU_PAGES_PER_SEG,
                           pageno % SLRU_PAGES_PER_SEG);
}

static unsigned
xact_status(const uint8_t *page, uint32_t xid)
{
    uint32_t i = xid % XACTS_PER_PAGE;
    return (page[i / 4] >> ((i % 4) * 2)) & 3;
}

static void
test_clog(void **state)
{
    uint8_t page[8192];
    /* Page 3 of pg_xact (segment 0): xids 98304 .. 131071. */
    uint32_t committed[] = {98304, 98305, 98307, 131071};
    uint32_t aborted[] = {98306, 98305};
    uint32_t stray[] = {98304, 131072};
    tkey k = slru_key(SLRU_CLOG, 3);
    tbuf v = {0};
    tarn_err err;

    (void)state;
    memset(page, 0, sizeof(page));
    assert_int_equal(tval_clog(&v, 1, committed, 4, &err), TARN_OK);
    assert_int_equal(redo_apply(&st, page, &k, 0x100, v.p, v.len, &err),
                     TARN_OK);
    assert_int_equal(tval_clog(&v, 2, aborted, 2, &err), TARN_OK);
    assert_int_equal(redo_apply(&st, page, &k, 0x200, v.p, v.len, &err),
                     TARN_OK);
    assert_int_equal(xact_status(page, 98304), 1);
    assert_int_equal(xact_status(page, 98305), 2); /* overwritten */
    assert_int_equal(xact_status(page, 98306), 2);
    assert_int_equal(xact_status(page, 98307), 1);
    assert_int_equal(xact_status(page, 131071), 1);
    assert_int_equal(xact_status(page, 98308), 0);
    /* Byte 0 holds xids 98304..98307: 01, 10, 10, 01 from the low bits. */
    assert_int_equal(page[0], 0x01 | 0x02 << 2 | 0x02 << 4 | 0x01 << 6);
    assert_int_equal(page[8191], 0x01 << 6);

    /* An xid of another page is refused, and the page is not touched
     * past what was valid. */
    assert_int_equal(tval_clog(&v, 1, stray, 2, &err), TARN_OK);
    assert_int_equal(redo_apply(&st, page, &k, 0x300, v.p, v.len, &err),
                     TARN_ECORRUPT);
    assert_non_null(strstr(err.msg, "131072"));
    /* Truncated value. */
    assert_int_equal(redo_apply(&st, page, &k, 0x300, v.p, v.len - 1, &err),
                     TARN_ECORRUPT);
    tbuf_free(&v);
}

static void
test_multixact(void **state)
{
    uint8_t page[8192];
    uint32_t xids[] = {700, 701, 702, 703, 704, 705};
    uint8_t status[] = {0, 1, 2, 3, 4, 5};
    /* Offsets page 1: multixacts 2048 .. 4095. */
    tkey ko = slru_key(SLRU_MXOFFSETS, 1);
    /* Members 1634 .. 1639 straddle pages 0 and 1; 1636.. is page 1. */
    tkey km = slru_key(SLRU_MXMEMBERS, 1);
    tbuf v = {0};
    tarn_err err;

    (void)state;
    memset(page, 0, sizeof(page));
    assert_int_equal(tval_mxoff(&v, 2050, 123456, &err), TARN_OK);
    assert_int_equal(redo_apply(&st, page, &ko, 0x100, v.p, v.len, &err),
                     TARN_OK);
    assert_int_equal(le32(page + (2050 % OFFSETS_PER_PAGE) * 4), 123456);
    assert_int_equal(tval_mxoff(&v, 5000, 1, &err), TARN_OK);
    assert_int_equal(redo_apply(&st, page, &ko, 0x100, v.p, v.len, &err),
                     TARN_ECORRUPT);

    memset(page, 0, sizeof(page));
    assert_int_equal(tval_mxmem(&v, 1636, xids, status, 6, &err), TARN_OK);
    assert_int_equal(redo_apply(&st, page, &km, 0x200, v.p, v.len, &err),
                     TARN_OK);
    for (uint32_t i = 0; i < 6; i++) {
        uint32_t m = 1636 + i;
        size_t group = (m / MEMBERS_PER_GROUP) % GROUPS_PER_PAGE;
        size_t slot = m % MEMBERS_PER_GROUP;
        assert_int_equal(page[group * GROUP_SIZE + slot], status[i]);
        assert_int_equal(le32(page + group * GROUP_SIZE + 4 + slot * 4),
                         xids[i]);
    }
    /* Member 1636 is the first of page 1: group 0, slot 0. */
    assert_int_equal(le32(page + 4), 700);
    /* Members of page 0 applied to page 1 are refused. */
    assert_int_equal(tval_mxmem(&v, 1634, xids, status, 3, &err), TARN_OK);
    assert_int_equal(redo_apply(&st, page, &km, 0x300, v.p, v.len, &err),
                     TARN_ECORRUPT);
    tbuf_free(&v);
}

static unsigned
vm_bits(const uint8_t *page, uint32_t heapblk)
{
    uint32_t i = heapblk % HEAPBLOCKS_PER_VMPAGE;
    return (page[PAGE_HEADER + i / 4] >> ((i % 4) * 2)) & 3;
}

static void
test_visibility_map(void **state)
{
    uint8_t page[8192];
    /* VM block 1 covers heap blocks 32672 .. 65343. */
    tkey k = tkey_rel_block(1663, 5, 16384, 2, 1);
    tbuf v = {0};
    tarn_err err;

    (void)state;
    /* A new page is initialised as PostgreSQL does before clearing. */
    memset(page, 0, sizeof(page));
    assert_int_equal(tval_vmclear(&v, 32672, 5, 1, &err), TARN_OK);
    assert_int_equal(redo_apply(&st, page, &k, 0x100, v.p, v.len, &err),
                     TARN_OK);
    assert_int_equal(page[12] | page[13] << 8, PAGE_HEADER); /* pd_lower */
    assert_int_equal(page[14] | page[15] << 8, 8192);        /* pd_upper */

    memset(page + PAGE_HEADER, 0xff, sizeof(page) - PAGE_HEADER);
    /* Clear all-visible of 32673 and both bits of 65343; heap block 5
     * lives on VM page 0 and is ignored here. */
    assert_int_equal(tval_vmclear(&v, 32673, 5, 1, &err), TARN_OK);
    assert_int_equal(redo_apply(&st, page, &k, 0x200, v.p, v.len, &err),
                     TARN_OK);
    assert_int_equal(tval_vmclear(&v, 65343, 65343, 3, &err), TARN_OK);
    assert_int_equal(redo_apply(&st, page, &k, 0x300, v.p, v.len, &err),
                     TARN_OK);
    assert_int_equal(vm_bits(page, 32672), 3);
    assert_int_equal(vm_bits(page, 32673), 2);
    assert_int_equal(vm_bits(page, 65343), 0);
    assert_int_equal(vm_bits(page, 65342), 3);

    /* Truncate the heap to 32680 blocks: bits of 32680.. go. */
    assert_int_equal(tval_vmtrunc(&v, 32680, &err), TARN_OK);
    assert_int_equal(redo_apply(&st, page, &k, 0x400, v.p, v.len, &err),
                     TARN_OK);
    assert_int_equal(vm_bits(page, 32679), 3);
    assert_int_equal(vm_bits(page, 32680), 0);
    assert_int_equal(vm_bits(page, 40000), 0);
    assert_int_equal(vm_bits(page, 32673), 2);
    /* Truncation on another VM page is refused. */
    assert_int_equal(tval_vmtrunc(&v, 10, &err), TARN_OK);
    assert_int_equal(redo_apply(&st, page, &k, 0x500, v.p, v.len, &err),
                     TARN_ECORRUPT);
    tbuf_free(&v);
}

static void
test_images_and_records(void **state)
{
    uint8_t page[8192], img[8192];
    /* A minimal WAL record: XLogRecord header, main data of 2 bytes, no
     * block references (rmgr 10 = Heap, info 0x00 = insert). */
    uint8_t rec[24 + 2 + 2] = {0};
    tkey k = tkey_rel_block(1663, 5, 16384, 0, 0);
    tbuf v = {0};
    tarn_err err;

    (void)state;
    memset(img, 0x5a, sizeof(img));
    memset(page, 0, sizeof(page));
    assert_int_equal(tval_image(&v, img, sizeof(img), &err), TARN_OK);
    assert_true(tval_will_init(v.p, v.len));
    assert_int_equal(redo_apply(&st, page, &k, 0x100, v.p, v.len, &err),
                     TARN_OK);
    assert_memory_equal(page, img, sizeof(page));
    assert_int_equal(tval_zero(&v, &err), TARN_OK);
    assert_int_equal(redo_apply(&st, page, &k, 0x200, v.p, v.len, &err),
                     TARN_OK);
    memset(img, 0, sizeof(img));
    assert_memory_equal(page, img, sizeof(page));
    /* An image value of the wrong size. */
    assert_int_equal(tval_image(&v, img, 100, &err), TARN_OK);
    assert_int_equal(redo_apply(&st, page, &k, 0x300, v.p, v.len, &err),
                     TARN_ECORRUPT);

    /* A record that references no block 0: refused as corrupt. */
    rec[0] = sizeof(rec); /* xl_tot_len */
    rec[17] = 10;         /* xl_rmid */
    rec[24] = 255;        /* XLR_BLOCK_ID_DATA_SHORT */
    rec[25] = 2;          /* main data length */
    assert_int_equal(tval_pgrec(&v, 0, false, rec, sizeof(rec), &err), TARN_OK);
    assert_int_equal(redo_apply(&st, page, &k, 0x400, v.p, v.len, &err),
                     TARN_ECORRUPT);
    /* A record of a custom resource manager (an extension's, id 130) for
     * block 0 without an image: tarn has no redo for it, and says so. */
    {
        uint8_t r2[24 + 4 + 12 + 4] = {0};
        r2[0] = sizeof(r2);
        r2[17] = 130; /* a custom rmgr */
        r2[24] = 0;   /* block id 0, main fork, no flags, no data */
        r2[28] = 0x7f, r2[32] = 5, r2[36] = 0x00, r2[37] = 0x40; /* rnode */
        assert_int_equal(tval_pgrec(&v, 0, false, r2, sizeof(r2), &err),
                         TARN_OK);
        assert_int_equal(redo_apply(&st, page, &k, 0x480, v.p, v.len, &err),
                         TARN_EUNSUPPORTED);
        assert_non_null(strstr(err.msg, "custom"));
        assert_non_null(strstr(err.msg, "rmgr 130"));
    }
    /* An unknown value kind. */
    {
        uint8_t junk[3] = {0xee, 1, 2};
        assert_int_equal(redo_apply(&st, page, &k, 0x500, junk, 3, &err),
                         TARN_ECORRUPT);
    }
    tbuf_free(&v);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clog),
        cmocka_unit_test(test_multixact),
        cmocka_unit_test(test_visibility_map),
        cmocka_unit_test(test_images_and_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
