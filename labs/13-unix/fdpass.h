/*
 * fdpass.h - hand an open file descriptor to another process over a
 * Unix-domain socket (SCM_RIGHTS).
 *
 * What travels is not the number: the kernel takes a reference to the
 * open file (the connection itself) when the message is sent and, when it
 * is received, installs a NEW descriptor in the receiver's table that
 * refers to the same open file, with whatever number is free there.  The
 * sender's descriptor stays open until the sender closes it.
 */
#ifndef NETLABS_FDPASS_H
#define NETLABS_FDPASS_H

/* Send fd over the Unix-domain socket chan, with one byte of ordinary
 * data (a message must carry at least one).  0 on success: the fd is in
 * flight and the caller still owns its own copy (close it if it has no
 * further use).  -1 with errno set, and nothing sent: EAGAIN (chan is
 * non-blocking and full), EPIPE or ECONNRESET (nobody reads chan any
 * more), ... */
int send_fd(int chan, int fd);

/* Receive one fd sent by send_fd() on chan, close-on-exec.  Returns the
 * new fd (>= 0); -2 at EOF (the other end is closed); -1 with errno set:
 * EAGAIN (nothing waiting on a non-blocking chan), EBADMSG (a message
 * came without an fd, or its control data was cut short: any fd it
 * carried has been closed), ... */
int recv_fd(int chan);

#endif
