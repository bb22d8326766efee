/*
 * scram.c - SCRAM-SHA-256 for the page service.
 *
 * The keys follow RFC 5802 section 3:
 *   SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, i)
 *   ClientKey = HMAC(SaltedPassword, "Client Key"), StoredKey = H(ClientKey)
 *   ServerKey = HMAC(SaltedPassword, "Server Key")
 *   AuthMessage = client-first-bare "," server-first "," client-final
 *                 without its proof
 *   proof = ClientKey XOR HMAC(StoredKey, AuthMessage)
 * The server knows only StoredKey and ServerKey: it recovers ClientKey
 * from the proof and checks that its hash is StoredKey.
 */
#include "net/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "SCRAM-SHA-256$"

/* ---- base64 ------------------------------------------------------------- */

static size_t
b64_encode(const uint8_t *in, size_t n, char *out)
{
    return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* Strict: whole groups of four, valid characters, padding only at the end. */
static bool
b64_decode(const char *in, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
    size_t pad = 0;
    int r;

    if (n == 0 || n % 4 != 0 || n / 4 * 3 > cap)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
                  || (c >= '0' && c <= '9') || c == '+' || c == '/';
        if (c == '=' && i >= n - 2) {
            pad++;
            continue;
        }
        if (!ok || pad > 0)
            return false;
    }
    r = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (r < 0 || (size_t)r < pad)
        return false;
    *outlen = (size_t)r - pad;
    return true;
}

/* ---- keys --------------------------------------------------------------- */

static bool
hmac(const uint8_t *key, size_t klen, const void *msg, size_t mlen,
     uint8_t out[SCRAM_KEY_LEN])
{
    unsigned int n = SCRAM_KEY_LEN;

    return HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &n) != NULL
           && n == SCRAM_KEY_LEN;
}

static tarn_rc
derive(const char *password, const uint8_t *salt, size_t salt_len, int iter,
       uint8_t client_key[SCRAM_KEY_LEN], scram_verifier *v, tarn_err *err)
{
    uint8_t salted[SCRAM_KEY_LEN];

    if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len,
                          iter, EVP_sha256(), SCRAM_KEY_LEN, salted)
            != 1
        || !hmac(salted, SCRAM_KEY_LEN, "Client Key", 10, client_key)
        || !hmac(salted, SCRAM_KEY_LEN, "Server Key", 10, v->server_key))
        return tarn_err_set(err, TARN_EIO, "SCRAM key derivation failed");
    SHA256(client_key, SCRAM_KEY_LEN, v->stored_key);
    OPENSSL_cleanse(salted, sizeof(salted));
    return TARN_OK;
}

tarn_rc
scram_verifier_parse(const char *s, scram_verifier *out, tarn_err *err)
{
    const char *p, *colon, *dollar, *colon2;
    uint8_t key[SCRAM_KEY_LEN + 8];
    char *end;
    long iter;
    size_t n;

    memset(out, 0, sizeof(*out));
    if (strncmp(s, PREFIX, strlen(PREFIX)) != 0)
        return tarn_err_set(err, TARN_EINVAL,
                            "a SCRAM verifier starts with \"%s\"", PREFIX);
    p = s + strlen(PREFIX);
    colon = strchr(p, ':');
    dollar = colon ? strchr(colon, '$') : NULL;
    colon2 = dollar ? strchr(dollar, ':') : NULL;
    if (colon2 == NULL)
        return tarn_err_set(err, TARN_EINVAL,
                            "a SCRAM verifier has the form "
                            "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:"
                            "<ServerKey>");
    iter = strtol(p, &end, 10);
    if (end != colon || iter < 1 || iter > 10000000)
        return tarn_err_set(err, TARN_EINVAL,
                            "bad iteration count in the SCRAM verifier");
    out->iterations = (int)iter;
    if (!b64_decode(colon + 1, (size_t)(dollar - colon - 1), out->salt,
                    sizeof(out->salt), &out->salt_len))
        return tarn_err_set(err, TARN_EINVAL,
                            "bad salt in the SCRAM verifier (base64)");
    /* Decoding writes whole groups of three: go through a roomier buffer. */
    if (!b64_decode(dollar + 1, (size_t)(colon2 - dollar - 1), key, sizeof(key),
                    &n)
        || n != SCRAM_KEY_LEN)
        return tarn_err_set(err, TARN_EINVAL,
                            "bad StoredKey in the SCRAM verifier");
    memcpy(out->stored_key, key, SCRAM_KEY_LEN);
    if (!b64_decode(colon2 + 1, strlen(colon2 + 1), key, sizeof(key), &n)
        || n != SCRAM_KEY_LEN)
        return tarn_err_set(err, TARN_EINVAL,
                            "bad ServerKey in the SCRAM verifier");
    memcpy(out->server_key, key, SCRAM_KEY_LEN);
    return TARN_OK;
}

