/*
 * endpoint.c - `tarn endpoint start|stop|list`: PostgreSQL 15 computes on
 * this host, one per branch.
 *
 * start: a basebackup of the branch from tarnd's page service (libpq,
 * CopyOut) is untarred into the data directory, the compute's settings are
 * appended to postgresql.auto.conf, pg_ctl starts it (as an unprivileged
 * user when tarn runs as root), and tarnd's WAL receiver is attached to it,
 * so the branch's new WAL flows back into tarn on that timeline.
 *
 * Which LSN: a branch whose own WAL exists (it has had a compute) restarts
 * at its durable end, wal_flush_lsn, once ingest has reached it; tarnd
 * then resumes its WAL at that point and checks the compute's copy of the
 * last record byte for byte.  A fresh branch has no WAL of its own: it
 * starts at its branch point, and the attach names that LSN as start_lsn.
 * Either way the archive's shutdown checkpoint record at the LSN is the
 * compute's first record after the branch's last one.
 *
 * State: $TARN_DIR/endpoints/<tenant>/<timeline>/endpoint.json (TARN_DIR
 * defaults to ./.tarn) with the branch, port, data directory, LSN and user;
 * whether the compute runs is checked live (postmaster.pid and the
 * process, and tarnd's compute state).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "server/cli/cli.h"
#include "server/cli/untar.h"
#include "server/core/fsutil.h"
#include "server/core/types.h"

#define DEFAULT_PG_BIN  "/usr/lib/postgresql/15/bin"
#define DEFAULT_PG_USER "postgres"
#define FIRST_PORT      55432
#define ROLE            "postgres" /* the cluster's superuser (initdb -U) */
#define INGEST_WAIT_S   60

/* ---- small helpers ---------------------------------------------------- */

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool
parse_lsn(const char *s, tarn_lsn *out)
{
    tarn_err err;

    return s != NULL && *s != '\0' && tarn_lsn_parse(s, out, &err) == TARN_OK;
}

/* $TARN_DIR (default ./.tarn), absolute. */
static const char *
tarn_dir(void)
{
    static char dir[PATH_MAX];
    const char *d = getenv("TARN_DIR");
    char cwd[PATH_MAX];

    if (dir[0])
        return dir;
    if (d == NULL || *d == '\0')
        d = ".tarn";
    if (d[0] == '/') {
        snprintf(dir, sizeof(dir), "%s", d);
    } else {
        if (getcwd(cwd, sizeof(cwd)) == NULL)
            die("getcwd: %s", strerror(errno));
        if ((size_t)snprintf(dir, sizeof(dir), "%s/%s", cwd, d) >= sizeof(dir))
            die("TARN_DIR is too long");
    }
    return dir;
}

static void
ep_dir(char *out, size_t cap, const char *tenant, const char *timeline)
{
    if ((size_t)snprintf(out, cap, "%s/endpoints/%s/%s", tarn_dir(), tenant,
                         timeline)
        >= cap)
        die("TARN_DIR is too long");
}

/* Make @p path and its parents, each readable by everyone (0755), so that
 * the compute's user can reach a data directory below it. */
static void
mkdirs(const char *path)
{
    tarn_err err;

    if (tarn_mkdir_p(path, 0755, &err) != TARN_OK)
        die("%s", err.msg);
}

static json_t *
load_record(const char *dir)
{
    char path[PATH_MAX + 32];
    json_error_t jerr;

    snprintf(path, sizeof(path), "%s/endpoint.json", dir);
    if (access(path, F_OK) != 0)
        return NULL;
    json_t *j = json_load_file(path, 0, &jerr);
    if (j == NULL)
        die("%s: %s", path, jerr.text);
    return j;
}

static void
save_record(const char *dir, json_t *rec)
{
    char path[PATH_MAX + 32];
    char *text = json_dumps(rec, JSON_INDENT(2) | JSON_SORT_KEYS);
    tarn_err err;

    if (text == NULL)
        die("out of memory");
    snprintf(path, sizeof(path), "%s/endpoint.json", dir);
    if (tarn_write_file_atomic(path, text, strlen(text), 0644, &err) != TARN_OK)
        die("%s", err.msg);
    free(text);
}

