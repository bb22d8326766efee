/*
 * config.c - the key table and the INI loader.
 *
 * The table below is the single source of truth: the parser, the bounds
 * checks, `tarnd --print-config`, conf/tarnd.conf (generated from it and
 * checked by a test) and SIGHUP all read it.
 *
 * libinih does the lexing.  It does not tell the handler which line it is
 * on, so we feed it through our own line reader and count lines there; that
 * way an error in a value is reported at its own line, and a syntax error
 * that inih finds is reported at the line inih returns.
 */
#include "server/core/config.h"

#include <errno.h>
#include <ini.h>
#include <stdlib.h>
#include <string.h>

#include "server/core/log.h"
#include "server/core/types.h"

#define KB  (1024LL)
#define MB  (1024LL * 1024)
#define GB  (1024LL * 1024 * 1024)
#define TB  (1024LL * 1024 * 1024 * 1024)
#define SEC 1000LL

/* clang-format off */
#define KEY(n, f, sec, t, d, lo, hi, rl, h) \
    {n, sec, t, offsetof(tarn_config, f), d, lo, hi, rl, false, h}
#define SECRET(n, f, sec, t, d, rl, h) \
    {n, sec, t, offsetof(tarn_config, f), d, 0, 0, rl, true, h}
/* clang-format on */

