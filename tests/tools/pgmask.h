/*
 * pgmask.h - PostgreSQL 15's page masks for wal_consistency_checking, for
 * the redo oracle (tests/tools/redocheck.c).
 *
 * PostgreSQL compares a replayed page with the image the primary logged
 * after both went through the mask of the record's resource manager
 * (rm_mask), which blanks what may legitimately differ: LSN and checksum,
 * hint bits, unused space, line pointer flags on index leaves and so on.
 * These are the same masks, written from the description in
 * reference/pg15-wal-and-redo.md 5.3 and PostgreSQL's bufmask.c and each
 * access method's *_mask; tests/integration/pgmask.py is their Python twin
 * for the integration tests.
 */
#ifndef TARN_TESTS_TOOLS_PGMASK_H
#define TARN_TESTS_TOOLS_PGMASK_H

#include <stdbool.h>
#include <stdint.h>

/**
 * Mask @p page (8192 bytes, changed in place) as resource manager
 * @p rmid's rm_mask does; a resource manager without one (XLOG, ...) gets
 * only the page LSN and checksum masked.
 *
 * @return true; false when PostgreSQL's mask would have raised an error
 * (pd_lower/pd_upper/pd_special out of order, a special space that does
 * not fit, an item running off the page).  The page may then be partly
 * masked.
 */
bool pgmask_page(uint8_t rmid, uint8_t *page, uint32_t blkno);

/** True when resource manager @p rmid has an rm_mask of its own. */
bool pgmask_rmgr_has_mask(uint8_t rmid);

#endif
