/*
 * branch_create.c - latency of branch creation over HTTP, next to an empty
 * HTTP round trip to the same server on the same keep-alive connection.
 *
 *   branch_create URL [COUNT] [RUNS] [FSYNC_DIR]
 *
 * Each run creates a tenant and a root branch, then alternates COUNT
 * times: GET /v1/status (the empty round trip), POST a branch of the root.
 * Interleaving makes both series see the same machine noise.  Prints the
 * median and p99 of each run and the median over runs.  With FSYNC_DIR it
 * also times fdatasync() of a 4 KiB write in that directory: a durable
 * catalog commit cannot be cheaper than that.
 */
#include <curl/curl.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double
now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int
cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double
pct(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof(double), cmp);
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

typedef struct buf {
    char data[4096];
    size_t len;
} buf;

static size_t
sink(char *p, size_t s, size_t n, void *arg)
{
    buf *b = arg;
    size_t add = s * n;
    if (b->len + add < sizeof(b->data)) {
        memcpy(b->data + b->len, p, add);
        b->len += add;
        b->data[b->len] = '\0';
    }
    return add;
}

static CURL *h;
static buf resp;

static long
call(const char *method, const char *url, const char *body)
{
    long status = 0;
    resp.len = 0;
    resp.data[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    } else {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    if (curl_easy_perform(h) != CURLE_OK) {
        fprintf(stderr, "request failed: %s %s\n", method, url);
        exit(1);
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

/* Pull "key": "value" out of a flat JSON answer. */
static void
field(const char *key, char *out, size_t len)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":\"", key);
    const char *p = strstr(resp.data, pat);
    if (p == NULL) {
        fprintf(stderr, "no %s in %s\n", key, resp.data);
        exit(1);
    }
    p += strlen(pat);
    snprintf(out, len, "%.*s", (int)strcspn(p, "\""), p);
}

int
main(int argc, char **argv)
{
    const char *base = argc > 1 ? argv[1] : "http://127.0.0.1:9898";
    int count = argc > 2 ? atoi(argv[2]) : 1000;
    int runs = argc > 3 ? atoi(argv[3]) : 5;
    const char *fsync_dir = argc > 4 ? argv[4] : NULL;
    double *rt = calloc((size_t)count, sizeof(double));
    double *bc = calloc((size_t)count, sizeof(double));
    double rt_med[64], rt_p99[64], bc_med[64], bc_p99[64];
    char url[512], url2[512], body[256], tenant[64], root[64];
    struct curl_slist *hdrs = NULL;

    if (runs > 64)
        runs = 64;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    h = curl_easy_init();
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);

    printf("branch_create: %d runs x %d creations, interleaved with GET "
           "/v1/status on one keep-alive connection\n",
           runs, count);
    printf("%-4s %12s %12s %12s %12s\n", "run", "rt p50 us", "rt p99 us",
           "create p50", "create p99");
    for (int r = 0; r < runs; r++) {
        snprintf(url, sizeof(url), "%s/v1/tenant", base);
        if (call("POST", url, "{}") != 201)
            return 1;
        field("id", tenant, sizeof(tenant));
        snprintf(url, sizeof(url), "%s/v1/tenant/%s/timeline", base, tenant);
        if (call("POST", url, "{\"name\": \"main\"}") != 201)
            return 1;
        field("timeline_id", root, sizeof(root));
        snprintf(url2, sizeof(url2), "%s/v1/status", base);
        snprintf(body, sizeof(body), "{\"ancestor_timeline_id\": \"%s\"}",
                 root);
        for (int i = 0; i < count; i++) {
            double t0 = now_us();
            if (call("GET", url2, NULL) != 200)
                return 1;
            double t1 = now_us();
            if (call("POST", url, body) != 201) {
                fprintf(stderr, "create failed: %s\n", resp.data);
                return 1;
            }
            double t2 = now_us();
            rt[i] = t1 - t0;
            bc[i] = t2 - t1;
        }
        rt_med[r] = pct(rt, count, 0.5);
        rt_p99[r] = pct(rt, count, 0.99);
        bc_med[r] = pct(bc, count, 0.5);
        bc_p99[r] = pct(bc, count, 0.99);
        printf("%-4d %12.1f %12.1f %12.1f %12.1f\n", r + 1, rt_med[r],
               rt_p99[r], bc_med[r], bc_p99[r]);
    }
    double m_rt = pct(rt_med, runs, 0.5), m_rt99 = pct(rt_p99, runs, 0.5);
    double m_bc = pct(bc_med, runs, 0.5), m_bc99 = pct(bc_p99, runs, 0.5);
    printf("median over runs: round trip p50 %.1f us p99 %.1f us; "
           "branch creation p50 %.1f us p99 %.1f us; ratio p50 %.1fx\n",
           m_rt, m_rt99, m_bc, m_bc99, m_bc / m_rt);

    if (fsync_dir != NULL) {
        char path[512];
        char block[4096] = {0};
        int fd;
        snprintf(path, sizeof(path), "%s/fsync-probe", fsync_dir);
        fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
        if (fd < 0) {
            perror(path);
            return 1;
        }
        for (int i = 0; i < count; i++) {
            if (pwrite(fd, block, sizeof(block), (off_t)(i % 64) * 4096) < 0)
                return 1;
            double t0 = now_us();
            fdatasync(fd);
            bc[i] = now_us() - t0;
        }
        close(fd);
        unlink(path);
        printf("fdatasync of 4 KiB in %s: p50 %.1f us p99 %.1f us (an LMDB "
               "commit syncs twice: data, then meta page)\n",
               fsync_dir, pct(bc, count, 0.5), pct(bc, count, 0.99));
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    curl_global_cleanup();
    free(rt);
    free(bc);
    return 0;
}
