/*
 * loadgen - the load generator behind `make compare`.
 *
 * Opens N active connections (and optionally I idle ones) to an
 * uppercase-echo server before any timing starts, then every active
 * connection plays ping-pong: send S bytes, wait for exactly S bytes back,
 * check they are the uppercase of what was sent, send the next S bytes.
 * The bytes are random 0-255 (NUL, 0x80-0xFF, newlines included), read
 * from a different offset of one random pattern every round, so a server
 * that echoes a stale buffer or the wrong connection's bytes is caught.
 *
 * After a warm-up it counts for T seconds and prints one line, JSON by
 * default (-f csv for CSV with -H for the header): round trips per second,
 * MiB/s each way, latency percentiles from a log-linear histogram, the
 * fewest and most round trips any one connection made (a server that
 * serves one client at a time starves the others: min 0), errors, verify
 * failures, and the load generator's own CPU use (when it is near 100% of
 * its threads the client, not the server, is the bottleneck: it warns).
 *
 * Exit status: 0 clean; 1 on any error (connect failure, reset, early EOF,
 * an idle connection closed by the server) or verify failure; 2 bad
 * arguments.  Connections close with SO_LINGER 0 (an RST), so thousands
 * of runs do not fill the port range with TIME_WAIT.
 *
 * The warm-up (-w) lasts at least WARMUP seconds, and then until every
 * active connection has had its first reply, at most SETTLE (-W) seconds
 * more: a server that forks or spawns a thread per connection is measured
 * serving, not still starting up.  warmup_ms in the output says how long
 * it took.
 *
 * -S (sync): print "window start" and "window end" on stderr at the edges
 * of the measured window and wait for a line on stdin after each, so a
 * driver can sample the server's /proc files at exactly those moments
 * while every connection is still open.
 *
 * --proto calc --depth D: the calculator protocol of lab 09 (and of the
 * labs that speak it after it) instead of the echo.  A frame is
 * LEN@PAYLOAD@; a request's payload is "X OP Y", a reply's "STATUS RESULT".
 * Each connection keeps D requests in flight: it writes D frames, and for
 * every reply that checks out sends one more (pipelining: the server sees
 * up to D requests in one read).  The requests come from a seeded mix over
 * + - * / % that also provokes the error statuses (division by zero,
 * overflow, an unknown operator, a malformed expression); every reply is
 * parsed as a frame and compared, in order, with the reply computed here
 * from the request text by the protocol's rules (int64 with
 * __builtin_*_overflow).  A wrong reply or a bad frame is a verify failure,
 * printed with the request and the reply.  One request = one reply: the
 * line reports requests/s and the latency of each request from the moment
 * it was queued to the moment its reply was checked.
 *
 * --slow-permille N --slow-ms M (calc only): N requests in every 1,000, drawn
 * at random, are "X ~ M" (lab 10: wait M ms, then answer "0 X"); the rest
 * are the mix above.  A "~" reply must be "0 X" and must not come sooner
 * than M ms after the request was queued (a server that skips the wait is
 * caught).  The output then adds the latency of the two kinds apart:
 * plain_* (the mix) and slow_* (the "~" requests), the figures that show
 * head-of-line blocking: plain requests stuck behind slow ones.
 *
 * --unix PATH: connect to a Unix-domain stream socket instead of TCP
 * (PATH, or @NAME for the abstract namespace); -a and -p are then unused.
 *
 * It deliberately uses nothing from common/: it must be able to measure a
 * server built from anything.
 */
#define _GNU_SOURCE /* SOCK_NONBLOCK, EPOLLRDHUP, srandom() */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64
#define PATTERN_SPAN 256 /* offsets a round may start at */
#define READ_BUF 65536
#define MAX_DEPTH 1024 /* calc: requests in flight per connection */

/* ---------- options ------------------------------------------------------- */

static struct {
    const char *addr;
    int port;
    int conns, idle, size, threads;
    double seconds, warmup, connect_timeout, settle;
    const char *label;
    int csv, header, sync, quiet;
    unsigned seed;
    int calc, depth; /* --proto calc, --depth */
    int slow_permille, slow_ms; /* --slow-permille, --slow-ms */
    const char *unix_path;      /* --unix */
} opt = {"127.0.0.1", 9527, 1, 0, 64, 1, 5.0, 1.0, 10.0, 5.0, "server", 0, 0, 0, 0, 1, 0, 1,
         0, 20, NULL};

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen -p PORT [-a ADDR] [-c CONNS] [-i IDLE] [-s SIZE] [-t SECONDS]\n"
            "               [-w WARMUP] [-W SETTLE] [-j THREADS] [-T CONNECT_TIMEOUT] [-l LABEL]\n"
            "               [-r SEED] [-f json|csv] [-H] [-S] [-q]\n"
            "               [--proto echo|calc] [--depth D]   (calc: D requests in flight, 1-%d)\n"
            "               [--slow-permille N] [--slow-ms M] (calc: N in 1000 are \"X ~ M\")\n"
            "               [--unix PATH|@NAME]               (a Unix-domain socket, not TCP)\n",
            MAX_DEPTH);
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

/* ---------- time and the latency histogram --------------------------------- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Log-linear: values below 16 ns exactly, then 16 sub-buckets per power
 * of two, so any value is known within 1/16 (about 6%). */
#define SUB 16
#define NBUCKETS (64 * SUB)

static int bucket_of(uint64_t v)
{
    if (v < SUB)
        return (int)v;
    int e = 63 - __builtin_clzll(v); /* e >= 4 */
    return (e - 3) * SUB + (int)((v >> (e - 4)) & (SUB - 1));
}

/* The middle of a bucket, in ns. */
static double bucket_value(int i)
{
    if (i < SUB)
        return i;
    int e = i / SUB + 3, sub = i % SUB;
    double lo = (double)((uint64_t)(SUB + sub) << (e - 4));
    return lo + (double)(1ULL << (e - 4)) / 2;
}

/* ---------- connections and threads ----------------------------------------- */

struct conn {
    int fd;
    int id;
    uint32_t off;    /* this round's offset into the pattern */
    int sent, recvd; /* bytes of this round */
    int64_t t0;      /* when this round's first byte went out */
    long rounds;     /* round trips inside the measured window */
    int settled;     /* has had a reply (warm-up included), or died */
    int dead;
    struct calc *calc; /* --proto calc only */
};

struct worker {
    pthread_t tid;
    int epfd;
    struct conn *conns;
    int n;
    uint64_t hist[NBUCKETS];
    long rounds, errors, verify_failures;
    int64_t max_ns;
    long status[5], busy, bad_frames; /* calc: replies by status 0-4, "5 0", bad frames */
    uint64_t shist[NBUCKETS];         /* calc: the "~" requests' latencies (hist: the rest) */
    long slow_rounds;
    int64_t slow_max_ns;
};

