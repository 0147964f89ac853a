/*
 * mfpsecd native engines: the small C API the Python binding exposes.
 *
 * Every function returns 0 on success or a negative errno value; nothing here
 * allocates memory the caller must free, and nothing calls back into Python.
 */
#ifndef MFP_NATIVE_H
#define MFP_NATIVE_H

#include <stddef.h>
#include <stdint.h>

#define MFP_NATIVE_ABI_VERSION 9

/*
 * Overwrite n bytes at p with zeros in a way the compiler may not elide
 * (explicit_bzero). p may be NULL only when n is 0.
 * Returns 0, or -EINVAL for a NULL pointer with a non-zero length.
 */
int mfp_secure_zero(void *p, size_t n);

/*
 * Copy the version string of the libcrypto the engines are linked against
 * into out (NUL-terminated). Returns 0, -EINVAL for a NULL/zero-size buffer,
 * or -ENOSPC if the string (with its NUL) does not fit; out is then empty.
 */
int mfp_crypto_version(char *out, size_t out_len);

/*
 * The engines' power-on known-answer tests (FPT_TST_EXT.1), in the order they run: each
 * drives the engine's own entry point (the AEAD, XTS and overwrite-keystream functions,
 * Argon2id, the libcrypto DRBG the keys come from) with a published or independently
 * derived vector. mfp_selftest_name(i) is NULL past the last test.
 * mfp_selftest_run(i) returns 0 when the answer is right, -EIO when it is wrong,
 * -EINVAL for no such test, another negative errno when the library failed.
 */
size_t mfp_selftest_count(void);
const char *mfp_selftest_name(size_t i);
int mfp_selftest_run(size_t i);

/* ---- AES-256-GCM for small records (crypto/aead.c) */

#define MFP_AES256_KEY_BYTES 32
#define MFP_GCM_NONCE_BYTES  12
#define MFP_GCM_TAG_BYTES    16

/*
 * Encrypt len bytes of pt into ct (same length) and write the 16-byte tag.
 * key: 32 bytes; nonce: 12 bytes, never reused with the same key; aad may be NULL when
 * aad_len is 0. Returns 0; -EINVAL for NULL pointers; -EOVERFLOW above INT_MAX bytes;
 * -ENOMEM; -EIO if libcrypto fails (ct and tag are then zeroed).
 */
int mfp_aes256gcm_seal(const uint8_t *key, const uint8_t *nonce, const uint8_t *aad, size_t aad_len,
                       const uint8_t *pt, size_t len, uint8_t *ct, uint8_t *tag);

/*
 * Decrypt and authenticate. Returns 0, or -EBADMSG when the tag does not match (key,
 * nonce, aad, ciphertext or tag altered); pt is then zeroed, never partially filled.
 * Other errors as for mfp_aes256gcm_seal.
 */
int mfp_aes256gcm_open(const uint8_t *key, const uint8_t *nonce, const uint8_t *aad, size_t aad_len,
                       const uint8_t *ct, size_t len, const uint8_t *tag, uint8_t *pt);

/*
 * dst[i] = a[i] ^ b[i] for n bytes (dst may alias a or b): masks keys held in memory
 * without creating Python integers or bytes copies. Returns 0 or -EINVAL.
 */
int mfp_xor(uint8_t *dst, const uint8_t *a, const uint8_t *b, size_t n);

/* ---- key material (crypto/keywrap.c) */

/*
 * Fill out with n bytes from libcrypto's private DRBG (NIST SP 800-90A CTR_DRBG with
 * AES-256, seeded from getrandom). Returns 0, -EINVAL, -EOVERFLOW, or -EIO (out zeroed).
 */
int mfp_random(uint8_t *out, size_t n);

/*
 * RSA-OAEP (SHA-256, MGF1-SHA-256) encryption of msg under the public key given as DER
 * SubjectPublicKeyInfo, with an optional label. Writes *out_len bytes (the modulus size).
 * Returns 0; -EINVAL for bad arguments or a key that is not RSA; -ENOSPC if out_cap is
 * too small; -EIO if libcrypto refuses (e.g. msg too long for the key).
 */
int mfp_rsa_oaep_sha256_encrypt(const uint8_t *spki_der, size_t der_len, const uint8_t *label,
                                size_t label_len, const uint8_t *msg, size_t msg_len, uint8_t *out,
                                size_t out_cap, size_t *out_len);

/* ---- the audit log's hash chain (crypto/chain.c) */

#define MFP_SHA256_BYTES     32
#define MFP_CHAIN_OK         0
#define MFP_CHAIN_UNREADABLE 1 /* not a canonical record start */
#define MFP_CHAIN_SEQ        2 /* not the expected sequence number */
#define MFP_CHAIN_LINK       3 /* prev is not the hash of the record before */

