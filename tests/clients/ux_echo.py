#!/usr/bin/env python3
"""ux_echo.py - the echo scenarios over a Unix-domain socket (lab 13).

    python3 tests/clients/ux_echo.py --unix /tmp/echo.sock --size 262144
    python3 tests/clients/ux_echo.py --unix @netlabs --size 1000
    python3 tests/clients/ux_echo.py --unix /tmp/echo.sock --clients 50
    python3 tests/clients/ux_echo.py --unix /tmp/echo.sock --halfclose --size 1048576
    python3 tests/clients/ux_echo.py --unix /tmp/echo.sock --hangups 20

Default: echo.py's scenario: every byte value, then random bytes, in random
1-4096 byte chunks while a thread reads; then a half-close, and EOF must
follow the whole echo.
--clients N: N clients connected at once, each with its own payload
("client NNNNNN round 0:" + random bytes), all served in one go, no
cross-talk.
--halfclose: halfclose.py's: send everything, shut down the sending side,
only then read; all of it must come back, then EOF.
--hangups K: K clients that each send --size bytes and close without
reading (the server's replies have nowhere to go), then one normal client
that must be served.
"""
import socket

import netlabs
import ux_unix


def echo(sc):
    data = netlabs.payload(sc.rng, sc.args.size)
    sock = sc.connect()
    sizes = netlabs.chunks(sc.rng, len(data), 1, 4096)
    netlabs.exchange(sc, sock, data, sizes, shutdown=True)
    sock.close()
    sc.ok("unix:%s: %d bytes in %d chunks came back uppercased, byte for byte, then EOF"
          % (sc.args.unix, len(data), len(sizes)))


def crowd(sc):
    n = sc.args.clients
    conns = []
    for i in range(n):
        conns.append(netlabs.Conn(sc.connect("client %d of %d: connect" % (i, n)), "client %d" % i))
    for i, c in enumerate(conns):
        head = b"client %06d round 0:" % i
        c.load(head + netlabs.payload(sc.rng, sc.args.size, all_values=False))
    why = netlabs.pump(sc, conns)
    bad = [p for p in (netlabs.conn_problem(c) for c in conns) if p]
    if bad:
        sc.fail("%d of %d clients connected at once did not get exactly their own echo%s:\n  %s"
                % (len(bad), n, netlabs.pump_why(why, sc), "\n  ".join(bad[:5])))
    for c in conns:
        c.sock.close()
    sc.ok("unix:%s: %d clients connected at once, each got exactly its own %d bytes back"
          % (sc.args.unix, n, sc.args.size))


def halfclose(sc):
    data = netlabs.payload(sc.rng, sc.args.size)
    want = netlabs.expected(data)
    sock = sc.connect()
    sent = netlabs.threading.Event()
    r = netlabs.Reader(sock, len(want), sc.deadline, until_eof=True, start_after=sent, sc=sc)
    r.start()
    netlabs.send_all(sc, sock, data, netlabs.chunks(sc.rng, len(data), 1024, 65536))
    sock.shutdown(socket.SHUT_WR)
    sent.set()
    r.join()
    netlabs.reader_verdict(sc, r, want, "echo after half-close", expect_eof=True)
    sock.close()
    sc.ok("unix:%s: %d bytes, then shutdown(SHUT_WR): all came back, then EOF"
          % (sc.args.unix, len(data)))


def hangups(sc):
    for i in range(sc.args.hangups):
        s = sc.connect("hang-up client %d: connect" % i,
                       gone="It was there for the earlier hang-up clients, so it died when one left.")
        try:
            s.sendall(netlabs.payload(sc.rng, sc.args.size))
        except OSError:
            pass  # the server may have closed first: that is its right
        s.close()
    sock = sc.connect("the client after %d hang-ups: connect" % sc.args.hangups,
                      gone="It was there for the hang-up clients, so one of them killed it "
                           "(SIGPIPE? exit on EPIPE or ECONNRESET?).")
    netlabs.echo_once(sc, sock, netlabs.payload(sc.rng, 4096), "the client after the hang-ups")
    sock.close()
    sc.ok("unix:%s: %d clients sent %d bytes each and left without reading; the next was served"
          % (sc.args.unix, sc.args.hangups, sc.args.size))


def main():
    p = ux_unix.parser(__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=65536, help="payload bytes (default 65536)")
    p.add_argument("--clients", type=int, default=0, help="N clients connected at once")
    p.add_argument("--halfclose", action="store_true", help="send all, half-close, then read")
    p.add_argument("--hangups", type=int, default=0, help="K clients leave without reading first")
    sc = ux_unix.UnixScenario(p.parse_args())
    if sc.args.clients:
        crowd(sc)
    elif sc.args.halfclose:
        halfclose(sc)
    elif sc.args.hangups:
        hangups(sc)
    else:
        echo(sc)


if __name__ == "__main__":
    main()
