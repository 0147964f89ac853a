/*
 * mfpsec-panel: what an operation panel written in C (or C++/Qt) does with mfpsecd, with
 * nothing but sockets and json-c.
 *
 *   mfpsec-panel SOCKET info                      org.varlink.service.GetInfo
 *   mfpsec-panel SOCKET posture                   the S-1 security screen
 *   mfpsec-panel SOCKET events AFTER COUNT        follow alerts (COUNT 0: for ever)
 *   mfpsec-panel SOCKET login USER                password on stdin
 *   mfpsec-panel SOCKET put USER FILE JOB NAME    log in (password on stdin), store FILE
 *
 * Exit status 0, or 1 with the daemon's error name (and parameters) on stderr.
 */
#include "base64.h"
#include "varlink.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_PASSWORD 256

/* Untrusted text (a user or object name from the audit log) as a terminal may show it. */
static void print_safe(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= 0x20 && *p < 0x7f && *p != '\\')
            putchar(*p);
        else
            printf("\\x%02x", *p);
    }
}

static const char *str(json_object *o, const char *key)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "";
}

static json_object *params_of(json_object *reply)
{
    json_object *p = NULL;
    json_object_object_get_ex(reply, "parameters", &p);
    return p;
}

/* The reply, or NULL after telling why on stderr (a closed connection, an error). */
static json_object *expect_reply(struct varlink *v)
{
    json_object *reply = varlink_reply(v);
    if (reply == NULL) {
        fprintf(stderr, "mfpsec-panel: the daemon closed the connection\n");
        return NULL;
    }
    const char *error = varlink_error(reply);
    if (error != NULL) {
        fprintf(stderr, "mfpsec-panel: error %s %s\n", error,
                json_object_to_json_string_ext(params_of(reply), JSON_C_TO_STRING_PLAIN));
        json_object_put(reply);
        return NULL;
    }
    return reply;
}

static int call(struct varlink *v, const char *method, json_object *params, json_object **out)
{
    if (varlink_call(v, method, params, 0) != 0) {
        perror("mfpsec-panel: send");
        return 1;
    }
    *out = expect_reply(v);
    return *out == NULL;
}

static int info(struct varlink *v)
{
    json_object *r = NULL;
    if (call(v, "org.varlink.service.GetInfo", NULL, &r) != 0)
        return 1;
    json_object *p = params_of(r);
    printf("%s %s %s\n", str(p, "vendor"), str(p, "product"), str(p, "version"));
    json_object *ifaces = NULL;
    if (json_object_object_get_ex(p, "interfaces", &ifaces))
        for (size_t i = 0; i < json_object_array_length(ifaces); i++)
            printf("  %s\n", json_object_get_string(json_object_array_get_idx(ifaces, i)));
    json_object_put(r);
    return 0;
}

static int posture(struct varlink *v)
{
    json_object *r = NULL;
    if (call(v, "io.mfpsecd.System.GetPosture", NULL, &r) != 0)
        return 1;
    json_object *items = NULL;
    json_object_object_get_ex(params_of(r), "items", &items);
    for (size_t i = 0; i < json_object_array_length(items); i++) {
        json_object *it = json_object_array_get_idx(items, i);
        printf("%-26s %-14s ", str(it, "title"), str(it, "state"));
        print_safe(str(it, "setting"));
        putchar('\n');
    }
    json_object_put(r);
    return 0;
}

static int events(struct varlink *v, long after, long count)
{
    json_object *params = json_object_new_object();
    json_object_object_add(params, "after", json_object_new_int64(after));
    json_object_object_add(params, "keepalive_s", json_object_new_int(30));
    int rc = varlink_call(v, "io.mfpsecd.System.WatchEvents", params, 1);
    json_object_put(params);
    if (rc != 0) {
        perror("mfpsec-panel: send");
        return 1;
    }
    long seen = 0;
    while (count == 0 || seen < count) {
        json_object *r = expect_reply(v);
        if (r == NULL)
            return 1;
        json_object *p = params_of(r);
        json_object *list = NULL;
        json_object_object_get_ex(p, "events", &list);
        for (size_t i = 0; i < json_object_array_length(list); i++, seen++) {
            json_object *e = json_object_array_get_idx(list, i);
            const char *alert = str(e, "alert");
            printf("#%s %s %s %s ", str(e, "seq"), str(e, "time"), *alert ? alert : str(e, "type"),
                   str(e, "outcome"));
            print_safe(str(e, "object"));
            putchar('\n');
        }
        /* What a panel keeps to resume after a reconnect: WatchEvents(after=last_seq). */
        printf("last_seq %s\n", str(p, "last_seq"));
        fflush(stdout);
        json_object_put(r);
    }
    return 0;
}

