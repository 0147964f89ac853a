/*
 * Segmented AES-256-GCM streams between file descriptors: a reader, the workers and a
 * writer run as a pipeline over a ring of slots of several segments each; the destination
 * is written through the cache or with O_DIRECT from aligned staging buffers.
 */
#include "direct_io.h"
#include "stream_format.h"

#include "mfp_native.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

/* ---- file descriptors: reader -> workers -> writer over a ring of slots */

enum { EMPTY, FILLED, BUSY, DONE };

struct slot {
    uint8_t *in, *out;
    size_t in_len, out_len;
    uint64_t first; /* index of the slot's first segment */
    uint64_t nseg;
    int final;            /* its last segment is the stream's last */
    uint64_t plain_at;    /* plaintext offset of its first segment */
    uint64_t plain_total; /* plaintext offset of its end: the stream's size in the last */
    int state;
};

struct pipeline {
    int sync_ready; /* mu and cv are initialised */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct slot *slots;
    unsigned nslots;
    uint64_t filled;  /* slots handed over by the reader */
    uint64_t taken;   /* next slot a worker takes */
    uint64_t written; /* next slot the writer takes */
    int eof;          /* the reader is done: filled is the total */
    int err;
    uint64_t bad;
    const struct stream_job *j;
    struct sink *sink; /* the writer's alone while the pipeline runs */
    struct mfp_stream_state *st;
    size_t in_cap, out_cap; /* per slot */
};

static void fail(struct pipeline *pl, int rc, uint64_t bad)
{
    pthread_mutex_lock(&pl->mu);
    if (pl->err == 0) {
        pl->err = rc;
        pl->bad = bad;
    }
    pthread_cond_broadcast(&pl->cv);
    pthread_mutex_unlock(&pl->mu);
}

static int crypt_slot(EVP_CIPHER_CTX *ctx, const struct stream_job *j, struct slot *s,
                      uint64_t *bad)
{
    return mfp_stream_run(ctx, j, s->first, s->nseg, s->final, s->plain_total, s->in, s->out, bad);
}

static void *worker(void *arg)
{
    struct pipeline *pl = arg;
    EVP_CIPHER_CTX *ctx = mfp_stream_ctx_new(pl->j);
    if (ctx == NULL) {
        fail(pl, -ENOMEM, 0);
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&pl->mu);
        while (pl->err == 0 && pl->taken == pl->filled && !pl->eof)
            pthread_cond_wait(&pl->cv, &pl->mu);
        if (pl->err != 0 || pl->taken == pl->filled) {
            pthread_mutex_unlock(&pl->mu);
            break;
        }
        struct slot *s = &pl->slots[pl->taken % pl->nslots];
        pl->taken++;
        s->state = BUSY;
        pthread_mutex_unlock(&pl->mu);
        uint64_t bad = 0;
        int rc = crypt_slot(ctx, pl->j, s, &bad);
        if (rc != 0) {
            fail(pl, rc, bad);
            break;
        }
        pthread_mutex_lock(&pl->mu);
        s->state = DONE;
        pthread_cond_broadcast(&pl->cv);
        pthread_mutex_unlock(&pl->mu);
    }
    EVP_CIPHER_CTX_free(ctx);
    return NULL;
}

/* A pipe, socket or terminal can stall for ever (a client that stops feeding or reading);
 * a regular file or a block device cannot. */
static int is_pollable(int fd)
{
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0)
        return 0;
    return S_ISFIFO(sb.st_mode) || S_ISSOCK(sb.st_mode) || S_ISCHR(sb.st_mode);
}

/* Waits until fd is ready in ticks of MFP_STREAM_TICK_MS, so that a stalled peer holds
 * this thread only until the poller cancels. Hang-ups and errors count as ready: the
 * read or write that follows reports them. */
