#include "mfp_native.h"
#include "tap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int all_equal(const unsigned char *p, size_t n, unsigned char v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return 0;
    return 1;
}

int main(void)
{
    /* The zeroed range is exact: guard bytes on both sides stay untouched. */
    unsigned char buf[4096 + 2];
    memset(buf, 0xA5, sizeof buf);
    CHECK(mfp_secure_zero(buf + 1, 4096) == 0);
    CHECK(buf[0] == 0xA5);
    CHECK(all_equal(buf + 1, 4096, 0));
    CHECK(buf[4097] == 0xA5);

    /* Heap memory about to be freed is the case explicit_bzero exists for. */
    size_t n = 1u << 20;
    unsigned char *heap = malloc(n);
    CHECK(heap != NULL);
    if (heap != NULL) {
        memset(heap, 0x5A, n);
        CHECK(mfp_secure_zero(heap, n) == 0);
        CHECK(all_equal(heap, n, 0));
        free(heap);
    }

    CHECK(mfp_secure_zero(NULL, 0) == 0);
    CHECK(mfp_secure_zero(NULL, 1) == -EINVAL);
    unsigned char one = 7;
    CHECK(mfp_secure_zero(&one, 0) == 0);
    CHECK(one == 7);
    return tap_finish("test_secure_mem");
}