/* The postmaster's pid if a postmaster runs on @p pgdata, else 0. */
static long
postmaster_pid(const char *pgdata)
{
    char path[PATH_MAX + 32];
    long pid = 0;
    FILE *f;

    snprintf(path, sizeof(path), "%s/postmaster.pid", pgdata);
    if ((f = fopen(path, "r")) == NULL)
        return 0;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = 0;
    fclose(f);
    if (pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno != EPERM))
        return 0;
    return pid;
}

static bool
dir_empty_or_missing(const char *path, bool *exists)
{
    DIR *d = opendir(path);
    struct dirent *e;
    bool empty = true;

    *exists = d != NULL || errno != ENOENT;
    if (d == NULL)
        return errno == ENOENT;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = false;
    closedir(d);
    return empty;
}

/* Can a server listen on 127.0.0.1:@p port? (PostgreSQL sets SO_REUSEADDR
 * too, so a port in TIME_WAIT counts as free.) */
static bool
port_free(int port)
{
    struct sockaddr_in a = {0};
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok;

    if (fd < 0)
        return false;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

/* Every endpoint record on this host (all tenants), for port choice. */
static bool
port_recorded(int port, const char *skip_dir)
{
    char root[PATH_MAX + 16], tdir[PATH_MAX * 2], edir[PATH_MAX * 3];
    DIR *d1, *d2;
    struct dirent *t, *e;
    bool used = false;

    snprintf(root, sizeof(root), "%s/endpoints", tarn_dir());
    if ((d1 = opendir(root)) == NULL)
        return false;
    while (!used && (t = readdir(d1)) != NULL) {
        if (t->d_name[0] == '.')
            continue;
        snprintf(tdir, sizeof(tdir), "%s/%s", root, t->d_name);
        if ((d2 = opendir(tdir)) == NULL)
            continue;
        while (!used && (e = readdir(d2)) != NULL) {
            json_t *rec;
            if (e->d_name[0] == '.')
                continue;
            snprintf(edir, sizeof(edir), "%s/%s", tdir, e->d_name);
            if (skip_dir && strcmp(edir, skip_dir) == 0)
                continue;
            rec = load_record(edir);
            if (rec != NULL
                && json_integer_value(json_object_get(rec, "port")) == port)
                used = true;
            json_decref(rec);
        }
        closedir(d2);
    }
    closedir(d1);
    return used;
}

/* ---- running programs as the compute's user --------------------------- */

typedef struct runas {
    bool switch_user; /* tarn runs as root: become uid/gid */
    uid_t uid;
    gid_t gid;
    char name[64];
} runas;

static void
runas_init(cli *c, runas *ra)
{
    memset(ra, 0, sizeof(*ra));
    if (geteuid() != 0) {
        if (c->user != NULL) {
            struct passwd *me = getpwuid(geteuid());
            if (me == NULL || strcmp(me->pw_name, c->user) != 0)
                die("--user needs root: tarn runs as %s and starts "
                    "PostgreSQL as itself",
                    me ? me->pw_name : "this user");
        }
        ra->uid = geteuid();
        ra->gid = getegid();
        return;
    }
    const char *user = c->user ? c->user : DEFAULT_PG_USER;
    struct passwd *pw = getpwnam(user);
    if (pw == NULL)
        die("user '%s' does not exist; PostgreSQL refuses to run as root, so "
            "give --user with an unprivileged user",
            user);
    if (pw->pw_uid == 0)
        die("--user %s is root; PostgreSQL refuses to run as root", user);
    ra->switch_user = true;
    ra->uid = pw->pw_uid;
    ra->gid = pw->pw_gid;
    snprintf(ra->name, sizeof(ra->name), "%s", pw->pw_name);
}

static void
become(const runas *ra)
{
    if (!ra->switch_user)
        return;
    if (initgroups(ra->name, ra->gid) != 0 || setgid(ra->gid) != 0
        || setuid(ra->uid) != 0) {
        fprintf(stderr, "cannot become %s: %s\n", ra->name, strerror(errno));
        _exit(126);
    }
}

/*
 * Run @p argv as the compute's user; its stdout and stderr go to @p out
 * (NUL-terminated, cut to @p cap).  Returns the exit status (-1 for a
 * signal).
 */
static int
run(const runas *ra, char *const argv[], char *out, size_t cap)
{
    int pfd[2], st;
    size_t len = 0;
    pid_t pid;

    if (pipe2(pfd, O_CLOEXEC) != 0)
        die("pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    if ((pid = fork()) < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        if (chdir("/") != 0)
            _exit(126);
        become(ra);
        execv(argv[0], argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    for (;;) {
        char tmp[4096];
        ssize_t n = read(pfd[0], tmp, sizeof(tmp));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n && len + 1 < cap; i++)
            out[len++] = tmp[i];
    }
    out[len] = '\0';
    close(pfd[0]);
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            die("waitpid: %s", strerror(errno));
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Can the compute's user write into @p dir (every parent searchable)? */
static bool
user_can_write(const runas *ra, const char *dir)
{
    pid_t pid;
    int st;

    if (!ra->switch_user)
        return access(dir, W_OK | X_OK) == 0;
    fflush(stdout);
    fflush(stderr);
    if ((pid = fork()) < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        become(ra);
        _exit(access(dir, W_OK | X_OK) == 0 ? 0 : 1);
    }
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            die("waitpid: %s", strerror(errno));
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static const char *
pg_bin(void)
{
    const char *b = getenv("TARN_PG_BIN");
    return b && *b ? b : DEFAULT_PG_BIN;
}

/* The last line of @p text, for a one-line error. */
static const char *
last_line(char *text)
{
    size_t n = strlen(text);
    char *p;

    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
        text[--n] = '\0';
    p = strrchr(text, '\n');
    return p ? p + 1 : text;
}

/* Stop the postmaster on @p pgdata (fast); false if pg_ctl failed. */
static bool
pg_stop(const runas *ra, const char *pgdata, char *out, size_t cap)
{
    char ctl[PATH_MAX];
    char *argv[] = {ctl,    "stop", "-D", (char *)pgdata, "-m",
                    "fast", "-w",   "-t", "60",           NULL};

    snprintf(ctl, sizeof(ctl), "%s/pg_ctl", pg_bin());
    return run(ra, argv, out, cap) == 0;
}

/* ---- the basebackup --------------------------------------------------- */

/* The page service's libpq conninfo: TARN_PAGE, or page_listen from
 * tarnd's status (a wildcard address means this host). */
static void
page_conninfo(cli *c, char *out, size_t cap)
{
    const char *env = getenv("TARN_PAGE");
    json_t *st;
    const char *listen, *colon;
    char host[128];

    if (env != NULL && *env != '\0') {
        snprintf(out, cap, "%s", env);
        return;
    }
    st = call(c, "GET", "/v1/status", NULL);
    listen = str(st, "page_listen");
    colon = strrchr(listen, ':');
    if (*listen == '\0' || colon == NULL)
        snprintf(out, cap, "postgresql://127.0.0.1:6400");
    else {
        snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
        if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "*") == 0
            || host[0] == '\0')
            snprintf(host, sizeof(host), "127.0.0.1");
        if (strcmp(host, "[::]") == 0)
            snprintf(host, sizeof(host), "::1");
        if (host[0] == '[') { /* [v6] */
            memmove(host, host + 1, strlen(host));
            host[strcspn(host, "]")] = '\0';
        }
        snprintf(out, cap, "host=%s port=%s", host, colon + 1);
    }
    json_decref(st);
}

static void
progress(bool show, uint64_t bytes, double t0, bool done)
{
    double dt = now_s() - t0;

    if (!show)
        return;
    printf("\rbasebackup: %7.1f MB received, %6.1f MB/s%s", bytes / 1e6,
           dt > 0 ? bytes / 1e6 / dt : 0.0, done ? "\n" : "");
    fflush(stdout);
}

/*
 * Fetch `basebackup <tenant> <timeline> <lsn>` and untar it into
 * @p pgdata.  Returns false with @p msg on failure.
 */
static bool
fetch_backup(cli *c, const char *tenant, const char *timeline, const char *lsn,
             const char *pgdata, const runas *ra, uint64_t *bytes_out,
             char *msg, size_t cap)
{
    char conninfo[1024], query[256];
    const char *keys[] = {"dbname", "application_name", NULL};
    const char *vals[] = {conninfo, "tarn endpoint", NULL};
    bool show = !c->json && isatty(STDOUT_FILENO);
    untar_opts uo = {pgdata, ra->switch_user, ra->uid, ra->gid};
    untar *u = NULL;
    uint64_t bytes = 0;
    double t0 = now_s(), shown = 0;
    PGconn *conn;
    PGresult *res;
    tarn_err err;
    bool ok = false;

    page_conninfo(c, conninfo, sizeof(conninfo));
    conn = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(conn) != CONNECTION_OK) {
        char *m = PQerrorMessage(conn);
        snprintf(msg, cap, "cannot connect to the page service (%s): %s",
                 conninfo, last_line(m));
        PQfinish(conn);
        return false;
    }
    snprintf(query, sizeof(query), "basebackup %s %s %s", tenant, timeline,
             lsn);
    res = PQexec(conn, query);
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        char *m = PQresultErrorMessage(res);
        snprintf(msg, cap, "basebackup failed: %s",
                 m && *m ? last_line(m) : last_line(PQerrorMessage(conn)));
        PQclear(res);
        PQfinish(conn);
        return false;
    }
    PQclear(res);
    if (untar_new(&uo, &u, &err) != TARN_OK) {
        snprintf(msg, cap, "%s", err.msg);
        goto out;
    }
    for (;;) {
        char *data = NULL;
        int n = PQgetCopyData(conn, &data, 0);
        if (n == -1)
            break;
        if (n < 0) {
            snprintf(msg, cap, "basebackup failed: %s",
                     last_line(PQerrorMessage(conn)));
            goto out;
        }
        bytes += (uint64_t)n;
        if (untar_feed(u, data, (size_t)n, &err) != TARN_OK) {
            PQfreemem(data);
            snprintf(msg, cap, "extracting the basebackup: %s", err.msg);
            goto out;
        }
        PQfreemem(data);
        if (now_s() - shown > 0.1) {
            progress(show, bytes, t0, false);
            shown = now_s();
        }
    }
    while ((res = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && !ok) {
            char *m = PQresultErrorMessage(res);
            snprintf(msg, cap, "basebackup failed: %s", last_line(m));
            PQclear(res);
            goto out;
        }
        PQclear(res);
    }
    if (untar_finish(u, &err) != TARN_OK) {
        snprintf(msg, cap, "extracting the basebackup: %s", err.msg);
        goto out;
    }
    progress(show, bytes, t0, true);
    ok = true;
out:
    if (!ok && show)
        printf("\n");
    untar_free(u);
    PQfinish(conn);
    *bytes_out = bytes;
    return ok;
}

