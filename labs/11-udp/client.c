/*
 * 11-udp client: each line of stdin as one datagram to the UDP echo,
 * each answer printed once, in order, whatever the network does.
 *
 *     client [-p PORT] [-a ADDR] [-t MS] [-n TRIES] [-v]
 *
 * UDP may drop a datagram, deliver it twice, or deliver it late, after
 * the next one.  So, like DNS and QUIC, the client numbers its requests
 * and keeps a timer.  What is given: the options, reading the lines,
 * the exit statuses.  What you write (TODOs 3 and 4): a connected socket,
 * and exchange(), which sends one line with its number, waits with a
 * timeout, resends with backoff, and prints the right answer once.
 * See the handout, sections 4 and 5.
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

/* A UDP socket connected to the server: send() and recv() need no
 * address, datagrams from anyone else are dropped by the kernel, and
 * ICMP errors come back as errno. */
static int udp_connect(const char *addr, int port)
{
    /*
     * TODO 3: the client's socket.
     *
     * Contract: a UDP socket (close-on-exec) CONNECTED to addr:port
     * (numeric IPv4).  connect() on UDP sends nothing; it records the
     * peer, so that send() and recv() need no address, datagrams from
     * anyone else are dropped by the kernel, and an ICMP "port
     * unreachable" for this peer comes back as ECONNREFUSED on a later
     * recv() or send(): that is how the client can say "no server" at
     * once.  Any failure here ends the client (the Capitalised wrappers
     * of wrap.h, or app_error for a bad address).
     */
    (void)addr;
    (void)port;
    app_error("TODO 3: udp_connect() is not written yet");
}

enum outcome { ANSWERED, NO_SERVER, GAVE_UP };

/* Send line[0..len) in one datagram until its answer comes back, then
 * print that answer (without the header) and a newline on stdout.
 * out (UDP_MAX_PAYLOAD bytes) and reply (UDP_BUF_SIZE bytes) are scratch;
 * main() has checked that the line leaves SEQ_HEADER_MAX bytes for your
 * header. */
static enum outcome exchange(int fd, const struct client_opts *o, unsigned long long seq,
                             const char *line, size_t len, char *out, char *reply)
{
    /*
     * TODO 4: one line, once, whatever the network does.
     *
     * Contract:
     *  - the datagram carries the line and a header of your design that
     *    holds seq (this line's number: 1, 2, 3 ...) and survives the
     *    server, which uppercases every byte it gets (digits and spaces
     *    come back as they went: "SEQ LINE" works);
     *  - wait for the answer at most o->timeout_ms milliseconds; when
     *    none comes, send the same datagram again and wait twice as
     *    long as the last time (exponential backoff; no single wait over
     *    BACKOFF_CAP_MS); o->tries sends in all, then return GAVE_UP;
     *  - an answer whose header does not carry seq (a duplicate, a late
     *    answer to an earlier line, garbage) is dropped, never printed,
     *    and does not restart the wait;
     *  - the answer that carries seq is printed once, without its header,
     *    then a newline; return ANSWERED;
     *  - ECONNREFUSED from recv() or send() means nothing listens at the
     *    server's address: return NO_SERVER at once;
     *  - with o->verbose, say on stderr what you resend and what you drop.
     */
    (void)fd;
    (void)o;
    (void)seq;
    (void)line;
    (void)len;
    (void)out;
    (void)reply;
    app_error("TODO 4: exchange() is not written yet");
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
