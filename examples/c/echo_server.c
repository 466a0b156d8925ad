/*
 * echo_server.c — kingpin's C API in a small echo server: every byte read is sent back.
 *
 *   kingpin_echo_c --addr 127.0.0.1:9000 --threads 4      (Ctrl+C to stop)
 *
 * Each IO thread counts its connections in a state of its own, made by `create` and handed
 * back by `destroy` into the program's tally, which main reads once the server has stopped.
 */

#define _POSIX_C_SOURCE 200809L /* sysconf */

#include <errno.h>
#include <kingpin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Connections one IO thread served. */
typedef struct {
    uint64_t accepted;
    uint64_t closed;
} counts;

/* One IO thread's loop_user: its counts, and the tally slot `destroy` leaves them in. */
typedef struct {
    counts counts;
    counts *slot;
} loop_state;

static void usage(FILE *to) {
    fprintf(to, "usage: kingpin_echo_c [--addr IP:PORT] [--threads N] [--help]\n"
                "  --addr IP:PORT  address to listen on (default 127.0.0.1:9000)\n"
                "  --threads N     IO threads (default: one per CPU)\n");
}

/* A bad command line: one line saying why, the usage, exit status 2. */
static void bad_usage(const char *why, const char *arg) {
    fprintf(stderr, "kingpin_echo_c: %s%s\n", why, arg);
    usage(stderr);
    exit(2);
}

/* `user` is the tally: one slot per IO thread. */
static void *create(void *user, size_t loop_index) {
    loop_state *state = calloc(1, sizeof *state);
    if (state != NULL) {
        state->slot = (counts *)user + loop_index;
    }
    return state;
}

static void destroy(void *loop_user) {
    loop_state *state = loop_user;
    if (state != NULL) {
        *state->slot = state->counts;
        free(state);
    }
}

static int on_connect(void *loop_user, kp_conn *conn) {
    loop_state *state = loop_user;
    (void)conn;
    if (state == NULL) {
        return KP_ERR_INTERNAL; /* `create` ran out of memory: refuse the connection */
    }
    state->counts.accepted++;
    return 0;
}

/* Sends the input back: kp_conn_send copies it, so it can be consumed right after. */
static int on_message(void *loop_user, kp_conn *conn) {
    size_t len = 0;
    const uint8_t *data = kp_conn_input(conn, &len);
    int status;
    (void)loop_user;
    if (len == 0) {
        return 0;
    }
    status = kp_conn_send(conn, data, len);
    return status != KP_OK ? status : kp_conn_consume(conn, len);
}

static void on_closed(void *loop_user, kp_conn *conn, int reason, int detail) {
    loop_state *state = loop_user;
    (void)conn;
    (void)reason;
    (void)detail;
    if (state != NULL) {
        state->counts.closed++;
    }
}

/* The value after the option at argv[*i], moving past it. */
static const char *value_of(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        bad_usage("a value is missing after ", argv[*i]);
    }
    return argv[++*i];
}

static size_t parse_threads(const char *text) {
    char *end;
    unsigned long n;
    errno = 0;
    n = strtoul(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || n == 0) {
        bad_usage("--threads needs a whole number of at least 1, not ", text);
    }
    return (size_t)n;
}

/* Serves until SIGINT or SIGTERM; returns the exit status. */
static int serve(const char *addr, size_t threads) {
    counts *tally = calloc(threads, sizeof *tally);
    kp_handler handler = {.user = tally, .create = create, .destroy = destroy,
                          .on_connect = on_connect, .on_message = on_message, .on_closed = on_closed};
    kp_config *config = kp_config_new();
    kp_server *server = NULL;
    counts total = {0, 0};
    char local[KP_ADDR_STRLEN];
    int failed = 0;
    size_t i;

    if (kp_config_set_addr(config, addr) != KP_OK || kp_config_set_threads(config, threads) != KP_OK) {
        fprintf(stderr, "kingpin_echo_c: %s\n", kp_last_error_message());
        usage(stderr);
        failed = 2;
    } else if (tally == NULL || kp_server_start(config, &handler, &server) != KP_OK) {
        fprintf(stderr, "kingpin_echo_c: cannot listen on %s: %s\n", addr,
                tally == NULL ? "out of memory" : kp_last_error_message());
        failed = 1;
    }
    kp_config_free(config); /* a started server has its own copy */
    if (failed) {
        free(tally);
        return failed;
    }
    kp_server_shutdown_on_signal(server);
    kp_server_local_addr(server, local, sizeof local);
    printf("echo_server (C) listening on %s with %zu threads\n", local, threads);
    fflush(stdout);

    if (kp_server_wait(server) != KP_OK) {
        fprintf(stderr, "kingpin_echo_c: %s\n", kp_last_error_message());
    }
    kp_server_free(server); /* every `destroy` has run: the tally is complete */
    for (i = 0; i < threads; i++) {
        total.accepted += tally[i].accepted;
        total.closed += tally[i].closed;
    }
    free(tally);
    printf("stopped: accepted %llu, closed %llu\n", (unsigned long long)total.accepted,
           (unsigned long long)total.closed);
    return 0;
}

int main(int argc, char **argv) {
    const char *addr = "127.0.0.1:9000";
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t threads = cpus > 0 ? (size_t)cpus : 1;
    int i, status;

    /* First, before any thread starts: every later thread inherits the blocked signals. */
    if (kp_signals_install() != KP_OK) {
        fprintf(stderr, "kingpin_echo_c: %s\n", kp_last_error_message());
        return 1;
    }
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--addr") == 0) {
            addr = value_of(argc, argv, &i);
        } else if (strcmp(argv[i], "--threads") == 0) {
            threads = parse_threads(value_of(argc, argv, &i));
        } else {
            bad_usage("unknown argument ", argv[i]);
        }
    }
    if (kp_log_init(KP_LOG_INFO, NULL, NULL, NULL) != KP_OK) {
        fprintf(stderr, "kingpin_echo_c: %s\n", kp_last_error_message());
        return 1;
    }
    status = serve(addr, threads);
    kp_log_shutdown();
    return status;
}
