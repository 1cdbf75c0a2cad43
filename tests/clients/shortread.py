#!/usr/bin/env python3
"""shortread.py - the two sides of "a short read means the socket is empty".

    python3 tests/clients/shortread.py --port 9527 --rounds 200
    python3 tests/clients/shortread.py --port 9527 --fin-with-data

epoll(7): with edge-triggered events, a read() that returns less than it
asked for has emptied the socket, so the server may stop there instead of
making one more read() that only says EAGAIN.  What arrives later is a new
edge.  Except the FIN: if it arrived together with the last bytes, it was
announced by the same event (EPOLLRDHUP), and no later event will announce
it again.

--rounds N makes N round trips of 1-512 bytes on one connection, one at a
time (the test counts the server's reads meanwhile, with strace).

--fin-with-data makes the bytes and the FIN reach the server in one event:
it stops the server (SIGSTOP; found by its port, or NETLABS_SERVER_PID),
connects, sends --size bytes, shuts down its write side, waits until the
kernel shows the server's end holding every byte and the FIN (CLOSE_WAIT in
/proc/net/tcp), and lets the server run again (SIGCONT).  The server must
send the bytes back, then close.  A server that stops at the short read
without looking at the hang-up never reads the 0 that says EOF, and the
client waits forever.
"""
import os
import signal
import socket
import time

import hangup
import netlabs
import halfclose

DRAINED_CAUSE = ("likely cause: the bytes and the FIN came in one event, and the server stopped "
                 "reading at the short read without reading on to the EOF. A read that returns "
                 "less than asked has emptied the socket only while the peer is still there: when "
                 "the event says it hung up (REACTOR_HUP, from EPOLLRDHUP), no new event will come "
                 "for the FIN, so read on until read() returns 0")


def rounds(sc):
    sock = sc.connect()
    for i in range(sc.args.rounds):
        data = netlabs.payload(sc.rng, sc.rng.randint(1, 512))
        netlabs.echo_once(sc, sock, data, "round trip %d of %d" % (i + 1, sc.args.rounds))
    sock.close()
    sc.ok("%d round trips of 1-512 bytes, one at a time" % sc.args.rounds)


def wait_queued(sc, sock, size):
    """Until the server's end holds all size bytes and the FIN.  False if
    the kernel does not show it within the patience."""
    while True:
        (state, unread), unsent = halfclose.ends(sock)
        # The FIN takes a sequence number too: once it is in, the kernel
        # counts it among the unread.
        if state == halfclose.TCP_CLOSE_WAIT and unread == size + 1 and unsent == 0:
            return True
        if sc.stalled() or sc.remaining() <= 0:
            return False
        time.sleep(0.002)  # polling a state the kernel shows; no event announces it


def fin_with_data(sc):
    pid = hangup.server_pid(sc)
    if pid is None:
        sc.fail("no process listens on port %d: the server is gone" % sc.args.port)
    size = sc.args.size
    data = netlabs.payload(sc.rng, size)
    os.kill(pid, signal.SIGSTOP)
    try:
        sock = sc.connect("connect while the server is stopped",
                          gone="It was running before this client stopped it.")
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        queued = wait_queued(sc, sock, size)
    finally:
        os.kill(pid, signal.SIGCONT)
    sc.progress()  # the server runs again: the clock starts now
    if not queued:
        sc.fail("the kernel never showed the %d bytes and the FIN waiting at the server's end "
                "(CLOSE_WAIT in /proc/net/tcp): this test cannot set up its case" % size, state=False)
    got, why = netlabs.recv_exact(sc, sock, size + 1, "echo of bytes sent with the FIN")
    want = netlabs.expected(data)
    if why == "eof" and len(got) == size:
        netlabs.check(sc, want, got, "echo of bytes sent with the FIN")
        sock.close()
        sc.ok("%d bytes and the FIN in one event: all came back, then EOF" % size)
    if why == "stall" and len(got) == size and got == want:
        sc.fail("%s\n(the %d bytes came back; then no EOF for %.1f s: the server still holds the "
                "connection open, waiting for an event that will not come)"
                % (DRAINED_CAUSE, size, time.monotonic() - sc.last_progress), socks=[sock])
    if why is None:
        sc.fail("the server sent more than the %d bytes it was sent" % size, socks=[sock])
    netlabs.check(sc, want, got[:size], "echo of bytes sent with the FIN")
    sc.fail("%d bytes and the FIN sent in one event: %d of %d came back, then %s"
            % (size, len(got), size,
               {"eof": "EOF", "reset": "a reset", "stall": "nothing for %.1f s" % (time.monotonic() - sc.last_progress),
                "timeout": "the deadline passed"}[why]), socks=[sock])


def main():
    p = netlabs.parser(__doc__.split("\n")[0])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--rounds", type=int, help="round trips, one at a time, on one connection")
    mode.add_argument("--fin-with-data", action="store_true",
                      help="bytes and FIN reach the stopped server together")
    p.add_argument("--size", type=int, default=100, help="bytes sent with the FIN (default 100)")
    sc = netlabs.Scenario(p.parse_args())
    if sc.args.rounds is not None:
        rounds(sc)
    fin_with_data(sc)


if __name__ == "__main__":
    main()
