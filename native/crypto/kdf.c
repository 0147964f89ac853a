/*
 * Argon2id through the reference implementation (libargon2).
 *
 * The password hashing of logins runs here rather than through the Python
 * cryptography package: that one builds an OSSL_PARAM block holding a copy of the
 * password and frees it without wiping it, so every password stayed in a freed
 * heap chunk of the worker thread. libargon2 reads the password in place and
 * clears its own memory (FLAG_clear_internal_memory).
 */
#include <argon2.h>
#include <errno.h>
#include <stdint.h>

#include "mfp_native.h"

int mfp_argon2id(const uint8_t *pwd, size_t pwd_len, const uint8_t *salt, size_t salt_len,
                 uint32_t t_cost, uint32_t m_cost_kib, uint32_t lanes, uint8_t *out, size_t out_len)
{
    if ((pwd == NULL && pwd_len != 0) || salt == NULL || out == NULL ||
        pwd_len > ARGON2_MAX_PWD_LENGTH || salt_len < ARGON2_MIN_SALT_LENGTH ||
        salt_len > ARGON2_MAX_SALT_LENGTH || out_len < ARGON2_MIN_OUTLEN ||
        out_len > ARGON2_MAX_OUTLEN || t_cost < ARGON2_MIN_TIME || lanes < ARGON2_MIN_LANES ||
        lanes > ARGON2_MAX_LANES || m_cost_kib < 8u * lanes)
        return -EINVAL;
    /* libargon2 takes non-const pointers but only reads pwd and salt (no CLEAR_* flag). */
    argon2_context ctx = {
        .out = out,
        .outlen = (uint32_t)out_len,
        .pwd = (uint8_t *)(uintptr_t)pwd,
        .pwdlen = (uint32_t)pwd_len,
        .salt = (uint8_t *)(uintptr_t)salt,
        .saltlen = (uint32_t)salt_len,
        .t_cost = t_cost,
        .m_cost = m_cost_kib,
        .lanes = lanes,
        .threads = 1, /* the caller's pool is the parallelism; same output either way */
        .version = ARGON2_VERSION_13,
        .flags = ARGON2_DEFAULT_FLAGS,
    };
    int rc = argon2id_ctx(&ctx);
    switch (rc) {
    case ARGON2_OK:
        return 0;
    case ARGON2_MEMORY_ALLOCATION_ERROR:
        mfp_secure_zero(out, out_len);
        return -ENOMEM;
    default:
        mfp_secure_zero(out, out_len);
        return -EIO;
    }
}
