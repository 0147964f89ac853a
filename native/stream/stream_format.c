/*
 * Segmented AES-256-GCM streams (the job store's objects): see mfp_native.h for the
 * layout. This file holds the format (header, sizes), one segment's crypto and the
 * memory-to-memory calls: each segment is independent given its index and whether it is
 * the last, so segments are spread over worker threads. stream_pipeline.c runs the same
 * segments between file descriptors.
 */
#include "stream_format.h"

#include "mfp_native.h"
#include "pool.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define VERSION      1
#define MAX_SEGMENTS (1ull << 32)

static const uint8_t MAGIC[4] = {'M', 'F', 'P', 'E'};

int mfp_stream_check(const struct mfp_stream_params *p, int sealing)
{
    if (p == NULL || p->key == NULL || (p->context == NULL && p->context_len > 0) ||
        p->context_len > MFP_STREAM_MAX_CONTEXT || p->threads < 1 ||
        p->threads > MFP_STREAM_MAX_THREADS)
        return -EINVAL;
    if (sealing && (p->seg_shift < MFP_STREAM_MIN_SHIFT || p->seg_shift > MFP_STREAM_MAX_SHIFT))
        return -EINVAL;
    return 0;
}

int mfp_stream_job_seal(struct stream_job *j, const struct mfp_stream_params *p)
{
    memset(j, 0, sizeof *j);
    j->key = p->key;
    j->context = p->context;
    j->context_len = p->context_len;
    j->seg = (size_t)1 << p->seg_shift;
    j->enc = 1;
    memcpy(j->header, MAGIC, sizeof MAGIC);
    j->header[4] = VERSION;
    j->header[5] = (uint8_t)p->seg_shift;
    return mfp_random(j->header + 8, 8);
}

/* A header we write: its segment size, else -EBADMSG. */
static int header_seg(const uint8_t *header, size_t *seg)
{
    if (memcmp(header, MAGIC, sizeof MAGIC) != 0 || header[4] != VERSION ||
        header[5] < MFP_STREAM_MIN_SHIFT || header[5] > MFP_STREAM_MAX_SHIFT || header[6] != 0 ||
        header[7] != 0)
        return -EBADMSG;
    *seg = (size_t)1 << header[5];
    return 0;
}

/* The header of a stream being opened: -EBADMSG unless it is one we write. */
int mfp_stream_job_open(struct stream_job *j, const struct mfp_stream_params *p,
                        const uint8_t *header)
{
    memset(j, 0, sizeof *j);
    int rc = header_seg(header, &j->seg);
    if (rc != 0)
        return rc;
    memcpy(j->header, header, MFP_STREAM_HEADER_BYTES);
    j->key = p->key;
    j->context = p->context;
    j->context_len = p->context_len;
    j->enc = 0;
    return 0;
}

int mfp_stream_sealed_size(uint64_t len, unsigned seg_shift, uint64_t *sealed)
{
    if (sealed == NULL || seg_shift < MFP_STREAM_MIN_SHIFT || seg_shift > MFP_STREAM_MAX_SHIFT)
        return -EINVAL;
    uint64_t seg = (uint64_t)1 << seg_shift;
    uint64_t n = len == 0 ? 1 : (len + seg - 1) / seg;
    if (n > MAX_SEGMENTS || len > UINT64_MAX - MFP_STREAM_HEADER_BYTES - n * MFP_STREAM_TAG_BYTES)
        return -EFBIG;
    *sealed = MFP_STREAM_HEADER_BYTES + len + n * MFP_STREAM_TAG_BYTES;
    return 0;
}

/* Segment count and plaintext size of a body of body_len bytes (after the header). */
int mfp_stream_body_shape(size_t seg, uint64_t body_len, uint64_t *nseg, uint64_t *plain)
{
    uint64_t full = seg + MFP_STREAM_TAG_BYTES;
    if (body_len < MFP_STREAM_TAG_BYTES)
        return -EBADMSG; /* not even the final segment's tag */
    uint64_t n = (body_len + full - 1) / full;
    uint64_t last = body_len - (n - 1) * full;
    if (last < MFP_STREAM_TAG_BYTES || n > MAX_SEGMENTS)
        return -EBADMSG;
    *nseg = n;
    *plain = body_len - n * MFP_STREAM_TAG_BYTES;
    return 0;
}

int mfp_stream_plain_size(const uint8_t *header, uint64_t sealed_len, uint64_t *plain)
{
    if (header == NULL || plain == NULL)
        return -EINVAL;
    if (sealed_len < MFP_STREAM_HEADER_BYTES)
        return -EBADMSG;
    size_t seg = 0;
    uint64_t n = 0;
    int rc = header_seg(header, &seg);
    if (rc == 0)
        rc = mfp_stream_body_shape(seg, sealed_len - MFP_STREAM_HEADER_BYTES, &n, plain);
    return rc;
}

