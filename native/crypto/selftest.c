/*
 * Power-on known-answer tests of the engines (FPT_TST_EXT.1). Each test calls the
 * engine's own entry point, so a miscompiled engine, a broken libcrypto or libargon2, or
 * a wrong build option fails here before any key or job data is touched.
 *
 * Vectors: FIPS 180-4 (SHA-256 "abc"), the GCM specification's test case 16 (AES-256,
 * with AAD), IEEE 1619 / NIST XTSVS (AES-256-XTS, one 32-byte unit), the argon2 reference
 * test suite (Argon2id v1.3, t=2, m=256 KiB, p=1). The overwrite keystream and the
 * CTR_DRBG answers have no published vector for our exact use; tests/native derives both
 * with an independent implementation (AES-ECB counter blocks; SP 800-90A CTR_DRBG with
 * derivation function in Python) and holds these constants to it.
 */
#include "mfp_native.h"

#include <errno.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#define CHECK_EQ(got, want) (memcmp((got), (want), sizeof(want)) == 0 ? 0 : -EIO)

/* Hex in the source keeps vectors comparable with their publications. */
static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex) / 2;
    if (n > cap)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        for (size_t j = 0; j < 2; j++) {
            char c = hex[2 * i + j];
            v = v * 16u + (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
        }
        out[i] = (uint8_t)v;
    }
    return n;
}

static int kat_sha256(void)
{
    static const uint8_t want[32] = {
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
        0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
        0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
    };
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (EVP_Digest("abc", 3, md, &md_len, EVP_sha256(), NULL) != 1)
        return -ENOTRECOVERABLE;
    return md_len == sizeof want ? CHECK_EQ(md, want) : -EIO;
}

static int kat_aes256gcm(void)
{
    uint8_t key[32], nonce[12], aad[20], pt[60], want_ct[60], want_tag[16];
    uint8_t ct[60], tag[16], back[60];
    if (unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", key, 32) != 32 ||
        unhex("cafebabefacedbaddecaf888", nonce, 12) != 12 ||
        unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2", aad, 20) != 20 ||
        unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
              "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
              pt, 60) != 60 ||
        unhex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
              "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
              want_ct, 60) != 60 ||
        unhex("76fc6ece0f4e1768cddf8853bb2d551b", want_tag, 16) != 16)
        return -ENOTRECOVERABLE;
    int rc = mfp_aes256gcm_seal(key, nonce, aad, sizeof aad, pt, sizeof pt, ct, tag);
    if (rc != 0)
        return rc;
    if (CHECK_EQ(ct, want_ct) != 0 || CHECK_EQ(tag, want_tag) != 0)
        return -EIO;
    if ((rc = mfp_aes256gcm_open(key, nonce, aad, sizeof aad, ct, sizeof ct, tag, back)) != 0)
        return rc == -EBADMSG ? -EIO : rc;
    if (CHECK_EQ(back, pt) != 0)
        return -EIO;
    /* Authentication is half the algorithm: a changed tag must be refused. */
    tag[0] ^= 1;
    rc = mfp_aes256gcm_open(key, nonce, aad, sizeof aad, ct, sizeof ct, tag, back);
    return rc == -EBADMSG ? 0 : (rc == 0 ? -EIO : rc);
}

static int kat_aes256xts(void)
{
    uint8_t key[64], tweak[16], pt[32], want[32], out[32], back[32];
    if (unhex("1ea661c58d943a0e4801e42f4b0947149e7f9f8e3e68d0c7505210bd311a0e7c"
              "d6e13ffdf2418d8d1911c004cda58da3d619b7e2b9141e58318eea392cf41b08",
              key, 64) != 64 ||
        unhex("adf8d92627464ad2f0428e84a9f87564", tweak, 16) != 16 ||
        unhex("2eedea52cd8215e1acc647e810bbc3642e87287f8d2e57e36c0a24fbc12a202e", pt, 32) != 32 ||
        unhex("cbaad0e2f6cea3f50b37f934d46a9b130b9d54f07e34f36af793e86f73c6d7db", want, 32) != 32)
        return -ENOTRECOVERABLE;
    int rc = mfp_aes256xts_unit(key, tweak, pt, out, sizeof pt, 1);
    if (rc != 0 || (rc = CHECK_EQ(out, want)) != 0)
        return rc;
    if ((rc = mfp_aes256xts_unit(key, tweak, out, back, sizeof out, 0)) != 0)
        return rc;
    return CHECK_EQ(back, pt);
}

/* A random pass's stream: AES-256-CTR with the counter = byte offset / 16. An unaligned
 * offset checks the counter encoding and the partial-block skip together. */
static int kat_keystream(void)
{
    uint8_t key[32], want[32], buf[32] = {0};
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)i;
    if (unhex("4ab99fe5a6f69b3148c2363d0ebcb5deb52c83bd08a8a935182c9199d2435653", want, 32) != 32)
        return -ENOTRECOVERABLE;
    int rc = mfp_wipe_keystream(key, 20, buf, sizeof buf);
    return rc != 0 ? rc : CHECK_EQ(buf, want);
}

/* The DRBG the keys come from (libcrypto's CTR_DRBG, AES-256 with derivation function),
 * instantiated on a fixed-entropy parent: instantiate, generate, generate. */
