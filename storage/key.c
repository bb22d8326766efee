/*
 * key.c - key formatting, parsing, ordering helpers and the hash.
 */
#include "storage/key.h"

#include <stdio.h>

tkey
tkey_min(void)
{
    tkey k;

    memset(k.b, 0, TKEY_LEN);
    return k;
}

tkey
tkey_max(void)
{
    tkey k;

    memset(k.b, 0xff, TKEY_LEN);
    return k;
}

tkey
tkey_next(const tkey *k)
{
    tkey n = *k;

    for (int i = TKEY_LEN - 1; i >= 0; i--) {
        if (n.b[i] != 0xff) {
            n.b[i]++;
            return n;
        }
        n.b[i] = 0;
    }
    return tkey_max();
}

char *
tkey_format(const tkey *k, char *buf)
{
    static const char hex[] = "0123456789ABCDEF";

    for (int i = 0; i < TKEY_LEN; i++) {
        buf[2 * i] = hex[k->b[i] >> 4];
        buf[2 * i + 1] = hex[k->b[i] & 15];
    }
    buf[2 * TKEY_LEN] = '\0';
    return buf;
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

tarn_rc
tkey_parse(const char *s, tkey *out, tarn_err *err)
{
    for (int i = 0; i < TKEY_LEN; i++) {
        int hi = hexval(s[2 * i]), lo;
        if (hi < 0 || (lo = hexval(s[2 * i + 1])) < 0)
            return tarn_err_set(err, TARN_EINVAL,
                                "'%.40s' is not a key of 36 hex digits", s);
        out->b[i] = (uint8_t)(hi << 4 | lo);
    }
    if (s[2 * TKEY_LEN] != '\0')
        return tarn_err_set(err, TARN_EINVAL,
                            "'%.40s' is not a key of 36 hex digits", s);
    return TARN_OK;
}

static const char *
slru_name(uint32_t kind)
{
    switch (kind) {
    case SLRU_CLOG:
        return "pg_xact";
    case SLRU_MXMEMBERS:
        return "pg_multixact/members";
    case SLRU_MXOFFSETS:
        return "pg_multixact/offsets";
    }
    return "slru?";
}

char *
tkey_describe(const tkey *k, char *buf, size_t len)
{
    char hex[TKEY_STRLEN];
    uint32_t f2 = tkey_f2(k), f3 = tkey_f3(k), f4 = tkey_f4(k), f6 = tkey_f6(k);

    switch (k->b[0]) {
    case TKEY_REL:
        if (f2 == 0 && f3 == 0 && f4 == 0 && f6 == 0)
            snprintf(buf, len, "database directory");
        else if (f4 == 0 && f6 == 0)
            snprintf(buf, len, "relmapper file %u/%u", f2, f3);
        else if (f6 == TKEY_SIZE_BLK)
            snprintf(buf, len, "size of rel %u/%u/%u fork %u", f2, f3, f4,
                     tkey_f5(k));
        else
            snprintf(buf, len, "rel %u/%u/%u fork %u blk %u", f2, f3, f4,
                     tkey_f5(k), f6);
        return buf;
    case TKEY_SLRU:
        if (f3 == 0)
            snprintf(buf, len, "%s directory", slru_name(f2));
        else if (f6 == TKEY_SIZE_BLK)
            snprintf(buf, len, "size of %s segment %04X", slru_name(f2), f4);
        else
            snprintf(buf, len, "%s segment %04X blk %u", slru_name(f2), f4, f6);
        return buf;
    case TKEY_TWOPHASE:
        if (f6 == 0)
            snprintf(buf, len, "two-phase directory");
        else
            snprintf(buf, len, "two-phase state of xid %u", f6);
        return buf;
    case TKEY_META:
        if (f6 == 0)
            snprintf(buf, len, "pg_control");
        else if (f6 == 1)
            snprintf(buf, len, "checkpoint state");
        else
            break;
        return buf;
    case TKEY_RELDIR:
        snprintf(buf, len, "directory entry of rel %u/%u/%u fork %u", f2, f3,
                 f4, tkey_f5(k));
        return buf;
    }
    snprintf(buf, len, "key %s", tkey_format(k, hex));
    return buf;
}

static inline uint64_t
load64be(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* A multiply-xorshift mix (splitmix64's finaliser) over the three parts. */
static inline uint64_t
mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

uint64_t
tkey_hash(const tkey *k)
{
    uint64_t a = load64be(k->b), b = load64be(k->b + 8),
             c = ((uint64_t)k->b[16] << 8) | k->b[17];

    return mix(a ^ mix(b ^ mix(c + 0x9e3779b97f4a7c15ULL)));
}
