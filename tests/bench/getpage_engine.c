/*
 * getpage_engine.c - get_page straight into the storage engine: calls per
 * second and latency percentiles, with no network or protocol in between.
 *
 *   getpage_engine tarn DATA_DIR TENANT TIMELINE SPC/DB/REL LSN|latest
 *                  cold|warm COUNT [WARM_SET] [CACHE_MB]
 *   getpage_engine file PATH cold|warm COUNT [WARM_SET]
 *
 * "tarn" opens a stopped tarnd's data directory the way tarnd does
 * (data directory lock, catalog, repo_create: layer files checked) and
 * calls repo_get_page() for random blocks of the relation's main fork.
 * "file" is the baseline: pread() of random 8 KiB blocks of the same
 * relation's file in the compute's data directory, which is what a
 * monolithic Postgres does on a shared-buffers miss.
 *
 * cold: COUNT distinct random blocks, each read once, in a fresh process
 * (tarn's page cache is empty), after POSIX_FADV_DONTNEED on every file
 * the reads can touch, so that the kernel's cache is dropped too (clean
 * pages only; the files were fsynced).  warm: WARM_SET distinct random
 * blocks are read once untimed, then COUNT timed reads pick among them
 * (the set must fit the page cache: CACHE_MB, default 128).
 *
 * Output: one line, "calls/s p50_us p99_us", parsed by getpage_engine.py.
 */
#include <dirent.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "server/core/config.h"
#include "server/core/log.h"
#include "server/core/types.h"
#include "server/core/wpool.h"
#include "storage/datadir.h"
#include "storage/repo.h"

#define BLCKSZ 8192

