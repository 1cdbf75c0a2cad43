#!/usr/bin/env python3
"""hold_idle.py - open N connections and hold them, checking nothing.

    python3 tests/clients/hold_idle.py --port 9527 --count 100 --hold [--send N]

Opens --count connections one after another (connect() returns once the
kernel has completed the handshake, whether or not the server has accepted
yet), optionally sends --send bytes on each without ever reading, prints
"ready N" and, with --hold, keeps them open until stdin reaches EOF.  Then
--go: after the release, every connection that is still open sends a
distinct payload and must get exactly its uppercase back (a server that
never accepted some of them fails here).

Use it to exhaust a server's fds (prlimit --nofile=64), to leave data a
server must buffer at exit, or (with --go) to queue a burst of connections
that the server must accept all at once.  The server may close connections
it cannot take (EMFILE): without --go that is not an error.
"""
import select
import netlabs


def send_some(sc, sock, data):
    """Send data until it is all sent, or the server has taken nothing for
    --send-stall seconds (a server with back-pressure stops reading)."""
    view, off = memoryview(data), 0
    sock.setblocking(False)
    while off < len(data):
        _, w, _ = select.select([], [sock], [], min(sc.args.send_stall, max(0.01, sc.remaining())))
        if not w:
            break
        try:
            off += sock.send(view[off:off + 262144])
        except BlockingIOError:
            pass
        except OSError:
            break  # the server closed it (EMFILE shedding): not an error here
    sock.setblocking(True)
    return off


def main():
    p = netlabs.parser(__doc__.split("\n")[0], hold=True)
    p.add_argument("--count", type=int, default=100, help="connections (default 100)")
    p.add_argument("--send", type=int, default=0,
                   help="bytes to send on each, never reading: as many as the server takes "
                        "until it takes nothing more for --send-stall seconds")
    p.add_argument("--send-stall", type=float, default=1.0, metavar="S",
                   help="stop sending on a connection after S seconds without progress (default 1)")
    p.add_argument("--go", action="store_true",
                   help="after the release, echo on every connection and check it")
    sc = netlabs.Scenario(p.parse_args())
    conns = netlabs.connect_many(sc, sc.args.count, "connection")
    if sc.args.send:
        data = netlabs.payload(sc.rng, sc.args.send, all_values=False)
        for c in conns:
            send_some(sc, c.sock, data)
    if sc.args.hold:
        sc.hold("ready %d" % len(conns))
    if sc.args.go:
        for i, c in enumerate(conns):
            head = b"connection %06d:" % i
            c.load(head + sc.rng.randbytes(64))
        why = netlabs.pump(sc, conns)
        bad = [x for x in (netlabs.conn_problem(c) for c in conns) if x]
        if bad:
            sc.fail("%d of %d connections queued at once were not served%s:\n  %s%s"
                    % (len(bad), len(conns), netlabs.pump_why(why, sc), "\n  ".join(bad[:5]),
                       "\n  ..." if len(bad) > 5 else ""), socks=netlabs.stuck(conns))
    for c in conns:
        c.sock.close()
    sc.ok("%d connections held%s" % (len(conns), " and then served" if sc.args.go else ""))


if __name__ == "__main__":
    main()
