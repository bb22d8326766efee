/*
 * catalog.h - tarn's metadata on LMDB: tenants, timelines (branches) and
 * their names, each timeline's layer map and commit timestamps, and the
 * schema version.
 *
 * Callers never see LMDB: every call is one complete transaction, records
 * are copied out into the plain structs below, and every failure comes
 * back as a tarn_rc with a message.  Each state change is exactly one LMDB
 * write transaction, synced to disk before the call returns, so anything
 * a caller acknowledges after a successful return survives kill -9 and
 * power loss.
 *
 * Threading: one catalog handle belongs to the reactor thread.  All calls,
 * reads included, come from that thread (the map may be resized between
 * calls, which LMDB allows only while no transaction is open).
 */
#ifndef TARN_CATALOG_CATALOG_H
#define TARN_CATALOG_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/core/err.h"
#include "server/core/types.h"

/** The catalog schema this build reads and writes. */
#define CATALOG_SCHEMA_VERSION 1

/** Longest tenant or branch name, in bytes. */
#define CATALOG_NAME_MAX 63

/** Longest compute connection string, in bytes. */
#define CATALOG_CONNINFO_MAX 1023

typedef struct catalog catalog;

typedef struct catalog_opts {
    const char *path;    /**< an existing directory for the LMDB files */
    size_t map_size;     /**< initial map size; grows on demand */
    size_t max_map_size; /**< hard ceiling for growth; 0 = 1 TiB */
} catalog_opts;

typedef struct catalog_tenant {
    tarn_id id;
    char name[CATALOG_NAME_MAX + 1]; /**< "" when unnamed */
    tarn_time_us created_at;
} catalog_tenant;

/** The life cycle of a timeline. */
typedef enum catalog_tl_state {
    CATALOG_TL_EMPTY = 0,   /**< metadata only: no WAL, no data yet */
    CATALOG_TL_ACTIVE = 1,  /**< has data and serves it */
    CATALOG_TL_BROKEN = 2,  /**< stopped by an unrecoverable error */
    CATALOG_TL_CREATING = 3 /**< being bootstrapped or imported; removed at
                                 start-up if tarnd died meanwhile */
} catalog_tl_state;

/** A per-timeline override of a boolean config key. */
typedef enum catalog_tristate {
    CATALOG_DEFAULT = -1, /**< follow tarnd's configuration */
    CATALOG_OFF = 0,
    CATALOG_ON = 1
} catalog_tristate;

typedef struct catalog_timeline {
    tarn_id tenant_id;
    tarn_id timeline_id;
    char name[CATALOG_NAME_MAX + 1]; /**< "" when unnamed */
    bool has_ancestor;
    tarn_id ancestor_id;   /**< valid when has_ancestor */
    tarn_lsn ancestor_lsn; /**< the branch point; valid when has_ancestor */
    catalog_tl_state state;
    tarn_time_us created_at;
    tarn_lsn start_lsn; /**< first LSN of its own history */
    tarn_lsn last_record_lsn;
    tarn_lsn wal_flush_lsn;
    tarn_lsn disk_consistent_lsn;
    tarn_lsn remote_consistent_lsn;
    /* The WAL service's durable state (0 / "" until a compute attached). */
    uint64_t system_id;       /**< the compute's system identifier */
    uint32_t wal_seg_size;    /**< its WAL segment size */
    tarn_lsn wal_start_lsn;   /**< first byte of WAL kept, a segment start */
    tarn_lsn prev_record_lsn; /**< start of the record ending at
                                   wal_flush_lsn (0: unknown) */
    char compute_conninfo[CATALOG_CONNINFO_MAX + 1]; /**< "" = detached */
    /** Store consistency-check images as page versions. */
    catalog_tristate trust_consistency_images;
} catalog_timeline;

