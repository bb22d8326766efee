/*
 * types.c - parsers and formatters for the shared value types.
 *
 * These run on untrusted input (HTTP bodies, query strings, config files),
 * so each one bounds its lengths, rejects trailing garbage and never
 * overflows: numbers are accumulated with explicit range checks instead of
 * strtoll's saturating behaviour.
 */
#include "server/core/types.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

static int
hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Parse 1..8 hex digits up to @p stop; returns the end or NULL. */
static const char *
parse_hex32(const char *s, char stop, uint32_t *out)
{
    uint32_t v = 0;
    int n = 0;

    for (; *s != stop; s++, n++) {
        int h = hexval((unsigned char)*s);
        if (h < 0 || n == 8)
            return NULL;
        v = (v << 4) | (uint32_t)h;
    }
    if (n == 0)
        return NULL;
    *out = v;
    return s;
}

tarn_rc
tarn_lsn_parse(const char *s, tarn_lsn *out, tarn_err *err)
{
    uint32_t hi, lo;
    const char *p;

    if (s == NULL)
        return tarn_err_set(err, TARN_EINVAL, "missing LSN");
    p = parse_hex32(s, '/', &hi);
    if (p == NULL || parse_hex32(p + 1, '\0', &lo) == NULL)
        return tarn_err_set(err, TARN_EINVAL,
                            "invalid LSN '%.40s' (expected X/Y in hex, "
                            "e.g. 0/16B5A50)",
                            s);
    *out = ((tarn_lsn)hi << 32) | lo;
    return TARN_OK;
}

char *
tarn_lsn_format(tarn_lsn lsn, char *buf)
{
    snprintf(buf, TARN_LSN_STRLEN, "%X/%X", (unsigned)(lsn >> 32),
             (unsigned)(lsn & 0xffffffffu));
    return buf;
}

bool
tarn_looks_like_id(const char *s)
{
    size_t i;

    for (i = 0; i < 32; i++)
        if (hexval((unsigned char)s[i]) < 0)
            return false;
    return s[32] == '\0';
}

tarn_rc
tarn_id_parse(const char *s, tarn_id *out, tarn_err *err)
{
    if (s == NULL || !tarn_looks_like_id(s))
        return tarn_err_set(err, TARN_EINVAL,
                            "invalid id '%.40s' (expected 32 hex digits)",
                            s ? s : "");
    for (int i = 0; i < 16; i++)
        out->b[i] = (uint8_t)(hexval((unsigned char)s[2 * i]) << 4
                              | hexval((unsigned char)s[2 * i + 1]));
    return TARN_OK;
}

char *
tarn_id_format(const tarn_id *id, char *buf)
{
    static const char digits[] = "0123456789abcdef";

    for (int i = 0; i < 16; i++) {
        buf[2 * i] = digits[id->b[i] >> 4];
        buf[2 * i + 1] = digits[id->b[i] & 15];
    }
    buf[32] = '\0';
    return buf;
}

tarn_rc
tarn_id_generate(tarn_id *id, tarn_err *err)
{
    size_t got = 0;

    while (got < sizeof(id->b)) {
        ssize_t n = getrandom(id->b + got, sizeof(id->b) - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return tarn_err_errno(err, errno, "getrandom");
        }
        got += (size_t)n;
    }
    return TARN_OK;
}

bool
tarn_id_is_zero(const tarn_id *id)
{
    static const tarn_id zero;
    return memcmp(id, &zero, sizeof(zero)) == 0;
}

bool
tarn_id_equal(const tarn_id *a, const tarn_id *b)
{
    return memcmp(a, b, sizeof(*a)) == 0;
}

/*
 * Parse a non-negative decimal integer (no sign, no spaces) and return the
 * rest of the string.  NULL on overflow or when there is no digit.
 */
static const char *
parse_u63(const char *s, int64_t *out)
{
    int64_t v = 0;
    const char *p = s;

    for (; *p >= '0' && *p <= '9'; p++) {
        int d = *p - '0';
        if (v > (INT64_MAX - d) / 10)
            return NULL;
        v = v * 10 + d;
    }
    if (p == s)
        return NULL;
    *out = v;
    return p;
}

struct unit {
    const char *name;
    int64_t mult;
};

static tarn_rc
parse_with_units(const char *s, const struct unit *units, int64_t *out,
                 const char *what, const char *example, tarn_err *err)
{
    int64_t n;
    const char *rest;

    if (s == NULL || (rest = parse_u63(s, &n)) == NULL)
        goto bad;
    while (*rest == ' ')
        rest++;
    for (const struct unit *u = units; u->name != NULL; u++) {
        if (strcasecmp(rest, u->name) != 0)
            continue;
        if (n > INT64_MAX / u->mult)
            return tarn_err_set(err, TARN_EINVAL, "%s '%.40s' is too large",
                                what, s);
        *out = n * u->mult;
        return TARN_OK;
    }
bad:
    return tarn_err_set(err, TARN_EINVAL,
                        "invalid %s '%.40s' (expected e.g. %s)", what,
                        s ? s : "", example);
}

tarn_rc
tarn_size_parse(const char *s, int64_t *out, tarn_err *err)
{
    static const struct unit units[] = {
        {"", 1},
        {"B", 1},
        {"kB", 1024},
        {"K", 1024},
        {"MB", 1024 * 1024},
        {"M", 1024 * 1024},
        {"GB", 1024LL * 1024 * 1024},
        {"G", 1024LL * 1024 * 1024},
        {"TB", 1024LL * 1024 * 1024 * 1024},
        {"T", 1024LL * 1024 * 1024 * 1024},
        {NULL, 0},
    };
    return parse_with_units(s, units, out, "size", "64MB", err);
}

