/*
 * key.h - the key space of a timeline: every object tarn versions by LSN
 * is named by an 18-byte key, laid out as the reference describes
 * (reference/pageserver-internals.md 1.1-1.2):
 *
 *   f1 u8 | f2 u32 | f3 u32 | f4 u32 | f5 u8 | f6 u32     (big-endian)
 *
 * Keys compare as byte strings, so the big-endian fields sort field by
 * field, and a relation's size key (f6 = 0xFFFFFFFF) sorts right after its
 * last block.  The same 18 bytes are the in-memory form, the on-disk form
 * and, as 36 hex digits, the form in layer file names.
 *
 *   what                     f1  f2     f3  f4       f5    f6
 *   DB directory             00  0      0   0        0     0
 *   relmapper file           00  spc    db  0        0     0
 *   relation block           00  spc    db  rel      fork  blkno
 *   relation size            00  spc    db  rel      fork  FFFFFFFF
 *   SLRU directory           01  kind   0   0        0     0
 *   SLRU block               01  kind   1   segno    0     blkno
 *   SLRU segment size        01  kind   1   segno    0     FFFFFFFF
 *   two-phase directory      02  0      0   0        0     0
 *   two-phase state file     02  0      0   0        0     xid
 *   pg_control               03  0      0   0        0     0
 *   checkpoint state         03  0      0   0        0     1
 *   relation directory entry 65  spc    db  rel      fork  1
 *
 * Relation directory entries get a key each (as Neon's "RelDir v2"), so
 * creating or dropping a relation writes one small value instead of
 * rewriting a per-database set.
 */
#ifndef TARN_STORAGE_KEY_H
#define TARN_STORAGE_KEY_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "server/core/err.h"

#define TKEY_LEN    18
#define TKEY_STRLEN 37 /**< 36 hex digits and a NUL */

typedef struct tkey {
    uint8_t b[TKEY_LEN];
} tkey;

/** Values of f1. */
enum {
    TKEY_REL = 0x00,
    TKEY_SLRU = 0x01,
    TKEY_TWOPHASE = 0x02,
    TKEY_META = 0x03,
    TKEY_RELDIR = 0x65
};

/** SLRU kinds (f2 of SLRU keys). */
typedef enum slru_kind {
    SLRU_CLOG = 0,
    SLRU_MXMEMBERS = 1,
    SLRU_MXOFFSETS = 2
} slru_kind;

#define SLRU_NKINDS 3

/** f6 of a size key. */
#define TKEY_SIZE_BLK 0xFFFFFFFFu

static inline void
tkey_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint32_t
tkey_get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16)
           | ((uint32_t)p[2] << 8) | p[3];
}

static inline tkey
tkey_make(uint8_t f1, uint32_t f2, uint32_t f3, uint32_t f4, uint8_t f5,
          uint32_t f6)
{
    tkey k;

    k.b[0] = f1;
    tkey_put32(k.b + 1, f2);
    tkey_put32(k.b + 5, f3);
    tkey_put32(k.b + 9, f4);
    k.b[13] = f5;
    tkey_put32(k.b + 14, f6);
    return k;
}

static inline uint8_t
tkey_f1(const tkey *k)
{
    return k->b[0];
}
static inline uint32_t
tkey_f2(const tkey *k)
{
    return tkey_get32(k->b + 1);
}
static inline uint32_t
tkey_f3(const tkey *k)
{
    return tkey_get32(k->b + 5);
}
static inline uint32_t
tkey_f4(const tkey *k)
{
    return tkey_get32(k->b + 9);
}
static inline uint8_t
tkey_f5(const tkey *k)
{
    return k->b[13];
}
static inline uint32_t
tkey_f6(const tkey *k)
{
    return tkey_get32(k->b + 14);
}

static inline int
tkey_cmp(const tkey *a, const tkey *b)
{
    return memcmp(a->b, b->b, TKEY_LEN);
}

