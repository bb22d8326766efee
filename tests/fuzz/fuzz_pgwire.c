/*
 * fuzz_pgwire.c - bytes from a page service client through the framer and
 * every parser behind it: the startup packet, Query, Parse, Describe/
 * Close, the SCRAM exchange and pagestream requests (v2 and v3).
 *
 * The input is read as a connection would read it: the first message is
 * a startup packet, the rest are typed messages, each framed only when
 * whole.  Invariants: a frame never reaches past the input; parsed strings
 * lie inside their message; a parsed pagestream request encodes back to
 * the bytes it came from (up to its size), and a response's fixed part
 * fits PS_FIXED_MAX.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/pagestream.h"
#include "net/pgwire.h"
#include "net/scram.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_in(const void *p, const uint8_t *lo, size_t len)
{
    const uint8_t *q = p;

    if (q != NULL && (q < lo || q >= lo + len))
        abort();
}

static void
pagestream(const uint8_t *body, size_t len)
{
    for (int v = 2; v <= 3; v++) {
        uint8_t enc[64], fixed[PS_FIXED_MAX];
        ps_resp rs = {.errmsg = "x"};
        ps_req r;
        tarn_err e;
        size_t n;

        if (ps_parse_request(v, body, len, &r, &e) != TARN_OK)
            continue;
        n = ps_encode_request(v, &r, enc);
        if (n != ps_request_size(v, r.tag) || n > len
            || memcmp(enc, body, n) != 0)
            abort();
        for (uint8_t t = PS_RESP_EXISTS; t <= PS_RESP_SLRU; t++) {
            rs.tag = t;
            if (ps_encode_fixed(v, &r, &rs, fixed) > PS_FIXED_MAX)
                abort();
        }
    }
}

static void
typed(char type, const uint8_t *body, size_t len, scram_state *st,
      const scram_verifier *v, int *sasl_step)
{
    const char *a, *b;
    const uint8_t *d;
    size_t dlen, rlen;
    char reply[SCRAM_MSG_MAX], kind;
    tarn_err e;
    bool ok;

    switch (type) {
    case 'Q':
        if (pgw_parse_query(body, len, &a, &e) == TARN_OK)
            check_in(a, body, len);
        break;
    case 'P':
        if (pgw_parse_parse(body, len, &a, &b, &e) == TARN_OK) {
            check_in(a, body, len);
            check_in(b, body, len);
        }
        break;
    case 'D':
    case 'C':
        if (pgw_parse_describe(body, len, &kind, &a, &e) == TARN_OK)
            check_in(a, body, len);
        break;
    case 'p':
        if (*sasl_step == 0) {
            if (pgw_parse_sasl_initial(body, len, &a, &d, &dlen, &e)
                == TARN_OK) {
                check_in(a, body, len);
                if (d != NULL && (d < body || d + dlen > body + len))
                    abort();
                if (scram_server_first(st, v, d, dlen, "fuzznonce", reply,
                                       &rlen, &e)
                    == TARN_OK)
                    *sasl_step = 1;
            }
        } else if (scram_server_final(st, body, len, &ok, reply, &rlen, &e)
                   == TARN_OK) {
            *sasl_step = 0;
        }
        break;
    case 'd':
        pagestream(body, len);
        break;
    default:
        break;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static scram_verifier v;
    static bool have_v;
    scram_state st;
    int sasl_step = 0;
    size_t pos = 0;
    bool startup = true;
    tarn_err e;

    if (!have_v) {
        static const uint8_t salt[4] = {1, 2, 3, 4};
        if (scram_verifier_derive("pw", salt, sizeof(salt), 1, &v, &e)
            != TARN_OK)
            abort();
        have_v = true;
    }
    /* A pagestream request on its own, too, as the stream would see it. */
    pagestream(data, size);
    while (pos < size) {
        pgw_frame f;
        tarn_rc rc = pgw_frame_next(data + pos, size - pos, startup, &f, &e);

        if (rc != TARN_OK)
            break;
        if (f.total > size - pos || f.total < f.hdr)
            abort();
        if (startup) {
            pgw_startup s;
            if (pgw_parse_startup(data + pos + 4, f.total - 4, &s, &e)
                == TARN_OK) {
                check_in(s.user, data + pos, f.total);
                check_in(s.database, data + pos, f.total);
                check_in(s.options, data + pos, f.total);
                if (s.code >> 16 == 3)
                    startup = false;
            }
        } else {
            typed(f.type, data + pos + f.hdr, f.total - f.hdr, &st, &v,
                  &sasl_step);
        }
        pos += f.total;
    }
    return 0;
}
