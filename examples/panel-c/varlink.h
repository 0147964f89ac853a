/* The Varlink wire as mfpsecd speaks it: one JSON object per message, each ended by a NUL
 * byte, on an AF_UNIX stream socket; and the descriptor side channel (mfpsecd.fd.sock),
 * where a descriptor passed with SCM_RIGHTS is exchanged for a one-time token. */
#ifndef PANEL_VARLINK_H
#define PANEL_VARLINK_H

#include <json-c/json.h>
#include <stddef.h>

struct varlink {
    int fd;
    char *buf; /* received bytes not yet returned */
    size_t len, cap;
};

/* Connect to the daemon's socket: 0, or -1 with errno set. */
int varlink_connect(struct varlink *v, const char *path);
void varlink_close(struct varlink *v);

/* Send one message (the text of a JSON object, without the NUL): 0, or -1. */
int varlink_send(struct varlink *v, const char *json, size_t len);

/* Send a call: {"method": method, "parameters": parameters (may be NULL), "more"?}. */
int varlink_call(struct varlink *v, const char *method, json_object *parameters, int more);

/* The next reply, parsed (the caller puts it), or NULL on a closed connection or bad
 * JSON. A reply with an "error" member is returned as is: see varlink_error. */
json_object *varlink_reply(struct varlink *v);

/* The reply's error name, or NULL when it is not an error. */
const char *varlink_error(json_object *reply);

/* Pass fd on the side channel next to the socket at path; write the token (33 bytes with
 * the NUL) into token: 0, or -1 (the daemon's reason, if it gave one, on stderr). */
int varlink_pass_fd(const char *path, int fd, char token[33]);

#endif
