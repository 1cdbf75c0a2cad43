/*
 * wrap.c - see wrap.h for the two layers and when to use which.
 *
 * Every loop here retries EINTR the same way, so that a signal handler
 * installed without SA_RESTART (on_stop_signals) never turns into an
 * error the caller has to handle:
 *     do r = call(); while (r == -1 && errno == EINTR);
 */
#define _POSIX_C_SOURCE 200809L

#include "wrap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

/* ================= the command line ===================================== */

static void usage(FILE *to, const char *prog, const struct more_args *more)
{
    int w = more && more->width > 7 ? more->width : 7; /* "-p PORT" */
    fprintf(to, "usage: %s [-p PORT] [-a ADDR] [-v]%s%s\n", prog, more ? " " : "",
            more ? more->synopsis : "");
    fprintf(to, "  %-*s  port to listen on, 0-65535 (default %d; 0 = any free port)\n", w,
            "-p PORT", DEFAULT_PORT);
    fprintf(to, "  %-*s  IPv4 address to listen on (default %s)\n", w, "-a ADDR", DEFAULT_ADDR);
    fprintf(to, "  %-*s  verbose: log more to stderr\n", w, "-v");
    if (more && more->help)
        more->help(to, w);
}

static void bad_args(const char *prog, const char *why, const char *what,
                     const struct more_args *more)
{
    fprintf(stderr, "%s: %s: '%s'\n", prog, why, what);
    usage(stderr, prog, more);
    exit(2);
}

void parse_args(int argc, char **argv, struct server_opts *opts)
{
    parse_args_more(argc, argv, opts, NULL);
}

void parse_args_more(int argc, char **argv, struct server_opts *opts, const struct more_args *more)
{
    const char *prog = argc > 0 && argv[0] ? argv[0] : "server";
    opts->addr = DEFAULT_ADDR;
    opts->port = DEFAULT_PORT;
    opts->verbose = 0;

    /* A hand-written loop instead of getopt(3): it is short, and it
     * rejects what getopt would let through ("-p 80x", "-p -1"). */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout, prog, more);
            exit(0);
        } else if (strcmp(a, "-v") == 0) {
            opts->verbose++;
        } else if (strcmp(a, "-p") == 0 || strcmp(a, "-a") == 0) {
            if (i + 1 >= argc)
                bad_args(prog, "option needs a value", a, more);
            const char *val = argv[++i];
            if (a[1] == 'p') {
                long p = parse_count(val, 0, 65535);
                if (p < 0)
                    bad_args(prog, "port must be a number from 0 to 65535", val, more);
                opts->port = (int)p;
            } else {
                struct in_addr tmp;
                if (inet_pton(AF_INET, val, &tmp) != 1)
                    bad_args(prog, "address must be a numeric IPv4 address", val, more);
                opts->addr = val;
            }
        } else {
            const char *next = i + 1 < argc ? argv[i + 1] : NULL, *why = "unknown argument";
            int used = 0;
            const struct num_arg *n = more ? more->nums : NULL;
            while (n && n->name && strcmp(a, n->name) != 0)
                n++;
            if (n && n->name) {
                long v = next ? parse_count(next, n->lo, n->hi) : -1;
                why = next ? n->why : "option needs a value";
                used = v < 0 ? -1 : 2;
                if (v >= 0)
                    *n->value = v;
            } else if (more && more->take) {
                used = more->take(a, next, &why, more->ctx);
            }
            if (used <= 0)
                bad_args(prog, why, used < 0 && next ? next : a, more);
            i += used - 1;
        }
    }
}

long parse_count(const char *s, long lo, long hi)
{
    long v = 0;
    size_t n = strlen(s);
    if (n == 0 || n > 18)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v >= lo && v <= hi ? v : -1;
}

/* ================= error reporters ====================================== */

