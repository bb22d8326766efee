/*
 * fuzz_redo.c - arbitrary values through redo_apply() on every kind of
 * page key.
 *
 * Input: byte 0 picks the key (pg_xact, multixact offsets or members,
 * a visibility-map block, a heap block) and whether the page starts as
 * zeros, as a pattern, (bit 0x40) as a B-tree leaf holding plain tuples
 * and posting lists (byte 1 picks how many, and whether it is rightmost),
 * (bits 0xC0) as an index page of the kind byte 1's top two bits pick:
 * a hash bucket, a GiST leaf, an SP-GiST leaf (live tuples in chains,
 * placeholders, a redirect) or an SP-GiST inner page (tuples of three
 * nodes), holding byte 1 % 64 items, or (bit 0x20 without 0x40 and 0x80)
 * as a GIN posting tree leaf, a GIN entry leaf or a BRIN regular page
 * (byte 1 % 3 picks which, byte 1 / 3 how many segments or tuples); bytes
 * 1..4 the SLRU page or block number; the rest is the value.  Invariants:
 * no crash or sanitizer report, the result is TARN_OK, TARN_ECORRUPT or
 * TARN_EUNSUPPORTED, and a refused value leaves an error message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/core/types.h"
#include "storage/key.h"
#include "storage/redo/bufpage.h"
#include "storage/redo/redo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A B-tree leaf (16 bytes of special space, BTP_LEAF) with @p n items:
 * 16-byte int4 tuples, every third a 40-byte posting list of 3 TIDs. */
static void
btree_leaf(uint8_t *page, unsigned n, bool rightmost)
{
    pg_page_init(page, 16);
    tarn_put_u32(page + 8192 - 16 + 4, rightmost ? 0 : 9); /* btpo_next */
    tarn_put_u16(page + 8192 - 16 + 12, 1);                /* BTP_LEAF */
    for (unsigned i = 1; i <= n; i++) {
        uint8_t t[40] = {0};
        size_t len = 16;
        tarn_put_u32(t + 8, i / 2);
        if (i % 3 == 0) {
            tarn_put_u16(t + 2, 16);          /* posting list offset */
            tarn_put_u16(t + 4, 3 | 0x2000);  /* 3 TIDs, posting */
            tarn_put_u16(t + 6, 40 | 0x2000); /* size, alt TID */
            for (unsigned j = 0; j < 3; j++)
                tarn_put_u16(t + 16 + 6 * j + 4, (uint16_t)(i * 4 + j));
            len = 40;
        } else {
            tarn_put_u16(t + 4, (uint16_t)i);
            tarn_put_u16(t + 6, 16);
        }
        pg_page_add_item(page, t, len, i, 0);
    }
}

/* A hash bucket page (16 bytes of special space, LH_BUCKET_PAGE, the hash
 * page id) with @p n index tuples of an int4 key, in hash-key order. */
static void
hash_bucket(uint8_t *page, unsigned n)
{
    uint8_t *sp = page + 8192 - 16;

    pg_page_init(page, 16);
    tarn_put_u32(sp, 0xFFFFFFFF);     /* hasho_prevblkno */
    tarn_put_u32(sp + 4, 0xFFFFFFFF); /* hasho_nextblkno */
    tarn_put_u32(sp + 8, 0);          /* hasho_bucket */
    tarn_put_u16(sp + 12, 1 << 1);    /* LH_BUCKET_PAGE */
    tarn_put_u16(sp + 14, 0xFF80);    /* HASHO_PAGE_ID */
    for (unsigned i = 1; i <= n; i++) {
        uint8_t t[16] = {0};
        tarn_put_u16(t + 4, (uint16_t)i);     /* heap TID offset */
        tarn_put_u16(t + 6, 16);              /* t_info: size */
        tarn_put_u32(t + 8, i * 0x01000193u); /* the hash key */
        pg_page_add_item(page, t, 16, i, 0);
    }
}

/* A GIN posting tree leaf (DATA | LEAF | COMPRESSED) of @p n segments of
 * four TIDs each: first (10 i, 1), three varbyte deltas of 1. */
static void
gin_leaf(uint8_t *page, unsigned n)
{
    uint8_t *p = page + 32;

    pg_page_init(page, 8);
    tarn_put_u32(page + 8192 - 8, 0xFFFFFFFF); /* rightlink */
    tarn_put_u16(page + 8192 - 2, 0x83);
    for (unsigned i = 0; i < n; i++, p += 12) {
        tarn_put_u16(p + 2, (uint16_t)(10 * i + 10)); /* bi_lo */
        tarn_put_u16(p + 4, 1);
        tarn_put_u16(p + 6, 3);
        p[8] = p[9] = p[10] = 1;
    }
    tarn_put_u16(page + PG_PD_LOWER, (uint16_t)(32 + 12 * n));
}

/* A GIN entry leaf with @p n 16-byte index tuples. */
static void
gin_entry(uint8_t *page, unsigned n)
{
    pg_page_init(page, 8);
    tarn_put_u32(page + 8192 - 8, 0xFFFFFFFF);
    tarn_put_u16(page + 8192 - 2, 0x02); /* GIN_LEAF */
    for (unsigned i = 1; i <= n; i++) {
        uint8_t t[16] = {0};
        tarn_put_u16(t + 4, (uint16_t)i);
        tarn_put_u16(t + 6, 16);
        t[8] = (uint8_t)i;
        pg_page_add_item(page, t, 16, i, 0);
    }
}

/* A BRIN regular page with @p n 24-byte tuples, every fourth removed
 * leaving its line pointer unused. */
