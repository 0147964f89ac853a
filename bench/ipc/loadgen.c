/* Load generator for NUL-framed request/reply over AF_UNIX stream sockets: the same client
 * for mfpsecd, the PyPI varlink server and the C echo server, so only the servers differ.
 *
 *   loadgen -u SOCKET [-m varlink|echo] [-t THREADS] [-s SECONDS | -n CALLS] [-w WARMUP]
 *
 * varlink: sends {"method":"io.mfpsecd.System.GetStatus"}\0, reads up to the reply's NUL,
 *          fails on an error reply. echo: sends "ping\0", expects the same bytes back.
 * Prints one JSON line (see driver.c). */
#define _GNU_SOURCE
#include "driver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define REPLY_MAX (1u << 20)

static const char VARLINK_REQ[] = "{\"method\":\"io.mfpsecd.System.GetStatus\"}";
static const char ECHO_REQ[] = "ping";

struct config {
    const char *path;
    int echo;
    const char *req;
    size_t req_len;  /* including the NUL terminator */
};

struct conn {
    int fd;
    int index;
    const struct config *cfg;
    char *buf;
};

static void *conn_open(int index, void *arg)
{
    const struct config *cfg = arg;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(cfg->path) >= sizeof sa.sun_path) {
        fprintf(stderr, "socket path too long: %s\n", cfg->path);
        return NULL;
    }
    strcpy(sa.sun_path, cfg->path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("socket");
        return NULL;
    }
    /* A stuck server fails the run instead of hanging it. */
    struct timeval tv = {.tv_sec = 10};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
        perror("setsockopt");
        close(fd);
        return NULL;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "thread %d: connect %s: %s\n", index, cfg->path, strerror(errno));
        close(fd);
        return NULL;
    }
    struct conn *c = malloc(sizeof *c);
    char *buf = malloc(REPLY_MAX);
    if (c == NULL || buf == NULL) {
        fprintf(stderr, "out of memory\n");
        free(c);
        free(buf);
        close(fd);
        return NULL;
    }
    *c = (struct conn){.fd = fd, .index = index, .cfg = cfg, .buf = buf};
    return c;
}

static long conn_call(void *p, int want_size)
{
    (void)want_size;  /* the size is known anyway */
    struct conn *c = p;
    const struct config *cfg = c->cfg;
    size_t off = 0;
    while (off < cfg->req_len) {
        ssize_t n = write(c->fd, cfg->req + off, cfg->req_len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "thread %d: write: %s\n", c->index, strerror(errno));
            return -1;
        }
        off += (size_t)n;
    }
    size_t got = 0;
    for (;;) {
        if (got == REPLY_MAX) {
            fprintf(stderr, "thread %d: reply larger than %u bytes\n", c->index, REPLY_MAX);
            return -1;
        }
        ssize_t n = read(c->fd, c->buf + got, REPLY_MAX - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "thread %d: read: %s\n", c->index, strerror(errno));
            return -1;
        }
        if (n == 0) {
            fprintf(stderr, "thread %d: the server closed the connection\n", c->index);
            return -1;
        }
        char *nul = memchr(c->buf + got, '\0', (size_t)n);
        got += (size_t)n;
        if (nul == NULL)
            continue;
        size_t len = (size_t)(nul - c->buf) + 1;
        if (len != got) {
            /* One call in flight: nothing may follow the reply. */
            fprintf(stderr, "thread %d: %zu unexpected bytes after the reply\n", c->index,
                    got - len);
            return -1;
        }
        if (cfg->echo) {
            if (len != cfg->req_len || memcmp(c->buf, cfg->req, len) != 0) {
                fprintf(stderr, "thread %d: echo mismatch\n", c->index);
                return -1;
            }
        } else if (strncmp(c->buf, "{\"parameters\"", 13) != 0 ||
                   memmem(c->buf, len, "\"error\"", 7) != NULL) {
            fprintf(stderr, "thread %d: not a successful reply: %.200s\n", c->index, c->buf);
            return -1;
        }
        return (long)len;
    }
}

static void conn_close(void *p)
{
    struct conn *c = p;
    if (close(c->fd) != 0)
        perror("close");
    free(c->buf);
    free(c);
}

static void usage(void)
{
    fprintf(stderr, "usage: loadgen -u SOCKET [-m varlink|echo] [-t THREADS] "
                    "[-s SECONDS | -n CALLS] [-w WARMUP_SECONDS]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct driver_opts o = {.threads = 1, .seconds = 2.0, .warmup = 0.2};
    struct config cfg = {.req = VARLINK_REQ, .req_len = sizeof VARLINK_REQ};
    int opt;
    while ((opt = getopt(argc, argv, "u:m:t:s:w:n:")) != -1) {
        if (driver_option(opt, optarg, &o))
            continue;
        switch (opt) {
        case 'u':
            cfg.path = optarg;
            break;
        case 'm':
            if (strcmp(optarg, "echo") == 0) {
                cfg.echo = 1;
                cfg.req = ECHO_REQ;
                cfg.req_len = sizeof ECHO_REQ;
            } else if (strcmp(optarg, "varlink") != 0) {
                usage();
            }
            break;
        default:
            usage();
        }
    }
    if (cfg.path == NULL || optind != argc)
        usage();
    struct driver_ops ops = {conn_open, conn_call, conn_close, &cfg};
    return driver_run(&ops, &o);
}
