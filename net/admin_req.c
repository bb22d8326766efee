/*
 * admin_req.c - JSON body validation, table driven.
 *
 * Every body is described by a table of fields (name, type, where to
 * store it and its "present" flag).  One generic walker enforces the
 * rules for all of them, so a new route gets the same strictness by
 * adding a table.
 */
#include "net/admin_req.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

typedef enum field_type {
    FT_ID,        /**< 32 hex digits -> tarn_id */
    FT_NAME,      /**< a catalog name -> char[CATALOG_NAME_MAX + 1] */
    FT_LSN,       /**< "X/Y" -> tarn_lsn */
    FT_TIME,      /**< RFC 3339 -> tarn_time_us */
    FT_PGVERSION, /**< the integer 15 */
    FT_CONNINFO,  /**< a libpq connection string -> char[CONNINFO_MAX + 1] */
    FT_PATH,      /**< an absolute path -> char[ADMIN_PATH_MAX + 1] */
    FT_BOOL,      /**< true or false -> bool */
    FT_BOOTSTRAP  /**< "initdb" or "none" -> admin_bootstrap */
} field_type;

typedef struct field_spec {
    const char *name;
    field_type type;
    size_t value_off;   /**< offset of the value in the output struct */
    size_t present_off; /**< offset of its bool flag, or SIZE_MAX */
} field_spec;

#define FIELD(s, n, t, v, p)                 \
    {                                        \
        n, t, offsetof(s, v), offsetof(s, p) \
    }
#define FIELD_NOFLAG(s, n, t, v)       \
    {                                  \
        n, t, offsetof(s, v), SIZE_MAX \
    }

static const field_spec tenant_fields[] = {
    FIELD(admin_tenant_create, "new_tenant_id", FT_ID, id, has_id),
    FIELD_NOFLAG(admin_tenant_create, "name", FT_NAME, name),
};

static const field_spec timeline_fields[] = {
    FIELD(admin_timeline_create, "new_timeline_id", FT_ID, id, has_id),
    FIELD_NOFLAG(admin_timeline_create, "name", FT_NAME, name),
    FIELD(admin_timeline_create, "ancestor_timeline_id", FT_ID, ancestor,
          has_ancestor),
    FIELD(admin_timeline_create, "ancestor_start_lsn", FT_LSN, lsn, has_lsn),
    FIELD(admin_timeline_create, "ancestor_start_time", FT_TIME, time,
          has_time),
    {"pg_version", FT_PGVERSION, SIZE_MAX, SIZE_MAX},
    FIELD(admin_timeline_create, "bootstrap", FT_BOOTSTRAP, bootstrap,
          has_bootstrap),
    FIELD(admin_timeline_create, "import_pgdata", FT_PATH, import_pgdata,
          has_import),
    FIELD(admin_timeline_create, "trust_consistency_images", FT_BOOL, trust,
          has_trust),
};

static const field_spec compute_fields[] = {
    FIELD_NOFLAG(admin_compute_attach, "conninfo", FT_CONNINFO, conninfo),
    FIELD(admin_compute_attach, "start_lsn", FT_LSN, start, has_start),
};

static const field_spec checkpoint_fields[] = {
    FIELD(admin_checkpoint, "images", FT_BOOL, images, has_images),
};

static const char *
type_doc(field_type t)
{
    switch (t) {
    case FT_ID:
        return "a string of 32 hex digits";
    case FT_NAME:
        return "a name string";
    case FT_LSN:
        return "an LSN string like \"0/16B5A50\"";
    case FT_TIME:
        return "an RFC 3339 timestamp string";
    case FT_PGVERSION:
        return "the integer 15";
    case FT_CONNINFO:
        return "a connection string";
    case FT_PATH:
        return "an absolute path string";
    case FT_BOOL:
        return "true or false";
    case FT_BOOTSTRAP:
        return "\"initdb\" or \"none\"";
    }
    return "?";
}