/* 0 warm-up, 1 measuring, 2 window over (stop counting), 3 close up. */
static atomic_int phase;
static unsigned char *pattern, *expect; /* expect = uppercase of pattern */
static atomic_int verify_reported;
static atomic_int settled; /* connections that have had a reply, or died */

static void conn_settle(struct conn *c)
{
    if (!c->settled) {
        c->settled = 1;
        atomic_fetch_add(&settled, 1);
    }
}

static void conn_fail(struct worker *w, struct conn *c, const char *what, int err)
{
    if (c->dead)
        return;
    c->dead = 1;
    conn_settle(c);
    if (atomic_load(&phase) < 2) {
        w->errors++;
        if (!opt.quiet)
            fprintf(stderr, "loadgen: connection %d: %s%s%s\n", c->id, what,
                    err ? ": " : "", err ? strerror(err) : "");
    }
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
}

static void round_start(struct worker *w, struct conn *c);

static void conn_write(struct worker *w, struct conn *c)
{
    while (c->sent < opt.size) {
        ssize_t k = send(c->fd, pattern + c->off + c->sent, (size_t)(opt.size - c->sent),
                         MSG_NOSIGNAL);
        if (k == -1) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
                epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
                return;
            }
            conn_fail(w, c, "send", errno);
            return;
        }
        c->sent += (int)k;
    }
}

static void round_start(struct worker *w, struct conn *c)
{
    c->off = (uint32_t)(((uint64_t)c->id * 7919 + (uint64_t)c->rounds * 131 +
                         (uint64_t)c->t0) % PATTERN_SPAN);
    c->sent = c->recvd = 0;
    c->t0 = now_ns();
    conn_write(w, c);
}

static void verify_failed(struct worker *w, struct conn *c, const unsigned char *got,
                          size_t n, const char *why)
{
    w->verify_failures++;
    if (atomic_fetch_add(&verify_reported, 1) < 3 && !opt.quiet) {
        size_t i = 0;
        const unsigned char *want = expect + c->off + c->recvd;
        while (i < n && c->recvd + (int)i < opt.size && got[i] == want[i])
            i++;
        fprintf(stderr, "loadgen: verify failure on connection %d: %s at byte %d of the round",
                c->id, why, c->recvd + (int)i);
        if (c->recvd + (int)i < opt.size && i < n)
            fprintf(stderr, ": expected 0x%02x, got 0x%02x", want[i], got[i]);
        fputc('\n', stderr);
    }
    c->dead = 1; /* the stream is out of step: this connection is done */
    conn_settle(c);
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
}

static void conn_read(struct worker *w, struct conn *c, unsigned char *buf)
{
    for (;;) {
        ssize_t k = recv(c->fd, buf, READ_BUF, 0);
        if (k == -1) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            conn_fail(w, c, "recv", errno);
            return;
        }
        if (k == 0) {
            conn_fail(w, c, "the server closed the connection", 0);
            return;
        }
        if (atomic_load(&phase) >= 2)
            continue; /* window over: drain, check nothing */
        int want = opt.size - c->recvd;
        if (k > want || c->recvd + (int)k > c->sent) {
            verify_failed(w, c, buf, (size_t)k, "more bytes came back than were sent");
            return;
        }
        if (memcmp(buf, expect + c->off + c->recvd, (size_t)k) != 0) {
            verify_failed(w, c, buf, (size_t)k, "wrong byte");
            return;
        }
        c->recvd += (int)k;
        if (c->recvd == opt.size) {
            conn_settle(c);
            if (atomic_load(&phase) == 1) {
                int64_t d = now_ns() - c->t0;
                w->hist[bucket_of((uint64_t)d)]++;
                if (d > w->max_ns)
                    w->max_ns = d;
                w->rounds++;
                c->rounds++;
            }
            round_start(w, c);
            if (c->dead)
                return;
        }
    }
}

/* ---------- the calculator protocol (--proto calc) ------------------------------ */

#define REQ_MAX 48   /* longest request payload generated, NUL included */
#define REPLY_MAX 24 /* "S -9223372036854775808" and its NUL */
#define FRAME_MAX 64 /* one request frame: LEN, '@', payload, '@' */
#define LEN_MAX 1024 /* the protocol's largest payload */
#define SLOTS 64     /* the mix keeps its proportions over every 64 requests */
#define SLOW_CSV_HEADER                                                                       \
    ",slow_permille,slow_ms,plain_requests,plain_p50_us,plain_p90_us,plain_p99_us,"            \
    "plain_p999_us,plain_max_us,slow_requests,slow_p50_us,slow_p90_us,slow_p99_us,"            \
    "slow_p999_us,slow_max_us"

struct pending {
    int64_t t0;           /* when the request was queued */
    char req[REQ_MAX];    /* its payload (never contains NUL) */
    char want[REPLY_MAX]; /* the reply it must get */
    int slow;             /* an "X ~ M" request (--slow-permille) */
};

struct calc {
    struct pending *ring; /* opt.depth entries; ring[head] is the oldest owed */
    int head, owed;
    char *out;            /* request bytes the socket has not taken: out[off..len) */
    int off, len, cap;
    int want_out;         /* EPOLLOUT is registered */
    uint64_t rng;
    long made;            /* requests queued so far */
    long mixed;           /* of which from the mix (not "~"): the shuffle's position */
    uint64_t srng;        /* which requests are "~", and their X: apart, so the mix is
                             the same with or without them */
    char kinds[SLOTS];    /* this connection's shuffle of the mix */
    int state;            /* reply parser: 0 LEN digits, 1 payload, 2 the closing '@' */
    int ndig, flen, plen;
    char payload[LEN_MAX];
    char raw[40];         /* the first bytes of the frame being parsed, for a report */
    int nraw;
};

/* splitmix64: tiny, good enough, and one per connection (no shared state
 * between threads, and the same seed gives the same requests). */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Decimal writers: the load generator formats a request and a reply for
 * every request it makes, and printf would cost it more than the server
 * spends computing the answer.  Each returns the end of what it wrote. */
