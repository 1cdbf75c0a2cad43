#!/usr/bin/env python3
"""refused.py - clients that expect to be turned away at once.

    python3 tests/clients/refused.py --port 9527 --count 5 --within 5

For a server that is out of fds (EMFILE): each of --count connections is
made (the kernel completes the handshake whatever the server does), sends
nothing, and waits up to --within seconds for the server to close it (EOF)
or reset it.  Passes when every one was closed: the server accepted and
closed it (the spare-fd trick) instead of leaving it queued with no answer.
Run it only while the server's fd table is full: a server with fds to spare
accepts the connections and keeps them open, and this client fails.
"""
import select
import socket
import time

import netlabs


def main():
    p = netlabs.parser(__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=5, help="connections (default 5)")
    p.add_argument("--within", type=float, default=5.0,
                   help="seconds each may wait for its answer (default 5)")
    sc = netlabs.Scenario(p.parse_args())
    socks = [sc.connect("connection %d: connect" % i) for i in range(sc.args.count)]
    end = time.monotonic() + sc.args.within
    waiting = {s: i for i, s in enumerate(socks)}
    closed = 0
    while waiting and time.monotonic() < end:
        r, _, _ = select.select(list(waiting), [], [], max(0.0, end - time.monotonic()))
        for s in r:
            try:
                b = s.recv(1)
            except ConnectionResetError:
                b = b""
            if b:
                sc.fail("connection %d received %r without sending anything" % (waiting[s], b))
            closed += 1
            del waiting[s]
    if waiting:
        sc.fail("%d of %d connections were neither closed nor served within %.1f s: a server out "
                "of fds must accept and close them (the spare fd), not leave them queued"
                % (len(waiting), sc.args.count, sc.args.within))
    for s in socks:
        s.close()
    sc.ok("%d connections, each closed by the server at once" % closed)


if __name__ == "__main__":
    main()
