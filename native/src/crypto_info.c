#include "mfp_native.h"

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

int mfp_crypto_version(char *out, size_t out_len)
{
    if (out == NULL || out_len == 0)
        return -EINVAL;
    const char *v = OpenSSL_version(OPENSSL_VERSION);
    size_t len = strlen(v);
    if (len + 1 > out_len) {
        out[0] = '\0';
        return -ENOSPC;
    }
    memcpy(out, v, len + 1);
    return 0;
}

/* SHA-256("abc"), FIPS 180-2 appendix B.1. */
static const unsigned char kat_digest[32] = {
    0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
    0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
};

int mfp_crypto_selftest(void)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    static const unsigned char msg[3] = {'a', 'b', 'c'};

    if (EVP_Digest(msg, sizeof msg, md, &md_len, EVP_sha256(), NULL) != 1)
        return -EIO;
    if (md_len != sizeof kat_digest || memcmp(md, kat_digest, sizeof kat_digest) != 0)
        return -EIO;
    return 0;
}
