/*
 * log.c - the logger.
 *
 * The descriptor we write to is private (a dup of stderr, or a file), and
 * tlog_reopen() swaps what it points at with dup2(), which is atomic: a
 * worker thread writing at that moment lands in the old or the new file,
 * never in a closed descriptor.  The level is an atomic so that SIGHUP can
 * change it while workers log.
 */
#include "server/core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

struct tlog {
    atomic_int level;
    int fd;
};

static int
open_dest(const char *path, tarn_err *err)
{
    int fd;

    if (path == NULL || *path == '\0')
        fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    else
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        tarn_err_errno(err, errno, "open log %s",
                       path && *path ? path : "stderr");
    return fd;
}

tarn_rc
tlog_create(const char *path, tlog_level level, tlog **out, tarn_err *err)
{
    tlog *lg = calloc(1, sizeof(*lg));

    if (lg == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    lg->fd = open_dest(path, err);
    if (lg->fd < 0) {
        free(lg);
        return err ? err->code : TARN_EIO;
    }
    atomic_init(&lg->level, (int)level);
    *out = lg;
    return TARN_OK;
}

void
tlog_destroy(tlog *lg)
{
    if (lg == NULL)
        return;
    close(lg->fd);
    free(lg);
}

tarn_rc
tlog_reopen(tlog *lg, const char *path, tarn_err *err)
{
    int fd = open_dest(path, err);

    if (fd < 0)
        return err ? err->code : TARN_EIO;
    if (dup3(fd, lg->fd, O_CLOEXEC) < 0) {
        int e = errno;
        close(fd);
        return tarn_err_errno(err, e, "dup3 log descriptor");
    }
    close(fd);
    return TARN_OK;
}

void
tlog_set_level(tlog *lg, tlog_level level)
{
    atomic_store(&lg->level, (int)level);
}

tlog_level
tlog_get_level(const tlog *lg)
{
    return (tlog_level)atomic_load(&((tlog *)lg)->level);
}

const char *
tlog_level_name(tlog_level level)
{
    switch (level) {
    case TLOG_ERROR:
        return "ERROR";
    case TLOG_WARN:
        return "WARN";
    case TLOG_INFO:
        return "INFO";
    case TLOG_DEBUG:
        return "DEBUG";
    }
    return "?";
}

tarn_rc
tlog_level_parse(const char *s, tlog_level *out)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};

    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, names[i]) == 0) {
            *out = (tlog_level)i;
            return TARN_OK;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = TLOG_WARN;
        return TARN_OK;
    }
    return TARN_EINVAL;
}

void
tlog_write(tlog *lg, tlog_level level, const char *ctx, const char *fmt, ...)
{
    char line[2048];
    struct timeval tv;
    struct tm tm;
    size_t n, start;
    va_list ap;
    int w;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    w = snprintf(
        line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %-5s %s%s%s",
        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
        tm.tm_sec, (int)(tv.tv_usec / 1000), tlog_level_name(level),
        ctx ? "[" : "", ctx ? ctx : "", ctx ? "] " : "");
    n = w < 0 ? 0 : (size_t)w;
    if (n >= sizeof(line))
        n = sizeof(line) - 1;
    start = n;
    va_start(ap, fmt);
    w = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (w > 0)
        n += (size_t)w;
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    for (size_t i = start; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[n++] = '\n';
    /* One write per line; a failed log write has nowhere to be reported. */
    if (write(lg->fd, line, n) < 0)
        (void)0;
}