/* ---- the compute ------------------------------------------------------ */

static void
append_settings(const char *pgdata, int port)
{
    char path[PATH_MAX + 32];
    FILE *f;

    snprintf(path, sizeof(path), "%s/postgresql.auto.conf", pgdata);
    if ((f = fopen(path, "a")) == NULL)
        die("open %s: %s", path, strerror(errno));
    fprintf(f,
            "# Written by tarn endpoint start.\n"
            "port = %d\n"
            "listen_addresses = '127.0.0.1'\n"
            "unix_socket_directories = '/tmp'\n"
            "wal_level = replica\n"
            "max_wal_senders = 10\n"
            "synchronous_standby_names = 'tarn'\n"
            "wal_keep_size = '1GB'\n",
            port);
    if (fclose(f) != 0)
        die("write %s: %s", path, strerror(errno));
}

static void
url_for(char *out, size_t cap, int port)
{
    snprintf(out, cap, "postgresql://%s@127.0.0.1:%d/postgres", ROLE, port);
}

/* Undo a start that failed after PostgreSQL was started. */
static void
abandon(const runas *ra, const char *pgdata, bool started, bool remove)
{
    char out[4096];
    tarn_err err;

    if (started && postmaster_pid(pgdata) != 0)
        (void)pg_stop(ra, pgdata, out, sizeof(out));
    if (remove && tarn_rmtree(pgdata, &err) != TARN_OK)
        warn("%s", err.msg);
}

