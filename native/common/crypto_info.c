#include "mfp_native.h"

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>

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
