/*
 * mfpsecd native engines: the small C API the Python binding exposes.
 *
 * Every function returns 0 on success or a negative errno value; nothing here
 * allocates memory the caller must free, and nothing calls back into Python.
 */
#ifndef MFP_NATIVE_H
#define MFP_NATIVE_H

#include <stddef.h>

#define MFP_NATIVE_ABI_VERSION 1

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

#endif
