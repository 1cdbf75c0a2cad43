/*
 * udpgen - the UDP load generator behind `make compare`'s UDP table.
 *
 *     udpgen [-a ADDR] -p PORT [-c CLIENTS] [-s SIZE] [-t SECONDS]
 *            [-w WARMUP] [-T LOST] [-l LABEL] [-r SEED] [-S] [-q]
 *
 * CLIENTS UDP sockets, each connect()ed to the uppercase echo (so the
 * kernel drops datagrams from anyone else, and an ICMP port unreachable
 * comes back as ECONNREFUSED), play ping-pong: send one SIZE-byte datagram
 * (0 to 65,507), wait for its answer, check it is exactly SIZE bytes and
 * the uppercase of what was sent, send the next.  The bytes are random
 * 0-255, taken from a different offset of one random pattern for every
 * datagram, so an answer to another client's datagram, to an earlier one,
 * or from a stale buffer is caught.
 *
 * UDP may lose a datagram: an answer not back within LOST seconds (-T,
 * default 1) counts as an error (a timeout) and the client sends a new
 * datagram.  Should the late answer still arrive, it is recognised as the
 * previous datagram's and ignored (it was counted already).  Any other
 * answer that is not the expected one is a verify failure, printed.
 *
 * After WARMUP seconds (-w) the clients stop sending, the answers in
 * flight come back, and the window of SECONDS (-t) starts; at its end the
 * clients stop again and their last answers are collected (and checked,
 * not counted).  So the window holds only whole round trips, measured from
 * the send() to the checked answer.  One line of JSON: datagrams answered
 * per second (each one a round trip: one datagram in and one out at the
 * server), latency percentiles, timeouts, errors, verify failures, and the
 * generator's own CPU use (near 100%: the client, not the server, is the
 * bottleneck; client_bound says so).
 *
 * -S (sync), as loadgen's: "window start" and "window end" on stderr at the
 * window's edges, each followed by a wait for a line on stdin, so a driver
 * can read the server's /proc files and switch perf on and off exactly
 * there, while nothing is in flight.
 *
 * Exit status: 0 clean; 1 any timeout, socket error or verify failure;
 * 2 bad arguments.  One thread and epoll: on a 2-CPU machine a second
 * generator thread would only take the server's CPU.  Like loadgen, it uses
 * nothing from common/.
 */
#define _GNU_SOURCE /* srandom(), random() under -std=c11 */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PAYLOAD 65507
#define SPAN 4096          /* offsets into the pattern a datagram may start at */
#define MAX_REPORTS 5      /* verify failures printed in full */

static struct {
    const char *addr, *label;
    int port, clients, size, sync, quiet;
    double seconds, warmup, lost;
    unsigned seed;
} opt = {"127.0.0.1", "server", 0, 1, 64, 0, 0, 5.0, 0.5, 1.0, 1};

struct client {
    int fd;
    int waiting;      /* a datagram is out, its answer not yet in */
    int has_prev;     /* prev is a datagram given up on (its answer may come late) */
    size_t off, prev; /* pattern offsets of the datagram out and of the one given up on */
    int64_t sent_ns;
};

static unsigned char *pattern, *expect; /* expect: the uppercase of pattern */
static struct client *cl;
static int64_t *lat; /* ns, round trips inside the window */
static long nlat, latcap;
static long timeouts, sockerrs, late, vfail;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void usage(void)
{
    fprintf(stderr, "usage: udpgen [-a ADDR] -p PORT [-c CLIENTS] [-s SIZE] [-t SECONDS] "
                    "[-w WARMUP] [-T LOST] [-l LABEL] [-r SEED] [-S] [-q]\n");
    exit(2);
}

static long num(const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        usage();
    return v;
}

static double fnum(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || v < 0 || v > 86400)
        usage();
    return v;
}

static void sync_point(const char *what)
{
    if (!opt.sync)
        return;
    fprintf(stderr, "window %s\n", what);
    fflush(stderr);
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        opt.sync = 0; /* the driver went away: carry on without it */
}

static void send_next(struct client *c)
{
    size_t off;
    do
        off = (size_t)random() % SPAN;
    while (off == c->off || (c->has_prev && off == c->prev));
    c->off = off;
    c->sent_ns = now_ns();
    c->waiting = 1;
    if (send(c->fd, pattern + off, (size_t)opt.size, 0) == -1) {
        /* ECONNREFUSED: an earlier datagram found no server.  Counted
         * here; the timeout then sends again. */
        sockerrs++;
        if (!opt.quiet && sockerrs <= MAX_REPORTS)
            fprintf(stderr, "udpgen: send: %s\n", strerror(errno));
    }
}

