/*
 * untar.c - a streaming tar extractor for basebackup archives (untar.h).
 *
 * The archive is a sequence of 512-byte blocks: a header, then the entry's
 * data padded to a block, and two zero blocks at the end.  Pieces arrive
 * with arbitrary boundaries, so the extractor is a small state machine:
 * gather a header, write a file's data as it comes, skip its padding.
 */
#include "server/cli/untar.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLOCK        512
#define NAME_MAX_LEN 4096

typedef enum ustate {
    U_HEADER,   /* gathering a header block */
    U_DATA,     /* a file's data (fd open) */
    U_LONGNAME, /* a GNU 'L' entry's data: the next entry's name */
    U_PAD,      /* padding after data */
    U_END       /* two zero blocks seen; the rest is ignored */
} ustate;

struct untar {
    untar_opts o;
    char dir[PATH_MAX];
    ustate st;
    uint8_t hdr[BLOCK];
    size_t hlen;   /* bytes of hdr gathered */
    uint64_t left; /* data bytes left in the entry */
    size_t pad;    /* padding bytes left */
    int fd;        /* the file being written, or -1 */
    char path[PATH_MAX + NAME_MAX_LEN + 2];
    char longname[NAME_MAX_LEN + 1];
    size_t longlen;
    bool have_long; /* longname names the next entry */
    int zeros;      /* consecutive zero header blocks */
    uint64_t entries;
};