static const char *const codec_names[] = {"none", "zstd", "lz4"};
#define NCODECS ((int)(sizeof(codec_names) / sizeof(codec_names[0])))

tarn_rc
tarn_codec_parse(const char *s, tarn_codec *out)
{
    for (int c = 0; c < NCODECS; c++)
        if (strcasecmp(s, codec_names[c]) == 0) {
            *out = (tarn_codec)c;
            return TARN_OK;
        }
    return TARN_EINVAL;
}

const char *
tarn_codec_name(int c)
{
    return c >= 0 && c < NCODECS ? codec_names[c] : "?";
}

tarn_rc
tarn_duration_parse(const char *s, int64_t *out_ms, tarn_err *err)
{
    static const struct unit units[] = {
        {"", 1000},
        {"ms", 1},
        {"s", 1000},
        {"min", 60 * 1000},
        {"m", 60 * 1000},
        {"h", 3600 * 1000},
        {"d", 86400LL * 1000},
        {NULL, 0},
    };
    return parse_with_units(s, units, out_ms, "duration", "10s", err);
}

/* Parse exactly @p n digits. */
static const char *
parse_digits(const char *s, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return NULL;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return s + n;
}

static bool
is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d, proleptic Gregorian (no libc timezone). */
static int64_t
days_from_civil(int y, int m, int d)
{
    /* Shift the year so that it starts in March: leap days fall last. */
    int64_t yy = y - (m <= 2);
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

tarn_rc
tarn_time_parse(const char *s, tarn_time_us *out, tarn_err *err)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec, oh = 0, om = 0;
    int64_t frac = 0, fscale = 1000000;
    const char *p = s;

    if (p == NULL)
        goto bad;
    if (!(p = parse_digits(p, 4, &y)) || *p++ != '-'
        || !(p = parse_digits(p, 2, &mo)) || *p++ != '-'
        || !(p = parse_digits(p, 2, &d)))
        goto bad;
    if (*p != 'T' && *p != 't' && *p != ' ')
        goto bad;
    p++;
    if (!(p = parse_digits(p, 2, &h)) || *p++ != ':'
        || !(p = parse_digits(p, 2, &mi)) || *p++ != ':'
        || !(p = parse_digits(p, 2, &sec)))
        goto bad;
    if (*p == '.') {
        int n = 0;
        p++;
        for (; *p >= '0' && *p <= '9'; p++, n++) {
            if (n < 6) {
                frac = frac * 10 + (*p - '0');
                fscale /= 10;
            }
        }
        if (n == 0)
            goto bad;
        frac *= fscale;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        p++;
        if (!(p = parse_digits(p, 2, &oh)) || *p++ != ':'
            || !(p = parse_digits(p, 2, &om)))
            goto bad;
        if (oh > 23 || om > 59)
            goto bad;
        oh *= sign;
        om *= sign;
    } else {
        goto bad;
    }
    if (*p != '\0')
        goto bad;
    if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 60)
        goto bad;
    if (d > mdays[mo - 1] + (mo == 2 && is_leap(y)))
        goto bad;
    if (sec == 60) /* a leap second reads as the next second */
        sec = 59, frac = 999999;
    {
        int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60
                       + sec - (oh * 3600 + om * 60);
        *out = secs * 1000000 + frac;
    }
    return TARN_OK;
bad:
    return tarn_err_set(err, TARN_EINVAL,
                        "invalid timestamp '%.60s' (expected RFC 3339, e.g. "
                        "2026-11-21T10:00:00Z)",
                        s ? s : "");
}

char *
tarn_time_format(tarn_time_us t, char *buf, size_t len)
{
    time_t secs = (time_t)(t / 1000000);
    long us = (long)(t % 1000000);
    struct tm tm;

    if (us < 0) {
        us += 1000000;
        secs -= 1;
    }
    gmtime_r(&secs, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, us);
    return buf;
}

tarn_time_us
tarn_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (tarn_time_us)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
tarn_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct timespec
tarn_deadline_in(int64_t us)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(us / 1000000);
    ts.tv_nsec += (long)(us % 1000000) * 1000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

tarn_rc
tarn_addr_parse(const char *s, tarn_addr *out, tarn_err *err)
{
    const char *colon, *host = s;
    size_t hostlen;
    int64_t port;

    if (s == NULL)
        goto bad;
    if (*s == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || end[1] != ':')
            goto bad;
        host = s + 1;
        hostlen = (size_t)(end - host);
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            goto bad;
        hostlen = (size_t)(colon - s);
    }
    if (hostlen == 0 || hostlen >= sizeof(out->host))
        goto bad;
    if (parse_u63(colon + 1, &port) == NULL || port < 1 || port > 65535)
        goto bad;
    {
        const char *end = parse_u63(colon + 1, &port);
        if (*end != '\0')
            goto bad;
    }
    memcpy(out->host, host, hostlen);
    out->host[hostlen] = '\0';
    for (size_t i = 0; i < hostlen; i++)
        if (isspace((unsigned char)out->host[i]))
            goto bad;
    out->port = (uint16_t)port;
    return TARN_OK;
bad:
    return tarn_err_set(err, TARN_EINVAL,
                        "invalid address '%.60s' (expected host:port, e.g. "
                        "127.0.0.1:9898)",
                        s ? s : "");
}