/* The timeline detail of @p tl, fresh. */
static json_t *
timeline_get(cli *c, const char *tenant, const char *tl)
{
    char path[160];

    snprintf(path, sizeof(path), "/v1/tenant/%s/timeline/%s", tenant, tl);
    return call(c, "GET", path, NULL);
}

static bool
compute_attached(json_t *tl)
{
    json_t *comp = json_object_get(tl, "compute");
    const char *st = str(comp, "state");

    return json_is_object(comp) && strcmp(st, "detached") != 0
           && strcmp(st, "broken") != 0;
}

/*
 * The LSN to start @p tl at (see the top of the file); waits for ingest
 * to reach the branch's durable WAL.
 */
static void
start_lsn(cli *c, const char *tenant, const char *timeline, json_t *tl,
          const char *branch, char *out, bool *fresh)
{
    double deadline = now_s() + INGEST_WAIT_S;
    json_t *cur = json_incref(tl);
    tarn_lsn flush, last;

    *fresh = !json_is_string(json_object_get(tl, "system_id"));
    if (*fresh) {
        if (!json_is_string(json_object_get(tl, "ancestor_lsn")))
            die("branch '%s' has no data yet (an empty root branch): "
                "nothing to start a compute on",
                branch);
        if (strcmp(str(tl, "state"), "active") != 0)
            die("branch '%s' is %s", branch, str(tl, "state"));
        snprintf(out, TARN_LSN_STRLEN, "%s", str(tl, "last_record_lsn"));
        json_decref(cur);
        return;
    }
    for (;;) {
        if (!parse_lsn(str(cur, "wal_flush_lsn"), &flush)
            || !parse_lsn(str(cur, "last_record_lsn"), &last))
            die("tarnd's detail of branch '%s' has no wal_flush_lsn or "
                "last_record_lsn",
                branch);
        if (last >= flush)
            break;
        if (now_s() > deadline)
            die("branch '%s': ingest is at %s, its WAL at %s; it did not "
                "catch up in %d s (see the storage state in `tarn --json "
                "branch list`)",
                branch, str(cur, "last_record_lsn"), str(cur, "wal_flush_lsn"),
                INGEST_WAIT_S);
        usleep(50 * 1000);
        json_decref(cur);
        cur = timeline_get(c, tenant, timeline);
    }
    tarn_lsn_format(flush, out);
    json_decref(cur);
}

