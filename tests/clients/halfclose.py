#!/usr/bin/env python3
"""halfclose.py - send everything, shut down the write side (FIN), then read.

    python3 tests/clients/halfclose.py --port 9527 --size 1048576

The client reads nothing until it has sent all of --size and called
shutdown(SHUT_WR); the server must still send every byte it owes, then
close.  Passes on exactly the uppercased payload followed by a clean EOF
(not a reset, not silence).  Keep --size within what the two sockets can
buffer (a few MiB on loopback) so a blocking server cannot deadlock.
"""
import socket
import netlabs


def main():
    p = netlabs.parser(__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=1 << 20, help="payload bytes (default 1 MiB)")
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
    sent.set()
    r.join()
    netlabs.reader_verdict(sc, r, want, "echo after half-close", expect_eof=True)
    sock.close()
    sc.ok("%d bytes, then FIN: all %d came back, then EOF" % (len(data), len(want)))


if __name__ == "__main__":
    main()