/* ---- one segment */

EVP_CIPHER_CTX *mfp_stream_ctx_new(const struct stream_job *j)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx != NULL && EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, j->key, NULL, j->enc) != 1) {
        EVP_CIPHER_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

/*
 * Sealing: in holds len <= seg plaintext bytes, out gets len + 16. Opening: in holds
 * len >= 16 sealed bytes, out gets len - 16 (zeroed when authentication fails).
 */
static int segment(EVP_CIPHER_CTX *ctx, const struct stream_job *j, uint64_t index, int final,
                   const uint8_t *in, size_t len, uint8_t *out)
{
    if (index >= MAX_SEGMENTS)
        return -EFBIG;
    uint8_t nonce[MFP_GCM_NONCE_BYTES];
    memcpy(nonce, j->header + 8, 8);
    for (int i = 0; i < 4; i++)
        nonce[11 - i] = (uint8_t)(index >> (8 * i));
    size_t body = j->enc ? len : len - MFP_STREAM_TAG_BYTES;
    if (body > INT_MAX)
        return -EOVERFLOW;
    uint8_t flag = final ? 1 : 0;
    int outl = 0;
    if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, j->enc) != 1 ||
        EVP_CipherUpdate(ctx, NULL, &outl, j->header, MFP_STREAM_HEADER_BYTES) != 1 ||
        EVP_CipherUpdate(ctx, NULL, &outl, &flag, 1) != 1 ||
        (j->context_len > 0 &&
         EVP_CipherUpdate(ctx, NULL, &outl, j->context, (int)j->context_len) != 1))
        return -EIO;
    if (body > 0 && EVP_CipherUpdate(ctx, out, &outl, in, (int)body) != 1)
        return -EIO;
    if (j->enc) {
        if (EVP_CipherFinal_ex(ctx, out + body, &outl) != 1 ||
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, MFP_STREAM_TAG_BYTES, out + body) != 1)
            return -EIO;
        return 0;
    }
    uint8_t tag[MFP_STREAM_TAG_BYTES];
    memcpy(tag, in + body, sizeof tag);
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, MFP_STREAM_TAG_BYTES, tag) != 1)
        return -EIO;
    if (EVP_CipherFinal_ex(ctx, out + body, &outl) != 1) {
        mfp_secure_zero(out, body);
        return -EBADMSG;
    }
    return 0;
}

/* Segments [first, first + n) of a run laid out contiguously from in/out, the last of
 * which is the stream's final one when final is set. -EBADMSG sets *bad. */
int mfp_stream_run(EVP_CIPHER_CTX *ctx, const struct stream_job *j, uint64_t first, uint64_t n,
                   int final, uint64_t plain_total, const uint8_t *in, uint8_t *out, uint64_t *bad)
{
    const size_t full = j->seg + MFP_STREAM_TAG_BYTES;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t k = first + i;
        int last = final && i == n - 1;
        size_t plen = last ? (size_t)(plain_total - k * j->seg) : j->seg;
        const uint8_t *src = in + (j->enc ? i * j->seg : i * full);
        uint8_t *dst = out + (j->enc ? i * full : i * j->seg);
        int rc = segment(ctx, j, k, last, src, j->enc ? plen : plen + MFP_STREAM_TAG_BYTES, dst);
        if (rc != 0) {
            *bad = k;
            return rc;
        }
    }
    return 0;
}

/* ---- memory to memory */

/* The segments of one call, taken chunk by chunk by every thread of the section, so a
 * thread whose CPU is slower (interrupts, a busy neighbour) simply takes fewer chunks. */
struct work {
    const struct stream_job *j;
    uint64_t nseg, plain_total, per_chunk;
    const uint8_t *in;
    uint8_t *out;
    _Atomic uint64_t next; /* the next chunk to take */
    pthread_mutex_t mu;    /* guards the failure below */
    int rc;
    uint64_t bad; /* the lowest failing segment */
};

static void work_run(void *arg)
{
    struct work *w = arg;
    EVP_CIPHER_CTX *ctx = mfp_stream_ctx_new(w->j);
    const size_t full = w->j->seg + MFP_STREAM_TAG_BYTES;
    size_t in_step = w->j->enc ? w->j->seg : full;
    size_t out_step = w->j->enc ? full : w->j->seg;
    for (;;) {
        uint64_t first = atomic_fetch_add(&w->next, 1) * w->per_chunk;
        if (first >= w->nseg)
            break;
        uint64_t n = w->nseg - first < w->per_chunk ? w->nseg - first : w->per_chunk;
        uint64_t bad = first;
        int rc = ctx == NULL
                     ? -ENOMEM
                     : mfp_stream_run(ctx, w->j, first, n, first + n == w->nseg, w->plain_total,
                                      w->in + first * in_step, w->out + first * out_step, &bad);
        if (rc != 0) {
            pthread_mutex_lock(&w->mu);
            if (w->rc == 0 || bad < w->bad) {
                w->rc = rc;
                w->bad = bad;
            }
            pthread_mutex_unlock(&w->mu);
        }
    }
    EVP_CIPHER_CTX_free(ctx);
}

