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

/* The socket, bound and joined.  Exits with a message on failure. */
static int join(const struct sockaddr_in *group, struct ip_mreqn *m)
{
    char name[ADDR_STRLEN];
    sockaddr_str((const struct sockaddr *)group, name, sizeof name);
    int fd = Socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    /* Several listeners on one host (two discovers, a discover and some
     * other program of the group) each get their own copy of every
     * datagram: multicast receivers share the port. */
    int on = 1, off = 0;
    Setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    Setsockopt(fd, IPPROTO_IP, IP_MULTICAST_ALL, &off, sizeof off);

    struct sockaddr_in any;
    memset(&any, 0, sizeof any);
    any.sin_family = AF_INET;
    any.sin_addr.s_addr = htonl(INADDR_ANY);
    any.sin_port = group->sin_port;
    if (bind(fd, (struct sockaddr *)&any, sizeof any) == -1) {
        if (errno == EADDRINUSE)
            app_error("discover: bind 0.0.0.0:%d: %s: a program holds that UDP port without "
                      "sharing it (a server started with -p %d?): give the server another port",
                      ntohs(group->sin_port), strerror(errno), ntohs(group->sin_port));
        unix_error("bind", name);
    }

    /* Join on the interface the routing table picks for the group
     * (address and index 0).  No route to 224.0.0.0/4 at all: ENODEV. */
    memset(m, 0, sizeof *m);
    m->imr_multiaddr = group->sin_addr;
    m->imr_address.s_addr = htonl(INADDR_ANY);
    m->imr_ifindex = 0;
    if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, m, sizeof *m) == -1) {
        if (errno == ENODEV)
            app_error("discover: join %s: %s: no interface to join on (no route to "
                      "224.0.0.0/4: ip route add 224.0.0.0/4 dev IF)", name, strerror(errno));
        unix_error("join", name);
    }
    return fd;
}

/* Listen on fd for ms milliseconds; print each server's ADDR:PORT the
 * first time it is heard, at once, one per line.  Returns how many were
 * found. */
static size_t listen_for(int fd, long long ms)
{
    struct sockaddr_in *seen = NULL;
    size_t nseen = 0;
    long long deadline = monotonic_ms() + ms;
    for (;;) {
        long long left = deadline - monotonic_ms();
        if (left <= 0)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r == -1) {
            if (errno == EINTR)
                continue;
            unix_error("poll", NULL);
        }
        if (r == 0)
            break;
        char buf[ANNOUNCE_MAX];
        struct sockaddr_in from;
        socklen_t fromlen = sizeof from;
        ssize_t n = recvfrom(fd, buf, sizeof buf, MSG_TRUNC, (struct sockaddr *)&from, &fromlen);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            unix_error("recvfrom", NULL);
        }
        struct sockaddr_in srv;
        if ((size_t)n > sizeof buf || announcement_parse(buf, (size_t)n, &srv) == -1)
            continue; /* not an announcement: anyone may send to a group */
        /* A server bound to every address (0.0.0.0) cannot say which of
         * them reaches us: the one it sent from does. */
        if (srv.sin_addr.s_addr == htonl(INADDR_ANY))
            srv.sin_addr = from.sin_addr;
        size_t i = 0;
        while (i < nseen && !(seen[i].sin_addr.s_addr == srv.sin_addr.s_addr &&
                              seen[i].sin_port == srv.sin_port))
            i++;
        if (i < nseen)
            continue; /* heard before: printed once */
        if (nseen == MAX_SERVERS)
            continue;
        struct sockaddr_in *grown = realloc(seen, (nseen + 1) * sizeof *seen);
        if (!grown)
            unix_error("realloc", NULL);
        seen = grown;
        seen[nseen++] = srv;
        char name[ADDR_STRLEN];
        printf("%s\n", sockaddr_str((struct sockaddr *)&srv, name, sizeof name));
        fflush(stdout);
    }
    free(seen);
    return nseen;
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