tarn_rc
scram_verifier_derive(const char *password, const uint8_t *salt,
                      size_t salt_len, int iterations, scram_verifier *out,
                      tarn_err *err)
{
    uint8_t ck[SCRAM_KEY_LEN];
    tarn_rc rc;

    memset(out, 0, sizeof(*out));
    if (salt_len > SCRAM_SALT_MAX || iterations < 1)
        return tarn_err_set(err, TARN_EINVAL, "bad SCRAM salt or count");
    out->iterations = iterations;
    out->salt_len = salt_len;
    memcpy(out->salt, salt, salt_len);
    rc = derive(password, salt, salt_len, iterations, ck, out, err);
    OPENSSL_cleanse(ck, sizeof(ck));
    return rc;
}

tarn_rc
scram_verifier_from_password(const char *password, int iterations,
                             scram_verifier *out, tarn_err *err)
{
    uint8_t salt[16];

    if (RAND_bytes(salt, (int)sizeof(salt)) != 1)
        return tarn_err_set(err, TARN_EIO, "no random bytes for a salt");
    return scram_verifier_derive(password, salt, sizeof(salt), iterations, out,
                                 err);
}

tarn_rc
scram_verifier_from_setting(const char *setting, scram_verifier *out,
                            tarn_err *err)
{
    if (strncmp(setting, PREFIX, strlen(PREFIX)) == 0)
        return scram_verifier_parse(setting, out, err);
    return scram_verifier_from_password(setting, SCRAM_ITER_DEF, out, err);
}

char *
scram_verifier_format(const scram_verifier *v, char *buf, size_t len)
{
    char salt[SCRAM_SALT_MAX * 2], sk[64], svk[64];

    b64_encode(v->salt, v->salt_len, salt);
    b64_encode(v->stored_key, SCRAM_KEY_LEN, sk);
    b64_encode(v->server_key, SCRAM_KEY_LEN, svk);
    snprintf(buf, len, PREFIX "%d:%s$%s:%s", v->iterations, salt, sk, svk);
    return buf;
}

/* ---- the exchange ------------------------------------------------------- */

/* A printable nonce: 0x21..0x7e without ','. */
static bool
nonce_ok(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
            return false;
    return true;
}

/* Copy @p len bytes of a message as a C string; refuse embedded NULs. */
static bool
msg_copy(const uint8_t *msg, size_t len, char *out, size_t cap)
{
    if (len >= cap || memchr(msg, '\0', len) != NULL)
        return false;
    memcpy(out, msg, len);
    out[len] = '\0';
    return true;
}

