#!/usr/bin/env python3
"""hangup.py - clients that send, hang up and are gone before the echo comes.

    python3 tests/clients/hangup.py --port 9527 --count 10

Each of --count clients sends --size bytes, shuts down its write side and
closes at once, without reading.  The server's first echo reaches a closed
socket, whose kernel answers with RST; its next write then fails with EPIPE
and raises SIGPIPE, which kills a process that neither ignores SIGPIPE nor
sends with MSG_NOSIGNAL.  Then one more client must be served in full.
"""
import socket
import netlabs

GONE = ("Did it die of SIGPIPE? Writing to a connection the peer has closed raises SIGPIPE, "
        "whose default action kills the process: ignore it (or send with MSG_NOSIGNAL) and "
        "handle EPIPE like ECONNRESET.")


def main():
    p = netlabs.parser(__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=10, help="clients that hang up (default 10)")
    p.add_argument("--size", type=int, default=16384, help="bytes each sends (default 16384)")
    sc = netlabs.Scenario(p.parse_args())
    for i in range(sc.args.count):
        sock = sc.connect("client %d: connect" % i, gone=GONE if i else None)
        netlabs.send_all(sc, sock, netlabs.payload(sc.rng, sc.args.size), what="client %d" % i,
                          hint=GONE if i else "")
        sock.shutdown(socket.SHUT_WR)
        sock.close()
    data = netlabs.payload(sc.rng, 4096)
    sock = sc.connect("after %d hang-ups: connect" % sc.args.count, gone=GONE)
    netlabs.exchange(sc, sock, data, what="the client after %d hang-ups" % sc.args.count,
                     hint=GONE)
    sock.close()
    sc.ok("%d clients hung up before their echo; the next client was served" % sc.args.count)


if __name__ == "__main__":
    main()