static int wait_ready(int fd, short events, struct mfp_stream_state *st)
{
    for (;;) {
        if (atomic_load(&st->cancel))
            return -ECANCELED;
        struct pollfd pfd = {.fd = fd, .events = events, .revents = 0};
        int n = poll(&pfd, 1, MFP_STREAM_TICK_MS);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

/* The descriptor a stream reads or writes, and whether its peer can stall it. */
struct io_end {
    int fd;
    int polled;
    struct mfp_stream_state *st;
};

static int write_all(const struct io_end *e, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        size_t chunk = len;
        if (e->polled) {
            int rc = wait_ready(e->fd, POLLOUT, e->st);
            if (rc != 0)
                return rc;
            /* A blocking write larger than the room poll() saw waits for all of it:
             * PIPE_BUF bytes are what "writable" promises. */
            if (chunk > PIPE_BUF)
                chunk = PIPE_BUF;
        }
        ssize_t n = write(e->fd, buf, chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -ENOSPC;
        buf += n;
        len -= (size_t)n;
        atomic_fetch_add(&e->st->bytes_moved, (uint64_t)n);
    }
    return 0;
}

/* ---- the destination: written through the cache, or with O_DIRECT from two aligned
 * staging buffers (a flusher thread writes one while the writer fills the other, so the
 * device never waits for a copy); the unaligned tail goes through the cache at the end */

#define ALIGN       4096u
#define STAGE_BYTES (4u << 20)

struct sink {
    int fd; /* -1: discard (authenticate only) */
    struct io_end end;
    int direct;
    int was_direct; /* the caller's O_DIRECT state, restored at the end */
    uint8_t *stage[2];
    int cur; /* the stage being filled */
    size_t fill;
    /* the flusher: writes `pending` bytes of stage[!cur] */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int started;
    size_t pending;
    int stop;
    int err;
};

/* One staged buffer, O_DIRECT; a refusal (EINVAL) is finished through the cache. */
static int direct_write(struct sink *k, const uint8_t *buf, size_t len)
{
    int rc = write_all(&k->end, buf, len);
    if (rc == -EINVAL) {
        rc = mfp_set_direct(k->fd, 0);
        if (rc == 0)
            rc = write_all(&k->end, buf, len);
        k->direct = 0; /* read by the writer only after the flusher is idle */
    }
    return rc;
}

static void *flusher(void *arg)
{
    struct sink *k = arg;
    pthread_mutex_lock(&k->mu);
    for (;;) {
        while (k->pending == 0 && !k->stop)
            pthread_cond_wait(&k->cv, &k->mu);
        if (k->pending == 0)
            break;
        size_t len = k->pending;
        const uint8_t *buf = k->stage[!k->cur];
        pthread_mutex_unlock(&k->mu);
        int rc = direct_write(k, buf, len);
        pthread_mutex_lock(&k->mu);
        if (rc != 0 && k->err == 0)
            k->err = rc;
        k->pending = 0;
        pthread_cond_broadcast(&k->cv);
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

/* Waits until the flusher has written what it was given; its error, if any. */
static int sink_idle(struct sink *k)
{
    if (!k->started)
        return 0;
    pthread_mutex_lock(&k->mu);
    while (k->pending > 0)
        pthread_cond_wait(&k->cv, &k->mu);
    int rc = k->err;
    pthread_mutex_unlock(&k->mu);
    return rc;
}

static void sink_release(struct sink *k)
{
    if (k->started) {
        pthread_mutex_lock(&k->mu);
        k->stop = 1;
        pthread_cond_broadcast(&k->cv);
        pthread_mutex_unlock(&k->mu);
        (void)pthread_join(k->thread, NULL);
        k->started = 0;
        pthread_cond_destroy(&k->cv);
        pthread_mutex_destroy(&k->mu);
    }
    for (int i = 0; i < 2; i++) {
        mfp_aligned_free(k->stage[i], STAGE_BYTES);
        k->stage[i] = NULL;
    }
}

static int sink_open(struct sink *k, int fd, unsigned flags, struct mfp_stream_state *st)
{
    memset(k, 0, sizeof *k);
    k->fd = fd;
    k->end = (struct io_end){.fd = fd, .polled = is_pollable(fd), .st = st};
    if (fd < 0)
        return 0;
    int direct = mfp_is_direct(fd);
    if (direct < 0)
        return direct;
    k->was_direct = direct;
    off_t at = lseek(fd, 0, SEEK_CUR);
    /* O_DIRECT needs aligned file offsets: only from an aligned start (a pipe has none). */
    if (!(flags & MFP_STREAM_DIRECT) || at < 0 || at % ALIGN != 0)
        return k->was_direct ? mfp_set_direct(fd, 0) : 0;
    int rc = mfp_set_direct(fd, 1);
    if (rc == -EINVAL)
        return 0; /* no O_DIRECT on this filesystem: the cache it is */
    if (rc != 0)
        return rc;
    k->direct = 1;
    for (int i = 0; i < 2 && rc == 0; i++) {
        k->stage[i] = mfp_aligned_alloc(ALIGN, STAGE_BYTES);
        if (k->stage[i] == NULL)
            rc = -ENOMEM;
    }
    if (rc == 0 && pthread_mutex_init(&k->mu, NULL) != 0)
        rc = -ENOMEM;
    if (rc == 0 && pthread_cond_init(&k->cv, NULL) != 0) {
        pthread_mutex_destroy(&k->mu);
        rc = -ENOMEM;
    }
    if (rc == 0 && pthread_create(&k->thread, NULL, flusher, k) != 0) {
        pthread_cond_destroy(&k->cv);
        pthread_mutex_destroy(&k->mu);
        rc = -EAGAIN;
    }
    if (rc == 0) {
        k->started = 1;
        return 0;
    }
    sink_release(k);
    (void)mfp_set_direct(fd, k->was_direct);
    return rc;
}

/* Hands the full stage to the flusher (after it finished the previous one). */
static int sink_swap(struct sink *k)
{
    int rc = sink_idle(k);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&k->mu);
    k->pending = k->fill;
    k->cur = !k->cur;
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
    k->fill = 0;
    return 0;
}

static int sink_put(struct sink *k, const uint8_t *buf, size_t len)
{
    if (k->fd < 0)
        return 0;
    if (!k->started)
        return write_all(&k->end, buf, len);
    while (len > 0) {
        size_t n = STAGE_BYTES - k->fill < len ? STAGE_BYTES - k->fill : len;
        memcpy(k->stage[k->cur] + k->fill, buf, n);
        k->fill += n;
        buf += n;
        len -= n;
        if (k->fill == STAGE_BYTES) {
            int rc = sink_swap(k);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

/* The staged rest: its aligned part directly, the tail through the cache. Restores the
 * caller's O_DIRECT flag; rc is the result so far. */
static int sink_close(struct sink *k, int rc)
{
    int idle = sink_idle(k);
    if (rc == 0)
        rc = idle;
    if (k->fd >= 0 && rc == 0 && k->fill > 0) {
        const uint8_t *stage = k->stage[k->cur];
        size_t body = k->direct ? k->fill - k->fill % ALIGN : 0;
        if (body > 0)
            rc = direct_write(k, stage, body);
        if (rc == 0)
            rc = mfp_set_direct(k->fd, 0);
        if (rc == 0)
            rc = write_all(&k->end, stage + body, k->fill - body);
    }
    if (k->fd >= 0) {
        int src = mfp_set_direct(k->fd, k->was_direct);
        if (rc == 0)
            rc = src;
    }
    sink_release(k);
    return rc;
}

/* Up to len bytes; fewer only at end of input. */
static int read_full(const struct io_end *e, uint8_t *buf, size_t len, size_t *got)
{
    *got = 0;
    while (*got < len) {
        if (e->polled) {
            int rc = wait_ready(e->fd, POLLIN, e->st);
            if (rc != 0)
                return rc;
        }
        ssize_t n = read(e->fd, buf + *got, len - *got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        *got += (size_t)n;
        atomic_fetch_add(&e->st->bytes_moved, (uint64_t)n);
    }
    return 0;
}

static void *writer(void *arg)
{
    struct pipeline *pl = arg;
    for (;;) {
        pthread_mutex_lock(&pl->mu);
        struct slot *s = &pl->slots[pl->written % pl->nslots];
        while (pl->err == 0 && !(pl->written < pl->filled && s->state == DONE) &&
               !(pl->eof && pl->written == pl->filled))
            pthread_cond_wait(&pl->cv, &pl->mu);
        if (pl->err != 0 || pl->written == pl->filled) {
            pthread_mutex_unlock(&pl->mu);
            break;
        }
        pthread_mutex_unlock(&pl->mu);
        int rc = sink_put(pl->sink, s->out, s->out_len);
        if (rc != 0) {
            fail(pl, rc, 0);
            break;
        }
        atomic_fetch_add(&pl->st->bytes_out, s->out_len);
        pthread_mutex_lock(&pl->mu);
        s->state = EMPTY;
        pl->written++;
        pthread_cond_broadcast(&pl->cv);
        pthread_mutex_unlock(&pl->mu);
    }
    return NULL;
}

/* Reading: one byte looked ahead tells whether a full slot is the last. */
struct source {
    struct io_end end;
    int have_carry;
    uint8_t carry;
    uint64_t consumed;
};

static int fill(struct source *src, uint8_t *buf, size_t cap, size_t *got, int *final)
{
    size_t n = 0;
    *got = 0;
    if (src->have_carry) {
        buf[0] = src->carry;
        src->have_carry = 0;
        *got = 1;
    }
    int rc = read_full(&src->end, buf + *got, cap - *got, &n);
    if (rc != 0)
        return rc;
    *got += n;
    *final = *got < cap;
    if (!*final) {
        rc = read_full(&src->end, &src->carry, 1, &n);
        if (rc != 0)
            return rc;
        src->have_carry = n == 1;
        *final = n == 0;
    }
    src->consumed += *got;
    return 0;
}

/* Lays out a freshly read slot: its segments, and whether its length can be a stream's. */
static int shape_slot(const struct stream_job *j, struct slot *s, uint64_t first, uint64_t plain_at)
{
    const size_t full = j->seg + MFP_STREAM_TAG_BYTES;
    s->first = first;
    s->plain_at = plain_at;
    if (j->enc) {
        s->nseg = s->in_len == 0 ? 1 : (s->in_len + j->seg - 1) / j->seg;
        /* At most the slot's output capacity (in_cap plus a tag per segment): a size_t
         * on 32-bit targets too. */
        s->out_len = s->in_len + (size_t)s->nseg * MFP_STREAM_TAG_BYTES;
        s->plain_total = plain_at + s->in_len;
        return 0;
    }
    uint64_t nseg = 0, plain = 0;
    if (s->final) {
        int rc = mfp_stream_body_shape(j->seg, s->in_len, &nseg, &plain);
        if (rc != 0)
            return rc;
    } else {
        nseg = s->in_len / full;
        plain = nseg * j->seg;
    }
    s->nseg = nseg;
    s->out_len = (size_t)plain;
    s->plain_total = plain_at + plain;
    return 0;
}

static void pipeline_free(struct pipeline *pl)
{
    if (pl->slots != NULL) {
        for (unsigned i = 0; i < pl->nslots; i++) {
            if (pl->slots[i].in != NULL)
                mfp_secure_zero(pl->slots[i].in, pl->in_cap);
            if (pl->slots[i].out != NULL)
                mfp_secure_zero(pl->slots[i].out, pl->out_cap);
            free(pl->slots[i].in);
            free(pl->slots[i].out);
        }
        free(pl->slots);
    }
    if (pl->sync_ready) {
        pthread_cond_destroy(&pl->cv);
        pthread_mutex_destroy(&pl->mu);
    }
}

static int pipeline_init(struct pipeline *pl, const struct stream_job *j, unsigned threads,
                         struct sink *sink, struct mfp_stream_state *st)
{
    memset(pl, 0, sizeof *pl);
    if (pthread_mutex_init(&pl->mu, NULL) != 0)
        return -ENOMEM;
    if (pthread_cond_init(&pl->cv, NULL) != 0) {
        pthread_mutex_destroy(&pl->mu);
        return -ENOMEM;
    }
    pl->sync_ready = 1;
    pl->j = j;
    pl->sink = sink;
    pl->st = st;
    size_t per = j->seg >= SLOT_BYTES ? 1 : SLOT_BYTES / j->seg;
    size_t plain = per * j->seg, sealed = per * (j->seg + MFP_STREAM_TAG_BYTES);
    pl->in_cap = j->enc ? plain : sealed;
    pl->out_cap = j->enc ? sealed : plain;
    /* Each worker busy on one slot while the reader fills and the writer drains others. */
    pl->nslots = 2 * threads + 2;
    pl->slots = calloc(pl->nslots, sizeof *pl->slots);
    if (pl->slots == NULL)
        return -ENOMEM;
    for (unsigned i = 0; i < pl->nslots; i++) {
        pl->slots[i].in = malloc(pl->in_cap);
        pl->slots[i].out = malloc(pl->out_cap);
        if (pl->slots[i].in == NULL || pl->slots[i].out == NULL)
            return -ENOMEM;
    }
    return 0;
}

/* The reader's loop (this thread) with the workers and the writer running. */
static int pump(struct pipeline *pl, struct source *src, unsigned threads)
{
    pthread_t tid[MFP_STREAM_MAX_THREADS + 1];
    unsigned started = 0;
    int rc = 0;
    for (unsigned i = 0; i < threads + 1 && rc == 0; i++) {
        if (pthread_create(&tid[i], NULL, i == 0 ? writer : worker, pl) != 0)
            rc = -EAGAIN;
        else
            started++;
    }
    if (rc != 0)
        fail(pl, rc, 0);
    const size_t full = pl->j->seg + MFP_STREAM_TAG_BYTES;
    uint64_t first = 0, plain_at = 0;
    for (uint64_t seq = 0; rc == 0; seq++) {
        struct slot *s = &pl->slots[seq % pl->nslots];
        pthread_mutex_lock(&pl->mu);
        while (pl->err == 0 && s->state != EMPTY)
            pthread_cond_wait(&pl->cv, &pl->mu);
        rc = pl->err;
        pthread_mutex_unlock(&pl->mu);
        if (rc != 0)
            break;
        if (atomic_load(&pl->st->cancel)) {
            rc = -ECANCELED;
            fail(pl, rc, 0);
            break;
        }
        rc = fill(src, s->in, pl->in_cap, &s->in_len, &s->final);
        if (rc == 0)
            rc = shape_slot(pl->j, s, first, plain_at);
        if (rc != 0) {
            /* A sealed stream ending inside a tag: its last segment is the bad one. */
            fail(pl, rc, first + (s->in_len > 0 ? (s->in_len + full - 1) / full - 1 : 0));
            break;
        }
        atomic_store(&pl->st->bytes_in, src->consumed);
        first += s->nseg;
        plain_at = s->plain_total;
        pthread_mutex_lock(&pl->mu);
        s->state = FILLED;
        pl->filled = seq + 1;
        if (s->final)
            pl->eof = 1;
        pthread_cond_broadcast(&pl->cv);
        pthread_mutex_unlock(&pl->mu);
        if (s->final)
            break;
    }
    if (rc != 0) {
        pthread_mutex_lock(&pl->mu);
        pl->eof = 1;
        pthread_cond_broadcast(&pl->cv);
        pthread_mutex_unlock(&pl->mu);
    }
    for (unsigned i = 0; i < started; i++)
        (void)pthread_join(tid[i], NULL);
    return pl->err;
}

static int stream_fd(const struct mfp_stream_params *p, int sealing, int in_fd, int out_fd,
                     uint64_t *out_bytes, struct mfp_stream_state *state)
{
    int rc = mfp_stream_check(p, sealing);
    if (rc != 0 || in_fd < 0 || (sealing && out_fd < 0) || out_bytes == NULL || state == NULL)
        return rc != 0 ? rc : -EINVAL;
    atomic_store(&state->bytes_in, 0);
    atomic_store(&state->bytes_out, 0);
    atomic_store(&state->bad_segment, 0);
    atomic_store(&state->bytes_moved, 0);
    struct stream_job j;
    struct source src = {.end = {.fd = in_fd, .polled = is_pollable(in_fd), .st = state}};
    if (sealing) {
        rc = mfp_stream_job_seal(&j, p);
    } else {
        uint8_t header[MFP_STREAM_HEADER_BYTES];
        size_t got = 0;
        rc = read_full(&src.end, header, sizeof header, &got);
        if (rc != 0)
            return rc;
        if (got < sizeof header || mfp_stream_job_open(&j, p, header) != 0)
            return -EBADMSG;
        src.consumed = got;
    }
    struct sink sink;
    if (rc == 0)
        rc = sink_open(&sink, out_fd, p->flags, state);
    if (rc != 0)
        return rc;
    if (sealing) {
        rc = sink_put(&sink, j.header, MFP_STREAM_HEADER_BYTES);
        atomic_store(&state->bytes_out, MFP_STREAM_HEADER_BYTES);
    }
    struct pipeline pl;
    memset(&pl, 0, sizeof pl);
    if (rc == 0)
        rc = pipeline_init(&pl, &j, p->threads, &sink, state);
    if (rc == 0)
        rc = pump(&pl, &src, p->threads);
    if (rc == -EBADMSG)
        atomic_store(&state->bad_segment, pl.bad);
    pipeline_free(&pl);
    rc = sink_close(&sink, rc);
    if (rc == 0)
        *out_bytes = atomic_load(&state->bytes_out);
    return rc;
}

int mfp_stream_seal_fd(const struct mfp_stream_params *p, int in_fd, int out_fd,
                       uint64_t *out_bytes, struct mfp_stream_state *state)
{
    return stream_fd(p, 1, in_fd, out_fd, out_bytes, state);
}

int mfp_stream_open_fd(const struct mfp_stream_params *p, int in_fd, int out_fd,
                       uint64_t *out_bytes, struct mfp_stream_state *state)
{
    return stream_fd(p, 0, in_fd, out_fd, out_bytes, state);
}
