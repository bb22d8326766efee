/*
 * seq.c - redo of the Sequence resource manager.
 *
 * XLOG_SEQ_LOG is PostgreSQL's only sequence record, and it rebuilds the
 * page from nothing (the block is will_init): an empty page with 8 bytes
 * of special space holding the sequence magic, and the one sequence tuple
 * from the main data, after the 12-byte RelFileNode.
 */
#include <string.h>

#include "storage/pg/pgdefs.h"
#include "storage/redo/bufpage.h"
#include "storage/redo/redo.h"
#include "storage/redo/rmgr.h"

#define XLOG_SEQ_LOG 0x00
#define SEQ_MAGIC    0x1717
#define XL_SEQ_REC   12 /* RelFileNode */

tarn_rc
redo_seq(redo_ctx *c)
{
    size_t len;

    if ((c->r->info & 0xF0) != XLOG_SEQ_LOG)
        return redo_fail(c, "unknown", "unknown op code 0x%02X", c->r->info);
    if (c->block_id != 0 || c->r->main_len <= XL_SEQ_REC)
        return redo_fail(c, "LOG", "main data of %u bytes", c->r->main_len);
    len = c->r->main_len - XL_SEQ_REC;
    pg_page_init(c->page, 4);
    tarn_put_u32(c->page + pg_page_special(c->page), SEQ_MAGIC);
    if (pg_page_add_item(c->page, c->r->main_data + XL_SEQ_REC, len, 1, 0) == 0)
        return redo_fail(c, "LOG", "a tuple of %zu bytes does not fit", len);
    pg_page_set_lsn(c->page, c->lsn);
    return TARN_OK;
}
