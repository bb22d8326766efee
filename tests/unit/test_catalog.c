/*
 * test_catalog.c - the LMDB catalog: create, branch, delete, the children
 * rule, reopen, map growth, checksums, the schema version, the layer map
 * and commit timestamps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "server/core/crc32c.h"

typedef struct fixture {
    char dir[64];
    catalog *cat;
} fixture;

static catalog *
open_at(const char *dir, size_t map)
{
    catalog_opts o = {dir, map, 0};
    catalog *c = NULL;
    tarn_err e;

    if (catalog_open(&o, &c, &e) != TARN_OK)
        fail_msg("catalog_open: %s", e.msg);
    return c;
}

static int
setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));

    snprintf(f->dir, sizeof(f->dir), "/tmp/tarn-cat-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    f->cat = open_at(f->dir, 1 << 20);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];

    catalog_close(f->cat);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static tarn_id
mkid(int n)
{
    tarn_id id;

    memset(&id, 0, sizeof(id));
    id.b[0] = 0xab;
    id.b[14] = (uint8_t)(n >> 8);
    id.b[15] = (uint8_t)n;
    return id;
}

static void
make_tenant(catalog *c, int n, const char *name)
{
    catalog_tenant t = {0};
    tarn_err e;

    t.id = mkid(n);
    if (name)
        snprintf(t.name, sizeof(t.name), "%s", name);
    t.created_at = 1000 + n;
    if (catalog_tenant_create(c, &t, &e) != TARN_OK)
        fail_msg("tenant create: %s", e.msg);
}

static tarn_rc
make_timeline(catalog *c, int tenant, int id, const char *name, int ancestor,
              bool has_lsn, tarn_lsn lsn, catalog_timeline *out, tarn_err *e)
{
    catalog_timeline_new n = {0};

    n.tenant_id = mkid(tenant);
    n.timeline_id = mkid(id);
    n.name = name;
    if (ancestor >= 0) {
        n.has_ancestor = true;
        n.ancestor_id = mkid(ancestor);
        n.has_ancestor_lsn = has_lsn;
        n.ancestor_lsn = lsn;
    }
    n.created_at = 42;
    return catalog_timeline_create(c, &n, out, e);
}

static void
verify_ok(catalog *c, size_t tenants, size_t timelines)
{
    catalog_summary s;
    tarn_err e;

    if (catalog_verify(c, &s, &e) != TARN_OK)
        fail_msg("verify: %s", e.msg);
    assert_int_equal(s.tenants, tenants);
    assert_int_equal(s.timelines, timelines);
}

static void
test_tenants(void **state)
{
    fixture *f = *state;
    catalog_tenant t = {0}, *list;
    size_t n;
    tarn_err e;

    make_tenant(f->cat, 1, "default");
    make_tenant(f->cat, 2, NULL);
    assert_int_equal(catalog_tenant_get(f->cat, &(tarn_id){{0}}, &t, &e),
                     TARN_ENOTFOUND);
    assert_non_null(strstr(e.msg, "not found"));
    tarn_id id1 = mkid(1);
    assert_int_equal(catalog_tenant_get(f->cat, &id1, &t, &e), TARN_OK);
    assert_string_equal(t.name, "default");
    assert_true(t.created_at == 1001);
    assert_int_equal(catalog_tenant_find(f->cat, "default", &t, &e), TARN_OK);
    assert_true(tarn_id_equal(&t.id, &id1));
    assert_int_equal(catalog_tenant_find(f->cat, "nope", &t, &e),
                     TARN_ENOTFOUND);

    /* Duplicate id, duplicate name, bad name. */
    t.id = mkid(1);
    t.name[0] = '\0';
    assert_int_equal(catalog_tenant_create(f->cat, &t, &e), TARN_EEXIST);
    assert_non_null(strstr(e.msg, "already exists"));
    t.id = mkid(3);
    snprintf(t.name, sizeof(t.name), "default");
    assert_int_equal(catalog_tenant_create(f->cat, &t, &e), TARN_EEXIST);
    assert_non_null(strstr(e.msg, "named 'default'"));
    snprintf(t.name, sizeof(t.name), "bad name");
    assert_int_equal(catalog_tenant_create(f->cat, &t, &e), TARN_EINVAL);
    /* Nothing of the failed creations is left behind. */
    assert_int_equal(catalog_tenant_list(f->cat, &list, &n, &e), TARN_OK);
    assert_int_equal(n, 2);
    free(list);
    verify_ok(f->cat, 2, 0);

    assert_int_equal(catalog_tenant_delete(f->cat, &id1, &e), TARN_OK);
    assert_int_equal(catalog_tenant_delete(f->cat, &id1, &e), TARN_ENOTFOUND);
    assert_int_equal(catalog_tenant_find(f->cat, "default", &t, &e),
                     TARN_ENOTFOUND);
    /* The name is free again. */
    make_tenant(f->cat, 4, "default");
    verify_ok(f->cat, 2, 0);
}

