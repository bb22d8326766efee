/*
 * pgwire.h - the PostgreSQL v3 frontend/backend protocol, as a codec: a
 * resumable framer, parsers of the frontend messages the page service
 * accepts, and builders of the backend messages it sends.
 *
 * Nothing here owns a connection.  Parsers take whatever bytes a peer sent
 * and either fill a struct that points into those bytes or say precisely
 * what is wrong; builders append whole messages to an evbuffer.  Integers
 * on the wire are big-endian.
 */
#ifndef TARN_NET_PGWIRE_H
#define TARN_NET_PGWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/core/err.h"

struct evbuffer;

/** Startup packets are small; PostgreSQL caps them at 10000 bytes too. */
#define PGW_MAX_STARTUP 10000
/** Any other frontend message, type byte and length word included. */
#define PGW_MAX_MSG (1024 * 1024)

/* Startup request codes (the second word of a startup packet). */
#define PGW_PROTO_3_0   196608u /* 3 << 16 */
#define PGW_SSL_REQUEST 80877103u
#define PGW_GSS_REQUEST 80877104u
#define PGW_CANCEL_REQ  80877102u

/* Authentication request codes ('R'). */
#define PGW_AUTH_OK            0
#define PGW_AUTH_SASL          10
#define PGW_AUTH_SASL_CONTINUE 11
#define PGW_AUTH_SASL_FINAL    12

/* SQLSTATEs tarn sends. */
#define PGW_SQLSTATE_INTERNAL    "XX000"
#define PGW_SQLSTATE_PROTOCOL    "08P01"
#define PGW_SQLSTATE_CONNECTION  "08006"
#define PGW_SQLSTATE_SHUTDOWN    "57P01"
#define PGW_SQLSTATE_AUTH_FAILED "28P01"
#define PGW_SQLSTATE_UNSUPPORTED "0A000"
#define PGW_SQLSTATE_TOO_MANY    "53300"

/** One framed message: where it is and how long it is. */
typedef struct pgw_frame {
    char type;    /**< the type byte; 0 for a startup packet */
    size_t total; /**< bytes of the whole message, header included */
    size_t hdr;   /**< bytes before the body: 4 (startup) or 5 */
} pgw_frame;

/**
 * Frame the next message in the first @p avail bytes at @p p, without
 * consuming anything.
 *
 * @param startup  the connection expects a startup packet (no type byte)
 * @return TARN_OK with @p out filled when the whole message is there;
 * TARN_AGAIN when more bytes are needed (a partial message is never
 * framed); TARN_EPROTO for a length word below its minimum; TARN_ETOOBIG
 * for a length above PGW_MAX_STARTUP or PGW_MAX_MSG, found from the
 * header alone, before any body is buffered.
 */
tarn_rc pgw_frame_next(const uint8_t *p, size_t avail, bool startup,
                       pgw_frame *out, tarn_err *err);

/** A parsed startup packet; strings point into the packet. */
typedef struct pgw_startup {
    uint32_t code; /**< protocol version or one of the request codes */
    const char *user, *database, *application_name, *options;
    /** Protocol 3.x: "_pq_." options, which tarn does not know. */
    const char *unknown_pq[8];
    int n_unknown_pq;
} pgw_startup;

/**
 * Parse a startup packet's body (everything after its length word) of
 * @p len bytes.  For protocol 3.x the parameter list must be NUL
 * terminated name/value pairs ending with an empty name; the special
 * request codes must have exactly their fixed length.
 *
 * @return TARN_OK; TARN_EPROTO naming the defect.
 */
tarn_rc pgw_parse_startup(const uint8_t *body, size_t len, pgw_startup *out,
                          tarn_err *err);

/**
 * A NUL-terminated string at @p *pos within @p len bytes of @p body;
 * advances @p *pos past the NUL.  @return NULL when there is no NUL.
 */
const char *pgw_get_string(const uint8_t *body, size_t len, size_t *pos);

/** Query ('Q'): the text. */
tarn_rc pgw_parse_query(const uint8_t *body, size_t len, const char **text,
                        tarn_err *err);

/** Parse ('P'): statement name and query text (parameter types ignored). */
tarn_rc pgw_parse_parse(const uint8_t *body, size_t len, const char **name,
                        const char **text, tarn_err *err);

/** Describe ('D') or Close ('C'): 'S' or 'P' and the name. */
tarn_rc pgw_parse_describe(const uint8_t *body, size_t len, char *kind,
                           const char **name, tarn_err *err);

/**
 * SASLInitialResponse ('p' while authenticating): the mechanism and the
 * client's first message (-1 length: none).
 */
tarn_rc pgw_parse_sasl_initial(const uint8_t *body, size_t len,
                               const char **mech, const uint8_t **data,
                               size_t *dlen, tarn_err *err);

/* ---- backend messages ---------------------------------------------------
 * Each appends one whole message to @p out.  They return nothing: an
 * evbuffer that cannot grow leaves the connection to fail on its next
 * write, which is where the caller notices.
 */

/** A message of type @p type with body @p body (may be NULL when 0). */
void pgw_put_msg(struct evbuffer *out, char type, const void *body, size_t len);

/** 'R': authentication request @p code followed by @p data. */
void pgw_put_auth(struct evbuffer *out, uint32_t code, const void *data,
                  size_t len);

/** 'S': ParameterStatus. */
void pgw_put_param(struct evbuffer *out, const char *name, const char *value);

/** 'K': BackendKeyData. */
void pgw_put_backend_key(struct evbuffer *out, uint32_t pid, uint32_t key);

/** 'Z': ReadyForQuery with transaction status 'I'. */
void pgw_put_ready(struct evbuffer *out);

/** 'C': CommandComplete with @p tag. */
void pgw_put_complete(struct evbuffer *out, const char *tag);

/**
 * 'E': ErrorResponse with the fields S and V (@p severity, "ERROR" or
 * "FATAL"), C (@p sqlstate) and M (@p msg).
 */
void pgw_put_error(struct evbuffer *out, const char *severity,
                   const char *sqlstate, const char *msg);

/** 'W': CopyBothResponse, text format, no columns. */
void pgw_put_copy_both(struct evbuffer *out);

/** 'v': NegotiateProtocolVersion: minor 0 and the unknown options. */
void pgw_put_negotiate(struct evbuffer *out, const pgw_startup *s);

/** The 5-byte header of a CopyData ('d') carrying @p len payload bytes. */
void pgw_put_copydata_hdr(struct evbuffer *out, size_t len);

/* Big-endian helpers shared with the pagestream codec. */
static inline void
pgw_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void
pgw_put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static inline void
pgw_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static inline uint16_t
pgw_get_be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t
pgw_get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16)
           | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t
pgw_get_be64(const uint8_t *p)
{
    return ((uint64_t)pgw_get_be32(p) << 32) | pgw_get_be32(p + 4);
}

#endif
