/*
 * fuzz_admin_json.c - request bodies through the admin API validators.
 *
 * Beyond "no crash": an accepted timeline body obeys the documented rules
 * (a start LSN or time only with an ancestor, never both), and names are
 * valid catalog names.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/admin_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    admin_tenant_create t;
    admin_timeline_create tl;
    tarn_err e;

    if (admin_parse_tenant_create((const char *)data, size, &t, &e) == TARN_OK
        && t.name[0] != '\0' && catalog_name_check(t.name, &e) != TARN_OK)
        abort();
    if (admin_parse_timeline_create((const char *)data, size, &tl, &e)
        == TARN_OK) {
        if ((tl.has_lsn || tl.has_time) && !tl.has_ancestor)
            abort();
        if (tl.has_lsn && tl.has_time)
            abort();
        if (tl.name[0] != '\0' && catalog_name_check(tl.name, &e) != TARN_OK)
            abort();
    }
    return 0;
}