static int is_answer(const unsigned char *buf, ssize_t n, size_t off)
{
    return n == opt.size && memcmp(buf, expect + off, (size_t)opt.size) == 0;
}

static void report_wrong(const struct client *c, const unsigned char *buf, ssize_t n)
{
    vfail++;
    if (opt.quiet || vfail > MAX_REPORTS)
        return;
    ssize_t at = 0;
    while (at < n && at < opt.size && buf[at] == expect[c->off + (size_t)at])
        at++;
    fprintf(stderr, "udpgen: client %d: a wrong answer: %zd bytes, expected %d", (int)(c - cl), n,
            opt.size);
    if (at < n && at < opt.size)
        fprintf(stderr, "; first difference at byte %zd: sent 0x%02x, expected 0x%02x, got 0x%02x",
                at, pattern[c->off + (size_t)at], expect[c->off + (size_t)at], buf[at]);
    fputc('\n', stderr);
}

/* Read every answer waiting on c.  sending: send the next datagram after
 * each good one; counting: record its latency. */
static void on_readable(struct client *c, unsigned char *buf, int sending, int counting)
{
    for (;;) {
        ssize_t n = recv(c->fd, buf, MAX_PAYLOAD + 1, MSG_DONTWAIT | MSG_TRUNC);
        if (n == -1) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR)
                continue;
            sockerrs++; /* ECONNREFUSED: no server there (any more) */
            if (!opt.quiet && sockerrs <= MAX_REPORTS)
                fprintf(stderr, "udpgen: client %d: recv: %s\n", (int)(c - cl), strerror(errno));
            return;
        }
        if (c->waiting && is_answer(buf, n, c->off)) {
            int64_t t = now_ns();
            if (counting) {
                if (nlat == latcap) {
                    latcap = latcap ? latcap * 2 : 65536;
                    lat = realloc(lat, (size_t)latcap * sizeof *lat);
                    if (!lat) {
                        perror("udpgen: realloc");
                        exit(1);
                    }
                }
                lat[nlat++] = t - c->sent_ns;
            }
            c->waiting = 0;
            c->has_prev = 0;
            if (sending)
                send_next(c);
        } else if (c->has_prev && is_answer(buf, n, c->prev)) {
            late++; /* the answer to a datagram already counted lost */
            c->has_prev = 0;
        } else {
            report_wrong(c, buf, n);
            if (c->waiting) {
                c->waiting = 0;
                if (sending)
                    send_next(c);
            }
        }
    }
}

/* Serve events until `until` (ns).  sending 0: stop early once nothing is
 * in flight. */
