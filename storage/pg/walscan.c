/*
 * walscan.c - the WAL stream scanner.
 *
 * The scanner is a state machine over the byte stream.  Page boundaries
 * (every 8 KiB) interrupt whatever state it is in with a page header;
 * between them it is in one of:
 *
 *   SKIP_CONT  skipping the tail of a record that began before our start
 *   PAD        skipping alignment padding up to the next 8-byte boundary
 *   RECHDR     collecting a 24-byte record header (it may span pages)
 *   BODY       consuming a record's body, CRC as it streams by
 *   SWITCH     skipping the dead rest of a segment after XLOG_SWITCH
 *
 * The CRC of a record covers its body and then the first 20 bytes of its
 * header, so it can be computed as the body streams through without
 * keeping the record: the header is held back and folded in at the end.
 */
#include "storage/pg/walscan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/core/crc32c.h"
#include "storage/pg/pgwal.h"

typedef enum scan_mode {
    M_SKIP_CONT,
    M_PAD,
    M_RECHDR,
    M_BODY,
    M_SWITCH
} scan_mode;

struct walscan {
    walscan_opts o;
    tarn_lsn pos;
    scan_mode mode;

    bool in_phd;
    uint8_t phd[PG_LONG_PHD];
    uint32_t phd_need, phd_got;

    bool skip_known; /* SKIP_CONT: rem_len has been read */
    uint64_t skip_left;

    uint8_t rh[PG_REC_HDR];
    uint32_t rh_got;
    tarn_lsn rec_start;
    uint32_t tot, got;
    uint32_t crc;
    uint8_t *buf;
    size_t cap;

    tarn_lsn exp_prev;                   /* start of the last complete record */
    tarn_lsn boundary, boundary_start;   /* last record end <= pos, its start */
    tarn_lsn pending_end, pending_start; /* a record end whose padding
                                             or dead segment tail has not
                                             been fed yet */
    uint64_t sysid;
    uint32_t tli;

    tarn_rc failed;
    char failmsg[TARN_ERR_MSG];
};

tarn_rc
walscan_create(const walscan_opts *o, walscan **out, tarn_err *err)
{
    walscan *s;

    if (!pg_seg_size_valid(o->seg_size))
        return tarn_err_set(err, TARN_EINVAL, "invalid WAL segment size %u",
                            o->seg_size);
    if (o->mid_record && o->start % PG_XLOG_BLCKSZ != 0)
        return tarn_err_set(err, TARN_EINVAL,
                            "a mid-record start must be a page boundary");
    if (!o->mid_record && o->start % 8 != 0)
        return tarn_err_set(err, TARN_EINVAL,
                            "a record boundary must be 8-byte aligned");
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return tarn_err_set(err, TARN_ENOMEM, "out of memory");
    s->o = *o;
    s->pos = o->start;
    s->sysid = o->sysid;
    s->tli = o->tli;
    s->exp_prev = o->prev;
    s->boundary_start = o->prev;
    s->mode = o->mid_record ? M_SKIP_CONT : M_RECHDR;
    s->boundary = o->mid_record ? 0 : o->start;
    *out = s;
    return TARN_OK;
}

void
walscan_destroy(walscan *s)
{
    if (s == NULL)
        return;
    free(s->buf);
    free(s);
}

static tarn_rc fail(walscan *s, tarn_rc code, tarn_err *err, const char *fmt,
                    ...) TARN_PRINTF(4, 5);

static tarn_rc
fail(walscan *s, tarn_rc code, tarn_err *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(s->failmsg, sizeof(s->failmsg), fmt, ap);
    va_end(ap);
    s->failed = code;
    return tarn_err_set(err, code, "%s", s->failmsg);
}

/* A record is in progress: its header or body continues on a new page. */
static bool
in_record(const walscan *s)
{
    return s->mode == M_BODY || (s->mode == M_RECHDR && s->rh_got > 0);
}

