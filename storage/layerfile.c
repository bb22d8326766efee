/*
 * layerfile.c - writing and reading layer files.
 *
 * Layout (little-endian; docs/storage-format.md has the full table):
 *
 *   0      header, 4096 bytes, CRC32C in its last 4 bytes
 *   4096   blobs, back to back: codec u8, stored u32, raw u32, payload,
 *          CRC32C over all of it
 *   ...    zero padding to 8 KiB
 *   index  8 KiB blocks: count u32, 40-byte entries, CRC32C at 8188
 *   fences 26 bytes per index block (first key, first LSN), CRC32C
 *   bloom  bit array, CRC32C
 *
 * Why this shape.  Values are written as the sorted input arrives, and
 * the index is kept in memory (40 bytes a value) until the end, so a
 * layer is written in one sequential pass with no seeks except the final
 * header.  Fixed-size index entries make each block binary-searchable
 * with no decoding; the fences, loaded at open, pick the block.  The
 * Bloom filter (10 bits a key, 7 probes, about 1% false positives) lets a
 * read skip the layers that do not hold a key at all, which is most of
 * them when a key is cold.  Blobs are compressed one by one, so reading
 * one value never decompresses its neighbours.
 */
#include "storage/layerfile.h"

#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "server/core/crc32c.h"
#include "server/core/fsutil.h"

#define HDR_SIZE           4096
#define BLOCK              8192
#define ENTRY              40
#define PER_BLOCK          ((BLOCK - 8) / ENTRY)
#define FENCE              26
#define BLOB_HDR           9
#define BLOB_TAIL          4
#define CODEC_RAW          0
#define CODEC_ZSTD         1
#define CODEC_LZ4          2
#define COMPRESS_MIN       256 /* smaller values rarely shrink */
#define WBUF_SIZE          (1u << 20)
#define BLOOM_BITS_PER_KEY 10
#define BLOOM_K            7
#define MAX_BLOB           (64u << 20)

static const char MAGIC[8] = {'T', 'A', 'R', 'N', 'L', 'A', 'Y', 'R'};

/* Header field offsets. */
enum {
    H_MAGIC = 0,
    H_VERSION = 8,
    H_KIND = 12,
    H_TENANT = 16,
    H_TIMELINE = 32,
    H_KEY_START = 48,
    H_KEY_END = 66,
    H_LSN_START = 88,
    H_LSN_END = 96,
    H_NVALUES = 104,
    H_NKEYS = 112,
    H_DATA_OFF = 120,
    H_DATA_LEN = 128,
    H_INDEX_OFF = 136,
    H_INDEX_BLOCKS = 144,
    H_INDEX_BLOCK_SIZE = 148,
    H_FENCE_OFF = 152,
    H_FENCE_LEN = 160,
    H_BLOOM_K = 164,
    H_BLOOM_OFF = 168,
    H_BLOOM_LEN = 176,
    H_FILE_SIZE = 184,
    H_ZSTD_LEVEL = 192,
    H_CODEC = 196,
    H_CRC = HDR_SIZE - 4
};

/* Index entry field offsets. */
enum { E_KEY = 0, E_FLAGS = 18, E_LSN = 20, E_OFF = 28, E_LEN = 36 };

/* ---- names -------------------------------------------------------------- */

char *
layer_name(const layer_desc *d, char *buf)
{
    char ks[TKEY_STRLEN], ke[TKEY_STRLEN];

    tkey_format(&d->key_start, ks);
    tkey_format(&d->key_end, ke);
    if (d->kind == LAYER_IMAGE)
        snprintf(buf, LAYER_NAME_MAX, "%s-%s__%016llX", ks, ke,
                 (unsigned long long)d->lsn_start);
    else
        snprintf(buf, LAYER_NAME_MAX, "%s-%s__%016llX-%016llX", ks, ke,
                 (unsigned long long)d->lsn_start,
                 (unsigned long long)d->lsn_end);
    return buf;
}

static bool
parse_hex64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return false;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return true;
}

tarn_rc
layer_name_parse(const char *name, layer_desc *out, tarn_err *err)
{
    char k[TKEY_STRLEN];
    size_t len = strlen(name);

    memset(out, 0, sizeof(*out));
    if ((len != 36 + 1 + 36 + 2 + 16 && len != 36 + 1 + 36 + 2 + 16 + 1 + 16)
        || name[36] != '-' || name[73] != '_' || name[74] != '_')
        goto bad;
    memcpy(k, name, 36);
    k[36] = '\0';
    if (tkey_parse(k, &out->key_start, NULL) != TARN_OK)
        goto bad;
    memcpy(k, name + 37, 36);
    if (tkey_parse(k, &out->key_end, NULL) != TARN_OK)
        goto bad;
    if (!parse_hex64(name + 75, 16, &out->lsn_start))
        goto bad;
    if (len == 91) {
        out->kind = LAYER_IMAGE;
        out->lsn_end = out->lsn_start + 1;
    } else {
        if (name[91] != '-' || !parse_hex64(name + 92, 16, &out->lsn_end))
            goto bad;
        out->kind = LAYER_DELTA;
    }
    return TARN_OK;
bad:
    return tarn_err_set(err, TARN_EINVAL, "'%s' is not a layer file name",
                        name);
}

