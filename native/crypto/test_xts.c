/* AES-256-XTS known answers: IEEE 1619-2007 vector 10 (512-byte data unit 0xff, as a
 * sector) and NIST CAVP XTSGenAES256.rsp COUNT=1 (raw 128-bit tweak); round trips,
 * sector tweaks, equal key halves and bad arguments refused. */
#include "mfp_native.h"
#include "hex.h"
#include "tap.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char IEEE_KEY[] = "2718281828459045235360287471352662497757247093699959574966967627"
                               "3141592653589793238462643383279502884197169399375105820974944592";
static const char IEEE_CT[] = "1c3b3a102f770386e4836c99e370cf9bea00803f5e482357a4ae12d414a3e63b"
                              "5d31e276f8fe4a8d66b317f9ac683f44680a86ac35adfc3345befecb4bb188fd"
                              "5776926c49a3095eb108fd1098baec70aaa66999a72a82f27d848b21d4a741b0"
                              "c5cd4d5fff9dac89aeba122961d03a757123e9870f8acf1000020887891429ca"
                              "2a3e7a7d7df7b10355165c8b9a6d0a7de8b062c4500dc4cd120c0f7418dae3d0"
                              "b5781c34803fa75421c790dfe1de1834f280d7667b327f6c8cd7557e12ac3a0f"
                              "93ec05c52e0493ef31a12d3d9260f79a289d6a379bc70c50841473d1a8cc81ec"
                              "583e9645e07b8d9670655ba5bbcfecc6dc3966380ad8fecb17b6ba02469a020a"
                              "84e18e8f84252070c13e9f1f289be54fbc481457778f616015e1327a02b140f1"
                              "505eb309326d68378f8374595c849d84f4c333ec4423885143cb47bd71c5edae"
                              "9be69a2ffeceb1bec9de244fbe15992b11b77c040f12bd8f6a975a44a0f90c29"
                              "a9abc3d4d893927284c58754cce294529f8614dcd2aba991925fedc4ae74ffac"
                              "6e333b93eb4aff0479da9a410e4450e0dd7ae4c6e2910900575da401fc07059f"
                              "645e8b7e9bfdef33943054ff84011493c27b3429eaedb4ed5376441a77ed4385"
                              "1ad77f16f541dfd269d50d6a5f14fb0aab1cbb4c1550be97f7ab4066193c4caa"
                              "773dad38014bd2092fa755c824bb5e54c4f36ffda9fcea70b9c6e693e148c151";

static const char NIST_KEY[] = "1ea661c58d943a0e4801e42f4b0947149e7f9f8e3e68d0c7505210bd311a0e7c"
                               "d6e13ffdf2418d8d1911c004cda58da3d619b7e2b9141e58318eea392cf41b08";
static const char NIST_TWEAK[] = "adf8d92627464ad2f0428e84a9f87564";
static const char NIST_PT[] = "2eedea52cd8215e1acc647e810bbc3642e87287f8d2e57e36c0a24fbc12a202e";
static const char NIST_CT[] = "cbaad0e2f6cea3f50b37f934d46a9b130b9d54f07e34f36af793e86f73c6d7db";

int main(void)
{
    uint8_t key[64], pt[1024], ct[1024], out[1024], want[1024];
    CHECK(unhex(IEEE_KEY, key, sizeof key) == 64);
    for (size_t i = 0; i < 512; i++)
        pt[i] = (uint8_t)i;
    CHECK(unhex(IEEE_CT, want, sizeof want) == 512);
    /* As sector 0xff of 512 bytes (plain64 tweak: ff 00 .. 00). */
    CHECK(mfp_aes256xts_sectors(key, 0xff, 512, pt, ct, 512, 1) == 0);
    CHECK(memcmp(ct, want, 512) == 0);
    CHECK(mfp_aes256xts_sectors(key, 0xff, 512, ct, out, 512, 0) == 0);
    CHECK(memcmp(out, pt, 512) == 0);
    uint8_t tweak[16] = {0xff};
    CHECK(mfp_aes256xts_unit(key, tweak, pt, out, 512, 1) == 0);
    CHECK(memcmp(out, want, 512) == 0);

    /* Two sectors at once equal each sector on its own (tweaks 0x100, 0x101). */
    memcpy(pt + 512, pt, 512);
    CHECK(mfp_aes256xts_sectors(key, 0x100, 512, pt, ct, 1024, 1) == 0);
    CHECK(mfp_aes256xts_sectors(key, 0x101, 512, pt + 512, out, 512, 1) == 0);
    CHECK(memcmp(ct + 512, out, 512) == 0 && memcmp(ct, ct + 512, 512) != 0);

    uint8_t nkey[64], ntweak[16], npt[32], nct[32], nout[32];
    CHECK(unhex(NIST_KEY, nkey, sizeof nkey) == 64);
    CHECK(unhex(NIST_TWEAK, ntweak, sizeof ntweak) == 16);
    CHECK(unhex(NIST_PT, npt, sizeof npt) == 32);
    CHECK(unhex(NIST_CT, nct, sizeof nct) == 32);
    CHECK(mfp_aes256xts_unit(nkey, ntweak, npt, nout, 32, 1) == 0);
    CHECK(memcmp(nout, nct, 32) == 0);
    CHECK(mfp_aes256xts_unit(nkey, ntweak, nct, nout, 32, 0) == 0);
    CHECK(memcmp(nout, npt, 32) == 0);

    /* Ciphertext stealing: a 33-byte unit round-trips. */
    CHECK(mfp_aes256xts_unit(key, tweak, pt, out, 33, 1) == 0);
    CHECK(mfp_aes256xts_unit(key, tweak, out, ct, 33, 0) == 0);
    CHECK(memcmp(ct, pt, 33) == 0);

    uint8_t same[64];
    memcpy(same, key, 32);
    memcpy(same + 32, key, 32);
    CHECK(mfp_aes256xts_sectors(same, 0, 512, pt, out, 512, 1) == -EINVAL);
    CHECK(mfp_aes256xts_unit(same, tweak, pt, out, 16, 1) == -EINVAL);
    CHECK(mfp_aes256xts_sectors(key, 0, 512, pt, out, 500, 1) == -EINVAL);
    CHECK(mfp_aes256xts_sectors(key, 0, 500, pt, out, 500, 1) == -EINVAL);
    CHECK(mfp_aes256xts_unit(key, tweak, pt, out, 15, 1) == -EINVAL);
    CHECK(mfp_aes256xts_sectors(key, UINT64_MAX, 512, pt, out, 1024, 1) == -EOVERFLOW);
    CHECK(mfp_aes256xts_sectors(key, 0, 512, NULL, NULL, 0, 1) == 0);
    return tap_finish("test_xts");
}
