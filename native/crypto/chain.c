#include "mfp_native.h"

#include <errno.h>
#include <string.h>

#include <openssl/evp.h>

/*
 * The audit log's hash chain, verified in one pass without leaving C: for each record,
 * read seq and prev from its fixed canonical start ({"seq":N,"prev":"<64 hex>"), check
 * them against the expected sequence number and the running hash, then
 * hash = SHA-256(hash || record).
 */

static const char head[] = "{\"seq\":";
static const char prev_key[] = ",\"prev\":\"";
static const char hexdigits[] = "0123456789abcdef";

static int parse_head(const uint8_t *rec, size_t len, uint64_t *seq, const uint8_t **prev_hex)
{
    size_t hl = sizeof head - 1, pl = sizeof prev_key - 1;
    if (len < hl + 1 + pl + 64 + 1 || memcmp(rec, head, hl) != 0)
        return -1;
    size_t i = hl;
    uint64_t v = 0;
    size_t digits = 0;
    while (i < len && rec[i] >= '0' && rec[i] <= '9' && digits < 19) {
        v = v * 10 + (uint64_t)(rec[i] - '0');
        i++;
        digits++;
    }
    if (digits == 0 || len - i < pl + 64 + 1 || memcmp(rec + i, prev_key, pl) != 0 ||
        rec[i + pl + 64] != '"')
        return -1;
    *seq = v;
    *prev_hex = rec + i + pl;
    return 0;
}

int mfp_audit_chain(const uint8_t *const *records, const size_t *lens, size_t n, uint64_t first_seq,
                    uint8_t hash[MFP_SHA256_BYTES], size_t *bad_index, int *bad_kind)
{
    if ((n > 0 && (records == NULL || lens == NULL)) || hash == NULL || bad_index == NULL ||
        bad_kind == NULL)
        return -EINVAL;
    *bad_index = 0;
    *bad_kind = MFP_CHAIN_OK;
    EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", NULL);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = (md == NULL || ctx == NULL) ? -ENOMEM : 0;
    char expect[64];
    for (size_t r = 0; rc == 0 && r < n; r++) {
        uint64_t seq = 0;
        const uint8_t *prev_hex = NULL;
        if (records[r] == NULL || parse_head(records[r], lens[r], &seq, &prev_hex) != 0) {
            *bad_index = r;
            *bad_kind = MFP_CHAIN_UNREADABLE;
            rc = -EBADMSG;
            break;
        }
        for (size_t k = 0; k < MFP_SHA256_BYTES; k++) {
            expect[2 * k] = hexdigits[hash[k] >> 4];
            expect[2 * k + 1] = hexdigits[hash[k] & 0x0f];
        }
        if (seq != first_seq + r || memcmp(prev_hex, expect, 64) != 0) {
            *bad_index = r;
            *bad_kind = seq != first_seq + r ? MFP_CHAIN_SEQ : MFP_CHAIN_LINK;
            rc = -EBADMSG;
            break;
        }
        unsigned int outl = 0;
        if (EVP_DigestInit_ex2(ctx, md, NULL) != 1 ||
            EVP_DigestUpdate(ctx, hash, MFP_SHA256_BYTES) != 1 ||
            EVP_DigestUpdate(ctx, records[r], lens[r]) != 1 ||
            EVP_DigestFinal_ex(ctx, hash, &outl) != 1 || outl != MFP_SHA256_BYTES) {
            rc = -EIO;
            break;
        }
    }
    EVP_MD_CTX_free(ctx);
    EVP_MD_free(md);
    return rc;
}
