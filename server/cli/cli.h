/*
 * cli.h - what the tarn client's command files share: the parsed command
 * line and the calls to tarnd's admin API (tarn.c).
 */
#ifndef TARN_CLI_CLI_H
#define TARN_CLI_CLI_H

#include <jansson.h>
#include <stdbool.h>

typedef struct cli {
    const char *base; /* TARN_HTTP */
    const char *token;
    bool json;
    const char *tenant; /* --tenant: id or name */
    const char *parent, *lsn, *at, *id, *name, *import;
    const char *port, *pgdata, *user; /* endpoint start */
    bool root, empty, keep;
    const char *pos[8];
    int npos;
} cli;

/** Print "tarn: <message>" on stderr and exit 1. */
void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/** "tarn: warning: <message>" on stderr. */
void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/**
 * One admin API request.  Returns the parsed JSON of a 2xx answer (NULL for
 * an empty body); any other answer ends the program with the server's
 * message.
 */
json_t *call(cli *c, const char *method, const char *path, json_t *body);

/**
 * As call(), but a non-2xx answer is returned: *status gets the HTTP
 * status (0 when tarnd cannot be reached) and @p msg the message.
 */
json_t *call_status(cli *c, const char *method, const char *path, json_t *body,
                    long *status, char *msg, size_t cap);

void print_json(json_t *j);

/** The string member @p key of @p o, or "". */
const char *str(json_t *o, const char *key);

/** The tenant --tenant names (id or name), or the only/"default" one. */
const char *tenant_id(cli *c);

/** GET the tenant's timelines. */
json_t *timelines(cli *c, const char *tid);

/** A branch by name or id in a timeline list; NULL if absent. */
json_t *find_branch(json_t *list, const char *key);

int cmd_endpoint_start(cli *c);
int cmd_endpoint_stop(cli *c);
int cmd_endpoint_list(cli *c);

#endif