tarn_rc
scram_server_first(scram_state *st, const scram_verifier *v, const uint8_t *msg,
                   size_t len, const char *server_nonce, char *reply,
                   size_t *reply_len, tarn_err *err)
{
    char buf[SCRAM_MSG_MAX], snonce[64], salt[SCRAM_SALT_MAX * 2];
    const char *bare, *r, *rend;
    int n;

    memset(st, 0, sizeof(*st));
    st->v = *v;
    if (msg == NULL || !msg_copy(msg, len, buf, sizeof(buf)))
        return tarn_err_set(err, TARN_EPROTO,
                            "malformed SCRAM client-first-message");
    /* gs2-header: cbind flag, authzid (empty), then the bare message. */
    if (strncmp(buf, "p=", 2) == 0)
        return tarn_err_set(err, TARN_EPROTO,
                            "the client asked for channel binding, which "
                            "tarn does not offer");
    if ((buf[0] != 'n' && buf[0] != 'y') || buf[1] != ',')
        return tarn_err_set(err, TARN_EPROTO, "malformed SCRAM GS2 header");
    if (buf[2] != ',')
        return tarn_err_set(err, TARN_EPROTO,
                            "SCRAM authorization identities are not "
                            "supported");
    memcpy(st->gs2, buf, 3);
    bare = buf + 3;
    if (strncmp(bare, "m=", 2) == 0)
        return tarn_err_set(err, TARN_EPROTO,
                            "SCRAM mandatory extensions are not supported");
    if (strncmp(bare, "n=", 2) != 0)
        return tarn_err_set(err, TARN_EPROTO,
                            "SCRAM client-first-message has no user name");
    r = strstr(bare, ",r=");
    if (r == NULL)
        return tarn_err_set(err, TARN_EPROTO,
                            "SCRAM client-first-message has no nonce");
    r += 3;
    rend = strchr(r, ',');
    if (rend == NULL)
        rend = r + strlen(r);
    if (!nonce_ok(r, (size_t)(rend - r)))
        return tarn_err_set(err, TARN_EPROTO, "bad SCRAM client nonce");
    if (server_nonce == NULL) {
        uint8_t raw[SCRAM_NONCE_LEN];
        if (RAND_bytes(raw, sizeof(raw)) != 1)
            return tarn_err_set(err, TARN_EIO, "no random bytes for a nonce");
        b64_encode(raw, sizeof(raw), snonce);
    } else {
        snprintf(snonce, sizeof(snonce), "%s", server_nonce);
    }
    snprintf(st->client_first_bare, sizeof(st->client_first_bare), "%s", bare);
    snprintf(st->nonce, sizeof(st->nonce), "%.*s%s", (int)(rend - r), r,
             snonce);
    b64_encode(v->salt, v->salt_len, salt);
    n = snprintf(st->server_first, sizeof(st->server_first), "r=%s,s=%s,i=%d",
                 st->nonce, salt, v->iterations);
    if (n < 0 || (size_t)n >= sizeof(st->server_first))
        return tarn_err_set(err, TARN_EPROTO, "SCRAM nonce too long");
    memcpy(reply, st->server_first, (size_t)n + 1);
    *reply_len = (size_t)n;
    return TARN_OK;
}

static bool
auth_message(const char *cfb, const char *sf, const char *cf_noproof, char *out,
             size_t cap)
{
    int n = snprintf(out, cap, "%s,%s,%s", cfb, sf, cf_noproof);

    return n >= 0 && (size_t)n < cap;
}

