/*
 * 14-timers client: lab 09's calculator client that stays connected.
 *
 *     client [-p PORT] [-a HOST]        one expression per line on stdin
 *
 * As lab 09's: each line is framed and sent at once (pipelined), each
 * reply printed in order, as RESULT or "error: WHY"; at the end of stdin
 * it half-closes, prints the replies still owed, and exits 0.  Two things
 * are new:
 *
 *   - heartbeats: a 4@PING@ from the server is answered 4@PONG@ at once,
 *     so a server run with -k never closes a client that is merely quiet
 *     (a line "PING" is sent as it is, and its answer printed: PONG);
 *   - reconnecting: when the connection drops (or cannot be made), it
 *     connects again after 50 ms, then 100, 200, ... doubling up to 1 s
 *     (exponential backoff: a server that is down or restarting is not
 *     hammered by every client at once), and sends again every request
 *     that has not been answered (a calculation can safely be asked
 *     twice).  A connection on which a frame arrived is a good one: the
 *     next drop starts again at 50 ms.  After 6 attempts in a row with
 *     nothing coming back it gives up: "error: ..." on stderr, exit 1.
 *
 * One poll() loop watches stdin and the socket (and, while disconnected,
 * times the next attempt).
 *
 * YOUR TASK: TODOs 8-10 (after timer.c's and server.c's).  The lab 09
 * client's parts (framing lines, printing replies, the poll loop) are
 * given; what is new is yours.
 */
#define _POSIX_C_SOURCE 200809L

#include "wrap.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "calc.h"

#define BACKOFF_FIRST_MS 50
#define BACKOFF_MAX_MS 1000
#define ATTEMPTS 6 /* in a row with nothing back: give up */

/* A growable byte buffer. */
struct bytes {
    char *p;
    size_t len, cap;
};