/*
 * Verify n canonical audit records in order. hash holds the hash before the first record
 * (32 zero bytes for a whole log) and, on return, the chain hash after the last record
 * checked. Returns 0 when all link; -EBADMSG with *bad_index and *bad_kind naming the
 * first record that does not; -EINVAL, -ENOMEM, -EIO.
 */
int mfp_audit_chain(const uint8_t *const *records, const size_t *lens, size_t n, uint64_t first_seq,
                    uint8_t hash[MFP_SHA256_BYTES], size_t *bad_index, int *bad_kind);

/* ---- the overwrite engine (overwrite/overwrite.c) */

/* Every write and read is one chunk of this size (the last one may be shorter). */
#define MFP_WIPE_CHUNK_BYTES (4u << 20)
/* O_DIRECT alignment used for buffers, offsets and lengths: a multiple of every logical
 * block size in use (512 and 4096). Unaligned head and tail pieces go through the cache. */
#define MFP_WIPE_ALIGN 4096u

#define MFP_PASS_BYTE   0 /* every byte is pass.byte */
#define MFP_PASS_RANDOM 1 /* AES-256-CTR keystream under pass.key, counter = offset / 16 */

struct mfp_pass {
    int kind;
    uint8_t byte;
    /* Random passes: a fresh key per pass (from mfp_random). The stream at byte offset o
     * is the keystream block o/16 (nonce 0), so any range can be regenerated: verify and
     * resume after a power cut need nothing but the key. */
    uint8_t key[MFP_AES256_KEY_BYTES];
};

/* buf ^= the random pass's stream under key for bytes [offset, offset+len): what a random
 * pass writes over zeros. The self-test's entry point into the overwrite engine. */
int mfp_wipe_keystream(const uint8_t key[MFP_AES256_KEY_BYTES], uint64_t offset, uint8_t *buf,
                       size_t len);

/* Request flags for mfp_wipe_write / mfp_wipe_verify. */
#define MFP_WIPE_DIRECT 1u /* try O_DIRECT; on refusal fall back to the cache + fdatasync */

/*
 * Shared between the engine (running without the GIL) and a poller: the engine only
 * stores, the poller only loads, except cancel, which the poller sets. All offsets are
 * absolute byte offsets in the target.
 */
struct mfp_wipe_state {
    _Atomic uint64_t position;     /* end of the last chunk written or read */
    _Atomic uint64_t durable;      /* [start, durable) is written and flushed (fdatasync) */
    _Atomic uint64_t error_offset; /* where the failing I/O or the first mismatch is */
    _Atomic int cancel;            /* set non-zero to stop at the next chunk */
    _Atomic int buffered;          /* 1 once O_DIRECT was refused and the cache is used */
};

/*
 * Size in bytes of the file or block device open on fd (BLKGETSIZE64 for a block
 * device, st_size for a regular file) and its logical block size (BLKSSZGET, or 512).
 * Returns 0, -EINVAL for other file types, or -errno of fstat/ioctl.
 */
int mfp_wipe_geometry(int fd, uint64_t *size, uint32_t *logical_block);

/*
 * Write one pass over [start, end) of fd (opened O_WRONLY or O_RDWR). Flushes with
 * fdatasync at least every sync_every bytes (0: only at the end) and after each flush
 * publishes state->durable. The position, durable and buffered fields are reset at entry.
 * Returns 0 when the whole range is written and flushed; -ECANCELED when state->cancel was
 * seen (durable is then exact); otherwise -errno of the failing call (EIO, ENOSPC for a
 * zero-length write, ...) with state->error_offset, -EINVAL for bad arguments, -ENOMEM.
 * EINTR is retried, short writes are continued.
 */
int mfp_wipe_write(int fd, uint64_t start, uint64_t end, const struct mfp_pass *pass,
                   unsigned flags, uint64_t sync_every, struct mfp_wipe_state *state);

/*
 * Read [start, end) back from the medium (O_DIRECT, or the cache after dropping it with
 * POSIX_FADV_DONTNEED) and compare it with what pass wrote. Returns 0 when every byte
 * matches, -EBADMSG with state->error_offset at the first differing byte, -ECANCELED,
 * -EIO/-errno with error_offset, -ENODATA when the target ends before end.
 */
int mfp_wipe_verify(int fd, uint64_t start, uint64_t end, const struct mfp_pass *pass,
                    unsigned flags, struct mfp_wipe_state *state);