/* Read the password from stdin into buf (NUL-terminated, newline dropped): its length,
 * or -1. */
static long read_password(char *buf, size_t cap)
{
    if (fgets(buf, (int)cap, stdin) == NULL)
        return -1;
    size_t n = strcspn(buf, "\r\n");
    buf[n] = '\0';
    return (long)n;
}

/* Log in on this connection. The password travels as base64 of its bytes (the IDL says
 * so); the message holding it is built here, not by json-c, so that every copy is ours
 * to wipe. */
static int login(struct varlink *v, const char *user)
{
    char password[MAX_PASSWORD + 2];
    char encoded[((MAX_PASSWORD + 2) / 3) * 4 + 1];
    char msg[sizeof encoded + 512];
    long n = read_password(password, sizeof password);
    if (n <= 0 || n > MAX_PASSWORD) {
        fprintf(stderr, "mfpsec-panel: a password (1-%d characters) on stdin\n", MAX_PASSWORD);
        explicit_bzero(password, sizeof password);
        return 1;
    }
    base64_encode((const unsigned char *)password, (size_t)n, encoded);
    explicit_bzero(password, sizeof password);
    json_object *name = json_object_new_string(user); /* escaped as JSON needs */
    int len = snprintf(msg, sizeof msg,
                       "{\"method\":\"io.mfpsecd.Auth.Login\",\"parameters\":"
                       "{\"user\":%s,\"password\":\"%s\"}}",
                       json_object_to_json_string_ext(name, JSON_C_TO_STRING_PLAIN), encoded);
    json_object_put(name);
    explicit_bzero(encoded, sizeof encoded);
    int rc = len < 0 || (size_t)len >= sizeof msg ? -1 : varlink_send(v, msg, (size_t)len);
    explicit_bzero(msg, sizeof msg);
    if (rc != 0) {
        fprintf(stderr, "mfpsec-panel: the login could not be sent\n");
        return 1;
    }
    json_object *r = expect_reply(v);
    if (r == NULL)
        return 1;
    printf("logged in: %s (%s)\n", str(params_of(r), "user"), str(params_of(r), "role"));
    json_object_put(r); /* it held the session token: json-c frees it */
    return 0;
}

static int put(struct varlink *v, const char *socket_path, const char *user, const char *file,
               const char *job, const char *name)
{
    if (login(v, user) != 0)
        return 1;
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        perror(file);
        return 1;
    }
    char token[33];
    int rc = varlink_pass_fd(socket_path, fd, token);
    close(fd); /* the daemon holds its own copy now */
    if (rc != 0) {
        perror("mfpsec-panel: descriptor");
        return 1;
    }
    json_object *params = json_object_new_object();
    json_object_object_add(params, "descriptor", json_object_new_string(token));
    json_object_object_add(params, "job", json_object_new_string(job));
    json_object_object_add(params, "kind", json_object_new_string("spool"));
    json_object_object_add(params, "name", json_object_new_string(name));
    json_object *r = NULL;
    rc = call(v, "io.mfpsecd.Store.Put", params, &r);
    json_object_put(params);
    if (rc != 0)
        return 1;
    printf("stored %s (%s bytes)\n", str(params_of(r), "id"), str(params_of(r), "size"));
    json_object_put(r);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: mfpsec-panel SOCKET info|posture|events AFTER COUNT|login USER|"
                    "put USER FILE JOB NAME\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return usage();
    struct varlink v;
    if (varlink_connect(&v, argv[1]) != 0) {
        perror(argv[1]);
        return 1;
    }
    const char *cmd = argv[2];
    int rc;
    if (strcmp(cmd, "info") == 0 && argc == 3)
        rc = info(&v);
    else if (strcmp(cmd, "posture") == 0 && argc == 3)
        rc = posture(&v);
    else if (strcmp(cmd, "events") == 0 && argc == 5)
        rc = events(&v, strtol(argv[3], NULL, 10), strtol(argv[4], NULL, 10));
    else if (strcmp(cmd, "login") == 0 && argc == 4)
        rc = login(&v, argv[3]);
    else if (strcmp(cmd, "put") == 0 && argc == 7)
        rc = put(&v, argv[1], argv[3], argv[4], argv[5], argv[6]);
    else
        rc = usage();
    varlink_close(&v);
    return rc;
}
