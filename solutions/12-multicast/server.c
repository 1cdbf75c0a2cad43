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

static volatile sig_atomic_t stop;

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
    long long next = monotonic_ms(); /* the first announcement: now */
    while (!stop) {
        struct timespec ts, *timeout = NULL;
        if (ann) {
            long long now = monotonic_ms();
            if (now >= next) {
                announcer_send(ann);
                /* Every second from the start, not a second after each
                 * send: a busy second does not shift the ones after it.
                 * After a stall (the machine suspended), start afresh
                 * instead of sending the missed ones in a burst. */
                next += ANNOUNCE_PERIOD_MS;
                if (next <= now)
                    next = now + ANNOUNCE_PERIOD_MS;
            }
            long long left = next - now;
            ts.tv_sec = (time_t)(left / 1000);
            ts.tv_nsec = (long)(left % 1000) * 1000000L;
            timeout = &ts;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = ppoll(&p, 1, timeout, waitmask);
        if (r == -1) {
            if (errno == EINTR)
                continue; /* the flag decides */
            unix_error("ppoll", NULL);
        }
        /* Lab 11's echo: a bounded number of datagrams, so the timer
         * is looked at again soon even under a flood. */
        if (r > 0 && udp_echo_ready(fd, buf, UDP_BUF_SIZE, verbose) == -1)
            unix_error("udp_echo_ready", NULL);
    }
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