static const cfg_key keys[] = {
    KEY("data_dir", data_dir, "server", CFG_PATH, ".tarn", 0, 0, false,
        "Data directory: catalog, WAL and layer files. Created on first "
        "start. A relative path is taken from tarnd's working directory."),
    KEY("worker_threads", worker_threads, "server", CFG_INT, "4", 1, 64, false,
        "Threads in the worker pool that runs blocking work (fsync, layer "
        "writes) off the reactor."),
    KEY("shutdown_timeout", shutdown_timeout_ms, "server", CFG_DURATION, "30s",
        1 * SEC, 3600 * SEC, true,
        "How long SIGTERM waits for in-flight requests and writes before "
        "tarnd exits anyway."),
    KEY("http_listen", http_listen, "http", CFG_ADDR, "127.0.0.1:9898", 0, 0,
        false, "host:port of the HTTP admin API and /metrics."),
    SECRET("http_auth_token", http_auth_token, "http", CFG_STRING, "", true,
           "When set, every route except /v1/status requires the header "
           "'Authorization: Bearer <token>'. Empty means no auth."),
    KEY("http_max_connections", http_max_connections, "http", CFG_INT, "256", 1,
        65536, false,
        "Concurrent HTTP connections; more are accepted and closed at "
        "once."),
    KEY("http_idle_timeout", http_idle_timeout_ms, "http", CFG_DURATION, "60s",
        1 * SEC, 3600 * SEC, true,
        "An HTTP connection idle (or sending a request) for this long is "
        "closed."),
    KEY("page_listen", page_listen, "pageservice", CFG_ADDR, "127.0.0.1:6400",
        0, 0, false,
        "host:port of the page service (PostgreSQL wire protocol: "
        "pagestream for computes and tools)."),
    SECRET("page_auth", page_auth, "pageservice", CFG_STRING, "", true,
           "Password of the page service. Empty means trust (any user, no "
           "password). Otherwise clients must log in with SCRAM-SHA-256 (any "
           "user name): give the password itself, or a SCRAM verifier as "
           "PostgreSQL stores it in pg_authid "
           "('SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>'), "
           "so the password need not be in this file. SIGHUP applies it to "
           "new connections."),
    KEY("log_level", log_level, "log", CFG_LOGLEVEL, "info", 0, 0, true,
        "error, warn, info or debug."),
    KEY("log_file", log_file, "log", CFG_PATH, "", 0, 0, true,
        "Append log lines to this file; empty means stderr. SIGHUP reopens "
        "it, for rotation."),
    KEY("wal_status_interval", wal_status_interval_ms, "wal", CFG_DURATION,
        "10s", 100, 3600 * SEC, false,
        "The longest time between standby status updates to an attached "
        "compute; one is also sent after every group fsync and whenever "
        "the compute asks."),
    KEY("wal_connect_timeout", wal_connect_timeout_ms, "wal", CFG_DURATION,
        "10s", 1 * SEC, 3600 * SEC, false,
        "How long connecting to a compute may take before the attempt "
        "fails."),
    KEY("wal_reconnect_max", wal_reconnect_max_ms, "wal", CFG_DURATION, "5s",
        100, 3600 * SEC, false,
        "Reconnects to a compute back off exponentially from 100ms up to "
        "this delay."),
    KEY("wal_receiver_timeout", wal_receiver_timeout_ms, "wal", CFG_DURATION,
        "60s", 0, 3600 * SEC, false,
        "A connection to a compute that brings nothing, not even a "
        "keepalive, for this long is dropped and made again (as "
        "PostgreSQL's wal_receiver_timeout). Checked at each status update; "
        "0 turns it off."),
    KEY("catalog_map_size", catalog_map_size, "catalog", CFG_SIZE, "64MB",
        1 * MB, 1 * TB, false,
        "Initial size of the LMDB map. It doubles automatically when full."),
    KEY("checkpoint_distance", checkpoint_distance, "storage", CFG_SIZE, "64MB",
        1 * MB, 4 * GB, true,
        "The open in-memory layer of a timeline is frozen and written as a "
        "delta layer file once it covers this much WAL (or holds this much "
        "data, or half of layer_memory_limit). WAL below the written layers "
        "may then be removed."),
    KEY("checkpoint_timeout", checkpoint_timeout_ms, "storage", CFG_DURATION,
        "10min", 1 * SEC, 24 * 3600 * SEC, true,
        "An open layer that has held data for this long is written out even "
        "if it is small, so a quiet timeline does not keep old WAL."),
    KEY("layer_memory_limit", layer_memory_limit, "storage", CFG_SIZE, "32MB",
        4 * MB, 1 * TB, true,
        "Memory for the in-memory layers of all timelines together, open "
        "and frozen. A timeline's open layer is frozen at half of this at "
        "most; past the limit, ingest into layers waits for a layer to be "
        "written. WAL is still received, made durable and acknowledged "
        "meanwhile; only its ingest lags."),
    KEY("image_creation_threshold", image_creation_threshold, "storage",
        CFG_INT, "3", 1, 1000, true,
        "An image layer is written for a key range once this many delta "
        "layers lie above its newest image; reads then stop there."),
    KEY("image_creation_interval", image_creation_interval_ms, "storage",
        CFG_DURATION, "10s", 0, 24 * 3600 * SEC, true,
        "The shortest time between two image passes of a timeline that its "
        "delta layers start (a checkpoint through the API does not wait). "
        "During a bulk load, a pass every few delta layers would rewrite "
        "the same partitions again and again; 0 starts one whenever "
        "image_creation_threshold is reached. After a pass that wrote "
        "nothing (pages it cannot rebuild), the wait doubles for each such "
        "pass in a row, from at least 1s up to 1h."),
    KEY("page_cache_size", page_cache_size, "storage", CFG_SIZE, "128MB",
        1 * MB, 1 * TB, false,
        "Memory for the cache of materialized pages and layer index blocks, "
        "shared by all timelines."),
    KEY("layer_compression", layer_compression, "storage", CFG_CODEC, "lz4", 0,
        0, true,
        "How layer files written from now on compress each value: lz4, "
        "zstd or none. lz4 decompresses a page four to five times faster "
        "than zstd, which is most of a page-cache miss's CPU "
        "(tests/bench/getpage); zstd makes files up to about twice as "
        "small. Files of any codec are read alike."),
    KEY("redo_inline_max", redo_inline_max, "storage", CFG_INT, "160", 0,
        1000000, true,
        "A page read whose history has at most this many values to apply "
        "runs its redo on the reactor; a longer one runs on the worker pool, "
        "so one deep page does not stall other requests. The default is "
        "where redo costs as much as the handoff (tests/bench/redo)."),
    KEY("trust_consistency_images", trust_consistency_images, "storage",
        CFG_BOOL, "off", 0, 1, false,
        "Store the page images that wal_consistency_checking adds to "
        "records as page versions, so pages of any resource manager can be "
        "served without redo (at the cost of WAL volume). A timeline can "
        "override it at creation."),
    KEY("wait_lsn_timeout", wait_lsn_timeout_ms, "storage", CFG_DURATION, "60s",
        0, 3600 * SEC, true,
        "How long a page request for an LSN that has not been ingested yet "
        "waits for it before failing."),
    KEY("pg_bin_dir", pg_bin_dir, "postgres", CFG_PATH,
        "/usr/lib/postgresql/15/bin", 0, 0, true,
        "Where the PostgreSQL 15 programs (initdb, postgres) are."),
    KEY("pg_user", pg_user, "postgres", CFG_STRING, "postgres", 0, 0, true,
        "When tarnd runs as root: the unprivileged user that runs initdb "
        "(PostgreSQL refuses root). Ignored otherwise."),
};