/* ---- writer ------------------------------------------------------------- */

struct layerw {
    layerw_opts o;
    char dir[PATH_MAX], tmp[PATH_MAX];
    int fd;
    uint8_t *wbuf;
    size_t wlen;
    uint64_t pos; /* file offset of the next blob byte */
    uint8_t *idx;
    size_t nidx, idx_cap;
    uint64_t *hashes;
    size_t nkeys, hash_cap;
    tkey first, last;
    tarn_lsn last_lsn;
    ZSTD_CCtx *zc;
    uint8_t *zbuf;
    size_t zcap;
};

static tarn_rc
flush_wbuf(layerw *w, tarn_err *err)
{
    if (w->wlen == 0)
        return TARN_OK;
    if (tarn_write_all(w->fd, w->wbuf, w->wlen, w->tmp, err) != TARN_OK)
        return err ? err->code : TARN_EIO;
    w->wlen = 0;
    return TARN_OK;
}

static tarn_rc
wbuf_add(layerw *w, const void *data, size_t len, tarn_err *err)
{
    const uint8_t *p = data;

    while (len > 0) {
        size_t n = WBUF_SIZE - w->wlen;
        if (n == 0) {
            tarn_rc rc = flush_wbuf(w, err);
            if (rc != TARN_OK)
                return rc;
            continue;
        }
        if (n > len)
            n = len;
        memcpy(w->wbuf + w->wlen, p, n);
        w->wlen += n;
        p += n;
        len -= n;
        w->pos += n;
    }
    return TARN_OK;
}

tarn_rc
layerw_create(const layerw_opts *o, layerw **out, tarn_err *err)
{
    layerw *w = calloc(1, sizeof(*w));
    static const uint8_t zero[HDR_SIZE];

    if (w == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    w->o = *o;
    w->fd = -1;
    snprintf(w->dir, sizeof(w->dir), "%s", o->dir);
    w->o.dir = w->dir;
    w->wbuf = malloc(WBUF_SIZE);
    if (w->wbuf == NULL) {
        free(w);
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    }
    if (w->o.codec == TARN_CODEC_ZSTD) {
        if (w->o.zstd_level <= 0)
            w->o.zstd_level = 1;
        if ((w->zc = ZSTD_createCCtx()) == NULL) {
            layerw_abort(w);
            return tarn_err_set(err, TARN_ENOMEM, "out of memory");
        }
    }
    snprintf(w->tmp, sizeof(w->tmp), "%s/layer-XXXXXX___temp", w->dir);
    w->fd = mkstemps(w->tmp, 7);
    if (w->fd < 0) {
        tarn_rc rc = tarn_err_errno(err, errno, "create %s", w->tmp);
        w->tmp[0] = '\0';
        layerw_abort(w);
        return rc;
    }
    /* The header is written last; reserve its space. */
    w->pos = 0;
    if (wbuf_add(w, zero, HDR_SIZE, err) != TARN_OK) {
        tarn_rc rc = err ? err->code : TARN_EIO;
        layerw_abort(w);
        return rc;
    }
    *out = w;
    return TARN_OK;
}

void
layerw_abort(layerw *w)
{
    if (w == NULL)
        return;
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp[0] != '\0')
        unlink(w->tmp);
    ZSTD_freeCCtx(w->zc);
    free(w->zbuf);
    free(w->wbuf);
    free(w->idx);
    free(w->hashes);
    free(w);
}

uint64_t
layerw_nvalues(const layerw *w)
{
    return w->nidx;
}

uint64_t
layerw_bytes(const layerw *w)
{
    return w->pos;
}

