/* Hex test vectors into bytes. */
#ifndef MFP_TEST_HEX_H
#define MFP_TEST_HEX_H
#include <stdint.h>
#include <string.h>

/* Decodes lower-case hex into out; returns the byte count, or 0 if it does not fit. */
static inline size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex) / 2;
    if (n > cap)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        for (int j = 0; j < 2; j++) {
            char c = hex[2 * i + (size_t)j];
            v = v * 16 + (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
        }
        out[i] = (uint8_t)v;
    }
    return n;
}
#endif