static void
test_names(void **state)
{
    tarn_err e;

    (void)state;
    assert_int_equal(catalog_name_check("main", &e), TARN_OK);
    assert_int_equal(catalog_name_check("Feature-1.2_x", &e), TARN_OK);
    assert_int_equal(catalog_name_check("", &e), TARN_EINVAL);
    assert_int_equal(catalog_name_check("-x", &e), TARN_EINVAL);
    assert_int_equal(catalog_name_check(".x", &e), TARN_EINVAL);
    assert_int_equal(catalog_name_check("a/b", &e), TARN_EINVAL);
    assert_int_equal(catalog_name_check("a b", &e), TARN_EINVAL);
    assert_int_equal(catalog_name_check("0123456789abcdef0123456789abcdef", &e),
                     TARN_EINVAL);
    assert_non_null(strstr(e.msg, "read as an id"));
    char longname[80];
    memset(longname, 'a', sizeof(longname));
    longname[64] = '\0';
    assert_int_equal(catalog_name_check(longname, &e), TARN_EINVAL);
    longname[63] = '\0';
    assert_int_equal(catalog_name_check(longname, &e), TARN_OK);
}

static void
test_branches(void **state)
{
    fixture *f = *state;
    catalog_timeline tl, root;
    tarn_err e;

    make_tenant(f->cat, 1, "t");
    assert_int_equal(
        make_timeline(f->cat, 1, 10, "main", -1, false, 0, &root, &e), TARN_OK);
    assert_int_equal(root.state, CATALOG_TL_EMPTY);
    assert_false(root.has_ancestor);
    assert_true(root.last_record_lsn == 0);

    /* Unknown tenant, unknown ancestor, own ancestor, duplicates. */
    assert_int_equal(make_timeline(f->cat, 9, 11, NULL, -1, false, 0, NULL, &e),
                     TARN_ENOTFOUND);
    assert_non_null(strstr(e.msg, "tenant"));
    assert_int_equal(make_timeline(f->cat, 1, 11, NULL, 99, false, 0, NULL, &e),
                     TARN_ENOTFOUND);
    assert_non_null(strstr(e.msg, "ancestor timeline"));
    assert_int_equal(make_timeline(f->cat, 1, 11, NULL, 11, false, 0, NULL, &e),
                     TARN_EINVAL);
    assert_int_equal(make_timeline(f->cat, 1, 10, NULL, -1, false, 0, NULL, &e),
                     TARN_EEXIST);
    assert_int_equal(
        make_timeline(f->cat, 1, 11, "main", -1, false, 0, NULL, &e),
        TARN_EEXIST);
    assert_non_null(strstr(e.msg, "branch named 'main'"));

    /* Give main some history, then branch within and outside it. */
    root.state = CATALOG_TL_ACTIVE;
    root.start_lsn = 0x1000;
    root.last_record_lsn = 0x5000;
    assert_int_equal(catalog_timeline_update(f->cat, &root, &e), TARN_OK);
    assert_int_equal(make_timeline(f->cat, 1, 11, "dev", 10, false, 0, &tl, &e),
                     TARN_OK);
    assert_true(tl.ancestor_lsn == 0x5000); /* default: ancestor's last */
    assert_int_equal(tl.state, CATALOG_TL_ACTIVE);
    assert_true(tl.start_lsn == 0x5000 && tl.last_record_lsn == 0x5000);
    assert_int_equal(
        make_timeline(f->cat, 1, 12, "old", 10, true, 0x2000, &tl, &e),
        TARN_OK);
    assert_true(tl.ancestor_lsn == 0x2000);
    assert_int_equal(
        make_timeline(f->cat, 1, 13, "future", 10, true, 0x5001, NULL, &e),
        TARN_EINVAL);
    assert_non_null(strstr(e.msg, "beyond the ancestor's last_record_lsn"));
    assert_int_equal(
        make_timeline(f->cat, 1, 13, "past", 10, true, 0xfff, NULL, &e),
        TARN_EINVAL);
    assert_non_null(strstr(e.msg, "before the start"));
    /* A branch of a branch cannot go below the branch point. */
    assert_int_equal(
        make_timeline(f->cat, 1, 14, "deep", 12, true, 0x1fff, NULL, &e),
        TARN_EINVAL);
    assert_int_equal(
        make_timeline(f->cat, 1, 14, "deep", 12, true, 0x2000, &tl, &e),
        TARN_OK);
    assert_int_equal(
        catalog_timeline_find(f->cat, &(tarn_id){{0}}, "deep", &tl, &e),
        TARN_ENOTFOUND);
    tarn_id t1 = mkid(1);
    assert_int_equal(catalog_timeline_find(f->cat, &t1, "deep", &tl, &e),
                     TARN_OK);
    {
        tarn_id want = mkid(12);
        assert_true(tarn_id_equal(&tl.ancestor_id, &want));
    }
    verify_ok(f->cat, 1, 4);
}