tarn_rc
layerw_add(layerw *w, const tkey *k, tarn_lsn lsn, const uint8_t *val,
           size_t len, bool will_init, tarn_err *err)
{
    uint8_t hdr[BLOB_HDR], tail[BLOB_TAIL], *e;
    const uint8_t *payload = val;
    size_t stored = len;
    uint8_t codec = CODEC_RAW;
    uint64_t off = w->pos;
    uint32_t crc;
    tarn_rc rc;
    int c = w->nidx ? tkey_cmp(k, &w->last) : 1;

    if (c < 0 || (c == 0 && lsn < w->last_lsn))
        return tarn_err_set(err, TARN_EINVAL,
                            "layer values must come in (key, LSN) order");
    if (len > MAX_BLOB)
        return tarn_err_set(err, TARN_ETOOBIG, "value of %zu bytes", len);
    if (w->o.codec != TARN_CODEC_NONE && len >= COMPRESS_MIN) {
        size_t bound = w->o.codec == TARN_CODEC_ZSTD
                           ? ZSTD_compressBound(len)
                           : (size_t)LZ4_compressBound((int)len),
               n;
        if (bound > w->zcap) {
            uint8_t *z = realloc(w->zbuf, bound);
            if (z == NULL)
                return tarn_err_set(err, TARN_ENOMEM, "out of memory");
            w->zbuf = z;
            w->zcap = bound;
        }
        if (w->o.codec == TARN_CODEC_ZSTD) {
            n = ZSTD_compressCCtx(w->zc, w->zbuf, w->zcap, val, len,
                                  w->o.zstd_level);
            if (ZSTD_isError(n))
                n = len;
        } else {
            /* 0 (does not fit) reads as no gain below. */
            n = (size_t)LZ4_compress_default((const char *)val, (char *)w->zbuf,
                                             (int)len, (int)w->zcap);
            if (n == 0)
                n = len;
        }
        if (n + n / 8 < len) {
            payload = w->zbuf;
            stored = n;
            codec = (uint8_t)w->o.codec;
        }
    }
    hdr[0] = codec;
    tarn_put_u32(hdr + 1, (uint32_t)stored);
    tarn_put_u32(hdr + 5, (uint32_t)len);
    crc = tarn_crc32c_update(TARN_CRC32C_INIT, hdr, BLOB_HDR);
    crc = tarn_crc32c_final(tarn_crc32c_update(crc, payload, stored));
    tarn_put_u32(tail, crc);
    if ((rc = wbuf_add(w, hdr, BLOB_HDR, err)) != TARN_OK
        || (rc = wbuf_add(w, payload, stored, err)) != TARN_OK
        || (rc = wbuf_add(w, tail, BLOB_TAIL, err)) != TARN_OK)
        return rc;
    if (w->nidx == w->idx_cap) {
        size_t cap = w->idx_cap ? w->idx_cap * 2 : 4096;
        uint8_t *p = realloc(w->idx, cap * ENTRY);
        if (p == NULL)
            return tarn_err_set(err, TARN_ENOMEM, "out of memory");
        w->idx = p;
        w->idx_cap = cap;
    }
    e = w->idx + w->nidx * ENTRY;
    memcpy(e + E_KEY, k->b, TKEY_LEN);
    e[E_FLAGS] = will_init ? TVAL_F_WILL_INIT : 0;
    e[E_FLAGS + 1] = 0;
    tarn_put_u64(e + E_LSN, lsn);
    tarn_put_u64(e + E_OFF, off);
    tarn_put_u32(e + E_LEN, (uint32_t)(BLOB_HDR + stored + BLOB_TAIL));
    if (c != 0) {
        if (w->nkeys == w->hash_cap) {
            size_t cap = w->hash_cap ? w->hash_cap * 2 : 1024;
            uint64_t *h = realloc(w->hashes, cap * sizeof(*h));
            if (h == NULL)
                return tarn_err_set(err, TARN_ENOMEM, "out of memory");
            w->hashes = h;
            w->hash_cap = cap;
        }
        w->hashes[w->nkeys++] = tkey_hash(k);
        if (w->nidx == 0)
            w->first = *k;
    }
    w->nidx++;
    w->last = *k;
    w->last_lsn = lsn;
    return TARN_OK;
}

static inline void
bloom_probes(uint64_t h, uint64_t nbits, uint64_t *pos)
{
    uint64_t h1 = h, h2 = (h >> 32) | (h << 32);

    h2 |= 1;
    for (int i = 0; i < BLOOM_K; i++)
        pos[i] = (h1 + (uint64_t)i * h2) % nbits;
}

static tarn_rc
pwrite_all(int fd, const void *data, size_t len, uint64_t off, const char *path,
           tarn_err *err)
{
    const uint8_t *p = data;

    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return tarn_err_errno(err, errno, "write %s", path);
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return TARN_OK;
}

