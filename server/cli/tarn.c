/*
 * tarn.c - the tarn command-line client.
 *
 * Talks to tarnd's admin API (TARN_HTTP, default http://127.0.0.1:9898)
 * with libcurl, bearer token from TARN_TOKEN.  Human output by default,
 * the server's JSON with --json.  Every failure is one line on stderr and
 * exit status 1 (2 for usage errors).
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/cli/cli.h"
#include "server/core/types.h"
#include "server/core/version.h"

#define DEFAULT_HTTP "http://127.0.0.1:9898"


typedef struct buf {
    char *p;
    size_t len;
} buf;

void
die(const char *fmt, ...)
{
    va_list ap;

    fputs("tarn: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    /*
     * The command ends here, abandoning whatever it had allocated on the
     * way.  _exit(), after flushing our streams, because die() is
     * noreturn: the compiler may drop the last stack references to those
     * allocations, and LeakSanitizer's exit check would then report them
     * as leaks (it did, now and then, in the ASan build).  tarn registers
     * no exit handlers.
     */
    fflush(NULL);
    _exit(1);
}

void
warn(const char *fmt, ...)
{
    va_list ap;

    fputs("tarn: warning: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static size_t
on_data(char *data, size_t size, size_t n, void *arg)
{
    buf *b = arg;
    size_t add = size * n;
    char *p = realloc(b->p, b->len + add + 1);

    if (p == NULL)
        return 0;
    memcpy(p + b->len, data, add);
    b->p = p;
    b->len += add;
    b->p[b->len] = '\0';
    return add;
}

/* One request: the status (0 when tarnd cannot be reached, with the
 * reason in @p msg) and the parsed JSON body or NULL. */
static json_t *
request(cli *c, const char *method, const char *path, json_t *body,
        long *status_out, char *msg, size_t cap)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    char url[1024], auth[1024], errbuf[CURL_ERROR_SIZE] = "";
    char *payload = NULL;
    buf resp = {NULL, 0};
    long status = 0;
    json_error_t jerr;
    json_t *j = NULL;
    CURLcode rc;

    if (h == NULL)
        die("cannot initialise libcurl");
    snprintf(url, sizeof(url), "%s%s", c->base, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (c->token != NULL && *c->token != '\0') {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token);
        hdrs = curl_slist_append(hdrs, auth);
    }
    if (body != NULL) {
        payload = json_dumps(body, JSON_COMPACT);
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    free(payload);
    msg[0] = '\0';
    if (rc != CURLE_OK) {
        snprintf(msg, cap, "cannot reach tarnd at %s: %s", c->base,
                 errbuf[0] ? errbuf : curl_easy_strerror(rc));
        free(resp.p);
        *status_out = 0;
        return NULL;
    }
    if (resp.len > 0) {
        j = json_loadb(resp.p, resp.len, 0, &jerr);
        if (j == NULL && status >= 200 && status < 300
            && strcmp(path, "/metrics") != 0)
            die("tarnd answered %ld with a body that is not JSON", status);
    }
    if (status < 200 || status >= 300) {
        const char *m = j ? json_string_value(json_object_get(j, "msg")) : NULL;
        snprintf(msg, cap, "%s", m ? m : (resp.p ? resp.p : "no message"));
    }
    free(resp.p);
    *status_out = status;
    return j;
}

json_t *
call_status(cli *c, const char *method, const char *path, json_t *body,
            long *status, char *msg, size_t cap)
{
    return request(c, method, path, body, status, msg, cap);
}

/*
 * One request.  Returns the parsed JSON answer (NULL for an empty body) of
 * a 2xx; anything else ends the program with the server's message.
 */
json_t *
call(cli *c, const char *method, const char *path, json_t *body)
{
    char msg[1024];
    long status;
    json_t *j = request(c, method, path, body, &status, msg, sizeof(msg));

    if (status == 0)
        die("%s", msg);
    if (status < 200 || status >= 300) {
        json_decref(j); /* msg holds what the answer said */
        die("%s %s failed (%ld): %s", method, path, status, msg);
    }
    return j;
}

void
print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2));
    puts(s ? s : "null");
    free(s);
}