/* Write "<fmt...><sep><reason>\n" to stderr as one line.  A line short
 * enough for the local buffer (all of ours) goes out in a single write, so
 * it cannot be split by another process writing to the same stderr;
 * longer ones are written whole under stdio's lock, which still keeps
 * other threads of this process out.  errno is left as it was. */
static void vreport(const char *fmt, va_list ap, const char *sep, const char *reason)
{
    int saved = errno;
    char line[1024];
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    if (n >= 0 && (size_t)n < sizeof line) {
        fprintf(stderr, "%s%s%s\n", line, sep, reason);
    } else {
        flockfile(stderr);
        vfprintf(stderr, fmt, again);
        fprintf(stderr, "%s%s\n", sep, reason);
        funlockfile(stderr);
    }
    va_end(again);
    errno = saved;
}

static void report(const char *call, const char *object, const char *reason)
{
    int saved = errno;
    if (object)
        fprintf(stderr, "%s: %s: %s\n", call, object, reason);
    else
        fprintf(stderr, "%s: %s\n", call, reason);
    errno = saved;
}

void unix_warn(const char *call, const char *object)
{
    report(call, object, strerror(errno));
}

void unix_error(const char *call, const char *object)
{
    unix_warn(call, object);
    exit(1);
}

void unix_warnf(const char *fmt, ...)
{
    /* strerror before anything else can change errno. */
    const char *reason = strerror(errno);
    va_list ap;
    va_start(ap, fmt);
    vreport(fmt, ap, ": ", reason);
    va_end(ap);
}

void posix_warn(int code, const char *call, const char *object)
{
    report(call, object, strerror(code));
}

void posix_error(int code, const char *call, const char *object)
{
    posix_warn(code, call, object);
    exit(1);
}

void eai_error(int code, const char *call, const char *object)
{
    /* EAI_SYSTEM means "look at errno": gai_strerror() only says "System
     * error", which names no cause. */
    report(call, object, code == EAI_SYSTEM ? strerror(errno) : gai_strerror(code));
    exit(1);
}

void err_msg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(fmt, ap, "", "");
    va_end(ap);
}

void app_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(fmt, ap, "", "");
    va_end(ap);
    exit(1);
}

/* ================= lowercase layer ====================================== */

ssize_t readn(int fd, void *buf, size_t n)
{
    char *p = buf;
    size_t left = n;

    while (left > 0) {
        ssize_t r;
        do
            r = read(fd, p, left);
        while (r == -1 && errno == EINTR);
        if (r == -1)
            return -1;
        if (r == 0)
            break; /* EOF: return the short count */
        p += r;
        left -= (size_t)r;
    }
    return (ssize_t)(n - left);
}

ssize_t writen(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    size_t left = n;
    int is_socket = 1;

    while (left > 0) {
        ssize_t w;
        do {
            /* send(MSG_NOSIGNAL) turns "peer gone" into EPIPE instead of
             * SIGPIPE; plain write() for pipes and files. */
            w = is_socket ? send(fd, p, left, MSG_NOSIGNAL) : write(fd, p, left);
            if (w == -1 && errno == ENOTSOCK && is_socket) {
                is_socket = 0;
                w = write(fd, p, left);
            }
        } while (w == -1 && errno == EINTR);
        if (w == -1)
            return -1;
        p += w;
        left -= (size_t)w;
    }
    return (ssize_t)n;
}

void linebuf_init(struct linebuf *lb, int fd)
{
    lb->fd = fd;
    lb->pos = 0;
    lb->len = 0;
}

/* Refill lb->buf when it is empty.  1 = data, 0 = EOF, -1 = error. */
static int linebuf_fill(struct linebuf *lb)
{
    if (lb->pos < lb->len)
        return 1;
    ssize_t r;
    do
        r = read(lb->fd, lb->buf, sizeof lb->buf);
    while (r == -1 && errno == EINTR);
    if (r <= 0)
        return (int)r;
    lb->pos = 0;
    lb->len = (size_t)r;
    return 1;
}

