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
#define _GNU_SOURCE /* recvmmsg, sendmmsg, struct mmsghdr */

#include "udp.h"

#include "wrap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
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

/* ---------- --batch: the same echo, many datagrams per system call ---------- */

/* recvfrom() and sendto() cost one system call per datagram each way: at
 * 64 bytes a datagram, the kernel entry and exit, not the copying, is most
 * of the server's work.  recvmmsg() fills up to UDP_BATCH buffers (each
 * with its sender's address) in one call, and sendmmsg() sends up to
 * UDP_BATCH answers, each to its own address, in one call: under load,
 * two system calls for a whole batch instead of two per datagram.  With
 * one datagram waiting it is the same two calls as the plain loop, so
 * batching costs nothing when idle.  The answers are the same datagrams,
 * one per question, to the same addresses: only the number of trips into
 * the kernel changes. */
struct udp_batch {
    char *bufs;                          /* UDP_BATCH buffers of UDP_BUF_SIZE */
    struct sockaddr_in from[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    struct mmsghdr in[UDP_BATCH];
    struct mmsghdr out[UDP_BATCH];
};

struct udp_batch *udp_batch_new(void)
{
    struct udp_batch *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    /* 64 x 64 KiB of address space; the kernel backs only the pages that
     * datagrams are actually written to. */
    b->bufs = malloc((size_t)UDP_BATCH * UDP_BUF_SIZE);
    if (!b->bufs) {
        free(b);
        return NULL;
    }
    return b;
}

void udp_batch_free(struct udp_batch *b)
{
    if (b) {
        free(b->bufs);
        free(b);
    }
}

int udp_echo_batch(int fd, struct udp_batch *b, int verbose)
{
    for (int i = 0; i < UDP_BATCH; i++) {
        b->iov[i].iov_base = b->bufs + (size_t)i * UDP_BUF_SIZE;
        b->iov[i].iov_len = UDP_BUF_SIZE;
        memset(&b->in[i].msg_hdr, 0, sizeof b->in[i].msg_hdr);
        b->in[i].msg_hdr.msg_name = &b->from[i];
        /* Value-result, as with recvfrom(): reset before every call. */
        b->in[i].msg_hdr.msg_namelen = sizeof b->from[i];
        b->in[i].msg_hdr.msg_iov = &b->iov[i];
        b->in[i].msg_hdr.msg_iovlen = 1;
    }
    /* MSG_DONTWAIT: take what is queued now and return, never wait for a
     * full batch (that would hold the first datagram's answer hostage to
     * the 64th).  No timeout argument: it is checked only between
     * datagrams, so it would not bound the wait anyway. */
    int n = recvmmsg(fd, b->in, UDP_BATCH, MSG_DONTWAIT, NULL);
    if (n == -1) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return 0;
        if (socket_is_broken(errno))
            return -1;
        /* One datagram's trouble: the loop polls again, the socket is
         * still readable, and the next call takes the rest. */
        if (verbose)
            unix_warn("recvmmsg", NULL);
        return 0;
    }
    char name[ADDR_STRLEN];
    int k = 0; /* answers to send */
    for (int i = 0; i < n; i++) {
        struct msghdr *h = &b->in[i].msg_hdr;
        size_t len = b->in[i].msg_len;
        if (h->msg_flags & MSG_TRUNC) {
            /* Cut to the buffer: no answer, as in udp_echo_ready(). */
            if (verbose)
                err_msg("drop %s: a datagram does not fit in %d bytes",
                        sockaddr_str((struct sockaddr *)h->msg_name, name, sizeof name),
                        UDP_BUF_SIZE);
            continue;
        }
        upcase(h->msg_iov->iov_base, len);
        /* The answer reuses the question's buffer and address. */
        b->iov[i].iov_len = len;
        memset(&b->out[k], 0, sizeof b->out[k]);
        b->out[k].msg_hdr.msg_name = h->msg_name;
        b->out[k].msg_hdr.msg_namelen = h->msg_namelen;
        b->out[k].msg_hdr.msg_iov = &b->iov[i];
        b->out[k].msg_hdr.msg_iovlen = 1;
        k++;
    }
    int answered = 0;
    for (int sent = 0; sent < k;) {
        /* sendmmsg() stops at the first answer that fails: it returns how
         * many went before it, or -1 when the very first failed.  So a
         * failure is that one answer's: drop it and go on after it. */
        int r = sendmmsg(fd, b->out + sent, (unsigned)(k - sent), 0);
        if (r == -1) {
            if (errno == EINTR)
                continue;
            if (socket_is_broken(errno))
                return -1;
            if (verbose)
                unix_warnf("sendmmsg %s",
                           sockaddr_str((struct sockaddr *)b->out[sent].msg_hdr.msg_name, name,
                                        sizeof name));
            sent++;
            continue;
        }
        if (verbose > 1)
            for (int j = sent; j < sent + r; j++)
                err_msg("echo %u bytes to %s", b->out[j].msg_len,
                        sockaddr_str((struct sockaddr *)b->out[j].msg_hdr.msg_name, name,
                                     sizeof name));
        sent += r;
        answered += r;
    }
    return answered;
}