const char *
str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* Resolve --tenant (id or name), or the only/"default" tenant. */
const char *
tenant_id(cli *c)
{
    static char id[TARN_ID_STRLEN];
    json_t *list, *t, *pick = NULL;
    size_t i;

    if (c->tenant != NULL && tarn_looks_like_id(c->tenant))
        return c->tenant;
    list = call(c, "GET", "/v1/tenant", NULL);
    json_array_foreach(list, i, t)
    {
        const char *name = str(t, "name");
        if (c->tenant != NULL ? strcmp(name, c->tenant) == 0
                              : strcmp(name, "default") == 0)
            pick = t;
    }
    if (pick == NULL && c->tenant == NULL && json_array_size(list) == 1)
        pick = json_array_get(list, 0);
    if (pick == NULL) {
        if (c->tenant != NULL)
            die("no tenant named '%s' (see `tarn tenant list`)", c->tenant);
        if (json_array_size(list) == 0)
            die("there is no tenant yet; create one with `tarn tenant "
                "create --name default`");
        die("%zu tenants exist and none is named 'default'; choose one "
            "with --tenant",
            json_array_size(list));
    }
    snprintf(id, sizeof(id), "%s", str(pick, "id"));
    json_decref(list);
    return id;
}

json_t *
timelines(cli *c, const char *tid)
{
    char path[128];

    snprintf(path, sizeof(path), "/v1/tenant/%s/timeline", tid);
    return call(c, "GET", path, NULL);
}

/* Find a branch by name or id in a timeline list; NULL if absent. */
json_t *
find_branch(json_t *list, const char *key)
{
    json_t *t;
    size_t i;

    json_array_foreach(list, i, t)
    {
        if (strcmp(str(t, "name"), key) == 0
            || strcmp(str(t, "timeline_id"), key) == 0)
            return t;
    }
    return NULL;
}

static int
cmd_status(cli *c)
{
    json_t *j = call(c, "GET", "/v1/status", NULL);

    if (c->json)
        print_json(j);
    else
        printf("tarnd %s at %s: %s, up %.0fs\n", str(j, "version"), c->base,
               str(j, "status"),
               json_real_value(json_object_get(j, "uptime_seconds")));
    json_decref(j);
    return 0;
}

static int
cmd_tenant_create(cli *c)
{
    json_t *body = json_object(), *j;

    if (c->id)
        json_object_set_new(body, "new_tenant_id", json_string(c->id));
    if (c->name)
        json_object_set_new(body, "name", json_string(c->name));
    j = call(c, "POST", "/v1/tenant", body);
    json_decref(body);
    if (c->json)
        print_json(j);
    else if (*str(j, "name"))
        printf("created tenant %s (%s)\n", str(j, "id"), str(j, "name"));
    else
        printf("created tenant %s\n", str(j, "id"));
    json_decref(j);
    return 0;
}

static int
cmd_tenant_list(cli *c)
{
    json_t *j = call(c, "GET", "/v1/tenant", NULL), *t;
    size_t i;

    if (c->json) {
        print_json(j);
    } else if (json_array_size(j) == 0) {
        printf("no tenants\n");
    } else {
        printf("%-32s  %-20s  %s\n", "ID", "NAME", "CREATED");
        json_array_foreach(j, i, t)
        {
            printf("%-32s  %-20s  %s\n", str(t, "id"),
                   *str(t, "name") ? str(t, "name") : "-",
                   str(t, "created_at"));
        }
    }
    json_decref(j);
    return 0;
}

static int
cmd_tenant_delete(cli *c)
{
    char path[128];
    json_t *j;

    if (c->npos < 1)
        die("usage: tarn tenant delete TENANT");
    c->tenant = c->pos[0];
    snprintf(path, sizeof(path), "/v1/tenant/%s", tenant_id(c));
    j = call(c, "DELETE", path, NULL);
    if (c->json)
        print_json(j);
    else
        printf("deleted tenant %s\n", str(j, "id"));
    json_decref(j);
    return 0;
}

/*
 * --at in RFC 3339, also accepting what PostgreSQL prints for now():
 * a space for the 'T' and a "+HH" offset ("2026-11-21 10:00:00.5+00").
 */
static const char *
rfc3339(const char *in, char *out, size_t cap)
{
    size_t n = strlen(in);

    if (n + 4 > cap)
        return in;
    memcpy(out, in, n + 1);
    if (n > 10 && out[10] == ' ')
        out[10] = 'T';
    if (n > 19 && (out[n - 3] == '+' || out[n - 3] == '-')
        && strchr(out + 19, ':') == NULL)
        memcpy(out + n, ":00", 4);
    return out;
}

