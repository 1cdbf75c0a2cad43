/*
 * 11-udp client: each line of stdin as one datagram to the UDP echo,
 * each answer printed once, in order, whatever the network does.
 *
 *     client [-p PORT] [-a ADDR] [-t MS] [-n TRIES] [-v]
 *
 * UDP may drop a datagram, deliver it twice, or deliver it late, after
 * the next one.  So, like DNS and QUIC, the client numbers its requests
 * and keeps a timer:
 *
 *  - each line goes out as "SEQ LINE": a decimal sequence number and a
 *    space in front of the line.  The server knows nothing of it: it
 *    uppercases the whole datagram, and digits and spaces are left as
 *    they are, so the number comes back intact;
 *  - one line at a time (stop-and-wait): the client waits for the answer
 *    that carries the number it sent, at most MS milliseconds (-t, 100),
 *    then sends the same datagram again and waits twice as long (binary
 *    exponential backoff, capped), TRIES sends in all (-n, 6) before it
 *    gives up;
 *  - an answer with another number is a duplicate or a late answer to an
 *    earlier send (stale): dropped, never printed;
 *  - the socket is connect()ed to the server: the kernel then accepts
 *    datagrams from that address only, and reports the ICMP "port
 *    unreachable" that a host sends back when nothing listens there as
 *    ECONNREFUSED on the next recv() or send(): "no server", at once,
 *    instead of TRIES timeouts.  An unconnected socket never hears it
 *    (the error could belong to any of the peers it talks to).
 *
 * Exit status: 0 every line answered; 1 no server, no answer after TRIES
 * sends, a line too long for one datagram, or an error; 2 bad arguments.
 */
#define _POSIX_C_SOURCE 200809L

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
#include <time.h>
#include <unistd.h>

#include "udp.h"

#define SEQ_HEADER_MAX 21            /* 20 digits of a uint64 and a space */
#define BACKOFF_CAP_MS 5000          /* no single wait longer than this */

struct client_opts {
    const char *addr;
    int port;
    int timeout_ms; /* the first wait for each line */
    int tries;      /* sends per line before giving up */
    int verbose;
};

static void usage(FILE *to, const char *prog)
{
    fprintf(to, "usage: %s [-p PORT] [-a ADDR] [-t MS] [-n TRIES] [-v]\n", prog);
}

/* A whole decimal number from lo to hi, or -1. */
static long number(const char *s, long lo, long hi)
{
    if (!isdigit((unsigned char)s[0]))
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end != '\0' || v < lo || v > hi)
        return -1;
    return v;
}

static void parse_client_args(int argc, char **argv, struct client_opts *o)
{
    const char *prog = argv[0] ? argv[0] : "client";
    o->addr = DEFAULT_ADDR;
    o->port = DEFAULT_PORT;
    o->timeout_ms = 100;
    o->tries = 6;
    o->verbose = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout, prog);
            exit(0);
        }
        if (strcmp(a, "-v") == 0) {
            o->verbose++;
            continue;
        }
        if (a[0] != '-' || a[1] == '\0' || a[2] != '\0' || !strchr("patn", a[1]) || i + 1 >= argc) {
            fprintf(stderr, "%s: bad argument '%s'\n", prog, a);
            usage(stderr, prog);
            exit(2);
        }
        const char *v = argv[++i];
        long n = 0;
        struct in_addr tmp;
        switch (a[1]) {
        case 'a':
            if (inet_pton(AF_INET, v, &tmp) != 1)
                n = -1;
            o->addr = v;
            break;
        case 'p':
            o->port = (int)(n = number(v, 1, 65535));
            break;
        case 't':
            o->timeout_ms = (int)(n = number(v, 1, BACKOFF_CAP_MS));
            break;
        case 'n':
            o->tries = (int)(n = number(v, 1, 100));
            break;
        }
        if (n == -1) {
            fprintf(stderr, "%s: bad value for %s: '%s'\n", prog, a, v);
            usage(stderr, prog);
            exit(2);
        }
    }
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A UDP socket connected to the server: send() and recv() need no
 * address, datagrams from anyone else are dropped by the kernel, and
 * ICMP errors come back as errno. */
static int udp_connect(const char *addr, int port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
        app_error("client: bad address '%s'", addr);
    int fd = Socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    /* No packet leaves: connect() on UDP only records the peer. */
    Connect(fd, (struct sockaddr *)&sa, sizeof sa);
    return fd;
}

/* If s[0..n) starts with "DIGITS ", its number in *seq and the length of
 * that header; else 0. */