ssize_t readline(struct linebuf *lb, char *out, size_t maxlen)
{
    if (maxlen == 0) {
        errno = EINVAL;
        return -1;
    }
    size_t got = 0;
    while (got + 1 < maxlen) {
        int f = linebuf_fill(lb);
        if (f == -1) {
            /* Bytes already taken from the buffer would be lost with a
             * bare -1 (EAGAIN on a non-blocking fd): return them; the next
             * call meets the error again (or EOF after a reset). */
            if (got > 0)
                break;
            return -1;
        }
        if (f == 0)
            break;
        /* Copy up to the newline, the end of the buffer or the room left. */
        size_t avail = lb->len - lb->pos;
        size_t room = maxlen - 1 - got;
        size_t take = avail < room ? avail : room;
        char *nl = memchr(lb->buf + lb->pos, '\n', take);
        if (nl)
            take = (size_t)(nl - (lb->buf + lb->pos)) + 1;
        memcpy(out + got, lb->buf + lb->pos, take);
        lb->pos += take;
        got += take;
        if (nl)
            break;
    }
    out[got] = '\0';
    return (ssize_t)got;
}

int set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags == -1)
        return -1;
    if (flags & O_NONBLOCK)
        return 0;
    return fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

int ignore_sigpipe(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGPIPE, &sa, NULL);
}

int on_stop_signals(void (*handler)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: blocking calls return EINTR */
    if (sigaction(SIGINT, &sa, NULL) == -1)
        return -1;
    return sigaction(SIGTERM, &sa, NULL);
}

int tcp_listen(const char *addr, int port)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((unsigned short)port);
    if (port < 0 || port > 65535 || inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
        errno = EINVAL;
        return -1;
    }

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd == -1)
        return -1;
    /* Without SO_REUSEADDR, a restart within ~60 s of the last run fails
     * with EADDRINUSE while old connections sit in TIME_WAIT. */
    int on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == -1 ||
        bind(fd, (struct sockaddr *)&sin, sizeof sin) == -1 ||
        listen(fd, SOMAXCONN) == -1) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

const char *sockaddr_str(const struct sockaddr *sa, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s->sin_addr, host, sizeof host);
        port = ntohs(s->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof host);
        port = ntohs(s->sin6_port);
    }
    snprintf(buf, len, "%s:%u", host, port);
    return buf;
}

const char *peer_str(int fd, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == -1) {
        snprintf(buf, len, "?");
        return buf;
    }
    return sockaddr_str((struct sockaddr *)&ss, buf, len);
}

int announce_listening(int listenfd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char name[ADDR_STRLEN];

    if (getsockname(listenfd, (struct sockaddr *)&ss, &sl) == -1)
        return -1;
    /* Tests and tools wait for exactly this line; flush it now, because
     * stdout is a pipe there and would otherwise sit in stdio's buffer. */
    if (printf("listening on %s\n", sockaddr_str((struct sockaddr *)&ss, name, sizeof name)) < 0 ||
        fflush(stdout) == EOF)
        return -1;
    return 0;
}

void upcase(char *buf, size_t n)
{
    /* Branch-free: 'a'..'z' are exactly the bytes whose distance above
     * 'a' is below 26 (as an unsigned byte, everything under 'a' wraps
     * round to 160 and more), and uppercase is 32 lower.  With an if per
     * byte, random payloads mispredict about every other byte (22 us per
     * 16 KiB here, 81% of lab 08's CPU at 16 KiB messages); this form the
     * compiler vectorizes (0.9 us), so make compare measures the servers'
     * I/O, not this loop.  Same result for every byte value. */
    unsigned char *p = (unsigned char *)buf;
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(p[i] - (((unsigned char)(p[i] - 'a') < 26u) << 5));
}

/* ================= shared policy ======================================== */

