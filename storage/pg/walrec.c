/*
 * walrec.c - WAL record decoding (reference/pg15-wal-and-redo.md 1.5-1.9).
 *
 * The header section is a sequence of block reference headers with
 * increasing ids, then optionally origin, top-level xid and the main-data
 * header; the payload that follows holds, per block in id order, the image
 * and then the block data, and last the main data.  Every length is
 * checked against what is left, so a malformed record fails here with a
 * precise message instead of reading past its end.
 */
#include "storage/pg/walrec.h"

#include <lz4.h>
#include <string.h>
#include <zstd.h>

#include "storage/pg/pgwal.h"

#define FAIL(...) return tarn_err_set(err, TARN_ECORRUPT, __VA_ARGS__)

tarn_rc
walrec_decode(const uint8_t *rec, size_t len, tarn_lsn start, tarn_lsn end,
              walrec *r, tarn_err *err)
{
    char l[TARN_LSN_STRLEN];
    const uint8_t *p, *stop;
    size_t datatotal = 0;
    pg_rel prev_rel = {0, 0, 0};
    bool have_rel = false;

    if (len < PG_REC_HDR)
        FAIL("record at %s is shorter than its header",
             tarn_lsn_format(start, l));
    memset(r, 0, offsetof(walrec, blocks));
    r->max_block_id = -1;
    for (int i = 0; i <= PG_XLR_MAX_BLOCK_ID; i++)
        r->blocks[i].in_use = false;
    r->main_data = NULL;
    r->main_len = 0;
    r->raw = rec;
    r->start = start;
    r->end = end;
    r->tot_len = tarn_get_u32(rec + PG_REC_TOT_LEN);
    r->xid = tarn_get_u32(rec + PG_REC_XID);
    r->prev = tarn_get_u64(rec + PG_REC_PREV);
    r->info = rec[PG_REC_INFO];
    r->rmid = rec[PG_REC_RMID];
    if (r->tot_len != len)
        FAIL("record at %s: length %u does not match its buffer of %zu",
             tarn_lsn_format(start, l), r->tot_len, len);

    p = rec + PG_REC_HDR;
    stop = rec + len;
    tarn_lsn_format(start, l);
    /* Header section: stops at the main-data header or when the headers
     * and the payload they announce add up to the record. */
    while ((size_t)(stop - p) > datatotal) {
        uint8_t id = *p++;
        if (id == PG_XLR_BLOCK_ID_DATA_SHORT) {
            if (stop - p < 1)
                FAIL("record at %s: truncated main-data header", l);
            r->main_len = *p++;
            datatotal += r->main_len;
            break;
        }
        if (id == PG_XLR_BLOCK_ID_DATA_LONG) {
            if (stop - p < 4)
                FAIL("record at %s: truncated main-data header", l);
            r->main_len = tarn_get_u32(p);
            p += 4;
            datatotal += r->main_len;
            break;
        }
        if (id == PG_XLR_BLOCK_ID_ORIGIN) {
            if (stop - p < 2)
                FAIL("record at %s: truncated origin", l);
            r->origin = tarn_get_u16(p);
            p += 2;
            continue;
        }
        if (id == PG_XLR_BLOCK_ID_TOPLEVEL_XID) {
            if (stop - p < 4)
                FAIL("record at %s: truncated top-level xid", l);
            r->toplevel_xid = tarn_get_u32(p);
            p += 4;
            continue;
        }
        if (id > PG_XLR_MAX_BLOCK_ID)
            FAIL("record at %s: invalid block id %u", l, id);
        if ((int)id <= r->max_block_id)
            FAIL("record at %s: block id %u out of order", l, id);
        r->max_block_id = id;
        {
            walrec_block *b = &r->blocks[id];
            if (stop - p < 3)
                FAIL("record at %s: truncated block header %u", l, id);
            /* Nothing may survive from a record decoded earlier into the
             * same walrec (has_image, image, data...). */
            memset(b, 0, sizeof(*b));
            b->in_use = true;
            b->flags = p[0];
            b->fork = p[0] & PG_BKPBLOCK_FORK_MASK;
            b->data_len = tarn_get_u16(p + 1);
            p += 3;
            b->will_init = (b->flags & PG_BKPBLOCK_WILL_INIT) != 0;
            if (((b->flags & PG_BKPBLOCK_HAS_DATA) != 0) != (b->data_len > 0))
                FAIL("record at %s: block %u has %u data bytes but flags "
                     "0x%02x",
                     l, id, b->data_len, b->flags);
            if (b->fork > PG_MAX_FORKNUM)
                FAIL("record at %s: block %u has invalid fork %u", l, id,
                     b->fork);
            datatotal += b->data_len;
            if (b->flags & PG_BKPBLOCK_HAS_IMAGE) {
                if (stop - p < 5)
                    FAIL("record at %s: truncated image header %u", l, id);
                b->has_image = true;
                b->image_len = tarn_get_u16(p);
                b->hole_offset = tarn_get_u16(p + 2);
                b->bimg_info = p[4];
                p += 5;
                b->apply = (b->bimg_info & PG_BKPIMAGE_APPLY) != 0;
                bool compressed =
                    (b->bimg_info
                     & (PG_BKPIMAGE_COMPRESS_PGLZ | PG_BKPIMAGE_COMPRESS_LZ4
                        | PG_BKPIMAGE_COMPRESS_ZSTD))
                    != 0;
                if (compressed) {
                    if (b->bimg_info & PG_BKPIMAGE_HAS_HOLE) {
                        if (stop - p < 2)
                            FAIL("record at %s: truncated hole length %u", l,
                                 id);
                        b->hole_length = tarn_get_u16(p);
                        p += 2;
                    } else {
                        b->hole_length = 0;
                    }
                } else {
                    b->hole_length = (uint16_t)(PG_BLCKSZ - b->image_len);
                }
                /* The checks PostgreSQL's reader makes. */
                if ((b->bimg_info & PG_BKPIMAGE_HAS_HOLE)
                    && (b->hole_offset == 0 || b->hole_length == 0
                        || b->image_len == PG_BLCKSZ))
                    FAIL("record at %s: block %u: bad hole (offset %u, "
                         "length %u, image %u)",
                         l, id, b->hole_offset, b->hole_length, b->image_len);
                if (!(b->bimg_info & PG_BKPIMAGE_HAS_HOLE)
                    && (b->hole_offset != 0 || b->hole_length != 0))
                    FAIL("record at %s: block %u: hole without the flag", l,
                         id);
                if (compressed && b->image_len == PG_BLCKSZ)
                    FAIL("record at %s: block %u: compressed image of %u "
                         "bytes",
                         l, id, b->image_len);
                if ((uint32_t)b->hole_offset + b->hole_length > PG_BLCKSZ
                    || b->image_len == 0 || b->image_len > PG_BLCKSZ)
                    FAIL("record at %s: block %u: image length %u, hole "
                         "%u+%u do not fit a page",
                         l, id, b->image_len, b->hole_offset, b->hole_length);
                datatotal += b->image_len;
            }
            if (!(b->flags & PG_BKPBLOCK_SAME_REL)) {
                if (stop - p < 12)
                    FAIL("record at %s: truncated relation of block %u", l, id);
                prev_rel.spc = tarn_get_u32(p);
                prev_rel.db = tarn_get_u32(p + 4);
                prev_rel.rel = tarn_get_u32(p + 8);
                have_rel = true;
                p += 12;
            } else if (!have_rel) {
                FAIL("record at %s: block %u uses SAME_REL without a "
                     "previous relation",
                     l, id);
            }
            b->rel = prev_rel;
            if (stop - p < 4)
                FAIL("record at %s: truncated block number %u", l, id);
            b->blkno = tarn_get_u32(p);
            p += 4;
        }
    }
    if ((size_t)(stop - p) != datatotal)
        FAIL("record at %s: headers announce %zu payload bytes, %zu remain", l,
             datatotal, (size_t)(stop - p));
    /* Payload: per block, the image then the data; then the main data. */
    for (int i = 0; i <= r->max_block_id; i++) {
        walrec_block *b = &r->blocks[i];
        if (!b->in_use)
            continue;
        if (b->has_image) {
            b->image = p;
            p += b->image_len;
        }
        if (b->data_len > 0) {
            b->data = p;
            p += b->data_len;
        }
    }
    if (r->main_len > 0) {
        r->main_data = p;
        p += r->main_len;
    }
    TARN_ASSERT(p == stop);
    return TARN_OK;
}

