/*
 * wrap.h - the error-handling helpers every netlabs server links.
 *
 * Two layers, on purpose:
 *
 *   lowercase  readn(), writen(), readline(), tcp_listen(), ...
 *              Return -1 and leave errno set; never print, never exit.
 *              Use these inside a loop that serves many clients: one
 *              client's error must close that client, not the server.
 *
 *   Capitalised Socket(), Accept(), Writen(), Tcp_listen(), ...
 *              Call the lowercase function or the syscall, and on failure
 *              print "call: object: reason" to stderr and exit(1).
 *              Use these for setup, and in servers where one process
 *              serves one client (labs 01-03), where exiting is the
 *              right reaction.
 *
 * One reporter per error source: unix_error() for errno, posix_error()
 * for functions that return the error code (pthreads), eai_error() for
 * getaddrinfo()'s EAI_* codes (not "gai_error": with _GNU_SOURCE, glibc's
 * <netdb.h> declares a gai_error() of its own), app_error() for the
 * program's own errors, which have no error code.  Each has a twin that
 * reports and returns: unix_warn(), posix_warn(), err_msg().  unix_warnf()
 * and err_msg() take a printf format.
 *
 * A third part, "shared policy", holds decisions every server makes the
 * same way (which accept() errors are harmless, what to do out of fds,
 * how to wait for a stop signal), so that they are written once.
 */
#ifndef NETLABS_WRAP_H
#define NETLABS_WRAP_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

/* ---------- the shared command line: server [-p PORT] [-a ADDR] [-v] ---- */

#define DEFAULT_ADDR "127.0.0.1"
#define DEFAULT_PORT 9527

struct server_opts {
    const char *addr; /* -a, numeric IPv4, default 127.0.0.1 */
    int port;         /* -p, 0..65535, 0 = let the kernel choose */
    int verbose;      /* -v, may be given more than once */
};

/* Parse argv into *opts.  Bad arguments: a usage line on stderr, exit 2.
 * -h: the usage line on stdout, exit 0. */
void parse_args(int argc, char **argv, struct server_opts *opts);

/* A lab's option that takes a number: `name` N, from lo to hi, stored in
 * *value; anything else is a usage error saying `why`. */
struct num_arg {
    const char *name; /* "-i"; NULL ends a table of them */
    long lo, hi;
    long *value;
    const char *why; /* "-i and -k want milliseconds, 1 to 86400000" */
};

/* A lab's own options beside -p, -a, -v and -h (labs 10, 14, 15, 16 add
 * some): parse_args_more() parses both in one pass, with one usage.  The
 * numbers are a table (nums); take() is for the rest. */
struct more_args {
    const char *synopsis; /* after "[-v]" in the usage line: "[-i MS] [-k MS]" */
    int width;            /* of the usage's option column ("-t MIN:MAX": 10) */
    /* Prints the lab's own lines of the usage, after -p, -a and -v, with
     * the option names padded to `width` (as "  %-*s  %s\n"). */
    void (*help)(FILE *to, int width);
    /* Called for an argument that is not -p, -a, -v or -h, with the one
     * after it (NULL at the end).  Returns how many it used: 1, or 2 when
     * `next` was its value; 0 if `arg` is none of its options (a usage
     * error); -1 with *why set when the value is wrong or missing (a usage
     * error naming `next`, or `arg` when there is none).  May be NULL. */
    int (*take)(const char *arg, const char *next, const char **why, void *ctx);
    void *ctx;                   /* handed to take() */
    const struct num_arg *nums;  /* the numeric options, or NULL */
};

void parse_args_more(int argc, char **argv, struct server_opts *opts, const struct more_args *more);

/* The decimal number s (digits only: no sign, no blanks, at most 18 of
 * them) if it is from lo to hi, else -1.  For a lab's option values. */
long parse_count(const char *s, long lo, long hi);

/* ---------- error reporters ---------------------------------------------- */

/* Every reporter writes its whole line to stderr with a single write (up
 * to 1 KiB; a longer one is still written whole under stdio's lock), so
 * lines from several threads or processes (lab 02's children) do not mix.
 * The ones that return leave errno as they found it: the caller may still
 * be deciding what to do about the error it just reported. */

/* "call: object: strerror(errno)" on stderr.  object may be NULL. */
void unix_warn(const char *call, const char *object);
/* The same, then exit(1). */
void unix_error(const char *call, const char *object) __attribute__((noreturn));
/* A printf-style message, then ": strerror(errno)" and a newline, for
 * when "call: object" is not enough to say what failed:
 *     unix_warnf("read %s (fd %d)", name, fd);                          */