static void
die(const char *what, const tarn_err *err)
{
    fprintf(stderr, "getpage_engine: %s: %s\n", what,
            err != NULL ? err->msg : "failed");
    exit(1);
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* xorshift64*: reproducible random numbers without libc state. */
static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/* @p n distinct blocks out of @p nblocks, in random order. */
static uint32_t *
pick_distinct(uint32_t nblocks, size_t n, uint64_t *seed)
{
    uint32_t *all = malloc(sizeof(uint32_t) * nblocks);
    if (all == NULL || n > nblocks)
        die("pick", NULL);
    for (uint32_t i = 0; i < nblocks; i++)
        all[i] = i;
    for (size_t i = 0; i < n; i++) {
        size_t j = i + rnd(seed) % (nblocks - i);
        uint32_t t = all[i];
        all[i] = all[j];
        all[j] = t;
    }
    return all;
}

static void
drop_os_cache(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
}

/* Every regular file under @p dir (layer files), recursively. */
static void
drop_tree_cache(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[4096];
    struct stat st;

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (stat(p, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            drop_tree_cache(p);
        else if (S_ISREG(st.st_mode))
            drop_os_cache(p);
    }
    closedir(d);
}

typedef int (*read_fn)(void *arg, uint32_t blk, uint8_t *page);

/* Time @p count reads; print calls/s, p50 and p99. */
static void
measure(read_fn fn, void *arg, uint32_t nblocks, const char *mode, size_t count,
        size_t warm_set)
{
    uint64_t seed = 0x9E3779B97F4A7C15ULL;
    uint8_t page[BLCKSZ];
    int64_t *lat = malloc(sizeof(int64_t) * count), t0, total;
    uint32_t *blocks;
    bool cold = strcmp(mode, "cold") == 0;

    if (lat == NULL)
        die("out of memory", NULL);
    if (cold) {
        if (count > nblocks)
            count = nblocks;
        blocks = pick_distinct(nblocks, count, &seed);
    } else {
        if (warm_set > nblocks)
            warm_set = nblocks;
        blocks = pick_distinct(nblocks, warm_set, &seed);
        for (size_t i = 0; i < warm_set; i++)
            if (fn(arg, blocks[i], page) != 0)
                exit(1);
    }
    total = tarn_mono_us();
    for (size_t i = 0; i < count; i++) {
        uint32_t b = cold ? blocks[i] : blocks[rnd(&seed) % warm_set];
        t0 = tarn_mono_us();
        if (fn(arg, b, page) != 0)
            exit(1);
        lat[i] = tarn_mono_us() - t0;
    }
    total = tarn_mono_us() - total;
    qsort(lat, count, sizeof(int64_t), cmp_i64);
    printf("%.0f %lld %lld\n", count * 1e6 / (double)(total ? total : 1),
           (long long)lat[count / 2], (long long)lat[count * 99 / 100]);
    free(lat);
    free(blocks);
}

/* ---- tarn --------------------------------------------------------------- */

typedef struct tarn_ctx {
    repo *r;
    tarn_id tenant, tl;
    repo_rel rel;
    bool latest;
    tarn_lsn lsn;
} tarn_ctx;

static int
tarn_read(void *arg, uint32_t blk, uint8_t *page)
{
    tarn_ctx *c = arg;
    tarn_err err = {0};
    tarn_lsn at;

    if (repo_get_page(c->r, &c->tenant, &c->tl, &c->rel, blk, c->latest, c->lsn,
                      page, &at, &err)
        != TARN_OK) {
        fprintf(stderr, "getpage_engine: block %u: %s\n", blk, err.msg);
        return -1;
    }
    return 0;
}

static tarn_rc
no_wal_read(void *arg, const tarn_id *tenant, const tarn_id *tl, tarn_lsn lsn,
            uint8_t *buf, size_t len, tarn_err *err)
{
    (void)arg, (void)tenant, (void)tl, (void)lsn, (void)buf, (void)len;
    return tarn_err_set(err, TARN_EUNAVAIL, "no WAL service in a benchmark");
}

static void
no_wal_trim(void *arg, const tarn_id *tenant, const tarn_id *tl,
            tarn_lsn keep_from)
{
    (void)arg, (void)tenant, (void)tl, (void)keep_from;
}

static int
run_tarn(int argc, char **argv)
{
    tarn_config cfg;
    tarn_err err = {0};
    datadir *dir = NULL;
    catalog *cat = NULL;
    catalog_opts co = {0};
    struct event_base *base;
    wpool *pool = NULL;
    tlog *lg = NULL;
    repo_opts ro = {0};
    tarn_ctx c = {0};
    char tlpath[4096], *s;
    bool exists;
    uint32_t nblocks;
    tarn_lsn at;

    if (argc < 9)
        return 2;
    if (tarn_id_parse(argv[3], &c.tenant, &err) != TARN_OK
        || tarn_id_parse(argv[4], &c.tl, &err) != TARN_OK)
        die("id", &err);
    c.rel.spc = (uint32_t)strtoul(argv[5], &s, 10);
    c.rel.db = (uint32_t)strtoul(s + 1, &s, 10);
    c.rel.rel = (uint32_t)strtoul(s + 1, NULL, 10);
    c.latest = strcmp(argv[6], "latest") == 0;
    if (!c.latest && tarn_lsn_parse(argv[6], &c.lsn, &err) != TARN_OK)
        die("lsn", &err);
    if (cfg_defaults(&cfg, &err) != TARN_OK)
        die("config", &err);
    if (argc > 10) {
        char mb[32];
        snprintf(mb, sizeof(mb), "%sMB", argv[10]);
        if (cfg_set(&cfg, "page_cache_size", mb, &err) != TARN_OK)
            die("page_cache_size", &err);
    }
    if (tlog_create(NULL, TLOG_WARN, &lg, &err) != TARN_OK)
        die("log", &err);
    if (datadir_open(argv[2], &dir, &err) != TARN_OK)
        die("data directory", &err);
    co.path = datadir_catalog_path(dir);
    co.map_size = (size_t)cfg.catalog_map_size;
    if (catalog_open(&co, &cat, &err) != TARN_OK)
        die("catalog", &err);
    if (evthread_use_pthreads() != 0 || (base = event_base_new()) == NULL)
        die("libevent", NULL);
    if (wpool_create(base, 1, &pool, &err) != TARN_OK)
        die("worker pool", &err);
    ro.base = base;
    ro.pool = pool;
    ro.cat = cat;
    ro.log = lg;
    ro.data_dir = datadir_path(dir);
    ro.cfg = &cfg;
    ro.hooks.wal_read = no_wal_read;
    ro.hooks.wal_trim = no_wal_trim;
    if (repo_create(&ro, &c.r, &err) != TARN_OK)
        die("repo", &err);
    if (repo_rel_size(c.r, &c.tenant, &c.tl, &c.rel, c.latest, c.lsn, &exists,
                      &nblocks, &at, &err)
        != TARN_OK)
        die("relation size", &err);
    if (!exists || nblocks == 0)
        die("the relation is empty", NULL);
    fprintf(stderr, "getpage_engine: %u blocks at %s\n", nblocks,
            tarn_lsn_format(at, (char[TARN_LSN_STRLEN]){0}));
    if (strcmp(argv[7], "cold") == 0) {
        snprintf(tlpath, sizeof(tlpath), "%s/tenants", datadir_path(dir));
        drop_tree_cache(tlpath);
    }
    measure(tarn_read, &c, nblocks, argv[7], strtoul(argv[8], NULL, 10),
            argc > 9 ? strtoul(argv[9], NULL, 10) : 10000);
    repo_stop(c.r);
    wpool_close(pool);
    repo_destroy(c.r);
    wpool_destroy(pool);
    event_base_free(base);
    catalog_close(cat);
    datadir_close(dir);
    tlog_destroy(lg);
    cfg_free(&cfg);
    return 0;
}

/* ---- the file baseline -------------------------------------------------- */

static int
file_read(void *arg, uint32_t blk, uint8_t *page)
{
    int fd = *(int *)arg;

    if (pread(fd, page, BLCKSZ, (off_t)blk * BLCKSZ) != BLCKSZ) {
        perror("getpage_engine: pread");
        return -1;
    }
    return 0;
}

static int
run_file(int argc, char **argv)
{
    struct stat st;
    int fd;

    if (argc < 5)
        return 2;
    if (strcmp(argv[3], "cold") == 0)
        drop_os_cache(argv[2]);
    fd = open(argv[2], O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        perror(argv[2]);
        return 1;
    }
    measure(file_read, &fd, (uint32_t)(st.st_size / BLCKSZ), argv[3],
            strtoul(argv[4], NULL, 10),
            argc > 5 ? strtoul(argv[5], NULL, 10) : 10000);
    close(fd);
    return 0;
}

int
main(int argc, char **argv)
{
    int rc = 2;

    if (argc > 1 && strcmp(argv[1], "tarn") == 0)
        rc = run_tarn(argc, argv);
    else if (argc > 1 && strcmp(argv[1], "file") == 0)
        rc = run_file(argc, argv);
    if (rc == 2)
        fprintf(stderr, "usage: getpage_engine tarn DATA_DIR TENANT TIMELINE "
                        "SPC/DB/REL LSN|latest cold|warm COUNT [WARM_SET] "
                        "[CACHE_MB]\n"
                        "       getpage_engine file PATH cold|warm COUNT "
                        "[WARM_SET]\n");
    return rc;
}
