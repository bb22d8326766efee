/*
 * pagestream.c - the pagestream request parser and response encoder.
 *
 * v3 adds a request id in front of the two LSNs and makes every response
 * echo the request's header and fields; v2 responses carry only the tag
 * and the payload.  The compute checks the echo and PANICs on a mismatch,
 * so the encoder takes every echoed field from the parsed request.
 */
#include "net/pagestream.h"

#include <string.h>

#include "net/pgwire.h"

static const uint8_t body_len[PS_REQ_NTYPES] = {
    13,     /* Exists: RelTag */
    13,     /* Nblocks: RelTag */
    13 + 4, /* GetPage: RelTag, blkno */
    4,      /* DbSize: dbOid */
    1 + 4,  /* GetSlruSegment: kind, segno */
};

const char *
ps_req_name(uint8_t tag)
{
    static const char *const names[PS_REQ_NTYPES] = {
        "exists", "nblocks", "getpage", "dbsize", "slru"};

    return tag < PS_REQ_NTYPES ? names[tag] : "invalid";
}

static size_t
head_len(int version)
{
    return version == 3 ? 25 : 17;
}

size_t
ps_request_size(int version, uint8_t tag)
{
    if (tag >= PS_REQ_NTYPES)
        return 0;
    return head_len(version) + body_len[tag];
}

tarn_rc
ps_parse_request(int version, const uint8_t *buf, size_t len, ps_req *out,
                 tarn_err *err)
{
    const uint8_t *p;

    memset(out, 0, sizeof(*out));
    if (len < 1)
        return tarn_err_set(err, TARN_EPROTO, "empty pagestream request");
    out->tag = buf[0];
    if (out->tag >= PS_REQ_NTYPES)
        return tarn_err_set(err, TARN_EPROTO, "invalid tag %u", out->tag);
    if (len < ps_request_size(version, out->tag))
        return tarn_err_set(
            err, TARN_EPROTO, "%s request of %zu bytes, shorter than its %zu",
            ps_req_name(out->tag), len, ps_request_size(version, out->tag));
    p = buf + 1;
    if (version == 3) {
        out->reqid = pgw_get_be64(p);
        p += 8;
    }
    out->request_lsn = pgw_get_be64(p);
    out->not_modified_since = pgw_get_be64(p + 8);
    p += 16;
    switch (out->tag) {
    case PS_REQ_EXISTS:
    case PS_REQ_NBLOCKS:
    case PS_REQ_GETPAGE:
        out->spc = pgw_get_be32(p);
        out->db = pgw_get_be32(p + 4);
        out->rel = pgw_get_be32(p + 8);
        out->fork = p[12];
        if (out->tag == PS_REQ_GETPAGE)
            out->blkno = pgw_get_be32(p + 13);
        break;
    case PS_REQ_DBSIZE:
        out->dboid = pgw_get_be32(p);
        break;
    default:
        out->kind = p[0];
        out->segno = pgw_get_be32(p + 1);
        break;
    }
    return TARN_OK;
}

static uint8_t *
put_reltag(uint8_t *p, const ps_req *rq)
{
    pgw_put_be32(p, rq->spc);
    pgw_put_be32(p + 4, rq->db);
    pgw_put_be32(p + 8, rq->rel);
    p[12] = rq->fork;
    return p + 13;
}

size_t
ps_encode_fixed(int version, const ps_req *rq, const ps_resp *rs, uint8_t *buf)
{
    uint8_t *p = buf;
    bool v3 = version == 3;

    *p++ = rs->tag;
    if (v3) {
        pgw_put_be64(p, rq->reqid);
        pgw_put_be64(p + 8, rq->request_lsn);
        pgw_put_be64(p + 16, rq->not_modified_since);
        p += 24;
    }
    switch (rs->tag) {
    case PS_RESP_EXISTS:
        if (v3)
            p = put_reltag(p, rq);
        *p++ = rs->exists ? 1 : 0;
        break;
    case PS_RESP_NBLOCKS:
        if (v3)
            p = put_reltag(p, rq);
        pgw_put_be32(p, rs->nblocks);
        p += 4;
        break;
    case PS_RESP_GETPAGE:
        if (v3) {
            p = put_reltag(p, rq);
            pgw_put_be32(p, rq->blkno);
            p += 4;
        }
        break;
    case PS_RESP_DBSIZE:
        if (v3) {
            pgw_put_be32(p, rq->dboid);
            p += 4;
        }
        pgw_put_be64(p, (uint64_t)rs->db_size);
        p += 8;
        break;
    case PS_RESP_SLRU:
        if (v3) {
            *p++ = rq->kind;
            pgw_put_be32(p, rq->segno);
            p += 4;
        }
        pgw_put_be32(p, rs->nblocks);
        p += 4;
        break;
    default: /* PS_RESP_ERROR: the message follows */
        break;
    }
    return (size_t)(p - buf);
}

size_t
ps_payload_len(const ps_resp *rs)
{
    switch (rs->tag) {
    case PS_RESP_GETPAGE:
        return PS_BLCKSZ;
    case PS_RESP_SLRU:
        return (size_t)rs->nblocks * PS_BLCKSZ;
    case PS_RESP_ERROR:
        return strlen(rs->errmsg) + 1;
    default:
        return 0;
    }
}

size_t
ps_encode_request(int version, const ps_req *rq, uint8_t *buf)
{
    uint8_t *p = buf;

    *p++ = rq->tag;
    if (version == 3) {
        pgw_put_be64(p, rq->reqid);
        p += 8;
    }
    pgw_put_be64(p, rq->request_lsn);
    pgw_put_be64(p + 8, rq->not_modified_since);
    p += 16;
    switch (rq->tag) {
    case PS_REQ_EXISTS:
    case PS_REQ_NBLOCKS:
    case PS_REQ_GETPAGE:
        p = put_reltag(p, rq);
        if (rq->tag == PS_REQ_GETPAGE) {
            pgw_put_be32(p, rq->blkno);
            p += 4;
        }
        break;
    case PS_REQ_DBSIZE:
        pgw_put_be32(p, rq->dboid);
        p += 4;
        break;
    default:
        *p++ = rq->kind;
        pgw_put_be32(p, rq->segno);
        p += 4;
        break;
    }
    return (size_t)(p - buf);
}
