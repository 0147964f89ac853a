/* The overwrite engine on a temporary file: byte and random passes read back, the random
 * stream checked against an independent AES-256-CTR, resume in two pieces, verify catching
 * a changed byte, cancel, ENOSPC and a target shorter than the range. */
#include "mfp_native.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#define SIZE ((size_t)(9u << 20) + 1234u) /* two full chunks, an odd tail */

static uint8_t *readback(int fd, size_t n)
{
    uint8_t *b = malloc(n);
    if (b == NULL)
        return NULL;
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, b + got, n - got, (off_t)got);
        if (r <= 0) {
            free(b);
            return NULL;
        }
        got += (size_t)r;
    }
    return b;
}

static int all_bytes(const uint8_t *b, size_t from, size_t to, uint8_t v)
{
    for (size_t i = from; i < to; i++)
        if (b[i] != v)
            return 0;
    return 1;
}

/* The whole-target stream computed in one go: AES-256-CTR from counter block 0. */
static uint8_t *reference_stream(const uint8_t key[32], size_t n)
{
    uint8_t *b = calloc(1, n);
    uint8_t iv[16] = {0};
    int outl = 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (b == NULL || ctx == NULL ||
        EVP_EncryptInit_ex(ctx, EVP_aes_256_ctr(), NULL, key, iv) != 1 ||
        EVP_EncryptUpdate(ctx, b, &outl, b, (int)n) != 1) {
        free(b);
        b = NULL;
    }
    EVP_CIPHER_CTX_free(ctx);
    return b;
}