const cfg_key *
cfg_keys(size_t *n)
{
    *n = TARN_ARRAY_LEN(keys);
    return keys;
}

const cfg_key *
cfg_key_find(const char *name)
{
    for (size_t i = 0; i < TARN_ARRAY_LEN(keys); i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

static char **
str_field(tarn_config *c, const cfg_key *k)
{
    return (char **)((char *)c + k->offset);
}

static int64_t *
int_field(tarn_config *c, const cfg_key *k)
{
    return (int64_t *)((char *)c + k->offset);
}

static bool
is_string_type(cfg_type t)
{
    return t == CFG_STRING || t == CFG_PATH || t == CFG_ADDR;
}

static tarn_rc
parse_bool(const char *v, int64_t *out)
{
    static const char *const yes[] = {"on", "true", "yes", "1"};
    static const char *const no[] = {"off", "false", "no", "0"};

    for (int i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = 1;
            return TARN_OK;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = 0;
            return TARN_OK;
        }
    }
    return TARN_EINVAL;
}

static void
format_bound(const cfg_key *k, int64_t v, char *buf, size_t len)
{
    if (k->type == CFG_SIZE) {
        if (v % GB == 0 && v >= GB)
            snprintf(buf, len, "%lldGB", (long long)(v / GB));
        else if (v % MB == 0 && v >= MB)
            snprintf(buf, len, "%lldMB", (long long)(v / MB));
        else if (v % KB == 0 && v >= KB)
            snprintf(buf, len, "%lldkB", (long long)(v / KB));
        else
            snprintf(buf, len, "%lld", (long long)v);
    } else if (k->type == CFG_DURATION) {
        if (v % (3600 * SEC) == 0 && v > 0)
            snprintf(buf, len, "%lldh", (long long)(v / (3600 * SEC)));
        else if (v % (60 * SEC) == 0 && v > 0)
            snprintf(buf, len, "%lldmin", (long long)(v / (60 * SEC)));
        else if (v % SEC == 0)
            snprintf(buf, len, "%llds", (long long)(v / SEC));
        else
            snprintf(buf, len, "%lldms", (long long)v);
    } else {
        snprintf(buf, len, "%lld", (long long)v);
    }
}

/* Remove one pair of surrounding double quotes. */
static char *
unquote(const char *v)
{
    size_t n = strlen(v);

    if (n >= 2 && v[0] == '"' && v[n - 1] == '"')
        return strndup(v + 1, n - 2);
    return strdup(v);
}

tarn_rc
cfg_set(tarn_config *c, const char *name, const char *value, tarn_err *err)
{
    const cfg_key *k = cfg_key_find(name);
    tarn_err e2;
    int64_t v = 0;
    tarn_rc rc = TARN_OK;

    if (k == NULL)
        return tarn_err_set(err, TARN_ENOTFOUND, "unknown key '%s'", name);
    if (is_string_type(k->type)) {
        char *s = unquote(value);
        if (s == NULL)
            return tarn_err_set(err, TARN_ENOMEM, "out of memory");
        if (k->type == CFG_ADDR) {
            tarn_addr a;
            if (tarn_addr_parse(s, &a, &e2) != TARN_OK) {
                free(s);
                return tarn_err_set(err, TARN_EINVAL, "key '%s': %s", name,
                                    e2.msg);
            }
        }
        if (k->type == CFG_PATH && strlen(s) > 3000) {
            free(s);
            return tarn_err_set(err, TARN_EINVAL, "key '%s': path too long",
                                name);
        }
        free(*str_field(c, k));
        *str_field(c, k) = s;
        return TARN_OK;
    }
    switch (k->type) {
    case CFG_INT: {
        char *end;
        errno = 0;
        long long n = strtoll(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0')
            return tarn_err_set(err, TARN_EINVAL,
                                "key '%s': invalid integer '%.40s'", name,
                                value);
        v = n;
        break;
    }
    case CFG_SIZE:
        rc = tarn_size_parse(value, &v, &e2);
        break;
    case CFG_DURATION:
        rc = tarn_duration_parse(value, &v, &e2);
        break;
    case CFG_BOOL:
        if (parse_bool(value, &v) != TARN_OK)
            return tarn_err_set(err, TARN_EINVAL,
                                "key '%s': invalid boolean '%.40s' (expected "
                                "on or off)",
                                name, value);
        break;
    case CFG_LOGLEVEL: {
        tlog_level l;
        if (tlog_level_parse(value, &l) != TARN_OK)
            return tarn_err_set(err, TARN_EINVAL,
                                "key '%s': invalid log level '%.40s' "
                                "(expected error, warn, info or debug)",
                                name, value);
        v = l;
        break;
    }
    case CFG_CODEC: {
        tarn_codec codec;
        if (tarn_codec_parse(value, &codec) != TARN_OK)
            return tarn_err_set(err, TARN_EINVAL,
                                "key '%s': invalid compression '%.40s' "
                                "(expected lz4, zstd or none)",
                                name, value);
        v = codec;
        break;
    }
    default:
        TARN_ASSERT(!"unhandled config type");
    }
    if (rc != TARN_OK)
        return tarn_err_set(err, TARN_EINVAL, "key '%s': %s", name, e2.msg);
    if ((k->type == CFG_INT || k->type == CFG_SIZE || k->type == CFG_DURATION)
        && (v < k->min || v > k->max)) {
        char lo[32], hi[32];
        format_bound(k, k->min, lo, sizeof(lo));
        format_bound(k, k->max, hi, sizeof(hi));
        return tarn_err_set(err, TARN_EINVAL,
                            "key '%s': value '%.40s' is out of range [%s, %s]",
                            name, value, lo, hi);
    }
    *int_field(c, k) = v;
    return TARN_OK;
}

tarn_rc
cfg_defaults(tarn_config *c, tarn_err *err)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < TARN_ARRAY_LEN(keys); i++) {
        tarn_rc rc = cfg_set(c, keys[i].name, keys[i].def, err);
        /* A default that fails its own check is a bug in the table. */
        TARN_ASSERT(rc == TARN_OK || rc == TARN_ENOMEM);
        if (rc != TARN_OK) {
            cfg_free(c);
            return rc;
        }
    }
    return TARN_OK;
}

