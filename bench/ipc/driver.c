#define _GNU_SOURCE
#include "driver.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct worker {
    pthread_t tid;
    int index;
    int failed;
    const struct driver_ops *ops;
    const struct driver_opts *opts;
    uint64_t *lat;  /* nanoseconds, one per timed call */
    size_t n, cap;
    uint64_t end_ns;
    long reply_bytes;
};

static pthread_barrier_t warmed, go;
/* Written by the main thread between the two barriers; the barrier orders the accesses. */
static uint64_t start_ns, deadline_ns, warm_deadline_ns;

static uint64_t now_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        perror("clock_gettime");
        exit(2);
    }
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void barrier(pthread_barrier_t *b)
{
    int rc = pthread_barrier_wait(b);
    if (rc != 0 && rc != PTHREAD_BARRIER_SERIAL_THREAD) {
        fprintf(stderr, "pthread_barrier_wait: %s\n", strerror(rc));
        exit(2);
    }
}

static int push(struct worker *w, uint64_t ns)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 1u << 16;
        uint64_t *p = realloc(w->lat, cap * sizeof *p);
        if (p == NULL) {
            fprintf(stderr, "thread %d: out of memory for latencies\n", w->index);
            return -1;
        }
        w->lat = p;
        w->cap = cap;
    }
    w->lat[w->n++] = ns;
    return 0;
}

static void *worker_main(void *p)
{
    struct worker *w = p;
    const struct driver_ops *ops = w->ops;
    void *conn = ops->open(w->index, ops->arg);
    if (conn == NULL)
        w->failed = 1;
    /* Warm up: at least one call (it also measures the reply size), then until the deadline. */
    if (!w->failed) {
        w->reply_bytes = ops->call(conn, 1);
        if (w->reply_bytes < 0)
            w->failed = 1;
        while (!w->failed && now_ns() < warm_deadline_ns)
            if (ops->call(conn, 0) < 0)
                w->failed = 1;
    }
    /* Every thread reaches both barriers, failed or not, so none can deadlock the others. */
    barrier(&warmed);
    barrier(&go);
    if (!w->failed) {
        uint64_t t0 = now_ns();
        long done = 0;
        for (;;) {
            if (w->opts->calls > 0 ? done >= w->opts->calls : t0 >= deadline_ns)
                break;
            if (ops->call(conn, 0) < 0) {
                w->failed = 1;
                break;
            }
            uint64_t t1 = now_ns();
            if (push(w, t1 - t0) != 0) {
                w->failed = 1;
                break;
            }
            t0 = t1;
            done++;
        }
    }
    w->end_ns = now_ns();
    if (conn != NULL)
        ops->close(conn);
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double pct_us(const uint64_t *v, size_t n, double p)
{
    size_t rank = (size_t)ceil(p * (double)n);
    if (rank < 1)
        rank = 1;
    return (double)v[rank - 1] / 1000.0;
}

int driver_run(const struct driver_ops *ops, const struct driver_opts *o)
{
    int nt = o->threads, rc;
    struct worker *ws = calloc((size_t)nt, sizeof *ws);
    if (ws == NULL) {
        fprintf(stderr, "out of memory\n");
        return 2;
    }
    if ((rc = pthread_barrier_init(&warmed, NULL, (unsigned)nt + 1)) != 0 ||
        (rc = pthread_barrier_init(&go, NULL, (unsigned)nt + 1)) != 0) {
        fprintf(stderr, "pthread_barrier_init: %s\n", strerror(rc));
        return 2;
    }
    warm_deadline_ns = now_ns() + (uint64_t)(o->warmup * 1e9);
    for (int i = 0; i < nt; i++) {
        ws[i].index = i;
        ws[i].ops = ops;
        ws[i].opts = o;
        rc = pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]);
        if (rc != 0) {
            fprintf(stderr, "pthread_create: %s\n", strerror(rc));
            exit(2);  /* the started threads wait on a barrier that can no longer fill */
        }
    }
    barrier(&warmed);
    start_ns = now_ns();
    deadline_ns = start_ns + (uint64_t)(o->seconds * 1e9);
    barrier(&go);

    size_t total = 0;
    uint64_t end = start_ns;
    int failed = 0;
    for (int i = 0; i < nt; i++) {
        rc = pthread_join(ws[i].tid, NULL);
        if (rc != 0) {
            fprintf(stderr, "pthread_join: %s\n", strerror(rc));
            return 2;
        }
        failed |= ws[i].failed;
        total += ws[i].n;
        if (ws[i].end_ns > end)
            end = ws[i].end_ns;
    }
    if (failed) {
        fprintf(stderr, "some clients failed; no result\n");
        return 1;
    }
    if (total == 0) {
        fprintf(stderr, "no calls completed\n");
        return 1;
    }
    uint64_t *all = malloc(total * sizeof *all);
    if (all == NULL) {
        fprintf(stderr, "out of memory\n");
        return 2;
    }
    size_t k = 0;
    for (int i = 0; i < nt; i++) {
        memcpy(all + k, ws[i].lat, ws[i].n * sizeof *all);
        k += ws[i].n;
        free(ws[i].lat);
    }
    qsort(all, total, sizeof *all, cmp_u64);
    double secs = (double)(end - start_ns) / 1e9;
    if (printf("{\"threads\": %d, \"count\": %zu, \"seconds\": %.6f, \"rps\": %.1f, "
               "\"p50_us\": %.2f, \"p99_us\": %.2f, \"p999_us\": %.2f, \"max_us\": %.2f, "
               "\"reply_bytes\": %ld}\n",
               nt, total, secs, (double)total / secs, pct_us(all, total, 0.50),
               pct_us(all, total, 0.99), pct_us(all, total, 0.999),
               (double)all[total - 1] / 1000.0, ws[0].reply_bytes) < 0 ||
        fflush(stdout) != 0) {
        perror("stdout");
        return 2;
    }
    free(all);
    free(ws);
    if ((rc = pthread_barrier_destroy(&warmed)) != 0 || (rc = pthread_barrier_destroy(&go)) != 0) {
        fprintf(stderr, "pthread_barrier_destroy: %s\n", strerror(rc));
        return 2;
    }
    return 0;
}

long parse_long(const char *what, const char *s, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "bad %s: %s (expected %ld..%ld)\n", what, s, min, max);
        exit(2);
    }
    return v;
}

double parse_double(const char *what, const char *s, double min, double max)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= min && v <= max)) {
        fprintf(stderr, "bad %s: %s (expected %g..%g)\n", what, s, min, max);
        exit(2);
    }
    return v;
}

int driver_option(int opt, const char *value, struct driver_opts *o)
{
    switch (opt) {
    case 't':
        o->threads = (int)parse_long("-t threads", value, 1, 1024);
        return 1;
    case 's':
        o->seconds = parse_double("-s seconds", value, 0.001, 3600);
        return 1;
    case 'w':
        o->warmup = parse_double("-w warmup seconds", value, 0, 3600);
        return 1;
    case 'n':
        o->calls = parse_long("-n calls", value, 1, 1L << 40);
        return 1;
    default:
        return 0;
    }
}