tarn_rc
untar_new(const untar_opts *o, untar **out, tarn_err *err)
{
    untar *u;

    if (strlen(o->dir) >= PATH_MAX)
        return tarn_err_set(err, TARN_EINVAL, "target path too long");
    if ((u = calloc(1, sizeof(*u))) == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    u->o = *o;
    snprintf(u->dir, sizeof(u->dir), "%s", o->dir);
    u->o.dir = u->dir;
    u->fd = -1;
    *out = u;
    return TARN_OK;
}

void
untar_free(untar *u)
{
    if (u == NULL)
        return;
    if (u->fd >= 0)
        close(u->fd);
    free(u);
}

uint64_t
untar_entries(const untar *u)
{
    return u->entries;
}

/* A numeric header field: octal digits (space or NUL padded), or GNU
 * base-256 when the top bit of the first byte is set. */
static bool
field_num(const uint8_t *f, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;

    if (f[0] & 0x80) {
        if (f[0] != 0x80)
            return false; /* negative, or too large */
        for (i = 1; i < n; i++) {
            if (v >> 56)
                return false;
            v = v << 8 | f[i];
        }
        *out = v;
        return true;
    }
    while (i < n && f[i] == ' ')
        i++;
    if (i == n || f[i] < '0' || f[i] > '7')
        return false;
    for (; i < n && f[i] >= '0' && f[i] <= '7'; i++) {
        if (v >> 60)
            return false;
        v = v << 3 | (uint64_t)(f[i] - '0');
    }
    for (; i < n; i++)
        if (f[i] != ' ' && f[i] != '\0')
            return false;
    *out = v;
    return true;
}

static bool
checksum_ok(const uint8_t *h)
{
    uint64_t want, sum = 0;

    if (!field_num(h + 148, 8, &want))
        return false;
    for (size_t i = 0; i < BLOCK; i++)
        sum += (i >= 148 && i < 156) ? ' ' : h[i];
    return sum == want;
}

/*
 * Check a member name and make the path under the target directory.  The
 * name is relative, has no ".." component and no empty name; "./" and
 * trailing slashes are dropped.  A directory may name the target itself
 * ("./").
 */
static tarn_rc
make_path(untar *u, const char *name, bool dir, tarn_err *err)
{
    char clean[NAME_MAX_LEN + 1];
    size_t n = 0;
    const char *p = name;

    if (name[0] == '/')
        return tarn_err_set(err, TARN_EPROTO,
                            "the archive holds an absolute path '%.200s'",
                            name);
    while (*p != '\0') {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return tarn_err_set(err, TARN_EPROTO,
                                "the archive holds a path with '..': "
                                "'%.200s'",
                                name);
        if (len > 0 && !(len == 1 && p[0] == '.')) {
            if (n + len + 2 > sizeof(clean))
                return tarn_err_set(err, TARN_EPROTO,
                                    "a path in the archive is too long");
            if (n > 0)
                clean[n++] = '/';
            memcpy(clean + n, p, len);
            n += len;
        }
        p += len;
        if (*p == '/')
            p++;
    }
    clean[n] = '\0';
    if (n == 0 && !dir)
        return tarn_err_set(err, TARN_EPROTO,
                            "the archive holds an entry with an empty name");
    snprintf(u->path, sizeof(u->path), "%s/%s", u->dir, clean);
    return TARN_OK;
}

static tarn_rc
give(untar *u, int fd, const char *path, tarn_err *err)
{
    int rc;

    if (!u->o.chown)
        return TARN_OK;
    rc = fd >= 0 ? fchown(fd, u->o.uid, u->o.gid)
                 : lchown(path, u->o.uid, u->o.gid);
    if (rc != 0)
        return tarn_err_set(err, TARN_EIO, "chown %s: %s", path,
                            strerror(errno));
    return TARN_OK;
}

/* One directory; an existing directory (not a link) is fine. */
static tarn_rc
mkdir_one(untar *u, const char *path, mode_t mode, tarn_err *err)
{
    struct stat st;

    if (mkdir(path, mode) == 0) {
        if (chmod(path, mode) != 0)
            return tarn_err_set(err, TARN_EIO, "chmod %s: %s", path,
                                strerror(errno));
        return give(u, -1, path, err);
    }
    if (errno != EEXIST)
        return tarn_err_set(err, TARN_EIO, "mkdir %s: %s", path,
                            strerror(errno));
    if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return tarn_err_set(err, TARN_EIO, "%s exists and is not a directory",
                            path);
    return TARN_OK;
}

/* The directories above u->path, below the target directory. */
static tarn_rc
mkdir_parents(untar *u, tarn_err *err)
{
    size_t base = strlen(u->dir) + 1;
    char *p = u->path + base;
    tarn_rc rc;

    while ((p = strchr(p, '/')) != NULL) {
        *p = '\0';
        rc = mkdir_one(u, u->path, 0700, err);
        *p = '/';
        if (rc != TARN_OK)
            return rc;
        p++;
    }
    return TARN_OK;
}

/* A complete header block in u->hdr. */
static tarn_rc
on_header(untar *u, tarn_err *err)
{
    const uint8_t *h = u->hdr;
    char name[NAME_MAX_LEN + 1];
    uint64_t size, mode;
    char type = (char)h[156];
    bool zero = true;
    tarn_rc rc;

    for (size_t i = 0; i < BLOCK && zero; i++)
        zero = h[i] == 0;
    if (zero) {
        if (u->have_long)
            return tarn_err_set(err, TARN_EPROTO,
                                "the archive ends after a long name");
        if (++u->zeros == 2)
            u->st = U_END;
        return TARN_OK;
    }
    if (u->zeros > 0)
        return tarn_err_set(err, TARN_EPROTO,
                            "a lone zero block inside the archive");
    if (!checksum_ok(h))
        return tarn_err_set(err, TARN_EPROTO,
                            "a tar header with a bad checksum (entry %llu)",
                            (unsigned long long)u->entries + 1);
    if (!field_num(h + 124, 12, &size) || !field_num(h + 100, 8, &mode))
        return tarn_err_set(err, TARN_EPROTO,
                            "a tar header with a bad size or mode field");
    u->left = size;
    u->pad = (size_t)((BLOCK - size % BLOCK) % BLOCK);
    if (type == 'L') {
        if (u->have_long || size == 0 || size > NAME_MAX_LEN)
            return tarn_err_set(err, TARN_EPROTO,
                                "a GNU long name of %llu bytes",
                                (unsigned long long)size);
        u->longlen = 0;
        u->st = U_LONGNAME;
        return TARN_OK;
    }
    if (u->have_long) {
        memcpy(name, u->longname, u->longlen);
        name[u->longlen] = '\0';
        name[strnlen(name, u->longlen)] = '\0';
        u->have_long = false;
    } else if (memcmp(h + 257, "ustar\0", 6) == 0 && h[345] != '\0') {
        /* POSIX ustar: prefix "/" name. */
        snprintf(name, sizeof(name), "%.155s/%.100s", (const char *)h + 345,
                 (const char *)h);
    } else {
        snprintf(name, sizeof(name), "%.100s", (const char *)h);
    }
    if ((rc = make_path(u, name, type == '5', err)) != TARN_OK)
        return rc;
    mode &= 0777;
    switch (type) {
    case '5':
        if (size != 0)
            return tarn_err_set(err, TARN_EPROTO,
                                "directory entry '%.200s' has data", name);
        if ((rc = mkdir_parents(u, err)) != TARN_OK
            || (rc = mkdir_one(u, u->path, (mode_t)(mode | 0700), err))
                   != TARN_OK)
            return rc;
        u->entries++;
        u->st = U_HEADER;
        return TARN_OK;
    case '0':
    case '\0':
        if ((rc = mkdir_parents(u, err)) != TARN_OK)
            return rc;
        u->fd =
            open(u->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                 (mode_t)(mode | 0600));
        if (u->fd < 0)
            return tarn_err_set(err, TARN_EIO, "create %s: %s", u->path,
                                strerror(errno));
        if (fchmod(u->fd, (mode_t)(mode | 0600)) != 0)
            return tarn_err_set(err, TARN_EIO, "chmod %s: %s", u->path,
                                strerror(errno));
        if ((rc = give(u, u->fd, u->path, err)) != TARN_OK)
            return rc;
        u->entries++;
        u->st = U_DATA;
        return TARN_OK;
    default:
        return tarn_err_set(err, TARN_EPROTO,
                            "the archive holds '%.200s' of type '%c'; only "
                            "files and directories are extracted",
                            name, type >= 32 && type < 127 ? type : '?');
    }
}

static tarn_rc
close_file(untar *u, tarn_err *err)
{
    int rc = close(u->fd);

    u->fd = -1;
    if (rc != 0)
        return tarn_err_set(err, TARN_EIO, "close %s: %s", u->path,
                            strerror(errno));
    return TARN_OK;
}

tarn_rc
untar_feed(untar *u, const void *data, size_t len, tarn_err *err)
{
    const uint8_t *p = data;
    tarn_rc rc;

    while (len > 0) {
        size_t n;
        switch (u->st) {
        case U_END:
            return TARN_OK;
        case U_HEADER:
            n = BLOCK - u->hlen < len ? BLOCK - u->hlen : len;
            memcpy(u->hdr + u->hlen, p, n);
            u->hlen += n;
            p += n;
            len -= n;
            if (u->hlen < BLOCK)
                break;
            u->hlen = 0;
            if ((rc = on_header(u, err)) != TARN_OK)
                return rc;
            break;
        case U_DATA:
        case U_LONGNAME:
            n = u->left < len ? (size_t)u->left : len;
            if (u->st == U_DATA) {
                ssize_t w = n ? write(u->fd, p, n) : 0;
                if (w < 0 && errno == EINTR)
                    continue;
                if (w < 0)
                    return tarn_err_set(err, TARN_EIO, "write %s: %s", u->path,
                                        strerror(errno));
                n = (size_t)w;
            } else {
                memcpy(u->longname + u->longlen, p, n);
                u->longlen += n;
            }
            p += n;
            len -= n;
            u->left -= n;
            if (u->left > 0)
                break;
            if (u->st == U_DATA) {
                if ((rc = close_file(u, err)) != TARN_OK)
                    return rc;
            } else {
                u->have_long = true;
            }
            u->st = u->pad ? U_PAD : U_HEADER;
            break;
        case U_PAD:
            n = u->pad < len ? u->pad : len;
            p += n;
            len -= n;
            u->pad -= n;
            if (u->pad == 0)
                u->st = U_HEADER;
            break;
        }
    }
    /* A file of size 0 has no data: close it now. */
    if (u->st == U_DATA && u->left == 0) {
        if ((rc = close_file(u, err)) != TARN_OK)
            return rc;
        u->st = U_HEADER;
    }
    return TARN_OK;
}

tarn_rc
untar_finish(untar *u, tarn_err *err)
{
    if (u->st == U_DATA && u->left == 0 && u->fd >= 0) {
        tarn_rc rc = close_file(u, err);
        if (rc != TARN_OK)
            return rc;
        u->st = U_HEADER;
    }
    if (u->st != U_END)
        return tarn_err_set(err, TARN_EPROTO,
                            "the archive is cut short (%llu entries)",
                            (unsigned long long)u->entries);
    return TARN_OK;
}