void
cfg_free(tarn_config *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < TARN_ARRAY_LEN(keys); i++)
        if (is_string_type(keys[i].type))
            free(*str_field(c, &keys[i]));
    memset(c, 0, sizeof(*c));
}

/* State shared by the line reader and the inih handler. */
typedef struct load_state {
    tarn_config *cfg;
    const char *name; /* file name for messages */
    FILE *file;       /* one of file / text is the source */
    const char *text;
    int line;     /* the line last handed to inih */
    int err_line; /* first error found by the handler or reader */
    tarn_err err;
    bool seen[TARN_ARRAY_LEN(keys)];
} load_state;

static void
note_error(load_state *st, tarn_rc code, const char *msg)
{
    if (st->err_line == 0) {
        st->err_line = st->line;
        tarn_err_set(&st->err, code, "%s", msg);
    }
}

/*
 * inih's reader: hand it one line at a time, so that st->line is the line
 * the handler is looking at.  A line longer than inih's buffer would be
 * split by it into two "lines"; report it instead.
 */
static char *
read_line(char *buf, int num, void *stream)
{
    load_state *st = stream;
    size_t n = 0, cap = (size_t)num;

    if (st->file != NULL) {
        if (fgets(buf, num, st->file) == NULL)
            return NULL;
        n = strlen(buf);
        if (n == cap - 1 && buf[n - 1] != '\n' && !feof(st->file)) {
            int ch;
            st->line++;
            note_error(st, TARN_EINVAL, "line is too long");
            while ((ch = fgetc(st->file)) != EOF && ch != '\n')
                ;
            return buf;
        }
    } else {
        const char *p = st->text;
        if (*p == '\0')
            return NULL;
        while (p[n] != '\0' && p[n] != '\n')
            n++;
        if (n + 1 >= cap) {
            st->line++;
            note_error(st, TARN_EINVAL, "line is too long");
            memcpy(buf, p, cap - 1);
            buf[cap - 1] = '\0';
        } else {
            memcpy(buf, p, n);
            if (p[n] == '\n')
                buf[n++] = '\n';
            buf[n] = '\0';
        }
        while (*p != '\0' && *p != '\n')
            p++;
        st->text = *p == '\n' ? p + 1 : p;
        if (n + 1 >= cap)
            return buf;
    }
    st->line++;
    return buf;
}

