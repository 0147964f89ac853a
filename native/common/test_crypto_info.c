#include "mfp_native.h"
#include "tap.h"

#include <errno.h>
#include <string.h>

int main(void)
{
    char v[256];
    CHECK(mfp_crypto_version(v, sizeof v) == 0);
    CHECK(strncmp(v, "OpenSSL ", 8) == 0);

    char tiny[4] = {'x', 'x', 'x', 'x'};
    CHECK(mfp_crypto_version(tiny, sizeof tiny) == -ENOSPC);
    CHECK(tiny[0] == '\0');
    CHECK(mfp_crypto_version(NULL, 10) == -EINVAL);
    CHECK(mfp_crypto_version(v, 0) == -EINVAL);

    return tap_finish("test_crypto_info");
}
