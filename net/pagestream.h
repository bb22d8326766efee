/*
 * pagestream.h - Neon's pagestream messages (v2 and v3), as a codec: the
 * request parser and the response encoder.  Layouts are those of
 * docs/protocols.md ("Page service"); every integer is big-endian.
 *
 * Pure functions over buffers, like pgwire.h: the page service feeds them
 * the payload of each CopyData.
 */
#ifndef TARN_NET_PAGESTREAM_H
#define TARN_NET_PAGESTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/core/err.h"

/* Request tags. */
#define PS_REQ_EXISTS  0
#define PS_REQ_NBLOCKS 1
#define PS_REQ_GETPAGE 2
#define PS_REQ_DBSIZE  3
#define PS_REQ_SLRU    4
#define PS_REQ_NTYPES  5

/* Response tags. */
#define PS_RESP_EXISTS  100
#define PS_RESP_NBLOCKS 101
#define PS_RESP_GETPAGE 102
#define PS_RESP_ERROR   103
#define PS_RESP_DBSIZE  104
#define PS_RESP_SLRU    105

#define PS_BLCKSZ         8192
#define PS_SLRU_MAX_PAGES 32
/** The fixed part of any response (the v3 echo is the longest). */
#define PS_FIXED_MAX 64

/** A parsed request.  v2 requests have reqid 0. */
typedef struct ps_req {
    uint8_t tag;
    uint64_t reqid, request_lsn, not_modified_since;
    uint32_t spc, db, rel; /**< Exists, Nblocks, GetPage */
    uint8_t fork;
    uint32_t blkno; /**< GetPage */
    uint32_t dboid; /**< DbSize */
    uint8_t kind;   /**< GetSlruSegment */
    uint32_t segno;
} ps_req;

/** The answer to one request, without its page data. */
typedef struct ps_resp {
    uint8_t tag; /**< PS_RESP_* */
    bool exists;
    uint32_t nblocks;   /**< Nblocks; GetSlruSegment: pages */
    int64_t db_size;    /**< bytes */
    const char *errmsg; /**< PS_RESP_ERROR */
} ps_resp;

/** "exists", "nblocks", "getpage", "dbsize", "slru" (metrics, logs). */
const char *ps_req_name(uint8_t tag);

/**
 * Parse one request of protocol @p version (2 or 3).  Bytes after the
 * request are ignored, as Neon's server ignores them.
 *
 * @return TARN_OK; TARN_EPROTO for an unknown tag ("invalid tag N") or a
 * request shorter than its layout.
 */
tarn_rc ps_parse_request(int version, const uint8_t *buf, size_t len,
                         ps_req *out, tarn_err *err);

/**
 * Encode the fixed part of the response @p rs to @p rq into @p buf
 * (PS_FIXED_MAX bytes; an error message is not included, see below).
 * The page data that follows it (8192 bytes for GetPage, nblocks * 8192
 * for GetSlruSegment, the message and a NUL for an error) is the
 * caller's to append.
 *
 * @return the bytes written.
 */
size_t ps_encode_fixed(int version, const ps_req *rq, const ps_resp *rs,
                       uint8_t *buf);

/** Bytes the caller appends after the fixed part. */
size_t ps_payload_len(const ps_resp *rs);

/** Size of a request of @p tag in @p version, or 0 for an unknown tag. */
size_t ps_request_size(int version, uint8_t tag);

/** Encode a request (tests and the fuzzer's seeds); returns its size. */
size_t ps_encode_request(int version, const ps_req *rq, uint8_t *buf);

#endif
