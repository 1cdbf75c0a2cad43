/*
 * udp.c - the uppercase echo over UDP (see udp.h).
 *
 * UDP keeps message boundaries: one sendto() is one datagram, and one
 * recvfrom() returns exactly one datagram, whole, or truncated to the
 * buffer (the rest is gone).  So the echo needs no framing and no buffer
 * per client: read a datagram, uppercase it, send it back to the address
 * it came from, forget it.
 *
 * Your two TODOs are below; server.c (given) calls them.  Lab 12 links
 * this file into its server, so what you write here carries forward.
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

int udp_bind(const char *addr, int port)
{
    /*
     * TODO 1: the server's one socket.
     *
     * Contract (udp.h): a datagram socket (SOCK_DGRAM, close-on-exec)
     * bound to addr:port, addr a numeric IPv4 address, port 0 meaning
     * "the kernel chooses" (server.c then prints the real port).
     * Returns the fd, or -1 with errno set and nothing left open: a bad
     * address sets errno itself (EINVAL: inet_pton() sets none).
     * No SO_REUSEADDR: on UDP it would let a second server bind the same
     * address and port, and the two would split the datagrams.
     */
    (void)addr;
    (void)port;
    app_error("TODO 1: udp_bind() is not written yet");
}

int udp_echo_ready(int fd, char *buf, size_t cap, int verbose)
{
    /*
     * TODO 2: answer the datagrams that are waiting, without blocking.
     *
     * Contract (udp.h):
     *  - every datagram goes back to the address it came from, ASCII
     *    letters uppercased (upcase() in wrap.h), as ONE datagram of the
     *    same length.  0 bytes is a datagram too, and gets a 0-byte
     *    answer: recvfrom() returning 0 ends nothing on UDP;
     *  - nothing is remembered between datagrams: no table of clients,
     *    no "current client", no socket per client, no connect() on fd
     *    (a connected UDP socket hears one peer only);
     *  - never blocks: fd is a blocking socket (server.c waits in ppoll()
     *    for it to be readable), so each call that could wait must say
     *    it will not;
     *  - a datagram that does not fit in buf is not answered (a shorter
     *    answer would break the contract): you can only see it if you
     *    ask recvfrom() for the datagram's real length;
     *  - one datagram's trouble (a sendto() that fails because the
     *    client's buffer is full or it is gone, an ICMP error) drops that
     *    datagram, with a line on stderr when verbose, and the next one
     *    is served; only an error that says the socket itself is broken
     *    (EBADF, ENOTSOCK, EFAULT, EINVAL) returns -1;
     *  - at most a bounded number of datagrams per call (64 is fine), so
     *    a flood cannot keep the loop from seeing SIGTERM;
     *  - returns how many datagrams were answered: 0 when none was
     *    waiting (EAGAIN) or a signal came (EINTR).
     */
    (void)fd;
    (void)buf;
    (void)cap;
    (void)verbose;
    app_error("TODO 2: udp_echo_ready() is not written yet");
}
