/*
 * 11-udp: the uppercase echo over UDP.
 *
 *     server [-p PORT] [-a ADDR] [-v] [--batch]
 *
 * One socket serves every client: there is no accept() and no
 * connection, each datagram carries its sender's address, and the answer
 * goes back to that address (udp.c).  The server keeps nothing about
 * anyone: a client that vanishes costs nothing, 1,000 clients cost what
 * one does.  What UDP does not do (deliver for sure, once, in order) is
 * the client's job: see client.c.
 *
 * The loop waits in ppoll() with SIGTERM and SIGINT blocked everywhere
 * else, so a stop signal is seen inside the wait and never lost between
 * a check of the flag and the next wait.
 *
 * --batch answers with udp_echo_batch() instead of udp_echo_ready(): the
 * same echo, with recvmmsg() and sendmmsg() taking many datagrams per
 * system call (udp.c says why; `make compare` shows what it buys).
 */
#define _POSIX_C_SOURCE 200809L
#define _GNU_SOURCE /* ppoll */

#include "wrap.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "udp.h"

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
    (void)sig;
    stop = 1;
}

static void usage(FILE *to, const char *prog)
{
    fprintf(to, "usage: %s [-p PORT] [-a ADDR] [-v] [--batch]\n", prog);
}

/* Take --batch out of argv (and answer -h with this server's usage line);
 * what is left is the shared command line, for parse_args().  Returns the
 * new argc; *batch is 1 when --batch was given. */
static int take_batch_arg(int argc, char **argv, int *batch)
{
    const char *prog = argv[0] ? argv[0] : "server";
    int out = 1;
    *batch = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout, prog);
            exit(0);
        }
        if (strcmp(argv[i], "--batch") == 0)
            *batch = 1;
        else
            argv[out++] = argv[i];
    }
    argv[out] = NULL;
    return out;
}

int main(int argc, char **argv)
{
    struct server_opts opts;
    int batch;
    argc = take_batch_arg(argc, argv, &batch);
    parse_args(argc, argv, &opts);

    sigset_t waitmask;
    Block_stop_signals(&waitmask);
    On_stop_signals(on_stop);

    int fd = udp_bind(opts.addr, opts.port);
    if (fd == -1)
        unix_error("udp_bind", opts.addr);
    Announce_listening(fd);

    char *buf = batch ? NULL : Malloc(UDP_BUF_SIZE);
    struct udp_batch *b = batch ? udp_batch_new() : NULL;
    if (batch && !b)
        unix_error("udp_batch_new", NULL);
    while (!stop) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (ppoll(&p, 1, NULL, &waitmask) == -1) {
            if (errno == EINTR)
                continue; /* the flag decides */
            unix_error("ppoll", NULL);
        }
        if (b ? udp_echo_batch(fd, b, opts.verbose) == -1
              : udp_echo_ready(fd, buf, UDP_BUF_SIZE, opts.verbose) == -1)
            unix_error(b ? "udp_echo_batch" : "udp_echo_ready", NULL);
    }

    free(buf);
    udp_batch_free(b);
    close(fd);
    return 0;
}