static int
on_key(void *user, const char *section, const char *name, const char *value)
{
    load_state *st = user;
    const cfg_key *k = cfg_key_find(name);
    tarn_err e;

    (void)section;
    if (k == NULL) {
        char msg[TARN_ERR_MSG];
        snprintf(msg, sizeof(msg), "unknown key '%.100s'", name);
        note_error(st, TARN_EINVAL, msg);
        return 0;
    }
    if (st->seen[k - keys]) {
        char msg[TARN_ERR_MSG];
        snprintf(msg, sizeof(msg),
                 "key '%s' is set twice (or an indented line continues it)",
                 name);
        note_error(st, TARN_EINVAL, msg);
        return 0;
    }
    st->seen[k - keys] = true;
    if (cfg_set(st->cfg, name, value, &e) != TARN_OK) {
        note_error(st, e.code == TARN_ENOMEM ? TARN_ENOMEM : TARN_EINVAL,
                   e.msg);
        return 0;
    }
    return 1;
}

static tarn_rc
finish_load(load_state *st, int rc, tarn_err *err)
{
    if (rc == -2)
        return tarn_err_set(err, TARN_ENOMEM, "%s: out of memory", st->name);
    if (rc == 0 && st->err_line == 0)
        return TARN_OK;
    /* inih returns the first line with any error; ours may be later. */
    if (st->err_line != 0 && (rc <= 0 || st->err_line <= rc))
        return tarn_err_set(err, st->err.code, "%s:%d: %s", st->name,
                            st->err_line, st->err.msg);
    return tarn_err_set(err, TARN_EINVAL,
                        "%s:%d: syntax error (expected 'key = value', "
                        "'[section]' or a comment)",
                        st->name, rc);
}

tarn_rc
cfg_load_file(tarn_config *c, const char *path, tarn_err *err)
{
    load_state st = {.cfg = c, .name = path};
    int rc;

    st.file = fopen(path, "r");
    if (st.file == NULL)
        return tarn_err_errno(err, errno, "cannot read config file %s", path);
    rc = ini_parse_stream(read_line, &st, on_key, &st);
    fclose(st.file);
    return finish_load(&st, rc, err);
}

tarn_rc
cfg_load_string(tarn_config *c, const char *text, const char *name,
                tarn_err *err)
{
    load_state st = {.cfg = c, .name = name, .text = text};

    return finish_load(&st, ini_parse_stream(read_line, &st, on_key, &st), err);
}

tarn_rc
cfg_load(tarn_config *out, const char *path, const char *const *sets,
         size_t nsets, tarn_err *err)
{
    tarn_rc rc = cfg_defaults(out, err);

    if (rc != TARN_OK)
        return rc;
    if (path != NULL && (rc = cfg_load_file(out, path, err)) != TARN_OK)
        goto fail;
    for (size_t i = 0; i < nsets; i++) {
        const char *eq = strchr(sets[i], '=');
        char key[128];
        if (eq == NULL || eq == sets[i]
            || (size_t)(eq - sets[i]) >= sizeof(key)) {
            rc = tarn_err_set(err, TARN_EINVAL,
                              "--set %.100s: expected key=value", sets[i]);
            goto fail;
        }
        memcpy(key, sets[i], (size_t)(eq - sets[i]));
        key[eq - sets[i]] = '\0';
        rc = cfg_set(out, key, eq + 1, err);
        if (rc != TARN_OK) {
            tarn_err_prefix(err, "--set %s: ", key);
            goto fail;
        }
    }
    return TARN_OK;
fail:
    cfg_free(out);
    return rc;
}

char *
cfg_format(const tarn_config *c, const cfg_key *k, char *buf, size_t len)
{
    tarn_config *m = (tarn_config *)c;

    if (is_string_type(k->type)) {
        const char *s = *str_field(m, k);
        size_t n = s ? strlen(s) : 0;
        if (k->secret)
            snprintf(buf, len, "%s", n > 0 ? "(set)" : "");
        else if (n >= 2 && s[0] == '"' && s[n - 1] == '"')
            /* cfg_set() takes one pair of quotes off: add one back, so
             * that the text sets the same value again. */
            snprintf(buf, len, "\"%s\"", s);
        else
            snprintf(buf, len, "%s", s ? s : "");
    } else if (k->type == CFG_BOOL) {
        snprintf(buf, len, "%s", *int_field(m, k) ? "on" : "off");
    } else if (k->type == CFG_LOGLEVEL) {
        const char *n = tlog_level_name((tlog_level)*int_field(m, k));
        size_t i;
        for (i = 0; n[i] != '\0' && i + 1 < len; i++)
            buf[i] = (char)(n[i] | 0x20);
        buf[i] = '\0';
    } else if (k->type == CFG_CODEC) {
        snprintf(buf, len, "%s", tarn_codec_name((int)*int_field(m, k)));
    } else {
        format_bound(k, *int_field(m, k), buf, len);
    }
    return buf;
}