tarn_rc
layerw_finish(layerw *w, const tkey *key_start, const tkey *key_end,
              layer_desc *out, char *name_out, tarn_err *err)
{
    static const uint8_t zeros[BLOCK];
    uint8_t hdr[HDR_SIZE], *block = NULL, *fences = NULL, *bloom = NULL;
    uint64_t data_len = w->pos - HDR_SIZE, index_off, fence_off, bloom_off,
             nbits, file_size;
    size_t nblocks = (w->nidx + PER_BLOCK - 1) / PER_BLOCK, fence_len,
           bloom_len;
    char name[LAYER_NAME_MAX], path[PATH_MAX + LAYER_NAME_MAX];
    layer_desc d;
    tarn_rc rc;

    memset(&d, 0, sizeof(d));
    d.kind = w->o.kind;
    d.lsn_start = w->o.lsn_start;
    d.lsn_end = w->o.lsn_end;
    d.nvalues = w->nidx;
    if (key_start != NULL) {
        d.key_start = *key_start;
        d.key_end = *key_end;
    } else if (w->nidx > 0) {
        d.key_start = w->first;
        d.key_end = tkey_next(&w->last);
    } else {
        d.key_start = d.key_end = tkey_min();
    }
    /* Pad the blobs to a block boundary, then the index. */
    if ((rc = wbuf_add(w, zeros, (BLOCK - w->pos % BLOCK) % BLOCK, err))
        != TARN_OK)
        goto fail;
    index_off = w->pos;
    block = malloc(BLOCK);
    fence_len = nblocks * FENCE + 4;
    fences = calloc(1, fence_len);
    nbits = (uint64_t)w->nkeys * BLOOM_BITS_PER_KEY;
    if (nbits < 512)
        nbits = 512;
    nbits = (nbits + 63) / 64 * 64;
    bloom_len = nbits / 8 + 4;
    bloom = calloc(1, bloom_len);
    if (block == NULL || fences == NULL || bloom == NULL) {
        rc = tarn_err_set(err, TARN_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t b = 0; b < nblocks; b++) {
        size_t first = b * PER_BLOCK, n = w->nidx - first;
        if (n > PER_BLOCK)
            n = PER_BLOCK;
        memset(block, 0, BLOCK);
        tarn_put_u32(block, (uint32_t)n);
        memcpy(block + 4, w->idx + first * ENTRY, n * ENTRY);
        tarn_put_u32(block + BLOCK - 4, tarn_crc32c(block, BLOCK - 4));
        memcpy(fences + b * FENCE, w->idx + first * ENTRY + E_KEY, TKEY_LEN);
        memcpy(fences + b * FENCE + TKEY_LEN, w->idx + first * ENTRY + E_LSN,
               8);
        if ((rc = wbuf_add(w, block, BLOCK, err)) != TARN_OK)
            goto fail;
    }
    tarn_put_u32(fences + fence_len - 4, tarn_crc32c(fences, fence_len - 4));
    fence_off = w->pos;
    if ((rc = wbuf_add(w, fences, fence_len, err)) != TARN_OK)
        goto fail;
    for (size_t i = 0; i < w->nkeys; i++) {
        uint64_t pos[BLOOM_K];
        bloom_probes(w->hashes[i], nbits, pos);
        for (int k = 0; k < BLOOM_K; k++)
            bloom[pos[k] / 8] |= (uint8_t)(1u << (pos[k] % 8));
    }
    tarn_put_u32(bloom + bloom_len - 4, tarn_crc32c(bloom, bloom_len - 4));
    bloom_off = w->pos;
    if ((rc = wbuf_add(w, bloom, bloom_len, err)) != TARN_OK
        || (rc = flush_wbuf(w, err)) != TARN_OK)
        goto fail;
    file_size = w->pos;

    memset(hdr, 0, sizeof(hdr));
    memcpy(hdr + H_MAGIC, MAGIC, 8);
    tarn_put_u32(hdr + H_VERSION, LAYER_FORMAT_VERSION);
    tarn_put_u32(hdr + H_KIND, (uint32_t)d.kind);
    memcpy(hdr + H_TENANT, w->o.tenant.b, 16);
    memcpy(hdr + H_TIMELINE, w->o.timeline.b, 16);
    memcpy(hdr + H_KEY_START, d.key_start.b, TKEY_LEN);
    memcpy(hdr + H_KEY_END, d.key_end.b, TKEY_LEN);
    tarn_put_u64(hdr + H_LSN_START, d.lsn_start);
    tarn_put_u64(hdr + H_LSN_END, d.lsn_end);
    tarn_put_u64(hdr + H_NVALUES, w->nidx);
    tarn_put_u64(hdr + H_NKEYS, w->nkeys);
    tarn_put_u64(hdr + H_DATA_OFF, HDR_SIZE);
    tarn_put_u64(hdr + H_DATA_LEN, data_len);
    tarn_put_u64(hdr + H_INDEX_OFF, index_off);
    tarn_put_u32(hdr + H_INDEX_BLOCKS, (uint32_t)nblocks);
    tarn_put_u32(hdr + H_INDEX_BLOCK_SIZE, BLOCK);
    tarn_put_u64(hdr + H_FENCE_OFF, fence_off);
    tarn_put_u32(hdr + H_FENCE_LEN, (uint32_t)fence_len);
    tarn_put_u32(hdr + H_BLOOM_K, BLOOM_K);
    tarn_put_u64(hdr + H_BLOOM_OFF, bloom_off);
    tarn_put_u64(hdr + H_BLOOM_LEN, bloom_len);
    tarn_put_u64(hdr + H_FILE_SIZE, file_size);
    tarn_put_u32(hdr + H_ZSTD_LEVEL,
                 w->o.codec == TARN_CODEC_ZSTD ? (uint32_t)w->o.zstd_level : 0);
    hdr[H_CODEC] = (uint8_t)w->o.codec;
    tarn_put_u32(hdr + H_CRC, tarn_crc32c(hdr, H_CRC));
    if ((rc = pwrite_all(w->fd, hdr, HDR_SIZE, 0, w->tmp, err)) != TARN_OK)
        goto fail;
    if (fsync(w->fd) != 0) {
        rc = tarn_err_errno(err, errno, "fsync %s", w->tmp);
        goto fail;
    }
    d.file_size = file_size;
    layer_name(&d, name);
    snprintf(path, sizeof(path), "%s/%s", w->dir, name);
    if (rename(w->tmp, path) != 0) {
        rc = tarn_err_errno(err, errno, "rename %s to %s", w->tmp, path);
        goto fail;
    }
    w->tmp[0] = '\0';
    if ((rc = tarn_fsync_dir(w->dir, err)) != TARN_OK) {
        unlink(path);
        goto fail;
    }
    free(block);
    free(fences);
    free(bloom);
    if (out != NULL)
        *out = d;
    if (name_out != NULL)
        memcpy(name_out, name, LAYER_NAME_MAX);
    layerw_abort(w); /* frees; the file is no longer temporary */
    return TARN_OK;
fail:
    free(block);
    free(fences);
    free(bloom);
    layerw_abort(w);
    return rc;
}

/* ---- reader ------------------------------------------------------------- */

struct layer {
    atomic_int refs;
    int fd;
    char name[LAYER_NAME_MAX];
    char path[PATH_MAX + LAYER_NAME_MAX];
    layer_desc d;
    pagecache *pc;
    uint64_t id;
    uint64_t data_end, index_off;
    uint32_t nblocks;
    uint8_t *fences;
    uint8_t *bloom;
    uint64_t bloom_bits;
};

static tarn_rc
pread_all(layer *l, void *buf, size_t len, uint64_t off, tarn_err *err)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = pread(l->fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return tarn_err_errno(err, errno, "read %s", l->path);
        }
        if (n == 0)
            return tarn_err_set(err, TARN_ECORRUPT,
                                "layer %s is truncated at offset %llu", l->path,
                                (unsigned long long)off);
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return TARN_OK;
}

