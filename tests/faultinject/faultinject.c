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
 * "write" covers write(), pwrite() and pwrite64().
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

static int
fault_for(const char *call)
{
    const char *path = getenv("TARN_FAULT_FILE");
    char text[256], want[64];
    ssize_t n;
    int fd;

    if (path == NULL)
        return 0;
    /* Raw syscalls through libc's open/read: they are not intercepted. */
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    text[n] = '\0';
    snprintf(want, sizeof(want), "%s=", call);
    const char *p = strstr(text, want);
    if (p == NULL)
        return 0;
    p += strlen(want);
    if (strncmp(p, "EIO", 3) == 0)
        return EIO;
    if (strncmp(p, "ENOSPC", 6) == 0)
        return ENOSPC;
    return 0;
}

static bool
is_wal(int fd)
{
    char link[64], target[4096];
    ssize_t n;

    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, target, sizeof(target) - 1);
    if (n <= 0)
        return false;
    target[n] = '\0';
    return strstr(target, "/wal/") != NULL;
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
    int e = fd > 2 ? fault_for("write") : 0;
    if (e != 0 && is_wal(fd)) {
        errno = e;
        return -1;
    }
    return real_write(fd, buf, n);
}

ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
    REAL(pwrite, pwrite_fn);
    int e = fault_for("write");
    if (e != 0 && is_wal(fd)) {
        errno = e;
        return -1;
    }
    return real_pwrite(fd, buf, n, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    REAL(pwrite64, pwrite_fn);
    int e = fault_for("write");
    if (e != 0 && is_wal(fd)) {
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
    if (e != 0 && is_wal(fd)) {
        errno = e;
        return -1;
    }
    return real_fsync(fd);
}
