/* Segmented AES-256-GCM streams: the documented layout (each segment opened with the
 * one-shot GCM), round trips of edge sizes in memory, through files and through a pipe,
 * every tampering case, verify-only opening, cancel, ENOSPC and bad arguments. */
#include "mfp_native.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SHIFT 12
#define SEG   ((size_t)1 << SHIFT)
#define FULL  (SEG + MFP_STREAM_TAG_BYTES)

static uint8_t key[32], other_key[32];
static const uint8_t context[] = "job-0042/page-1";

static struct mfp_stream_params params(const uint8_t *k, unsigned threads)
{
    return (struct mfp_stream_params){.key = k,
                                      .context = context,
                                      .context_len = sizeof context - 1,
                                      .seg_shift = SHIFT,
                                      .threads = threads};
}

static uint8_t *pattern(size_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(i * 131 + (i >> 9));
    return p;
}

/* Sealed copy of len bytes; *sealed_len set. */
static uint8_t *seal(const uint8_t *pt, size_t len, size_t *sealed_len, unsigned threads)
{
    uint64_t size = 0;
    CHECK(mfp_stream_sealed_size(len, SHIFT, &size) == 0 && size <= SIZE_MAX);
    uint8_t *out = malloc((size_t)size);
    struct mfp_stream_params p = params(key, threads);
    CHECK(mfp_stream_seal(&p, pt, len, out, (size_t)size, sealed_len, NULL) == 0);
    CHECK(*sealed_len == size);
    return out;
}

/* Opens in memory; returns the error and checks nothing leaked into out on failure. */
static int open_rc(const uint8_t *ct, size_t len, const uint8_t *k, uint64_t *bad)
{
    uint8_t *out = malloc(len + 1);
    memset(out, 0xee, len + 1);
    struct mfp_stream_params p = params(k, 2);
    struct mfp_stream_state st = {0};
    size_t got = 0;
    int rc = mfp_stream_open(&p, ct, len, out, len, &got, &st);
    if (rc == -EBADMSG) {
        int zero = 1;
        for (size_t i = 0; i < len; i++)
            zero &= out[i] == 0 || out[i] == 0xee;
        CHECK(zero);
        if (bad != NULL)
            *bad = atomic_load(&st.bad_segment);
    }
    free(out);
    return rc;
}

static void layout_is_one_shot_gcm(void)
{
    size_t len = 2 * SEG + 100, n = 0;
    uint8_t *pt = pattern(len);
    uint8_t *ct = seal(pt, len, &n, 1);
    CHECK(memcmp(ct, "MFPE", 4) == 0 && ct[4] == 1 && ct[5] == SHIFT && ct[6] == 0);
    uint8_t aad[MFP_STREAM_HEADER_BYTES + 1 + sizeof context];
    memcpy(aad, ct, MFP_STREAM_HEADER_BYTES);
    memcpy(aad + MFP_STREAM_HEADER_BYTES + 1, context, sizeof context - 1);
    for (uint32_t i = 0; i < 3; i++) {
        uint8_t nonce[12];
        memcpy(nonce, ct + 8, 8);
        nonce[8] = (uint8_t)(i >> 24);
        nonce[9] = (uint8_t)(i >> 16);
        nonce[10] = (uint8_t)(i >> 8);
        nonce[11] = (uint8_t)i;
        aad[MFP_STREAM_HEADER_BYTES] = i == 2;
        size_t plen = i == 2 ? 100 : SEG;
        const uint8_t *seg = ct + MFP_STREAM_HEADER_BYTES + i * FULL;
        uint8_t out[SEG];
        CHECK(mfp_aes256gcm_open(key, nonce, aad, sizeof aad - 1, seg, plen, seg + plen, out) == 0);
        CHECK(memcmp(out, pt + i * SEG, plen) == 0);
    }
    free(pt);
    free(ct);
}

static void round_trips_in_memory(void)
{
    const size_t sizes[] = {0, 1, SEG - 1, SEG, SEG + 1, 3 * SEG, (5u << 20) + 7};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        for (unsigned threads = 1; threads <= 4; threads += 3) {
            size_t len = sizes[s], n = 0, got = 0;
            uint8_t *pt = pattern(len);
            uint8_t *ct = seal(pt, len, &n, threads);
            uint64_t plain = 0;
            CHECK(mfp_stream_plain_size(ct, n, &plain) == 0 && plain == len);
            uint8_t *back = malloc(len + 1);
            struct mfp_stream_params p = params(key, threads);
            CHECK(mfp_stream_open(&p, ct, n, back, len, &got, NULL) == 0);
            CHECK(got == len && memcmp(back, pt, len) == 0);
            if (len > 0)
                CHECK(mfp_stream_open(&p, ct, n, back, len - 1, &got, NULL) == -ENOSPC);
            free(pt);
            free(ct);
            free(back);
        }
    }
}