int accept_error_is_transient(int err)
{
    switch (err) {
    case EINTR:        /* a signal arrived while accept() waited */
    case ECONNABORTED: /* the client reset while it sat in the queue */
    case EPROTO:       /* the same, as some kernels report it */
    /* Linux's accept() passes on network errors already pending on the
     * new connection; accept(2) says to treat them like EAGAIN. */
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
#ifdef EHOSTDOWN
    case EHOSTDOWN:
#endif
#ifdef ENONET
    case ENONET:
#endif
        return 1;
    default:
        return 0;
    }
}

int spare_fd_open(void)
{
    int fd;
    do
        fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    while (fd == -1 && errno == EINTR);
    return fd;
}

int spare_fd_refuse(int listenfd, int *spare)
{
    /* A blocking listener would block below when nobody is waiting,
     * which is exactly the case this function exists to detect. */
    int flags = fcntl(listenfd, F_GETFL);
    if (flags == -1)
        return -1;
    if (!(flags & O_NONBLOCK)) {
        errno = EINVAL;
        return -1;
    }
    /* *spare is -1 if an earlier reopen failed: then there is nothing to
     * give up, but clients leaving may have freed a slot since, and the
     * accept below finds out. */
    if (*spare >= 0)
        close(*spare);
    *spare = -1;
    int c;
    do
        c = accept(listenfd, NULL, NULL);
    while (c == -1 && errno == EINTR);
    int saved = errno;
    /* Close the client BEFORE reopening the spare: it sits in the slot the
     * spare gave up, and with the table full the reopen would fail. */
    if (c >= 0)
        close(c);
    *spare = spare_fd_open();
    if (c >= 0)
        return 1;
    if (saved == EAGAIN || saved == EWOULDBLOCK)
        return 0;
    errno = saved;
    return -1;
}

int block_stop_signals(sigset_t *waitmask)
{
    sigset_t stop, old;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    /* pthread_sigmask, not sigprocmask: the latter is unspecified once a
     * process has threads.  It returns the error number. */
    int rc = pthread_sigmask(SIG_BLOCK, &stop, &old);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    /* The old mask minus the stop signals, not the old mask itself: if
     * they were blocked already (inherited from the parent), waiting with
     * the old mask would keep them blocked during the wait as well, and
     * the server could never be stopped. */
    if (waitmask) {
        *waitmask = old;
        sigdelset(waitmask, SIGINT);
        sigdelset(waitmask, SIGTERM);
    }
    return 0;
}

/* ================= Capitalised layer ==================================== */

int Socket(int domain, int type, int protocol)
{
    int fd = socket(domain, type, protocol);
    if (fd == -1)
        unix_error("socket", NULL);
    return fd;
}

void Setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
    if (setsockopt(fd, level, name, val, len) == -1)
        unix_error("setsockopt", NULL);
}

void Bind(int fd, const struct sockaddr *sa, socklen_t len)
{
    char name[ADDR_STRLEN];
    if (bind(fd, sa, len) == -1)
        unix_error("bind", sockaddr_str(sa, name, sizeof name));
}

void Listen(int fd, int backlog)
{
    if (listen(fd, backlog) == -1)
        unix_error("listen", NULL);
}

int Accept(int fd, struct sockaddr *sa, socklen_t *len)
{
    socklen_t want = len ? *len : 0;
    long pause_ms = 0; /* > 0 while out of fds */
    for (;;) {
        if (len)
            *len = want;
        int c = accept(fd, sa, len);
        if (c >= 0)
            return c;
        /* EINTR: a signal (SIGCHLD in lab 02).  ECONNABORTED, EPROTO and
         * the network errors: the client reset, or its network failed,
         * before we got to it.  None is the server's problem: try again. */
        if (accept_error_is_transient(errno))
            continue;
        /* Out of fds: the connection stays in the queue, so retrying at
         * once would spin.  Back off until clients leave and free fds. */
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            if (pause_ms == 0)
                unix_warn("accept", "listening socket (retrying until fds free up)");
            pause_ms = pause_ms ? (pause_ms * 2 > 1000 ? 1000 : pause_ms * 2) : 5;
            struct timespec ts = {pause_ms / 1000, (pause_ms % 1000) * 1000000L};
            while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
                ;
            continue;
        }
        unix_error("accept", "listening socket");
    }
}

void Connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    char name[ADDR_STRLEN];
    if (connect(fd, sa, len) == -1)
        unix_error("connect", sockaddr_str(sa, name, sizeof name));
}

void Close(int fd)
{
    /* Do not retry close() on EINTR: on Linux the fd is already gone. */
    if (close(fd) == -1)
        unix_error("close", NULL);
}

ssize_t Readn(int fd, void *buf, size_t n)
{
    ssize_t r = readn(fd, buf, n);
    if (r == -1)
        unix_error("readn", NULL);
    return r;
}

void Writen(int fd, const void *buf, size_t n)
{
    if (writen(fd, buf, n) == -1)
        unix_error("writen", NULL);
}

ssize_t Readline(struct linebuf *lb, char *out, size_t maxlen)
{
    ssize_t r = readline(lb, out, maxlen);
    if (r == -1)
        unix_error("readline", NULL);
    return r;
}

void Set_nonblocking(int fd)
{
    if (set_nonblocking(fd) == -1)
        unix_error("fcntl O_NONBLOCK", NULL);
}

void Ignore_sigpipe(void)
{
    if (ignore_sigpipe() == -1)
        unix_error("sigaction", "SIGPIPE");
}

int Stop_signalfd(int extra)
{
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    if (extra)
        sigaddset(&sigs, extra);
    /* pthread_sigmask: sigprocmask is unspecified once there are threads. */
    int rc = pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    if (rc != 0)
        posix_error(rc, "pthread_sigmask", NULL);
    int fd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd == -1)
        unix_error("signalfd", NULL);
    return fd;
}

int Fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
        unix_error("getrlimit", "RLIMIT_NOFILE");
    return rl.rlim_cur > (1 << 20) ? (1 << 20) : (int)rl.rlim_cur;
}

void On_stop_signals(void (*handler)(int))
{
    if (on_stop_signals(handler) == -1)
        unix_error("sigaction", "SIGINT/SIGTERM");
}

void Block_stop_signals(sigset_t *waitmask)
{
    if (block_stop_signals(waitmask) == -1)
        unix_error("pthread_sigmask", "SIGINT/SIGTERM");
}

int Tcp_listen(const char *addr, int port)
{
    int fd = tcp_listen(addr, port);
    if (fd == -1) {
        char name[ADDR_STRLEN];
        snprintf(name, sizeof name, "%s:%d", addr, port);
        unix_error("tcp_listen", name);
    }
    return fd;
}

int Tcp_connect(const char *host, const char *port)
{
    struct addrinfo hints, *res, *ai;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;

    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0)
        eai_error(rc, "getaddrinfo", host);

    int fd = -1, saved = 0;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd == -1) {
            saved = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd == -1) {
        char name[ADDR_STRLEN];
        snprintf(name, sizeof name, "%s:%s", host, port);
        errno = saved;
        unix_error("connect", name);
    }
    return fd;
}

void Announce_listening(int listenfd)
{
    if (announce_listening(listenfd) == -1)
        unix_error("announce_listening", "stdout");
}

pid_t Fork(void)
{
    pid_t p = fork();
    if (p == -1)
        unix_error("fork", NULL);
    return p;
}

void Pthread_create(pthread_t *t, const pthread_attr_t *attr,
                    void *(*fn)(void *), void *arg)
{
    int rc = pthread_create(t, attr, fn, arg);
    if (rc != 0)
        posix_error(rc, "pthread_create", NULL);
}

void Pthread_detach(pthread_t t)
{
    int rc = pthread_detach(t);
    if (rc != 0)
        posix_error(rc, "pthread_detach", NULL);
}

void *Malloc(size_t n)
{
    void *p = malloc(n);
    if (!p && n > 0)
        unix_error("malloc", NULL);
    return p;
}
