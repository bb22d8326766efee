/*
 * walinspect.c - print every WAL record in a range as walrec decodes it,
 * one line per record and one per block reference, for comparison with
 * pg_waldump --bkp-details (tests/integration/test_walrec.py).
 *
 *   walinspect DIR START_LSN END_LSN
 *
 * DIR holds PostgreSQL WAL segment files ("000000010000000000000003",
 * optionally ".partial").  The segment size comes from the long page
 * header of the first segment file in DIR (by name) that has one; the
 * timeline is the highest one that has START's segment.  START must be a record
 * boundary. The bytes [START, END) are fed to walscan in assemble mode, so a
 * record is printed when it lies wholly before END, as pg_waldump -e does.
 *
 * Output, one line each, fields "key=value" separated by single spaces
 * (LSNs as X/%08X, like pg_waldump):
 *
 *   lsn=0/0155A0F8 end=0/0155A130 prev=0/0155A0C0 rmgr=Heap rmid=10
 *     info=0x00 xid=735 tot=8219 rec=59 fpi=8160 main=14 origin=0
 *     toplevel_xid=0 blocks=1 max_id=0 span=1 hdr_split=0
 *   (one line; rec = tot minus the stored image bytes, fpi = those bytes;
 *   span = the record crosses a WAL page boundary, hdr_split = its
 *   24-byte header does)
 *
 *     blk#0 rel=1663/5/16384 fork=0 blk=0 flags=0x30 willinit=0 data=0
 *     fpw=1 img=8160 hole_off=60 hole_len=32 bimg=0x03 apply=1
 *     method=none page_crc=1A2B3C4D pd_lower=60 pd_upper=92 page=ok
 *   (one line, starting with two spaces, for every block id in use, in id
 *   order; without an image: fpw=0 and "-" for img..page.  method is
 *   none|pglz|lz4|zstd; page_crc is the CRC-32C of the restored 8 KiB
 *   page; page is "ok" (a sane page header), "new" (pd_upper = 0) or
 *   "bad")
 *
 *   end records=N blocks=N images=N stop=X/XXXXXXXX
 *
 * Every image is restored with walrec_restore_image(); a failure, a hole
 * that is not exactly [pd_lower, pd_upper) of the restored page, or any
 * scan or decode error ends the run with a message on stderr and exit
 * status 1 (2 for usage errors).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/core/crc32c.h"
#include "server/core/types.h"
#include "storage/pg/pgdefs.h"
#include "storage/pg/pgwal.h"
#include "storage/pg/walrec.h"
#include "storage/pg/walscan.h"
#include "tests/tools/waldir.h"

typedef struct inspect {
    walrec rec; /* reused for every record, as ingest will */
    uint8_t page[PG_BLCKSZ];
    size_t records, blocks, images;
} inspect;

#define LSN_ARGS(x) (unsigned)((x) >> 32), (unsigned)(x)

static const char *
method_name(uint8_t bimg_info)
{
    if (bimg_info & PG_BKPIMAGE_COMPRESS_PGLZ)
        return "pglz";
    if (bimg_info & PG_BKPIMAGE_COMPRESS_LZ4)
        return "lz4";
    if (bimg_info & PG_BKPIMAGE_COMPRESS_ZSTD)
        return "zstd";
    return "none";
}

/* "new", "ok" or "bad" for a restored page's header. */
static const char *
page_state(const uint8_t *pg)
{
    uint16_t lower = tarn_get_u16(pg + PG_PD_LOWER);
    uint16_t upper = tarn_get_u16(pg + PG_PD_UPPER);
    uint16_t special = tarn_get_u16(pg + PG_PD_SPECIAL);
    uint16_t ver = tarn_get_u16(pg + PG_PD_PAGESIZE_VERSION);

    if (upper == 0)
        return "new";
    if (ver == (PG_BLCKSZ | 4) && lower >= PG_PAGE_HEADER_SIZE && lower <= upper
        && upper <= special && special <= PG_BLCKSZ)
        return "ok";
    return "bad";
}