/** What catalog_timeline_create() is asked to make. */
typedef struct catalog_timeline_new {
    tarn_id tenant_id;
    tarn_id timeline_id;
    const char *name; /**< NULL or "" for none */
    bool has_ancestor;
    tarn_id ancestor_id;
    bool has_ancestor_lsn; /**< false: branch at the ancestor's last LSN */
    tarn_lsn ancestor_lsn;
    tarn_time_us created_at;
    bool creating; /**< a root made in state CREATING (bootstrap/import) */
    /** The ancestor's live last_record_lsn (the page server's, which runs
     * ahead of the catalog's); 0: use the catalog's. */
    tarn_lsn ancestor_last_lsn;
    catalog_tristate trust_consistency_images;
} catalog_timeline_new;

/** Longest layer file name. */
#define CATALOG_LAYER_NAME_MAX 127

/** One layer file of a timeline, as the layer map records it. */
typedef struct catalog_layer {
    char name[CATALOG_LAYER_NAME_MAX + 1];
    uint8_t kind; /**< 1 delta, 2 image */
    uint8_t key_start[18], key_end[18];
    tarn_lsn lsn_start, lsn_end;
    uint64_t file_size;
    uint64_t nvalues;
} catalog_layer;

/** A commit: its timestamp (PostgreSQL microseconds since 2000-01-01) and
 * the end LSN of its record. */
typedef struct catalog_commit_ts {
    int64_t ts;
    tarn_lsn lsn;
} catalog_commit_ts;

/** What catalog_commit_ts_find() found around a timestamp. */
typedef struct catalog_ts_hit {
    bool any;         /**< the timeline has commits at all */
    bool found;       /**< a commit at or before the timestamp exists */
    int64_t ts;       /**< the last such commit... */
    tarn_lsn lsn;     /**< ...and its end LSN */
    bool later;       /**< a commit after the timestamp exists */
    int64_t first_ts; /**< the first commit of all */
    tarn_lsn first_lsn;
} catalog_ts_hit;

typedef struct catalog_stats {
    uint64_t write_commits; /**< write transactions committed */
    uint64_t write_aborts;  /**< write transactions rolled back */
    uint64_t read_txns;
    uint64_t map_resizes;
    size_t map_size;   /**< bytes */
    size_t used_bytes; /**< bytes of the map in use */
} catalog_stats;

/** Counts found by catalog_verify(). */
typedef struct catalog_summary {
    size_t tenants;
    size_t timelines;
} catalog_summary;

/**
 * Open or create the catalog in @p o->path.
 *
 * A new catalog gets the current schema version; an existing one must
 * have it.
 *
 * @return TARN_OK; TARN_EUNSUPPORTED for another schema version;
 * TARN_ECORRUPT when the schema record fails its checksum; TARN_EIO.
 */
tarn_rc catalog_open(const catalog_opts *o, catalog **out, tarn_err *err);

/** Close.  NULL-safe. */
void catalog_close(catalog *c);

/** Counters for /metrics. */
void catalog_get_stats(catalog *c, catalog_stats *out);

/**
 * Check a tenant or branch name: 1 to CATALOG_NAME_MAX characters of
 * [A-Za-z0-9._-], starting with a letter or digit, and not 32 hex digits
 * (which would read as an id).
 */
tarn_rc catalog_name_check(const char *name, tarn_err *err);

/**
 * Create a tenant.
 *
 * @return TARN_OK; TARN_EEXIST when the id or the name is taken;
 * TARN_EINVAL for a bad name.
 */
tarn_rc catalog_tenant_create(catalog *c, const catalog_tenant *t,
                              tarn_err *err);

/** Look up a tenant by id.  TARN_ENOTFOUND if there is none. */
tarn_rc catalog_tenant_get(catalog *c, const tarn_id *id, catalog_tenant *out,
                           tarn_err *err);

/** Look up a tenant by name.  TARN_ENOTFOUND if there is none. */
tarn_rc catalog_tenant_find(catalog *c, const char *name, catalog_tenant *out,
                            tarn_err *err);

/**
 * All tenants, ordered by id, in a malloc'd array the caller frees.
 * *out is NULL when there are none.
 */
tarn_rc catalog_tenant_list(catalog *c, catalog_tenant **out, size_t *n,
                            tarn_err *err);

/**
 * Delete a tenant and every timeline it has, in one transaction.
 * TARN_ENOTFOUND if there is no such tenant.
 */
