/*
 * pgwire.c - framing, frontend parsers and backend builders of the
 * PostgreSQL v3 protocol.
 *
 * The framer looks only at the header: a length that can never be valid
 * is refused before a single body byte is buffered, so a peer cannot make
 * us wait for (or allocate) a gigabyte.  Parsers never trust a length or a
 * terminator: every string must end with a NUL inside its message.
 */
#include "net/pgwire.h"

#include <event2/buffer.h>
#include <string.h>

tarn_rc
pgw_frame_next(const uint8_t *p, size_t avail, bool startup, pgw_frame *out,
               tarn_err *err)
{
    uint32_t len;

    if (startup) {
        if (avail < 4)
            return TARN_AGAIN;
        len = pgw_get_be32(p);
        if (len < 8)
            return tarn_err_set(err, TARN_EPROTO,
                                "invalid startup packet length %u", len);
        if (len > PGW_MAX_STARTUP)
            return tarn_err_set(err, TARN_ETOOBIG,
                                "startup packet of %u bytes exceeds the "
                                "limit of %d",
                                len, PGW_MAX_STARTUP);
        if (avail < len)
            return TARN_AGAIN;
        out->type = 0;
        out->total = len;
        out->hdr = 4;
        return TARN_OK;
    }
    if (avail < 5)
        return TARN_AGAIN;
    len = pgw_get_be32(p + 1);
    if (len < 4)
        return tarn_err_set(err, TARN_EPROTO,
                            "invalid length %u in message of type 0x%02x", len,
                            p[0]);
    if (len > PGW_MAX_MSG - 1)
        return tarn_err_set(err, TARN_ETOOBIG,
                            "message of type 0x%02x with %u bytes exceeds "
                            "the limit of %d",
                            p[0], len, PGW_MAX_MSG);
    if (avail < (size_t)len + 1)
        return TARN_AGAIN;
    out->type = (char)p[0];
    out->total = (size_t)len + 1;
    out->hdr = 5;
    return TARN_OK;
}

const char *
pgw_get_string(const uint8_t *body, size_t len, size_t *pos)
{
    const uint8_t *nul;
    const char *s;

    if (*pos >= len)
        return NULL;
    nul = memchr(body + *pos, '\0', len - *pos);
    if (nul == NULL)
        return NULL;
    s = (const char *)body + *pos;
    *pos = (size_t)(nul - body) + 1;
    return s;
}

tarn_rc
pgw_parse_startup(const uint8_t *body, size_t len, pgw_startup *out,
                  tarn_err *err)
{
    size_t pos = 4;

    memset(out, 0, sizeof(*out));
    if (len < 4)
        return tarn_err_set(err, TARN_EPROTO, "startup packet too short");
    out->code = pgw_get_be32(body);
    switch (out->code) {
    case PGW_SSL_REQUEST:
    case PGW_GSS_REQUEST:
        if (len != 4)
            return tarn_err_set(err, TARN_EPROTO,
                                "encryption request of %zu bytes, not 8",
                                len + 4);
        return TARN_OK;
    case PGW_CANCEL_REQ:
        if (len != 12)
            return tarn_err_set(err, TARN_EPROTO,
                                "cancel request of %zu bytes, not 16", len + 4);
        return TARN_OK;
    default:
        break;
    }
    if (out->code >> 16 != 3)
        return tarn_err_set(err, TARN_EUNSUPPORTED,
                            "unsupported frontend protocol %u.%u: tarn "
                            "speaks 3.0",
                            out->code >> 16, out->code & 0xffff);
    for (;;) {
        const char *name = pgw_get_string(body, len, &pos), *value;
        if (name == NULL)
            return tarn_err_set(err, TARN_EPROTO,
                                "startup packet: parameter list not "
                                "terminated");
        if (name[0] == '\0')
            break;
        value = pgw_get_string(body, len, &pos);
        if (value == NULL)
            return tarn_err_set(err, TARN_EPROTO,
                                "startup packet: parameter \"%.64s\" has no "
                                "value",
                                name);
        if (strcmp(name, "user") == 0)
            out->user = value;
        else if (strcmp(name, "database") == 0)
            out->database = value;
        else if (strcmp(name, "application_name") == 0)
            out->application_name = value;
        else if (strcmp(name, "options") == 0)
            out->options = value;
        else if (strncmp(name, "_pq_.", 5) == 0
                 && out->n_unknown_pq < (int)TARN_ARRAY_LEN(out->unknown_pq))
            out->unknown_pq[out->n_unknown_pq++] = name;
    }
    if (pos != len)
        return tarn_err_set(err, TARN_EPROTO,
                            "startup packet: %zu bytes after the parameter "
                            "list",
                            len - pos);
    if (out->user == NULL || out->user[0] == '\0')
        return tarn_err_set(err, TARN_EPROTO,
                            "no PostgreSQL user name specified in startup "
                            "packet");
    return TARN_OK;
}

tarn_rc
pgw_parse_query(const uint8_t *body, size_t len, const char **text,
                tarn_err *err)
{
    size_t pos = 0;

    *text = pgw_get_string(body, len, &pos);
    if (*text == NULL || pos != len)
        return tarn_err_set(err, TARN_EPROTO,
                            "query message is not one NUL-terminated "
                            "string");
    return TARN_OK;
}

tarn_rc
pgw_parse_parse(const uint8_t *body, size_t len, const char **name,
                const char **text, tarn_err *err)
{
    size_t pos = 0;
    uint16_t n;

    *name = pgw_get_string(body, len, &pos);
    *text = *name ? pgw_get_string(body, len, &pos) : NULL;
    if (*text == NULL || len - pos < 2)
        return tarn_err_set(err, TARN_EPROTO, "malformed Parse message");
    n = pgw_get_be16(body + pos);
    if (len - pos - 2 != (size_t)n * 4)
        return tarn_err_set(err, TARN_EPROTO,
                            "Parse message: %u parameter types do not fit "
                            "its length",
                            n);
    return TARN_OK;
}

