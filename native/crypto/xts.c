/*
 * AES-256-XTS (IEEE 1619) for raw partitions, where there is no room for a tag: sector
 * n is one data unit with the tweak n (dm-crypt's "plain64"). XTS gives confidentiality
 * only; authenticated storage uses the segmented GCM streams.
 */
#include "mfp_native.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define HALF     (MFP_XTS_KEY_BYTES / 2)
#define MAX_UNIT ((size_t)1 << 24) /* 2^20 blocks: the standard's data unit limit */

static EVP_CIPHER_CTX *xts_new(const uint8_t *key, int encrypt, int *rc)
{
    /* Equal halves make XTS malleable (and FIPS forbids them): refused outright. */
    if (CRYPTO_memcmp(key, key + HALF, HALF) == 0) {
        *rc = -EINVAL;
        return NULL;
    }
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) {
        *rc = -ENOMEM;
        return NULL;
    }
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_xts(), NULL, key, NULL, encrypt) != 1) {
        EVP_CIPHER_CTX_free(ctx);
        *rc = -EIO;
        return NULL;
    }
    *rc = 0;
    return ctx;
}

static int unit(EVP_CIPHER_CTX *ctx, const uint8_t *tweak, const uint8_t *in, uint8_t *out,
                size_t len, int encrypt)
{
    int outl = 0;
    if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, tweak, encrypt) != 1 ||
        EVP_CipherUpdate(ctx, out, &outl, in, (int)len) != 1 || (size_t)outl != len)
        return -EIO;
    return 0;
}

int mfp_aes256xts_unit(const uint8_t *key, const uint8_t *tweak, const uint8_t *in, uint8_t *out,
                       size_t len, int encrypt)
{
    if (key == NULL || tweak == NULL || in == NULL || out == NULL || len < 16 || len > MAX_UNIT)
        return -EINVAL;
    int rc = 0;
    EVP_CIPHER_CTX *ctx = xts_new(key, encrypt != 0, &rc);
    if (ctx == NULL)
        return rc;
    rc = unit(ctx, tweak, in, out, len, encrypt != 0);
    EVP_CIPHER_CTX_free(ctx);
    if (rc != 0)
        mfp_secure_zero(out, len);
    return rc;
}

int mfp_aes256xts_sectors(const uint8_t *key, uint64_t first_sector, size_t sector_size,
                          const uint8_t *in, uint8_t *out, size_t len, int encrypt)
{
    if (key == NULL || (in == NULL && len > 0) || (out == NULL && len > 0) || sector_size < 16 ||
        sector_size > MAX_UNIT || sector_size % 16 != 0 || len % sector_size != 0)
        return -EINVAL;
    if (len == 0)
        return 0;
    uint64_t count = len / sector_size;
    if (first_sector > UINT64_MAX - (count - 1))
        return -EOVERFLOW;
    int rc = 0;
    EVP_CIPHER_CTX *ctx = xts_new(key, encrypt != 0, &rc);
    if (ctx == NULL)
        return rc;
    uint8_t tweak[16];
    for (uint64_t i = 0; i < count && rc == 0; i++) {
        uint64_t n = first_sector + i;
        memset(tweak, 0, sizeof tweak);
        for (int b = 0; b < 8; b++)
            tweak[b] = (uint8_t)(n >> (8 * b));
        rc = unit(ctx, tweak, in + i * sector_size, out + i * sector_size, sector_size,
                  encrypt != 0);
    }
    EVP_CIPHER_CTX_free(ctx);
    if (rc != 0)
        mfp_secure_zero(out, len);
    return rc;
}
