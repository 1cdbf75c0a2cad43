/*
 * 09-framing client: a calculator you type into.
 *
 *     client [-p PORT] [-a HOST]        one expression per line on stdin
 *
 *     $ printf '12 + 30\n1 / 0\n' | client -p 9527
 *     42
 *     error: division by zero
 *
 * It pipelines: each line is framed and sent as soon as it is read,
 * without waiting for the replies before it, and the replies are printed
 * as they come back, in order (the server answers in order, so the n-th
 * reply belongs to the n-th request).  One poll() loop watches stdin and
 * the socket together, so a long input never deadlocks against replies
 * the client is not reading.  At the end of stdin it half-closes, prints
 * every reply still owed, and exits 0; if the server closes first, it
 * says so and exits 1.
 */
#define _POSIX_C_SOURCE 200809L

#include "wrap.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "calc.h"

/* A growable byte buffer. */
struct bytes {
    char *p;
    size_t len, cap;
};

static void bytes_add(struct bytes *b, const void *data, size_t n)
{
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

/* What each expression sent (or not) is waiting for, in input order: 'R'
 * a reply from the server, 'L' a local error already decided. */
static struct bytes owed;
static size_t owed_head;

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

/* Print the local errors at the head of the queue. */
static void print_local(void)
{
    while (owed_head < owed.len && owed.p[owed_head] == 'L') {
        printf("error: expression too long (over %d bytes)\n", FRAME_MAX_PAYLOAD);
        owed_head++;
    }
}

/* One line of input (without its newline): frame it, or refuse it. */
static void send_line(struct bytes *out, const char *line, size_t n)
{
    if (n > 0 && line[n - 1] == '\r')
        n--;
    if (n > FRAME_MAX_PAYLOAD) {
        bytes_add(&owed, "L", 1);
        return;
    }
    char head[16];
    int hn = snprintf(head, sizeof head, "%zu@", n);
    bytes_add(out, head, (size_t)hn);
    bytes_add(out, line, n);
    bytes_add(out, "@", 1);
    bytes_add(&owed, "R", 1);
}

/* One reply payload "STATUS RESULT": print it.  0, or -1 if malformed. */
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

int main(int argc, char **argv)
{
    struct server_opts opts;
    parse_args(argc, argv, &opts); /* the same -p/-a flags as the server */
    char port[16];
    snprintf(port, sizeof port, "%d", opts.port);
    int fd = Tcp_connect(opts.addr, port);
    Ignore_sigpipe();
    Set_nonblocking(fd);

    struct bytes in = {0}, out = {0}, line = {0};
    int stdin_open = 1, shut = 0, status = 0;
    char buf[65536];

    while (status == 0) {
        print_local();
        if (!stdin_open && out.len == 0 && !shut) {
            if (shutdown(fd, SHUT_WR) == -1)
                unix_error("shutdown", "server");
            shut = 1;
        }
        if (!stdin_open && owed_head == owed.len)
            break; /* every expression answered */
        fflush(stdout);

        struct pollfd pf[2] = {
            {.fd = fd, .events = POLLIN | (out.len ? POLLOUT : 0)},
            /* Stop reading stdin while much is unsent: bounded memory. */
            {.fd = stdin_open && out.len < (1u << 20) ? STDIN_FILENO : -1, .events = POLLIN},
        };
        if (poll(pf, 2, -1) == -1) {
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
                if (line.len) /* a last line without its newline */
                    send_line(&out, line.p, line.len);
                line.len = 0;
            }
            for (ssize_t i = 0; i < n; i++) {
                if (buf[i] == '\n') {
                    send_line(&out, line.p, line.len);
                    line.len = 0;
                } else if (line.len <= FRAME_MAX_PAYLOAD + 1) {
                    bytes_add(&line, &buf[i], 1); /* longer: too long anyway */
                }
            }
        }
        if (pf[0].revents & POLLOUT) {
            ssize_t w = send(fd, out.p, out.len, MSG_NOSIGNAL);
            if (w == -1 && errno != EAGAIN && errno != EINTR) {
                unix_warn("send", "server");
                status = 1;
                break;
            }
            if (w > 0)
                bytes_drop(&out, (size_t)w);
        }
        if (pf[0].revents & (POLLIN | POLLERR | POLLHUP)) {
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n == -1 && errno != EAGAIN && errno != EINTR) {
                unix_warn("recv", "server");
                status = 1;
                break;
            }
            if (n == 0) {
                err_msg("client: the server closed the connection with %zu replies owed",
                        owed.len - owed_head);
                status = 1;
                break;
            }
            if (n > 0)
                bytes_add(&in, buf, (size_t)n);
            size_t used = 0;
            for (;;) {
                const char *payload;
                size_t plen;
                ssize_t len = frame_next(in.p + used, in.len - used, &payload, &plen);
                if (len == 0)
                    break;
                if (len < 0 || print_reply(payload, plen) == -1) {
                    err_msg("client: the server sent a bad frame");
                    status = 1;
                    break;
                }
                used += (size_t)len;
                owed_head++; /* the 'R' this reply answers */
                print_local();
            }
            bytes_drop(&in, used);
        }
    }
    fflush(stdout);
    close(fd);
    free(in.p);
    free(out.p);
    free(line.p);
    free(owed.p);
    return status;
}