#define CORRUPT(...) tarn_err_set(err, TARN_ECORRUPT, __VA_ARGS__)

tarn_rc
layer_open(const char *dir, const char *name, const layer_desc *expect,
           pagecache *pc, layer **out, tarn_err *err)
{
    layer *l = calloc(1, sizeof(*l));
    uint8_t hdr[HDR_SIZE];
    uint64_t fence_off, bloom_off, bloom_len, file_size, nvalues;
    uint32_t fence_len, bloom_k;
    struct stat st;
    tarn_rc rc;

    if (l == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    atomic_init(&l->refs, 1);
    l->pc = pc;
    snprintf(l->name, sizeof(l->name), "%s", name);
    snprintf(l->path, sizeof(l->path), "%s/%s", dir, name);
    l->fd = open(l->path, O_RDONLY | O_CLOEXEC);
    if (l->fd < 0) {
        int e = errno;
        if (e == ENOENT)
            rc = tarn_err_set(err, TARN_ENOTFOUND, "layer file %s is missing",
                              l->path);
        else
            rc = tarn_err_errno(err, e, "open layer %s", l->path);
        goto fail;
    }
    if (fstat(l->fd, &st) != 0) {
        rc = tarn_err_errno(err, errno, "stat %s", l->path);
        goto fail;
    }
    if ((uint64_t)st.st_size < HDR_SIZE) {
        rc = CORRUPT("layer %s is too short (%lld bytes) to be a layer",
                     l->path, (long long)st.st_size);
        goto fail;
    }
    if ((rc = pread_all(l, hdr, HDR_SIZE, 0, err)) != TARN_OK)
        goto fail;
    if (memcmp(hdr, MAGIC, 8) != 0) {
        rc = CORRUPT("%s is not a tarn layer file (bad magic)", l->path);
        goto fail;
    }
    if (tarn_get_u32(hdr + H_CRC) != tarn_crc32c(hdr, H_CRC)) {
        rc = CORRUPT("layer %s: header fails its CRC32C check", l->path);
        goto fail;
    }
    if (tarn_get_u32(hdr + H_VERSION) != LAYER_FORMAT_VERSION) {
        rc = tarn_err_set(err, TARN_EUNSUPPORTED,
                          "layer %s has format version %u; this tarnd reads "
                          "version %d",
                          l->path, tarn_get_u32(hdr + H_VERSION),
                          LAYER_FORMAT_VERSION);
        goto fail;
    }
    l->d.kind = (layer_kind)tarn_get_u32(hdr + H_KIND);
    memcpy(l->d.key_start.b, hdr + H_KEY_START, TKEY_LEN);
    memcpy(l->d.key_end.b, hdr + H_KEY_END, TKEY_LEN);
    l->d.lsn_start = tarn_get_u64(hdr + H_LSN_START);
    l->d.lsn_end = tarn_get_u64(hdr + H_LSN_END);
    nvalues = tarn_get_u64(hdr + H_NVALUES);
    l->d.nvalues = nvalues;
    l->data_end = HDR_SIZE + tarn_get_u64(hdr + H_DATA_LEN);
    l->index_off = tarn_get_u64(hdr + H_INDEX_OFF);
    l->nblocks = tarn_get_u32(hdr + H_INDEX_BLOCKS);
    fence_off = tarn_get_u64(hdr + H_FENCE_OFF);
    fence_len = tarn_get_u32(hdr + H_FENCE_LEN);
    bloom_k = tarn_get_u32(hdr + H_BLOOM_K);
    bloom_off = tarn_get_u64(hdr + H_BLOOM_OFF);
    bloom_len = tarn_get_u64(hdr + H_BLOOM_LEN);
    file_size = tarn_get_u64(hdr + H_FILE_SIZE);
    l->d.file_size = file_size;
    if ((l->d.kind != LAYER_DELTA && l->d.kind != LAYER_IMAGE)
        || tarn_get_u32(hdr + H_INDEX_BLOCK_SIZE) != BLOCK || bloom_k != BLOOM_K
        || file_size != (uint64_t)st.st_size || l->index_off < l->data_end
        || l->index_off % BLOCK != 0
        || l->index_off + (uint64_t)l->nblocks * BLOCK != fence_off
        || fence_len != (uint64_t)l->nblocks * FENCE + 4
        || fence_off + fence_len != bloom_off || bloom_len < 8 + 4
        || (bloom_len - 4) % 8 != 0 || bloom_off + bloom_len != file_size
        || nvalues > (uint64_t)l->nblocks * PER_BLOCK
        || (nvalues + PER_BLOCK - 1) / PER_BLOCK != l->nblocks) {
        rc = CORRUPT("layer %s: inconsistent header (file is %lld bytes)",
                     l->path, (long long)st.st_size);
        goto fail;
    }
    if (expect != NULL
        && (expect->kind != l->d.kind
            || !tkey_eq(&expect->key_start, &l->d.key_start)
            || !tkey_eq(&expect->key_end, &l->d.key_end)
            || expect->lsn_start != l->d.lsn_start
            || expect->lsn_end != l->d.lsn_end
            || (expect->file_size != 0
                && expect->file_size != l->d.file_size))) {
        rc = CORRUPT("layer %s does not match the layer map (kind, ranges or "
                     "size differ)",
                     l->path);
        goto fail;
    }
    l->fences = malloc(fence_len);
    l->bloom = malloc(bloom_len);
    if (l->fences == NULL || l->bloom == NULL) {
        rc = tarn_err_set(err, TARN_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = pread_all(l, l->fences, fence_len, fence_off, err)) != TARN_OK
        || (rc = pread_all(l, l->bloom, bloom_len, bloom_off, err)) != TARN_OK)
        goto fail;
    if (tarn_get_u32(l->fences + fence_len - 4)
        != tarn_crc32c(l->fences, fence_len - 4)) {
        rc = CORRUPT("layer %s: index fences fail their CRC32C check", l->path);
        goto fail;
    }
    if (tarn_get_u32(l->bloom + bloom_len - 4)
        != tarn_crc32c(l->bloom, bloom_len - 4)) {
        rc = CORRUPT("layer %s: Bloom filter fails its CRC32C check", l->path);
        goto fail;
    }
    l->bloom_bits = (bloom_len - 4) * 8;
    l->id = pagecache_new_id(pc);
    *out = l;
    return TARN_OK;
fail:
    layer_unref(l);
    return rc;
}

void
layer_ref(layer *l)
{
    atomic_fetch_add(&l->refs, 1);
}

void
layer_unref(layer *l)
{
    if (l == NULL || atomic_fetch_sub(&l->refs, 1) != 1)
        return;
    if (l->fd >= 0)
        close(l->fd);
    free(l->fences);
    free(l->bloom);
    free(l);
}

const layer_desc *
layer_get_desc(const layer *l)
{
    return &l->d;
}

const char *
layer_get_name(const layer *l)
{
    return l->name;
}

const char *
layer_get_path(const layer *l)
{
    return l->path;
}

bool
layer_may_contain(const layer *l, const tkey *k)
{
    uint64_t pos[BLOOM_K];

    if (l->nblocks == 0)
        return false;
    bloom_probes(tkey_hash(k), l->bloom_bits, pos);
    for (int i = 0; i < BLOOM_K; i++)
        if (!(l->bloom[pos[i] / 8] & (1u << (pos[i] % 8))))
            return false;
    return true;
}

static pc_key
index_key(const layer *l, uint32_t b)
{
    pc_key key;

    memset(&key, 0, sizeof(key));
    key.kind = PC_INDEX;
    key.id = l->id;
    key.num = b;
    return key;
}

/* Read index block @p b from the file and check it. */
static tarn_rc
read_block(layer *l, uint32_t b, uint8_t *buf, tarn_err *err)
{
    uint64_t off = l->index_off + (uint64_t)b * BLOCK;
    uint32_t n;
    tarn_rc rc;

    if ((rc = pread_all(l, buf, BLOCK, off, err)) != TARN_OK)
        return rc;
    if (tarn_get_u32(buf + BLOCK - 4) != tarn_crc32c(buf, BLOCK - 4))
        return CORRUPT("layer %s: index block %u (offset %llu) fails its "
                       "CRC32C check",
                       l->path, b, (unsigned long long)off);
    n = tarn_get_u32(buf);
    if (n == 0 || n > PER_BLOCK || (b + 1 < l->nblocks && n != PER_BLOCK))
        return CORRUPT("layer %s: index block %u holds %u entries", l->path, b,
                       n);
    return TARN_OK;
}

/* Read and check index block @p b, and cache it (through @p ring). */
static tarn_rc
read_cache_block(layer *l, pc_ring *ring, uint32_t b, uint8_t *buf,
                 tarn_err *err)
{
    pc_key key = index_key(l, b);
    tarn_rc rc;

    if ((rc = read_block(l, b, buf, err)) == TARN_OK)
        pagecache_put(l->pc, ring, &key, buf);
    return rc;
}

/* Load and check index block @p b (through the page cache). */
static tarn_rc
load_block(layer *l, pc_ring *ring, uint32_t b, uint8_t *buf, tarn_err *err)
{
    pc_key key = index_key(l, b);

    if (pagecache_get(l->pc, ring, &key, buf))
        return TARN_OK;
    return read_cache_block(l, ring, b, buf, err);
}

/* Compare (key, lsn) with an entry or fence at @p p (key, then LSN). */
static inline int
cmp_at(const tkey *k, tarn_lsn lsn, const uint8_t *p, size_t lsn_off)
{
    int c = memcmp(k->b, p, TKEY_LEN);
    tarn_lsn e;

    if (c != 0)
        return c;
    e = tarn_get_u64(p + lsn_off);
    return lsn < e ? -1 : lsn > e ? 1 : 0;
}

/* The last block whose first entry is <= (k, lsn); -1 if none. */
static int64_t
find_block(const layer *l, const tkey *k, tarn_lsn lsn)
{
    int64_t lo = 0, hi = l->nblocks; /* first fence > (k, lsn) */

    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (cmp_at(k, lsn, l->fences + mid * FENCE, TKEY_LEN) >= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo - 1;
}

/* Last entry in block @p buf that is <= (k, lsn); -1 if none. */
static int
find_entry(const uint8_t *buf, const tkey *k, tarn_lsn lsn)
{
    int lo = 0, hi = (int)tarn_get_u32(buf);

    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cmp_at(k, lsn, buf + 4 + mid * ENTRY, E_LSN) >= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo - 1;
}

static tarn_rc
entry_ref(layer *l, const uint8_t *e, vref *r, tarn_err *err)
{
    r->lsn = tarn_get_u64(e + E_LSN);
    r->will_init = (e[E_FLAGS] & TVAL_F_WILL_INIT) != 0;
    r->off = tarn_get_u64(e + E_OFF);
    r->len = tarn_get_u32(e + E_LEN);
    r->mem = NULL;
    r->file = l;
    if (r->off < HDR_SIZE || r->len < BLOB_HDR + BLOB_TAIL
        || r->len > l->data_end || r->off > l->data_end - r->len)
        return CORRUPT("layer %s: index entry points outside the data "
                       "(offset %llu, length %u)",
                       l->path, (unsigned long long)r->off, r->len);
    return TARN_OK;
}

/*
 * The entries of one key that a read needs, copied out of an index block:
 * from the newest at or below ceil (or from the block's end) down to the
 * block's first entry or the first entry of another key.  A read copies
 * these few entries instead of the whole 8 KiB block; copying blocks out
 * of the page cache was a fifth of a GetPage's CPU.
 */
typedef struct entry_run {
    const tkey *k;
    tarn_lsn ceil;
    bool from_end;
    bool more; /* the run reaches entry 0: it may go on in the block before */
    int n;     /* entries in e, newest first */
    uint8_t e[PER_BLOCK * ENTRY];
} entry_run;

static void
run_fill(const uint8_t *blk, void *arg)
{
    entry_run *r = arg;
    int i = r->from_end ? (int)tarn_get_u32(blk) - 1
                        : find_entry(blk, r->k, r->ceil);

    r->n = 0;
    r->more = false;
    for (; i >= 0; i--) {
        const uint8_t *e = blk + 4 + i * ENTRY;
        if (memcmp(e + E_KEY, r->k->b, TKEY_LEN) != 0)
            return;
        memcpy(r->e + r->n * ENTRY, e, ENTRY);
        r->n++;
    }
    r->more = true;
}

static tarn_rc
load_run(layer *l, pc_ring *ring, uint32_t b, entry_run *r, tarn_err *err)
{
    pc_key key = index_key(l, b);
    uint8_t buf[BLOCK];
    tarn_rc rc;

    if (pagecache_peek(l->pc, ring, &key, run_fill, r))
        return TARN_OK;
    if ((rc = read_cache_block(l, ring, b, buf, err)) != TARN_OK)
        return rc;
    run_fill(buf, r);
    return TARN_OK;
}

tarn_rc
layer_collect(layer *l, pc_ring *ring, const tkey *k, tarn_lsn floor,
              tarn_lsn ceil, vcollect *c, bool *present, tarn_err *err)
{
    entry_run run;
    int64_t b;
    tarn_rc rc;

    *present = false;
    if (ceil < floor || !layer_may_contain(l, k))
        return TARN_OK;
    if ((b = find_block(l, k, ceil)) < 0)
        return TARN_OK;
    run.k = k;
    run.ceil = ceil;
    run.from_end = false;
    for (;;) {
        if ((rc = load_run(l, ring, (uint32_t)b, &run, err)) != TARN_OK)
            return rc;
        for (int i = 0; i < run.n; i++) {
            vref r;
            *present = true;
            if ((rc = entry_ref(l, run.e + i * ENTRY, &r, err)) != TARN_OK)
                return rc;
            if (r.lsn < floor)
                return TARN_OK;
            if ((rc = vcollect_push(c, &r, err)) != TARN_OK)
                return rc;
            if (r.will_init)
                return TARN_OK;
        }
        /* The key's history may go on in the previous block. */
        if (!run.more || b == 0)
            return TARN_OK;
        b--;
        run.from_end = true;
    }
}

/*
 * A zstd decompression context per thread, kept for the thread's life
 * (freed by the key's destructor when a worker exits): ZSTD_decompress()
 * makes and frees one per call, which cost more than decompressing the
 * 8 KiB page itself (half of a base backup's time).
 */
static pthread_once_t dctx_once = PTHREAD_ONCE_INIT;
static pthread_key_t dctx_key;

static void
dctx_free(void *p)
{
    ZSTD_freeDCtx(p);
}

static void
dctx_key_make(void)
{
    (void)pthread_key_create(&dctx_key, dctx_free);
}

static ZSTD_DCtx *
thread_dctx(void)
{
    ZSTD_DCtx *d;

    pthread_once(&dctx_once, dctx_key_make);
    if ((d = pthread_getspecific(dctx_key)) == NULL
        && (d = ZSTD_createDCtx()) != NULL
        && pthread_setspecific(dctx_key, d) != 0) {
        ZSTD_freeDCtx(d);
        d = NULL;
    }
    return d;
}

tarn_rc
layer_read_value(layer *l, uint64_t off, uint32_t len, tbuf *out, tarn_err *err)
{
    uint8_t stackbuf[BLOCK + 64], *buf = stackbuf;
    uint32_t stored, raw;
    tarn_rc rc = TARN_OK;

    out->len = 0;
    if (len > sizeof(stackbuf) && (buf = malloc(len)) == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    if ((rc = pread_all(l, buf, len, off, err)) != TARN_OK)
        goto done;
    stored = tarn_get_u32(buf + 1);
    raw = tarn_get_u32(buf + 5);
    if (buf[0] > CODEC_LZ4 || (uint64_t)stored + BLOB_HDR + BLOB_TAIL != len
        || raw > MAX_BLOB
        || tarn_get_u32(buf + len - 4) != tarn_crc32c(buf, len - 4)) {
        rc = CORRUPT("layer %s: value at offset %llu fails its CRC32C check",
                     l->path, (unsigned long long)off);
        goto done;
    }
    if ((rc = tbuf_reserve(out, raw, err)) != TARN_OK)
        goto done;
    if (buf[0] == CODEC_RAW) {
        if (raw != stored) {
            rc = CORRUPT("layer %s: value at offset %llu has bad lengths",
                         l->path, (unsigned long long)off);
            goto done;
        }
        memcpy(out->p, buf + BLOB_HDR, raw);
    } else if (buf[0] == CODEC_LZ4) {
        int n = LZ4_decompress_safe((const char *)buf + BLOB_HDR,
                                    (char *)out->p, (int)stored, (int)raw);
        if (n < 0 || (uint32_t)n != raw) {
            rc = CORRUPT("layer %s: value at offset %llu does not "
                         "decompress",
                         l->path, (unsigned long long)off);
            goto done;
        }
    } else {
        ZSTD_DCtx *dctx = thread_dctx();
        size_t n;
        if (dctx == NULL) {
            rc = tarn_err_set(err, TARN_ENOMEM, "out of memory");
            goto done;
        }
        n = ZSTD_decompressDCtx(dctx, out->p, raw, buf + BLOB_HDR, stored);
        if (ZSTD_isError(n) || n != raw) {
            rc = CORRUPT("layer %s: value at offset %llu does not "
                         "decompress",
                         l->path, (unsigned long long)off);
            goto done;
        }
    }
    out->len = raw;
done:
    if (buf != stackbuf)
        free(buf);
    return rc;
}

tarn_rc
layer_each_key(layer *l, pc_ring *ring, const tkey *lo, const tkey *hi,
               tarn_rc (*fn)(void *arg, const tkey *k, tarn_err *err),
               void *arg, tarn_err *err)
{
    uint8_t buf[BLOCK];
    int64_t b = find_block(l, lo, 0);
    bool have_prev = false;
    tkey prev;
    tarn_rc rc;

    if (b < 0)
        b = 0;
    for (; b < l->nblocks; b++) {
        uint32_t n;
        if ((rc = load_block(l, ring, (uint32_t)b, buf, err)) != TARN_OK)
            return rc;
        n = tarn_get_u32(buf);
        for (uint32_t i = 0; i < n; i++) {
            const uint8_t *e = buf + 4 + i * ENTRY;
            tkey k;
            memcpy(k.b, e + E_KEY, TKEY_LEN);
            if (tkey_cmp(&k, lo) < 0)
                continue;
            if (tkey_cmp(&k, hi) > 0)
                return TARN_OK;
            if (have_prev && tkey_eq(&k, &prev))
                continue;
            prev = k;
            have_prev = true;
            if ((rc = fn(arg, &k, err)) != TARN_OK)
                return rc;
        }
    }
    return TARN_OK;
}

tarn_rc
layer_verify(layer *l, tarn_err *err)
{
    uint8_t buf[BLOCK];
    tbuf v = {0};
    tarn_rc rc = TARN_OK;

    for (uint32_t b = 0; b < l->nblocks && rc == TARN_OK; b++) {
        uint32_t n;
        if ((rc = read_block(l, b, buf, err)) != TARN_OK)
            break;
        n = tarn_get_u32(buf);
        for (uint32_t i = 0; i < n && rc == TARN_OK; i++) {
            vref r;
            if ((rc = entry_ref(l, buf + 4 + i * ENTRY, &r, err)) == TARN_OK)
                rc = layer_read_value(l, r.off, r.len, &v, err);
        }
    }
    tbuf_free(&v);
    return rc;
}
