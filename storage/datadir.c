/*
 * datadir.c - creating, checking and locking the data directory.
 *
 * The lock is an flock() on tarnd.pid.  flock locks die with their
 * process, so a tarnd killed with SIGKILL never leaves a stale lock behind;
 * the pid in the file is only there to make the refusal message useful.
 *
 * A directory that holds files but no LAYOUT_VERSION is refused rather
 * than adopted: pointing data_dir at the wrong place must not scatter
 * tarn's files into someone else's directory.
 */
#include "storage/datadir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "server/core/fsutil.h"

#define LAYOUT_FILE "LAYOUT_VERSION"
#define LOCK_FILE   "tarnd.pid"
#define LOG_FILE    "tarnd.log" /* where scripts/up logs; may predate us */

struct datadir {
    char path[PATH_MAX];
    char catalog[PATH_MAX];
    int lock_fd;
    int is_new;
};

/* Does @p path hold anything besides the lock file and a log? */
static tarn_rc
dir_has_foreign_files(const char *path, int *out, tarn_err *err)
{
    DIR *d = opendir(path);
    struct dirent *e;

    if (d == NULL)
        return tarn_err_errno(err, errno, "open directory %s", path);
    *out = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0
            || strcmp(e->d_name, LOCK_FILE) == 0
            || strcmp(e->d_name, LOG_FILE) == 0
            || strcmp(e->d_name, LAYOUT_FILE ".tmp") == 0)
            continue;
        *out = 1;
        break;
    }
    closedir(d);
    return TARN_OK;
}

static tarn_rc
take_lock(datadir *d, tarn_err *err)
{
    char lockpath[PATH_MAX + 16], buf[32];
    int n;

    snprintf(lockpath, sizeof(lockpath), "%s/%s", d->path, LOCK_FILE);
    d->lock_fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (d->lock_fd < 0)
        return tarn_err_errno(err, errno, "open lock file %s", lockpath);
    if (flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            ssize_t r = pread(d->lock_fd, buf, sizeof(buf) - 1, 0);
            long pid = 0;
            if (r > 0) {
                buf[r] = '\0';
                pid = strtol(buf, NULL, 10);
            }
            return tarn_err_set(err, TARN_EBUSY,
                                "data directory %s is in use by another tarnd "
                                "(pid %ld)",
                                d->path, pid);
        }
        return tarn_err_errno(err, errno, "lock %s", lockpath);
    }
    n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (ftruncate(d->lock_fd, 0) != 0
        || pwrite(d->lock_fd, buf, (size_t)n, 0) != n)
        return tarn_err_errno(err, errno, "write %s", lockpath);
    return TARN_OK;
}

static tarn_rc
check_layout(datadir *d, tarn_err *err)
{
    char path[PATH_MAX + 32], *text = NULL;
    tarn_rc rc;
    int foreign = 0;
    long v;

    snprintf(path, sizeof(path), "%s/%s", d->path, LAYOUT_FILE);
    rc = tarn_read_file(path, 64, &text, NULL, err);
    if (rc == TARN_ENOTFOUND) {
        rc = dir_has_foreign_files(d->path, &foreign, err);
        if (rc != TARN_OK)
            return rc;
        if (foreign)
            return tarn_err_set(err, TARN_EINVAL,
                                "%s is not empty and is not a tarn data "
                                "directory (no %s); refusing to use it",
                                d->path, LAYOUT_FILE);
        char content[16];
        int n =
            snprintf(content, sizeof(content), "%d\n", DATADIR_LAYOUT_VERSION);
        d->is_new = 1;
        return tarn_write_file_atomic(path, content, (size_t)n, 0644, err);
    }
    if (rc != TARN_OK)
        return rc;
    char *end;
    v = strtol(text, &end, 10);
    if (end == text || (*end != '\n' && *end != '\0')) {
        rc = tarn_err_set(err, TARN_ECORRUPT, "%s is damaged: '%.20s'", path,
                          text);
    } else if (v != DATADIR_LAYOUT_VERSION) {
        rc = tarn_err_set(err, TARN_EUNSUPPORTED,
                          "data directory %s has layout version %ld; this "
                          "tarnd reads version %d",
                          d->path, v, DATADIR_LAYOUT_VERSION);
    }
    free(text);
    return rc;
}

tarn_rc
datadir_open(const char *path, datadir **out, tarn_err *err)
{
    datadir *d = calloc(1, sizeof(*d));
    tarn_rc rc;

    if (d == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    d->lock_fd = -1;
    rc = tarn_mkdir_p(path, 0700, err);
    if (rc != TARN_OK)
        goto fail;
    if (realpath(path, d->path) == NULL) {
        rc = tarn_err_errno(err, errno, "resolve %s", path);
        goto fail;
    }
    if ((rc = take_lock(d, err)) != TARN_OK)
        goto fail;
    if ((rc = check_layout(d, err)) != TARN_OK)
        goto fail;
    snprintf(d->catalog, sizeof(d->catalog), "%.*s/catalog",
             (int)(sizeof(d->catalog) - 16), d->path);
    if ((rc = tarn_mkdir_p(d->catalog, 0700, err)) != TARN_OK)
        goto fail;
    *out = d;
    return TARN_OK;
fail:
    datadir_close(d);
    return rc;
}

void
datadir_close(datadir *d)
{
    if (d == NULL)
        return;
    if (d->lock_fd >= 0)
        close(d->lock_fd); /* releases the flock */
    free(d);
}

const char *
datadir_path(const datadir *d)
{
    return d->path;
}

const char *
datadir_catalog_path(const datadir *d)
{
    return d->catalog;
}

int
datadir_is_new(const datadir *d)
{
    return d->is_new;
}
