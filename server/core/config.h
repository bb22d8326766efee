/*
 * config.h - tarnd's configuration: one declarative table of keys, an INI
 * loader (libinih) and --set overrides.
 *
 * A tarn_config is a plain snapshot.  Loading builds a new one from the
 * defaults, the file and the overrides, in that order; a reload builds
 * another and the server copies over only the keys marked reloadable.
 */
#ifndef TARN_CORE_CONFIG_H
#define TARN_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "server/core/err.h"

/** Every setting of tarnd.  Strings are malloc'd and owned by the config. */
typedef struct tarn_config {
    char *data_dir;
    char *http_listen;
    char *page_listen;
    char *page_auth;
    char *http_auth_token;
    int64_t http_max_connections;
    int64_t http_idle_timeout_ms;
    int64_t log_level; /**< a tlog_level */
    char *log_file;
    int64_t worker_threads;
    int64_t catalog_map_size;
    int64_t shutdown_timeout_ms;
    int64_t wal_status_interval_ms;
    int64_t wal_connect_timeout_ms;
    int64_t wal_reconnect_max_ms;
    int64_t wal_receiver_timeout_ms;
    int64_t checkpoint_distance;
    int64_t checkpoint_timeout_ms;
    int64_t layer_memory_limit;
    int64_t image_creation_threshold;
    int64_t image_creation_interval_ms;
    int64_t page_cache_size;
    int64_t redo_inline_max;
    int64_t layer_compression;        /**< a tarn_codec */
    int64_t trust_consistency_images; /**< bool */
    int64_t wait_lsn_timeout_ms;
    char *pg_bin_dir;
    char *pg_user;
} tarn_config;

typedef enum cfg_type {
    CFG_STRING,   /**< free text; surrounding double quotes are removed */
    CFG_PATH,     /**< a file or directory path */
    CFG_ADDR,     /**< host:port */
    CFG_INT,      /**< a decimal integer within [min, max] */
    CFG_SIZE,     /**< bytes, "64MB"; within [min, max] */
    CFG_DURATION, /**< milliseconds, "10s"; within [min, max] */
    CFG_BOOL,     /**< on/off, true/false, yes/no, 1/0 */
    CFG_LOGLEVEL, /**< error, warn, info, debug */
    CFG_CODEC     /**< a tarn_codec: none, zstd, lz4 */
} cfg_type;

/** One row of the table. */
typedef struct cfg_key {
    const char *name;
    const char *section; /**< where the generated file puts it */
    cfg_type type;
    size_t offset; /**< of the field in tarn_config */
    const char *def;
    int64_t min, max;
    bool reloadable; /**< SIGHUP applies a new value */
    bool secret;     /**< never printed back */
    const char *help;
} cfg_key;

/** The table, in the order of the generated file. */
const cfg_key *cfg_keys(size_t *n);

/** The row for @p name, or NULL. */
const cfg_key *cfg_key_find(const char *name);

/**
 * Fill @p c with every default.  @p c must be zeroed or freed before.
 * Fails only on allocation failure.
 */
tarn_rc cfg_defaults(tarn_config *c, tarn_err *err);

/**
 * Set one key from its text form, validating type and bounds.
 *
 * @return TARN_OK; TARN_ENOTFOUND for an unknown key; TARN_EINVAL for a
 * bad value.  The message names the key and the reason, without a
 * location prefix (the caller adds "file:line: ").
 */
tarn_rc cfg_set(tarn_config *c, const char *key, const char *value,
                tarn_err *err);

/**
 * Apply an INI file on top of @p c.  Section names are free; each key may
 * appear once.  The message of a failure starts with "<path>:<line>: ".
 */
tarn_rc cfg_load_file(tarn_config *c, const char *path, tarn_err *err);

/** As cfg_load_file(), from text; @p name is used in messages. */
tarn_rc cfg_load_string(tarn_config *c, const char *text, const char *name,
                        tarn_err *err);

/**
 * Build a whole configuration: defaults, then @p path (when not NULL),
 * then each "key=value" of @p sets.  On failure @p out is left freed.
 */
tarn_rc cfg_load(tarn_config *out, const char *path, const char *const *sets,
                 size_t nsets, tarn_err *err);

/** Free the strings of @p c and zero it.  NULL-safe. */
void cfg_free(tarn_config *c);

/**
 * Format the value of @p k in @p c as text (secrets as "(set)" or ""),
 * such that cfg_set() with that text sets the same value: a string that
 * itself begins and ends with a double quote gets one more pair.
 * @return @p buf.
 */
char *cfg_format(const tarn_config *c, const cfg_key *k, char *buf, size_t len);

/** True if the two configs differ in key @p k. */
bool cfg_differs(const tarn_config *a, const tarn_config *b, const cfg_key *k);

/**
 * Copy the value of key @p k from @p src into @p dst.
 * @return TARN_ENOMEM on allocation failure.
 */
tarn_rc cfg_copy_key(tarn_config *dst, const tarn_config *src, const cfg_key *k,
                     tarn_err *err);

/** Write the documented example file (conf/tarnd.conf) to @p f. */
void cfg_write_example(FILE *f);

#endif
