/*
 * types.h - the small value types every module shares: LSNs, 128-bit ids,
 * sizes, durations, timestamps and listen addresses, with their parsers
 * and formatters.
 *
 * Parsers are strict: the whole input must be consumed, and anything
 * else is TARN_EINVAL with a message that quotes the input.
 */
#ifndef TARN_CORE_TYPES_H
#define TARN_CORE_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "server/core/err.h"

/** A WAL position, as PostgreSQL's XLogRecPtr. */
typedef uint64_t tarn_lsn;

#define TARN_LSN_INVALID ((tarn_lsn)0)
/** "FFFFFFFF/FFFFFFFF" plus NUL. */
#define TARN_LSN_STRLEN 18

/** A tenant or timeline id: 16 bytes, shown as 32 lower-case hex digits. */
typedef struct tarn_id {
    uint8_t b[16];
} tarn_id;

#define TARN_ID_STRLEN 33

/** Microseconds since the Unix epoch. */
typedef int64_t tarn_time_us;

/** A parsed "host:port". */
typedef struct tarn_addr {
    char host[256];
    uint16_t port;
} tarn_addr;

/**
 * Parse an LSN written as PostgreSQL writes it: "X/Y", each half 1 to 8
 * hex digits.
 */
tarn_rc tarn_lsn_parse(const char *s, tarn_lsn *out, tarn_err *err);

/** Format as "%X/%X" into @p buf (at least TARN_LSN_STRLEN bytes). */
char *tarn_lsn_format(tarn_lsn lsn, char *buf);

/** Parse 32 hex digits (either case) into an id. */
tarn_rc tarn_id_parse(const char *s, tarn_id *out, tarn_err *err);

/** Format as 32 lower-case hex digits into @p buf (TARN_ID_STRLEN). */
char *tarn_id_format(const tarn_id *id, char *buf);

/** Fill @p id from the kernel's random source. */
tarn_rc tarn_id_generate(tarn_id *id, tarn_err *err);

bool tarn_id_is_zero(const tarn_id *id);
bool tarn_id_equal(const tarn_id *a, const tarn_id *b);

/** True if @p s is exactly 32 hex digits. */
bool tarn_looks_like_id(const char *s);

/**
 * Parse a byte size: a decimal number with an optional unit B, kB/KB,
 * MB, GB, TB (powers of 1024, case-insensitive), "64MB" or "8192".
 */
tarn_rc tarn_size_parse(const char *s, int64_t *out, tarn_err *err);

/**
 * How layer files compress values.  The numbers are the codec byte of a
 * stored blob (docs/storage-format.md), so they never change.
 */
typedef enum tarn_codec {
    TARN_CODEC_NONE = 0,
    TARN_CODEC_ZSTD = 1,
    TARN_CODEC_LZ4 = 2
} tarn_codec;

/** Parse "none", "zstd" or "lz4" (case-insensitive). */
tarn_rc tarn_codec_parse(const char *s, tarn_codec *out);

/** "none", "zstd" or "lz4" ("?" for anything else). */
const char *tarn_codec_name(int c);

/**
 * Parse a duration into milliseconds: a number with unit ms, s, min, h or
 * d ("10s", "250ms").  A bare number means seconds.
 */
tarn_rc tarn_duration_parse(const char *s, int64_t *out_ms, tarn_err *err);

/**
 * Parse an RFC 3339 timestamp ("2026-11-21T10:00:00Z",
 * "2026-11-21T10:00:00.25+01:00").  A zone is required.
 */
tarn_rc tarn_time_parse(const char *s, tarn_time_us *out, tarn_err *err);

/** Format as RFC 3339 in UTC with microseconds ("...T10:00:00.000000Z"). */
char *tarn_time_format(tarn_time_us t, char *buf, size_t len);

/** The wall clock, in microseconds since the epoch. */
tarn_time_us tarn_now_us(void);

/** A monotonic clock, in microseconds. */
int64_t tarn_mono_us(void);

/**
 * The wall-clock instant @p us microseconds from now, the form in which
 * pthread_cond_timedwait() takes its deadline.
 */
struct timespec tarn_deadline_in(int64_t us);

/** Parse "host:port" or "[v6]:port"; the port must be 1..65535. */
tarn_rc tarn_addr_parse(const char *s, tarn_addr *out, tarn_err *err);

/** qsort() comparator for uint32_t values, ascending. */
static inline int
tarn_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/** Store and load little-endian integers. */
static inline void
tarn_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void
tarn_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void
tarn_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t
tarn_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t
tarn_get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline uint64_t
tarn_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

#endif