static int kat_ctr_drbg(void)
{
    uint8_t entropy[32], nonce[16], want1[32], want2[32], out[32];
    for (size_t i = 0; i < sizeof entropy; i++)
        entropy[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof nonce; i++)
        nonce[i] = (uint8_t)(0x20 + i);
    if (unhex("ec542e41a1d540a471244160272c499a5051267bd0ebde27fa1be5b94155c1a4", want1, 32) !=
            32 ||
        unhex("6d7b86b61d715f12c0c940cd75e4f5581b13999a8a8fe9dd5ce1ec9ad9125b23", want2, 32) != 32)
        return -ENOTRECOVERABLE;
    static const unsigned char pers[] = "mfpsecd";
    unsigned int strength = 256;
    int use_df = 1;
    int rc = -ENOTRECOVERABLE;
    EVP_RAND *test_rand = EVP_RAND_fetch(NULL, "TEST-RAND", NULL);
    EVP_RAND *ctr_rand = EVP_RAND_fetch(NULL, "CTR-DRBG", NULL);
    EVP_RAND_CTX *parent = test_rand != NULL ? EVP_RAND_CTX_new(test_rand, NULL) : NULL;
    EVP_RAND_CTX *drbg = NULL;
    if (parent == NULL || ctr_rand == NULL)
        goto out;
    OSSL_PARAM seed[] = {
        OSSL_PARAM_construct_uint(OSSL_RAND_PARAM_STRENGTH, &strength),
        OSSL_PARAM_construct_octet_string(OSSL_RAND_PARAM_TEST_ENTROPY, entropy, sizeof entropy),
        OSSL_PARAM_construct_octet_string(OSSL_RAND_PARAM_TEST_NONCE, nonce, sizeof nonce),
        OSSL_PARAM_construct_end(),
    };
    OSSL_PARAM config[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_DRBG_PARAM_CIPHER, (char *)"AES-256-CTR", 0),
        OSSL_PARAM_construct_int(OSSL_DRBG_PARAM_USE_DF, &use_df),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_RAND_CTX_set_params(parent, seed) != 1 ||
        EVP_RAND_instantiate(parent, strength, 0, NULL, 0, NULL) != 1 ||
        (drbg = EVP_RAND_CTX_new(ctr_rand, parent)) == NULL ||
        EVP_RAND_CTX_set_params(drbg, config) != 1 ||
        EVP_RAND_instantiate(drbg, strength, 0, pers, sizeof pers - 1, NULL) != 1)
        goto out;
    if (EVP_RAND_generate(drbg, out, sizeof out, strength, 0, NULL, 0) != 1)
        goto out;
    rc = CHECK_EQ(out, want1);
    if (rc == 0) {
        rc = -ENOTRECOVERABLE;
        if (EVP_RAND_generate(drbg, out, sizeof out, strength, 0, NULL, 0) == 1)
            rc = CHECK_EQ(out, want2);
    }
out:
    EVP_RAND_CTX_free(drbg);
    EVP_RAND_CTX_free(parent);
    EVP_RAND_free(ctr_rand);
    EVP_RAND_free(test_rand);
    return rc;
}

/* SP 800-90B-style health check of the live generator: it answers, and two outputs in a
 * row are neither equal nor all zeros (a stuck generator). */
static int health_drbg(void)
{
    uint8_t a[32], b[32];
    static const uint8_t zeros[32] = {0};
    int rc = mfp_random(a, sizeof a);
    if (rc != 0 || (rc = mfp_random(b, sizeof b)) != 0)
        return rc;
    rc = memcmp(a, b, sizeof a) == 0 || memcmp(a, zeros, sizeof a) == 0 ? -EIO : 0;
    mfp_secure_zero(a, sizeof a);
    mfp_secure_zero(b, sizeof b);
    return rc;
}

static int kat_argon2id(void)
{
    uint8_t want[32], out[32];
    if (unhex("9dfeb910e80bad0311fee20f9c0e2b12c17987b4cac90c2ef54d5b3021c68bfe", want, 32) != 32)
        return -ENOTRECOVERABLE;
    int rc = mfp_argon2id((const uint8_t *)"password", 8, (const uint8_t *)"somesalt", 8, 2, 256, 1,
                          out, sizeof out);
    return rc != 0 ? rc : CHECK_EQ(out, want);
}

static const struct {
    const char *name;
    int (*run)(void);
} TESTS[] = {
    {"sha-256", kat_sha256},
    {"aes-256-gcm", kat_aes256gcm},
    {"aes-256-xts", kat_aes256xts},
    {"aes-256-ctr overwrite stream", kat_keystream},
    {"ctr-drbg aes-256", kat_ctr_drbg},
    {"drbg health", health_drbg},
    {"argon2id", kat_argon2id},
};

size_t mfp_selftest_count(void)
{
    return sizeof TESTS / sizeof TESTS[0];
}

const char *mfp_selftest_name(size_t i)
{
    return i < mfp_selftest_count() ? TESTS[i].name : NULL;
}

int mfp_selftest_run(size_t i)
{
    return i < mfp_selftest_count() ? TESTS[i].run() : -EINVAL;
}