static char *put_u64(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* x in decimal, with two leading zeros when asked ("-007" is -7). */
static char *put_i64(char *p, int64_t x, int zeros)
{
    if (x < 0)
        *p++ = '-';
    if (zeros) {
        *p++ = '0';
        *p++ = '0';
    }
    return put_u64(p, x < 0 ? 0 - (uint64_t)x : (uint64_t)x);
}

static char *put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* X or Y: an optional '-', then one or more ASCII digits and nothing else,
 * within int64 ("-9223372036854775808" is fine, "+5", "5a", "-" are not). */
static int parse_operand(const char *s, size_t n, int64_t *v)
{
    int neg = n > 0 && s[0] == '-';
    size_t i = (size_t)neg;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, acc = 0;
    if (i == n)
        return 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        unsigned d = (unsigned)(s[i] - '0');
        if (acc > (limit - d) / 10)
            return 0;
        acc = acc * 10 + d;
    }
    if (!neg)
        *v = (int64_t)acc;
    else
        *v = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
    return 1;
}

/* The reply the protocol prescribes for a request payload, computed from
 * the text alone (not from what the generator meant to send), with the
 * checks in the protocol's order: 3 malformed, 2 unknown operator,
 * 1 division by zero, 4 overflow. */
static void expected_reply(const char *req, size_t n, char *out)
{
    const char *tok[3] = {req, req, req};
    size_t len[3] = {0, 0, 0};
    int ntok = 0;
    for (size_t i = 0, start = 0; i <= n; i++) {
        if (i == n || req[i] == ' ') { /* each single space splits */
            if (ntok < 3) {
                tok[ntok] = req + start;
                len[ntok] = i - start;
            }
            ntok++;
            start = i + 1;
        }
    }
    int64_t x = 0, y = 0, r = 0;
    int st = 0;
    if (ntok != 3 || !parse_operand(tok[0], len[0], &x) || !parse_operand(tok[2], len[2], &y))
        st = 3;
    else if (len[1] != 1 || !memchr("+-*/%", tok[1][0], 5))
        st = 2;
    else {
        switch (tok[1][0]) {
        case '+': st = __builtin_add_overflow(x, y, &r) ? 4 : 0; break;
        case '-': st = __builtin_sub_overflow(x, y, &r) ? 4 : 0; break;
        case '*': st = __builtin_mul_overflow(x, y, &r) ? 4 : 0; break;
        case '/':
            if (y == 0)
                st = 1;
            else if (x == INT64_MIN && y == -1)
                st = 4;
            else
                r = x / y;
            break;
        default: /* '%': INT64_MIN % -1 is 0, though C leaves it undefined */
            if (y == 0)
                st = 1;
            else
                r = y == -1 ? 0 : x % y;
            break;
        }
    }
    out[0] = (char)('0' + st);
    out[1] = ' ';
    *put_i64(out + 2, st ? 0 : r, 0) = '\0';
}

/* An operand: mostly small, sometimes large enough that a product or a
 * sum overflows, sometimes one of the edges of int64. */
static int64_t operand(uint64_t *g)
{
    static const int64_t edge[] = {INT64_MIN, INT64_MAX, INT64_MIN + 1, INT64_MAX - 1,
                                   -1, 0, 1, 2};
    uint64_t k = rng_next(g) % 100, v = rng_next(g);
    int64_t m;
    if (k < 40)
        m = (int64_t)(v % 1001);
    else if (k < 65)
        m = (int64_t)(v % 1000000000);
    else if (k < 80)
        m = (int64_t)(v % 10000000000ULL); /* two of these: the product may overflow */
    else if (k < 92)
        m = (int64_t)(v >> 1);
    else
        return edge[v % 8];
    return (v & 1) ? -m : m;
}

/* Odd payloads whose reply is 3 (malformed), and operators that are not one
 * (2): a server must answer each and carry on.  Not "PING" itself: labs 14
 * and 15 answer it PONG (their heartbeat), so "PING?" stands for a word. */
static const char *const MALFORMED[] = {
    "", "PING?", "1  + 2", " 1 + 2", "1 + 2 ", "1+2", "+5 + 1", "5a * 2", "- - 1", "7 +",
    "1 + 2 + 3", "1e3 / 2", "9223372036854775808 + 1", "-9223372036854775809 - 1", "1\t+ 2",
};
static const char *const BAD_OPS[] = {"^", "x", "++", "//", "**", "%%", "=", "\t"};

/* One request payload of the mix, as a C string in req; returns its length. */
static size_t make_request(struct calc *k, char *req)
{
    uint64_t *g = &k->rng;
    if (k->mixed % SLOTS == 0) { /* a fresh shuffle of the 64 slots */
        for (int i = SLOTS - 1; i > 0; i--) {
            int j = (int)(rng_next(g) % (uint64_t)(i + 1));
            char t = k->kinds[i];
            k->kinds[i] = k->kinds[j];
            k->kinds[j] = t;
        }
    }
    char kind = k->kinds[k->mixed % SLOTS], *p = req;
    uint64_t v = rng_next(g);
    switch (kind) {
    case 'z': /* division or modulo by zero */
        p = put_i64(p, operand(g), 0);
        p = put_str(p, v & 1 ? " / " : " % ");
        p = put_str(p, (const char *[]){"0", "-0", "000"}[v % 3]);
        break;
    case 'o': /* overflow, or its edge cases */
        switch (v % 6) {
        case 0:
            p = put_str(p, "9223372036854775807 + ");
            p = put_u64(p, 1 + (v >> 8) % 1000);
            break;
        case 1:
            p = put_str(p, "-9223372036854775808 - ");
            p = put_u64(p, 1 + (v >> 8) % 1000);
            break;
        case 2: /* each factor over sqrt(2^63): the product overflows whatever the signs */
            p = put_i64(p, (v & 256 ? -1 : 1) * (int64_t)(3037000500 + (v >> 10) % 100000), 0);
            p = put_str(p, " * ");
            p = put_i64(p, (v & 512 ? -1 : 1) * (int64_t)(3037000500 + (v >> 30) % 100000), 0);
            break;
        case 3: p = put_str(p, "-9223372036854775808 / -1"); break;
        case 4: p = put_str(p, "0 - -9223372036854775808"); break;
        default: p = put_str(p, "-9223372036854775808 % -1"); break; /* 0 0, not 4 */
        }
        break;
    case 'u': /* an unknown operator between valid operands */
        p = put_i64(p, operand(g), 0);
        *p++ = ' ';
        p = put_str(p, BAD_OPS[v % (sizeof BAD_OPS / sizeof *BAD_OPS)]);
        *p++ = ' ';
        p = put_i64(p, operand(g), 0);
        break;
    case 'm':
        p = put_str(p, MALFORMED[v % (sizeof MALFORMED / sizeof *MALFORMED)]);
        break;
    default: /* 'n' and 'p': an ordinary request, now and then with leading zeros */
        p = put_i64(p, operand(g), (v & 31) == 0);
        *p++ = ' ';
        *p++ = "+-*/%"[(v >> 8) % 5];
        *p++ = ' ';
        p = put_i64(p, operand(g), (v & 31) == 1);
        break;
    }
    *p = '\0';
    return (size_t)(p - req);
}

