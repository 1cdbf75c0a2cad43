/*
 * 01-blocking client: send each line of stdin, print the server's reply.
 *
 *     client [-p PORT] [-a HOST]
 *
 * The service has no framing: TCP is a byte stream, and one write of a
 * line may come back in several reads.  The client knows how many bytes it
 * sent, so it reads exactly that many back (readn) before printing.
 * At the end of stdin it half-closes (shutdown SHUT_WR), reads anything
 * still owed until the server's EOF, and exits 0.
 */
#define _POSIX_C_SOURCE 200809L

#include "wrap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINE_MAX_LEN 4096

int main(int argc, char **argv)
{
    struct server_opts opts;
    parse_args(argc, argv, &opts); /* same -p/-a flags as the server */

    char port[16];
    snprintf(port, sizeof port, "%d", opts.port);
    int fd = Tcp_connect(opts.addr, port);
    Ignore_sigpipe();

    struct linebuf in;
    linebuf_init(&in, STDIN_FILENO);
    char line[LINE_MAX_LEN], reply[LINE_MAX_LEN];

    ssize_t n;
    while ((n = Readline(&in, line, sizeof line)) > 0) {
        Writen(fd, line, (size_t)n);
        ssize_t got = Readn(fd, reply, (size_t)n);
        Writen(STDOUT_FILENO, reply, (size_t)got);
        if (got < n)
            app_error("client: server closed the connection early");
    }

    /* Tell the server we are done sending; keep reading what it owes. */
    if (shutdown(fd, SHUT_WR) == -1)
        unix_error("shutdown", "server");
    while ((n = Readn(fd, reply, sizeof reply)) > 0)
        Writen(STDOUT_FILENO, reply, (size_t)n);
    Close(fd);
    return 0;
}
