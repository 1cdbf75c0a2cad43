/*
 * announce.c - "netlabs ADDR:PORT" to a group and/or a broadcast address.
 *
 * One socket of its own, apart from the echo's: the options below change
 * how it sends, and the echo's answers must not be affected.  It is not
 * bound: the kernel gives it a port and picks the source address by the
 * route, and the announcement itself says where the echo is.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* struct ip_mreqn: Linux and BSD, not POSIX */

#include "announce.h"

#include "wrap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int announcer_open(struct announcer *a, const struct sockaddr_in *self,
                   const struct sockaddr_in *group, const struct sockaddr_in *bcast, int verbose)
{
    /*
     * TODO 1: get ready to announce (announce.h).
     *
     * Contract:
     *  - *a filled in: the message "netlabs ADDR:PORT" for *self
     *    (ANNOUNCE_PREFIX, then sockaddr_str() of self), the destinations
     *    in use (group and/or bcast: either may be NULL, not both:
     *    EINVAL), verbose; a->fd the socket;
     *  - one socket of its own, not the echo's (the options below must
     *    not change how the echo answers), not bound;
     *  - with a group: multicast TTL 1 (the announcement never leaves
     *    this link) and loopback of multicast on (a discover on this very
     *    host must hear it), both set explicitly even where they are the
     *    default; and when *self is a specific address (not 0.0.0.0), the
     *    multicast interface set to that address, so a server on
     *    127.0.0.1 announces on loopback, never to the LAN;
     *  - with a broadcast address: SO_BROADCAST (without it, sendto()
     *    to a broadcast address fails with EACCES);
     *  - sends nothing yet; returns 0, or -1 with errno set and nothing
     *    left open.
     */
    (void)a;
    (void)self;
    (void)group;
    (void)bcast;
    (void)verbose;
    app_error("TODO 1: announcer_open() in announce.c is not written yet");
}

void announcer_send(struct announcer *a)
{
    /*
     * TODO 2: send the announcement once to each destination in use.
     *
     * Contract: one datagram of exactly a->len bytes (a->msg) to the
     * group, one to the broadcast address, as configured.  A send that
     * fails (no route: ENETUNREACH; EACCES; a full buffer) is not fatal
     * and does not stop the other destination: report it on stderr when
     * a destination starts failing (a->failed_group / a->failed_bcast
     * remember the last errno, 0 when it went), every time with verbose,
     * and say so when it works again.  The next period tries again.
     */
    (void)a;
    app_error("TODO 2: announcer_send() in announce.c is not written yet");
}

void announcer_close(struct announcer *a)
{
    if (a->fd != -1)
        close(a->fd);
    a->fd = -1;
}
