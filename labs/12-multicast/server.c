/*
 * 12-multicast: lab 11's UDP echo, which announces itself when asked.
 *
 *     server [-p PORT] [-a ADDR] [-v] [--announce GROUP:PORT] [--broadcast ADDR:PORT]
 *
 * The echo is lab 11's, linked from lab 11's directory (udp.c): the same
 * socket, the same udp_echo_ready().  What this lab adds is a timer in
 * the loop: with --announce and/or --broadcast, the server sends
 * "netlabs ADDR:PORT" (the address its echo is bound to) at start and
 * then every second (announce.c), and answers datagrams in between.
 * Without either option it announces nothing: a server says where it is
 * only when its operator wants it found.
 */
#define _POSIX_C_SOURCE 200809L
#define _GNU_SOURCE /* ppoll */

#include "wrap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "announce.h"
#include "mcast.h"
#include "udp.h"

static volatile sig_atomic_t stop; /* set by SIGTERM and SIGINT */

static void on_stop(int sig)
{
    (void)sig;
    stop = 1;
}

static void usage_exit(const char *prog, const char *why, const char *what)
{
    fprintf(stderr, "%s: %s: '%s'\n", prog, why, what);
    fprintf(stderr, "usage: %s [-p PORT] [-a ADDR] [-v] [--announce GROUP:PORT] "
                    "[--broadcast ADDR:PORT]\n", prog);
    exit(2);
}

/* Take --announce and --broadcast (with their values) out of argv and
 * parse them; what is left is the shared command line, for parse_args().
 * *group / *bcast are NULL unless given. */
static int take_announce_args(int argc, char **argv, struct sockaddr_in *gbuf,
                              struct sockaddr_in *bbuf, struct sockaddr_in **group,
                              struct sockaddr_in **bcast)
{
    const char *prog = argv[0] ? argv[0] : "server";
    *group = *bcast = NULL;
    int out = 1;
    for (int i = 1; i < argc; i++) {
        int is_group = strcmp(argv[i], "--announce") == 0;
        if (!is_group && strcmp(argv[i], "--broadcast") != 0) {
            argv[out++] = argv[i];
            continue;
        }
        if (i + 1 >= argc)
            usage_exit(prog, "option needs ADDR:PORT", argv[i]);
        const char *v = argv[++i];
        struct sockaddr_in *sa = is_group ? gbuf : bbuf;
        if (endpoint_parse(v, sa) == -1)
            usage_exit(prog, "expected a numeric IPv4 ADDR:PORT", v);
        if (is_group && !IN_MULTICAST(ntohl(sa->sin_addr.s_addr)))
            usage_exit(prog, "not a multicast group (224.0.0.0 to 239.255.255.255)", v);
        *(is_group ? group : bcast) = sa;
    }
    argv[out] = NULL;
    return out;
}

/* Serve the echo on fd until SIGTERM or SIGINT (the flag stop), and with
 * ann (NULL: no announcing) announce at once, then every
 * ANNOUNCE_PERIOD_MS, in between datagrams.  buf: UDP_BUF_SIZE bytes. */
static void serve(int fd, struct announcer *ann, char *buf, const sigset_t *waitmask, int verbose)
{
    /*
     * TODO 3: the loop: lab 11's echo, and a timer.
     *
     * Contract:
     *  - until SIGTERM or SIGINT sets stop: answer datagrams with your
     *    lab 11 udp_echo_ready(fd, buf, UDP_BUF_SIZE, verbose) whenever
     *    fd is readable (a return of -1: report and exit);
     *  - with ann: announcer_send(ann) at once, then every
     *    ANNOUNCE_PERIOD_MS (1 s) counted from the start, not from the
     *    last datagram (echo traffic must not push the announcements
     *    back); after a stall longer than a period, one announcement,
     *    not a burst of the missed ones; without ann, never;
     *  - never blocks longer than the time left until the next
     *    announcement, and never spins while nothing happens;
     *  - a stop signal is seen within the wait, never missed between
     *    the check of stop and the wait (waitmask: ppoll()'s mask, as in
     *    lab 11's server.c).
     */
    (void)fd;
    (void)ann;
    (void)buf;
    (void)waitmask;
    (void)verbose;
    app_error("TODO 3: serve() in server.c is not written yet");
}

int main(int argc, char **argv)
{
    struct sockaddr_in gbuf, bbuf, *group, *bcast;
    argc = take_announce_args(argc, argv, &gbuf, &bbuf, &group, &bcast);
    struct server_opts opts;
    parse_args(argc, argv, &opts);

    sigset_t waitmask;
    Block_stop_signals(&waitmask);
    On_stop_signals(on_stop);

    int fd = udp_bind(opts.addr, opts.port);
    if (fd == -1)
        unix_error("udp_bind", opts.addr);
    Announce_listening(fd);

    struct announcer ann;
    int announcing = group || bcast;
    if (announcing) {
        struct sockaddr_in self;
        socklen_t sl = sizeof self;
        if (getsockname(fd, (struct sockaddr *)&self, &sl) == -1)
            unix_error("getsockname", NULL);
        if (announcer_open(&ann, &self, group, bcast, opts.verbose) == -1)
            unix_error("announcer_open", NULL);
    }

    char *buf = Malloc(UDP_BUF_SIZE);
    serve(fd, announcing ? &ann : NULL, buf, &waitmask, opts.verbose);

    if (announcing)
        announcer_close(&ann);
    free(buf);
    close(fd);
    return 0;
}