static int
cmd_branch_create(cli *c)
{
    const char *tid = tenant_id(c);
    json_t *body = json_object(), *list = timelines(c, tid), *j;
    char path[128];

    if (c->npos < 1)
        die("usage: tarn branch create NAME [--parent BRANCH] "
            "[--lsn X/Y | --at TIMESTAMP] [--root [--import PGDATA | "
            "--empty]]");
    if (c->lsn && c->at)
        die("give --lsn or --at, not both");
    json_object_set_new(body, "name", json_string(c->pos[0]));
    if (c->id)
        json_object_set_new(body, "new_timeline_id", json_string(c->id));
    if (c->import || c->empty)
        c->root = true;
    if (c->import && c->empty)
        die("give --import or --empty, not both");
    if (c->import) {
        char abs[4096];
        if (realpath(c->import, abs) == NULL)
            die("--import %s: %s", c->import, strerror(errno));
        json_object_set_new(body, "import_pgdata", json_string(abs));
    }
    if (c->empty)
        json_object_set_new(body, "bootstrap", json_string("none"));
    if (c->root) {
        if (c->parent || c->lsn || c->at)
            die("--root makes a new root branch; it takes no --parent, "
                "--lsn or --at");
    } else {
        const char *pname = c->parent;
        json_t *parent;
        if (pname == NULL) {
            if (json_array_size(list) == 0) {
                pname = NULL; /* the tenant's first branch is a root */
            } else if (find_branch(list, "main") != NULL) {
                pname = "main";
            } else {
                die("no branch 'main' to branch from; give --parent, or "
                    "--root for a new root branch");
            }
        }
        if (pname != NULL) {
            parent = find_branch(list, pname);
            if (parent == NULL)
                die("no branch named '%s' (see `tarn branch list`)", pname);
            json_object_set_new(body, "ancestor_timeline_id",
                                json_string(str(parent, "timeline_id")));
            if (c->lsn)
                json_object_set_new(body, "ancestor_start_lsn",
                                    json_string(c->lsn));
            if (c->at) {
                char at[128];
                json_object_set_new(
                    body, "ancestor_start_time",
                    json_string(rfc3339(c->at, at, sizeof(at))));
            }
        } else if (c->lsn || c->at) {
            die("--lsn and --at need a parent branch");
        }
    }
    if (c->root || json_object_get(body, "ancestor_timeline_id") == NULL) {
        if (!c->json && !c->empty && isatty(STDOUT_FILENO))
            fprintf(stderr, "%s a new cluster; this takes a few seconds...\n",
                    c->import ? "importing" : "bootstrapping (initdb)");
    }
    snprintf(path, sizeof(path), "/v1/tenant/%s/timeline", tid);
    j = call(c, "POST", path, body);
    json_decref(body);
    json_decref(list);
    if (c->json) {
        print_json(j);
    } else if (json_is_string(json_object_get(j, "ancestor_timeline_id"))) {
        printf("created branch %s (%s) at %s\n", c->pos[0],
               str(j, "timeline_id"), str(j, "ancestor_lsn"));
    } else if (strcmp(str(j, "state"), "active") == 0) {
        printf("created root branch %s (%s), state active at %s\n", c->pos[0],
               str(j, "timeline_id"), str(j, "last_record_lsn"));
    } else {
        printf("created root branch %s (%s), state %s\n", c->pos[0],
               str(j, "timeline_id"), str(j, "state"));
    }
    json_decref(j);
    return 0;
}

static void
print_tree(json_t *list, const char *parent_id, const char *prefix)
{
    size_t i, n = 0, seen = 0;
    json_t *t;

    json_array_foreach(list, i, t)
    {
        const char *anc =
            json_string_value(json_object_get(t, "ancestor_timeline_id"));
        if (parent_id ? (anc && strcmp(anc, parent_id) == 0) : anc == NULL)
            n++;
    }
    json_array_foreach(list, i, t)
    {
        const char *anc =
            json_string_value(json_object_get(t, "ancestor_timeline_id"));
        const char *name = *str(t, "name") ? str(t, "name") : "(unnamed)";
        char child_prefix[512];
        bool last;
        if (!(parent_id ? (anc && strcmp(anc, parent_id) == 0) : anc == NULL))
            continue;
        last = ++seen == n;
        if (parent_id == NULL) {
            printf("%s [%s] %s, last %s\n", name, str(t, "timeline_id"),
                   str(t, "state"), str(t, "last_record_lsn"));
            snprintf(child_prefix, sizeof(child_prefix), "%s", prefix);
        } else {
            printf("%s%s %s @%s [%s] %s, last %s\n", prefix, last ? "└─" : "├─",
                   name, str(t, "ancestor_lsn"), str(t, "timeline_id"),
                   str(t, "state"), str(t, "last_record_lsn"));
            snprintf(child_prefix, sizeof(child_prefix), "%s%s", prefix,
                     last ? "   " : "│  ");
        }
        print_tree(list, str(t, "timeline_id"), child_prefix);
    }
}

