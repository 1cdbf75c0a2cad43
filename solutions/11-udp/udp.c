/*
 * udp.c - the uppercase echo over UDP (see udp.h).
 *
 * UDP keeps message boundaries: one sendto() is one datagram, and one
 * recvfrom() returns exactly one datagram, whole, or truncated to the
 * buffer (the rest is gone).  So the echo needs no framing and no buffer
 * per client: read a datagram, uppercase it, send it back to the address
 * it came from, forget it.
 */
#define _POSIX_C_SOURCE 200809L

#include "udp.h"

#include "wrap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Datagrams answered per call: enough to make each wakeup worth it, few
 * enough that a flood cannot keep the loop from its signals and timers. */
#define ECHO_BUDGET 64

int udp_bind(const char *addr, int port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        errno = EINVAL; /* inet_pton sets no errno */
        return -1;
    }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == -1) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* Errors that say the socket itself is unusable, as opposed to one
 * datagram's trouble. */
static int socket_is_broken(int err)
{
    return err == EBADF || err == ENOTSOCK || err == EFAULT || err == EINVAL;
}

int udp_echo_ready(int fd, char *buf, size_t cap, int verbose)
{
    int answered = 0;
    for (int i = 0; i < ECHO_BUDGET; i++) {
        struct sockaddr_in from;
        /* Value-result: recvfrom() writes the sender's address length
         * here, so it is reset for every call. */
        socklen_t fromlen = sizeof from;
        /* MSG_TRUNC: return the datagram's real length even when it is
         * longer than the buffer, so a truncation can be seen.
         * MSG_DONTWAIT: this call alone is non-blocking, the socket
         * stays as it is. */
        ssize_t n = recvfrom(fd, buf, cap, MSG_DONTWAIT | MSG_TRUNC,
                             (struct sockaddr *)&from, &fromlen);
        if (n == -1) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return answered;
            if (socket_is_broken(errno))
                return -1;
            /* One datagram's trouble (an ICMP error queued on the socket,
             * ENOMEM): report it, go on with the next. */
            if (verbose)
                unix_warn("recvfrom", NULL);
            continue;
        }
        char name[ADDR_STRLEN];
        if ((size_t)n > cap) {
            /* The bytes past cap are gone: an answer would be shorter
             * than the question, so there is none. */
            if (verbose)
                err_msg("drop %s: a %zd-byte datagram does not fit in %zu bytes",
                        sockaddr_str((struct sockaddr *)&from, name, sizeof name), n, cap);
            continue;
        }
        upcase(buf, (size_t)n);
        /* Back to this datagram's own sender.  A 0-byte datagram is a
         * datagram too: it gets a 0-byte answer. */
        ssize_t sent = sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fromlen);
        if (sent == -1) {
            if (socket_is_broken(errno))
                return -1;
            /* The client will retransmit: nothing to do but say so. */
            if (verbose)
                unix_warnf("sendto %s", sockaddr_str((struct sockaddr *)&from, name, sizeof name));
            continue;
        }
        if (verbose > 1)
            err_msg("echo %zd bytes to %s", n,
                    sockaddr_str((struct sockaddr *)&from, name, sizeof name));
        answered++;
    }
    return answered;
}