int
cmd_endpoint_start(cli *c)
{
    const char *tid, *tl_id, *branch;
    char dir[PATH_MAX], pgdata[PATH_MAX], log[PATH_MAX + 32], url[256];
    char lsn[TARN_LSN_STRLEN], msg[2048], out[8192], ctl[PATH_MAX];
    char path[256], conninfo[256];
    json_t *list, *tl, *rec, *body, *j;
    bool fresh, exists, own_pgdata;
    uint64_t bytes = 0;
    double t0 = now_s(), t_fetch;
    int port = 0;
    long status;
    runas ra;

    if (c->npos < 1)
        die("usage: tarn endpoint start BRANCH [--port N] [--pgdata DIR] "
            "[--user USER]");
    branch = c->pos[0];
    runas_init(c, &ra);
    tid = tenant_id(c);
    list = timelines(c, tid);
    tl = find_branch(list, branch);
    if (tl == NULL)
        die("no branch named '%s' (see `tarn branch list`)", branch);
    tl_id = str(tl, "timeline_id");
    ep_dir(dir, sizeof(dir), tid, tl_id);

    /* An endpoint of this branch that runs, or a compute tarnd follows. */
    rec = load_record(dir);
    if (rec != NULL) {
        const char *old = str(rec, "pgdata");
        if (postmaster_pid(old) != 0)
            die("branch '%s' already has a running endpoint on port %lld "
                "(stop it with `tarn endpoint stop %s`)",
                branch, json_integer_value(json_object_get(rec, "port")),
                branch);
    }
    if (compute_attached(tl))
        die("branch '%s' already has a compute attached (%s); stop it first",
            branch, str(json_object_get(tl, "compute"), "conninfo"));

    /* The port. */
    if (c->port != NULL) {
        char *end;
        long p = strtol(c->port, &end, 10);
        if (*c->port == '\0' || *end != '\0' || p < 1 || p > 65535)
            die("--port %s: not a port number", c->port);
        port = (int)p;
        if (!port_free(port))
            die("port %d is in use", port);
    } else {
        for (port = FIRST_PORT; port < 65535; port++)
            if (!port_recorded(port, dir) && port_free(port))
                break;
        if (port == 65535)
            die("no free port from %d up", FIRST_PORT);
    }

    /* The data directory: empty or new. */
    own_pgdata = c->pgdata == NULL;
    if (c->pgdata != NULL) {
        if (c->pgdata[0] == '/') {
            snprintf(pgdata, sizeof(pgdata), "%s", c->pgdata);
        } else {
            char cwd[PATH_MAX];
            if (getcwd(cwd, sizeof(cwd)) == NULL)
                die("getcwd: %s", strerror(errno));
            if ((size_t)snprintf(pgdata, sizeof(pgdata), "%s/%s", cwd,
                                 c->pgdata)
                >= sizeof(pgdata))
                die("--pgdata is too long");
        }
    } else if ((size_t)snprintf(pgdata, sizeof(pgdata), "%s/pgdata", dir)
               >= sizeof(pgdata)) {
        die("TARN_DIR is too long");
    }
    if (!dir_empty_or_missing(pgdata, &exists))
        die("data directory %s is not empty%s", pgdata,
            own_pgdata ? " (kept by `tarn endpoint stop --keep`?); remove "
                         "it, or give --pgdata"
                       : "");
    mkdirs(dir);
    if (!exists)
        mkdirs(pgdata);
    if (chmod(pgdata, 0700) != 0)
        die("chmod %s: %s", pgdata, strerror(errno));
    if (ra.switch_user && chown(pgdata, ra.uid, ra.gid) != 0)
        die("chown %s: %s", pgdata, strerror(errno));
    if (!user_can_write(&ra, pgdata)) {
        if (!exists)
            rmdir(pgdata);
        die("user %s cannot write to %s (a parent directory is not "
            "searchable by it); give --pgdata elsewhere, or set TARN_DIR",
            ra.switch_user ? ra.name : "tarn", pgdata);
    }
    snprintf(log, sizeof(log), "%s/postgres.log", dir);
    {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0)
            die("open %s: %s", log, strerror(errno));
        if (ra.switch_user && fchown(fd, ra.uid, ra.gid) != 0)
            die("chown %s: %s", log, strerror(errno));
        close(fd);
    }

    /* The archive. */
    start_lsn(c, tid, tl_id, tl, branch, lsn, &fresh);
    if (!fetch_backup(c, tid, tl_id, lsn, pgdata, &ra, &bytes, msg,
                      sizeof(msg))) {
        abandon(&ra, pgdata, false, true);
        die("%s", msg);
    }
    t_fetch = now_s() - t0;
    append_settings(pgdata, port);

    /* PostgreSQL. */
    snprintf(ctl, sizeof(ctl), "%s/pg_ctl", pg_bin());
    {
        char *argv[] = {ctl, "start", "-D", pgdata, "-l",
                        log, "-w",    "-t", "60",   NULL};
        if (run(&ra, argv, out, sizeof(out)) != 0) {
            abandon(&ra, pgdata, true, true);
            die("PostgreSQL did not start: %s (log: %s)", last_line(out), log);
        }
    }

    /* tarnd follows it. */
    snprintf(conninfo, sizeof(conninfo),
             "host=127.0.0.1 port=%d user=%s dbname=postgres "
             "application_name=tarn",
             port, ROLE);
    body = json_pack("{s:s}", "conninfo", conninfo);
    if (fresh)
        json_object_set_new(body, "start_lsn", json_string(lsn));
    snprintf(path, sizeof(path), "/v1/tenant/%s/timeline/%s/compute", tid,
             tl_id);
    j = call_status(c, "POST", path, body, &status, msg, sizeof(msg));
    json_decref(body);
    json_decref(j);
    if (status < 200 || status >= 300) {
        abandon(&ra, pgdata, true, true);
        if (status == 0)
            die("%s", msg);
        die("tarnd did not attach to the compute (%ld): %s", status, msg);
    }

    url_for(url, sizeof(url), port);
    json_decref(rec);
    rec = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:b, "
                    "s:I}",
                    "tenant_id", tid, "branch", str(tl, "name"), "timeline_id",
                    tl_id, "port", port, "pgdata", pgdata, "lsn", lsn, "user",
                    ra.switch_user ? ra.name : "", "log", log, "url", url,
                    "own_pgdata", own_pgdata, "started_at",
                    (json_int_t)time(NULL));
    save_record(dir, rec);
    if (c->json) {
        json_object_set_new(rec, "basebackup_bytes", json_integer(bytes));
        json_object_set_new(rec, "basebackup_seconds", json_real(t_fetch));
        json_object_set_new(rec, "seconds", json_real(now_s() - t0));
        print_json(rec);
    } else {
        printf("started endpoint %s on port %d at %s (basebackup %.1f MB in "
               "%.1fs; ready in %.1fs)\n",
               branch, port, lsn, bytes / 1e6, t_fetch, now_s() - t0);
        printf("connect: psql '%s'\n", url);
    }
    json_decref(rec);
    json_decref(list);
    return 0;
}

