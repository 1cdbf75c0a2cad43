/*
 * 01-blocking: an iterative uppercase-echo server.
 *
 * One process, one thread, one client at a time: accept a connection,
 * echo its bytes back in uppercase until it closes, then accept the next.
 * While one client is connected every other client waits in the kernel's
 * accept queue.  That is the point of this rung: lab 02 serves many
 * clients at once with fork(), lab 03 with threads.
 *
 * This lab writes the socket/bind/listen sequence out by hand; later labs
 * call tcp_listen() from common/wrap.c, which does the same thing.
 */
#define _POSIX_C_SOURCE 200809L

#include "wrap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define BUF_SIZE 4096

/* ---------- listening socket -------------------------------------------- */

static int open_listener(const char *addr, int port)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((unsigned short)port); /* network byte order */
    /* inet_pton returns 0 for a malformed address WITHOUT setting errno,
     * so unix_error would print "Success": say what is wrong ourselves.
     * (parse_args already checked it; this is the belt to its braces.) */
    if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
        app_error("inet_pton: '%s' is not an IPv4 address", addr);

    int fd = Socket(AF_INET, SOCK_STREAM, 0);
    /* Let a restarted server bind the port while connections from the
     * last run still sit in TIME_WAIT. */
    int on = 1;
    Setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    Bind(fd, (struct sockaddr *)&sin, sizeof sin);
    Listen(fd, SOMAXCONN);
    return fd;
}

/* ---------- the service --------------------------------------------------- */

/* Echo one connection until the client closes its side.  Returns when the
 * client is done or misbehaves; never exits the server. */
static void serve_client(int connfd)
{
    char buf[BUF_SIZE];

    for (;;) {
        ssize_t n = read(connfd, buf, sizeof buf);
        if (n == 0)
            return; /* EOF: the client half-closed; we owe it nothing more */
        if (n == -1) {
            if (errno == EINTR)
                continue;
            if (errno != ECONNRESET) /* a reset is the client's choice */
                unix_warn("read", "client");
            return;
        }
        upcase(buf, (size_t)n);
        /* writen() loops over short writes and, via MSG_NOSIGNAL, fails
         * with EPIPE instead of killing us if the client has gone. */
        if (writen(connfd, buf, (size_t)n) == -1) {
            if (errno != EPIPE && errno != ECONNRESET)
                unix_warn("write", "client");
            return;
        }
    }
}

/* ---------- main ---------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct server_opts opts;
    parse_args(argc, argv, &opts);
    Ignore_sigpipe(); /* belt and braces: writen() already uses MSG_NOSIGNAL */

    int listenfd = open_listener(opts.addr, opts.port);
    Announce_listening(listenfd);

    for (;;) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        char name[ADDR_STRLEN];

        int connfd = Accept(listenfd, (struct sockaddr *)&peer, &len);
        if (opts.verbose)
            err_msg("connect %s", sockaddr_str((struct sockaddr *)&peer, name, sizeof name));
        serve_client(connfd);
        close(connfd); /* after close, the kernel sends our FIN */
        if (opts.verbose)
            err_msg("close %s", name);
    }
}
