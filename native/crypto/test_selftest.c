#include "mfp_native.h"
#include "tap.h"

#include <errno.h>
#include <string.h>

int main(void)
{
    size_t n = mfp_selftest_count();
    CHECK(n >= 7);
    for (size_t i = 0; i < n; i++) {
        const char *name = mfp_selftest_name(i);
        CHECK(name != NULL && name[0] != '\0');
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(name, mfp_selftest_name(j)) != 0);
        CHECK(mfp_selftest_run(i) == 0);
    }
    CHECK(mfp_selftest_name(n) == NULL);
    CHECK(mfp_selftest_run(n) == -EINVAL);

    /* The overwrite stream is position-addressed: bytes 20..51 twice give one answer, and
     * XOR-ing the stream in again gives back zeros (how verify reads a random pass). */
    uint8_t key[32] = {1}, a[32] = {0}, b[32] = {0};
    CHECK(mfp_wipe_keystream(key, 20, a, sizeof a) == 0);
    CHECK(mfp_wipe_keystream(key, 20, b, sizeof b) == 0);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(mfp_wipe_keystream(key, 20, a, sizeof a) == 0);
    static const uint8_t zeros[32] = {0};
    CHECK(memcmp(a, zeros, sizeof a) == 0);
    CHECK(mfp_wipe_keystream(NULL, 0, a, sizeof a) == -EINVAL);
    return tap_finish("test_selftest");
}
