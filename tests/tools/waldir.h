/*
 * waldir.h - feed a directory of PostgreSQL WAL segment files to walscan,
 * for the test tools (walinspect, redocheck).
 */
#ifndef TARN_TESTS_TOOLS_WALDIR_H
#define TARN_TESTS_TOOLS_WALDIR_H

#include "server/core/err.h"
#include "server/core/types.h"
#include "storage/pg/walscan.h"

/**
 * Feed the WAL bytes [@p start, @p end) of directory @p dir to a walscan
 * in assemble mode, calling @p cb for every record that lies wholly
 * before @p end (as pg_waldump -e does).
 *
 * @p dir holds segment files ("000000010000000000000003", optionally
 * ".partial").  The segment size comes from the long page header of the
 * first segment file (by name) that has one; the timeline is the highest
 * one that has @p start's segment.  @p start must be a record boundary.
 *
 * @param[out] stop  the last record boundary reached
 * @return TARN_OK; an error from the files, the scanner or @p cb.
 */
tarn_rc waldir_feed(const char *dir, tarn_lsn start, tarn_lsn end,
                    walscan_fn cb, void *arg, tarn_lsn *stop, tarn_err *err);

#endif