void unix_warnf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* For functions that return an error number instead of setting errno
 * (pthreads): "call: object: strerror(code)".  posix_warn() returns,
 * posix_error() then exits with status 1. */
void posix_warn(int code, const char *call, const char *object);
void posix_error(int code, const char *call, const char *object)
    __attribute__((noreturn));
/* For getaddrinfo() and getnameinfo() return codes. */
void eai_error(int code, const char *call, const char *object)
    __attribute__((noreturn));
/* A printf-style message and a newline on stderr, nothing else (no
 * errno): logs such as "connect 127.0.0.1:5000", and errors that are not
 * a failed call ("refuse ...: fd 1030 >= FD_SETSIZE"). */
void err_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same, then exit(1): the program cannot go on and no call's errno
 * says why (a starter that reaches a TODO, an impossible state). */
void app_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* ---------- lowercase layer: return -1, keep errno, never exit ------------ */

/* Read exactly n bytes unless EOF comes first.  Returns the count read
 * (less than n only at EOF), or -1 on error.  Retries EINTR. */
ssize_t readn(int fd, void *buf, size_t n);

/* Write all n bytes.  Returns n, or -1 on error (errno set; EPIPE when the
 * peer has gone: sockets are written with MSG_NOSIGNAL, so a closed peer
 * never raises SIGPIPE here).  Retries EINTR and short writes. */
ssize_t writen(int fd, const void *buf, size_t n);

/* A buffered line reader whose whole state lives in this struct, owned by
 * the caller: no static variables, so any number of threads may each read
 * their own connection at once. */
#define LINEBUF_SIZE 8192
struct linebuf {
    int fd;
    size_t pos; /* next unread byte in buf */
    size_t len; /* bytes valid in buf */
    char buf[LINEBUF_SIZE];
};

void linebuf_init(struct linebuf *lb, int fd);

/* Read one line, up to and including '\n', into out (at most maxlen - 1
 * bytes, then a terminating NUL).  A line longer than that is returned in
 * pieces.  Returns the byte count (without the NUL), 0 at EOF with nothing
 * read, -1 on error.  An error after part of a line returns that part
 * first (so EAGAIN on a non-blocking fd loses nothing); the next call
 * reports it.  The line may contain NUL bytes: use the count. */
ssize_t readline(struct linebuf *lb, char *out, size_t maxlen);

/* O_NONBLOCK on.  0 or -1. */
int set_nonblocking(int fd);

/* Ignore SIGPIPE for the whole process, so a write to a closed connection
 * fails with EPIPE instead of killing the server.  0 or -1. */
int ignore_sigpipe(void);

/* Install handler for SIGINT and SIGTERM without SA_RESTART, so a blocked
 * accept()/poll()/epoll_wait() returns EINTR and the loop can stop. */
int on_stop_signals(void (*handler)(int));

/* socket + SO_REUSEADDR + bind + listen(SOMAXCONN) on a numeric IPv4
 * address.  Returns the listening fd, or -1 with errno set (the socket is
 * closed on failure). */
int tcp_listen(const char *addr, int port);

/* Print "listening on ADDR:PORT" (the real port, from getsockname) on
 * stdout and flush it.  0 or -1. */
int announce_listening(int listenfd);

/* Format an IPv4/IPv6 socket address as "ADDR:PORT" into buf. */
#define ADDR_STRLEN 64
const char *sockaddr_str(const struct sockaddr *sa, char *buf, size_t len);
/* The peer of a connected socket as "ADDR:PORT" ("?" if unknown). */
const char *peer_str(int fd, char *buf, size_t len);

/* The service: map a-z to A-Z in place, leave every other byte alone. */
void upcase(char *buf, size_t n);

/* ---------- shared policy ------------------------------------------------- */

/* 1 if accept() failing with err is not the server's problem, so the
 * caller should simply try again (or go back to its event loop); 0 if it
 * is a real failure to report.  Transient: EINTR (a signal), ECONNABORTED
 * and EPROTO (a client that reset while it waited in the queue), and the
 * network errors Linux's accept() passes on from the new connection,
 * which accept(2) says to treat like EAGAIN: ENETDOWN, ENOPROTOOPT,
 * EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH.
 * Not on the list: EAGAIN/EWOULDBLOCK (on a non-blocking listener it
 * means "the queue is empty", a different decision: stop accepting for
 * now), and EMFILE/ENFILE/ENOBUFS/ENOMEM (out of resources: retrying at
 * once spins, see spare_fd_refuse() and Accept()). */
