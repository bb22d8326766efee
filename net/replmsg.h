/*
 * replmsg.h - the messages of PostgreSQL's streaming replication protocol
 * inside CopyBoth: XLogData and keepalive from the walsender, the standby
 * status update from us.  Integers are big-endian on the wire.
 *
 * Pure functions over buffers: the parser takes whatever a peer sent and
 * either returns a message or says precisely what is wrong with it.
 */
#ifndef TARN_NET_REPLMSG_H
#define TARN_NET_REPLMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/core/err.h"
#include "server/core/types.h"

#define REPL_XLOGDATA  'w'
#define REPL_KEEPALIVE 'k'
/** Size of a standby status update ('r'). */
#define REPL_STATUS_LEN 34

typedef struct repl_msg {
    char kind;            /**< REPL_XLOGDATA or REPL_KEEPALIVE */
    tarn_lsn start;       /**< XLogData: LSN of data[0] */
    tarn_lsn wal_end;     /**< the sender's current end of WAL */
    int64_t send_time;    /**< microseconds since 2000-01-01 */
    bool reply_requested; /**< keepalive: answer at once */
    const uint8_t *data;  /**< XLogData payload, points into the buffer */
    size_t len;
} repl_msg;

/**
 * Parse one CopyData payload from the walsender.
 * @return TARN_OK, or TARN_EPROTO naming what is malformed.
 */
tarn_rc repl_parse(const uint8_t *buf, size_t len, repl_msg *out,
                   tarn_err *err);

/**
 * Build a standby status update into @p out (REPL_STATUS_LEN bytes):
 * write, flush and apply positions, our clock, and whether we want a
 * reply.
 */
void repl_build_status(uint8_t *out, tarn_lsn write, tarn_lsn flush,
                       tarn_lsn apply, int64_t now, bool reply);

/** Now, in PostgreSQL's replication clock: µs since 2000-01-01 UTC. */
int64_t repl_now(void);

#endif
