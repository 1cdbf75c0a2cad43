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
    memset(a, 0, sizeof *a);
    a->fd = -1;
    a->verbose = verbose;
    if (!group && !bcast) {
        errno = EINVAL;
        return -1;
    }
    char where[ADDR_STRLEN];
    sockaddr_str((const struct sockaddr *)self, where, sizeof where);
    a->len = (size_t)snprintf(a->msg, sizeof a->msg, "%s%s", ANNOUNCE_PREFIX, where);

    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -1;
    if (group) {
        /* TTL 1: the announcement stays on this link, no router forwards
         * it (1 is Linux's default for multicast; say it anyway, it is
         * the contract). */
        unsigned char ttl = 1, loop = 1;
        if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) == -1)
            goto fail;
        /* Loop: a copy to this host's own members too, so a discover
         * on the same machine hears it (the default, said anyway). */
        if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop) == -1)
            goto fail;
        /* A server bound to one address announces out of the interface
         * that has it: one on 127.0.0.1 stays on this host instead of
         * telling the LAN about an address nobody else can reach.
         * Bound to every address (0.0.0.0), the route decides. */
        if (self->sin_addr.s_addr != htonl(INADDR_ANY)) {
            struct ip_mreqn m;
            memset(&m, 0, sizeof m);
            m.imr_address = self->sin_addr;
            if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &m, sizeof m) == -1)
                goto fail;
        }
        a->group = *group;
        a->to_group = 1;
    }
    if (bcast) {
        /* Without it, sendto() a broadcast address fails with EACCES:
         * the kernel makes a program say it means to reach every host. */
        int on = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &on, sizeof on) == -1)
            goto fail;
        a->bcast = *bcast;
        a->to_bcast = 1;
    }
    a->fd = fd;
    return 0;
fail:;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

/* One destination: send, and say so when it starts or keeps failing. */
static void send_to(struct announcer *a, const struct sockaddr_in *to, int *failed)
{
    char name[ADDR_STRLEN];
    if (sendto(a->fd, a->msg, a->len, 0, (const struct sockaddr *)to, sizeof *to) == -1) {
        if (*failed != errno || a->verbose)
            unix_warnf("announce to %s", sockaddr_str((const struct sockaddr *)to, name, sizeof name));
        *failed = errno;
        return;
    }
    if (*failed) {
        err_msg("announce to %s: works again", sockaddr_str((const struct sockaddr *)to, name, sizeof name));
        *failed = 0;
    }
    if (a->verbose > 1)
        err_msg("announce to %s: %.*s", sockaddr_str((const struct sockaddr *)to, name, sizeof name),
                (int)a->len, a->msg);
}

void announcer_send(struct announcer *a)
{
    if (a->to_group)
        send_to(a, &a->group, &a->failed_group);
    if (a->to_bcast)
        send_to(a, &a->bcast, &a->failed_bcast);
}

void announcer_close(struct announcer *a)
{
    if (a->fd != -1)
        close(a->fd);
    a->fd = -1;
}
