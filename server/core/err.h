/*
 * err.h - result codes and the caller-owned error buffer.
 *
 * Every fallible call in tarn returns a tarn_rc: 0 on success, a negative
 * code otherwise, and writes a one-line human message into a tarn_err that
 * the caller owns.  Nothing here allocates, so an error can always be
 * reported, even after an allocation failure.
 */
#ifndef TARN_CORE_ERR_H
#define TARN_CORE_ERR_H

#include <stdarg.h>
#include <stddef.h>

/** Result codes.  Keep tarn_strerror() and the HTTP mapping in step. */
typedef enum tarn_rc {
    TARN_OK = 0,
    TARN_AGAIN = -1,        /**< need more input, or would block */
    TARN_ENOMEM = -2,       /**< allocation failed */
    TARN_EIO = -3,          /**< an operating system call failed */
    TARN_EPROTO = -4,       /**< malformed input from a peer */
    TARN_ENOTFOUND = -5,    /**< no such object */
    TARN_EEXIST = -6,       /**< the object already exists */
    TARN_EINVAL = -7,       /**< an argument or value is invalid */
    TARN_ECONFLICT = -8,    /**< the current state forbids the change */
    TARN_EBUSY = -9,        /**< held by someone else (a lock) */
    TARN_ECORRUPT = -10,    /**< data read back failed a check */
    TARN_ENOSPC = -11,      /**< the disk is full */
    TARN_ETOOBIG = -12,     /**< input exceeds a configured bound */
    TARN_EPRECOND = -13,    /**< the object is not in a usable state yet */
    TARN_EUNAVAIL = -14,    /**< shutting down, or temporarily unavailable */
    TARN_EUNSUPPORTED = -15 /**< valid but not supported by this build */
} tarn_rc;

/** Size of the message buffer, terminating NUL included. */
#define TARN_ERR_MSG 512

/** An error: the code and a one-line message, owned by the caller. */
typedef struct tarn_err {
    tarn_rc code;
    char msg[TARN_ERR_MSG];
} tarn_err;

#if defined(__GNUC__)
#define TARN_MUSTCHECK    __attribute__((warn_unused_result))
#define TARN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define TARN_NORETURN     __attribute__((noreturn))
#define TARN_UNUSED       __attribute__((unused))
#define TARN_LIKELY(x)    __builtin_expect(!!(x), 1)
#define TARN_UNLIKELY(x)  __builtin_expect(!!(x), 0)
#else
#define TARN_MUSTCHECK
#define TARN_PRINTF(f, a)
#define TARN_NORETURN
#define TARN_UNUSED
#define TARN_LIKELY(x)   (x)
#define TARN_UNLIKELY(x) (x)
#endif

/**
 * Record an error.
 *
 * @param[out] e     the error to fill; may be NULL, then only @p code is
 *                   returned
 * @param[in]  code  a negative tarn_rc
 * @param[in]  fmt   printf format of the one-line message; truncated to
 *                   TARN_ERR_MSG - 1 bytes
 * @return @p code, so callers can write `return tarn_err_set(...)`.
 */
tarn_rc tarn_err_set(tarn_err *e, tarn_rc code, const char *fmt, ...)
    TARN_PRINTF(3, 4);

/** As tarn_err_set(), with a va_list. */
tarn_rc tarn_err_vset(tarn_err *e, tarn_rc code, const char *fmt, va_list ap)
    TARN_PRINTF(3, 0);

/**
 * Put a prefix in front of an existing message ("open catalog: " + msg).
 * The code is kept.  @return e->code.
 */
tarn_rc tarn_err_prefix(tarn_err *e, const char *fmt, ...) TARN_PRINTF(2, 3);

/** Reset to TARN_OK with an empty message. */
void tarn_err_clear(tarn_err *e);

/** A static, lower-case name for a code ("not found"); never NULL. */
const char *tarn_strerror(tarn_rc code);

/**
 * Record an errno-based failure: "<what>: <strerror(errnum)>".  ENOSPC and
 * EDQUOT map to TARN_ENOSPC, ENOMEM to TARN_ENOMEM, anything else to
 * TARN_EIO.
 */
tarn_rc tarn_err_errno(tarn_err *e, int errnum, const char *fmt, ...)
    TARN_PRINTF(3, 4);

/** Report an invariant violation and abort.  Used through TARN_ASSERT. */
TARN_NORETURN void tarn_assert_fail(const char *expr, const char *file,
                                    int line);

/*
 * Invariants only: anything a peer or the disk can trigger must return an
 * error instead.  Stays in release builds, as redis's serverAssert does.
 */
#define TARN_ASSERT(e) \
    ((e) ? (void)0 : tarn_assert_fail(#e, __FILE__, __LINE__))

#define TARN_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
