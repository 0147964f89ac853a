/*
 * mfp-engine-rate: how fast the engines run on this CPU, one figure per call, for the
 * cross suite (bench/cross) that runs the same program natively and under qemu-user.
 * Under emulation the figures say whether the engines work at a sane pace on the
 * target's instruction set, not what the silicon does: README says what to measure
 * there.
 *
 *   mfp-engine-rate keystream|gcm|overwrite|argon2id SECONDS
 *
 * prints one line: "<what> <rate> <unit>" (MB/s of data; hashes/s for argon2id).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mfp_native.h"

#define CHUNK (4u << 20)

static double now_s(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        return 0.0;
    }
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "mfp-engine-rate: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
    return 1;
}

/* The random pass's stream (AES-256-CTR): the CPU side of every random overwrite. */
static int keystream(double seconds)
{
    uint8_t key[MFP_AES256_KEY_BYTES];
    uint8_t *buf = calloc(1, CHUNK);
    if (buf == NULL) {
        return fail("calloc", ENOMEM);
    }
    int rc = mfp_random(key, sizeof key);
    double t0 = now_s(), elapsed = 0.0;
    uint64_t done = 0;
    while (rc == 0 && elapsed < seconds) {
        rc = mfp_wipe_keystream(key, done, buf, CHUNK);
        done += CHUNK;
        elapsed = now_s() - t0;
    }
    free(buf);
    if (rc != 0) {
        return fail("keystream", rc);
    }
    printf("keystream %.1f MB/s\n", (double)done / elapsed / 1e6);
    return 0;
}

/* A stored object's encryption: segmented AES-256-GCM, 64 KiB segments, one thread. */
static int gcm(double seconds)
{
    uint8_t key[32];
    uint64_t cap = 0;
    int rc = mfp_stream_sealed_size(CHUNK, MFP_STREAM_DEFAULT_SHIFT, &cap);
    uint8_t *in = calloc(1, CHUNK), *out = calloc(1, (size_t)cap);
    if (in == NULL || out == NULL) {
        free(in);
        free(out);
        return fail("calloc", ENOMEM);
    }
    if (rc == 0) {
        rc = mfp_random(key, sizeof key);
    }
    struct mfp_stream_params p = {key, (const uint8_t *)"bench", 5, MFP_STREAM_DEFAULT_SHIFT, 1, 0};
    double t0 = now_s(), elapsed = 0.0;
    uint64_t done = 0;
    while (rc == 0 && elapsed < seconds) {
        size_t out_len = 0;
        rc = mfp_stream_seal(&p, in, CHUNK, out, (size_t)cap, &out_len, NULL);
        done += CHUNK;
        elapsed = now_s() - t0;
    }
    free(in);
    free(out);
    if (rc != 0) {
        return fail("gcm", rc);
    }
    printf("gcm %.1f MB/s\n", (double)done / elapsed / 1e6);
    return 0;
}

/* The overwrite engine proper: random passes over a file (the page cache: a tmpfs or a
 * file system that refuses O_DIRECT), flushed at the end of each. */
static int overwrite(double seconds)
{
    char path[] = "/tmp/mfp-engine-rate-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        return fail("mkstemp", errno);
    }
    if (unlink(path) != 0 || ftruncate(fd, 8 * (off_t)CHUNK) != 0) {
        int err = errno;
        close(fd);
        return fail("scratch file", err);
    }
    struct mfp_pass pass = {.kind = MFP_PASS_RANDOM, .byte = 0};
    struct mfp_wipe_state state;
    memset(&state, 0, sizeof state);
    int rc = mfp_random(pass.key, sizeof pass.key);
    double t0 = now_s(), elapsed = 0.0;
    uint64_t done = 0;
    while (rc == 0 && elapsed < seconds) {
        rc = mfp_wipe_write(fd, 0, 8 * (uint64_t)CHUNK, &pass, 0, 0, &state);
        done += 8 * (uint64_t)CHUNK;
        elapsed = now_s() - t0;
    }
    close(fd);
    if (rc != 0) {
        return fail("overwrite", rc);
    }
    printf("overwrite %.1f MB/s\n", (double)done / elapsed / 1e6);
    return 0;
}

/* A password verifier at the daemon's default cost (19 MiB, 2 passes, 1 lane). */
static int argon2id(double seconds)
{
    const uint8_t pwd[] = "correct horse battery staple";
    uint8_t salt[16], out[32];
    int rc = mfp_random(salt, sizeof salt);
    double t0 = now_s(), elapsed = 0.0;
    unsigned n = 0;
    while (rc == 0 && (elapsed < seconds || n == 0)) {
        rc = mfp_argon2id(pwd, sizeof pwd - 1, salt, sizeof salt, 2, 19 * 1024, 1, out, sizeof out);
        n++;
        elapsed = now_s() - t0;
    }
    if (rc != 0) {
        return fail("argon2id", rc);
    }
    printf("argon2id %.2f hashes/s\n", (double)n / elapsed);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: mfp-engine-rate keystream|gcm|overwrite|argon2id SECONDS\n");
        return 2;
    }
    double seconds = strtod(argv[2], NULL);
    if (!(seconds > 0.0 && seconds < 600.0)) {
        fprintf(stderr, "mfp-engine-rate: SECONDS must be between 0 and 600\n");
        return 2;
    }
    if (strcmp(argv[1], "keystream") == 0) {
        return keystream(seconds);
    }
    if (strcmp(argv[1], "gcm") == 0) {
        return gcm(seconds);
    }
    if (strcmp(argv[1], "overwrite") == 0) {
        return overwrite(seconds);
    }
    if (strcmp(argv[1], "argon2id") == 0) {
        return argon2id(seconds);
    }
    fprintf(stderr, "mfp-engine-rate: unknown engine %s\n", argv[1]);
    return 2;
}
