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
 * <netdb.h> declares a gai_error() of its own).  unix_warn() reports
 * without exiting.
 */
#ifndef NETLABS_WRAP_H
#define NETLABS_WRAP_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
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

/* ---------- error reporters ---------------------------------------------- */

/* "call: object: strerror(errno)" on stderr.  object may be NULL. */
void unix_warn(const char *call, const char *object);
/* The same, then exit(1). */
void unix_error(const char *call, const char *object) __attribute__((noreturn));
/* For functions that return an error number instead of setting errno. */
void posix_error(int code, const char *call, const char *object)
    __attribute__((noreturn));
/* For getaddrinfo() and getnameinfo() return codes. */
void eai_error(int code, const char *call, const char *object)
    __attribute__((noreturn));

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

/* ---------- Capitalised layer: report and exit on failure ---------------- */

int Socket(int domain, int type, int protocol);
void Setsockopt(int fd, int level, int name, const void *val, socklen_t len);
void Bind(int fd, const struct sockaddr *sa, socklen_t len);
void Listen(int fd, int backlog);
/* Retries EINTR, ECONNABORTED and EPROTO (a client that gave up before we
 * accepted it is not our error).  Out of fds or memory (EMFILE, ENFILE,
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
