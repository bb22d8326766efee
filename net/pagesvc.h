/*
 * pagesvc.h - the page service: a PostgreSQL v3 protocol listener on
 * page_listen that computes and tools talk to.
 *
 * It answers the startup packet (SSLRequest and GSSENCRequest with 'N'),
 * authenticates (trust, or SCRAM-SHA-256 when page_auth is set), runs the
 * simple query protocol and the extended-protocol subset that Neon's
 * clients use, and serves `pagestream_v3|v2 <tenant> <timeline>`: Exists,
 * Nblocks, GetPage, DbSize and GetSlruSegment in CopyBoth, answered in
 * order, pipelined, waiting for WAL up to wait_lsn_timeout when a request
 * needs an LSN that has not been ingested yet (docs/protocols.md).
 *
 * Reactor thread only.
 */
#ifndef TARN_NET_PAGESVC_H
#define TARN_NET_PAGESVC_H

#include "server/core/config.h"
#include "server/core/err.h"
#include "server/core/log.h"
#include "server/core/types.h"
#include "storage/repo.h"

struct event_base;
struct evbuffer;
typedef struct pagesvc pagesvc;

typedef struct pagesvc_opts {
    struct event_base *base;
    const char *listen; /**< "host:port" */
    repo *repo;
    tlog *log;
    const tarn_config *cfg; /**< read live: wait_lsn_timeout */
    const char *auth; /**< page_auth: "" trust, else see pagesvc_set_auth */
} pagesvc_opts;

/**
 * Bind, listen and start accepting.
 *
 * @return TARN_OK; TARN_EINVAL for a bad address or page_auth value;
 * TARN_EIO when the address cannot be bound (the message names it and
 * the reason, e.g. "Address already in use").
 */
tarn_rc pagesvc_create(const pagesvc_opts *o, pagesvc **out, tarn_err *err);

/**
 * Set page_auth for connections that start from now on: "" means trust;
 * "SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>" (PostgreSQL's
 * pg_authid form) is used as the verifier; anything else is the password,
 * from which a verifier is derived.  On failure the old setting stays.
 */
tarn_rc pagesvc_set_auth(pagesvc *s, const char *auth, tarn_err *err);

/**
 * Ingest moved a timeline's last_record_lsn: requests waiting for WAL on
 * it are resumed (on a later turn of the loop, not from inside ingest).
 */
void pagesvc_lsn_advanced(pagesvc *s, const tarn_id *tenant, const tarn_id *tl,
                          tarn_lsn last);

/**
 * Begin a graceful stop: close the listener; every connection gets what
 * was already answered, then a FATAL 57P01 ErrorResponse, and closes.
 */
void pagesvc_shutdown(pagesvc *s);

/** Connections that are still open (lingering ones included). */
int pagesvc_open_conns(const pagesvc *s);

/** Prometheus text for /metrics. */
void pagesvc_metrics(const pagesvc *s, struct evbuffer *out);

/** Close every connection and free.  NULL-safe. */
void pagesvc_destroy(pagesvc *s);

#endif
