/*
 * announce.h - the server's side of discovery: "netlabs ADDR:PORT" sent to
 * a multicast group and/or a broadcast address.
 */
#ifndef NETLABS_ANNOUNCE_H
#define NETLABS_ANNOUNCE_H

#include <netinet/in.h>
#include <stddef.h>

#include "mcast.h"

struct announcer {
    int fd;                     /* the socket the announcements leave by */
    int to_group, to_bcast;     /* which of the two destinations are in use */
    struct sockaddr_in group;   /* --announce GROUP:PORT */
    struct sockaddr_in bcast;   /* --broadcast ADDR:PORT */
    char msg[ANNOUNCE_MAX];     /* "netlabs ADDR:PORT" */
    size_t len;
    int failed_group, failed_bcast; /* errno of the last failed send, 0 if it went */
    int verbose;
};

/* Get ready to announce that the echo listens at *self (its bound address
 * and port, from getsockname()), to *group (a multicast group, with TTL 1)
 * and/or to *bcast (a broadcast address, with SO_BROADCAST); either may be
 * NULL, not both.  Sends nothing yet.  0, or -1 with errno set (nothing
 * left open). */
int announcer_open(struct announcer *a, const struct sockaddr_in *self,
                   const struct sockaddr_in *group, const struct sockaddr_in *bcast, int verbose);

/* Send the announcement once to each destination.  A send that fails (no
 * route, a full buffer) is reported on stderr when it starts failing (and
 * every time with verbose), never fatal: the next period tries again. */
void announcer_send(struct announcer *a);

/* Close the socket. */
void announcer_close(struct announcer *a);

#endif
