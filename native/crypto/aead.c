#include "mfp_native.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include <openssl/evp.h>

/*
 * One-shot AES-256-GCM for small records (sealed secrets, wrapped keys). The key is only
 * ever in the caller's buffer and in the EVP context, which EVP_CIPHER_CTX_free cleanses.
 */

static int check_args(const uint8_t *key, const uint8_t *nonce, const uint8_t *aad, size_t aad_len,
                      const uint8_t *in, size_t len, const uint8_t *out)
{
    if (key == NULL || nonce == NULL || (aad == NULL && aad_len > 0) || (in == NULL && len > 0) ||
        (out == NULL && len > 0))
        return -EINVAL;
    if (len > INT_MAX || aad_len > INT_MAX)
        return -EOVERFLOW;
    return 0;
}

static int gcm_init(EVP_CIPHER_CTX *ctx, int enc, const uint8_t *key, const uint8_t *nonce,
                    const uint8_t *aad, size_t aad_len)
{
    int outl = 0;
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1)
        return -EIO;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, MFP_GCM_NONCE_BYTES, NULL) != 1)
        return -EIO;
    if (EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, enc) != 1)
        return -EIO;
    if (aad_len > 0 && EVP_CipherUpdate(ctx, NULL, &outl, aad, (int)aad_len) != 1)
        return -EIO;
    return 0;
}

/* Arguments checked, a context set up for one direction: 0 and *ctx, or an error code. */
static int gcm_begin(EVP_CIPHER_CTX **ctx, int enc, const uint8_t *key, const uint8_t *nonce,
                     const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t len,
                     const uint8_t *out, const uint8_t *tag)
{
    int rc = check_args(key, nonce, aad, aad_len, in, len, out);
    if (rc != 0)
        return rc;
    if (tag == NULL)
        return -EINVAL;
    *ctx = EVP_CIPHER_CTX_new();
    if (*ctx == NULL)
        return -ENOMEM;
    rc = gcm_init(*ctx, enc, key, nonce, aad, aad_len);
    if (rc != 0) {
        EVP_CIPHER_CTX_free(*ctx);
        *ctx = NULL;
    }
    return rc;
}

int mfp_aes256gcm_seal(const uint8_t *key, const uint8_t *nonce, const uint8_t *aad, size_t aad_len,
                       const uint8_t *pt, size_t len, uint8_t *ct, uint8_t *tag)
{
    EVP_CIPHER_CTX *ctx = NULL;
    int rc = gcm_begin(&ctx, 1, key, nonce, aad, aad_len, pt, len, ct, tag);
    if (rc != 0)
        return rc;
    int outl = 0;
    if (rc == 0 && len > 0 && EVP_EncryptUpdate(ctx, ct, &outl, pt, (int)len) != 1)
        rc = -EIO;
    if (rc == 0 && EVP_EncryptFinal_ex(ctx, ct + outl, &outl) != 1)
        rc = -EIO;
    if (rc == 0 && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, MFP_GCM_TAG_BYTES, tag) != 1)
        rc = -EIO;
    EVP_CIPHER_CTX_free(ctx);
    if (rc != 0) {
        mfp_secure_zero(ct, len);
        mfp_secure_zero(tag, MFP_GCM_TAG_BYTES);
    }
    return rc;
}

int mfp_aes256gcm_open(const uint8_t *key, const uint8_t *nonce, const uint8_t *aad, size_t aad_len,
                       const uint8_t *ct, size_t len, const uint8_t *tag, uint8_t *pt)
{
    EVP_CIPHER_CTX *ctx = NULL;
    int rc = gcm_begin(&ctx, 0, key, nonce, aad, aad_len, ct, len, pt, tag);
    if (rc != 0)
        return rc;
    int outl = 0;
    uint8_t tagcopy[MFP_GCM_TAG_BYTES];
    memcpy(tagcopy, tag, sizeof tagcopy); /* the ctrl takes a non-const pointer */
    if (len > 0 && EVP_DecryptUpdate(ctx, pt, &outl, ct, (int)len) != 1)
        rc = -EIO;
    if (rc == 0 && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, MFP_GCM_TAG_BYTES, tagcopy) != 1)
        rc = -EIO;
    if (rc == 0 && EVP_DecryptFinal_ex(ctx, pt + outl, &outl) != 1)
        rc = -EBADMSG;
    EVP_CIPHER_CTX_free(ctx);
    if (rc != 0)
        mfp_secure_zero(pt, len); /* never hand out unauthenticated plaintext */
    return rc;
}

int mfp_xor(uint8_t *dst, const uint8_t *a, const uint8_t *b, size_t n)
{
    if (n > 0 && (dst == NULL || a == NULL || b == NULL))
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        dst[i] = (uint8_t)(a[i] ^ b[i]);
    return 0;
}
