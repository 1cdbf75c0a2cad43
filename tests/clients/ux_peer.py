#!/usr/bin/env python3
"""ux_peer.py - who is on the other end: a client the server can identify (lab 13).

    python3 tests/clients/ux_peer.py --unix /tmp/echo.sock
    python3 tests/clients/ux_peer.py --unix /tmp/echo.sock --hold
    setpriv --reuid=4242 --regid=4242 --clear-groups \\
        python3 tests/clients/ux_peer.py --unix /tmp/echo.sock --expect-closed 2

Default: connect and be served (one echo); with --hold, print
"ready pid PID uid UID" (this process, the one that called connect(): what
the server's SO_PEERCRED reports) once served, hold the connection until
stdin reaches EOF, then be served once more.
--expect-closed S: this client must NOT be served: the server must close
the connection within S seconds, without sending a byte (EOF, or a reset).
Nothing is sent first, so the server cannot have answered anything.
"""
import os
import select
import socket
import time

import netlabs
import ux_unix


def served(sc, what):
    sock = sc.connect(what + ": connect")
    netlabs.echo_once(sc, sock, b"who am i? " + netlabs.payload(sc.rng, 64), what)
    return sock


def expect_closed(sc):
    limit = sc.args.expect_closed
    sock = sc.connect("uid %d: connect" % os.getuid())
    start = time.monotonic()
    end = start + limit
    got = b""
    how = None
    while how is None:
        left = end - time.monotonic()
        if left <= 0:
            break
        r, _, _ = select.select([sock], [], [], left)
        if not r:
            continue
        try:
            b = sock.recv(65536)
        except ConnectionResetError:
            how = "reset"
            break
        if not b:
            how = "EOF"
        got += b
    if got:
        sc.fail("uid %d (pid %d): the server sent %d bytes on a connection it should have closed "
                "unserved: %r" % (os.getuid(), os.getpid(), len(got), got[:40]), state=False)
    if how is None:
        sc.fail("uid %d (pid %d): the connection was still open %.1f s after connect(): the server "
                "did not close a peer whose uid it must refuse. likely cause: the uid from "
                "getsockopt(SO_PEERCRED) is not compared with --allow-uid and the server's own "
                "uid, or the refused peer is not closed at once" % (os.getuid(), os.getpid(), limit),
                state=False)
    sock.close()
    sc.ok("uid %d (pid %d): closed unserved (%s) %.3f s after connect()"
          % (os.getuid(), os.getpid(), how, time.monotonic() - start))


def main():
    p = ux_unix.parser(__doc__.split("\n")[0], hold=True)
    p.add_argument("--expect-closed", type=float, metavar="S", default=None,
                   help="the server must close this client within S seconds, unserved")
    sc = ux_unix.UnixScenario(p.parse_args())
    if sc.args.expect_closed is not None:
        expect_closed(sc)
    sock = served(sc, "uid %d (pid %d)" % (os.getuid(), os.getpid()))
    if sc.args.hold:
        sc.hold("ready pid %d uid %d" % (os.getpid(), os.getuid()))
        netlabs.echo_once(sc, sock, b"still here " + netlabs.payload(sc.rng, 64),
                          "uid %d (pid %d), after holding" % (os.getuid(), os.getpid()))
    sock.close()
    sc.ok("uid %d (pid %d): served over unix:%s" % (os.getuid(), os.getpid(), sc.args.unix))


if __name__ == "__main__":
    main()