/* Validate the page header just collected at page address @p page. */
static tarn_rc
check_page_header(walscan *s, tarn_lsn page, tarn_err *err)
{
    const uint8_t *h = s->phd;
    char l1[TARN_LSN_STRLEN], l2[TARN_LSN_STRLEN];
    uint16_t magic = tarn_get_u16(h + PG_PHD_MAGIC);
    uint16_t info = tarn_get_u16(h + PG_PHD_INFO);
    uint32_t tli = tarn_get_u32(h + PG_PHD_TLI);
    uint64_t addr = tarn_get_u64(h + PG_PHD_PAGEADDR);
    uint32_t rem = tarn_get_u32(h + PG_PHD_REM_LEN);

    if (magic != PG_XLOG_PAGE_MAGIC)
        return fail(s, TARN_ECORRUPT, err,
                    "invalid magic number %04X in WAL page at %s", magic,
                    tarn_lsn_format(page, l1));
    if (info & ~PG_XLP_ALL_FLAGS)
        return fail(s, TARN_ECORRUPT, err,
                    "invalid info bits %04X in WAL page at %s", info,
                    tarn_lsn_format(page, l1));
    if (addr != page)
        return fail(s, TARN_ECORRUPT, err, "WAL page at %s claims address %s",
                    tarn_lsn_format(page, l1), tarn_lsn_format(addr, l2));
    if (s->tli == 0)
        s->tli = tli;
    else if (tli != s->tli)
        return fail(s, TARN_ECORRUPT, err,
                    "WAL page at %s is on timeline %u, expected %u",
                    tarn_lsn_format(page, l1), tli, s->tli);
    if (page % s->o.seg_size == 0) {
        uint64_t sysid = tarn_get_u64(h + PG_PHD_SYSID);
        if (!(info & PG_XLP_LONG_HEADER))
            return fail(s, TARN_ECORRUPT, err,
                        "WAL segment at %s lacks its long page header",
                        tarn_lsn_format(page, l1));
        if (tarn_get_u32(h + PG_PHD_SEG_SIZE) != s->o.seg_size
            || tarn_get_u32(h + PG_PHD_XLOG_BLCKSZ) != PG_XLOG_BLCKSZ)
            return fail(s, TARN_ECORRUPT, err,
                        "WAL segment at %s has segment size %u and page "
                        "size %u, expected %u and %u",
                        tarn_lsn_format(page, l1),
                        tarn_get_u32(h + PG_PHD_SEG_SIZE),
                        tarn_get_u32(h + PG_PHD_XLOG_BLCKSZ), s->o.seg_size,
                        PG_XLOG_BLCKSZ);
        if (s->sysid == 0)
            s->sysid = sysid;
        else if (sysid != s->sysid)
            return fail(s, TARN_ECORRUPT, err,
                        "WAL segment at %s belongs to system %llu, expected "
                        "%llu",
                        tarn_lsn_format(page, l1), (unsigned long long)sysid,
                        (unsigned long long)s->sysid);
    }

    switch (s->mode) {
    case M_SKIP_CONT:
        if (!s->skip_known) {
            s->skip_known = true;
            s->skip_left = (info & PG_XLP_FIRST_IS_CONTRECORD) ? rem : 0;
        } else if (s->skip_left > 0
                   && (!(info & PG_XLP_FIRST_IS_CONTRECORD)
                       || rem != s->skip_left)) {
            return fail(s, TARN_ECORRUPT, err,
                        "bad continuation header in WAL page at %s",
                        tarn_lsn_format(page, l1));
        }
        if (s->skip_left == 0)
            s->mode = M_PAD;
        return TARN_OK;
    case M_SWITCH:
        return TARN_OK; /* not reached: SWITCH skips headers raw */
    default:
        break;
    }
    if (in_record(s)) {
        if (info & PG_XLP_FIRST_IS_OVERWRITE_CONTRECORD) {
            /*
             * The primary crashed in the middle of this record and wrote
             * something else here after recovery: the partial record is
             * dead, and the next one starts right after this header.
             */
            s->mode = M_RECHDR;
            s->rh_got = 0;
            return TARN_OK;
        }
        if (!(info & PG_XLP_FIRST_IS_CONTRECORD))
            return fail(s, TARN_ECORRUPT, err,
                        "no contrecord flag in WAL page at %s for the record "
                        "at %s",
                        tarn_lsn_format(page, l1),
                        tarn_lsn_format(s->rec_start, l2));
        uint32_t got = s->mode == M_BODY ? s->got : s->rh_got;
        if (rem != s->tot - got)
            return fail(s, TARN_ECORRUPT, err,
                        "invalid contrecord length %u in WAL page at %s "
                        "(expected %u)",
                        rem, tarn_lsn_format(page, l1), s->tot - got);
        return TARN_OK;
    }
    if (info & PG_XLP_FIRST_IS_CONTRECORD)
        return fail(s, TARN_ECORRUPT, err,
                    "unexpected contrecord flag in WAL page at %s",
                    tarn_lsn_format(page, l1));
    return TARN_OK;
}

