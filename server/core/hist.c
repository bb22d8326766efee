/*
 * hist.c - latency histograms for /metrics.
 *
 * Buckets are stored cumulatively (an observation increments every bucket
 * whose bound it does not exceed), which is what the exposition format
 * prints, so printing is a straight copy.
 */
#include "server/core/hist.h"

#include <string.h>

#include <event2/buffer.h>

#include "server/core/err.h"

void
tarn_hist_init(tarn_hist *h, const double *bounds, int nbounds)
{
    TARN_ASSERT(nbounds > 0 && nbounds <= TARN_HIST_MAX_BOUNDS);
    memset(h, 0, sizeof(*h));
    h->bounds = bounds;
    h->nbounds = nbounds;
}

void
tarn_hist_add(tarn_hist *h, double v)
{
    h->n++;
    h->sum += v;
    for (int i = 0; i < h->nbounds; i++)
        if (v <= h->bounds[i])
            h->le[i]++;
}

void
tarn_hist_merge(tarn_hist *into, tarn_hist *from)
{
    TARN_ASSERT(into->bounds == from->bounds);
    into->n += from->n;
    into->sum += from->sum;
    for (int i = 0; i < into->nbounds; i++)
        into->le[i] += from->le[i];
    tarn_hist_init(from, from->bounds, from->nbounds);
}

void
tarn_hist_print(struct evbuffer *out, const char *name, const char *help,
                const tarn_hist *h)
{
    evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help,
                        name);
    for (int i = 0; i < h->nbounds; i++)
        evbuffer_add_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name,
                            h->bounds[i], (unsigned long long)h->le[i]);
    evbuffer_add_printf(out,
                        "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n"
                        "%s_count %llu\n",
                        name, (unsigned long long)h->n, name, h->sum, name,
                        (unsigned long long)h->n);
}