/* ---- stop and list ---------------------------------------------------- */

/* The record dir of @p branch: by the timeline tarnd names, else (the
 * branch is gone) by the name the record holds. */
static bool
find_record(cli *c, const char *tid, const char *branch, char *dir, size_t cap,
            json_t **rec_out)
{
    json_t *list = timelines(c, tid), *tl = find_branch(list, branch);
    char root[PATH_MAX + 64];
    DIR *d;
    struct dirent *e;

    *rec_out = NULL;
    if (tl != NULL) {
        ep_dir(dir, cap, tid, str(tl, "timeline_id"));
        *rec_out = load_record(dir);
    }
    json_decref(list);
    if (*rec_out != NULL)
        return true;
    snprintf(root, sizeof(root), "%s/endpoints/%s", tarn_dir(), tid);
    if ((d = opendir(root)) == NULL)
        return false;
    while ((e = readdir(d)) != NULL && *rec_out == NULL) {
        json_t *rec;
        if (e->d_name[0] == '.')
            continue;
        snprintf(dir, cap, "%s/%s", root, e->d_name);
        rec = load_record(dir);
        if (rec != NULL && strcmp(str(rec, "branch"), branch) == 0)
            *rec_out = rec;
        else
            json_decref(rec);
    }
    closedir(d);
    return *rec_out != NULL;
}

