/*
 * bufpage.h - PostgreSQL 15's slotted-page primitives, reproduced byte for
 * byte for redo: line pointers, adding an item, repairing fragmentation,
 * truncating the line pointer array, free space.
 *
 * A page is 8 KiB in PostgreSQL's on-disk layout (little-endian, as the
 * platforms tarn runs on): a 24-byte header, line pointers from byte 24 up
 * to pd_lower, free space, tuples from pd_upper, special space from
 * pd_special.  A line pointer is a 32-bit word: lp_off in bits 0-14,
 * lp_flags in bits 15-16, lp_len in bits 17-31.  Offsets are 1-based.
 *
 * Functions that can meet a damaged page check it and return false or
 * TARN_ECORRUPT instead of writing outside the page.
 */
#ifndef TARN_STORAGE_REDO_BUFPAGE_H
#define TARN_STORAGE_REDO_BUFPAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/core/types.h"
#include "storage/pg/pgdefs.h"

#define PG_LP_UNUSED   0
#define PG_LP_NORMAL   1
#define PG_LP_REDIRECT 2
#define PG_LP_DEAD     3

#define PG_PD_HAS_FREE_LINES 0x0001
#define PG_PD_PAGE_FULL      0x0002
#define PG_PD_ALL_VISIBLE    0x0004
#define PG_PD_PRUNE_XID      20

/** MaxHeapTuplesPerPage for 8 KiB pages. */
#define PG_MAX_HEAP_TUPLES 291
/** MaxHeapTupleSize: the largest heap tuple that fits a page. */
#define PG_MAX_HEAP_TUPLE_SIZE (PG_BLCKSZ - 32)

/** PageAddItemExtended() flags. */
#define PG_PAI_OVERWRITE 0x01
#define PG_PAI_IS_HEAP   0x02

static inline size_t
pg_maxalign(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static inline uint16_t
pg_page_lower(const uint8_t *p)
{
    return tarn_get_u16(p + PG_PD_LOWER);
}

static inline uint16_t
pg_page_upper(const uint8_t *p)
{
    return tarn_get_u16(p + PG_PD_UPPER);
}

static inline uint16_t
pg_page_special(const uint8_t *p)
{
    return tarn_get_u16(p + PG_PD_SPECIAL);
}

static inline uint16_t
pg_page_flags(const uint8_t *p)
{
    return tarn_get_u16(p + PG_PD_FLAGS);
}

static inline void
pg_page_set_flags(uint8_t *p, uint16_t f)
{
    tarn_put_u16(p + PG_PD_FLAGS, f);
}

/** PageGetMaxOffsetNumber: the number of line pointers. */
static inline unsigned
pg_page_max_offset(const uint8_t *p)
{
    unsigned lower = pg_page_lower(p);
    return lower <= PG_PAGE_HEADER_SIZE ? 0 : (lower - PG_PAGE_HEADER_SIZE) / 4;
}

/** The line pointer word of 1-based @p off. */
static inline uint32_t
pg_lp_get(const uint8_t *p, unsigned off)
{
    return tarn_get_u32(p + PG_PAGE_HEADER_SIZE + (off - 1) * 4);
}

static inline void
pg_lp_set(uint8_t *p, unsigned off, unsigned lp_off, unsigned flags,
          unsigned len)
{
    tarn_put_u32(p + PG_PAGE_HEADER_SIZE + (off - 1) * 4,
                 (uint32_t)(lp_off & 0x7fff) | (uint32_t)(flags & 3) << 15
                     | (uint32_t)(len & 0x7fff) << 17);
}

static inline unsigned
pg_lp_off(uint32_t lp)
{
    return lp & 0x7fff;
}

static inline unsigned
pg_lp_flags(uint32_t lp)
{
    return (lp >> 15) & 3;
}

static inline unsigned
pg_lp_len(uint32_t lp)
{
    return lp >> 17;
}

/**
 * The item of a NORMAL line pointer @p off whose storage lies inside the
 * page's tuple area, or NULL (offset out of range, not normal, or
 * pointing outside the page).
 */
uint8_t *pg_page_item(uint8_t *page, unsigned off, unsigned *len);

/** Header sanity as PostgreSQL checks it before changing a page. */
bool pg_page_header_ok(const uint8_t *page);

/**
 * PageAddItemExtended(): place @p size bytes of @p item at offset @p off
 * (0: the first free slot), shuffling line pointers up unless
 * PG_PAI_OVERWRITE.  @return the offset used, or 0 when it does not fit or
 * the offset is not allowed (PostgreSQL's InvalidOffsetNumber).
 */
unsigned pg_page_add_item(uint8_t *page, const uint8_t *item, size_t size,
                          unsigned off, int flags);

/**
 * PageRepairFragmentation(): compact the storage of the used line
 * pointers towards the special space in line-pointer order, truncate
 * trailing unused line pointers and set PD_HAS_FREE_LINES.
 * @return false on a damaged page (nothing changed).
 */
bool pg_page_repair_fragmentation(uint8_t *page);

/** PageTruncateLinePointerArray(). */
void pg_page_truncate_lp_array(uint8_t *page);

/** PageGetExactFreeSpace / PageGetFreeSpace / PageGetHeapFreeSpace. */
size_t pg_page_exact_free(const uint8_t *page);
size_t pg_page_free(const uint8_t *page);

/**
 * PageSetPrunable(): pd_prune_xid becomes @p xid if it is unset or
 * @p xid precedes it (in XID order).
 */
void pg_page_set_prunable(uint8_t *page, uint32_t xid);

/** TransactionIdPrecedes(). */
bool pg_xid_precedes(uint32_t a, uint32_t b);

#endif

/* ---- index pages ---------------------------------------------------------
 * PostgreSQL's index pages keep no unused line pointers: deleting an item
 * closes the gap in the line pointer array and moves tuple data.  These
 * return false on a page or offset PostgreSQL would reject (nothing is
 * changed then).
 */

/**
 * PageIndexTupleDelete(): remove the item at @p off.  The line pointers
 * after it move down one slot; the tuple data between pd_upper and the
 * deleted item moves up by the deleted item's aligned size (one memmove),
 * and every line pointer at or below the deleted item's offset follows.
 * The bytes the move uncovers keep their old contents.
 */
bool pg_page_index_delete(uint8_t *page, unsigned off);

/**
 * PageIndexMultiDelete(): remove the items at the @p n offsets @p offs,
 * which must be strictly increasing offsets present on the page.  Two or
 * fewer go through pg_page_index_delete(), last first; more are removed
 * by compacting the line pointer array and moving each kept item's
 * aligned storage, in line-pointer order, down from the special space
 * (bytes below the new pd_upper are left as they were).
 */
bool pg_page_index_multi_delete(uint8_t *page, const uint16_t *offs,
                                unsigned n);

/**
 * PageIndexTupleOverwrite(): replace the item at @p off by @p size bytes
 * of @p item, keeping its line pointer flags.  When the aligned size
 * changes, the tuple data below the item moves by the difference.
 * @return false also when the new item does not fit.
 */
bool pg_page_index_overwrite(uint8_t *page, unsigned off, const uint8_t *item,
                             size_t size);

/**
 * PageIndexTupleDeleteNoCompact(): remove the item at @p off leaving its
 * line pointer unused (the last one is dropped instead); the tuple data
 * between pd_upper and the item moves up by its aligned size, and the
 * line pointers with storage at or below the item follow.
 */
bool pg_page_index_delete_no_compact(uint8_t *page, unsigned off);
