/* The segmented stream's format and segment crypto (stream_format.c), as the fd pipeline
 * (stream_pipeline.c) uses them (internal). */
#ifndef MFP_STREAM_FORMAT_H
#define MFP_STREAM_FORMAT_H

#include "mfp_native.h"

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

/* Plaintext per pipeline slot (at least one segment), and the least worth waking a
 * thread for. */
#define SLOT_BYTES (1u << 20)

/* What every segment of one stream shares. */
struct stream_job {
    const uint8_t *key;
    uint8_t header[MFP_STREAM_HEADER_BYTES];
    const uint8_t *context;
    size_t context_len;
    size_t seg; /* plaintext bytes per segment */
    int enc;
};

/* -EINVAL unless the parameters are usable (for sealing: also the segment size). */
int mfp_stream_check(const struct mfp_stream_params *p, int sealing);

/* A stream to seal: a fresh header (random stream id) for the parameters. */
int mfp_stream_job_seal(struct stream_job *j, const struct mfp_stream_params *p);

/* A stream to open: -EBADMSG unless header is one we write. */
int mfp_stream_job_open(struct stream_job *j, const struct mfp_stream_params *p,
                        const uint8_t *header);

/* Segment count and plaintext size of a body of body_len bytes (after the header). */
int mfp_stream_body_shape(size_t seg, uint64_t body_len, uint64_t *nseg, uint64_t *plain);

/* A cipher context for the job's key and direction; NULL when out of memory. */
EVP_CIPHER_CTX *mfp_stream_ctx_new(const struct stream_job *j);

/* Segments [first, first + n) laid out contiguously from in/out, the last of which is the
 * stream's final one when final is set. -EBADMSG sets *bad. */
int mfp_stream_run(EVP_CIPHER_CTX *ctx, const struct stream_job *j, uint64_t first, uint64_t n,
                   int final, uint64_t plain_total, const uint8_t *in, uint8_t *out, uint64_t *bad);

#endif
