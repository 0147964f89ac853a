/* The audit chain walker against a chain built here with EVP: intact, and each break. */
#include "mfp_native.h"
#include "tap.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#define N 5

static char recs[N][256];
static const uint8_t *ptrs[N];
static size_t lens[N];

static void hex(const uint8_t *h, char *out)
{
    for (int k = 0; k < 32; k++)
        snprintf(out + 2 * k, 3, "%02x", h[k]);
}

static void build(void)
{
    uint8_t h[32] = {0};
    for (int i = 0; i < N; i++) {
        char prev[65];
        hex(h, prev);
        int len = snprintf(recs[i], sizeof recs[i],
                           "{\"seq\":%d,\"prev\":\"%s\",\"time\":\"t\",\"object\":\"o%d\"}", i + 1,
                           prev, i);
        ptrs[i] = (const uint8_t *)recs[i];
        lens[i] = (size_t)len;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned int outl = 0;
        EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
        EVP_DigestUpdate(ctx, h, 32);
        EVP_DigestUpdate(ctx, recs[i], (size_t)len);
        EVP_DigestFinal_ex(ctx, h, &outl);
        EVP_MD_CTX_free(ctx);
    }
}

int main(void)
{
    build();
    uint8_t h[32] = {0};
    size_t bad = 99;
    int kind = -1;
    CHECK(mfp_audit_chain(ptrs, lens, N, 1, h, &bad, &kind) == 0);
    CHECK(kind == MFP_CHAIN_OK);

    recs[2][strlen(recs[2]) - 3] ^= 1; /* modify record 3's body: record 4 stops linking */
    memset(h, 0, sizeof h);
    CHECK(mfp_audit_chain(ptrs, lens, N, 1, h, &bad, &kind) == -EBADMSG);
    CHECK(bad == 3 && kind == MFP_CHAIN_LINK);
    build();

    const uint8_t *gap[N - 1] = {ptrs[0], ptrs[1], ptrs[3], ptrs[4]};
    size_t gaplens[N - 1] = {lens[0], lens[1], lens[3], lens[4]};
    memset(h, 0, sizeof h);
    CHECK(mfp_audit_chain(gap, gaplens, N - 1, 1, h, &bad, &kind) == -EBADMSG);
    CHECK(bad == 2 && kind == MFP_CHAIN_SEQ);

    const uint8_t *junk[1] = {(const uint8_t *)"{\"seq\":x}"};
    size_t junklen[1] = {9};
    memset(h, 0, sizeof h);
    CHECK(mfp_audit_chain(junk, junklen, 1, 1, h, &bad, &kind) == -EBADMSG);
    CHECK(kind == MFP_CHAIN_UNREADABLE);
    CHECK(mfp_audit_chain(NULL, NULL, 0, 1, h, &bad, &kind) == 0);
    CHECK(mfp_audit_chain(ptrs, lens, N, 1, NULL, &bad, &kind) == -EINVAL);
    return tap_finish("test_chain");
}
