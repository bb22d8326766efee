/*
 * err.c - formatting of tarn_err and the names of the result codes.
 */
#include "server/core/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tarn_rc
tarn_err_vset(tarn_err *e, tarn_rc code, const char *fmt, va_list ap)
{
    if (e != NULL) {
        e->code = code;
        vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    }
    return code;
}

tarn_rc
tarn_err_set(tarn_err *e, tarn_rc code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    tarn_err_vset(e, code, fmt, ap);
    va_end(ap);
    return code;
}

tarn_rc
tarn_err_prefix(tarn_err *e, const char *fmt, ...)
{
    char prefix[TARN_ERR_MSG];
    char old[TARN_ERR_MSG];
    va_list ap;

    if (e == NULL)
        return TARN_OK;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof(old));
    snprintf(e->msg, sizeof(e->msg), "%s%s", prefix, old);
    return e->code;
}

void
tarn_err_clear(tarn_err *e)
{
    if (e != NULL) {
        e->code = TARN_OK;
        e->msg[0] = '\0';
    }
}

tarn_rc
tarn_err_errno(tarn_err *e, int errnum, const char *fmt, ...)
{
    char what[TARN_ERR_MSG];
    tarn_rc code;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    switch (errnum) {
    case ENOSPC:
    case EDQUOT:
        code = TARN_ENOSPC;
        break;
    case ENOMEM:
        code = TARN_ENOMEM;
        break;
    default:
        code = TARN_EIO;
        break;
    }
    return tarn_err_set(e, code, "%s: %s", what, strerror(errnum));
}

const char *
tarn_strerror(tarn_rc code)
{
    switch (code) {
    case TARN_OK:
        return "success";
    case TARN_AGAIN:
        return "try again";
    case TARN_ENOMEM:
        return "out of memory";
    case TARN_EIO:
        return "I/O error";
    case TARN_EPROTO:
        return "protocol error";
    case TARN_ENOTFOUND:
        return "not found";
    case TARN_EEXIST:
        return "already exists";
    case TARN_EINVAL:
        return "invalid argument";
    case TARN_ECONFLICT:
        return "conflict";
    case TARN_EBUSY:
        return "busy";
    case TARN_ECORRUPT:
        return "data corrupted";
    case TARN_ENOSPC:
        return "no space left on device";
    case TARN_ETOOBIG:
        return "too big";
    case TARN_EPRECOND:
        return "precondition failed";
    case TARN_EUNAVAIL:
        return "unavailable";
    case TARN_EUNSUPPORTED:
        return "not supported";
    }
    return "unknown error";
}

void
tarn_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "tarn: assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}
