/*
 * walgen.h - write PostgreSQL 15 WAL: lay records out into pages, with
 * page headers, continuation headers and CRCs, exactly as PostgreSQL
 * places them.
 *
 * tarn uses it to write records of its own (the shutdown checkpoint that
 * ends a base backup's WAL), and the tests use it to craft WAL with every
 * layout case: headers split across pages, records spanning segments,
 * switch records.
 */
#ifndef TARN_STORAGE_PG_WALGEN_H
#define TARN_STORAGE_PG_WALGEN_H

#include <stddef.h>
#include <stdint.h>

#include "server/core/err.h"
#include "server/core/types.h"

typedef struct walgen walgen;

/**
 * Start writing at @p start, a record boundary (8-byte aligned).  If it is
 * a page boundary, the page header is written first.  @p prev is the
 * start of the record before it, the xl_prev of the first record.
 */
tarn_rc walgen_create(uint64_t sysid, uint32_t seg_size, uint32_t tli,
                      tarn_lsn start, tarn_lsn prev, walgen **out,
                      tarn_err *err);

void walgen_destroy(walgen *g);

/**
 * Append one record.  @p body is everything after the 24-byte header
 * (block headers, main-data header, data), so xl_tot_len = 24 + @p len.
 *
 * @param[out] start  the record's LSN (may be NULL)
 * @param[out] end    its EndRecPtr (may be NULL)
 */
tarn_rc walgen_append(walgen *g, uint8_t rmid, uint8_t info, uint32_t xid,
                      const void *body, size_t len, tarn_lsn *start,
                      tarn_lsn *end, tarn_err *err);

/**
 * Append a record whose body is only main data (the 0xFF/0xFE header and
 * @p len bytes), the form of records such as XLOG checkpoints.
 */
tarn_rc walgen_append_main(walgen *g, uint8_t rmid, uint8_t info, uint32_t xid,
                           const void *main, size_t len, tarn_lsn *start,
                           tarn_lsn *end, tarn_err *err);

/**
 * Append an XLOG_SWITCH and fill the rest of the segment as PostgreSQL
 * does: valid page headers, zeros in between.
 */
tarn_rc walgen_switch(walgen *g, tarn_lsn *start, tarn_lsn *end, tarn_err *err);

/** Zero-fill up to the next page boundary (end of written WAL). */
tarn_rc walgen_pad_to_page(walgen *g, tarn_err *err);

/** Everything written so far, from the start LSN. */
const uint8_t *walgen_data(const walgen *g, size_t *len);

/** The LSN of the next byte. */
tarn_lsn walgen_pos(const walgen *g);

#endif