tarn_rc
scram_server_final(scram_state *st, const uint8_t *msg, size_t len, bool *ok,
                   char *reply, size_t *reply_len, tarn_err *err)
{
    char buf[SCRAM_MSG_MAX], gs2b64[16], am[3 * SCRAM_MSG_MAX + 8];
    char sigb64[64];
    uint8_t proof[SCRAM_KEY_LEN + 2], sig[SCRAM_KEY_LEN], ck[SCRAM_KEY_LEN],
        h[SCRAM_KEY_LEN];
    const char *r, *p;
    size_t plen, nlen = strlen(st->nonce);

    *ok = false;
    if (!msg_copy(msg, len, buf, sizeof(buf)))
        return tarn_err_set(err, TARN_EPROTO,
                            "malformed SCRAM client-final-message");
    b64_encode((const uint8_t *)st->gs2, 3, gs2b64);
    if (strncmp(buf, "c=", 2) != 0 || strncmp(buf + 2, gs2b64, 4) != 0
        || buf[6] != ',')
        return tarn_err_set(err, TARN_EPROTO,
                            "SCRAM channel binding data does not match the "
                            "GS2 header");
    r = buf + 7;
    if (strncmp(r, "r=", 2) != 0 || strncmp(r + 2, st->nonce, nlen) != 0
        || (r[2 + nlen] != ','))
        return tarn_err_set(err, TARN_EPROTO, "SCRAM nonce does not match");
    p = strstr(r, ",p=");
    if (p == NULL)
        return tarn_err_set(err, TARN_EPROTO,
                            "SCRAM client-final-message has no proof");
    if (strchr(p + 3, ',') != NULL
        || !b64_decode(p + 3, strlen(p + 3), proof, sizeof(proof), &plen)
        || plen != SCRAM_KEY_LEN)
        return tarn_err_set(err, TARN_EPROTO, "malformed SCRAM proof");
    buf[p - buf] = '\0'; /* the message without its proof */
    if (!auth_message(st->client_first_bare, st->server_first, buf, am,
                      sizeof(am)))
        return tarn_err_set(err, TARN_EPROTO, "SCRAM messages too long");
    if (!hmac(st->v.stored_key, SCRAM_KEY_LEN, am, strlen(am), sig))
        return tarn_err_set(err, TARN_EIO, "HMAC failed");
    for (int i = 0; i < SCRAM_KEY_LEN; i++)
        ck[i] = proof[i] ^ sig[i];
    SHA256(ck, SCRAM_KEY_LEN, h);
    if (CRYPTO_memcmp(h, st->v.stored_key, SCRAM_KEY_LEN) != 0)
        return TARN_OK; /* wrong password */
    if (!hmac(st->v.server_key, SCRAM_KEY_LEN, am, strlen(am), sig))
        return tarn_err_set(err, TARN_EIO, "HMAC failed");
    b64_encode(sig, SCRAM_KEY_LEN, sigb64);
    *reply_len = (size_t)snprintf(reply, SCRAM_MSG_MAX, "v=%s", sigb64);
    *ok = true;
    return TARN_OK;
}

tarn_rc
scram_client_final(const char *password, const char *client_first_bare,
                   const char *server_first, char *out, size_t len,
                   tarn_err *err)
{
    scram_verifier v;
    char nob[SCRAM_MSG_MAX + 16], am[3 * SCRAM_MSG_MAX + 8], pb64[64];
    uint8_t ck[SCRAM_KEY_LEN], sig[SCRAM_KEY_LEN];
    const char *r = strstr(server_first, "r="),
               *s = strstr(server_first, ",s=");
    const char *i = strstr(server_first, ",i=");
    size_t rlen;
    tarn_rc rc;

    if (r != server_first || s == NULL || i == NULL || i < s)
        return tarn_err_set(err, TARN_EPROTO, "malformed server-first");
    memset(&v, 0, sizeof(v));
    if (!b64_decode(s + 3, (size_t)(i - s - 3), v.salt, sizeof(v.salt),
                    &v.salt_len))
        return tarn_err_set(err, TARN_EPROTO, "bad salt");
    rlen = (size_t)(s - r - 2);
    snprintf(nob, sizeof(nob), "c=biws,r=%.*s", (int)rlen, r + 2);
    if ((rc = derive(password, v.salt, v.salt_len, atoi(i + 3), ck, &v, err))
        != TARN_OK)
        return rc;
    if (!auth_message(client_first_bare, server_first, nob, am, sizeof(am))
        || !hmac(v.stored_key, SCRAM_KEY_LEN, am, strlen(am), sig))
        return tarn_err_set(err, TARN_EPROTO, "SCRAM messages too long");
    for (int k = 0; k < SCRAM_KEY_LEN; k++)
        ck[k] ^= sig[k];
    b64_encode(ck, SCRAM_KEY_LEN, pb64);
    snprintf(out, len, "%s,p=%s", nob, pb64);
    return TARN_OK;
}