/* ---- segmented AES-256-GCM streams for stored objects (stream/stream_format.c,
 * stream/stream_pipeline.c) */

/*
 * Layout: a 16-byte header (magic "MFPE", version 1, log2 of the segment size, two zero
 * bytes, an 8-byte random nonce prefix), then the segments, each its ciphertext and a
 * 16-byte tag. Every segment but the last holds exactly one segment size of plaintext;
 * the last holds 0..segment size bytes (an empty object is one empty final segment).
 * Segment i uses the nonce prefix || big-endian uint32 i and the associated data
 * header || final flag (1 byte) || the caller's context (e.g. the object id), so
 * truncation, reordering, swapping segments between objects, appending, a changed header
 * or a wrong context all fail authentication.
 */
#define MFP_STREAM_HEADER_BYTES  16
#define MFP_STREAM_TAG_BYTES     16
#define MFP_STREAM_MIN_SHIFT     12 /* 4 KiB segments */
#define MFP_STREAM_MAX_SHIFT     24 /* 16 MiB */
#define MFP_STREAM_DEFAULT_SHIFT 16
#define MFP_STREAM_MAX_THREADS   16
#define MFP_STREAM_MAX_CONTEXT   256

struct mfp_stream_params {
    const uint8_t *key;     /* 32 bytes: the object's own data key */
    const uint8_t *context; /* bound to every segment; may be NULL when context_len is 0 */
    size_t context_len;     /* <= MFP_STREAM_MAX_CONTEXT */
    unsigned seg_shift;     /* sealing: log2 of the segment size; opening reads the header */
    unsigned threads;       /* worker threads, 1..MFP_STREAM_MAX_THREADS */
    unsigned flags;         /* MFP_STREAM_DIRECT */
};

/* Descriptor streams: write the destination with O_DIRECT from an aligned staging buffer
 * (the unaligned tail through the cache; the fd's own flag is restored) when it starts at
 * an aligned offset; a filesystem that refuses O_DIRECT gets the cache. */
#define MFP_STREAM_DIRECT 1u

/* How long a read or write on a pipe or socket waits before it looks at cancel again. */
#define MFP_STREAM_TICK_MS 100

/* Progress and cancel, shared with a poller like struct mfp_wipe_state. */
struct mfp_stream_state {
    _Atomic uint64_t bytes_in;    /* consumed from the source */
    _Atomic uint64_t bytes_out;   /* written to the destination */
    _Atomic uint64_t bad_segment; /* the first segment that failed authentication */
    _Atomic int cancel;           /* set non-zero to stop (fd streams): at the next slot,
                                     and within MFP_STREAM_TICK_MS where a read or write
                                     waits on a pipe or socket whose peer stalls */
    _Atomic uint64_t bytes_moved; /* read plus written so far, counted at every read and
                                     write (a poller's sign of life, finer than a slot) */
};

/* Sealed size of len bytes of plaintext with segments of 1 << seg_shift. -EINVAL, -EFBIG. */
int mfp_stream_sealed_size(uint64_t len, unsigned seg_shift, uint64_t *sealed);

/*
 * Plaintext size of a sealed stream of sealed_len bytes whose header is at header (at
 * least MFP_STREAM_HEADER_BYTES). -EBADMSG when the header is not ours or the length
 * cannot be a stream (truncated inside a tag, or no final segment).
 */
int mfp_stream_plain_size(const uint8_t *header, uint64_t sealed_len, uint64_t *plain);

/*
 * Memory to memory. Seal writes the header (a fresh random nonce prefix) and the
 * segments; out_cap must hold mfp_stream_sealed_size. Open authenticates and decrypts
 * every segment; on any failure the whole output is zeroed and -EBADMSG returned
 * (state->bad_segment when state is given). Segments are split across p->threads.
 * state may be NULL. Returns 0 with *out_len, -EINVAL, -ENOSPC (out_cap), -ENOMEM, -EIO.
 */
int mfp_stream_seal(const struct mfp_stream_params *p, const uint8_t *in, size_t len, uint8_t *out,
                    size_t out_cap, size_t *out_len, struct mfp_stream_state *state);
int mfp_stream_open(const struct mfp_stream_params *p, const uint8_t *in, size_t len, uint8_t *out,
                    size_t out_cap, size_t *out_len, struct mfp_stream_state *state);

