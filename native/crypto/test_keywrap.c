/* RSA-OAEP-SHA256 wrap against libcrypto's own decryption; the DRBG wrapper. */
#include "mfp_native.h"
#include "tap.h"

#include <errno.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

static int oaep_decrypt(EVP_PKEY *key, const uint8_t *label, size_t label_len, const uint8_t *in,
                        size_t in_len, uint8_t *out, size_t *out_len)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
    int ok = ctx != NULL && EVP_PKEY_decrypt_init(ctx) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) == 1;
    if (ok && label_len > 0) {
        unsigned char *copy = OPENSSL_memdup(label, label_len);
        ok = copy != NULL && EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, copy, (int)label_len) == 1;
    }
    ok = ok && EVP_PKEY_decrypt(ctx, out, out_len, in, in_len) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

int main(void)
{
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    CHECK(rsa != NULL);
    unsigned char *der = NULL;
    int der_len = i2d_PUBKEY(rsa, &der);
    CHECK(der_len > 0);

    const uint8_t label[] = "mfpsecd test label";
    uint8_t msg[32], ct[512], pt[512];
    CHECK(mfp_random(msg, sizeof msg) == 0);
    size_t ct_len = 0, pt_len = sizeof pt;
    CHECK(mfp_rsa_oaep_sha256_encrypt(der, (size_t)der_len, label, sizeof label, msg, sizeof msg,
                                      ct, sizeof ct, &ct_len) == 0);
    CHECK(ct_len == 256);
    CHECK(oaep_decrypt(rsa, label, sizeof label, ct, ct_len, pt, &pt_len));
    CHECK(pt_len == sizeof msg && memcmp(pt, msg, sizeof msg) == 0);
    pt_len = sizeof pt;
    CHECK(!oaep_decrypt(rsa, (const uint8_t *)"other", 5, ct, ct_len, pt, &pt_len));

    /* Errors: short output, garbage key, trailing bytes, a key that is not RSA. */
    size_t n = 99;
    CHECK(mfp_rsa_oaep_sha256_encrypt(der, (size_t)der_len, NULL, 0, msg, sizeof msg, ct, 100,
                                      &n) == -ENOSPC);
    CHECK(n == 0);
    uint8_t garbage[64] = {0x30, 0x82};
    CHECK(mfp_rsa_oaep_sha256_encrypt(garbage, sizeof garbage, NULL, 0, msg, sizeof msg, ct,
                                      sizeof ct, &n) == -EINVAL);
    uint8_t longer[1024];
    memcpy(longer, der, (size_t)der_len);
    longer[der_len] = 0;
    CHECK(mfp_rsa_oaep_sha256_encrypt(longer, (size_t)der_len + 1, NULL, 0, msg, sizeof msg, ct,
                                      sizeof ct, &n) == -EINVAL);
    uint8_t big[300] = {0};
    CHECK(mfp_rsa_oaep_sha256_encrypt(der, (size_t)der_len, NULL, 0, big, sizeof big, ct, sizeof ct,
                                      &n) == -EIO);
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    CHECK(ec != NULL);
    unsigned char *ecder = NULL;
    int ecder_len = i2d_PUBKEY(ec, &ecder);
    CHECK(ecder_len > 0);
    CHECK(mfp_rsa_oaep_sha256_encrypt(ecder, (size_t)ecder_len, NULL, 0, msg, sizeof msg, ct,
                                      sizeof ct, &n) == -EINVAL);
    CHECK(mfp_rsa_oaep_sha256_encrypt(NULL, 0, NULL, 0, msg, sizeof msg, ct, sizeof ct, &n) ==
          -EINVAL);

    uint8_t a[32] = {0}, b[32] = {0};
    CHECK(mfp_random(a, sizeof a) == 0 && mfp_random(b, sizeof b) == 0);
    CHECK(memcmp(a, b, sizeof a) != 0);
    CHECK(mfp_random(NULL, 0) == 0);
    CHECK(mfp_random(NULL, 1) == -EINVAL);

    OPENSSL_free(ecder);
    EVP_PKEY_free(ec);
    OPENSSL_free(der);
    EVP_PKEY_free(rsa);
    return tap_finish("test_keywrap");
}
