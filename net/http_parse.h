/*
 * http_parse.h - a strict parser for HTTP/1.x request heads, and the URL
 * helpers the admin API needs.
 *
 * Pure functions over a buffer: no I/O, no allocation.  The server frames
 * a head (up to the blank line) and hands it here; everything a peer can
 * send is either accepted or rejected with the HTTP status to answer.
 */
#ifndef TARN_NET_HTTP_PARSE_H
#define TARN_NET_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/core/err.h"

#define HTTP_MAX_HEADERS 64

typedef enum http_method {
    HTTP_GET,
    HTTP_HEAD,
    HTTP_POST,
    HTTP_PUT,
    HTTP_DELETE,
    HTTP_PATCH,
    HTTP_OPTIONS,
    HTTP_OTHER
} http_method;

/** A slice of the parsed buffer; not NUL-terminated. */
typedef struct http_span {
    const char *p;
    size_t len;
} http_span;

typedef struct http_head {
    http_method method;
    http_span method_text;
    http_span path;  /**< the target up to '?' */
    http_span query; /**< after '?', empty when absent */
    int minor;       /**< HTTP/1.<minor> */
    size_t nheaders;
    struct {
        http_span name, value;
    } headers[HTTP_MAX_HEADERS];
    int64_t content_length; /**< -1 when absent */
    bool chunked;           /**< Transfer-Encoding: chunked */
    bool keep_alive;        /**< from the version and Connection */
    bool expect_continue;   /**< Expect: 100-continue */
} http_head;

/**
 * Parse one request head: the request line and the header lines,
 * @p len bytes ending with the empty line (CRLF CRLF).
 *
 * @param[out] h       spans point into @p buf
 * @param[out] status  on failure, the status to answer (400, 431, 501,
 *                     505)
 * @return TARN_OK, or TARN_EPROTO with a message for the client.
 */
tarn_rc http_parse_head(const char *buf, size_t len, http_head *h, int *status,
                        tarn_err *err);

/** The value of header @p name (case-insensitive), or NULL. */
const http_span *http_head_header(const http_head *h, const char *name);

/** "GET", "POST", ... ; "OTHER" for the rest. */
const char *http_method_name(http_method m);

/** The reason phrase for a status ("Not Found"). */
const char *http_status_text(int status);

/**
 * Percent-decode @p len bytes of @p in into @p out (NUL-terminated),
 * turning '+' into a space when @p plus_is_space.
 *
 * @return TARN_OK; TARN_EINVAL for a bad escape or an embedded NUL;
 * TARN_ETOOBIG when @p cap is too small.
 */
tarn_rc http_url_decode(const char *in, size_t len, char *out, size_t cap,
                        bool plus_is_space);

/**
 * Find parameter @p key in a query string ("a=1&b=2") and decode its value
 * into @p out.
 *
 * @return TARN_OK; TARN_ENOTFOUND when absent; TARN_EINVAL or
 * TARN_ETOOBIG for a value that does not decode into @p cap bytes.
 */
tarn_rc http_query_get(const char *query, size_t qlen, const char *key,
                       char *out, size_t cap);

#endif