/*
 * File descriptor to file descriptor (pipes included: I/O is sequential read/write). A
 * reader (the calling thread), p->threads workers and a writer overlap, so encryption
 * hides behind the I/O. Seal returns the bytes written (*out_bytes). Open writes
 * plaintext only of authenticated segments, in order; out_fd -1 authenticates without
 * writing (run it first when no plaintext may be released before the whole object is
 * known good). Returns 0; -EBADMSG (state->bad_segment); -ECANCELED; -errno of read or
 * write; -EINVAL; -ENOMEM; -EAGAIN when a thread cannot be started. The destination is
 * not flushed: fdatasync is the caller's.
 */
int mfp_stream_seal_fd(const struct mfp_stream_params *p, int in_fd, int out_fd,
                       uint64_t *out_bytes, struct mfp_stream_state *state);
int mfp_stream_open_fd(const struct mfp_stream_params *p, int in_fd, int out_fd,
                       uint64_t *out_bytes, struct mfp_stream_state *state);

/* ---- AES-256-XTS for raw partitions (crypto/xts.c) */

#define MFP_XTS_KEY_BYTES 64

/*
 * One data unit with a raw 16-byte tweak (IEEE 1619): len >= 16 (ciphertext stealing for
 * a partial last block). key: two 32-byte halves, which must differ. -EINVAL, -EIO.
 */
int mfp_aes256xts_unit(const uint8_t *key, const uint8_t *tweak, const uint8_t *in, uint8_t *out,
                       size_t len, int encrypt);

/*
 * Whole sectors: len a multiple of sector_size (16..1 MiB, a multiple of 16); sector n
 * (first_sector + i) uses the tweak n as 16 little-endian bytes (dm-crypt "plain64").
 */
int mfp_aes256xts_sectors(const uint8_t *key, uint64_t first_sector, size_t sector_size,
                          const uint8_t *in, uint8_t *out, size_t len, int encrypt);

/* ---- firmware trees: parallel SHA-256 of many files (hash/hashfiles.c) */

#define MFP_HASH_OK          0
#define MFP_HASH_MISMATCH    1 /* the digest is not the expected one */
#define MFP_HASH_SIZE        2 /* the size is not the expected one (nothing hashed) */
#define MFP_HASH_NOT_REGULAR 3 /* a directory, device, fifo or socket */
#define MFP_HASH_MISSING     4 /* no such file */
#define MFP_HASH_ESCAPES     5 /* the path leaves the tree (absolute, "..", a mount) */
#define MFP_HASH_SYMLINK     6 /* a symbolic link in the path or at its end: never followed */
#define MFP_HASH_IO          7 /* open or read failed: errno in err */
#define MFP_HASH_SKIPPED     8 /* not looked at: an earlier item failed and stop_early is set */

struct mfp_hash_item {
    const char *path;                 /* relative to the tree */
    uint64_t expect_size;             /* UINT64_MAX: not checked */
    const uint8_t *expect;            /* 32 bytes, or NULL: only computed */
    uint8_t digest[MFP_SHA256_BYTES]; /* out, for OK and MISMATCH */
    uint64_t size;                    /* out */
    uint32_t mode;                    /* out: st_mode & 07777 */
    int status;                       /* out: MFP_HASH_* */
    int err;                          /* out: errno for MFP_HASH_IO */
};

/*
 * Hash items[0..n) of the tree open at dirfd. Each is opened with openat2 and
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS (nothing outside the tree,
 * no link followed, checked by the kernel at open), must be a regular file, and is read
 * in 1 MiB chunks. Up to `threads` threads take the items in order (put the large ones
 * first). With stop_early the first failure stops the rest (they are SKIPPED). Returns 0
 * when every item is OK; -EBADMSG when one is not, with *first_bad its lowest index;
 * -EINVAL; -ENOMEM; -ENOSYS without openat2 (fails closed).
 */
int mfp_hash_files(int dirfd, struct mfp_hash_item *items, size_t n, unsigned threads,
                   int stop_early, size_t *first_bad);

/* ---- Argon2id password hashing (crypto/kdf.c, on libargon2) */

/*
 * Argon2id v1.3 (RFC 9106) of pwd with salt, no secret and no associated data:
 * t_cost passes over m_cost_kib KiB in `lanes` lanes, computed in the calling
 * thread, out_len bytes into out. The password is read where it lies, never
 * copied; libargon2 wipes its working memory and blocks before freeing them.
 * Returns 0, -EINVAL for a parameter out of range (salt shorter than 8 bytes,
 * m_cost_kib below 8 x lanes, out_len below 4), -ENOMEM when the memory cannot
 * be had, -EIO for any other failure.
 */
int mfp_argon2id(const uint8_t *pwd, size_t pwd_len, const uint8_t *salt, size_t salt_len,
                 uint32_t t_cost, uint32_t m_cost_kib, uint32_t lanes, uint8_t *out,
                 size_t out_len);

#endif