static int make_file(char *path)
{
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    if (ftruncate(fd, (off_t)SIZE) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int main(void)
{
    char path[] = "/var/tmp/mfp-overwrite-XXXXXX";
    int fd = make_file(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return tap_finish("test_overwrite");

    uint64_t size = 0;
    uint32_t lb = 0;
    CHECK(mfp_wipe_geometry(fd, &size, &lb) == 0 && size == SIZE && lb == 512);

    struct mfp_wipe_state st;
    memset(&st, 0, sizeof st);

    /* Byte passes over the whole (unaligned-length) file, each read back in full. */
    const uint8_t patterns[] = {0x00, 0xFF, 0x61, 0xAA};
    for (size_t i = 0; i < sizeof patterns; i++) {
        struct mfp_pass p = {.kind = MFP_PASS_BYTE, .byte = patterns[i]};
        CHECK(mfp_wipe_write(fd, 0, SIZE, &p, MFP_WIPE_DIRECT, 1u << 20, &st) == 0);
        CHECK(atomic_load(&st.position) == SIZE && atomic_load(&st.durable) == SIZE);
        uint8_t *b = readback(fd, SIZE);
        CHECK(b != NULL && all_bytes(b, 0, SIZE, patterns[i]));
        free(b);
        CHECK(mfp_wipe_verify(fd, 0, SIZE, &p, MFP_WIPE_DIRECT, &st) == 0);
    }

    /* A random pass written in two pieces (as after a resume, split at an unaligned
     * offset) equals the stream computed in one go, and verifies. */
    struct mfp_pass r = {.kind = MFP_PASS_RANDOM};
    CHECK(mfp_random(r.key, sizeof r.key) == 0);
    const uint64_t split = 5000003;
    CHECK(mfp_wipe_write(fd, 0, split, &r, MFP_WIPE_DIRECT, 0, &st) == 0);
    CHECK(mfp_wipe_write(fd, split, SIZE, &r, MFP_WIPE_DIRECT, 0, &st) == 0);
    uint8_t *ref = reference_stream(r.key, SIZE);
    uint8_t *got = readback(fd, SIZE);
    CHECK(ref != NULL && got != NULL && memcmp(ref, got, SIZE) == 0);
    CHECK(mfp_wipe_verify(fd, 0, SIZE, &r, MFP_WIPE_DIRECT, &st) == 0);
    CHECK(mfp_wipe_verify(fd, 777, SIZE - 3, &r, 0, &st) == 0);

    /* Another key gives another stream: the verify of the old key fails at once. */
    struct mfp_pass r2 = r;
    CHECK(mfp_random(r2.key, sizeof r2.key) == 0);
    CHECK(mfp_wipe_write(fd, 0, SIZE, &r2, MFP_WIPE_DIRECT, 0, &st) == 0);
    CHECK(mfp_wipe_verify(fd, 0, SIZE, &r, MFP_WIPE_DIRECT, &st) == -EBADMSG);
    CHECK(atomic_load(&st.error_offset) < 16);
    free(got);
    got = readback(fd, SIZE);
    CHECK(got != NULL && memcmp(ref, got, SIZE) != 0);
    free(got);
    free(ref);

    /* One changed byte after the pass is found at its exact offset. */
    const off_t bad = 6 * 1024 * 1024 + 4097;
    uint8_t one = 0;
    CHECK(pread(fd, &one, 1, bad) == 1);
    one ^= 0x01;
    CHECK(pwrite(fd, &one, 1, bad) == 1 && fdatasync(fd) == 0);
    CHECK(mfp_wipe_verify(fd, 0, SIZE, &r2, MFP_WIPE_DIRECT, &st) == -EBADMSG);
    CHECK(atomic_load(&st.error_offset) == (uint64_t)bad);
    struct mfp_pass zero = {.kind = MFP_PASS_BYTE, .byte = 0};
    CHECK(mfp_wipe_write(fd, 0, SIZE, &zero, MFP_WIPE_DIRECT, 0, &st) == 0);
    CHECK(pwrite(fd, "\x01", 1, (off_t)SIZE - 1) == 1 && fdatasync(fd) == 0);
    CHECK(mfp_wipe_verify(fd, 0, SIZE, &zero, MFP_WIPE_DIRECT, &st) == -EBADMSG);
    CHECK(atomic_load(&st.error_offset) == SIZE - 1);

    /* A sub-range leaves its surroundings alone. */
    struct mfp_pass ff = {.kind = MFP_PASS_BYTE, .byte = 0xFF};
    CHECK(mfp_wipe_write(fd, 0, SIZE, &zero, 0, 0, &st) == 0);
    CHECK(mfp_wipe_write(fd, 100, 8200, &ff, MFP_WIPE_DIRECT, 0, &st) == 0);
    got = readback(fd, SIZE);
    CHECK(got != NULL && all_bytes(got, 0, 100, 0) && all_bytes(got, 100, 8200, 0xFF) &&
          all_bytes(got, 8200, SIZE, 0));
    free(got);

    /* Cancel: stops before the next chunk with durable exact. */
    atomic_store(&st.cancel, 1);
    CHECK(mfp_wipe_write(fd, 0, SIZE, &r, MFP_WIPE_DIRECT, 0, &st) == -ECANCELED);
    CHECK(atomic_load(&st.durable) == 0 && atomic_load(&st.position) == 0);
    CHECK(mfp_wipe_verify(fd, 0, SIZE, &zero, 0, &st) == -ECANCELED);
    atomic_store(&st.cancel, 0);

    /* The range runs past the end of the target. */
    CHECK(mfp_wipe_verify(fd, 8200, SIZE + 10, &zero, 0, &st) == -ENODATA);
    CHECK(atomic_load(&st.error_offset) == SIZE);

    /* Bad arguments. */
    struct mfp_pass odd = {.kind = 7};
    CHECK(mfp_wipe_write(fd, 0, SIZE, &odd, 0, 0, &st) == -EINVAL);
    CHECK(mfp_wipe_write(fd, 10, 5, &zero, 0, 0, &st) == -EINVAL);
    CHECK(mfp_wipe_write(-1, 0, 5, &zero, 0, 0, &st) == -EINVAL);
    CHECK(mfp_wipe_geometry(fd, NULL, &lb) == -EINVAL);
    close(fd);
    unlink(path);

    /* A device that is full: ENOSPC at the first byte, reported with its offset. */
    int full = open("/dev/full", O_WRONLY);
    if (full >= 0) {
        CHECK(mfp_wipe_geometry(full, &size, &lb) == -EINVAL);
        CHECK(mfp_wipe_write(full, 4096, 1 << 20, &zero, 0, 0, &st) == -ENOSPC);
        CHECK(atomic_load(&st.error_offset) == 4096);
        close(full);
    }
    return tap_finish("test_overwrite");
}
