/*
 * replmsg.c - streaming replication message encoding.
 */
#include "net/replmsg.h"

#include <string.h>

/* Seconds from the Unix epoch to PostgreSQL's (2000-01-01). */
#define PG_EPOCH_OFFSET_US (946684800LL * 1000000)

static uint64_t
get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static void
put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

tarn_rc
repl_parse(const uint8_t *buf, size_t len, repl_msg *out, tarn_err *err)
{
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return tarn_err_set(err, TARN_EPROTO, "empty replication message");
    out->kind = (char)buf[0];
    switch (buf[0]) {
    case REPL_XLOGDATA:
        if (len < 25)
            return tarn_err_set(err, TARN_EPROTO,
                                "XLogData message of %zu bytes is shorter "
                                "than its 25-byte header",
                                len);
        out->start = get_be64(buf + 1);
        out->wal_end = get_be64(buf + 9);
        out->send_time = (int64_t)get_be64(buf + 17);
        out->data = buf + 25;
        out->len = len - 25;
        if (out->start + out->len < out->start)
            return tarn_err_set(err, TARN_EPROTO,
                                "XLogData runs past the end of the LSN "
                                "space");
        return TARN_OK;
    case REPL_KEEPALIVE:
        if (len != 18)
            return tarn_err_set(err, TARN_EPROTO,
                                "keepalive message has %zu bytes, expected "
                                "18",
                                len);
        out->wal_end = get_be64(buf + 1);
        out->send_time = (int64_t)get_be64(buf + 9);
        if (buf[17] > 1)
            return tarn_err_set(err, TARN_EPROTO,
                                "keepalive reply flag is %u, expected 0 or 1",
                                buf[17]);
        out->reply_requested = buf[17] == 1;
        return TARN_OK;
    }
    return tarn_err_set(err, TARN_EPROTO,
                        "unexpected replication message type 0x%02x", buf[0]);
}

void
repl_build_status(uint8_t *out, tarn_lsn write, tarn_lsn flush, tarn_lsn apply,
                  int64_t now, bool reply)
{
    out[0] = 'r';
    put_be64(out + 1, write);
    put_be64(out + 9, flush);
    put_be64(out + 17, apply);
    put_be64(out + 25, (uint64_t)now);
    out[33] = reply ? 1 : 0;
}

int64_t
repl_now(void)
{
    return tarn_now_us() - PG_EPOCH_OFFSET_US;
}