static void run(int ep, unsigned char *buf, int64_t until, int sending, int counting)
{
    struct epoll_event ev[256];
    int64_t lost_ns = (int64_t)(opt.lost * 1e9), next_scan = now_ns() + 10000000;
    for (;;) {
        int64_t t = now_ns();
        if (t >= next_scan) {
            /* A datagram or its answer was lost: count it, go on. */
            int out = 0;
            for (int i = 0; i < opt.clients; i++) {
                struct client *c = &cl[i];
                if (c->waiting && t - c->sent_ns > lost_ns) {
                    timeouts++;
                    c->has_prev = 1;
                    c->prev = c->off;
                    c->waiting = 0;
                    if (sending)
                        send_next(c);
                }
                out += c->waiting;
            }
            if (!sending && out == 0)
                return;
            next_scan = t + 10000000;
        }
        if (t >= until)
            return;
        int64_t wait = (next_scan < until ? next_scan : until) - t;
        int k = epoll_wait(ep, ev, 256, (int)(wait / 1000000) + 1);
        if (k == -1 && errno != EINTR) {
            perror("udpgen: epoll_wait");
            exit(1);
        }
        for (int i = 0; i < k; i++)
            on_readable(&cl[ev[i].data.u32], buf, sending, counting);
        if (!sending && k > 0)
            next_scan = now_ns(); /* see at once whether all are in */
    }
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double pct_us(double p)
{
    if (nlat == 0)
        return 0;
    long i = (long)(p / 100.0 * (double)(nlat - 1) + 0.5);
    return (double)lat[i] / 1000.0;
}

int main(int argc, char **argv)
{
    int c;
    while ((c = getopt(argc, argv, "a:p:c:s:t:w:T:l:r:Sq")) != -1) {
        switch (c) {
        case 'a': opt.addr = optarg; break;
        case 'p': opt.port = (int)num(optarg, 1, 65535); break;
        case 'c': opt.clients = (int)num(optarg, 1, 100000); break;
        case 's': opt.size = (int)num(optarg, 0, MAX_PAYLOAD); break;
        case 't': opt.seconds = fnum(optarg); break;
        case 'w': opt.warmup = fnum(optarg); break;
        case 'T': opt.lost = fnum(optarg); break;
        case 'l': opt.label = optarg; break;
        case 'r': opt.seed = (unsigned)num(optarg, 0, 0x7fffffff); break;
        case 'S': opt.sync = 1; break;
        case 'q': opt.quiet = 1; break;
        default: usage();
        }
    }
    if (optind != argc || opt.port == 0 || opt.seconds <= 0 || opt.lost <= 0)
        usage();
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)opt.port);
    if (inet_pton(AF_INET, opt.addr, &sa.sin_addr) != 1)
        usage();

    struct rlimit rl; /* many clients: take every fd we may */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    srandom(opt.seed);
    size_t plen = (size_t)opt.size + SPAN;
    pattern = malloc(plen);
    expect = malloc(plen);
    unsigned char *buf = malloc(MAX_PAYLOAD + 1);
    cl = calloc((size_t)opt.clients, sizeof *cl);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (!pattern || !expect || !buf || !cl || ep == -1) {
        perror("udpgen: setup");
        return 1;
    }
    for (size_t i = 0; i < plen; i++) {
        pattern[i] = (unsigned char)random();
        expect[i] = pattern[i] >= 'a' && pattern[i] <= 'z' ? pattern[i] - 32 : pattern[i];
    }
    for (int i = 0; i < opt.clients; i++) {
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd == -1 || connect(fd, (struct sockaddr *)&sa, sizeof sa) == -1) {
            fprintf(stderr, "udpgen: client %d: %s\n", i, strerror(errno));
            return 1;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
            perror("udpgen: epoll_ctl");
            return 1;
        }
        cl[i].fd = fd;
        cl[i].off = SPAN; /* no datagram yet: an offset no datagram has */
    }

    /* Warm-up, then let what is in flight come back, so the window starts
     * (and the server's counters are read) with nothing in flight. */
    int64_t t0 = now_ns();
    for (int i = 0; i < opt.clients; i++)
        send_next(&cl[i]);
    run(ep, buf, t0 + (int64_t)(opt.warmup * 1e9), 1, 0);
    run(ep, buf, now_ns() + (int64_t)(opt.lost * 1e9) + 20000000, 0, 0);
    double warmup_ms = (double)(now_ns() - t0) / 1e6;
    long warm_errors = timeouts + sockerrs + vfail;
    sync_point("start");

    double c0 = cpu_s();
    int64_t w0 = now_ns();
    for (int i = 0; i < opt.clients; i++)
        send_next(&cl[i]);
    run(ep, buf, w0 + (int64_t)(opt.seconds * 1e9), 1, 1);
    int64_t w1 = now_ns();
    double c1 = cpu_s();
    run(ep, buf, w1 + (int64_t)(opt.lost * 1e9) + 20000000, 0, 0);
    sync_point("end");

    double secs = (double)(w1 - w0) / 1e9;
    if (nlat) /* lat is NULL when nothing came back */
        qsort(lat, (size_t)nlat, sizeof *lat, cmp64);
    double cpu_pct = (c1 - c0) / secs * 100.0;
    int client_bound = cpu_pct > 90.0;
    if (client_bound && !opt.quiet)
        fprintf(stderr, "udpgen: the generator used %.0f%% of a CPU: the figures may be its "
                        "limit, not the server's\n", cpu_pct);
    long errors = timeouts + sockerrs;
    printf("{\"label\":\"%s\",\"clients\":%d,\"size\":%d,\"seconds\":%.3f,\"warmup_ms\":%.1f,"
           "\"datagrams\":%ld,\"dps\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
           "\"max_us\":%.1f,\"timeouts\":%ld,\"socket_errors\":%ld,\"late\":%ld,\"errors\":%ld,"
           "\"verify_failures\":%ld,\"warmup_errors\":%ld,\"client_cpu_pct\":%.1f,"
           "\"client_bound\":%s}\n",
           opt.label, opt.clients, opt.size, secs, warmup_ms, nlat, (double)nlat / secs,
           pct_us(50), pct_us(90), pct_us(99), nlat ? (double)lat[nlat - 1] / 1000.0 : 0.0,
           timeouts, sockerrs, late, errors, vfail, warm_errors, cpu_pct,
           client_bound ? "true" : "false");
    fflush(stdout);
    for (int i = 0; i < opt.clients; i++)
        close(cl[i].fd);
    close(ep);
    free(lat);
    free(cl);
    free(buf);
    free(pattern);
    free(expect);
    return errors || vfail ? 1 : 0;
}
