/* Argon2id (crypto/kdf.c): answers known from an independent implementation (OpenSSL's, as
 * the Python cryptography package computes them), and the refusals. */
#include "hex.h"
#include "mfp_native.h"
#include "tap.h"

#include <errno.h>
#include <string.h>

struct vector {
    const char *pwd_hex;
    const char *salt;
    uint32_t t, m, lanes;
    const char *expect;
};

static const struct vector VECTORS[] = {
    {"70617373776f7264", "somesalt", 2, 256, 1, /* "password" */
     "9dfeb910e80bad0311fee20f9c0e2b12c17987b4cac90c2ef54d5b3021c68bfe"},
    {"", "saltsalt", 1, 64, 2, "1d882bbf700b8ce1e7e55e075dd9a34e8c81f1df5a4ee9b3cdf2161d1df69469"},
};

int main(void)
{
    for (size_t i = 0; i < sizeof VECTORS / sizeof VECTORS[0]; i++) {
        const struct vector *v = &VECTORS[i];
        uint8_t pwd[64], expect[32], out[32];
        size_t pwd_len = unhex(v->pwd_hex, pwd, sizeof pwd);
        CHECK(unhex(v->expect, expect, sizeof expect) == 32);
        CHECK(mfp_argon2id(pwd_len ? pwd : NULL, pwd_len, (const uint8_t *)v->salt, strlen(v->salt),
                           v->t, v->m, v->lanes, out, sizeof out) == 0);
        CHECK(memcmp(out, expect, 32) == 0);
    }
    /* A 200-byte password (more than one BLAKE2b block) in four lanes. */
    uint8_t long_pwd[200], out[32], expect[32];
    for (size_t i = 0; i < sizeof long_pwd; i++)
        long_pwd[i] = (uint8_t)i;
    CHECK(unhex("eaebde5cdc3fafd231bffd61c5b9e5ff3f5791430fb718020e8e0a10ef233df0", expect,
                sizeof expect) == 32);
    CHECK(mfp_argon2id(long_pwd, sizeof long_pwd, (const uint8_t *)"0123456789abcdef", 16, 3, 1024,
                       4, out, sizeof out) == 0);
    CHECK(memcmp(out, expect, 32) == 0);

    const uint8_t *salt = (const uint8_t *)"saltsalt";
    CHECK(mfp_argon2id(NULL, 1, salt, 8, 1, 64, 1, out, 32) == -EINVAL);
    CHECK(mfp_argon2id(long_pwd, 8, NULL, 8, 1, 64, 1, out, 32) == -EINVAL);
    CHECK(mfp_argon2id(long_pwd, 8, salt, 7, 1, 64, 1, out, 32) == -EINVAL); /* short salt */
    CHECK(mfp_argon2id(long_pwd, 8, salt, 8, 0, 64, 1, out, 32) == -EINVAL); /* t = 0 */
    CHECK(mfp_argon2id(long_pwd, 8, salt, 8, 1, 15, 2, out, 32) == -EINVAL); /* m < 8 lanes */
    CHECK(mfp_argon2id(long_pwd, 8, salt, 8, 1, 64, 0, out, 32) == -EINVAL); /* no lane */
    CHECK(mfp_argon2id(long_pwd, 8, salt, 8, 1, 64, 1, out, 3) == -EINVAL);  /* out < 4 */
    CHECK(mfp_argon2id(long_pwd, 8, salt, 8, 1, 64, 1, NULL, 32) == -EINVAL);
    return tap_finish("test_kdf");
}