static int
by_created(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int d = strcmp(str(x, "created_at"), str(y, "created_at"));

    return d ? d : strcmp(str(x, "timeline_id"), str(y, "timeline_id"));
}

/* The same array, siblings in creation order (the server orders by id). */
static json_t *
sorted_by_creation(json_t *list)
{
    size_t n = json_array_size(list), i;
    json_t **items = calloc(n ? n : 1, sizeof(*items)), *out = json_array();

    if (items == NULL || out == NULL)
        die("out of memory");
    for (i = 0; i < n; i++)
        items[i] = json_array_get(list, i);
    qsort(items, n, sizeof(*items), by_created);
    for (i = 0; i < n; i++)
        json_array_append(out, items[i]);
    free(items);
    json_decref(list);
    return out;
}

static int
cmd_branch_list(cli *c)
{
    json_t *list = sorted_by_creation(timelines(c, tenant_id(c)));

    if (c->json)
        print_json(list);
    else if (json_array_size(list) == 0)
        printf("no branches\n");
    else
        print_tree(list, NULL, "");
    json_decref(list);
    return 0;
}

static int
cmd_branch_delete(cli *c)
{
    const char *tid;
    json_t *list, *t, *j;
    char path[160];

    if (c->npos < 1)
        die("usage: tarn branch delete NAME");
    tid = tenant_id(c);
    list = timelines(c, tid);
    t = find_branch(list, c->pos[0]);
    if (t == NULL)
        die("no branch named '%s' (see `tarn branch list`)", c->pos[0]);
    snprintf(path, sizeof(path), "/v1/tenant/%s/timeline/%s", tid,
             str(t, "timeline_id"));
    j = call(c, "DELETE", path, NULL);
    if (c->json)
        print_json(j);
    else
        printf("deleted branch %s (%s)\n", c->pos[0], str(j, "timeline_id"));
    json_decref(j);
    json_decref(list);
    return 0;
}

static void
usage(FILE *f)
{
    fprintf(
        f,
        "Usage: tarn [--json] [--tenant T] COMMAND ...\n"
        "\n"
        "Commands:\n"
        "  status                          server version and health\n"
        "  tenant create [--id HEX32] [--name NAME]\n"
        "  tenant list\n"
        "  tenant delete TENANT            by id or name, with all its "
        "branches\n"
        "  branch create NAME [--parent BRANCH] [--lsn X/Y | --at "
        "TIMESTAMP]\n"
        "                [--root [--import PGDATA | --empty]] [--id HEX32]\n"
        "                                  the parent defaults to 'main'; "
        "a tenant's\n"
        "                                  first branch (or --root) is a "
        "new root,\n"
        "                                  bootstrapped with initdb, or "
        "imported from\n"
        "                                  a cleanly stopped PostgreSQL "
        "15 data\n"
        "                                  directory (--import), or "
        "empty until a\n"
        "                                  compute streams WAL to it "
        "(--empty)\n"
        "  branch list                     the branch tree with branch "
        "points\n"
        "  branch delete NAME              refused while it has child "
        "branches\n"
        "  endpoint start BRANCH [--port N] [--pgdata DIR] [--user USER]\n"
        "                                  start PostgreSQL 15 on the "
        "branch's latest\n"
        "                                  LSN and have tarnd follow its "
        "WAL; prints\n"
        "                                  the connection string (port: "
        "first free\n"
        "                                  from 55432; as root it runs as "
        "--user,\n"
        "                                  default postgres)\n"
        "  endpoint stop BRANCH [--keep]   stop it and remove its data "
        "directory\n"
        "                                  (--keep: leave the directory)\n"
        "  endpoint list                   endpoints with port, LSN and "
        "state\n"
        "\n"
        "Options:\n"
        "  --tenant T   tenant id or name; default: the tenant named "
        "'default',\n"
        "               or the only tenant\n"
        "  --json       print the server's JSON instead of text\n"
        "  -h, --help   this help;  -V, --version  the version\n"
        "\n"
        "Environment: TARN_HTTP (default %s), TARN_TOKEN (bearer "
        "token),\n"
        "  TARN_DIR (endpoint state, default ./.tarn), TARN_PAGE (the page "
        "service\n"
        "  as a libpq conninfo; default: page_listen from `tarn status`),\n"
        "  TARN_PG_BIN (default /usr/lib/postgresql/15/bin).\n",
        DEFAULT_HTTP);
}