static void
test_children_rule(void **state)
{
    fixture *f = *state;
    tarn_id t1 = mkid(1), id;
    catalog_timeline *list;
    size_t n;
    tarn_err e;

    make_tenant(f->cat, 1, NULL);
    assert_int_equal(
        make_timeline(f->cat, 1, 1, "main", -1, false, 0, NULL, &e), TARN_OK);
    assert_int_equal(make_timeline(f->cat, 1, 2, "a", 1, false, 0, NULL, &e),
                     TARN_OK);
    assert_int_equal(make_timeline(f->cat, 1, 3, "b", 1, false, 0, NULL, &e),
                     TARN_OK);
    assert_int_equal(make_timeline(f->cat, 1, 4, NULL, 3, false, 0, NULL, &e),
                     TARN_OK);
    id = mkid(1);
    assert_int_equal(catalog_timeline_delete(f->cat, &t1, &id, &e),
                     TARN_ECONFLICT);
    assert_non_null(strstr(e.msg, "2 child branches"));
    assert_non_null(strstr(e.msg, "a (ab"));
    assert_non_null(strstr(e.msg, "b (ab"));
    id = mkid(3);
    assert_int_equal(catalog_timeline_delete(f->cat, &t1, &id, &e),
                     TARN_ECONFLICT);
    assert_non_null(strstr(e.msg, "1 child branch:"));
    id = mkid(4);
    assert_int_equal(catalog_timeline_delete(f->cat, &t1, &id, &e), TARN_OK);
    assert_int_equal(catalog_timeline_delete(f->cat, &t1, &id, &e),
                     TARN_ENOTFOUND);
    id = mkid(3);
    assert_int_equal(catalog_timeline_delete(f->cat, &t1, &id, &e), TARN_OK);
    /* The name of a deleted branch can be used again. */
    assert_int_equal(make_timeline(f->cat, 1, 5, "b", 1, false, 0, NULL, &e),
                     TARN_OK);
    assert_int_equal(catalog_timeline_list(f->cat, &t1, &list, &n, &e),
                     TARN_OK);
    assert_int_equal(n, 3);
    free(list);
    verify_ok(f->cat, 1, 3);
}

