/*
 * udp.h - the uppercase echo over UDP: one socket, no per-client state.
 *
 * Lab 12 links this file from lab 11's directory (lab.mk: BUILDS_ON), so
 * the server that announces itself is this same echo.
 */
#ifndef NETLABS_UDP_H
#define NETLABS_UDP_H

#include <stddef.h>

/* The largest UDP payload over IPv4: an IP datagram is at most 65,535
 * bytes, less 20 of IP header and 8 of UDP header. */
#define UDP_MAX_PAYLOAD 65507

/* The receive buffer udp_echo_ready() needs: one byte more than the
 * largest payload, so that a datagram that does not fit (none can over
 * IPv4; an IPv6 jumbogram could) is seen as truncated, never answered
 * with fewer bytes than it had. */
#define UDP_BUF_SIZE (UDP_MAX_PAYLOAD + 1)

/* A UDP socket (SOCK_DGRAM, close-on-exec) bound to addr:port (numeric
 * IPv4; port 0: the kernel chooses).  Returns the fd, or -1 with errno set
 * (the socket is closed on failure).  No SO_REUSEADDR: for UDP it would
 * let a second server bind the very same address and port, and the two
 * would share the datagrams. */
int udp_bind(const char *addr, int port);

/* Answer the datagrams waiting on fd without blocking: each one, from
 * whoever sent it, goes back to its sender uppercased, as one datagram of
 * the same length (0 bytes included).  Nothing is remembered between
 * datagrams.  buf (cap bytes, at least UDP_BUF_SIZE) is scratch space.
 * Answers at most a bounded number per call, so the caller's loop also
 * gets to see its signals and timers under a flood.
 *
 * A datagram that cannot be answered (truncated, or sendto() refused:
 * the client's socket is gone, a full buffer) is dropped, logged with
 * verbose: UDP may lose any datagram, so clients retransmit.
 * Returns how many datagrams were answered (0: none was waiting, or a
 * signal interrupted), or -1 with errno set when the socket itself is
 * broken (EBADF, ENOTSOCK ...): the caller should stop. */
int udp_echo_ready(int fd, char *buf, size_t cap, int verbose);

/* --batch (server.c): the same echo with recvmmsg() and sendmmsg(), up
 * to UDP_BATCH datagrams in and their answers out in one system call each
 * (udp.c says why that helps).  udp_batch_new() allocates the buffers
 * (NULL with errno set); udp_echo_batch() behaves as udp_echo_ready() does,
 * same answers, same drops, same return values. */
#define UDP_BATCH 64
struct udp_batch;
struct udp_batch *udp_batch_new(void);
void udp_batch_free(struct udp_batch *b);
int udp_echo_batch(int fd, struct udp_batch *b, int verbose);

#endif