static inline bool
tkey_eq(const tkey *a, const tkey *b)
{
    return memcmp(a->b, b->b, TKEY_LEN) == 0;
}

/* Constructors, one per row of the table above. */
static inline tkey
tkey_dbdir(void)
{
    return tkey_make(TKEY_REL, 0, 0, 0, 0, 0);
}

static inline tkey
tkey_relmap(uint32_t spc, uint32_t db)
{
    return tkey_make(TKEY_REL, spc, db, 0, 0, 0);
}

static inline tkey
tkey_rel_block(uint32_t spc, uint32_t db, uint32_t rel, uint8_t fork,
               uint32_t blk)
{
    return tkey_make(TKEY_REL, spc, db, rel, fork, blk);
}

static inline tkey
tkey_rel_size(uint32_t spc, uint32_t db, uint32_t rel, uint8_t fork)
{
    return tkey_make(TKEY_REL, spc, db, rel, fork, TKEY_SIZE_BLK);
}

static inline tkey
tkey_reldir(uint32_t spc, uint32_t db, uint32_t rel, uint8_t fork)
{
    return tkey_make(TKEY_RELDIR, spc, db, rel, fork, 1);
}

static inline tkey
tkey_slru_dir(slru_kind kind)
{
    return tkey_make(TKEY_SLRU, (uint32_t)kind, 0, 0, 0, 0);
}

static inline tkey
tkey_slru_block(slru_kind kind, uint32_t segno, uint32_t blk)
{
    return tkey_make(TKEY_SLRU, (uint32_t)kind, 1, segno, 0, blk);
}

static inline tkey
tkey_slru_size(slru_kind kind, uint32_t segno)
{
    return tkey_make(TKEY_SLRU, (uint32_t)kind, 1, segno, 0, TKEY_SIZE_BLK);
}

static inline tkey
tkey_twophase_dir(void)
{
    return tkey_make(TKEY_TWOPHASE, 0, 0, 0, 0, 0);
}

static inline tkey
tkey_twophase(uint32_t xid)
{
    return tkey_make(TKEY_TWOPHASE, 0, 0, 0, 0, xid);
}

static inline tkey
tkey_control(void)
{
    return tkey_make(TKEY_META, 0, 0, 0, 0, 0);
}

static inline tkey
tkey_checkpoint(void)
{
    return tkey_make(TKEY_META, 0, 0, 0, 0, 1);
}

/** The smallest and the largest key. */
tkey tkey_min(void);
tkey tkey_max(void);

/** A relation block: f1 00 and a relation (f4 != 0) and not the size. */
static inline bool
tkey_is_rel_block(const tkey *k)
{
    return k->b[0] == TKEY_REL && tkey_f4(k) != 0
           && tkey_f6(k) != TKEY_SIZE_BLK;
}

/** An SLRU page. */
static inline bool
tkey_is_slru_block(const tkey *k)
{
    return k->b[0] == TKEY_SLRU && tkey_f3(k) == 1
           && tkey_f6(k) != TKEY_SIZE_BLK;
}

/** Keys whose values are 8 KiB pages (rebuilt through redo). */
static inline bool
tkey_is_page(const tkey *k)
{
    return tkey_is_rel_block(k) || tkey_is_slru_block(k);
}

/** The next key in order (saturates at tkey_max()). */
tkey tkey_next(const tkey *k);

/** 36 upper-case hex digits into @p buf (TKEY_STRLEN bytes). */
char *tkey_format(const tkey *k, char *buf);

/** Parse 36 hex digits. */
tarn_rc tkey_parse(const char *s, tkey *out, tarn_err *err);

/**
 * Describe a key for messages: "rel 1663/5/16384 fork 0 blk 7",
 * "clog seg 0 blk 3", "checkpoint"...
 */
char *tkey_describe(const tkey *k, char *buf, size_t len);

/** A 64-bit hash of the key, for hash tables and Bloom filters. */
uint64_t tkey_hash(const tkey *k);

#endif