static tarn_rc
print_block(inspect *in, const walrec *r, int id, tarn_err *err)
{
    const walrec_block *b = &r->blocks[id];
    char l[TARN_LSN_STRLEN];
    uint16_t lower, upper;
    tarn_rc rc;

    printf("  blk#%d rel=%u/%u/%u fork=%u blk=%u flags=0x%02X willinit=%d "
           "data=%u fpw=%d",
           id, b->rel.spc, b->rel.db, b->rel.rel, b->fork, b->blkno, b->flags,
           b->will_init, b->data_len, b->has_image);
    in->blocks++;
    if (!b->has_image) {
        printf(" img=- hole_off=- hole_len=- bimg=- apply=- method=- "
               "page_crc=- pd_lower=- pd_upper=- page=-\n");
        return TARN_OK;
    }
    in->images++;
    rc = walrec_restore_image(b, in->page, err);
    if (rc != TARN_OK)
        return tarn_err_prefix(
            err, "record at %s, block %d: ", tarn_lsn_format(r->start, l), id);
    lower = tarn_get_u16(in->page + PG_PD_LOWER);
    upper = tarn_get_u16(in->page + PG_PD_UPPER);
    printf(" img=%u hole_off=%u hole_len=%u bimg=0x%02X apply=%d method=%s "
           "page_crc=%08X pd_lower=%u pd_upper=%u page=%s\n",
           b->image_len, b->hole_offset, b->hole_length, b->bimg_info, b->apply,
           method_name(b->bimg_info), tarn_crc32c(in->page, PG_BLCKSZ), lower,
           upper, page_state(in->page));
    /* PostgreSQL cuts out exactly [pd_lower, pd_upper) of a standard
     * page, and nothing else. */
    if (b->hole_length > 0
        && (lower != b->hole_offset
            || upper != b->hole_offset + b->hole_length))
        return tarn_err_set(err, TARN_ECORRUPT,
                            "record at %s, block %d: hole %u+%u but the "
                            "restored page has pd_lower %u, pd_upper %u",
                            tarn_lsn_format(r->start, l), id, b->hole_offset,
                            b->hole_length, lower, upper);
    return TARN_OK;
}

static tarn_rc
on_record(void *arg, const walscan_rec *sr, tarn_err *err)
{
    inspect *in = arg;
    walrec *r = &in->rec;
    uint32_t fpi = 0, off = (uint32_t)(sr->start % PG_XLOG_BLCKSZ);
    int nblocks = 0;
    tarn_rc rc;

    rc = walrec_decode(sr->data, sr->tot_len, sr->start, sr->end, r, err);
    if (rc != TARN_OK)
        return rc;
    for (int i = 0; i <= r->max_block_id; i++) {
        if (!r->blocks[i].in_use)
            continue;
        nblocks++;
        if (r->blocks[i].has_image)
            fpi += r->blocks[i].image_len;
    }
    in->records++;
    printf("lsn=%X/%08X end=%X/%08X prev=%X/%08X rmgr=%s rmid=%u info=0x%02X "
           "xid=%u tot=%u rec=%u fpi=%u main=%u origin=%u toplevel_xid=%u "
           "blocks=%d max_id=%d span=%d hdr_split=%d\n",
           LSN_ARGS(r->start), LSN_ARGS(r->end), LSN_ARGS(r->prev),
           pg_rmgr_name(r->rmid), r->rmid, r->info, r->xid, r->tot_len,
           r->tot_len - fpi, fpi, r->main_len, r->origin, r->toplevel_xid,
           nblocks, r->max_block_id, off + r->tot_len > PG_XLOG_BLCKSZ,
           PG_XLOG_BLCKSZ - off < PG_REC_HDR);
    for (int i = 0; i <= r->max_block_id; i++) {
        if (!r->blocks[i].in_use)
            continue;
        rc = print_block(in, r, i, err);
        if (rc != TARN_OK)
            return rc;
    }
    return TARN_OK;
}

static tarn_rc
run(const char *dir, tarn_lsn start, tarn_lsn end, inspect *in, tarn_err *err)
{
    tarn_lsn stop = 0;
    tarn_rc rc = waldir_feed(dir, start, end, on_record, in, &stop, err);

    if (rc == TARN_OK)
        printf("end records=%zu blocks=%zu images=%zu stop=%X/%08X\n",
               in->records, in->blocks, in->images, LSN_ARGS(stop));
    return rc;
}

int
main(int argc, char **argv)
{
    tarn_lsn start, end;
    inspect *in;
    tarn_err e;
    tarn_rc rc;

    if (argc != 4) {
        fprintf(stderr, "usage: walinspect DIR START_LSN END_LSN\n");
        return 2;
    }
    if (tarn_lsn_parse(argv[2], &start, &e) != TARN_OK
        || tarn_lsn_parse(argv[3], &end, &e) != TARN_OK) {
        fprintf(stderr, "walinspect: %s\n", e.msg);
        return 2;
    }
    if (end < start) {
        fprintf(stderr, "walinspect: END_LSN is before START_LSN\n");
        return 2;
    }
    in = calloc(1, sizeof(*in));
    if (in == NULL) {
        fprintf(stderr, "walinspect: out of memory\n");
        return 1;
    }
    rc = run(argv[1], start, end, in, &e);
    fflush(stdout);
    free(in);
    if (rc != TARN_OK) {
        fprintf(stderr, "walinspect: %s\n", e.msg);
        return 1;
    }
    return 0;
}