static tarn_rc
set_field(const field_spec *f, json_t *v, void *out, tarn_err *err)
{
    char *base = out;
    tarn_err e;
    tarn_rc rc = TARN_OK;

    if (f->type == FT_PGVERSION) {
        if (!json_is_integer(v))
            goto wrong_type;
        if (json_integer_value(v) != 15)
            return tarn_err_set(err, TARN_EINVAL,
                                "field 'pg_version': only PostgreSQL 15 is "
                                "supported");
        return TARN_OK;
    }
    if (f->type == FT_BOOL) {
        if (!json_is_boolean(v))
            goto wrong_type;
        *(bool *)(base + f->value_off) = json_is_true(v);
        *(bool *)(base + f->present_off) = true;
        return TARN_OK;
    }
    if (!json_is_string(v))
        goto wrong_type;
    {
        const char *s = json_string_value(v);
        if (strlen(s) != json_string_length(v))
            return tarn_err_set(err, TARN_EINVAL,
                                "field '%s' contains a NUL character", f->name);
        switch (f->type) {
        case FT_ID:
            rc = tarn_id_parse(s, (tarn_id *)(base + f->value_off), &e);
            break;
        case FT_NAME:
            rc = catalog_name_check(s, &e);
            if (rc == TARN_OK)
                snprintf(base + f->value_off, CATALOG_NAME_MAX + 1, "%s", s);
            break;
        case FT_LSN:
            rc = tarn_lsn_parse(s, (tarn_lsn *)(base + f->value_off), &e);
            break;
        case FT_TIME:
            rc = tarn_time_parse(s, (tarn_time_us *)(base + f->value_off), &e);
            break;
        case FT_CONNINFO:
            if (*s == '\0' || strlen(s) > CATALOG_CONNINFO_MAX) {
                rc = tarn_err_set(&e, TARN_EINVAL, "must be 1 to %d bytes long",
                                  CATALOG_CONNINFO_MAX);
                break;
            }
            memcpy(base + f->value_off, s, strlen(s) + 1);
            break;
        case FT_PATH:
            if (s[0] != '/' || strlen(s) > ADMIN_PATH_MAX) {
                rc = tarn_err_set(&e, TARN_EINVAL,
                                  "must be an absolute path of at most %d "
                                  "bytes",
                                  ADMIN_PATH_MAX);
                break;
            }
            memcpy(base + f->value_off, s, strlen(s) + 1);
            break;
        case FT_BOOTSTRAP:
            if (strcmp(s, "initdb") == 0)
                *(admin_bootstrap *)(base + f->value_off) =
                    ADMIN_BOOTSTRAP_INITDB;
            else if (strcmp(s, "none") == 0)
                *(admin_bootstrap *)(base + f->value_off) =
                    ADMIN_BOOTSTRAP_NONE;
            else
                rc = tarn_err_set(&e, TARN_EINVAL,
                                  "must be \"initdb\" or \"none\", not "
                                  "'%.32s'",
                                  s);
            break;
        case FT_PGVERSION:
        case FT_BOOL:
            break;
        }
    }
    if (rc != TARN_OK)
        return tarn_err_set(err, TARN_EINVAL, "field '%s': %s", f->name, e.msg);
    if (f->present_off != SIZE_MAX)
        *(bool *)(base + f->present_off) = true;
    return TARN_OK;
wrong_type:
    return tarn_err_set(err, TARN_EINVAL, "field '%s' must be %s", f->name,
                        type_doc(f->type));
}

