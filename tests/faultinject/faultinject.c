/*
 * faultinject.c - an LD_PRELOAD shim that makes WAL I/O fail on demand,
 * for the failure-semantics tests.
 *
 * The control file named by TARN_FAULT_FILE holds lines such as
 *   fdatasync=EIO
 *   write=ENOSPC
 * and is read again on every intercepted call, so a test can switch
 * faults on and off while tarnd runs.  Only descriptors whose path
 * contains "/wal/" are affected, so the catalog (LMDB) keeps working.
 * "write" covers write(), pwrite() and pwrite64().  "segment_write" fails
 * only the zero-fill of a new segment (wal/waltmp), so that a test can
 * fill the disk for the next segment while the current one has room.
 *
 * For layer files (paths containing "/layers/"):
 *   layer_write=ENOSPC         their writes fail
 *   layer_fsync_delay_ms=300   their fsync takes that much longer, so a
 *                              test can kill tarnd in the middle of a
 *                              layer write
 */
/* pwrite and pwrite64 must stay two symbols here. */
#undef _FILE_OFFSET_BITS
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

ssize_t write(int fd, const void *buf, size_t n);
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off);
int fdatasync(int fd);
int fsync(int fd);

/*
 * Copy the value of "<key>=" in the control file into @p out, or return
 * false.  A key matches only at the start of a line, so "write" does not
 * match "layer_write".  Raw syscalls through libc's open/read: they are
 * not intercepted.
 */
static bool
value_for(const char *key, char *out, size_t cap)
{
    const char *path = getenv("TARN_FAULT_FILE");
    char text[256];
    size_t klen = strlen(key), i = 0;
    ssize_t n;
    int fd;

    if (path == NULL)
        return false;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0)
        return false;
    text[n] = '\0';
    for (const char *line = text; *line != '\0';) {
        const char *nl = strchr(line, '\n');
        if (strncmp(line, key, klen) == 0 && line[klen] == '=') {
            const char *v = line + klen + 1;
            while (*v != '\0' && *v != '\n' && i + 1 < cap)
                out[i++] = *v++;
            out[i] = '\0';
            return true;
        }
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    return false;
}

static int
fault_for(const char *call)
{
    char v[32];

    if (!value_for(call, v, sizeof(v)))
        return 0;
    if (strcmp(v, "EIO") == 0)
        return EIO;
    if (strcmp(v, "ENOSPC") == 0)
        return ENOSPC;
    return 0;
}

/* The number after "<key>=" in the control file, or 0. */
static long
number_for(const char *key)
{
    char v[32];

    return value_for(key, v, sizeof(v)) ? strtol(v, NULL, 10) : 0;
}

static bool
path_has(int fd, const char *needle)
{
    char link[64], target[4096];
    ssize_t n;

    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, target, sizeof(target) - 1);
    if (n <= 0)
        return false;
    target[n] = '\0';
    return strstr(target, needle) != NULL;
}

static bool
is_wal(int fd)
{
    return path_has(fd, "/wal/");
}

/* A fault for a write to a WAL file, or 0. */
static int
wal_fault(int fd)
{
    int e = fault_for("write");

    if (e != 0)
        return is_wal(fd) ? e : 0;
    e = fault_for("segment_write");
    return e != 0 && path_has(fd, "/wal/waltmp") ? e : 0;
}

/* A fault for a layer file write, or 0. */
static int
layer_fault(int fd)
{
    int e = fault_for("layer_write");

    return e != 0 && path_has(fd, "/layers/") ? e : 0;
}

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef int (*sync_fn)(int);

#define REAL(name, type)                           \
    static type real_##name;                       \
    if (real_##name == NULL) {                     \
        void *sym_ = dlsym(RTLD_NEXT, #name);      \
        memcpy(&real_##name, &sym_, sizeof(sym_)); \
    }

ssize_t
write(int fd, const void *buf, size_t n)
{
    REAL(write, write_fn);
    int e;
    if (fd > 2 && ((e = wal_fault(fd)) != 0 || (e = layer_fault(fd)) != 0)) {
        errno = e;
        return -1;
    }
    return real_write(fd, buf, n);
}

ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
    REAL(pwrite, pwrite_fn);
    int e;
    if ((e = wal_fault(fd)) != 0 || (e = layer_fault(fd)) != 0) {
        errno = e;
        return -1;
    }
    return real_pwrite(fd, buf, n, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    REAL(pwrite64, pwrite_fn);
    int e;
    if ((e = wal_fault(fd)) != 0 || (e = layer_fault(fd)) != 0) {
        errno = e;
        return -1;
    }
    return real_pwrite64(fd, buf, n, off);
}

int
fdatasync(int fd)
{
    REAL(fdatasync, sync_fn);
    int e = fault_for("fdatasync");
    if (e != 0 && is_wal(fd)) {
        errno = e;
        return -1;
    }
    return real_fdatasync(fd);
}

int
fsync(int fd)
{
    REAL(fsync, sync_fn);
    int e = fault_for("fdatasync");
    long delay;
    if (e != 0 && is_wal(fd)) {
        errno = e;
        return -1;
    }
    if ((delay = number_for("layer_fsync_delay_ms")) > 0
        && path_has(fd, "/layers/"))
        usleep((useconds_t)delay * 1000);
    return real_fsync(fd);
}