/* Queue one more request: into the ring (what its reply must be) and into
 * the output bytes (its frame). */
static void calc_enqueue(struct calc *k, int64_t now)
{
    struct pending *p = &k->ring[(k->head + k->owed) % opt.depth];
    char kind = k->kinds[k->mixed % SLOTS];
    size_t n;
    p->slow = opt.slow_permille && (int)(rng_next(&k->srng) % 1000) < opt.slow_permille;
    if (p->slow) { /* "X ~ M", whose reply is "0 X" */
        int64_t x = operand(&k->srng);
        char *e = put_i64(p->req, x, 0);
        e = put_str(e, " ~ ");
        e = put_u64(e, (uint64_t)opt.slow_ms);
        *e = '\0';
        n = (size_t)(e - p->req);
        p->want[0] = '0';
        p->want[1] = ' ';
        *put_i64(p->want + 2, x, 0) = '\0';
        kind = 'n';
    } else {
        n = make_request(k, p->req);
        expected_reply(p->req, n, p->want);
        k->mixed++;
    }
    if (k->len + FRAME_MAX > k->cap) { /* slide the unsent bytes down */
        memmove(k->out, k->out + k->off, (size_t)(k->len - k->off));
        k->len -= k->off;
        k->off = 0;
    }
    char *o = k->out + k->len;
    if (kind == 'p') { /* a zero-padded LEN ("0007@"), which the protocol allows */
        *o++ = '0';
        *o++ = '0';
        if (n < 10)
            *o++ = '0';
    }
    o = put_u64(o, n);
    *o++ = '@';
    memcpy(o, p->req, n);
    o += n;
    *o++ = '@';
    k->len = (int)(o - k->out);
    p->t0 = now;
    k->owed++;
    k->made++;
}

static void calc_interest(struct worker *w, struct conn *c, int out)
{
    if (c->calc->want_out == out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->calc->want_out = out;
}

static void calc_flush(struct worker *w, struct conn *c)
{
    struct calc *k = c->calc;
    while (k->off < k->len) {
        ssize_t n = send(c->fd, k->out + k->off, (size_t)(k->len - k->off), MSG_NOSIGNAL);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                calc_interest(w, c, 1);
                return;
            }
            conn_fail(w, c, "send", errno);
            return;
        }
        k->off += (int)n;
    }
    k->off = k->len = 0;
    calc_interest(w, c, 0);
}

static void calc_start(struct worker *w, struct conn *c)
{
    for (int i = 0; i < SLOTS; i++) /* 50 ordinary, 2 padded, 4+4+2+2 errors */
        c->calc->kinds[i] = i < 50 ? 'n' : i < 52 ? 'p' : i < 56 ? 'z' : i < 60 ? 'o' :
                            i < 62 ? 'u' : 'm';
    int64_t now = now_ns();
    for (int i = 0; i < opt.depth; i++)
        calc_enqueue(c->calc, now);
    calc_flush(w, c);
}

/* Printable, quoted-string style: \t, \x00, \" ... */
static const char *show(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            o += (size_t)sprintf(out + o, "\\%c", ch);
        else if (ch >= 0x20 && ch < 0x7f)
            out[o++] = (char)ch;
        else
            o += (size_t)sprintf(out + o, "\\x%02x", ch);
    }
    out[o] = '\0';
    return out;
}

/* A wrong reply or a bad frame: the stream is out of step, so this
 * connection is done.  The first few are printed with the request. */
static void calc_failed(struct worker *w, struct conn *c, const char *why)
{
    struct calc *k = c->calc;
    w->verify_failures++;
    if (atomic_fetch_add(&verify_reported, 1) < 3 && !opt.quiet) {
        char req[4 * REQ_MAX], got[4 * sizeof k->raw + 8];
        show(k->raw, (size_t)k->nraw, got, sizeof got);
        if (k->owed == 0) {
            fprintf(stderr, "loadgen: verify failure on connection %d: %s; no request was owed"
                            " a reply; the frame: \"%s\"\n", c->id, why, got);
        } else {
            struct pending *p = &k->ring[k->head];
            fprintf(stderr, "loadgen: verify failure on connection %d, request %ld: %s;"
                            " sent \"%s\", expected the reply \"%s\", got the frame \"%s\"\n",
                    c->id, k->made - k->owed, why,
                    show(p->req, strlen(p->req), req, sizeof req), p->want, got);
        }
    }
    c->dead = 1;
    conn_settle(c);
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
}

static void calc_bad_frame(struct worker *w, struct conn *c, const char *why)
{
    w->bad_frames++;
    calc_failed(w, c, why);
}

/* A whole reply frame has arrived (at time now): it must be the oldest
 * request's. */
static void calc_reply(struct worker *w, struct conn *c, int64_t now)
{
    struct calc *k = c->calc;
    if (k->owed == 0) {
        calc_failed(w, c, "a reply that no request asked for");
        return;
    }
    struct pending *p = &k->ring[k->head];
    size_t wn = strlen(p->want);
    /* "5 0" (server busy): an answer, though not a result; counted apart */
    int busy = k->plen == 3 && memcmp(k->payload, "5 0", 3) == 0;
    if (!busy && ((size_t)k->plen != wn || memcmp(k->payload, p->want, wn) != 0)) {
        calc_failed(w, c, "wrong reply");
        return;
    }
    int64_t d = now - p->t0;
    if (!busy && p->slow && d < (int64_t)opt.slow_ms * 1000000) {
        calc_failed(w, c, "a \"~\" reply sooner than the wait it asked for");
        return;
    }
    k->head = (k->head + 1) % opt.depth;
    k->owed--;
    conn_settle(c);
    if (atomic_load(&phase) == 1) {
        if (busy) {
            w->busy++;
        } else {
            if (p->slow) {
                w->shist[bucket_of((uint64_t)d)]++;
                w->slow_rounds++;
                if (d > w->slow_max_ns)
                    w->slow_max_ns = d;
            } else {
                w->hist[bucket_of((uint64_t)d)]++;
                if (d > w->max_ns)
                    w->max_ns = d;
            }
            w->rounds++;
            c->rounds++;
            w->status[p->want[0] - '0']++;
        }
    }
    calc_enqueue(k, now);
}

/* Parse reply bytes as they come: a frame may be split anywhere.  One
 * clock reading per read(): every reply in it arrived at that moment, and
 * the requests they make room for leave together at the next flush. */