static tarn_rc
parse_object(const char *body, size_t len, const field_spec *fields,
             size_t nfields, void *out, tarn_err *err)
{
    json_error_t jerr;
    const char *key;
    json_t *root, *v;
    tarn_rc rc = TARN_OK;

    /* An empty (or all-blank) body means an empty object. */
    size_t i;
    for (i = 0; i < len && strchr(" \t\r\n", body[i]) != NULL; i++)
        ;
    if (i == len)
        return TARN_OK;
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return tarn_err_set(err, TARN_EINVAL,
                            "malformed JSON at line %d column %d: %s",
                            jerr.line, jerr.column, jerr.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return tarn_err_set(err, TARN_EINVAL,
                            "the request body must be a JSON object");
    }
    json_object_foreach(root, key, v)
    {
        const field_spec *f = NULL;
        for (size_t k = 0; k < nfields; k++)
            if (strcmp(fields[k].name, key) == 0)
                f = &fields[k];
        if (f == NULL) {
            char allowed[256] = "";
            size_t used = 0;
            for (size_t k = 0; k < nfields; k++) {
                int n = snprintf(allowed + used, sizeof(allowed) - used, "%s%s",
                                 k ? ", " : "", fields[k].name);
                if (n > 0 && (size_t)n < sizeof(allowed) - used)
                    used += (size_t)n;
            }
            rc = tarn_err_set(err, TARN_EINVAL,
                              "unknown field '%.64s' (allowed: %s)", key,
                              allowed);
            break;
        }
        if (json_is_null(v))
            continue;
        if ((rc = set_field(f, v, out, err)) != TARN_OK)
            break;
    }
    json_decref(root);
    return rc;
}

tarn_rc
admin_parse_tenant_create(const char *body, size_t len,
                          admin_tenant_create *out, tarn_err *err)
{
    memset(out, 0, sizeof(*out));
    return parse_object(body, len, tenant_fields, TARN_ARRAY_LEN(tenant_fields),
                        out, err);
}

tarn_rc
admin_parse_timeline_create(const char *body, size_t len,
                            admin_timeline_create *out, tarn_err *err)
{
    tarn_rc rc;

    memset(out, 0, sizeof(*out));
    rc = parse_object(body, len, timeline_fields,
                      TARN_ARRAY_LEN(timeline_fields), out, err);
    if (rc != TARN_OK)
        return rc;
    if ((out->has_lsn || out->has_time) && !out->has_ancestor)
        return tarn_err_set(err, TARN_EINVAL, "%s needs ancestor_timeline_id",
                            out->has_lsn ? "ancestor_start_lsn"
                                         : "ancestor_start_time");
    if (out->has_lsn && out->has_time)
        return tarn_err_set(err, TARN_EINVAL,
                            "give ancestor_start_lsn or ancestor_start_time, "
                            "not both");
    if (out->has_ancestor && (out->has_bootstrap || out->has_import))
        return tarn_err_set(err, TARN_EINVAL,
                            "%s is for root timelines; a branch gets its "
                            "data from ancestor_timeline_id",
                            out->has_import ? "import_pgdata" : "bootstrap");
    if (out->has_bootstrap && out->has_import)
        return tarn_err_set(err, TARN_EINVAL,
                            "give bootstrap or import_pgdata, not both");
    if (out->has_import)
        out->bootstrap = ADMIN_BOOTSTRAP_IMPORT;
    return TARN_OK;
}

tarn_rc
admin_parse_compute_attach(const char *body, size_t len,
                           admin_compute_attach *out, tarn_err *err)
{
    tarn_rc rc;

    memset(out, 0, sizeof(*out));
    rc = parse_object(body, len, compute_fields, TARN_ARRAY_LEN(compute_fields),
                      out, err);
    if (rc != TARN_OK)
        return rc;
    if (out->conninfo[0] == '\0')
        return tarn_err_set(err, TARN_EINVAL,
                            "field 'conninfo' is required (a libpq "
                            "connection string of the compute)");
    return TARN_OK;
}

tarn_rc
admin_parse_checkpoint(const char *body, size_t len, admin_checkpoint *out,
                       tarn_err *err)
{
    tarn_rc rc;

    memset(out, 0, sizeof(*out));
    rc = parse_object(body, len, checkpoint_fields,
                      TARN_ARRAY_LEN(checkpoint_fields), out, err);
    if (rc == TARN_OK && !out->has_images)
        out->images = true;
    return rc;
}
