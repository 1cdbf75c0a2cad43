/*
 * discover: find every netlabs server that announces itself.
 *
 *     discover [-t SECONDS] [-g GROUP:PORT]
 *
 * Joins the group (default 239.255.95.27:9527) for SECONDS (default 3),
 * prints each server's ADDR:PORT once, as it is first heard, one per
 * line, and exits 0 if it found any, 1 if none (2: bad arguments).
 *
 * The socket is bound to the wildcard address on the group's port, so it
 * also hears broadcasts to that port (--broadcast); IP_MULTICAST_ALL off
 * keeps out the datagrams of groups that other sockets on this host have
 * joined (Linux's default delivers those to every socket bound to the
 * port).  Announcements are trusted only as far as their format: anyone
 * on the link can send one.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* struct ip_mreqn: Linux and BSD, not POSIX */

#include "wrap.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mcast.h"

#ifndef IP_MULTICAST_ALL
#define IP_MULTICAST_ALL 49 /* Linux 2.6.31; older C libraries lack the name */
#endif

/* Servers remembered at most: a flood of forged announcements must not
 * grow memory without bound. */
#define MAX_SERVERS 4096

static void usage_exit(const char *prog, const char *why, const char *what)
{
    fprintf(stderr, "%s: %s: '%s'\n", prog, why, what);
    fprintf(stderr, "usage: %s [-t SECONDS] [-g GROUP:PORT]\n", prog);
    exit(2);
}

static void parse(int argc, char **argv, long long *ms, struct sockaddr_in *group)
{
    const char *prog = argv[0] ? argv[0] : "discover";
    *ms = 3000;
    if (endpoint_parse(DEFAULT_GROUP ":" "9527", group) == -1)
        app_error("discover: bad default group");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            printf("usage: %s [-t SECONDS] [-g GROUP:PORT]\n", prog);
            exit(0);
        }
        if ((strcmp(a, "-t") != 0 && strcmp(a, "-g") != 0) || i + 1 >= argc)
            usage_exit(prog, "bad argument", a);
        const char *v = argv[++i];
        if (a[1] == 't') {
            char *end;
            errno = 0;
            double s = strtod(v, &end);
            if (!isdigit((unsigned char)v[0]) || errno || *end || !(s > 0) || s > 3600)
                usage_exit(prog, "SECONDS must be a number above 0, at most 3600", v);
            *ms = (long long)(s * 1000 + 0.5);
        } else if (endpoint_parse(v, group) == -1 || !IN_MULTICAST(ntohl(group->sin_addr.s_addr))) {
            usage_exit(prog, "expected a multicast GROUP:PORT (224.0.0.0 to 239.255.255.255)", v);
        }
    }
}

/* The socket, bound and joined; *m: the membership, for leaving.  Exits
 * with a message on failure. */
static int join(const struct sockaddr_in *group, struct ip_mreqn *m)
{
    /*
     * TODO 4: a socket that hears the group.
     *
     * Contract:
     *  - a UDP socket bound to the WILDCARD address (INADDR_ANY) on the
     *    group's port: it hears the group, and broadcasts to that port;
     *  - SO_REUSEADDR before bind(): several receivers on one host (two
     *    discovers, a discover and a listener of the tests) each get a
     *    copy of every datagram;
     *  - IP_MULTICAST_ALL off: Linux otherwise delivers to a socket bound
     *    to the port the datagrams of every group ANY socket of this host
     *    has joined;
     *  - joined to the group (IP_ADD_MEMBERSHIP with *m: the group, on
     *    the interface the routing table picks: address INADDR_ANY and
     *    index 0); ENODEV means there is no route to 224.0.0.0/4: say so;
     *  - any failure: a message that says what to do, and exit 1.
     */
    (void)group;
    (void)m;
    app_error("TODO 4: join() in discover.c is not written yet");
}

/* Listen on fd for ms milliseconds; print each server's ADDR:PORT the
 * first time it is heard, at once, one per line.  Returns how many were
 * found. */
static size_t listen_for(int fd, long long ms)
{
    /*
     * TODO 5: collect the announcements until the deadline.
     *
     * Contract:
     *  - listens the whole ms milliseconds (monotonic_ms(): a deadline
     *    that never moves), whatever arrives, and not a moment longer;
     *  - a datagram is an announcement only if announcement_parse()
     *    (mcast.c) accepts it: anything else (anyone can send to a
     *    group) is ignored; so is one too long for ANNOUNCE_MAX (see it
     *    with MSG_TRUNC);
     *  - an announcement of 0.0.0.0:PORT (a server bound to every
     *    address) stands for the address it came from;
     *  - each server (address and port) printed once, the first time it
     *    is heard, as "ADDR:PORT" and a newline, flushed at once; at most
     *    MAX_SERVERS remembered (a flood of forged ones must not grow
     *    memory without bound), and everything freed before returning.
     */
    (void)fd;
    (void)ms;
    app_error("TODO 5: listen_for() in discover.c is not written yet");
}

int main(int argc, char **argv)
{
    long long ms;
    struct sockaddr_in group;
    parse(argc, argv, &ms, &group);

    struct ip_mreqn m;
    int fd = join(&group, &m);
    size_t found = listen_for(fd, ms);

    /* close() would leave the group too; leaving first says so. */
    if (setsockopt(fd, IPPROTO_IP, IP_DROP_MEMBERSHIP, &m, sizeof m) == -1)
        unix_warn("leave", NULL);
    close(fd);
    return found > 0 ? 0 : 1;
}
