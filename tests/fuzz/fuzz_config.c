/*
 * fuzz_config.c - INI text and --set pairs through the config loader.
 *
 * Invariants checked beyond "no crash": a loaded config formats every key,
 * and the formatted value of every non-secret key parses back to the same
 * value.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/core/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    const cfg_key *keys;
    tarn_config c, d;
    tarn_err e;
    size_t n;

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (cfg_defaults(&c, &e) != TARN_OK) {
        free(text);
        return 0;
    }
    if (cfg_load_string(&c, text, "fuzz", &e) == TARN_OK) {
        keys = cfg_keys(&n);
        if (cfg_defaults(&d, &e) == TARN_OK) {
            for (size_t i = 0; i < n; i++) {
                char buf[4096];
                if (keys[i].secret)
                    continue;
                cfg_format(&c, &keys[i], buf, sizeof(buf));
                if (strlen(buf) >= sizeof(buf) - 1)
                    continue; /* truncated by the buffer, not a bug */
                if (cfg_set(&d, keys[i].name, buf, &e) != TARN_OK
                    || cfg_differs(&c, &d, &keys[i]))
                    abort();
            }
            cfg_free(&d);
        }
    }
    /* The same bytes as one --set pair: key=value. */
    {
        const char *sets[1] = {text};
        cfg_free(&c);
        if (cfg_load(&c, NULL, sets, 1, &e) == TARN_OK)
            cfg_free(&c);
    }
    free(text);
    return 0;
}