bool
cfg_differs(const tarn_config *a, const tarn_config *b, const cfg_key *k)
{
    tarn_config *ma = (tarn_config *)a, *mb = (tarn_config *)b;

    if (is_string_type(k->type)) {
        const char *x = *str_field(ma, k), *y = *str_field(mb, k);
        return strcmp(x ? x : "", y ? y : "") != 0;
    }
    return *int_field(ma, k) != *int_field(mb, k);
}

tarn_rc
cfg_copy_key(tarn_config *dst, const tarn_config *src, const cfg_key *k,
             tarn_err *err)
{
    tarn_config *ms = (tarn_config *)src;

    if (is_string_type(k->type)) {
        const char *s = *str_field(ms, k);
        char *d = strdup(s ? s : "");
        if (d == NULL)
            return tarn_err_set(err, TARN_ENOMEM, "out of memory");
        free(*str_field(dst, k));
        *str_field(dst, k) = d;
    } else {
        *int_field(dst, k) = *int_field(ms, k);
    }
    return TARN_OK;
}

static const char *
type_doc(const cfg_key *k)
{
    switch (k->type) {
    case CFG_STRING:
        return "string";
    case CFG_PATH:
        return "path";
    case CFG_ADDR:
        return "host:port";
    case CFG_INT:
        return "integer";
    case CFG_SIZE:
        return "size (B, kB, MB, GB, TB)";
    case CFG_DURATION:
        return "duration (ms, s, min, h, d)";
    case CFG_BOOL:
        return "on/off";
    case CFG_LOGLEVEL:
        return "log level";
    case CFG_CODEC:
        return "lz4, zstd or none";
    }
    return "?";
}

/* Write @p text as '# ' comment lines wrapped at 76 columns. */
static void
write_wrapped(FILE *f, const char *text)
{
    const char *p = text;

    while (*p != '\0') {
        size_t n = strlen(p), cut = n;
        if (n > 74) {
            cut = 74;
            while (cut > 0 && p[cut] != ' ')
                cut--;
            if (cut == 0)
                cut = 74;
        }
        fprintf(f, "# %.*s\n", (int)cut, p);
        p += cut;
        while (*p == ' ')
            p++;
    }
}

void
cfg_write_example(FILE *f)
{
    const char *section = NULL;
    tarn_config c;

    fputs("# tarnd configuration.\n"
          "#\n"
          "# Generated by `tarnd --print-config` from the key table in\n"
          "# server/core/config.c; a test keeps the two in step.  Every key\n"
          "# is shown with its default.  Section names are only for reading:\n"
          "# each key is unique, and `tarnd --set key=value` overrides any of\n"
          "# them.  Keys marked \"reload\" take effect on SIGHUP.\n",
          f);
    if (cfg_defaults(&c, NULL) != TARN_OK)
        return;
    for (size_t i = 0; i < TARN_ARRAY_LEN(keys); i++) {
        const cfg_key *k = &keys[i];
        char buf[256], lo[32], hi[32];
        if (section == NULL || strcmp(section, k->section) != 0) {
            section = k->section;
            fprintf(f, "\n[%s]\n", section);
        }
        fputc('\n', f);
        write_wrapped(f, k->help);
        if (k->type == CFG_INT || k->type == CFG_SIZE
            || k->type == CFG_DURATION) {
            format_bound(k, k->min, lo, sizeof(lo));
            format_bound(k, k->max, hi, sizeof(hi));
            fprintf(f, "# Type: %s, range %s to %s%s.\n", type_doc(k), lo, hi,
                    k->reloadable ? "; reload" : "");
        } else {
            fprintf(f, "# Type: %s%s.\n", type_doc(k),
                    k->reloadable ? "; reload" : "");
        }
        fprintf(f, "%s = %s\n", k->name, cfg_format(&c, k, buf, sizeof(buf)));
    }
    cfg_free(&c);
}