int accept_error_is_transient(int err);

/* Out of fds (EMFILE), accept() fails and the connection stays in the
 * queue: level-triggered, the listener stays ready and the loop spins;
 * edge-triggered, no new event comes and the client waits forever.  The
 * spare-fd trick keeps one fd in reserve to refuse such clients cleanly:
 *
 *     spare = spare_fd_open();                       at startup
 *     ... accept() fails with EMFILE or ENFILE:
 *     r = spare_fd_refuse(listenfd, &spare);
 *
 * spare_fd_open() opens /dev/null (O_RDONLY | O_CLOEXEC) and returns the
 * fd, or -1 with errno set.
 *
 * spare_fd_refuse() closes *spare, accepts one waiting client with the fd
 * that frees, closes that client at once (it reads EOF: "no", instead of
 * silence) and reopens *spare.  Returns
 *    1  a client was refused: call accept() again, more may be waiting;
 *    0  nobody was waiting (EAGAIN): stop.  A full fd table makes accept()
 *       say EMFILE even when the queue is empty (it takes the fd number
 *       before it looks at the queue), so only this accept, made with a
 *       free fd, can tell "out of fds" from "nobody there";
 *   -1  with errno set: the accept failed otherwise (EINTR is retried;
 *       test the rest with accept_error_is_transient(); EMFILE again
 *       means there was no spare to give up), or listenfd is not
 *       non-blocking (EINVAL, nothing done: with an empty queue the
 *       accept would block).
 * If the reopen fails (another thread took the slot), *spare is -1
 * afterwards; the next call accepts without giving one up and tries to
 * reopen it again. */
int spare_fd_open(void);
int spare_fd_refuse(int listenfd, int *spare);

/* Block SIGINT and SIGTERM (pthread_sigmask: for the calling thread and
 * every thread it starts afterwards, so call it before starting any), and
 * set *waitmask to the mask to wait with: the old mask minus those two.
 * Pass it to epoll_pwait()/ppoll()/pselect(), which install it only while
 * they wait: a stop signal is then delivered inside the wait (EINTR) and
 * nowhere else, so one arriving just before the wait is not missed until
 * the next event.  Install the handler (on_stop_signals) as well.
 * waitmask may be NULL (signalfd users wait for no signal at all).
 * 0, or -1 with errno set. */
int block_stop_signals(sigset_t *waitmask);

/* ---------- Capitalised layer: report and exit on failure ---------------- */

int Socket(int domain, int type, int protocol);
void Setsockopt(int fd, int level, int name, const void *val, socklen_t len);
void Bind(int fd, const struct sockaddr *sa, socklen_t len);
void Listen(int fd, int backlog);
/* Retries the errors accept_error_is_transient() lists (a signal, or a
 * client that gave up before we accepted it: not our error).  Out of fds
 * or memory (EMFILE, ENFILE,
 * ENOBUFS, ENOMEM) it warns once and retries with a growing pause (5 ms up
 * to 1 s): other clients leaving will free fds, and a blocking server has
 * nothing better to do.  Exits on anything else. */
int Accept(int fd, struct sockaddr *sa, socklen_t *len);
void Connect(int fd, const struct sockaddr *sa, socklen_t len);
void Close(int fd);
ssize_t Readn(int fd, void *buf, size_t n);
void Writen(int fd, const void *buf, size_t n);
ssize_t Readline(struct linebuf *lb, char *out, size_t maxlen);
void Set_nonblocking(int fd);
void Ignore_sigpipe(void);
void On_stop_signals(void (*handler)(int));
void Block_stop_signals(sigset_t *waitmask);
/* Block SIGTERM, SIGINT and `extra` (another signal, e.g. SIGUSR1 for a
 * stats dump; 0 for none) and return a non-blocking, close-on-exec
 * signalfd that reads them: the event-loop servers' way (lab 08 on) to
 * get signals as events instead of handlers.  Call it before starting any
 * thread (the mask is inherited). */
int Stop_signalfd(int extra);
/* How many fds this process may open (RLIMIT_NOFILE's soft limit), at
 * most 1 << 20: the size of a table indexed by fd. */
int Fd_limit(void);
int Tcp_listen(const char *addr, int port);
/* getaddrinfo + socket + connect to the first address that answers. */
int Tcp_connect(const char *host, const char *port);
void Announce_listening(int listenfd);
pid_t Fork(void);
void Pthread_create(pthread_t *t, const pthread_attr_t *attr,
                    void *(*fn)(void *), void *arg);
void Pthread_detach(pthread_t t);
void *Malloc(size_t n);

#endif