int
pg_pglz_decompress(const uint8_t *src, int srclen, uint8_t *dst, int rawsize)
{
    const uint8_t *sp = src, *send = src + srclen;
    uint8_t *dp = dst, *dend = dst + rawsize;

    while (sp < send && dp < dend) {
        uint8_t ctrl = *sp++;
        for (int bit = 0; bit < 8 && sp < send && dp < dend; bit++) {
            if (ctrl & 1) {
                /* A back-reference: 2 bytes, 3 with a long length. */
                int blen, off;
                if (send - sp < 2)
                    return -1;
                blen = (sp[0] & 0x0f) + 3;
                off = ((sp[0] & 0xf0) << 4) | sp[1];
                sp += 2;
                if (blen == 18) {
                    if (sp >= send)
                        return -1;
                    blen += *sp++;
                }
                if (off == 0 || off > dp - dst)
                    return -1;
                if (blen > dend - dp)
                    blen = (int)(dend - dp);
                /* Source and target may overlap: copy forward, byte by
                 * byte, which repeats the last @off bytes as needed. */
                for (int k = 0; k < blen; k++, dp++)
                    *dp = *(dp - off);
            } else {
                *dp++ = *sp++;
            }
            ctrl >>= 1;
        }
    }
    if (dp != dend || sp != send)
        return -1;
    return (int)(dp - dst);
}

