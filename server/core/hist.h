/*
 * hist.h - latency histograms for /metrics, Prometheus style.
 *
 * A histogram counts observations at or below each of a fixed, ascending
 * list of bounds (cumulative buckets), plus their number and sum.  It is
 * not synchronised: the owner guards it, and a thread that observes under
 * its own lock hands its counts over with tarn_hist_merge().
 */
#ifndef TARN_CORE_HIST_H
#define TARN_CORE_HIST_H

#include <stdint.h>

struct evbuffer;

/* The most bounds a histogram may have (the +Inf bucket is implicit). */
#define TARN_HIST_MAX_BOUNDS 16

typedef struct tarn_hist {
    const double *bounds; /* ascending, static storage */
    int nbounds;
    uint64_t n;
    double sum;
    uint64_t le[TARN_HIST_MAX_BOUNDS];
} tarn_hist;

/** Make @p h empty, over @p nbounds (at most TARN_HIST_MAX_BOUNDS)
 * ascending @p bounds, which must outlive it. */
void tarn_hist_init(tarn_hist *h, const double *bounds, int nbounds);

/** Count one observation @p v. */
void tarn_hist_add(tarn_hist *h, double v);

/** Add @p from's counts into @p into (same bounds) and empty @p from. */
void tarn_hist_merge(tarn_hist *into, tarn_hist *from);

/** Append @p h to @p out as histogram @p name with its HELP and TYPE lines:
 * one `name_bucket{le="..."}` line per bound, then +Inf, sum and count. */
void tarn_hist_print(struct evbuffer *out, const char *name, const char *help,
                     const tarn_hist *h);

#endif