static void calc_input(struct worker *w, struct conn *c, const unsigned char *b, size_t n)
{
    int64_t now = now_ns();
    struct calc *k = c->calc;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = b[i];
        if (k->nraw < (int)sizeof k->raw)
            k->raw[k->nraw++] = (char)ch;
        switch (k->state) {
        case 0:
            if (ch >= '0' && ch <= '9') {
                if (++k->ndig > 4) {
                    calc_bad_frame(w, c, "bad frame: LEN has more than 4 digits");
                    return;
                }
                k->flen = k->flen * 10 + (ch - '0');
            } else if (ch == '@') {
                if (k->ndig == 0) {
                    calc_bad_frame(w, c, "bad frame: no LEN before the '@'");
                    return;
                }
                if (k->flen > LEN_MAX) {
                    calc_bad_frame(w, c, "bad frame: LEN over 1024");
                    return;
                }
                k->plen = 0;
                k->state = k->flen ? 1 : 2;
            } else {
                calc_bad_frame(w, c, "bad frame: a byte that is neither a digit nor '@' in LEN");
                return;
            }
            break;
        case 1:
            k->payload[k->plen++] = (char)ch;
            if (k->plen == k->flen)
                k->state = 2;
            break;
        default:
            if (ch != '@') {
                calc_bad_frame(w, c, "bad frame: the byte after the payload is not '@'");
                return;
            }
            calc_reply(w, c, now);
            if (c->dead)
                return;
            k->state = k->ndig = k->flen = k->nraw = 0;
            break;
        }
    }
}

static void calc_read(struct worker *w, struct conn *c, unsigned char *buf)
{
    for (;;) {
        ssize_t n = recv(c->fd, buf, READ_BUF, 0);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            conn_fail(w, c, "recv", errno);
            return;
        }
        if (n == 0) {
            char what[96];
            snprintf(what, sizeof what, "the server closed the connection with %d replies owed",
                     c->calc->owed);
            conn_fail(w, c, what, 0);
            return;
        }
        if (atomic_load(&phase) >= 2)
            continue; /* window over: drain, check nothing, send nothing */
        calc_input(w, c, buf, (size_t)n);
        if (c->dead)
            return;
        calc_flush(w, c); /* one send for every request these replies made room for */
        if (c->dead)
            return;
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    unsigned char *buf = malloc(READ_BUF);
    struct epoll_event evs[256];
    if (!buf) {
        perror("loadgen: malloc");
        exit(1);
    }
    for (int i = 0; i < w->n; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->conns[i]};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->conns[i].fd, &ev) == -1) {
            perror("loadgen: epoll_ctl");
            exit(1);
        }
        if (opt.calc)
            calc_start(w, &w->conns[i]);
        else
            round_start(w, &w->conns[i]);
    }
    while (atomic_load(&phase) < 3) {
        int k = epoll_wait(w->epfd, evs, 256, 20);
        if (k == -1) {
            if (errno == EINTR)
                continue;
            perror("loadgen: epoll_wait");
            exit(1);
        }
        for (int i = 0; i < k; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->dead)
                continue;
            if (opt.calc) {
                if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                    calc_read(w, c, buf);
                if (!c->dead && (evs[i].events & EPOLLOUT))
                    calc_flush(w, c);
                continue;
            }
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                conn_read(w, c, buf);
            if (!c->dead && (evs[i].events & EPOLLOUT)) {
                conn_write(w, c);
                if (!c->dead && c->sent == opt.size) {
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
        }
    }
    free(buf);
    return NULL;
}

/* ---------- connecting -------------------------------------------------------- */

/* Where to connect: an IPv4 address and port, or a Unix-domain socket. */
struct target {
    struct sockaddr_storage ss;
    socklen_t len;
};

/* Start one connection.  TCP: nonblocking, its handshake finished by
 * connect_all's epoll.  AF_UNIX: a nonblocking connect() fails with EAGAIN
 * instead of waiting when the listener's backlog is full, so it connects
 * blocking (bounded by the deadline through SO_SNDTIMEO), then turns
 * nonblocking; *done says it is already connected. */
static int connect_start(const struct target *to, int64_t deadline, int *done)
{
    int un = to->ss.ss_family == AF_UNIX;
    *done = 0;
    int fd = socket(to->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | (un ? 0 : SOCK_NONBLOCK), 0);
    if (fd == -1)
        return -1;
    if (un) {
        int64_t left = deadline - now_ns();
        if (left < 1000000)
            left = 1000000;
        struct timeval tv = {(time_t)(left / 1000000000), (suseconds_t)(left % 1000000000 / 1000)};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, (const struct sockaddr *)&to->ss, to->len) == -1) {
            int e = errno == EINPROGRESS || errno == EAGAIN ? ETIMEDOUT : errno;
            close(fd);
            errno = e;
            return -1;
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        *done = 1;
        return fd;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)&to->ss, to->len) == -1 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Open n connections, at most 256 handshakes in flight at once.  fds[i]
 * is -1 for a connection that failed or did not complete by the deadline.
 * Returns the number of failures. */
static int connect_all(const struct target *to, int *fds, int n, int64_t deadline)
{
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    int next = 0, pending = 0, failed = 0, first_err = 0;
    char *inprog = calloc((size_t)(n ? n : 1), 1);
    struct epoll_event evs[256];
    if (epfd == -1 || !inprog) {
        perror("loadgen: connect setup");
        exit(1);
    }
    while (next < n || pending > 0) {
        while (next < n && pending < 256) {
            int done;
            int fd = connect_start(to, deadline, &done);
            fds[next] = fd;
            if (fd == -1) {
                if (!first_err)
                    first_err = errno;
                failed++;
            } else if (!done) {
                struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)next};
                epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
                inprog[next] = 1;
                pending++;
            }
            next++;
        }
        if (pending == 0)
            continue; /* all connected at once (AF_UNIX), or all failed */
        int64_t left = (deadline - now_ns()) / 1000000;
        if (left <= 0)
            break;
        int k = epoll_wait(epfd, evs, 256, left > 1000 ? 1000 : (int)left);
        for (int i = 0; i < k; i++) {
            int idx = (int)evs[i].data.u32, err = 0;
            socklen_t len = sizeof err;
            getsockopt(fds[idx], SOL_SOCKET, SO_ERROR, &err, &len);
            epoll_ctl(epfd, EPOLL_CTL_DEL, fds[idx], NULL);
            inprog[idx] = 0;
            pending--;
            if (err) {
                if (!first_err)
                    first_err = err;
                close(fds[idx]);
                fds[idx] = -1;
                failed++;
            }
        }
    }
    for (int i = 0; i < n; i++) {
        if (i >= next || inprog[i]) { /* never started, or timed out */
            if (i < next)
                close(fds[i]);
            fds[i] = -1;
            failed++;
            if (!first_err)
                first_err = ETIMEDOUT;
        }
    }
    if (failed && !opt.quiet)
        fprintf(stderr, "loadgen: %d of %d connections failed (first: %s)\n", failed, n,
                strerror(first_err));
    free(inprog);
    close(epfd);
    return failed;
}

