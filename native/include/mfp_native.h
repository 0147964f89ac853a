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

#define MFP_NATIVE_ABI_VERSION 3

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
 * Run libcrypto's own start-up check: a SHA-256 known-answer test through EVP.
 * Returns 0, or -EIO if libcrypto does not produce the expected digest.
 */
int mfp_crypto_selftest(void);

/* ---- AES-256-GCM for small records (src/aead.c) */

#define MFP_AES256_KEY_BYTES 32
#define MFP_GCM_NONCE_BYTES 12
#define MFP_GCM_TAG_BYTES 16

/*
 * Encrypt len bytes of pt into ct (same length) and write the 16-byte tag.
 * key: 32 bytes; nonce: 12 bytes, never reused with the same key; aad may be NULL when
 * aad_len is 0. Returns 0; -EINVAL for NULL pointers; -EOVERFLOW above INT_MAX bytes;
 * -ENOMEM; -EIO if libcrypto fails (ct and tag are then zeroed).
 */
int mfp_aes256gcm_seal(const uint8_t *key, const uint8_t *nonce, const uint8_t *aad,
                       size_t aad_len, const uint8_t *pt, size_t len, uint8_t *ct,
                       uint8_t *tag);

/*
 * Decrypt and authenticate. Returns 0, or -EBADMSG when the tag does not match (key,
 * nonce, aad, ciphertext or tag altered); pt is then zeroed, never partially filled.
 * Other errors as for mfp_aes256gcm_seal.
 */
int mfp_aes256gcm_open(const uint8_t *key, const uint8_t *nonce, const uint8_t *aad,
                       size_t aad_len, const uint8_t *ct, size_t len, const uint8_t *tag,
                       uint8_t *pt);

/*
 * dst[i] = a[i] ^ b[i] for n bytes (dst may alias a or b): masks keys held in memory
 * without creating Python integers or bytes copies. Returns 0 or -EINVAL.
 */
int mfp_xor(uint8_t *dst, const uint8_t *a, const uint8_t *b, size_t n);

/* ---- key material (src/keywrap.c) */

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
                                size_t label_len, const uint8_t *msg, size_t msg_len,
                                uint8_t *out, size_t out_cap, size_t *out_len);

/* ---- the audit log's hash chain (src/chain.c) */

#define MFP_SHA256_BYTES 32
#define MFP_CHAIN_OK 0
#define MFP_CHAIN_UNREADABLE 1 /* not a canonical record start */
#define MFP_CHAIN_SEQ 2        /* not the expected sequence number */
#define MFP_CHAIN_LINK 3       /* prev is not the hash of the record before */

/*
 * Verify n canonical audit records in order. hash holds the hash before the first record
 * (32 zero bytes for a whole log) and, on return, the chain hash after the last record
 * checked. Returns 0 when all link; -EBADMSG with *bad_index and *bad_kind naming the
 * first record that does not; -EINVAL, -ENOMEM, -EIO.
 */
int mfp_audit_chain(const uint8_t *const *records, const size_t *lens, size_t n,
                    uint64_t first_seq, uint8_t hash[MFP_SHA256_BYTES], size_t *bad_index,
                    int *bad_kind);

#endif