static void tampering_is_detected(void)
{
    size_t len = 4 * SEG + 33, n = 0;
    uint8_t *pt = pattern(len);
    uint8_t *ct = seal(pt, len, &n, 1);
    uint8_t *t = malloc(n + 2 * FULL);
    uint64_t bad = 99;

    /* A flipped bit in each segment (ciphertext and tag) names that segment. */
    for (size_t i = 0; i < 5; i++) {
        for (size_t at = 0; at < FULL; at += FULL - 1) {
            size_t off = MFP_STREAM_HEADER_BYTES + i * FULL + at;
            if (off >= n)
                continue;
            memcpy(t, ct, n);
            t[off] ^= 0x04;
            CHECK(open_rc(t, n, key, &bad) == -EBADMSG && bad == i);
        }
    }
    /* Truncated at every segment boundary, and inside the last tag. */
    for (size_t i = 0; i <= 4; i++)
        CHECK(open_rc(ct, MFP_STREAM_HEADER_BYTES + i * FULL, key, NULL) == -EBADMSG);
    CHECK(open_rc(ct, n - 1, key, NULL) == -EBADMSG);
    CHECK(open_rc(ct, MFP_STREAM_HEADER_BYTES - 1, key, NULL) == -EBADMSG);
    /* Two segments swapped. */
    memcpy(t, ct, n);
    memcpy(t + MFP_STREAM_HEADER_BYTES, ct + MFP_STREAM_HEADER_BYTES + FULL, FULL);
    memcpy(t + MFP_STREAM_HEADER_BYTES + FULL, ct + MFP_STREAM_HEADER_BYTES, FULL);
    CHECK(open_rc(t, n, key, &bad) == -EBADMSG && bad == 0);
    /* Appended: a byte, a tag's worth, a copy of the final segment. */
    memcpy(t, ct, n);
    t[n] = 0;
    CHECK(open_rc(t, n + 1, key, NULL) == -EBADMSG);
    memset(t + n, 0, 16);
    CHECK(open_rc(t, n + 16, key, NULL) == -EBADMSG);
    memcpy(t + n, ct + n - 33 - 16, 33 + 16);
    CHECK(open_rc(t, n + 49, key, NULL) == -EBADMSG);
    /* A segment from another object (same key, so only the nonce prefix differs). */
    size_t n2 = 0;
    uint8_t *ct2 = seal(pt, len, &n2, 1);
    memcpy(t, ct, n);
    memcpy(t + MFP_STREAM_HEADER_BYTES + 2 * FULL, ct2 + MFP_STREAM_HEADER_BYTES + 2 * FULL, FULL);
    CHECK(open_rc(t, n, key, &bad) == -EBADMSG && bad == 2);
    /* The header: magic, version, segment size, prefix. */
    for (size_t off = 0; off < MFP_STREAM_HEADER_BYTES; off++) {
        memcpy(t, ct, n);
        t[off] ^= 0x01;
        CHECK(open_rc(t, n, key, NULL) == -EBADMSG);
    }
    /* Wrong key, wrong context. */
    CHECK(open_rc(ct, n, other_key, NULL) == -EBADMSG);
    struct mfp_stream_params p = params(key, 1);
    p.context_len -= 1;
    size_t got = 0;
    uint8_t *out = malloc(len);
    CHECK(mfp_stream_open(&p, ct, n, out, len, &got, NULL) == -EBADMSG);
    CHECK(open_rc(ct, n, key, NULL) == 0);
    free(out);
    free(ct2);
    free(t);
    free(pt);
    free(ct);
}

static int temp_fd(void)
{
    char path[] = "/var/tmp/mfp-stream-XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0)
        unlink(path);
    return fd;
}

static uint8_t *read_back(int fd, size_t *len)
{
    off_t end = lseek(fd, 0, SEEK_END);
    uint8_t *buf = malloc((size_t)end + 1);
    *len = (size_t)pread(fd, buf, (size_t)end, 0);
    return buf;
}

struct feeder {
    int fd;
    const uint8_t *data;
    size_t len;
};