/* Deleting a tenant removes all of its timelines, and only its own. */
static void
test_tenant_delete_many(void **state)
{
    fixture *f = *state;
    tarn_id t1 = mkid(1), t2 = mkid(2);
    catalog_timeline *list;
    size_t n;
    tarn_err e;
    char name[32];

    make_tenant(f->cat, 1, NULL);
    make_tenant(f->cat, 2, NULL);
    for (int i = 0; i < 700; i++) {
        snprintf(name, sizeof(name), "b%d", i);
        assert_int_equal(
            make_timeline(f->cat, 1, i, name, i ? 0 : -1, false, 0, NULL, &e),
            TARN_OK);
    }
    assert_int_equal(make_timeline(f->cat, 2, 0, "b0", -1, false, 0, NULL, &e),
                     TARN_OK);
    verify_ok(f->cat, 2, 701);
    assert_int_equal(catalog_tenant_delete(f->cat, &t1, &e), TARN_OK);
    verify_ok(f->cat, 1, 1);
    assert_int_equal(catalog_timeline_list(f->cat, &t1, &list, &n, &e),
                     TARN_ENOTFOUND);
    assert_int_equal(catalog_timeline_list(f->cat, &t2, &list, &n, &e),
                     TARN_OK);
    assert_int_equal(n, 1);
    free(list);
}

static void
test_reopen(void **state)
{
    fixture *f = *state;
    catalog_timeline tl;
    tarn_id t1 = mkid(1), id = mkid(7);
    tarn_err e;

    make_tenant(f->cat, 1, "keep");
    assert_int_equal(
        make_timeline(f->cat, 1, 7, "main", -1, false, 0, NULL, &e), TARN_OK);
    catalog_close(f->cat);
    f->cat = open_at(f->dir, 1 << 20);
    assert_int_equal(catalog_timeline_get(f->cat, &t1, &id, &tl, &e), TARN_OK);
    assert_string_equal(tl.name, "main");
    assert_true(tl.created_at == 42);
    verify_ok(f->cat, 1, 1);
}

/* A tiny map fills up again and again; every write survives the growth. */
static void
test_map_growth(void **state)
{
    fixture *f = *state;
    catalog_stats st;
    catalog_timeline *list;
    tarn_id t1 = mkid(1);
    size_t n;
    tarn_err e;
    char name[40];

    catalog_close(f->cat);
    f->cat = open_at(f->dir, 64 * 1024);
    make_tenant(f->cat, 1, NULL);
    for (int i = 0; i < 4000; i++) {
        snprintf(name, sizeof(name), "branch-with-a-long-name-%d", i);
        if (make_timeline(f->cat, 1, i, name, -1, false, 0, NULL, &e)
            != TARN_OK)
            fail_msg("create %d: %s", i, e.msg);
    }
    catalog_get_stats(f->cat, &st);
    assert_true(st.map_resizes >= 3);
    assert_true(st.map_size > 64 * 1024);
    assert_true(st.used_bytes <= st.map_size);
    assert_int_equal(catalog_timeline_list(f->cat, &t1, &list, &n, &e),
                     TARN_OK);
    assert_int_equal(n, 4000);
    free(list);
    /* Reopening with the small size keeps the grown map. */
    catalog_close(f->cat);
    f->cat = open_at(f->dir, 64 * 1024);
    verify_ok(f->cat, 1, 4000);
}

/* Change one byte of a stored record behind the catalog's back. */
static void
poke_record(const char *dir, const char *dbname, size_t which_byte)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val k, v;
    uint8_t copy[2048];

    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 8);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, dbname, 0, &dbi), 0);
    assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
    assert_int_equal(mdb_cursor_get(cur, &k, &v, MDB_FIRST), 0);
    assert_true(v.mv_size <= sizeof(copy) && which_byte < v.mv_size);
    memcpy(copy, v.mv_data, v.mv_size);
    copy[which_byte] ^= 0x01;
    v.mv_data = copy;
    assert_int_equal(mdb_cursor_put(cur, &k, &v, MDB_CURRENT), 0);
    mdb_cursor_close(cur);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void
