/*
 * admin_req.h - validation of the admin API's JSON request bodies.
 *
 * Each body is parsed into a plain struct, or rejected with a message fit
 * for the client: malformed JSON (with line and column), a body that is
 * not an object, a duplicate or unknown field (the allowed ones are
 * named), or a field of the wrong type or form.  JSON null counts as
 * absent.  Pure functions: no catalog, no I/O.
 */
#ifndef TARN_NET_ADMIN_REQ_H
#define TARN_NET_ADMIN_REQ_H

#include <stdbool.h>
#include <stddef.h>

#include "catalog/catalog.h"
#include "server/core/err.h"
#include "server/core/types.h"

/** POST /v1/tenant */
typedef struct admin_tenant_create {
    bool has_id;
    tarn_id id;                      /**< new_tenant_id */
    char name[CATALOG_NAME_MAX + 1]; /**< "" when absent */
} admin_tenant_create;

/** Longest import_pgdata path. */
#define ADMIN_PATH_MAX 1024

/** How a root timeline gets its base data. */
typedef enum admin_bootstrap {
    ADMIN_BOOTSTRAP_INITDB = 0, /**< run initdb (the default) */
    ADMIN_BOOTSTRAP_NONE = 1,   /**< none: WAL only, from a compute */
    ADMIN_BOOTSTRAP_IMPORT = 2  /**< import_pgdata */
} admin_bootstrap;

/** POST /v1/tenant/{t}/timeline */
typedef struct admin_timeline_create {
    bool has_id;
    tarn_id id; /**< new_timeline_id */
    char name[CATALOG_NAME_MAX + 1];
    bool has_ancestor;
    tarn_id ancestor; /**< ancestor_timeline_id */
    bool has_lsn;
    tarn_lsn lsn; /**< ancestor_start_lsn */
    bool has_time;
    tarn_time_us time; /**< ancestor_start_time */
    bool has_bootstrap;
    admin_bootstrap bootstrap; /**< "bootstrap": "initdb" | "none" */
    bool has_import;
    char import_pgdata[ADMIN_PATH_MAX + 1];
    bool has_trust;
    bool trust; /**< trust_consistency_images */
} admin_timeline_create;

/** POST /v1/tenant/{t}/timeline/{tl}/compute */
typedef struct admin_compute_attach {
    char conninfo[CATALOG_CONNINFO_MAX + 1];
    bool has_start;
    tarn_lsn start; /**< start_lsn */
} admin_compute_attach;

/** PUT /v1/tenant/{t}/timeline/{tl}/checkpoint */
typedef struct admin_checkpoint {
    bool has_images;
    bool images; /**< write image layers after the flush (default true) */
} admin_checkpoint;

/**
 * Parse the body of POST /v1/tenant: {"new_tenant_id"?, "name"?}.  An
 * empty body means {}.
 *
 * @return TARN_OK, or TARN_EINVAL with the reason.
 */
tarn_rc admin_parse_tenant_create(const char *body, size_t len,
                                  admin_tenant_create *out, tarn_err *err);

/**
 * Parse the body of POST /v1/tenant/{t}/timeline: {"new_timeline_id"?,
 * "name"?, "ancestor_timeline_id"?, "ancestor_start_lsn"?,
 * "ancestor_start_time"?, "pg_version"?, "bootstrap"?, "import_pgdata"?,
 * "trust_consistency_images"?}.  An empty body means {}.  The start LSN
 * and time need an ancestor and exclude each other; pg_version must be 15
 * when given; bootstrap ("initdb" or "none") and import_pgdata (an
 * absolute path) are for roots only and exclude each other.  On success
 * out->bootstrap says which way a root gets its data.
 *
 * @return TARN_OK, or TARN_EINVAL with the reason.
 */
tarn_rc admin_parse_timeline_create(const char *body, size_t len,
                                    admin_timeline_create *out, tarn_err *err);

/**
 * Parse the body of POST .../compute: {"conninfo": string, "start_lsn"?}.
 * conninfo is required, non-empty and at most CATALOG_CONNINFO_MAX bytes.
 */
tarn_rc admin_parse_compute_attach(const char *body, size_t len,
                                   admin_compute_attach *out, tarn_err *err);

/**
 * Parse the body of PUT .../checkpoint: {"images"?: bool}.  An empty body
 * means {}; out->images is true unless the body says false.
 */
tarn_rc admin_parse_checkpoint(const char *body, size_t len,
                               admin_checkpoint *out, tarn_err *err);

#endif