static void *feed(void *arg)
{
    struct feeder *f = arg;
    size_t off = 0;
    while (off < f->len) {
        ssize_t n = write(f->fd, f->data + off, f->len - off > 7777 ? 7777 : f->len - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    close(f->fd);
    return NULL;
}

static void file_descriptors(void)
{
    const size_t sizes[] = {0, SEG, 300 * SEG + 5, (3u << 20)};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t len = sizes[s];
        uint8_t *pt = pattern(len);
        /* Plaintext arrives through a pipe in odd-sized writes. */
        int pfd[2];
        CHECK(pipe(pfd) == 0);
        struct feeder f = {pfd[1], pt, len};
        pthread_t th;
        CHECK(pthread_create(&th, NULL, feed, &f) == 0);
        int sealed = temp_fd();
        struct mfp_stream_params p = params(key, 2);
        /* Every other size written with O_DIRECT (an aligned staging buffer, the tail
         * through the cache); the descriptor's own flags come back unchanged. */
        p.flags = s % 2 ? MFP_STREAM_DIRECT : 0;
        int fl_before = fcntl(sealed, F_GETFL);
        struct mfp_stream_state st = {0};
        uint64_t out = 0;
        CHECK(mfp_stream_seal_fd(&p, pfd[0], sealed, &out, &st) == 0);
        CHECK(fcntl(sealed, F_GETFL) == fl_before);
        pthread_join(th, NULL);
        close(pfd[0]);
        uint64_t want = 0;
        CHECK(mfp_stream_sealed_size(len, SHIFT, &want) == 0 && out == want);
        CHECK(atomic_load(&st.bytes_in) == len && atomic_load(&st.bytes_out) == want);
        /* The same layout as the memory form: it opens there too. */
        size_t n = 0, got = 0;
        uint8_t *ct = read_back(sealed, &n);
        uint8_t *back = malloc(len + 1);
        CHECK(n == want);
        CHECK(mfp_stream_open(&p, ct, n, back, len, &got, NULL) == 0 && got == len &&
              memcmp(back, pt, len) == 0);
        /* And back through descriptors, verify-only first. */
        uint64_t plain = 0;
        CHECK(lseek(sealed, 0, SEEK_SET) == 0);
        CHECK(mfp_stream_open_fd(&p, sealed, -1, &plain, &st) == 0);
        int clear = temp_fd();
        CHECK(lseek(sealed, 0, SEEK_SET) == 0);
        CHECK(mfp_stream_open_fd(&p, sealed, clear, &plain, &st) == 0 && plain == len);
        free(back);
        back = read_back(clear, &got);
        CHECK(got == len && memcmp(back, pt, len) == 0);
        /* A flipped bit in the last segment: verify-only says which, no output. */
        if (len > SEG) {
            ct[n - 20] ^= 0x10;
            int bad = temp_fd();
            CHECK(pwrite(bad, ct, n, 0) == (ssize_t)n);
            CHECK(lseek(bad, 0, SEEK_SET) == 0);
            CHECK(mfp_stream_open_fd(&p, bad, -1, &plain, &st) == -EBADMSG);
            CHECK(atomic_load(&st.bad_segment) == (n - MFP_STREAM_HEADER_BYTES - 1) / FULL);
            /* Truncated on a segment boundary: the last full segment is not final. */
            CHECK(ftruncate(bad, MFP_STREAM_HEADER_BYTES + FULL) == 0);
            CHECK(lseek(bad, 0, SEEK_SET) == 0);
            CHECK(mfp_stream_open_fd(&p, bad, -1, &plain, &st) == -EBADMSG);
            close(bad);
        }
        close(clear);
        close(sealed);
        free(back);
        free(ct);
        free(pt);
    }
}

static void failures(void)
{
    struct mfp_stream_params p = params(key, 1);
    struct mfp_stream_state st = {0};
    uint64_t out = 0;
    int zero = open("/dev/zero", O_RDONLY | O_CLOEXEC);
    int full = open("/dev/full", O_WRONLY | O_CLOEXEC);
    CHECK(zero >= 0 && full >= 0);
    CHECK(mfp_stream_seal_fd(&p, zero, full, &out, &st) == -ENOSPC);
    int sink = open("/dev/null", O_WRONLY | O_CLOEXEC);
    atomic_store(&st.cancel, 1);
    CHECK(mfp_stream_seal_fd(&p, zero, sink, &out, &st) == -ECANCELED);
    close(zero);
    close(full);
    close(sink);

    uint8_t buf[64];
    size_t got = 0;
    p.threads = 0;
    CHECK(mfp_stream_seal(&p, buf, 1, buf, sizeof buf, &got, NULL) == -EINVAL);
    p.threads = 1;
    p.seg_shift = 11;
    CHECK(mfp_stream_seal(&p, buf, 1, buf, sizeof buf, &got, NULL) == -EINVAL);
    p.seg_shift = SHIFT;
    CHECK(mfp_stream_seal(&p, buf, 40, buf, 40, &got, NULL) == -ENOSPC);
    p.key = NULL;
    CHECK(mfp_stream_seal(&p, buf, 1, buf, sizeof buf, &got, NULL) == -EINVAL);
    uint64_t size = 0;
    CHECK(mfp_stream_sealed_size(0, SHIFT, &size) == 0 && size == 32);
    CHECK(mfp_stream_sealed_size(UINT64_MAX, SHIFT, &size) == -EFBIG);
}

/* The worker pool is process-wide: a forked child must start its own, not wait forever
 * on threads that exist only in the parent. */
static void pool_survives_fork(void)
{
    size_t len = (4u << 20) + 1, n = 0;
    uint8_t *pt = pattern(len);
    uint8_t *ct = seal(pt, len, &n, 4); /* the parent's pool is running */
    pid_t pid = fork();
    if (pid == 0) {
        size_t m = 0;
        uint8_t *again = seal(pt, len, &m, 4);
        int ok = again != NULL && m == n && tap_failed == 0;
        free(again);
        _exit(ok ? 0 : 1);
    }
    int status = -1;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    free(ct);
    free(pt);
}

int main(void)
{
    for (size_t i = 0; i < 32; i++) {
        key[i] = (uint8_t)(i * 7 + 1);
        other_key[i] = (uint8_t)(i * 7 + 2);
    }
    layout_is_one_shot_gcm();
    round_trips_in_memory();
    tampering_is_detected();
    file_descriptors();
    failures();
    pool_survives_fork();
    return tap_finish("test_stream");
}
