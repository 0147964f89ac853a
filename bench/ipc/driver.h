/* The load-generation loop shared by loadgen (Varlink / echo) and dbusgen (libdbus):
 * N threads, each with its own connection, one call in flight per connection, a warm-up,
 * then a timed phase (or a fixed count) recording every call's latency; one JSON line out.
 * A client plugs in by providing the three callbacks of struct driver_ops. */
#ifndef BENCH_DRIVER_H
#define BENCH_DRIVER_H

#include <stdint.h>

struct driver_ops {
    /* Open thread `index`'s connection; NULL after printing why it failed. */
    void *(*open)(int index, void *arg);
    /* One round trip. → -1 after printing why it failed; otherwise the reply size in bytes
     * when want_size is set (it may cost extra work), else any value >= 0. */
    long (*call)(void *conn, int want_size);
    void (*close)(void *conn);
    void *arg;
};

struct driver_opts {
    int threads;     /* -t: concurrent clients, each with its own connection */
    double seconds;  /* -s: length of the timed phase */
    double warmup;   /* -w: untimed calls first (connections, caches, server JIT-less warm) */
    long calls;      /* -n: calls per thread instead of a duration (0: use -s) */
};

/* Parse one of the common options (-t -s -w -n); 1 when handled, 0 when not ours,
 * exits with status 2 on a bad value. */
int driver_option(int opt, const char *value, struct driver_opts *o);

/* Run the benchmark, print the JSON line on stdout; → the process exit status. */
int driver_run(const struct driver_ops *ops, const struct driver_opts *o);

/* Strict number parsing for option values; exits with status 2 on garbage. */
long parse_long(const char *what, const char *s, long min, long max);
double parse_double(const char *what, const char *s, double min, double max);

#endif
