/*
 * fuzz_layer.c - arbitrary bytes as a layer file: layer_open, layer_verify,
 * and every key's values through layer_collect and layer_read_value.
 *
 * Each input is tried twice: as it is (which exercises the checks that
 * stop a damaged file at its CRCs), and with every CRC the reader checks
 * recomputed: the header's, the fences', the Bloom filter's, each index
 * block's and each blob that an index entry points at.  The second form
 * is what a writer bug would produce, a file whose checksums are right and
 * whose structure is wrong; it lets the fuzzer reach the index and blob
 * parsing behind the CRCs.  Invariant: no crash, no sanitizer report, and
 * every failure is TARN_ECORRUPT, TARN_EUNSUPPORTED, TARN_ENOMEM or an I/O
 * error, never a wrong success (a value read back must have the length
 * its blob header promises).
 *
 * With FUZZ_LAYER_SEEDS=DIR in the environment the target instead writes a
 * few real layer files into DIR (tests/fuzz/run uses them as seeds) and
 * exits.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/core/crc32c.h"
#include "server/core/types.h"
#include "storage/key.h"
#include "storage/layerfile.h"
#include "storage/pagecache.h"
#include "storage/vref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The layout of docs/storage-format.md, as the harness needs it. */
#define HDR_SIZE  4096
#define BLOCK     8192
#define ENTRY     40
#define PER_BLOCK ((BLOCK - 8) / ENTRY)

static char dir[64];
static pagecache *pc;

static uint64_t
get64(const uint8_t *p)
{
    return tarn_get_u64(p);
}

/* Set the CRC32C in the last 4 bytes of [off, off + len) if in bounds. */
static void
fix_crc(uint8_t *f, size_t size, uint64_t off, uint64_t len)
{
    if (len < 4 || off > size || len > size - off)
        return;
    tarn_put_u32(f + off + len - 4, tarn_crc32c(f + off, (size_t)(len - 4)));
}

static void
fix_all(uint8_t *f, size_t size)
{
    uint64_t index_off = get64(f + 136), fence_off = get64(f + 152);
    uint64_t bloom_off = get64(f + 168), bloom_len = get64(f + 176);
    uint32_t nblocks = tarn_get_u32(f + 144), fence_len = tarn_get_u32(f + 160);

    tarn_put_u64(f + 184, size);
    for (uint64_t b = 0; b < nblocks && b < 64; b++) {
        uint64_t boff = index_off + b * BLOCK;
        uint32_t n;
        if (boff > size || BLOCK > size - boff)
            break;
        n = tarn_get_u32(f + boff);
        for (uint32_t i = 0; i < n && i < PER_BLOCK; i++) {
            const uint8_t *e = f + boff + 4 + (size_t)i * ENTRY;
            fix_crc(f, size, get64(e + 28), tarn_get_u32(e + 36));
        }
        fix_crc(f, size, boff, BLOCK);
    }
    fix_crc(f, size, fence_off, fence_len);
    fix_crc(f, size, bloom_off, bloom_len);
    fix_crc(f, size, 0, HDR_SIZE);
}

static void
expect_failure_kind(tarn_rc rc)
{
    if (rc != TARN_ECORRUPT && rc != TARN_EUNSUPPORTED && rc != TARN_ENOMEM
        && rc != TARN_EIO && rc != TARN_ENOTFOUND)
        abort();
}

typedef struct walk {
    layer *l;
    tbuf v;
    unsigned keys;
} walk;

static tarn_rc
on_key(void *arg, const tkey *k, tarn_err *err)
{
    walk *w = arg;
    vcollect c;
    bool present;
    tarn_rc rc;

    if (++w->keys > 256)
        return TARN_OK;
    vcollect_init(&c);
    rc = layer_collect(w->l, NULL, k, 0, UINT64_MAX, &c, &present, err);
    for (size_t i = 0; rc == TARN_OK && i < c.n; i++) {
        rc = layer_read_value(w->l, c.v[i].off, c.v[i].len, &w->v, err);
        /* A blob is its 9-byte header, the stored bytes and a CRC. */
        if (rc == TARN_OK && w->v.len > 64u << 20)
            abort();
    }
    vcollect_free(&c);
    return rc;
}