int
cmd_endpoint_stop(cli *c)
{
    const char *tid, *branch, *pgdata;
    char dir[PATH_MAX], out[8192], path[256], msg[1024];
    json_t *rec, *j;
    bool was_running;
    long status;
    tarn_err err;
    runas ra;

    if (c->npos < 1)
        die("usage: tarn endpoint stop BRANCH [--keep]");
    branch = c->pos[0];
    tid = tenant_id(c);
    if (!find_record(c, tid, branch, dir, sizeof(dir), &rec))
        die("branch '%s' has no endpoint (see `tarn endpoint list`)", branch);
    pgdata = str(rec, "pgdata");
    runas_init(c, &ra);
    if (ra.switch_user && *str(rec, "user") != '\0'
        && strcmp(str(rec, "user"), ra.name) != 0) {
        struct passwd *pw = getpwnam(str(rec, "user"));
        if (pw != NULL) {
            ra.uid = pw->pw_uid;
            ra.gid = pw->pw_gid;
            snprintf(ra.name, sizeof(ra.name), "%s", pw->pw_name);
        }
    }
    /* PostgreSQL first: its last WAL (the shutdown checkpoint) still
     * reaches tarnd, and no commit waits on a standby that went away. */
    was_running = postmaster_pid(pgdata) != 0;
    if (was_running && !pg_stop(&ra, pgdata, out, sizeof(out)))
        die("pg_ctl stop failed: %s", last_line(out));
    snprintf(path, sizeof(path), "/v1/tenant/%s/timeline/%s/compute", tid,
             str(rec, "timeline_id"));
    j = call_status(c, "DELETE", path, NULL, &status, msg, sizeof(msg));
    json_decref(j);
    if (status == 0)
        warn("%s; tarnd could not be told to detach", msg);
    else if ((status < 200 || status >= 300) && status != 404)
        warn("detaching tarnd's WAL receiver (%ld): %s", status, msg);
    if (!c->keep) {
        if (tarn_rmtree(pgdata, &err) != TARN_OK)
            die("%s", err.msg);
        if (tarn_rmtree(dir, &err) != TARN_OK)
            die("%s", err.msg);
    }
    if (c->json) {
        json_object_set_new(rec, "state", json_string("stopped"));
        json_object_set_new(rec, "kept", json_boolean(c->keep));
        print_json(rec);
    } else if (c->keep) {
        printf("stopped endpoint %s (port %lld); kept %s\n", branch,
               json_integer_value(json_object_get(rec, "port")), pgdata);
    } else {
        printf("stopped endpoint %s (port %lld); removed %s\n", branch,
               json_integer_value(json_object_get(rec, "port")), pgdata);
    }
    json_decref(rec);
    return 0;
}