tarn_rc catalog_tenant_delete(catalog *c, const tarn_id *id, tarn_err *err);

/**
 * Create a timeline: a root (no ancestor) in state EMPTY, or a branch of
 * an existing timeline of the same tenant.
 *
 * A branch point must lie within the ancestor's history: at or after its
 * start_lsn and at or before its last_record_lsn.  Without an explicit
 * LSN, the branch starts at the ancestor's last_record_lsn.  The branch
 * inherits the ancestor's state (an EMPTY ancestor gives an EMPTY branch).
 *
 * @param[out] out  the stored record; may be NULL
 * @return TARN_OK; TARN_ENOTFOUND for an unknown tenant or ancestor (the
 * message says which); TARN_EEXIST when the id or the name is taken in
 * this tenant; TARN_EINVAL for a bad name or branch point.
 */
tarn_rc catalog_timeline_create(catalog *c, const catalog_timeline_new *n,
                                catalog_timeline *out, tarn_err *err);

/** Look up a timeline by tenant and id.  TARN_ENOTFOUND if none. */
tarn_rc catalog_timeline_get(catalog *c, const tarn_id *tenant,
                             const tarn_id *id, catalog_timeline *out,
                             tarn_err *err);

/** Look up a timeline by tenant and name.  TARN_ENOTFOUND if none. */
tarn_rc catalog_timeline_find(catalog *c, const tarn_id *tenant,
                              const char *name, catalog_timeline *out,
                              tarn_err *err);

/**
 * The timelines of @p tenant, ordered by id, in a malloc'd array the
 * caller frees.  TARN_ENOTFOUND for an unknown tenant.
 */
tarn_rc catalog_timeline_list(catalog *c, const tarn_id *tenant,
                              catalog_timeline **out, size_t *n, tarn_err *err);

/**
 * Delete a timeline, with its layer records and commit timestamps.
 *
 * @return TARN_OK; TARN_ENOTFOUND; TARN_ECONFLICT when other timelines
 * branch from it, with the message naming them.
 */
tarn_rc catalog_timeline_delete(catalog *c, const tarn_id *tenant,
                                const tarn_id *id, tarn_err *err);

/**
 * Replace the mutable fields of an existing timeline (state, the LSN
 * fields and the WAL service's fields) with those of @p tl, in one
 * transaction.  The id, tenant, name, ancestry and creation time cannot
 * change.  TARN_ENOTFOUND if it does not exist.
 */
tarn_rc catalog_timeline_update(catalog *c, const catalog_timeline *tl,
                                tarn_err *err);

/**
 * The state change behind a layer flush, an image layer or an import, in
 * one transaction: replace the mutable fields of the timeline record (as
 * catalog_timeline_update), add and remove layer records, and add commit
 * timestamps.  Adding a layer that exists fails with TARN_EEXIST.
 */
tarn_rc catalog_timeline_commit(catalog *c, const catalog_timeline *tl,
                                const catalog_layer *add, size_t nadd,
                                const char *const *remove, size_t nremove,
                                const catalog_commit_ts *cts, size_t ncts,
                                tarn_err *err);

/**
 * The layers of a timeline, ordered by name, in a malloc'd array the
 * caller frees (NULL when there are none).
 */
tarn_rc catalog_layer_list(catalog *c, const tarn_id *tenant, const tarn_id *tl,
                           catalog_layer **out, size_t *n, tarn_err *err);

/** Look up the commits of a timeline around @p ts. */
tarn_rc catalog_commit_ts_find(catalog *c, const tarn_id *tenant,
                               const tarn_id *tl, int64_t ts,
                               catalog_ts_hit *out, tarn_err *err);

/**
 * Read every record and check the catalog's invariants: checksums, every
 * timeline's tenant and ancestor exist, branch points lie within their
 * ancestor's history, and the name indexes match the records both ways.
 *
 * @return TARN_OK with the counts; TARN_ECORRUPT naming the first broken
 * invariant.
 */
tarn_rc catalog_verify(catalog *c, catalog_summary *out, tarn_err *err);

/** "empty", "active", "broken", "creating". */
const char *catalog_tl_state_name(catalog_tl_state s);

#endif