static void
try_file(const uint8_t *data, size_t size)
{
    char path[128];
    tarn_err err = {0};
    layer *l = NULL;
    tarn_rc rc;
    FILE *f;

    snprintf(path, sizeof(path), "%s/layer", dir);
    f = fopen(path, "wb");
    if (f == NULL)
        abort();
    if (size > 0 && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
    rc = layer_open(dir, "layer", NULL, pc, &l, &err);
    if (rc != TARN_OK) {
        expect_failure_kind(rc);
        return;
    }
    rc = layer_verify(l, &err);
    if (rc != TARN_OK)
        expect_failure_kind(rc);
    {
        /* The key walk goes through a ring, as an image job's does; the
         * reads of each key through the shared cache policy. */
        walk w = {.l = l};
        pc_ring *ring;
        tkey lo, hi;
        if (pagecache_ring_create(pc, 4, &ring, &err) != TARN_OK)
            abort();
        memset(lo.b, 0, sizeof(lo.b));
        memset(hi.b, 0xff, sizeof(hi.b));
        rc = layer_each_key(l, ring, &lo, &hi, on_key, &w, &err);
        if (rc != TARN_OK)
            expect_failure_kind(rc);
        pagecache_ring_destroy(ring);
        tbuf_free(&w.v);
    }
    layer_unref(l);
}

/* Real layer files as seeds: small, with raw and compressed values. */
static void
write_seeds(const char *out)
{
    static const struct {
        layer_kind kind;
        int nkeys, nversions;
    } seeds[] = {
        {LAYER_DELTA, 3, 4}, {LAYER_IMAGE, 40, 1}, {LAYER_DELTA, 120, 2}};
    tarn_err err = {0};
    uint8_t val[8192];

    mkdir(out, 0755);
    for (size_t s = 0; s < sizeof(seeds) / sizeof(seeds[0]); s++) {
        layerw_opts o = {.dir = out,
                         .kind = seeds[s].kind,
                         .lsn_start = 0x1000000,
                         .lsn_end = seeds[s].kind == LAYER_IMAGE ? 0x1000001
                                                                 : 0x2000000,
                         .codec = (tarn_codec)((s + 1) % 3)};
        layer_desc d;
        char name[LAYER_NAME_MAX];
        layerw *w;
        if (layerw_create(&o, &w, &err) != TARN_OK)
            goto fail;
        for (int k = 0; k < seeds[s].nkeys; k++) {
            tkey key = tkey_rel_block(1663, 5, 16384, 0, (uint32_t)k);
            for (int v = 0; v < seeds[s].nversions; v++) {
                size_t len = (k + v) % 3 == 0 ? 8192 : 10 + (size_t)k;
                memset(val, 'a' + v, sizeof(val));
                val[0] = (uint8_t)k;
                if (layerw_add(w, &key, 0x1000000 + (tarn_lsn)v * 0x100, val,
                               len, v == 0, &err)
                    != TARN_OK)
                    goto fail;
            }
        }
        if (layerw_finish(w, NULL, NULL, &d, name, &err) != TARN_OK)
            goto fail;
        printf("seed %s/%s\n", out, name);
    }
    exit(0);
fail:
    fprintf(stderr, "fuzz_layer: writing seeds: %s\n", err.msg);
    exit(1);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *seeds = getenv("FUZZ_LAYER_SEEDS");
    tarn_err err = {0};

    (void)argc;
    (void)argv;
    if (seeds != NULL)
        write_seeds(seeds);
    snprintf(dir, sizeof(dir), "/tmp/fuzz_layer-XXXXXX");
    if (mkdtemp(dir) == NULL || pagecache_create(1 << 20, &pc, &err) != 0)
        abort();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy;

    try_file(data, size);
    if (size < HDR_SIZE || size > (4u << 20))
        return 0;
    copy = malloc(size);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    fix_all(copy, size);
    try_file(copy, size);
    free(copy);
    return 0;
}