tarn_rc
walrec_restore_image(const walrec_block *b, uint8_t *page, tarn_err *err)
{
    uint8_t tmp[PG_BLCKSZ];
    const uint8_t *src = b->image;
    int want = PG_BLCKSZ - b->hole_length;

    if (!b->has_image)
        return tarn_err_set(err, TARN_EINVAL, "block has no image");
    if (b->bimg_info & PG_BKPIMAGE_COMPRESS_PGLZ) {
        if (pg_pglz_decompress(b->image, b->image_len, tmp, want) != want)
            FAIL("pglz image of block %u does not decompress to %d bytes",
                 b->blkno, want);
        src = tmp;
    } else if (b->bimg_info & PG_BKPIMAGE_COMPRESS_LZ4) {
        if (LZ4_decompress_safe((const char *)b->image, (char *)tmp,
                                b->image_len, want)
            != want)
            FAIL("lz4 image of block %u does not decompress to %d bytes",
                 b->blkno, want);
        src = tmp;
    } else if (b->bimg_info & PG_BKPIMAGE_COMPRESS_ZSTD) {
        size_t n = ZSTD_decompress(tmp, (size_t)want, b->image, b->image_len);
        if (ZSTD_isError(n) || n != (size_t)want)
            FAIL("zstd image of block %u does not decompress to %d bytes",
                 b->blkno, want);
        src = tmp;
    } else if (b->image_len != want) {
        FAIL("image of block %u has %u bytes, expected %d", b->blkno,
             b->image_len, want);
    }
    if (b->hole_length == 0) {
        memcpy(page, src, PG_BLCKSZ);
    } else {
        memcpy(page, src, b->hole_offset);
        memset(page + b->hole_offset, 0, b->hole_length);
        memcpy(page + b->hole_offset + b->hole_length, src + b->hole_offset,
               (size_t)(PG_BLCKSZ - (b->hole_offset + b->hole_length)));
    }
    return TARN_OK;
}

const char *
pg_rmgr_name(uint8_t rmid)
{
    static const char *const names[] = {
        "XLOG",     "Transaction",   "Storage",   "CLOG",
        "Database", "Tablespace",    "MultiXact", "RelMap",
        "Standby",  "Heap2",         "Heap",      "Btree",
        "Hash",     "Gin",           "Gist",      "Sequence",
        "SPGist",   "BRIN",          "CommitTs",  "ReplicationOrigin",
        "Generic",  "LogicalMessage"};

    if (rmid < TARN_ARRAY_LEN(names))
        return names[rmid];
    return rmid >= 128 ? "custom" : "?";
}

