/*
 * SHA-256 of the files of a firmware tree, in parallel, for verification at update and
 * at boot. Paths are resolved by the kernel under the tree with no link followed
 * (openat2), so a manifest cannot be made to hash something outside the tree; a
 * mismatch, with stop_early, stops every thread at its next chunk.
 */
#include "mfp_native.h"
#include "pool.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define CHUNK (1u << 20)

struct hash_run {
    int dirfd;
    struct mfp_hash_item *items;
    size_t n;
    int stop_early;
    _Atomic size_t next;
    _Atomic int stop;
    _Atomic int fatal; /* -ENOMEM, -ENOSYS: the call fails as a whole */
};

static int open_beneath(int dirfd, const char *path)
{
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    return fd < 0 ? -errno : (int)fd;
}

static int status_of_open(int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
        return MFP_HASH_MISSING;
    case EXDEV:
        return MFP_HASH_ESCAPES;
    case ELOOP:
        return MFP_HASH_SYMLINK;
    default:
        return MFP_HASH_IO;
    }
}

/* One item: its status; -ENOMEM/-ENOSYS/-EIO (libcrypto) for a failure of the call. */
static int hash_one(struct hash_run *r, struct mfp_hash_item *it, EVP_MD_CTX *md, uint8_t *buf)
{
    if (it->path == NULL || it->path[0] == '\0' || it->path[0] == '/')
        return MFP_HASH_ESCAPES;
    int fd = open_beneath(r->dirfd, it->path);
    if (fd == -ENOSYS)
        return -ENOSYS;
    if (fd < 0) {
        it->err = -fd;
        return status_of_open(-fd);
    }
    struct stat st;
    int status = MFP_HASH_OK;
    if (fstat(fd, &st) != 0) {
        it->err = errno;
        status = MFP_HASH_IO;
    } else if (!S_ISREG(st.st_mode)) {
        status = MFP_HASH_NOT_REGULAR;
    } else {
        it->size = (uint64_t)st.st_size;
        it->mode = (uint32_t)(st.st_mode & 07777);
        if (it->expect_size != UINT64_MAX && it->expect_size != it->size)
            status = MFP_HASH_SIZE;
    }
    if (status != MFP_HASH_OK) {
        close(fd);
        return status;
    }
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        close(fd);
        return -EIO;
    }
    for (;;) {
        if (r->stop_early && atomic_load(&r->stop)) {
            close(fd);
            return MFP_HASH_SKIPPED;
        }
        ssize_t got = read(fd, buf, CHUNK);
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            it->err = errno;
            close(fd);
            return MFP_HASH_IO;
        }
        if (got == 0)
            break;
        if (EVP_DigestUpdate(md, buf, (size_t)got) != 1) {
            close(fd);
            return -EIO;
        }
    }
    close(fd);
    unsigned len = 0;
    if (EVP_DigestFinal_ex(md, it->digest, &len) != 1 || len != MFP_SHA256_BYTES)
        return -EIO;
    if (it->expect != NULL && CRYPTO_memcmp(it->digest, it->expect, MFP_SHA256_BYTES) != 0)
        return MFP_HASH_MISMATCH;
    return MFP_HASH_OK;
}

static void worker(void *arg)
{
    struct hash_run *r = arg;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t *buf = malloc(CHUNK);
    if (md == NULL || buf == NULL) {
        atomic_store(&r->fatal, -ENOMEM);
        atomic_store(&r->stop, 1);
    }
    for (;;) {
        size_t i = atomic_fetch_add(&r->next, 1);
        if (i >= r->n)
            break;
        struct mfp_hash_item *it = &r->items[i];
        if (atomic_load(&r->fatal) != 0 || (r->stop_early && atomic_load(&r->stop))) {
            it->status = MFP_HASH_SKIPPED;
            continue;
        }
        int st = hash_one(r, it, md, buf);
        if (st < 0) {
            atomic_store(&r->fatal, st);
            atomic_store(&r->stop, 1);
            st = MFP_HASH_SKIPPED;
        }
        it->status = st;
        if (st != MFP_HASH_OK && st != MFP_HASH_SKIPPED)
            atomic_store(&r->stop, 1);
    }
    EVP_MD_CTX_free(md);
    free(buf);
}

int mfp_hash_files(int dirfd, struct mfp_hash_item *items, size_t n, unsigned threads,
                   int stop_early, size_t *first_bad)
{
    if (dirfd < 0 || (items == NULL && n > 0) || first_bad == NULL || threads < 1 ||
        threads > MFP_STREAM_MAX_THREADS)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        items[i].status = MFP_HASH_SKIPPED;
        items[i].err = 0;
        items[i].size = 0;
        items[i].mode = 0;
        memset(items[i].digest, 0, sizeof items[i].digest);
    }
    struct hash_run r = {.dirfd = dirfd, .items = items, .n = n, .stop_early = stop_early};
    atomic_init(&r.next, 0);
    atomic_init(&r.stop, 0);
    atomic_init(&r.fatal, 0);
    unsigned t = threads < n ? threads : (n == 0 ? 1 : (unsigned)n);
    void *args[MFP_STREAM_MAX_THREADS] = {0};
    for (unsigned i = 0; i < t; i++)
        args[i] = &r;
    mfp_pool_run(worker, args, t);
    int fatal = atomic_load(&r.fatal);
    if (fatal != 0)
        return fatal;
    /* The lowest real failure (an item interrupted by it is SKIPPED, not the cause). */
    for (size_t i = 0; i < n; i++) {
        if (items[i].status != MFP_HASH_OK && items[i].status != MFP_HASH_SKIPPED) {
            *first_bad = i;
            return -EBADMSG;
        }
    }
    return 0;
}
