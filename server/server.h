/*
 * server.h - the root of tarnd: one struct that owns the reactor, the
 * configuration and every module, and the only mutable state of the
 * process.
 */
#ifndef TARN_SERVER_SERVER_H
#define TARN_SERVER_SERVER_H

#include <stddef.h>

#include "server/core/err.h"

typedef struct tarn_server tarn_server;

typedef struct server_opts {
    const char *config_path; /**< NULL: built-in defaults only */
    const char *const *sets; /**< "key=value" overrides, applied last */
    size_t nsets;
} server_opts;

/**
 * Load the configuration, open the log, lock the data directory, open
 * and verify the catalog, start the worker pool and bind the listeners.
 * Nothing is served until server_run().
 *
 * @return TARN_OK; any error with a one-line message (bad config, data
 * directory locked, address in use, ...).
 */
tarn_rc server_create(const server_opts *o, tarn_server **out, tarn_err *err);

/**
 * Run the reactor until SIGTERM or SIGINT has stopped the server
 * gracefully.  @return the process exit status.
 */
int server_run(tarn_server *s);

/** Tear everything down.  NULL-safe. */
void server_destroy(tarn_server *s);

#endif
