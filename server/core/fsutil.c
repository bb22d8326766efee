/*
 * fsutil.c - durable file-system helpers.
 *
 * The rule they encode: a new or renamed file is only durable once its
 * own data and the directory entry naming it have both been fsynced.
 */
#include "server/core/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

tarn_rc
tarn_fsync_dir(const char *path, tarn_err *err)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0)
        return tarn_err_errno(err, errno, "open directory %s", path);
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        return tarn_err_errno(err, e, "fsync directory %s", path);
    }
    close(fd);
    return TARN_OK;
}

tarn_rc
tarn_write_all(int fd, const void *data, size_t len, const char *what,
               tarn_err *err)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return tarn_err_errno(err, errno, "write %s", what);
        }
        p += n;
        len -= (size_t)n;
    }
    return TARN_OK;
}

/* The directory part of @p path ("." when there is none). */
static void
dir_of(const char *path, char *dir, size_t len)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL) {
        snprintf(dir, len, ".");
    } else if (slash == path) {
        snprintf(dir, len, "/");
    } else {
        snprintf(dir, len, "%.*s", (int)(slash - path), path);
    }
}

tarn_rc
tarn_write_file_atomic(const char *path, const void *data, size_t len,
                       mode_t mode, tarn_err *err)
{
    char tmp[PATH_MAX], dir[PATH_MAX];
    tarn_rc rc;
    int fd;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return tarn_err_set(err, TARN_EINVAL, "path too long: %s", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return tarn_err_errno(err, errno, "create %s", tmp);
    rc = tarn_write_all(fd, data, len, tmp, err);
    if (rc == TARN_OK && fsync(fd) != 0)
        rc = tarn_err_errno(err, errno, "fsync %s", tmp);
    if (close(fd) != 0 && rc == TARN_OK)
        rc = tarn_err_errno(err, errno, "close %s", tmp);
    if (rc == TARN_OK && rename(tmp, path) != 0)
        rc = tarn_err_errno(err, errno, "rename %s to %s", tmp, path);
    if (rc != TARN_OK) {
        unlink(tmp);
        return rc;
    }
    dir_of(path, dir, sizeof(dir));
    return tarn_fsync_dir(dir, err);
}

tarn_rc
tarn_mkdir_p(const char *path, mode_t mode, tarn_err *err)
{
    char buf[PATH_MAX], parent[PATH_MAX];
    struct stat st;
    size_t len = strlen(path);
    tarn_rc rc;

    if (len == 0 || len >= sizeof(buf))
        return tarn_err_set(err, TARN_EINVAL, "bad directory path '%s'", path);
    if (stat(path, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return tarn_err_set(err, TARN_EINVAL, "%s is not a directory",
                                path);
        return TARN_OK;
    }
    memcpy(buf, path, len + 1);
    while (len > 1 && buf[len - 1] == '/')
        buf[--len] = '\0';
    dir_of(buf, parent, sizeof(parent));
    if (strcmp(parent, buf) != 0) {
        rc = tarn_mkdir_p(parent, mode, err);
        if (rc != TARN_OK)
            return rc;
    }
    if (mkdir(buf, mode) != 0 && errno != EEXIST)
        return tarn_err_errno(err, errno, "create directory %s", buf);
    return tarn_fsync_dir(parent, err);
}

tarn_rc
tarn_read_file(const char *path, size_t max, char **out, size_t *len,
               tarn_err *err)
{
    char *buf = NULL;
    size_t used = 0;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return tarn_err_set(err, TARN_ENOTFOUND, "%s does not exist", path);
        return tarn_err_errno(err, errno, "open %s", path);
    }
    buf = malloc(max + 1);
    if (buf == NULL) {
        close(fd);
        return tarn_err_set(err, TARN_ENOMEM, "out of memory reading %s", path);
    }
    for (;;) {
        ssize_t n = read(fd, buf + used, max + 1 - used);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(buf);
            close(fd);
            return tarn_err_errno(err, e, "read %s", path);
        }
        if (n == 0)
            break;
        used += (size_t)n;
        if (used > max) {
            free(buf);
            close(fd);
            return tarn_err_set(err, TARN_ETOOBIG,
                                "%s is larger than %zu bytes", path, max);
        }
    }
    close(fd);
    buf[used] = '\0';
    *out = buf;
    if (len != NULL)
        *len = used;
    return TARN_OK;
}

static int
rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (type == FTW_DP)
        return rmdir(path) == 0 ? 0 : errno;
    return unlink(path) == 0 ? 0 : errno;
}

tarn_rc
tarn_rmtree(const char *path, tarn_err *err)
{
    char parent[PATH_MAX];
    struct stat st;
    int rc;

    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return TARN_OK;
        return tarn_err_errno(err, errno, "stat %s", path);
    }
    rc = nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (rc != 0)
        return tarn_err_errno(err, rc > 0 ? rc : errno, "remove %s", path);
    dir_of(path, parent, sizeof(parent));
    return tarn_fsync_dir(parent, err);
}