static void close_rst(int fd)
{
    struct linger lg = {1, 0}; /* RST on close: no TIME_WAIT left behind */
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

/* ---------- the driver's handshake (-S) ------------------------------------------ */

static void sync_point(const char *what)
{
    if (!opt.sync)
        return;
    fprintf(stderr, "window %s\n", what);
    fflush(stderr);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) {
        /* the driver went away: carry on without it */
        opt.sync = 0;
    }
}

/* Watch the idle connections until the deadline: none may be closed. */
static long watch_idle(int epfd, int64_t deadline)
{
    long lost = 0;
    struct epoll_event evs[256];
    for (;;) {
        int64_t left = (deadline - now_ns()) / 1000000;
        if (left <= 0)
            return lost;
        int k = epoll_wait(epfd, evs, 256, (int)left);
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            char b[512];
            ssize_t r = recv(fd, b, sizeof b, MSG_DONTWAIT);
            if (r > 0)
                continue; /* an idle connection got bytes it never asked for: ignore */
            lost++;
            epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
        }
    }
}

/* p50, p90, p99, p99.9 in µs of the n values in hist, the largest max_ns. */
static void percentiles(const uint64_t *hist, long n, int64_t max_ns, double lat[4])
{
    static const double pct[4] = {50, 90, 99, 99.9};
    for (int p = 0; p < 4; p++) {
        lat[p] = 0;
        if (n <= 0)
            continue;
        uint64_t want = (uint64_t)((double)n * pct[p] / 100.0 + 0.5), seen = 0;
        if (want < 1)
            want = 1;
        for (int b = 0; b < NBUCKETS; b++) {
            seen += hist[b];
            if (seen >= want) {
                /* a bucket's middle can lie past the largest value seen */
                lat[p] = bucket_value(b) < (double)max_ns ? bucket_value(b) / 1000.0
                                                           : (double)max_ns / 1000.0;
                break;
            }
        }
    }
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---------- main -------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"proto", required_argument, NULL, 'P'},
        {"depth", required_argument, NULL, 'D'},
        {"slow-permille", required_argument, NULL, 'K'},
        {"slow-ms", required_argument, NULL, 'M'},
        {"unix", required_argument, NULL, 'U'},
        {NULL, 0, NULL, 0},
    };
    int c, slow_given = 0;
    while ((c = getopt_long(argc, argv, "a:p:c:i:s:t:w:W:j:T:l:r:f:HSq", longopts, NULL)) != -1) {
        switch (c) {
        case 'P':
            if (strcmp(optarg, "calc") == 0)
                opt.calc = 1;
            else if (strcmp(optarg, "echo") != 0)
                usage();
            break;
        case 'D': opt.depth = (int)num(optarg, 1, MAX_DEPTH); break;
        case 'K': opt.slow_permille = (int)num(optarg, 0, 1000); slow_given = 1; break;
        case 'M': opt.slow_ms = (int)num(optarg, 0, 10000); slow_given = 1; break;
        case 'U':
            if (!*optarg || strlen(optarg) >= sizeof ((struct sockaddr_un *)0)->sun_path)
                usage();
            opt.unix_path = optarg;
            break;
        case 'a': opt.addr = optarg; break;
        case 'p': opt.port = (int)num(optarg, 1, 65535); break;
        case 'c': opt.conns = (int)num(optarg, 0, 1000000); break;
        case 'i': opt.idle = (int)num(optarg, 0, 1000000); break;
        case 's': opt.size = (int)num(optarg, 1, 16 << 20); break;
        case 't': opt.seconds = fnum(optarg); break;
        case 'w': opt.warmup = fnum(optarg); break;
        case 'W': opt.settle = fnum(optarg); break;
        case 'j': opt.threads = (int)num(optarg, 1, MAX_THREADS); break;
        case 'T': opt.connect_timeout = fnum(optarg); break;
        case 'l': opt.label = optarg; break;
        case 'r': opt.seed = (unsigned)num(optarg, 0, 0x7fffffff); break;
        case 'f':
            if (strcmp(optarg, "csv") == 0)
                opt.csv = 1;
            else if (strcmp(optarg, "json") != 0)
                usage();
            break;
        case 'H': opt.header = 1; break;
        case 'S': opt.sync = 1; break;
        case 'q': opt.quiet = 1; break;
        default: usage();
        }
    }
    if (optind != argc || opt.seconds <= 0 || (slow_given && !opt.calc))
        usage();
    if (opt.threads > opt.conns && opt.conns > 0)
        opt.threads = opt.conns;

    struct target to;
    memset(&to, 0, sizeof to);
    if (opt.unix_path) {
        struct sockaddr_un *sun = (struct sockaddr_un *)&to.ss;
        size_t n = strlen(opt.unix_path);
        sun->sun_family = AF_UNIX;
        memcpy(sun->sun_path, opt.unix_path, n);
        if (opt.unix_path[0] == '@') /* abstract: a leading NUL, and exactly NAME's length */
            sun->sun_path[0] = '\0';
        to.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
                             (opt.unix_path[0] == '@' ? 0 : 1));
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&to.ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((unsigned short)opt.port);
        if (inet_pton(AF_INET, opt.addr, &sin->sin_addr) != 1)
            usage();
        to.len = sizeof *sin;
    }

    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl; /* thousands of connections: take every fd we may */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    /* The pattern: random bytes, every value 0-255 likely to appear. */
    size_t plen = (size_t)opt.size + PATTERN_SPAN;
    pattern = malloc(plen);
    expect = malloc(plen);
    if (!pattern || !expect) {
        perror("loadgen: malloc");
        return 1;
    }
    srandom(opt.seed);
    for (size_t i = 0; i < plen; i++) {
        pattern[i] = (unsigned char)(random() >> 7);
        expect[i] = pattern[i] >= 'a' && pattern[i] <= 'z' ? pattern[i] - 32 : pattern[i];
    }

    /* Active connections first, so a server that serves one client at a
     * time is busy with an active one, not an idle one. */
    int total = opt.conns + opt.idle;
    int *fds = malloc(sizeof(int) * (size_t)(total ? total : 1));
    if (!fds) {
        perror("loadgen: malloc");
        return 1;
    }
    int64_t t_connect = now_ns();
    int64_t deadline = t_connect + (int64_t)(opt.connect_timeout * 1e9);
    int connect_failures = connect_all(&to, fds, opt.conns, deadline);
    connect_failures += connect_all(&to, fds + opt.conns, opt.idle, deadline);
    double connect_ms = (double)(now_ns() - t_connect) / 1e6;

    /* Idle connections stay in this thread's epoll set: any event on them
     * (EOF, RST) means the server dropped them. */
    int idle_ep = epoll_create1(EPOLL_CLOEXEC);
    for (int i = opt.conns; i < total; i++) {
        if (fds[i] == -1)
            continue;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = fds[i]};
        epoll_ctl(idle_ep, EPOLL_CTL_ADD, fds[i], &ev);
    }

    /* Spread the active connections over the threads. */
    struct conn *conns = calloc((size_t)(opt.conns ? opt.conns : 1), sizeof *conns);
    struct worker *ws = calloc((size_t)opt.threads, sizeof *ws);
    if (!conns || !ws) {
        perror("loadgen: calloc");
        return 1;
    }
    int nlive = 0;
    for (int i = 0; i < opt.conns; i++)
        if (fds[i] != -1)
            conns[nlive++] = (struct conn){.fd = fds[i], .id = i};
    /* Calculator state: each connection's ring of requests owed a reply
     * and the bytes of those not yet sent (at most one frame per request). */
    struct calc *calcs = NULL;
    struct pending *rings = NULL;
    char *outs = NULL;
    if (opt.calc && nlive > 0) {
        size_t cap = (size_t)(opt.depth + 1) * FRAME_MAX;
        calcs = calloc((size_t)nlive, sizeof *calcs);
        rings = calloc((size_t)nlive * (size_t)opt.depth, sizeof *rings);
        outs = malloc((size_t)nlive * cap);
        if (!calcs || !rings || !outs) {
            perror("loadgen: calloc");
            return 1;
        }
        for (int i = 0; i < nlive; i++) {
            calcs[i].ring = rings + (size_t)i * (size_t)opt.depth;
            calcs[i].out = outs + (size_t)i * cap;
            calcs[i].cap = (int)cap;
            calcs[i].rng = ((uint64_t)opt.seed << 32) ^ (uint64_t)conns[i].id;
            calcs[i].srng = calcs[i].rng ^ 0x5bd1e9955bd1e995ULL;
            conns[i].calc = &calcs[i];
        }
    }
    int per = opt.threads ? (nlive + opt.threads - 1) / opt.threads : 0;
    for (int t = 0, at = 0; t < opt.threads; t++) {
        ws[t].conns = conns + at;
        ws[t].n = nlive - at < per ? nlive - at : per;
        at += ws[t].n;
        ws[t].epfd = epoll_create1(EPOLL_CLOEXEC);
        if (ws[t].epfd == -1) {
            perror("loadgen: epoll_create1");
            return 1;
        }
    }

    atomic_store(&phase, 0);
    for (int t = 0; t < opt.threads; t++) {
        int e = pthread_create(&ws[t].tid, NULL, worker_main, &ws[t]);
        if (e) {
            fprintf(stderr, "loadgen: pthread_create: %s\n", strerror(e));
            return 1;
        }
    }
    int64_t t_warm = now_ns();
    long idle_lost = watch_idle(idle_ep, t_warm + (int64_t)(opt.warmup * 1e9));
    /* The warm-up also waits, at most SETTLE seconds more, until every
     * connection has had a reply: a server that forks or spawns per
     * connection is measured at work, not while still starting up.  One
     * that never answers some of them (01-blocking) shows them starved. */
    int64_t settle_end = now_ns() + (int64_t)(opt.settle * 1e9);
    while (atomic_load(&settled) < nlive && now_ns() < settle_end)
        idle_lost += watch_idle(idle_ep, now_ns() + 20 * 1000000);
    double warm_ms = (double)(now_ns() - t_warm) / 1e6;

    sync_point("start");
    double cpu0 = cpu_seconds();
    int64_t t0 = now_ns();
    atomic_store(&phase, 1);
    idle_lost += watch_idle(idle_ep, t0 + (int64_t)(opt.seconds * 1e9));
    atomic_store(&phase, 2);
    int64_t t1 = now_ns();
    double cpu1 = cpu_seconds();
    sync_point("end");
    atomic_store(&phase, 3);
    for (int t = 0; t < opt.threads; t++)
        pthread_join(ws[t].tid, NULL);

    /* Totals. */
    static uint64_t hist[NBUCKETS], phist[NBUCKETS], shist[NBUCKETS];
    long slow_rounds = 0;
    int64_t plain_max_ns = 0, slow_max_ns = 0;
    long rounds = 0, errors = connect_failures + idle_lost, vfail = 0;
    long status[5] = {0}, busy = 0, bad_frames = 0;
    int64_t max_ns = 0;
    for (int t = 0; t < opt.threads; t++) {
        for (int s = 0; s < 5; s++)
            status[s] += ws[t].status[s];
        busy += ws[t].busy;
        bad_frames += ws[t].bad_frames;
        for (int b = 0; b < NBUCKETS; b++) {
            phist[b] += ws[t].hist[b];
            shist[b] += ws[t].shist[b];
            hist[b] += ws[t].hist[b] + ws[t].shist[b];
        }
        slow_rounds += ws[t].slow_rounds;
        if (ws[t].max_ns > plain_max_ns)
            plain_max_ns = ws[t].max_ns;
        if (ws[t].slow_max_ns > slow_max_ns)
            slow_max_ns = ws[t].slow_max_ns;
        rounds += ws[t].rounds;
        errors += ws[t].errors;
        vfail += ws[t].verify_failures;
        if (ws[t].max_ns > max_ns)
            max_ns = ws[t].max_ns;
        if (ws[t].slow_max_ns > max_ns)
            max_ns = ws[t].slow_max_ns;
    }
    if (idle_lost && !opt.quiet)
        fprintf(stderr, "loadgen: the server closed %ld idle connections\n", idle_lost);
    long cmin = nlive ? -1 : 0, cmax = 0, starved = 0;
    for (int i = 0; i < nlive; i++) {
        long r = conns[i].rounds;
        if (cmin == -1 || r < cmin)
            cmin = r;
        if (r > cmax)
            cmax = r;
        if (r == 0)
            starved++;
    }
    double lat[4], plat[4], slat[4];
    percentiles(hist, rounds, max_ns, lat);
    percentiles(phist, rounds - slow_rounds, plain_max_ns, plat);
    percentiles(shist, slow_rounds, slow_max_ns, slat);
    double secs = (double)(t1 - t0) / 1e9;
    double rtps = (double)rounds / secs;
    double mibps = rtps * opt.size / (1024.0 * 1024.0);
    double cpu_pct = 100.0 * (cpu1 - cpu0) / secs;
    int client_bound = cpu_pct > 90.0 * opt.threads;
    if (client_bound && !opt.quiet)
        fprintf(stderr, "loadgen: warning: the load generator used %.0f%% CPU with %d thread(s):"
                        " it, not the server, may be the bottleneck\n", cpu_pct, opt.threads);

    if (opt.calc && opt.csv) {
        if (opt.header)
            printf("label,proto,conns,idle,depth,threads,seconds,connect_ms,connect_failures,"
                   "warmup_ms,requests,rps,p50_us,p90_us,p99_us,p999_us,max_us,conn_req_min,"
                   "conn_req_max,starved,status_ok,status_div0,status_badop,status_malformed,"
                   "status_overflow,busy,errors,verify_failures,bad_frames,client_cpu_pct,"
                   "client_bound%s\n", opt.slow_permille ? SLOW_CSV_HEADER : "");
        printf("%s,calc,%d,%d,%d,%d,%.3f,%.1f,%d,%.1f,%ld,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,"
               "%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%.1f,%d",
               opt.label, opt.conns, opt.idle, opt.depth, opt.threads, secs, connect_ms,
               connect_failures, warm_ms, rounds, rtps, lat[0], lat[1], lat[2], lat[3],
               (double)max_ns / 1000.0, cmin, cmax, starved, status[0], status[1], status[2],
               status[3], status[4], busy, errors, vfail, bad_frames, cpu_pct, client_bound);
        if (opt.slow_permille)
            printf(",%d,%d,%ld,%.1f,%.1f,%.1f,%.1f,%.1f,%ld,%.1f,%.1f,%.1f,%.1f,%.1f",
                   opt.slow_permille, opt.slow_ms, rounds - slow_rounds, plat[0], plat[1],
                   plat[2], plat[3], (double)plain_max_ns / 1000.0, slow_rounds, slat[0],
                   slat[1], slat[2], slat[3], (double)slow_max_ns / 1000.0);
        putchar('\n');
    } else if (opt.calc) {
        printf("{\"label\":\"%s\",\"proto\":\"calc\",\"conns\":%d,\"idle\":%d,\"depth\":%d,"
               "\"threads\":%d,\"seconds\":%.3f,\"connect_ms\":%.1f,\"connect_failures\":%d,"
               "\"warmup_ms\":%.1f,\"requests\":%ld,\"rps\":%.1f,\"p50_us\":%.1f,"
               "\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,"
               "\"conn_req_min\":%ld,\"conn_req_max\":%ld,\"starved\":%ld,\"status_ok\":%ld,"
               "\"status_div0\":%ld,\"status_badop\":%ld,\"status_malformed\":%ld,"
               "\"status_overflow\":%ld,\"busy\":%ld,\"errors\":%ld,\"verify_failures\":%ld,"
               "\"bad_frames\":%ld,\"client_cpu_pct\":%.1f,\"client_bound\":%s",
               opt.label, opt.conns, opt.idle, opt.depth, opt.threads, secs, connect_ms,
               connect_failures, warm_ms, rounds, rtps, lat[0], lat[1], lat[2], lat[3],
               (double)max_ns / 1000.0, cmin, cmax, starved, status[0], status[1], status[2],
               status[3], status[4], busy, errors, vfail, bad_frames, cpu_pct,
               client_bound ? "true" : "false");
        if (opt.slow_permille)
            printf(",\"slow_permille\":%d,\"slow_ms\":%d,\"plain_requests\":%ld,"
                   "\"plain_p50_us\":%.1f,\"plain_p90_us\":%.1f,\"plain_p99_us\":%.1f,"
                   "\"plain_p999_us\":%.1f,\"plain_max_us\":%.1f,\"slow_requests\":%ld,"
                   "\"slow_p50_us\":%.1f,\"slow_p90_us\":%.1f,\"slow_p99_us\":%.1f,"
                   "\"slow_p999_us\":%.1f,\"slow_max_us\":%.1f",
                   opt.slow_permille, opt.slow_ms, rounds - slow_rounds, plat[0], plat[1],
                   plat[2], plat[3], (double)plain_max_ns / 1000.0, slow_rounds, slat[0],
                   slat[1], slat[2], slat[3], (double)slow_max_ns / 1000.0);
        puts("}");
    } else if (opt.csv) {
        if (opt.header)
            printf("label,conns,idle,size,threads,seconds,connect_ms,connect_failures,"
                   "warmup_ms,round_trips,rtps,mibps,p50_us,p90_us,p99_us,p999_us,max_us,"
                   "conn_rt_min,conn_rt_max,starved,errors,verify_failures,client_cpu_pct,"
                   "client_bound\n");
        printf("%s,%d,%d,%d,%d,%.3f,%.1f,%d,%.1f,%ld,%.1f,%.6f,%.1f,%.1f,%.1f,%.1f,%.1f,"
               "%ld,%ld,%ld,%ld,%ld,%.1f,%d\n",
               opt.label, opt.conns, opt.idle, opt.size, opt.threads, secs, connect_ms,
               connect_failures, warm_ms, rounds, rtps, mibps, lat[0], lat[1], lat[2], lat[3],
               (double)max_ns / 1000.0, cmin, cmax, starved, errors, vfail, cpu_pct,
               client_bound);
    } else {
        printf("{\"label\":\"%s\",\"conns\":%d,\"idle\":%d,\"size\":%d,\"threads\":%d,"
               "\"seconds\":%.3f,\"connect_ms\":%.1f,\"connect_failures\":%d,"
               "\"warmup_ms\":%.1f,\"round_trips\":%ld,\"rtps\":%.1f,\"mibps\":%.6f,\"p50_us\":%.1f,"
               "\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,"
               "\"conn_rt_min\":%ld,\"conn_rt_max\":%ld,\"starved\":%ld,\"errors\":%ld,"
               "\"verify_failures\":%ld,\"client_cpu_pct\":%.1f,\"client_bound\":%s}\n",
               opt.label, opt.conns, opt.idle, opt.size, opt.threads, secs, connect_ms,
               connect_failures, warm_ms, rounds, rtps, mibps, lat[0], lat[1], lat[2], lat[3],
               (double)max_ns / 1000.0, cmin, cmax, starved, errors, vfail, cpu_pct,
               client_bound ? "true" : "false");
    }
    fflush(stdout);

    for (int i = 0; i < total; i++)
        if (fds[i] != -1)
            close_rst(fds[i]);
    for (int t = 0; t < opt.threads; t++)
        close(ws[t].epfd);
    close(idle_ep);
    free(ws);
    free(calcs);
    free(rings);
    free(outs);
    free(conns);
    free(fds);
    free(pattern);
    free(expect);
    return errors || vfail ? 1 : 0;
}