static void bytes_add(struct bytes *b, const void *data, size_t n)
{
    if (n == 0)
        return; /* data may be NULL then (an empty buffer), and memcpy must not see it */
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            app_error("client: out of memory");
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void bytes_drop(struct bytes *b, size_t n)
{
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What each expression is waiting for, in input order: 'R' a reply from
 * the server, 'L' a local error already decided. */
static struct bytes owed;
static size_t owed_head;
/* The frames of the requests not answered yet, oldest first: sent again
 * after a reconnect. */
static struct bytes unanswered;
/* The bytes still to send on the current connection: requests, and the
 * PONGs (appended whole, so they fall between frames). */
static struct bytes wire;

static const char *why(int status)
{
    switch (status) {
    case CALC_DIV_ZERO: return "division by zero";
    case CALC_BAD_OP: return "unknown operator";
    case CALC_MALFORMED: return "malformed expression";
    case CALC_OVERFLOW: return "overflow";
    case CALC_BUSY: return "server busy";
    case CALC_BAD_FRAME: return "bad frame";
    default: return "unknown status";
    }
}

static void print_local(void)
{
    while (owed_head < owed.len && owed.p[owed_head] == 'L') {
        printf("error: expression too long (over %d bytes)\n", FRAME_MAX_PAYLOAD);
        owed_head++;
    }
}

static void send_line(const char *line, size_t n, int connected)
{
    if (n > 0 && line[n - 1] == '\r')
        n--;
    if (n > FRAME_MAX_PAYLOAD) {
        bytes_add(&owed, "L", 1);
        return;
    }
    char head[16];
    int hn = snprintf(head, sizeof head, "%zu@", n);
    size_t start = unanswered.len;
    bytes_add(&unanswered, head, (size_t)hn);
    bytes_add(&unanswered, line, n);
    bytes_add(&unanswered, "@", 1);
    if (connected) /* else it goes out with the rest at the next connect */
        bytes_add(&wire, unanswered.p + start, unanswered.len - start);
    bytes_add(&owed, "R", 1);
}

static int print_reply(const char *p, size_t n)
{
    char text[40];
    if (n >= sizeof text)
        return -1;
    memcpy(text, p, n);
    text[n] = '\0';
    int status;
    long long result;
    char extra;
    if (sscanf(text, "%d %lld%c", &status, &result, &extra) != 2)
        return -1;
    if (status == CALC_OK)
        printf("%lld\n", result);
    else
        printf("error: %s\n", why(status));
    return 0;
}

/* TODO 8: one connect attempt to host:port (getaddrinfo, socket,
 * connect; the first address that answers), made non-blocking: the fd, or
 * -1 with errno, never exiting (the caller retries). */
static int connect_once(const char *host, const char *port)
{
    (void)host;
    (void)port;
    app_error("TODO 8: connect_once() in client.c is not written yet");
}

int main(int argc, char **argv)
{
    struct server_opts opts;
    parse_args(argc, argv, &opts);
    char port[16];
    snprintf(port, sizeof port, "%d", opts.port);
    Ignore_sigpipe();

    struct bytes in = {0}, line = {0};
    int fd = -1, stdin_open = 1, shut = 0, status = 0;
    int failures = 0;        /* attempts in a row that brought nothing back */
    int good = 0;            /* a frame came on this connection */
    long long delay = BACKOFF_FIRST_MS, next_try = 0;
    char buf[65536];
    char lastwhy[128] = "";

    for (;;) {
        print_local();
        if (!stdin_open && owed_head == owed.len)
            break; /* every expression answered */

        if (fd == -1 && now_ms() >= next_try) {
            fd = connect_once(opts.addr, port);
            if (fd == -1) {
                snprintf(lastwhy, sizeof lastwhy, "connect: %s", strerror(errno));
            } else {
                /* A new connection: every request not answered goes again. */
                wire.len = 0;
                bytes_add(&wire, unanswered.p, unanswered.len);
                in.len = 0;
                shut = good = 0;
            }
        }
        if (fd == -1 && now_ms() >= next_try) {
            /* That attempt failed. */
            if (++failures >= ATTEMPTS) {
                err_msg("error: cannot reach the server at %s:%s after %d attempts (%s)",
                        opts.addr, port, failures, lastwhy);
                status = 1;
                break;
            }
            next_try = now_ms() + delay;
            delay = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2;
        }
        if (fd != -1 && !stdin_open && wire.len == 0 && !shut) {
            if (shutdown(fd, SHUT_WR) == 0)
                shut = 1;
        }
        fflush(stdout);

        int timeout = -1;
        if (fd == -1) {
            long long left = next_try - now_ms();
            timeout = left < 0 ? 0 : (int)left;
        }
        struct pollfd pf[2] = {
            {.fd = fd, .events = POLLIN | (wire.len ? POLLOUT : 0)},
            {.fd = stdin_open && unanswered.len < (1u << 20) ? STDIN_FILENO : -1, .events = POLLIN},
        };
        if (poll(pf, 2, timeout) == -1) {
            if (errno == EINTR)
                continue;
            unix_error("poll", NULL);
        }

        if (pf[1].revents) {
            ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
            if (n == -1 && errno != EINTR && errno != EAGAIN)
                unix_error("read", "stdin");
            if (n == 0) {
                stdin_open = 0;
                if (line.len)
                    send_line(line.p, line.len, fd != -1);
                line.len = 0;
            }
            for (ssize_t i = 0; i < n; i++) {
                if (buf[i] == '\n') {
                    send_line(line.p, line.len, fd != -1);
                    line.len = 0;
                } else if (line.len <= FRAME_MAX_PAYLOAD + 1) {
                    bytes_add(&line, &buf[i], 1);
                }
            }
        }
        if (fd == -1)
            continue;

        int dropped = 0;
        if (pf[0].revents & POLLOUT) {
            ssize_t w = send(fd, wire.p, wire.len, MSG_NOSIGNAL);
            if (w == -1 && errno != EAGAIN && errno != EINTR) {
                snprintf(lastwhy, sizeof lastwhy, "send: %s", strerror(errno));
                dropped = 1;
            }
            if (w > 0)
                bytes_drop(&wire, (size_t)w);
        }
        if (!dropped && (pf[0].revents & (POLLIN | POLLERR | POLLHUP))) {
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n == -1 && errno != EAGAIN && errno != EINTR) {
                snprintf(lastwhy, sizeof lastwhy, "recv: %s", strerror(errno));
                dropped = 1;
            } else if (n == 0) {
                snprintf(lastwhy, sizeof lastwhy, "the server closed the connection");
                dropped = 1;
            } else if (n > 0) {
                bytes_add(&in, buf, (size_t)n);
            }
            size_t used = 0;
            while (!dropped) {
                const char *payload;
                size_t plen;
                ssize_t len = frame_next(in.p + used, in.len - used, &payload, &plen);
                if (len == 0)
                    break;
                if (len < 0) {
                    err_msg("client: the server sent a bad frame");
                    snprintf(lastwhy, sizeof lastwhy, "a bad frame");
                    dropped = 1;
                    break;
                }
                used += (size_t)len;
                good = 1;
                if (plen == 4 && memcmp(payload, "PING", 4) == 0) {
                    /* TODO 10: answer 4@PONG@ (whole, after what waits in
                     * wire), unless our sending side is shut. */
                    app_error("TODO 10: the client does not answer PING yet");
                }
                /* A PONG answers a line "PING" the user typed (this
                 * client sends no PING of its own): it prints PONG. */
                int pong = plen == 4 && memcmp(payload, "PONG", 4) == 0;
                if (pong && owed_head < owed.len)
                    printf("PONG\n");
                if (owed_head == owed.len || (!pong && print_reply(payload, plen) == -1)) {
                    err_msg("client: the server sent a reply nobody asked for");
                    snprintf(lastwhy, sizeof lastwhy, "an unexpected reply");
                    dropped = 1;
                    break;
                }
                owed_head++;
                /* That request is answered: it is not sent again. */
                const char *p;
                size_t pl;
                ssize_t flen = frame_next(unanswered.p, unanswered.len, &p, &pl);
                if (flen > 0)
                    bytes_drop(&unanswered, (size_t)flen);
                print_local();
            }
            if (!dropped)
                bytes_drop(&in, used);
        }
        if (dropped) {
            /* TODO 9: the connection is gone.  Close it; a connection on
             * which a frame came (good) resets the backoff (failures 0,
             * delay BACKOFF_FIRST_MS); if nothing more is owed and stdin is
             * done, the loop ends by itself; otherwise count a failure
             * (give up at ATTEMPTS: a message on stderr, status 1) and
             * schedule the next attempt at now + delay, doubling delay up
             * to BACKOFF_MAX_MS.  The requests still unanswered are sent
             * again on the next connection (the code above does that). */
            app_error("TODO 9: the client does not reconnect yet");
        }
    }
    fflush(stdout);
    if (fd != -1)
        close(fd);
    free(in.p);
    free(line.p);
    free(owed.p);
    free(unanswered.p);
    free(wire.p);
    return status;
}