/* The 4-byte length of a record header is in: is it plausible? */
static tarn_rc
check_length(walscan *s, tarn_err *err)
{
    char l1[TARN_LSN_STRLEN];
    uint32_t tot = tarn_get_u32(s->rh + PG_REC_TOT_LEN);

    if (tot == 0)
        return fail(s, TARN_ECORRUPT, err, "end of WAL at %s (record length 0)",
                    tarn_lsn_format(s->rec_start, l1));
    if (tot < PG_REC_HDR || tot > PG_REC_MAX_LEN)
        return fail(s, TARN_ECORRUPT, err, "invalid record length %u at %s",
                    tot, tarn_lsn_format(s->rec_start, l1));
    s->tot = tot;
    return TARN_OK;
}

static tarn_rc
check_header(walscan *s, tarn_err *err)
{
    char l1[TARN_LSN_STRLEN], l2[TARN_LSN_STRLEN], l3[TARN_LSN_STRLEN];
    uint8_t rmid = s->rh[PG_REC_RMID];
    tarn_lsn prev = tarn_get_u64(s->rh + PG_REC_PREV);

    if (!pg_rmid_valid(rmid))
        return fail(s, TARN_ECORRUPT, err,
                    "invalid resource manager id %u at %s", rmid,
                    tarn_lsn_format(s->rec_start, l1));
    if (s->exp_prev != 0 && prev != s->exp_prev)
        return fail(s, TARN_ECONFLICT, err,
                    "record at %s has xl_prev %s, but the previous record "
                    "starts at %s",
                    tarn_lsn_format(s->rec_start, l1),
                    tarn_lsn_format(prev, l2),
                    tarn_lsn_format(s->exp_prev, l3));
    if (s->o.assemble) {
        if (s->cap < s->tot) {
            size_t cap = s->cap ? s->cap : 8192;
            while (cap < s->tot)
                cap *= 2;
            uint8_t *b = realloc(s->buf, cap);
            if (b == NULL)
                return fail(s, TARN_ENOMEM, err,
                            "out of memory for a record of %u bytes", s->tot);
            s->buf = b;
            s->cap = cap;
        }
        memcpy(s->buf, s->rh, PG_REC_HDR);
    }
    s->crc = TARN_CRC32C_INIT;
    s->got = PG_REC_HDR;
    return TARN_OK;
}

/* A pending record end becomes the boundary once the bytes reach it. */
static void
settle_boundary(walscan *s)
{
    if (s->pending_end != 0 && s->pos >= s->pending_end) {
        s->boundary = s->pending_end;
        s->boundary_start = s->pending_start;
        s->pending_end = 0;
    }
}

static tarn_rc
finish_record(walscan *s, walscan_fn cb, void *arg, tarn_err *err)
{
    char l1[TARN_LSN_STRLEN];
    uint32_t crc =
        tarn_crc32c_final(tarn_crc32c_update(s->crc, s->rh, PG_REC_CRC));
    walscan_rec r;

    if (crc != tarn_get_u32(s->rh + PG_REC_CRC))
        return fail(s, TARN_ECORRUPT, err, "incorrect CRC in the record at %s",
                    tarn_lsn_format(s->rec_start, l1));
    r.start = s->rec_start;
    r.prev = tarn_get_u64(s->rh + PG_REC_PREV);
    r.tot_len = s->tot;
    r.xid = tarn_get_u32(s->rh + PG_REC_XID);
    r.info = s->rh[PG_REC_INFO];
    r.rmid = s->rh[PG_REC_RMID];
    r.data = s->o.assemble ? s->buf : NULL;
    if (r.rmid == PG_RM_XLOG_ID && (r.info & 0xF0) == PG_XLOG_SWITCH) {
        r.end = s->pos % s->o.seg_size == 0
                    ? s->pos
                    : s->pos - s->pos % s->o.seg_size + s->o.seg_size;
        s->mode = M_SWITCH;
    } else {
        r.end = PG_MAXALIGN(s->pos);
        s->mode = M_PAD;
    }
    s->rh_got = 0;
    s->exp_prev = r.start;
    if (s->mode == M_SWITCH && s->pos == r.end)
        s->mode = M_RECHDR;
    /*
     * EndRecPtr lies past the padding, and for a switch record at the end
     * of the segment.  Until those bytes have been fed, the last safe
     * boundary stays where it was (see settle_boundary()).
     */
    s->pending_end = r.end;
    s->pending_start = r.start;
    settle_boundary(s);
    if (cb != NULL) {
        tarn_rc rc = cb(arg, &r, err);
        if (rc != TARN_OK) {
            s->failed = rc;
            snprintf(s->failmsg, sizeof(s->failmsg), "%s",
                     err ? err->msg : "stopped by the caller");
            return rc;
        }
    }
    return TARN_OK;
}

