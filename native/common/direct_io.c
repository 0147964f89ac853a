/* O_DIRECT helpers shared by the overwrite and stream engines: see direct_io.h. */
#include "direct_io.h"

#include "mfp_native.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>

int mfp_set_direct(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    int want = on ? (fl | O_DIRECT) : (fl & ~O_DIRECT);
    if (want == fl)
        return 0;
    return fcntl(fd, F_SETFL, want) == 0 ? 0 : -errno;
}

int mfp_is_direct(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    return (fl & O_DIRECT) != 0;
}

void *mfp_aligned_alloc(size_t align, size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, align, bytes) != 0)
        return NULL;
    return p;
}

void mfp_aligned_free(void *buf, size_t bytes)
{
    if (buf == NULL)
        return;
    mfp_secure_zero(buf, bytes);
    free(buf);
}
