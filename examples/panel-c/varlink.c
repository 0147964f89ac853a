#include "varlink.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int connect_unix(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int varlink_connect(struct varlink *v, const char *path)
{
    memset(v, 0, sizeof *v);
    v->fd = connect_unix(path);
    return v->fd < 0 ? -1 : 0;
}

void varlink_close(struct varlink *v)
{
    if (v->fd >= 0)
        close(v->fd);
    if (v->buf != NULL)
        explicit_bzero(v->buf, v->cap); /* replies may have carried a session token */
    free(v->buf);
    memset(v, 0, sizeof *v);
    v->fd = -1;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int varlink_send(struct varlink *v, const char *json, size_t len)
{
    if (send_all(v->fd, json, len) != 0)
        return -1;
    return send_all(v->fd, "", 1); /* the NUL that ends a message */
}

int varlink_call(struct varlink *v, const char *method, json_object *parameters, int more)
{
    json_object *msg = json_object_new_object();
    if (msg == NULL)
        return -1;
    json_object_object_add(msg, "method", json_object_new_string(method));
    if (parameters != NULL)
        json_object_object_add(msg, "parameters", json_object_get(parameters));
    if (more)
        json_object_object_add(msg, "more", json_object_new_boolean(1));
    size_t len = 0;
    const char *text = json_object_to_json_string_length(msg, JSON_C_TO_STRING_PLAIN, &len);
    int rc = text == NULL ? -1 : varlink_send(v, text, len);
    json_object_put(msg);
    return rc;
}

json_object *varlink_reply(struct varlink *v)
{
    for (;;) {
        char *nul = v->len ? memchr(v->buf, '\0', v->len) : NULL;
        if (nul != NULL) {
            size_t n = (size_t)(nul - v->buf);
            json_object *reply = json_tokener_parse(v->buf);
            memmove(v->buf, nul + 1, v->len - n - 1);
            v->len -= n + 1;
            explicit_bzero(v->buf + v->len, n + 1);
            return reply;
        }
        if (v->len == v->cap) {
            size_t cap = v->cap ? v->cap * 2 : 65536;
            if (cap > (16u << 20)) /* the daemon's replies are far smaller */
                return NULL;
            char *grown = malloc(cap);
            if (grown == NULL)
                return NULL;
            if (v->buf != NULL) {
                memcpy(grown, v->buf, v->len);
                explicit_bzero(v->buf, v->cap);
                free(v->buf);
            }
            v->buf = grown;
            v->cap = cap;
        }
        ssize_t r = recv(v->fd, v->buf + v->len, v->cap - v->len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return NULL;
        v->len += (size_t)r;
    }
}

const char *varlink_error(json_object *reply)
{
    json_object *error = NULL;
    if (!json_object_object_get_ex(reply, "error", &error))
        return NULL;
    return json_object_get_string(error);
}

int varlink_pass_fd(const char *path, int fd, char token[33])
{
    /* mfpsecd.sock -> mfpsecd.fd.sock */
    char side[sizeof((struct sockaddr_un *)0)->sun_path];
    const char *dot = strrchr(path, '.');
    int n = dot != NULL && strcmp(dot, ".sock") == 0
                ? snprintf(side, sizeof side, "%.*s.fd.sock", (int)(dot - path), path)
                : snprintf(side, sizeof side, "%s.fd.sock", path);
    if (n < 0 || (size_t)n >= sizeof side) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int s = connect_unix(side);
    if (s < 0)
        return -1;
    char byte = 'F';
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = control.buf,
                         .msg_controllen = sizeof control.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    if (sendmsg(s, &msg, MSG_NOSIGNAL) != 1) {
        close(s);
        return -1;
    }
    char line[128];
    size_t got = 0;
    while (got < sizeof line - 1) {
        ssize_t r = recv(s, line + got, sizeof line - 1 - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
        if (memchr(line, '\n', got) != NULL)
            break;
    }
    close(s);
    line[got] = '\0';
    line[strcspn(line, "\n")] = '\0';
    if (line[0] == '!' || strlen(line) != 32) {
        fprintf(stderr, "descriptor refused: %s\n", line[0] == '!' ? line + 1 : "no token");
        errno = EPROTO;
        return -1;
    }
    memcpy(token, line, 33);
    return 0;
}
