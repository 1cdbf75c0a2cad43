#!/usr/bin/env python3
"""halfclose.py - send everything, shut down the write side (FIN), then read.

    python3 tests/clients/halfclose.py --port 9527 --size 1048576

The client reads nothing until it has sent all of --size and called
shutdown(SHUT_WR); the server must still send every byte it owes, then
close.  Passes on exactly the uppercased payload followed by a clean EOF
(not a reset, not silence).  Keep --size within what the two sockets can
buffer (a few MiB on loopback) so a blocking server cannot deadlock.

--settle (for a single-threaded event loop) makes sure the server has
handled the EOF before the client reads a byte.  Without it the client
starts reading as soon as the FIN is sent, and while it drains, the
server's flush after EOF can push everything it owed into the kernel in
one write: a server that closes at EOF without flushing then loses
nothing, and the mistake goes unseen.  With --settle the client waits until
the server's end of the connection has taken every byte and the FIN (its
state in /proc/net/tcp is CLOSE_WAIT with an empty receive queue), then
makes two round trips on a second connection: the event loop handles
events in turn, so by the second answer it has handled the EOF.  Only
then does the client read.  The kernel holds at most the server's send
buffer (tcp_wmem's maximum, 4 MiB by default) and the client's receive
buffer: with a --size well above that, the rest is still in the server's
own output buffer when it handles the EOF.
"""
import socket
import time
import netlabs

TCP_ESTABLISHED, TCP_CLOSE_WAIT = 1, 8


def ends(sock):
    """(state, bytes unread) of the server's end of sock and the bytes the
    client's end has not yet sent, from /proc/net/tcp; state None once the
    server's end is gone."""
    mine, theirs = sock.getsockname()[1], sock.getpeername()[1]
    server, unsent = (None, 0), 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            field = line.split()
            local, remote = int(field[1].split(":")[1], 16), int(field[2].split(":")[1], 16)
            tx, rx = (int(x, 16) for x in field[4].split(":"))
            if local == theirs and remote == mine:
                server = (int(field[3], 16), rx)
            elif local == mine and remote == theirs:
                unsent = tx
    return server, unsent


def settle(sc, sock):
    """Wait until the server has read every byte and the FIN, then make two
    round trips on another connection (see the module's doc)."""
    last = None
    while True:
        (state, unread), unsent = ends(sock)
        if state not in (TCP_ESTABLISHED, TCP_CLOSE_WAIT):
            break  # the server closed its end: the reader will say what came back
        if state == TCP_CLOSE_WAIT and unread == 0:
            break  # it has read to the FIN
        if (unread, unsent) != last:
            last = (unread, unsent)
            sc.progress()
        if sc.stalled() or sc.remaining() <= 0:
            sc.fail("after shutdown(SHUT_WR), %d bytes were still on their way to the server and %d unread "
                    "by it for %.1f s: it stopped reading this connection"
                    % (unsent, unread, time.monotonic() - sc.last_progress), socks=[sock])
        time.sleep(0.002)  # polling a state the kernel shows; no event announces it
    other = sc.connect("second connection", gone="It was serving the first one.")
    for word in (b"settle\n", b"again\n"):
        netlabs.echo_once(sc, other, word, "a round trip on a second connection while the first owes output")
    other.close()


def main():
    p = netlabs.parser(__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=1 << 20, help="payload bytes (default 1 MiB)")
    p.add_argument("--settle", action="store_true",
                   help="read only once the server has handled the EOF (a single-threaded event loop)")
    sc = netlabs.Scenario(p.parse_args())
    data = netlabs.payload(sc.rng, sc.args.size)
    want = netlabs.expected(data)
    sock = sc.connect()
    # The reader starts only after the FIN is sent: the server must not wait
    # for the client to read before it notices EOF and finishes.
    sent = netlabs.threading.Event()
    r = netlabs.Reader(sock, len(want), sc.deadline, until_eof=True, start_after=sent, sc=sc)
    r.start()
    netlabs.send_all(sc, sock, data, netlabs.chunks(sc.rng, len(data), 1024, 65536))
    sock.shutdown(socket.SHUT_WR)
    if sc.args.settle:
        settle(sc, sock)
    sent.set()
    r.join()
    netlabs.reader_verdict(sc, r, want, "echo after half-close", expect_eof=True)
    sock.close()
    sc.ok("%d bytes, then FIN: all %d came back, then EOF" % (len(data), len(want)))


if __name__ == "__main__":
    main()
