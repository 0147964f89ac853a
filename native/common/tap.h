/* Minimal test reporting: each CHECK prints a line; main returns non-zero on any failure. */
#ifndef MFP_TAP_H
#define MFP_TAP_H
#include <stdio.h>

static int tap_passed;
static int tap_failed;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            tap_passed++;                                                            \
        } else {                                                                     \
            tap_failed++;                                                            \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

static inline int tap_finish(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, tap_passed, tap_failed);
    return tap_failed == 0 ? 0 : 1;
}
#endif
