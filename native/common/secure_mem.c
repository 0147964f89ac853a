#include "mfp_native.h"

#include <errno.h>
#include <string.h>

int mfp_secure_zero(void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (p == NULL)
        return -EINVAL;
    /* explicit_bzero is a barrier the optimiser keeps even when p is dead afterwards. */
    explicit_bzero(p, n);
    return 0;
}