int
main(int argc, char **argv)
{
    static const struct {
        const char *flag;
        size_t off;
    } valued[] = {
        {"--tenant", offsetof(cli, tenant)},
        {"--parent", offsetof(cli, parent)},
        {"--lsn", offsetof(cli, lsn)},
        {"--at", offsetof(cli, at)},
        {"--id", offsetof(cli, id)},
        {"--name", offsetof(cli, name)},
        {"--import", offsetof(cli, import)},
        {"--port", offsetof(cli, port)},
        {"--pgdata", offsetof(cli, pgdata)},
        {"--user", offsetof(cli, user)},
    };
    cli c = {0};
    const char *cmd = NULL, *sub = NULL;
    int rc;

    c.base = getenv("TARN_HTTP");
    if (c.base == NULL || *c.base == '\0')
        c.base = DEFAULT_HTTP;
    c.token = getenv("TARN_TOKEN");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool done = false;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf("tarn %s\n", TARN_VERSION);
            return 0;
        }
        if (strcmp(a, "--json") == 0) {
            c.json = true;
            continue;
        }
        if (strcmp(a, "--root") == 0) {
            c.root = true;
            continue;
        }
        if (strcmp(a, "--empty") == 0) {
            c.empty = true;
            continue;
        }
        if (strcmp(a, "--keep") == 0) {
            c.keep = true;
            continue;
        }
        for (size_t k = 0; k < TARN_ARRAY_LEN(valued) && !done; k++) {
            size_t fl = strlen(valued[k].flag);
            const char **slot = (const char **)((char *)&c + valued[k].off);
            if (strcmp(a, valued[k].flag) == 0) {
                if (i + 1 >= argc) {
                    fprintf(stderr, "tarn: %s needs a value\n", a);
                    return 2;
                }
                *slot = argv[++i];
                done = true;
            } else if (strncmp(a, valued[k].flag, fl) == 0 && a[fl] == '=') {
                *slot = a + fl + 1;
                done = true;
            }
        }
        if (done)
            continue;
        if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "tarn: unknown option %s (try --help)\n", a);
            return 2;
        }
        if (cmd == NULL)
            cmd = a;
        else if (sub == NULL
                 && (strcmp(cmd, "tenant") == 0 || strcmp(cmd, "branch") == 0
                     || strcmp(cmd, "endpoint") == 0))
            sub = a;
        else if (c.npos < (int)TARN_ARRAY_LEN(c.pos))
            c.pos[c.npos++] = a;
    }
    if (cmd == NULL) {
        usage(stderr);
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (strcmp(cmd, "status") == 0)
        rc = cmd_status(&c);
    else if (strcmp(cmd, "tenant") == 0 && sub && strcmp(sub, "create") == 0)
        rc = cmd_tenant_create(&c);
    else if (strcmp(cmd, "tenant") == 0 && sub && strcmp(sub, "list") == 0)
        rc = cmd_tenant_list(&c);
    else if (strcmp(cmd, "tenant") == 0 && sub && strcmp(sub, "delete") == 0)
        rc = cmd_tenant_delete(&c);
    else if (strcmp(cmd, "branch") == 0 && sub && strcmp(sub, "create") == 0)
        rc = cmd_branch_create(&c);
    else if (strcmp(cmd, "branch") == 0 && sub && strcmp(sub, "list") == 0)
        rc = cmd_branch_list(&c);
    else if (strcmp(cmd, "branch") == 0 && sub && strcmp(sub, "delete") == 0)
        rc = cmd_branch_delete(&c);
    else if (strcmp(cmd, "endpoint") == 0 && sub && strcmp(sub, "start") == 0)
        rc = cmd_endpoint_start(&c);
    else if (strcmp(cmd, "endpoint") == 0 && sub && strcmp(sub, "stop") == 0)
        rc = cmd_endpoint_stop(&c);
    else if (strcmp(cmd, "endpoint") == 0 && sub && strcmp(sub, "list") == 0)
        rc = cmd_endpoint_list(&c);
    else {
        fprintf(stderr, "tarn: unknown command '%s%s%s' (try --help)\n", cmd,
                sub ? " " : "", sub ? sub : "");
        rc = 2;
    }
    curl_global_cleanup();
    return rc;
}
