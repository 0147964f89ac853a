/* Load generator for a D-Bus method call through a bus daemon, with libdbus: the D-Bus
 * counterpart of loadgen (same threads, timing and JSON, from driver.c).
 *
 *   dbusgen -a ADDRESS -d DEST -p PATH -i INTERFACE -M METHOD [-g REPLY_SIGNATURE]
 *           [-t THREADS] [-s SECONDS | -n CALLS] [-w WARMUP]
 *
 * Each thread opens its own private connection, registers on the bus (Hello), then calls
 * METHOD with dbus_connection_send_with_reply_and_block and checks the reply's signature. */
#define _GNU_SOURCE
#include "driver.h"

#include <dbus/dbus.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CALL_TIMEOUT_MS 10000

struct config {
    const char *address, *dest, *path, *iface, *method, *signature;
};

struct conn {
    DBusConnection *bus;
    int index;
    const struct config *cfg;
};

static void *conn_open(int index, void *arg)
{
    const struct config *cfg = arg;
    DBusError err;
    dbus_error_init(&err);
    DBusConnection *bus = dbus_connection_open_private(cfg->address, &err);
    if (bus == NULL) {
        fprintf(stderr, "thread %d: connect %s: %s\n", index, cfg->address, err.message);
        dbus_error_free(&err);
        return NULL;
    }
    if (!dbus_bus_register(bus, &err)) {
        fprintf(stderr, "thread %d: Hello: %s\n", index, err.message);
        dbus_error_free(&err);
        dbus_connection_close(bus);
        dbus_connection_unref(bus);
        return NULL;
    }
    struct conn *c = malloc(sizeof *c);
    if (c == NULL) {
        fprintf(stderr, "out of memory\n");
        dbus_connection_close(bus);
        dbus_connection_unref(bus);
        return NULL;
    }
    *c = (struct conn){.bus = bus, .index = index, .cfg = cfg};
    return c;
}

static long conn_call(void *p, int want_size)
{
    struct conn *c = p;
    const struct config *cfg = c->cfg;
    /* A new message per call, as a real client does: a sent message keeps its serial. */
    DBusMessage *msg = dbus_message_new_method_call(cfg->dest, cfg->path, cfg->iface,
                                                    cfg->method);
    if (msg == NULL) {
        fprintf(stderr, "thread %d: out of memory for a message\n", c->index);
        return -1;
    }
    DBusError err;
    dbus_error_init(&err);
    DBusMessage *reply = dbus_connection_send_with_reply_and_block(c->bus, msg, CALL_TIMEOUT_MS,
                                                                   &err);
    dbus_message_unref(msg);
    if (reply == NULL) {
        fprintf(stderr, "thread %d: %s: %s\n", c->index, err.name, err.message);
        dbus_error_free(&err);
        return -1;
    }
    long size = 0;
    const char *sig = dbus_message_get_signature(reply);
    if (cfg->signature != NULL && strcmp(sig, cfg->signature) != 0) {
        fprintf(stderr, "thread %d: reply signature %s, expected %s\n", c->index, sig,
                cfg->signature);
        size = -1;
    } else if (want_size) {
        char *wire;
        int len;
        if (!dbus_message_marshal(reply, &wire, &len)) {
            fprintf(stderr, "thread %d: out of memory marshalling the reply\n", c->index);
            size = -1;
        } else {
            size = len;
            dbus_free(wire);
        }
    }
    dbus_message_unref(reply);
    return size;
}

static void conn_close(void *p)
{
    struct conn *c = p;
    dbus_connection_close(c->bus);
    dbus_connection_unref(c->bus);
    free(c);
}

static void usage(void)
{
    fprintf(stderr, "usage: dbusgen -a ADDRESS -d DEST -p PATH -i INTERFACE -M METHOD "
                    "[-g SIGNATURE] [-t THREADS] [-s SECONDS | -n CALLS] [-w WARMUP]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    struct driver_opts o = {.threads = 1, .seconds = 2.0, .warmup = 0.2};
    struct config cfg = {0};
    int opt;
    while ((opt = getopt(argc, argv, "a:d:p:i:M:g:t:s:w:n:")) != -1) {
        if (driver_option(opt, optarg, &o))
            continue;
        switch (opt) {
        case 'a': cfg.address = optarg; break;
        case 'd': cfg.dest = optarg; break;
        case 'p': cfg.path = optarg; break;
        case 'i': cfg.iface = optarg; break;
        case 'M': cfg.method = optarg; break;
        case 'g': cfg.signature = optarg; break;
        default: usage();
        }
    }
    if (!cfg.address || !cfg.dest || !cfg.path || !cfg.iface || !cfg.method || optind != argc)
        usage();
    /* Connections are per thread, but libdbus keeps global state (e.g. the message cache). */
    if (!dbus_threads_init_default()) {
        fprintf(stderr, "dbus_threads_init_default: out of memory\n");
        return 2;
    }
    struct driver_ops ops = {conn_open, conn_call, conn_close, &cfg};
    return driver_run(&ops, &o);
}