/* All nseg segments over up to `threads` threads of the pool (the caller is one).
 * Returns the failure of the first bad segment in stream order. */
static int parallel(const struct stream_job *j, unsigned threads, uint64_t nseg, uint64_t plain,
                    const uint8_t *in, uint8_t *out, uint64_t *bad)
{
    /* Chunks of about 256 KiB; a thread is worth waking for at least 1 MiB. */
    uint64_t per_chunk = ((256u << 10) + j->seg - 1) / j->seg;
    uint64_t per_mib = (SLOT_BYTES + j->seg - 1) / j->seg;
    uint64_t useful = nseg / per_mib;
    unsigned t = threads;
    if (useful < t)
        t = useful < 1 ? 1 : (unsigned)useful;
    struct work w = {
        .j = j, .nseg = nseg, .plain_total = plain, .per_chunk = per_chunk, .in = in, .out = out};
    atomic_init(&w.next, 0);
    if (pthread_mutex_init(&w.mu, NULL) != 0)
        return -ENOMEM;
    void *args[MFP_STREAM_MAX_THREADS] = {0};
    for (unsigned i = 0; i < t; i++)
        args[i] = &w;
    mfp_pool_run(work_run, args, t);
    pthread_mutex_destroy(&w.mu);
    if (w.rc != 0)
        *bad = w.bad;
    return w.rc;
}

int mfp_stream_seal(const struct mfp_stream_params *p, const uint8_t *in, size_t len, uint8_t *out,
                    size_t out_cap, size_t *out_len, struct mfp_stream_state *state)
{
    int rc = mfp_stream_check(p, 1);
    if (rc != 0 || (in == NULL && len > 0) || out == NULL || out_len == NULL)
        return rc != 0 ? rc : -EINVAL;
    uint64_t total = 0;
    rc = mfp_stream_sealed_size(len, p->seg_shift, &total);
    if (rc != 0)
        return rc;
    if (total > out_cap)
        return -ENOSPC;
    struct stream_job j;
    if ((rc = mfp_stream_job_seal(&j, p)) != 0)
        return rc;
    memcpy(out, j.header, MFP_STREAM_HEADER_BYTES);
    uint64_t nseg = len == 0 ? 1 : (len + j.seg - 1) / j.seg;
    uint64_t bad = 0;
    rc = parallel(&j, p->threads, nseg, len, in, out + MFP_STREAM_HEADER_BYTES, &bad);
    if (rc != 0) {
        mfp_secure_zero(out, (size_t)total);
        return rc;
    }
    *out_len = (size_t)total;
    if (state != NULL) {
        atomic_store(&state->bytes_in, len);
        atomic_store(&state->bytes_out, total);
    }
    return 0;
}

int mfp_stream_open(const struct mfp_stream_params *p, const uint8_t *in, size_t len, uint8_t *out,
                    size_t out_cap, size_t *out_len, struct mfp_stream_state *state)
{
    int rc = mfp_stream_check(p, 0);
    if (rc != 0 || in == NULL || (out == NULL && out_cap > 0) || out_len == NULL)
        return rc != 0 ? rc : -EINVAL;
    if (len < MFP_STREAM_HEADER_BYTES)
        return -EBADMSG;
    struct stream_job j;
    uint64_t nseg = 0, plain = 0;
    if ((rc = mfp_stream_job_open(&j, p, in)) != 0 ||
        (rc = mfp_stream_body_shape(j.seg, len - MFP_STREAM_HEADER_BYTES, &nseg, &plain)) != 0) {
        if (state != NULL)
            atomic_store(&state->bad_segment, 0);
        return rc;
    }
    if (plain > out_cap)
        return -ENOSPC;
    uint8_t dummy = 0;
    uint64_t bad = 0;
    rc = parallel(&j, p->threads, nseg, plain, in + MFP_STREAM_HEADER_BYTES,
                  plain > 0 ? out : &dummy, &bad);
    if (rc != 0) {
        if (plain > 0)
            mfp_secure_zero(out, (size_t)plain); /* never a partial plaintext */
        if (state != NULL)
            atomic_store(&state->bad_segment, bad);
        return rc;
    }
    *out_len = (size_t)plain;
    if (state != NULL) {
        atomic_store(&state->bytes_in, len);
        atomic_store(&state->bytes_out, plain);
    }
    return 0;
}
