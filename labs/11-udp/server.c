/*
 * 11-udp: the uppercase echo over UDP.
 *
 *     server [-p PORT] [-a ADDR] [-v]
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
 */
#define _POSIX_C_SOURCE 200809L
#define _GNU_SOURCE /* ppoll */

#include "wrap.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "udp.h"

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    struct server_opts opts;
    parse_args(argc, argv, &opts);

    sigset_t waitmask;
    Block_stop_signals(&waitmask);
    On_stop_signals(on_stop);

    int fd = udp_bind(opts.addr, opts.port);
    if (fd == -1)
        unix_error("udp_bind", opts.addr);
    Announce_listening(fd);

    char *buf = Malloc(UDP_BUF_SIZE);
    while (!stop) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (ppoll(&p, 1, NULL, &waitmask) == -1) {
            if (errno == EINTR)
                continue; /* the flag decides */
            unix_error("ppoll", NULL);
        }
        if (udp_echo_ready(fd, buf, UDP_BUF_SIZE, opts.verbose) == -1)
            unix_error("udp_echo_ready", NULL);
    }

    free(buf);
    close(fd);
    return 0;
}
