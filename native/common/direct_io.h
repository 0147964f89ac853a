/* O_DIRECT on a caller's descriptor, and the aligned buffers it needs (internal): the
 * overwrite engine and the stream engine both switch the flag per piece of I/O and give
 * the descriptor back as they got it. */
#ifndef MFP_DIRECT_IO_H
#define MFP_DIRECT_IO_H

#include <stddef.h>

/* Set (on != 0) or clear O_DIRECT on fd: 0, or -errno (-EINVAL: the filesystem has no
 * O_DIRECT). */
int mfp_set_direct(int fd, int on);

/* Whether fd has O_DIRECT now: 1 or 0, or -errno. */
int mfp_is_direct(int fd);

/* A buffer of `bytes` aligned to `align` (a power of two, a multiple of the pointer
 * size) for O_DIRECT I/O; NULL when out of memory. */
void *mfp_aligned_alloc(size_t align, size_t bytes);

/* Zero (it may have held key stream or plaintext) and free such a buffer; NULL is a
 * no-op. */
void mfp_aligned_free(void *buf, size_t bytes);

#endif