static int
by_branch(const void *a, const void *b)
{
    return strcmp(str(*(json_t *const *)a, "branch"),
                  str(*(json_t *const *)b, "branch"));
}

int
cmd_endpoint_list(cli *c)
{
    const char *tid = tenant_id(c);
    json_t *list = timelines(c, tid), *out = json_array(), *rec;
    char root[PATH_MAX + 64], dir[PATH_MAX * 2];
    json_t **items;
    size_t n, i;
    struct dirent *e;
    DIR *d;

    snprintf(root, sizeof(root), "%s/endpoints/%s", tarn_dir(), tid);
    if ((d = opendir(root)) != NULL) {
        while ((e = readdir(d)) != NULL) {
            json_t *tl;
            bool running, attached;
            if (e->d_name[0] == '.')
                continue;
            snprintf(dir, sizeof(dir), "%s/%s", root, e->d_name);
            if ((rec = load_record(dir)) == NULL)
                continue;
            tl = find_branch(list, str(rec, "timeline_id"));
            running = postmaster_pid(str(rec, "pgdata")) != 0;
            attached = tl != NULL && compute_attached(tl);
            json_object_set_new(
                rec, "state",
                json_string(
                    running ? (attached ? "running" : "running, not attached")
                            : "stopped"));
            json_object_set_new(rec, "branch_exists", json_boolean(tl != NULL));
            json_object_set_new(rec, "last_record_lsn",
                                tl ? json_string(str(tl, "last_record_lsn"))
                                   : json_null());
            json_array_append_new(out, rec);
        }
        closedir(d);
    }
    n = json_array_size(out);
    items = calloc(n ? n : 1, sizeof(*items));
    if (items == NULL)
        die("out of memory");
    for (i = 0; i < n; i++)
        items[i] = json_array_get(out, i);
    qsort(items, n, sizeof(*items), by_branch);
    if (c->json) {
        json_t *sorted = json_array();
        for (i = 0; i < n; i++)
            json_array_append(sorted, items[i]);
        print_json(sorted);
        json_decref(sorted);
    } else if (n == 0) {
        printf("no endpoints\n");
    } else {
        printf("%-20s %-6s %-22s %-12s %-12s %s\n", "BRANCH", "PORT", "STATE",
               "START LSN", "LAST LSN", "CONNECT");
        for (i = 0; i < n; i++) {
            json_t *r = items[i];
            char name[64];
            snprintf(name, sizeof(name), "%s%s", str(r, "branch"),
                     json_is_true(json_object_get(r, "branch_exists"))
                         ? ""
                         : " (deleted)");
            printf("%-20s %-6lld %-22s %-12s %-12s %s\n", name,
                   json_integer_value(json_object_get(r, "port")),
                   str(r, "state"), str(r, "lsn"),
                   *str(r, "last_record_lsn") ? str(r, "last_record_lsn") : "-",
                   str(r, "url"));
        }
    }
    free(items);
    json_decref(out);
    json_decref(list);
    return 0;
}