test_checksum(void **state)
{
    fixture *f = *state;
    catalog_timeline tl;
    catalog_summary s;
    tarn_id t1 = mkid(1), id = mkid(5);
    tarn_err e;

    make_tenant(f->cat, 1, NULL);
    assert_int_equal(
        make_timeline(f->cat, 1, 5, "main", -1, false, 0, NULL, &e), TARN_OK);
    catalog_close(f->cat);
    poke_record(f->dir, "timelines", 40);
    f->cat = open_at(f->dir, 1 << 20);
    assert_int_equal(catalog_timeline_get(f->cat, &t1, &id, &tl, &e),
                     TARN_ECORRUPT);
    assert_non_null(strstr(e.msg, "checksum"));
    assert_int_equal(catalog_verify(f->cat, &s, &e), TARN_ECORRUPT);
}

/* Store a well-formed schema record holding @p version. */
static void
put_schema(const char *dir, uint64_t version)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    uint8_t rec[2 + 4 + 8 + 4];
    MDB_val k = {14, "schema_version"}, v = {sizeof(rec), rec};

    rec[0] = 'M';
    rec[1] = 1;
    tarn_put_u16(rec + 2, 1);
    tarn_put_u16(rec + 4, 8);
    tarn_put_u64(rec + 6, version);
    tarn_put_u32(rec + 14, tarn_crc32c(rec, 14));
    assert_int_equal(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 8);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void
test_schema_version(void **state)
{
    fixture *f = *state;
    catalog_opts o = {f->dir, 1 << 20, 0};
    catalog *c = NULL;
    tarn_err e;

    catalog_close(f->cat);
    f->cat = NULL;
    put_schema(f->dir, 99);
    assert_int_equal(catalog_open(&o, &c, &e), TARN_EUNSUPPORTED);
    assert_non_null(strstr(e.msg, "schema version 99"));
    assert_null(c);
    /* A flipped bit is caught by the checksum before the version. */
    put_schema(f->dir, CATALOG_SCHEMA_VERSION);
    poke_record(f->dir, "meta", 6);
    assert_int_equal(catalog_open(&o, &c, &e), TARN_ECORRUPT);
    put_schema(f->dir, CATALOG_SCHEMA_VERSION);
    f->cat = open_at(f->dir, 1 << 20);
}

/* The layer map and commit timestamps: one transaction with the timeline,
 * listed back, searched by time, and gone with the timeline. */
