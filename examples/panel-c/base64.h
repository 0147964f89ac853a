/* RFC 4648 base64 with padding: how mfpsecd's IDL carries passwords and other bytes. */
#ifndef PANEL_BASE64_H
#define PANEL_BASE64_H

#include <stddef.h>

/* The encoded length of n bytes, without the terminating NUL. */
size_t base64_len(size_t n);

/* Encode n bytes of in into out (base64_len(n) + 1 bytes, NUL-terminated). */
void base64_encode(const unsigned char *in, size_t n, char *out);

#endif