/*
 * Which heap blocks lose visibility-map bits.  The VM page is not in the
 * record: PostgreSQL's redo clears the bits of the heap page it changes
 * whenever the record's flags say the primary did, so ingest (and the
 * redo oracle) must do the same from the flags alone.
 */
int
walrec_heap_vm_clears(const walrec *r, walrec_vmclear out[2], tarn_err *err)
{
    const uint8_t both = PG_VM_ALL_VISIBLE | PG_VM_ALL_FROZEN;
    uint8_t op = r->info & PG_XLOG_HEAP_OPMASK, flags;
    const walrec_block *b0 = &r->blocks[0];
    uint32_t need = 0, at = 0;
    const char *what = NULL;
    char l[TARN_LSN_STRLEN];
    bool lock = false;
    int n = 0;

    if (r->max_block_id < 0 || !b0->in_use)
        return 0;
    if (r->rmid == PG_RM_HEAP) {
        switch (op) {
        case PG_XLOG_HEAP_INSERT:
            what = "Heap/INSERT", need = 3, at = PG_XL_HEAP_INSERT_FLAGS;
            break;
        case PG_XLOG_HEAP_DELETE:
            what = "Heap/DELETE", need = 8, at = PG_XL_HEAP_DELETE_FLAGS;
            break;
        case PG_XLOG_HEAP_UPDATE:
        case PG_XLOG_HEAP_HOT_UPDATE:
            what = "Heap/UPDATE", need = 14, at = PG_XL_HEAP_UPDATE_FLAGS;
            break;
        case PG_XLOG_HEAP_LOCK:
            what = "Heap/LOCK", need = 8, at = PG_XL_HEAP_LOCK_FLAGS;
            lock = true;
            break;
        default:
            return 0;
        }
    } else if (r->rmid == PG_RM_HEAP2) {
        if (op == PG_XLOG_HEAP2_MULTI_INSERT)
            what = "Heap2/MULTI_INSERT", need = 4,
            at = PG_XL_HEAP_MULTI_INSERT_FLAGS;
        else if (op == PG_XLOG_HEAP2_LOCK_UPDATED)
            what = "Heap2/LOCK_UPDATED", need = 8,
            at = PG_XL_HEAP_LOCK_UPDATED_FLAGS, lock = true;
        else
            return 0;
    } else {
        return 0;
    }
    if (r->main_len < need) {
        tarn_err_set(err, TARN_ECORRUPT,
                     "%s record at %s has %u bytes of main data, %u needed",
                     what, tarn_lsn_format(r->start, l), r->main_len, need);
        return -1;
    }
    flags = r->main_data[at];
    if (r->rmid == PG_RM_HEAP
        && (op == PG_XLOG_HEAP_UPDATE || op == PG_XLOG_HEAP_HOT_UPDATE)) {
        /* The old tuple's page is block 1, or block 0 when it is the same. */
        uint32_t oldblk = b0->blkno;
        if (r->max_block_id >= 1 && r->blocks[1].in_use)
            oldblk = r->blocks[1].blkno;
        if (flags & PG_XLH_UPDATE_OLD_ALL_VISIBLE_CLEARED)
            out[n++] = (walrec_vmclear){oldblk, both};
        if ((flags & PG_XLH_UPDATE_NEW_ALL_VISIBLE_CLEARED)
            && (n == 0 || out[0].blkno != b0->blkno))
            out[n++] = (walrec_vmclear){b0->blkno, both};
        return n;
    }
    if (lock) {
        if (flags & PG_XLH_LOCK_ALL_FROZEN_CLEARED)
            out[n++] = (walrec_vmclear){b0->blkno, PG_VM_ALL_FROZEN};
        return n;
    }
    /* INSERT and MULTI_INSERT; DELETE's flag has the same value. */
    if (flags & PG_XLH_INSERT_ALL_VISIBLE_CLEARED)
        out[n++] = (walrec_vmclear){b0->blkno, both};
    return n;
}
