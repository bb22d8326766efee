/*
 * log.h - leveled logging with a per-connection context.
 *
 * A tlog writes one line per call with a single write(2), so lines from
 * the reactor and the worker threads never interleave.  The level check
 * happens in the TLOG macro before any argument is evaluated.
 */
#ifndef TARN_CORE_LOG_H
#define TARN_CORE_LOG_H

#include <stdarg.h>

#include "server/core/err.h"

typedef enum tlog_level {
    TLOG_ERROR = 0,
    TLOG_WARN = 1,
    TLOG_INFO = 2,
    TLOG_DEBUG = 3
} tlog_level;

typedef struct tlog tlog;

/**
 * Create a logger.
 *
 * @param[in]  path   a file to append to, or NULL / "" for stderr
 * @param[in]  level  the most verbose level that is written
 * @param[out] out    the logger; free with tlog_destroy()
 * @return TARN_OK, or TARN_EIO when the file cannot be opened.
 */
tarn_rc tlog_create(const char *path, tlog_level level, tlog **out,
                    tarn_err *err);

/** Close the log.  NULL-safe. */
void tlog_destroy(tlog *lg);

/**
 * Point the log at @p path (or stderr), for SIGHUP after rotation.  The
 * descriptor number does not change (dup2), so concurrent writers on
 * worker threads stay safe.  On failure the old destination is kept.
 */
tarn_rc tlog_reopen(tlog *lg, const char *path, tarn_err *err);

/** Change the level; safe from any thread. */
void tlog_set_level(tlog *lg, tlog_level level);

/** The current level; safe from any thread. */
tlog_level tlog_get_level(const tlog *lg);

/**
 * Write one line: timestamp, level, "[ctx]" when @p ctx is not NULL, and
 * the message.  Newlines in the message are replaced so that a line stays
 * a line.  Safe from any thread.  Use TLOG() rather than calling this.
 */
void tlog_write(tlog *lg, tlog_level level, const char *ctx, const char *fmt,
                ...) TARN_PRINTF(4, 5);

/** Parse "error", "warn", "info" or "debug". */
tarn_rc tlog_level_parse(const char *s, tlog_level *out);

/** "ERROR", "WARN", "INFO", "DEBUG". */
const char *tlog_level_name(tlog_level level);

#define TLOG(lg, lvl, ctx, ...)                          \
    do {                                                 \
        if ((lg) != NULL && (lvl) <= tlog_get_level(lg)) \
            tlog_write((lg), (lvl), (ctx), __VA_ARGS__); \
    } while (0)

#define tlog_error(lg, ctx, ...) TLOG(lg, TLOG_ERROR, ctx, __VA_ARGS__)
#define tlog_warn(lg, ctx, ...)  TLOG(lg, TLOG_WARN, ctx, __VA_ARGS__)
#define tlog_info(lg, ctx, ...)  TLOG(lg, TLOG_INFO, ctx, __VA_ARGS__)
#define tlog_debug(lg, ctx, ...) TLOG(lg, TLOG_DEBUG, ctx, __VA_ARGS__)

#endif
