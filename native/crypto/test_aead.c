/* AES-256-GCM known answers (GCM specification, McGrew & Viega, test cases 13, 14, 16;
 * NIST CAVP gcmEncryptExtIV256.rsp, Keylen 256, IVlen 96, PTlen 0, Count 0)
 * and the failure paths: altered tag, ciphertext or AAD; bad arguments. */
#include "mfp_native.h"
#include "hex.h"
#include "tap.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

struct vector {
    const char *key, *nonce, *aad, *pt, *ct, *tag;
};

static const struct vector vectors[] = {
    {"0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000",
     "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"0000000000000000000000000000000000000000000000000000000000000000", "000000000000000000000000",
     "", "00000000000000000000000000000000", "cea7403d4d606b6e074ec5d3baf39d18",
     "d0d1c8a799996bf0265b98b5d48ab919"},
    {"feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
     "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
     "76fc6ece0f4e1768cddf8853bb2d551b"},
    {"b52c505a37d78eda5dd34f20c22540ea1b58963cf8e5bf8ffa85f9f2492505b4", "516c33929df5a3284ff463d7",
     "", "", "", "bdc1ac884d332457a1d2664f168c76f0"},
};

int main(void)
{
    for (size_t v = 0; v < sizeof vectors / sizeof vectors[0]; v++) {
        uint8_t key[32], nonce[12], aad[64], pt[64], ct[64], tag[16], out[64], outtag[16];
        CHECK(unhex(vectors[v].key, key, sizeof key) == 32);
        CHECK(unhex(vectors[v].nonce, nonce, sizeof nonce) == 12);
        size_t aad_len = unhex(vectors[v].aad, aad, sizeof aad);
        size_t len = unhex(vectors[v].pt, pt, sizeof pt);
        CHECK(unhex(vectors[v].ct, ct, sizeof ct) == len);
        CHECK(unhex(vectors[v].tag, tag, sizeof tag) == 16);

        CHECK(mfp_aes256gcm_seal(key, nonce, aad, aad_len, pt, len, out, outtag) == 0);
        CHECK(memcmp(out, ct, len) == 0);
        CHECK(memcmp(outtag, tag, 16) == 0);

        memset(out, 0xaa, sizeof out);
        CHECK(mfp_aes256gcm_open(key, nonce, aad, aad_len, ct, len, tag, out) == 0);
        CHECK(memcmp(out, pt, len) == 0);

        /* Every alteration fails authentication and leaves no plaintext behind. */
        uint8_t badtag[16];
        memcpy(badtag, tag, 16);
        badtag[15] ^= 1;
        memset(out, 0xaa, sizeof out);
        CHECK(mfp_aes256gcm_open(key, nonce, aad, aad_len, ct, len, badtag, out) == -EBADMSG);
        for (size_t i = 0; i < len; i++)
            CHECK(out[i] == 0);
        if (len > 0) {
            uint8_t badct[64];
            memcpy(badct, ct, len);
            badct[0] ^= 0x80;
            CHECK(mfp_aes256gcm_open(key, nonce, aad, aad_len, badct, len, tag, out) == -EBADMSG);
        }
        uint8_t otheraad[65];
        memcpy(otheraad, aad, aad_len);
        otheraad[aad_len] = 0;
        CHECK(mfp_aes256gcm_open(key, nonce, otheraad, aad_len + 1, ct, len, tag, out) == -EBADMSG);
    }

    uint8_t k[32] = {0}, n[12] = {0}, b[16] = {0}, t[16];
    CHECK(mfp_aes256gcm_seal(NULL, n, NULL, 0, b, 16, b, t) == -EINVAL);
    CHECK(mfp_aes256gcm_seal(k, n, NULL, 4, b, 16, b, t) == -EINVAL);
    CHECK(mfp_aes256gcm_open(k, n, NULL, 0, b, 16, NULL, b) == -EINVAL);
#if SIZE_MAX > UINT32_MAX /* a 32-bit target cannot even name a message this long */
    CHECK(mfp_aes256gcm_seal(k, n, NULL, 0, b, (size_t)1 << 32, b, t) == -EOVERFLOW);
#endif

    uint8_t x[4] = {1, 2, 3, 4}, y[4] = {1, 1, 1, 1};
    CHECK(mfp_xor(x, x, y, 4) == 0);
    CHECK(x[0] == 0 && x[1] == 3 && x[2] == 2 && x[3] == 5);
    CHECK(mfp_xor(NULL, x, y, 4) == -EINVAL);
    CHECK(mfp_xor(NULL, NULL, NULL, 0) == 0);
    return tap_finish("test_aead");
}