tarn_rc
walscan_feed(walscan *s, const uint8_t *p, size_t len, walscan_fn cb, void *arg,
             tarn_err *err)
{
    tarn_rc rc;

    if (s->failed != TARN_OK)
        return tarn_err_set(err, s->failed, "%s", s->failmsg);
    while (len > 0) {
        uint64_t page_left;
        size_t n;

        if (s->mode != M_SWITCH && !s->in_phd && s->pos % PG_XLOG_BLCKSZ == 0) {
            s->in_phd = true;
            s->phd_got = 0;
            s->phd_need = pg_page_header_size(s->pos, s->o.seg_size);
        }
        if (s->in_phd) {
            n = s->phd_need - s->phd_got;
            if (n > len)
                n = len;
            memcpy(s->phd + s->phd_got, p, n);
            s->phd_got += (uint32_t)n;
            p += n;
            len -= n;
            if (s->phd_got < s->phd_need)
                return TARN_OK;
            s->in_phd = false;
            rc = check_page_header(s, s->pos, err);
            s->pos += s->phd_need;
            if (rc != TARN_OK)
                return rc;
            if (s->mode == M_PAD && s->boundary == 0)
                s->boundary = s->pos; /* mid-record start, nothing to skip */
            continue;
        }
        page_left = PG_XLOG_BLCKSZ - s->pos % PG_XLOG_BLCKSZ;
        switch (s->mode) {
        case M_SKIP_CONT:
            n = s->skip_left < page_left ? s->skip_left : page_left;
            if (n > len)
                n = len;
            s->skip_left -= n;
            s->pos += n;
            p += n;
            len -= n;
            if (s->skip_left == 0) {
                s->mode = M_PAD;
                s->pending_end = PG_MAXALIGN(s->pos);
                s->pending_start = 0;
            }
            break;
        case M_PAD:
            n = PG_MAXALIGN(s->pos) - s->pos;
            if (n > len)
                n = len;
            s->pos += n;
            p += n;
            len -= n;
            if (s->pos % 8 == 0)
                s->mode = M_RECHDR;
            break;
        case M_RECHDR:
            if (s->rh_got == 0)
                s->rec_start = s->pos;
            n = PG_REC_HDR - s->rh_got;
            if (n > page_left)
                n = page_left;
            if (n > len)
                n = len;
            {
                uint32_t before = s->rh_got;
                memcpy(s->rh + s->rh_got, p, n);
                s->rh_got += (uint32_t)n;
                s->pos += n;
                p += n;
                len -= n;
                if (before < 4 && s->rh_got >= 4
                    && (rc = check_length(s, err)) != TARN_OK)
                    return rc;
            }
            if (s->rh_got < PG_REC_HDR)
                break;
            if ((rc = check_header(s, err)) != TARN_OK)
                return rc;
            if (s->tot == PG_REC_HDR) {
                if ((rc = finish_record(s, cb, arg, err)) != TARN_OK)
                    return rc;
            } else {
                s->mode = M_BODY;
            }
            break;
        case M_BODY:
            n = s->tot - s->got;
            if (n > page_left)
                n = page_left;
            if (n > len)
                n = len;
            s->crc = tarn_crc32c_update(s->crc, p, n);
            if (s->o.assemble)
                memcpy(s->buf + s->got, p, n);
            s->got += (uint32_t)n;
            s->pos += n;
            p += n;
            len -= n;
            if (s->got == s->tot
                && (rc = finish_record(s, cb, arg, err)) != TARN_OK)
                return rc;
            break;
        case M_SWITCH: {
            uint64_t seg_left = s->o.seg_size - s->pos % s->o.seg_size;
            n = seg_left < len ? seg_left : len;
            s->pos += n;
            p += n;
            len -= n;
            if (s->pos % s->o.seg_size == 0)
                s->mode = M_RECHDR;
            break;
        }
        }
        settle_boundary(s);
    }
    return TARN_OK;
}

tarn_lsn
walscan_pos(const walscan *s)
{
    return s->pos;
}

tarn_lsn
walscan_boundary(const walscan *s)
{
    return s->boundary;
}

tarn_lsn
walscan_last_start(const walscan *s)
{
    return s->boundary_start;
}

uint64_t
walscan_sysid(const walscan *s)
{
    return s->sysid;
}

uint32_t
walscan_tli(const walscan *s)
{
    return s->tli;
}
