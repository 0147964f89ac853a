#include "mfp_native.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

int mfp_random(uint8_t *out, size_t n)
{
    if (out == NULL && n > 0)
        return -EINVAL;
    if (n > INT_MAX)
        return -EOVERFLOW;
    if (n == 0)
        return 0;
    /* The private DRBG instance: CTR_DRBG (AES-256), seeded from getrandom(). */
    if (RAND_priv_bytes(out, (int)n) != 1) {
        mfp_secure_zero(out, n);
        return -EIO;
    }
    return 0;
}

int mfp_rsa_oaep_sha256_encrypt(const uint8_t *spki_der, size_t der_len, const uint8_t *label,
                                size_t label_len, const uint8_t *msg, size_t msg_len, uint8_t *out,
                                size_t out_cap, size_t *out_len)
{
    if (spki_der == NULL || der_len == 0 || (label == NULL && label_len > 0) ||
        (msg == NULL && msg_len > 0) || out == NULL || out_len == NULL)
        return -EINVAL;
    if (der_len > LONG_MAX)
        return -EOVERFLOW;
    *out_len = 0;
    const unsigned char *p = spki_der;
    EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)der_len);
    if (pkey == NULL || p != spki_der + der_len) {
        EVP_PKEY_free(pkey);
        return -EINVAL;
    }
    int rc = 0;
    EVP_PKEY_CTX *ctx = NULL;
    unsigned char *label_copy = NULL;
    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
        rc = -EINVAL;
        goto out;
    }
    ctx = EVP_PKEY_CTX_new(pkey, NULL);
    if (ctx == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    if (EVP_PKEY_encrypt_init(ctx) != 1 ||
        EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) != 1) {
        rc = -EIO;
        goto out;
    }
    if (label_len > 0) {
        /* set0 takes ownership of an OPENSSL_malloc'd label. */
        label_copy = OPENSSL_memdup(label, label_len);
        if (label_copy == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        if (EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, label_copy, (int)label_len) != 1) {
            OPENSSL_free(label_copy);
            rc = -EIO;
            goto out;
        }
    }
    size_t need = 0;
    if (EVP_PKEY_encrypt(ctx, NULL, &need, msg, msg_len) != 1) {
        rc = -EIO;
        goto out;
    }
    if (need > out_cap) {
        rc = -ENOSPC;
        goto out;
    }
    size_t written = out_cap;
    if (EVP_PKEY_encrypt(ctx, out, &written, msg, msg_len) != 1) {
        rc = -EIO; /* e.g. a message too long for the key */
        goto out;
    }
    *out_len = written;
out:
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return rc;
}