tarn_rc
pgw_parse_describe(const uint8_t *body, size_t len, char *kind,
                   const char **name, tarn_err *err)
{
    size_t pos = 1;

    if (len < 2 || (body[0] != 'S' && body[0] != 'P'))
        return tarn_err_set(err, TARN_EPROTO,
                            "Describe/Close: expected 'S' or 'P'");
    *kind = (char)body[0];
    *name = pgw_get_string(body, len, &pos);
    if (*name == NULL || pos != len)
        return tarn_err_set(err, TARN_EPROTO, "malformed Describe/Close");
    return TARN_OK;
}

tarn_rc
pgw_parse_sasl_initial(const uint8_t *body, size_t len, const char **mech,
                       const uint8_t **data, size_t *dlen, tarn_err *err)
{
    size_t pos = 0;
    uint32_t n;

    *mech = pgw_get_string(body, len, &pos);
    if (*mech == NULL || len - pos < 4)
        return tarn_err_set(err, TARN_EPROTO, "malformed SASLInitialResponse");
    n = pgw_get_be32(body + pos);
    pos += 4;
    if (n == UINT32_MAX) { /* -1: no initial response */
        *data = NULL;
        *dlen = 0;
    } else if (n != len - pos) {
        return tarn_err_set(err, TARN_EPROTO,
                            "SASLInitialResponse: data length %u, %zu bytes "
                            "left",
                            n, len - pos);
    } else {
        *data = body + pos;
        *dlen = n;
        pos += n;
    }
    if (pos != len)
        return tarn_err_set(err, TARN_EPROTO,
                            "SASLInitialResponse: trailing bytes");
    return TARN_OK;
}

/* ---- builders ----------------------------------------------------------- */

void
pgw_put_msg(struct evbuffer *out, char type, const void *body, size_t len)
{
    uint8_t h[5];

    h[0] = (uint8_t)type;
    pgw_put_be32(h + 1, (uint32_t)(len + 4));
    evbuffer_add(out, h, 5);
    if (len > 0)
        evbuffer_add(out, body, len);
}

void
pgw_put_auth(struct evbuffer *out, uint32_t code, const void *data, size_t len)
{
    uint8_t h[9];

    h[0] = 'R';
    pgw_put_be32(h + 1, (uint32_t)(len + 8));
    pgw_put_be32(h + 5, code);
    evbuffer_add(out, h, 9);
    if (len > 0)
        evbuffer_add(out, data, len);
}

void
pgw_put_param(struct evbuffer *out, const char *name, const char *value)
{
    size_t n = strlen(name) + 1, v = strlen(value) + 1;
    uint8_t h[5];

    h[0] = 'S';
    pgw_put_be32(h + 1, (uint32_t)(4 + n + v));
    evbuffer_add(out, h, 5);
    evbuffer_add(out, name, n);
    evbuffer_add(out, value, v);
}

void
pgw_put_backend_key(struct evbuffer *out, uint32_t pid, uint32_t key)
{
    uint8_t b[8];

    pgw_put_be32(b, pid);
    pgw_put_be32(b + 4, key);
    pgw_put_msg(out, 'K', b, 8);
}

void
pgw_put_ready(struct evbuffer *out)
{
    pgw_put_msg(out, 'Z', "I", 1);
}

void
pgw_put_complete(struct evbuffer *out, const char *tag)
{
    pgw_put_msg(out, 'C', tag, strlen(tag) + 1);
}

static void
put_field(struct evbuffer *out, char f, const char *s, size_t n)
{
    evbuffer_add(out, &f, 1);
    evbuffer_add(out, s, n);
    evbuffer_add(out, "", 1);
}

void
pgw_put_error(struct evbuffer *out, const char *severity, const char *sqlstate,
              const char *msg)
{
    size_t ns = strlen(severity), nm = strlen(msg);
    uint8_t h[5];

    /* Four fields (type byte, text, NUL) and the terminating NUL. */
    h[0] = 'E';
    pgw_put_be32(h + 1, (uint32_t)(4 + 2 * (ns + 2) + 7 + nm + 2 + 1));
    evbuffer_add(out, h, 5);
    put_field(out, 'S', severity, ns);
    put_field(out, 'V', severity, ns);
    put_field(out, 'C', sqlstate, 5);
    put_field(out, 'M', msg, nm);
    evbuffer_add(out, "", 1);
}

void
pgw_put_copy_both(struct evbuffer *out)
{
    static const uint8_t b[3] = {0, 0, 0};

    pgw_put_msg(out, 'W', b, sizeof(b));
}

void
pgw_put_negotiate(struct evbuffer *out, const pgw_startup *s)
{
    size_t len = 8;
    uint8_t h[13];

    for (int i = 0; i < s->n_unknown_pq; i++)
        len += strlen(s->unknown_pq[i]) + 1;
    h[0] = 'v';
    pgw_put_be32(h + 1, (uint32_t)(len + 4));
    pgw_put_be32(h + 5, 0); /* newest minor version we speak */
    pgw_put_be32(h + 9, (uint32_t)s->n_unknown_pq);
    evbuffer_add(out, h, 13);
    for (int i = 0; i < s->n_unknown_pq; i++)
        evbuffer_add(out, s->unknown_pq[i], strlen(s->unknown_pq[i]) + 1);
}

void
pgw_put_copydata_hdr(struct evbuffer *out, size_t len)
{
    uint8_t h[5];

    h[0] = 'd';
    pgw_put_be32(h + 1, (uint32_t)(len + 4));
    evbuffer_add(out, h, 5);
}