static size_t parse_header(const char *s, size_t n, unsigned long long *seq)
{
    unsigned long long v = 0;
    size_t i = 0;
    while (i < n && i < SEQ_HEADER_MAX - 1 && isdigit((unsigned char)s[i])) {
        v = v * 10 + (unsigned long long)(s[i] - '0');
        i++;
    }
    if (i == 0 || i >= n || s[i] != ' ')
        return 0;
    *seq = v;
    return i + 1;
}

enum outcome { ANSWERED, NO_SERVER, GAVE_UP };

/* Send line[0..len) as the datagram "SEQ LINE" until the answer that
 * carries seq comes back, then print that answer without its header.
 * out (UDP_MAX_PAYLOAD bytes) and reply (UDP_BUF_SIZE bytes) are scratch;
 * the caller has checked that the line fits in one datagram. */
static enum outcome exchange(int fd, const struct client_opts *o, unsigned long long seq,
                             const char *line, size_t len, char *out, char *reply)
{
    const size_t replycap = UDP_BUF_SIZE;
    int h = snprintf(out, SEQ_HEADER_MAX + 1, "%llu ", seq);
    memcpy(out + h, line, len);
    size_t outlen = (size_t)h + len;
    int wait_ms = o->timeout_ms, waited = 0;
    for (int sent = 0; sent < o->tries; sent++) {
        if (sent > 0 && o->verbose)
            err_msg("client: no answer to %llu within %d ms: send %d of %d", seq, waited,
                    sent + 1, o->tries);
        if (send(fd, out, outlen, 0) == -1) {
            if (errno == ECONNREFUSED)
                return NO_SERVER; /* an earlier send's ICMP, reported here */
            if (errno != EINTR && errno != ENOBUFS && errno != EAGAIN)
                unix_error("send", NULL);
            /* a local hiccup: the retransmission covers it */
        }
        long long deadline = now_ms() + wait_ms;
        for (;;) {
            long long left = deadline - now_ms();
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
            /* MSG_TRUNC: the real length, to notice an answer that did
             * not fit (it cannot be ours: ours fits by construction). */
            ssize_t n = recv(fd, reply, replycap, MSG_TRUNC);
            if (n == -1) {
                if (errno == ECONNREFUSED)
                    return NO_SERVER;
                if (errno == EINTR)
                    continue;
                unix_error("recv", NULL);
            }
            unsigned long long got = 0;
            size_t h = (size_t)n <= replycap ? parse_header(reply, (size_t)n, &got) : 0;
            if (h == 0 || got != seq) {
                /* A duplicate, a late answer to an earlier number, or
                 * not ours at all: never printed. */
                if (o->verbose)
                    err_msg("client: dropped a %zd-byte datagram (%s) while waiting for %llu", n,
                            h == 0 ? "no sequence number" : got < seq ? "stale" : "unexpected number",
                            seq);
                continue;
            }
            fwrite(reply + h, 1, (size_t)n - h, stdout);
            putchar('\n');
            fflush(stdout);
            return ANSWERED;
        }
        /* Binary exponential backoff: a server or network that is slow
         * (or overloaded by our own retransmissions) gets more time with
         * every try, not a steady stream of copies. */
        waited = wait_ms;
        wait_ms = wait_ms * 2 > BACKOFF_CAP_MS ? BACKOFF_CAP_MS : wait_ms * 2;
    }
    return GAVE_UP;
}

int main(int argc, char **argv)
{
    struct client_opts o;
    parse_client_args(argc, argv, &o);
    int fd = udp_connect(o.addr, o.port);

    char *out = Malloc(UDP_MAX_PAYLOAD);
    char *reply = Malloc(UDP_BUF_SIZE);
    char *line = NULL;
    size_t linecap = 0;
    ssize_t len;
    unsigned long long seq = 0;
    int status = 0;
    while ((len = getline(&line, &linecap, stdin)) != -1) {
        if (len > 0 && line[len - 1] == '\n')
            len--;
        seq++;
        if (len > UDP_MAX_PAYLOAD - SEQ_HEADER_MAX) {
            err_msg("client: line %llu is %zd bytes; one datagram holds at most %d after the "
                    "sequence number", seq, len, UDP_MAX_PAYLOAD - SEQ_HEADER_MAX);
            status = 1;
            break;
        }
        enum outcome r = exchange(fd, &o, seq, line, (size_t)len, out, reply);
        if (r == NO_SERVER) {
            err_msg("client: no server at %s:%d (connection refused: an ICMP port unreachable "
                    "came back)", o.addr, o.port);
            status = 1;
            break;
        }
        if (r == GAVE_UP) {
            err_msg("client: no answer to line %llu after %d sends: giving up", seq, o.tries);
            status = 1;
            break;
        }
    }
    if (status == 0 && ferror(stdin)) {
        unix_warn("read", "stdin");
        status = 1;
    }
    free(line);
    free(out);
    free(reply);
    close(fd);
    return status;
}
