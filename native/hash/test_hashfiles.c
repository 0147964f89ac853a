/* Firmware tree hashing: digests equal a one-shot EVP SHA-256 on 1 and 4 threads; size
 * and digest mismatches; links, "..", absolute paths, directories and missing files
 * refused without following anything; stop_early. */
#include "mfp_native.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <openssl/evp.h>

static char root[] = "/tmp/mfp-hash-XXXXXX";

static void put_file(const char *rel, size_t size, uint8_t seed, uint8_t digest[32])
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    uint8_t *data = malloc(size ? size : 1);
    for (size_t i = 0; i < size; i++)
        data[i] = (uint8_t)(seed + i * 7 + (i >> 12));
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL && fwrite(data, 1, size, f) == size);
    fclose(f);
    unsigned len = 0;
    CHECK(EVP_Digest(data, size, digest, &len, EVP_sha256(), NULL) == 1 && len == 32);
    free(data);
}

static struct mfp_hash_item item(const char *path, uint64_t size, const uint8_t *expect)
{
    struct mfp_hash_item it;
    memset(&it, 0, sizeof it);
    it.path = path;
    it.expect_size = size;
    it.expect = expect;
    return it;
}

/* Whether this kernel (or emulator: qemu-user before 8.0 lacks it) has openat2. */
static int have_openat2(int dirfd)
{
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_RDONLY | O_CLOEXEC;
    long fd = syscall(SYS_openat2, dirfd, "empty", &how, sizeof how);
    if (fd >= 0)
        close((int)fd);
    return fd >= 0 || errno != ENOSYS;
}

/* Without openat2 the engine refuses as a whole: it never falls back to an open that
 * could follow a link out of the tree. */
static void check_fails_closed(int dirfd, const uint8_t *d_big)
{
    struct mfp_hash_item one[2] = {item("big", (3u << 20) + 11, d_big),
                                   item("link", UINT64_MAX, NULL)};
    size_t bad = 99;
    CHECK(mfp_hash_files(dirfd, one, 2, 2, 0, &bad) == -ENOSYS);
    CHECK(one[0].status != MFP_HASH_OK && one[1].status != MFP_HASH_OK);
    printf("test_hashfiles: no openat2 here (an emulator?): only the refusal is checked\n");
}

int main(void)
{
    CHECK(mkdtemp(root) != NULL);
    char sub[600];
    snprintf(sub, sizeof sub, "%s/bin", root);
    CHECK(mkdir(sub, 0755) == 0);
    uint8_t d_empty[32], d_small[32], d_big[32], d_other[32];
    put_file("empty", 0, 1, d_empty);
    put_file("bin/small", 4097, 2, d_small);
    put_file("big", (3u << 20) + 11, 3, d_big);
    put_file("other", 100, 4, d_other);
    char link[600], dirlink[600];
    snprintf(link, sizeof link, "%s/link", root);
    snprintf(dirlink, sizeof dirlink, "%s/binlink", root);
    CHECK(symlink("big", link) == 0);
    CHECK(symlink("bin", dirlink) == 0);
    int dirfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK(dirfd >= 0);
    if (!have_openat2(dirfd)) {
        /* Only where the build says it runs under an emulator (make test-cross): a native
         * kernel without openat2 (or a seccomp filter refusing it) fails the test. */
        const char *emulated = getenv("MFP_TEST_EMULATED");
        CHECK(emulated != NULL && strcmp(emulated, "1") == 0);
        check_fails_closed(dirfd, d_big);
        goto done;
    }

    for (unsigned threads = 1; threads <= 4; threads += 3) {
        struct mfp_hash_item ok[3] = {item("big", (3u << 20) + 11, d_big),
                                      item("bin/small", 4097, d_small), item("empty", 0, d_empty)};
        size_t bad = 99;
        CHECK(mfp_hash_files(dirfd, ok, 3, threads, 1, &bad) == 0);
        for (int i = 0; i < 3; i++)
            CHECK(ok[i].status == MFP_HASH_OK);
        CHECK(memcmp(ok[1].digest, d_small, 32) == 0 && ok[1].size == 4097);
        CHECK(ok[0].mode == 0644 || ok[0].mode == 0600 || ok[0].mode == 0664);
    }

    /* Every refusal, each named; nothing followed. */
    struct mfp_hash_item bad_items[] = {
        item("other", 100, d_big),               /* MISMATCH */
        item("other", 99, d_other),              /* SIZE */
        item("link", UINT64_MAX, NULL),          /* SYMLINK at the end */
        item("binlink/small", UINT64_MAX, NULL), /* SYMLINK in the path */
        item("../etc/passwd", UINT64_MAX, NULL), /* ESCAPES */
        item("/etc/passwd", UINT64_MAX, NULL),   /* ESCAPES */
        item("bin", UINT64_MAX, NULL),           /* NOT_REGULAR */
        item("nothing", UINT64_MAX, NULL),       /* MISSING */
        item("bin/small/x", UINT64_MAX, NULL),   /* MISSING (ENOTDIR) */
    };
    const int want[] = {MFP_HASH_MISMATCH,    MFP_HASH_SIZE,    MFP_HASH_SYMLINK,
                        MFP_HASH_SYMLINK,     MFP_HASH_ESCAPES, MFP_HASH_ESCAPES,
                        MFP_HASH_NOT_REGULAR, MFP_HASH_MISSING, MFP_HASH_MISSING};
    size_t n = sizeof bad_items / sizeof bad_items[0];
    size_t bad = 99;
    CHECK(mfp_hash_files(dirfd, bad_items, n, 2, 0, &bad) == -EBADMSG && bad == 0);
    for (size_t i = 0; i < n; i++) {
        if (bad_items[i].status != want[i])
            fprintf(stderr, "item %zu: status %d, want %d\n", i, bad_items[i].status, want[i]);
        CHECK(bad_items[i].status == want[i]);
    }

    /* stop_early: after the first failure the rest is not looked at. */
    struct mfp_hash_item early[6] = {item("other", 100, d_big),     item("big", UINT64_MAX, NULL),
                                     item("big", UINT64_MAX, NULL), item("big", UINT64_MAX, NULL),
                                     item("big", UINT64_MAX, NULL), item("big", UINT64_MAX, NULL)};
    CHECK(mfp_hash_files(dirfd, early, 6, 1, 1, &bad) == -EBADMSG && bad == 0);
    CHECK(early[0].status == MFP_HASH_MISMATCH);
    for (int i = 1; i < 6; i++)
        CHECK(early[i].status == MFP_HASH_SKIPPED);

    CHECK(mfp_hash_files(-1, early, 1, 1, 0, &bad) == -EINVAL);
    CHECK(mfp_hash_files(dirfd, early, 1, 0, 0, &bad) == -EINVAL);
    CHECK(mfp_hash_files(dirfd, NULL, 0, 1, 0, &bad) == 0);
done:
    close(dirfd);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    CHECK(system(cmd) == 0);
    return tap_finish("test_hashfiles");
}
