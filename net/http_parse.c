/*
 * http_parse.c - HTTP/1.x request-head parsing.
 *
 * Deliberately strict where leniency has caused request smuggling in
 * other servers: header names must be tokens, no whitespace before the
 * colon, no obsolete line folding, one Content-Length, and
 * Content-Length together with Transfer-Encoding is refused.
 */
#include "net/http_parse.h"

#include <string.h>
#include <strings.h>

static bool
is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool
span_ieq(http_span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && strncasecmp(s.p, lit, n) == 0;
}

/* Does the comma-separated list @p s contain token @p tok? */
static bool
list_has(http_span s, const char *tok)
{
    size_t i = 0, n = strlen(tok);

    while (i < s.len) {
        size_t start, end;
        while (i < s.len && (s.p[i] == ' ' || s.p[i] == '\t' || s.p[i] == ','))
            i++;
        start = i;
        while (i < s.len && s.p[i] != ',')
            i++;
        end = i;
        while (end > start && (s.p[end - 1] == ' ' || s.p[end - 1] == '\t'))
            end--;
        if (end - start == n && strncasecmp(s.p + start, tok, n) == 0)
            return true;
    }
    return false;
}

static tarn_rc
fail(int *status, int code, tarn_err *err, const char *msg)
{
    *status = code;
    return tarn_err_set(err, TARN_EPROTO, "%s", msg);
}

static http_method
method_of(http_span m)
{
    static const struct {
        const char *name;
        http_method m;
    } tab[] = {
        {"GET", HTTP_GET},         {"HEAD", HTTP_HEAD},
        {"POST", HTTP_POST},       {"PUT", HTTP_PUT},
        {"DELETE", HTTP_DELETE},   {"PATCH", HTTP_PATCH},
        {"OPTIONS", HTTP_OPTIONS},
    };

    for (size_t i = 0; i < TARN_ARRAY_LEN(tab); i++)
        if (m.len == strlen(tab[i].name)
            && memcmp(m.p, tab[i].name, m.len) == 0)
            return tab[i].m;
    return HTTP_OTHER;
}

/* The next line (without CRLF) starting at *pos, or false at the end. */
static bool
next_line(const char *buf, size_t len, size_t *pos, http_span *line, bool *bad)
{
    size_t i = *pos;

    if (i >= len)
        return false;
    while (i < len && buf[i] != '\r' && buf[i] != '\n')
        i++;
    if (i + 1 >= len || buf[i] != '\r' || buf[i + 1] != '\n') {
        *bad = true; /* bare LF or CR */
        return false;
    }
    line->p = buf + *pos;
    line->len = i - *pos;
    *pos = i + 2;
    return true;
}

