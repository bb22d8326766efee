/*
 * fuzz_http.c - bytes through the HTTP head parser and the URL helpers.
 *
 * Beyond "no crash": a parsed head's spans lie inside the input, and an
 * error always names a 4xx/5xx status.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
in_bounds(const uint8_t *data, size_t size, http_span s)
{
    if (s.len > 0
        && ((const uint8_t *)s.p < data
            || (const uint8_t *)s.p + s.len > data + size))
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    http_head h;
    tarn_err e;
    char out[256];
    int status = 0;

    if (http_parse_head((const char *)data, size, &h, &status, &e) == TARN_OK) {
        in_bounds(data, size, h.method_text);
        in_bounds(data, size, h.path);
        in_bounds(data, size, h.query);
        for (size_t i = 0; i < h.nheaders; i++) {
            in_bounds(data, size, h.headers[i].name);
            in_bounds(data, size, h.headers[i].value);
        }
        if (h.nheaders > HTTP_MAX_HEADERS)
            abort();
    } else if (status < 400 || status > 599) {
        abort();
    }
    http_url_decode((const char *)data, size, out, sizeof(out), true);
    http_query_get((const char *)data, size, "timestamp", out, sizeof(out));
    return 0;
}