static void
test_layers_and_commit_ts(void **state)
{
    fixture *f = *state;
    catalog_timeline tl;
    catalog_layer add[3], *got = NULL;
    catalog_commit_ts cts[4] = {
        {100, 0x1000}, {200, 0x2000}, {200, 0x2100}, {300, 0x3000}};
    catalog_ts_hit hit;
    const char *rm[1] = {"layer-b"};
    size_t n = 0;
    tarn_err e;

    make_tenant(f->cat, 1, NULL);
    assert_int_equal(make_timeline(f->cat, 1, 2, NULL, -1, false, 0, &tl, &e),
                     TARN_OK);
    assert_int_equal(tl.trust_consistency_images, CATALOG_OFF);
    memset(add, 0, sizeof(add));
    for (int i = 0; i < 3; i++) {
        snprintf(add[i].name, sizeof(add[i].name), "layer-%c", 'a' + i);
        add[i].kind = (uint8_t)(i == 2 ? 2 : 1);
        add[i].key_end[0] = 0xff;
        add[i].lsn_start = (tarn_lsn)i * 100;
        add[i].lsn_end = (tarn_lsn)i * 100 + 100;
        add[i].file_size = 4096u * (unsigned)(i + 1);
    }
    tl.disk_consistent_lsn = 300;
    tl.trust_consistency_images = CATALOG_ON;
    if (catalog_timeline_commit(f->cat, &tl, add, 3, NULL, 0, cts, 4, &e)
        != TARN_OK)
        fail_msg("commit: %s", e.msg);
    /* Adding a layer twice is refused, and nothing of it is applied. */
    tl.disk_consistent_lsn = 999;
    assert_int_equal(
        catalog_timeline_commit(f->cat, &tl, add, 1, NULL, 0, NULL, 0, &e),
        TARN_EEXIST);
    assert_int_equal(
        catalog_timeline_get(f->cat, &tl.tenant_id, &tl.timeline_id, &tl, &e),
        TARN_OK);
    assert_int_equal(tl.disk_consistent_lsn, 300);
    assert_int_equal(tl.trust_consistency_images, CATALOG_ON);
    assert_int_equal(
        catalog_timeline_commit(f->cat, &tl, NULL, 0, rm, 1, NULL, 0, &e),
        TARN_OK);
    assert_int_equal(catalog_layer_list(f->cat, &tl.tenant_id, &tl.timeline_id,
                                        &got, &n, &e),
                     TARN_OK);
    assert_int_equal(n, 2);
    assert_string_equal(got[0].name, "layer-a");
    assert_string_equal(got[1].name, "layer-c");
    assert_int_equal(got[1].kind, 2);
    assert_int_equal(got[1].file_size, 3 * 4096);
    assert_int_equal(got[1].key_end[0], 0xff);
    free(got);

    assert_int_equal(catalog_commit_ts_find(f->cat, &tl.tenant_id,
                                            &tl.timeline_id, 250, &hit, &e),
                     TARN_OK);
    assert_true(hit.any && hit.found && hit.later);
    assert_int_equal(hit.ts, 200);
    assert_int_equal(hit.lsn, 0x2100);
    assert_int_equal(hit.first_lsn, 0x1000);
    assert_int_equal(catalog_commit_ts_find(f->cat, &tl.tenant_id,
                                            &tl.timeline_id, 50, &hit, &e),
                     TARN_OK);
    assert_true(hit.any && !hit.found && hit.later);
    assert_int_equal(catalog_commit_ts_find(f->cat, &tl.tenant_id,
                                            &tl.timeline_id, 300, &hit, &e),
                     TARN_OK);
    assert_true(hit.found && !hit.later);
    assert_int_equal(hit.lsn, 0x3000);
    /* Negative times sort before positive ones. */
    cts[0].ts = -5;
    assert_int_equal(
        catalog_timeline_commit(f->cat, &tl, NULL, 0, NULL, 0, cts, 1, &e),
        TARN_OK);
    assert_int_equal(catalog_commit_ts_find(f->cat, &tl.tenant_id,
                                            &tl.timeline_id, 0, &hit, &e),
                     TARN_OK);
    assert_true(hit.found);
    assert_int_equal(hit.ts, -5);

    assert_int_equal(
        catalog_timeline_delete(f->cat, &tl.tenant_id, &tl.timeline_id, &e),
        TARN_OK);
    /* Gone with it. */
    make_timeline(f->cat, 1, 2, NULL, -1, false, 0, &tl, &e);
    assert_int_equal(catalog_layer_list(f->cat, &tl.tenant_id, &tl.timeline_id,
                                        &got, &n, &e),
                     TARN_OK);
    assert_int_equal(n, 0);
    assert_int_equal(catalog_commit_ts_find(f->cat, &tl.tenant_id,
                                            &tl.timeline_id, 250, &hit, &e),
                     TARN_OK);
    assert_false(hit.any);
    verify_ok(f->cat, 1, 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tenants, setup, teardown),
        cmocka_unit_test(test_names),
        cmocka_unit_test_setup_teardown(test_branches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_children_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenant_delete_many, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_growth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checksum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layers_and_commit_ts, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