tarn_rc
http_parse_head(const char *buf, size_t len, http_head *h, int *status,
                tarn_err *err)
{
    http_span line, target;
    size_t pos = 0, i;
    bool bad = false, have_cl = false, have_te = false;

    memset(h, 0, sizeof(*h));
    h->content_length = -1;
    if (!next_line(buf, len, &pos, &line, &bad) || line.len == 0)
        return fail(status, 400, err,
                    bad ? "lines must end with CRLF"
                        : "malformed request line");

    /* method SP request-target SP HTTP/1.x */
    for (i = 0; i < line.len && is_tchar((unsigned char)line.p[i]); i++)
        ;
    if (i == 0 || i >= line.len || line.p[i] != ' ')
        return fail(status, 400, err, "malformed request line");
    h->method_text.p = line.p;
    h->method_text.len = i;
    h->method = method_of(h->method_text);
    target.p = line.p + i + 1;
    for (i = 0; target.p + i < line.p + line.len && target.p[i] != ' '; i++) {
        unsigned char c = (unsigned char)target.p[i];
        if (c <= 0x20 || c >= 0x7f)
            return fail(status, 400, err, "malformed request target");
    }
    target.len = i;
    if (target.len == 0 || target.p[0] != '/')
        return fail(status, 400, err,
                    "request target must be an absolute path");
    {
        const char *ver = target.p + target.len;
        size_t rest = (size_t)(line.p + line.len - ver);
        /* " HTTP/d.d" exactly; a well-formed other version is a 505. */
        if (rest != 9 || memcmp(ver, " HTTP/", 6) != 0 || ver[7] != '.'
            || ver[6] < '0' || ver[6] > '9' || ver[8] < '0' || ver[8] > '9')
            return fail(status, 400, err, "malformed HTTP version");
        if (ver[6] != '1' || (ver[8] != '0' && ver[8] != '1'))
            return fail(status, 505, err, "unsupported HTTP version");
        h->minor = ver[8] - '0';
    }
    {
        const char *q = memchr(target.p, '?', target.len);
        h->path.p = target.p;
        h->path.len = q ? (size_t)(q - target.p) : target.len;
        if (q != NULL) {
            h->query.p = q + 1;
            h->query.len = target.len - h->path.len - 1;
        } else {
            h->query.p = target.p + target.len;
        }
    }
    h->keep_alive = h->minor == 1;

    while (next_line(buf, len, &pos, &line, &bad)) {
        http_span name, value;
        if (line.len == 0)
            break; /* end of head */
        if (line.p[0] == ' ' || line.p[0] == '\t')
            return fail(status, 400, err,
                        "obsolete header line folding is not accepted");
        for (i = 0; i < line.len && is_tchar((unsigned char)line.p[i]); i++)
            ;
        if (i == 0 || i >= line.len || line.p[i] != ':')
            return fail(status, 400, err, "malformed header line");
        name.p = line.p;
        name.len = i;
        i++;
        while (i < line.len && (line.p[i] == ' ' || line.p[i] == '\t'))
            i++;
        value.p = line.p + i;
        value.len = line.len - i;
        while (value.len > 0
               && (value.p[value.len - 1] == ' '
                   || value.p[value.len - 1] == '\t'))
            value.len--;
        for (size_t k = 0; k < value.len; k++) {
            unsigned char c = (unsigned char)value.p[k];
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return fail(status, 400, err,
                            "control character in a header value");
        }
        if (h->nheaders == HTTP_MAX_HEADERS)
            return fail(status, 431, err, "too many header fields");
        h->headers[h->nheaders].name = name;
        h->headers[h->nheaders].value = value;
        h->nheaders++;

        if (span_ieq(name, "Content-Length")) {
            int64_t v = 0;
            if (have_cl || value.len == 0 || value.len > 18)
                return fail(status, 400, err, "bad Content-Length");
            for (size_t k = 0; k < value.len; k++) {
                if (value.p[k] < '0' || value.p[k] > '9')
                    return fail(status, 400, err, "bad Content-Length");
                v = v * 10 + (value.p[k] - '0');
            }
            have_cl = true;
            h->content_length = v;
        } else if (span_ieq(name, "Transfer-Encoding")) {
            have_te = true;
            if (!span_ieq(value, "chunked"))
                return fail(status, 501, err, "unsupported Transfer-Encoding");
            h->chunked = true;
        } else if (span_ieq(name, "Connection")) {
            if (list_has(value, "close"))
                h->keep_alive = false;
            else if (list_has(value, "keep-alive"))
                h->keep_alive = true;
        } else if (span_ieq(name, "Expect")) {
            if (!span_ieq(value, "100-continue"))
                return fail(status, 417, err, "unsupported Expect header");
            h->expect_continue = true;
        }
    }
    if (bad)
        return fail(status, 400, err, "lines must end with CRLF");
    if (pos != len)
        return fail(status, 400, err, "malformed request head");
    if (have_cl && have_te)
        return fail(status, 400, err,
                    "both Content-Length and Transfer-Encoding given");
    if (h->minor == 1 && http_head_header(h, "Host") == NULL)
        return fail(status, 400, err, "HTTP/1.1 request without Host");
    return TARN_OK;
}

const http_span *
http_head_header(const http_head *h, const char *name)
{
    for (size_t i = 0; i < h->nheaders; i++)
        if (span_ieq(h->headers[i].name, name))
            return &h->headers[i].value;
    return NULL;
}

const char *
http_method_name(http_method m)
{
    static const char *const names[] = {"GET",    "HEAD",  "POST",    "PUT",
                                        "DELETE", "PATCH", "OPTIONS", "OTHER"};
    return names[m];
}

const char *
http_status_text(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    }
    return "Unknown";
}

static int
hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

tarn_rc
http_url_decode(const char *in, size_t len, char *out, size_t cap,
                bool plus_is_space)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)in[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= len)
                return TARN_EINVAL;
            hi = hexval((unsigned char)in[i + 1]);
            lo = hexval((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0)
                return TARN_EINVAL;
            c = hi << 4 | lo;
            i += 2;
            if (c == 0)
                return TARN_EINVAL;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (o + 1 >= cap)
            return TARN_ETOOBIG;
        out[o++] = (char)c;
    }
    if (o >= cap)
        return TARN_ETOOBIG;
    out[o] = '\0';
    return TARN_OK;
}

tarn_rc
http_query_get(const char *query, size_t qlen, const char *key, char *out,
               size_t cap)
{
    size_t klen = strlen(key), i = 0;

    while (i < qlen) {
        size_t start = i, end, eq;
        while (i < qlen && query[i] != '&')
            i++;
        end = i;
        i++; /* skip '&' */
        for (eq = start; eq < end && query[eq] != '='; eq++)
            ;
        if (eq - start == klen && memcmp(query + start, key, klen) == 0) {
            if (eq == end) {
                if (cap == 0)
                    return TARN_ETOOBIG;
                out[0] = '\0';
                return TARN_OK;
            }
            return http_url_decode(query + eq + 1, end - eq - 1, out, cap,
                                   true);
        }
    }
    return TARN_ENOTFOUND;
}
