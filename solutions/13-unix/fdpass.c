/*
 * fdpass.c - SCM_RIGHTS: see fdpass.h.
 */
#define _GNU_SOURCE /* MSG_CMSG_CLOEXEC */

#include "fdpass.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* Control data is read through struct cmsghdr, so the buffer must be
 * aligned like one: a union, not a bare char array. */
union fdbuf {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
};

int send_fd(int chan, int fd)
{
    char byte = 'F';
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union fdbuf u;
    memset(&u, 0, sizeof u);
    struct msghdr msg = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = u.buf,
        .msg_controllen = sizeof u.buf,
    };
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);

    ssize_t n;
    do
        n = sendmsg(chan, &msg, MSG_NOSIGNAL);
    while (n == -1 && errno == EINTR);
    return n == 1 ? 0 : -1;
}

int recv_fd(int chan)
{
    char byte;
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    union fdbuf u;
    struct msghdr msg = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = u.buf,
        .msg_controllen = sizeof u.buf,
    };
    ssize_t n;
    do
        n = recvmsg(chan, &msg, MSG_CMSG_CLOEXEC);
    while (n == -1 && errno == EINTR);
    if (n == -1)
        return -1;
    if (n == 0)
        return -2;

    /* Every fd that arrived is now ours, whatever else is wrong with the
     * message: take the first, close any other. */
    int fd = -1;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; i++) {
            int got;
            memcpy(&got, CMSG_DATA(cm) + i * sizeof(int), sizeof got);
            if (fd == -1)
                fd = got;
            else
                close(got);
        }
    }
    if (fd == -1 || (msg.msg_flags & MSG_CTRUNC)) {
        /* MSG_CTRUNC: our buffer was too small, and the fds that did not
         * fit were closed by the kernel; do not trust the rest either. */
        if (fd != -1)
            close(fd);
        errno = EBADMSG;
        return -1;
    }
    return fd;
}
