/*
 * 01-blocking client: send each line of stdin, print the server's reply.
 * YOUR TASK (after the server).
 *
 *     client [-p PORT] [-a HOST]
 *
 * TCP is a byte stream: one write of a line may come back in several
 * reads.  You know how many bytes you sent, so read exactly that many back.
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

    /* TODO 4: read stdin line by line (linebuf_init + Readline); for each
     * line, Writen() it to fd, Readn() the same number of bytes back and
     * Writen() them to STDOUT_FILENO.
     * At the end of stdin: shutdown(fd, SHUT_WR), then copy whatever the
     * server still sends to stdout until read returns 0, and Close(fd). */
    Close(fd);
    app_error("TODO 4: the client loop is not written yet");
}
