/*
 * scram.h - the server side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as
 * PostgreSQL speaks it, through OpenSSL: the verifier, the two exchanges
 * and the proof check.
 *
 * Channel binding is not offered, so the client's GS2 header must be "n"
 * or "y" (a client that could bind but saw no PLUS mechanism).  The user
 * name in the SCRAM messages is ignored, as PostgreSQL ignores it: the
 * startup packet names the user.  Passwords are used as bytes, without
 * SASLprep, which is exact for ASCII passwords.
 */
#ifndef TARN_NET_SCRAM_H
#define TARN_NET_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/core/err.h"

#define SCRAM_KEY_LEN   32
#define SCRAM_SALT_MAX  64
#define SCRAM_NONCE_LEN 18 /* random bytes; sent base64-encoded (24) */
#define SCRAM_ITER_DEF  4096
#define SCRAM_MSG_MAX   1024

/** What the server stores: PostgreSQL's pg_authid form, decoded. */
typedef struct scram_verifier {
    int iterations;
    uint8_t salt[SCRAM_SALT_MAX];
    size_t salt_len;
    uint8_t stored_key[SCRAM_KEY_LEN];
    uint8_t server_key[SCRAM_KEY_LEN];
} scram_verifier;

/**
 * Parse "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>"
 * (base64 parts), the form PostgreSQL keeps in pg_authid.rolpassword.
 * @return TARN_OK; TARN_EINVAL naming the defect.
 */
tarn_rc scram_verifier_parse(const char *s, scram_verifier *out, tarn_err *err);

/** Derive the verifier of @p password for a given salt and count. */
tarn_rc scram_verifier_derive(const char *password, const uint8_t *salt,
                              size_t salt_len, int iterations,
                              scram_verifier *out, tarn_err *err);

/** Derive a verifier from a password with a fresh random salt. */
tarn_rc scram_verifier_from_password(const char *password, int iterations,
                                     scram_verifier *out, tarn_err *err);

/**
 * page_auth's value: a verifier when it starts with "SCRAM-SHA-256$",
 * otherwise a password.
 */
tarn_rc scram_verifier_from_setting(const char *setting, scram_verifier *out,
                                    tarn_err *err);

/** Format a verifier in the pg_authid form into @p buf. */
char *scram_verifier_format(const scram_verifier *v, char *buf, size_t len);

/** One exchange in progress. */
typedef struct scram_state {
    scram_verifier v;
    char gs2[4]; /**< "n,," or "y,," */
    char client_first_bare[SCRAM_MSG_MAX];
    char server_first[SCRAM_MSG_MAX];
    char nonce[2 * SCRAM_MSG_MAX]; /**< client + server nonce */
} scram_state;

/**
 * Take the client-first-message and build the server-first-message into
 * @p reply (NUL-terminated; its length in @p reply_len).  @p server_nonce
 * may be NULL (random); tests pass a fixed one.
 *
 * @return TARN_OK; TARN_EPROTO for a malformed message or a channel
 * binding request.
 */
tarn_rc scram_server_first(scram_state *st, const scram_verifier *v,
                           const uint8_t *msg, size_t len,
                           const char *server_nonce, char *reply,
                           size_t *reply_len, tarn_err *err);

/**
 * Take the client-final-message.  When the proof is right, *ok is true
 * and @p reply holds the server-final-message ("v=..."); a wrong proof is
 * TARN_OK with *ok false.
 *
 * @return TARN_OK; TARN_EPROTO for a malformed message, a changed nonce
 * or channel-binding data that does not repeat the GS2 header.
 */
tarn_rc scram_server_final(scram_state *st, const uint8_t *msg, size_t len,
                           bool *ok, char *reply, size_t *reply_len,
                           tarn_err *err);

/**
 * The client's side, for tests: the client-final-message for
 * @p password, given the two first messages.
 */
tarn_rc scram_client_final(const char *password, const char *client_first_bare,
                           const char *server_first, char *out, size_t len,
                           tarn_err *err);

#endif