static void
brin_regular(uint8_t *page, unsigned n)
{
    pg_page_init(page, 8);
    tarn_put_u16(page + 8192 - 2, 0xF093);
    for (unsigned i = 1; i <= n; i++) {
        uint8_t t[24] = {0};
        tarn_put_u32(t, i);
        t[4] = 8;
        pg_page_add_item(page, t, 24, i, 0);
    }
    for (unsigned i = 4; i < n; i += 4)
        pg_page_index_delete_no_compact(page, i);
}

/* A GiST leaf (16 bytes of special space, F_LEAF, the GiST page id) with
 * @p n 24-byte index tuples. */
static void
gist_leaf(uint8_t *page, unsigned n)
{
    uint8_t *sp = page + 8192 - 16;

    pg_page_init(page, 16);
    tarn_put_u32(sp + 8, 0xFFFFFFFF); /* rightlink */
    tarn_put_u16(sp + 12, 1);         /* F_LEAF */
    tarn_put_u16(sp + 14, 0xFF81);    /* GIST_PAGE_ID */
    for (unsigned i = 1; i <= n; i++) {
        uint8_t t[24] = {0};
        tarn_put_u16(t + 4, (uint16_t)i);
        tarn_put_u16(t + 6, 24);
        tarn_put_u32(t + 8, i * 7);
        pg_page_add_item(page, t, sizeof t, i, 0);
    }
}

/*
 * An SP-GiST page (8 bytes of special space, the SP-GiST page id) with
 * @p n items.  A leaf holds 16-byte leaf tuples chained in pairs, every
 * fifth a placeholder and the seventh a redirect, with the counts in the
 * special space; an inner page holds inner tuples of three 8-byte nodes.
 */
static void
spgist_page(uint8_t *page, unsigned n, bool leaf)
{
    uint8_t *sp = page + 8192 - 8;
    unsigned nplace = 0, nredirect = 0;

    pg_page_init(page, 8);
    tarn_put_u16(sp, leaf ? 4 : 0); /* SPGIST_LEAF */
    tarn_put_u16(sp + 6, 0xFF82);   /* SPGIST_PAGE_ID */
    for (unsigned i = 1; i <= n; i++) {
        uint8_t t[32] = {0};
        size_t len = 16;
        if (!leaf) {
            len = 32;
            tarn_put_u32(t, 3u << 3); /* LIVE, 3 nodes, no prefix */
            tarn_put_u16(t + 4, 32);
            for (unsigned j = 0; j < 3; j++)
                tarn_put_u16(t + 8 + 8 * j + 6, 8);
        } else if (i % 5 == 0) {
            tarn_put_u32(t, 3 | 16u << 2); /* PLACEHOLDER */
            tarn_put_u32(t + 6, 0xFFFFFFFF);
            nplace++;
        } else if (i == 7) {
            tarn_put_u32(t, 1 | 16u << 2); /* REDIRECT */
            tarn_put_u16(t + 8, 3);
            tarn_put_u16(t + 10, 1);
            tarn_put_u32(t + 12, 700);
            nredirect++;
        } else {
            tarn_put_u32(t, 16u << 2); /* LIVE */
            tarn_put_u16(t + 4, (uint16_t)(i % 2 && i < n ? i + 1 : 0));
            tarn_put_u16(t + 10, (uint16_t)i);
        }
        pg_page_add_item(page, t, len, i, 0);
    }
    tarn_put_u16(sp + 2, (uint16_t)nredirect);
    tarn_put_u16(sp + 4, (uint16_t)nplace);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static redo_stats st;
    static uint8_t page[8192];
    tarn_err err = {0};
    uint32_t n;
    tkey k;
    tarn_rc rc;

    if (size < 5)
        return 0;
    n = tarn_get_u32(data + 1);
    switch (data[0] % 5) {
    case 0:
        k = tkey_slru_block(SLRU_CLOG, n / 32 % 4096, n % 32);
        break;
    case 1:
        k = tkey_slru_block(SLRU_MXOFFSETS, n / 32 % 4096, n % 32);
        break;
    case 2:
        k = tkey_slru_block(SLRU_MXMEMBERS, n / 32 % 65536, n % 32);
        break;
    case 3:
        k = tkey_rel_block(1663, 5, 16384, 2, n);
        break;
    default:
        k = tkey_rel_block(1663, 5, 16384, 0, n);
        break;
    }
    if ((data[0] & 0xC0) == 0xC0) {
        switch (data[1] >> 6) {
        case 0:
            hash_bucket(page, data[1] % 64);
            break;
        case 1:
            gist_leaf(page, data[1] % 64);
            break;
        default:
            spgist_page(page, data[1] % 64, data[1] >> 6 == 2);
            break;
        }
    } else if (data[0] & 0x40)
        btree_leaf(page, data[1] % 64, data[1] & 0x80);
    else if (data[0] & 0x80)
        memset(page, 0, sizeof(page));
    else if (data[0] & 0x20 && data[1] % 3 == 0)
        gin_leaf(page, data[1] / 3 % 32);
    else if (data[0] & 0x20 && data[1] % 3 == 1)
        gin_entry(page, data[1] / 3 % 32);
    else if (data[0] & 0x20)
        brin_regular(page, data[1] / 3 % 32);
    else
        for (size_t i = 0; i < sizeof(page); i++)
            page[i] = (uint8_t)(i * 31 + 7);
    rc = redo_apply(&st, page, &k, 0x1000000, data + 5, size - 5, &err);
    if (rc != TARN_OK && rc != TARN_ECORRUPT && rc != TARN_EUNSUPPORTED)
        abort();
    if (rc != TARN_OK && err.msg[0] == '\0')
        abort();
    return 0;
}
