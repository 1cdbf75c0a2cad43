#!/usr/bin/env python3
"""crowd.py - many connections at once, where the server may refuse some.

    python3 tests/clients/crowd.py --port 9527 --count 1100 --min-served 1000 --min-closed 80

Opens --count connections one after another, then sends every one its own
payload ("crowd NNNNNN round R:" + random bytes, --size bytes) at once and
sorts the connections: "served" got exactly their own bytes back; "closed"
were closed or reset by the server before any reply arrived (a server with a
hard limit, like select's FD_SETSIZE, refuses that way).  Anything else fails:
a reply that is wrong or short, or a connection the server neither answers nor
closes before the deadline (it was accepted and forgotten, or never accepted).

Passes when at least --min-served (default: all) were served and at least
--min-closed (default 0) were closed.  --hold: print "ready served=S closed=C"
after the first round and keep every connection open until stdin reaches EOF;
--rounds R: R rounds on the served connections (the later rounds run after the
hold, and every served connection must be served again).
"""
import netlabs


def load_round(sc, conns, rnd):
    for i, c in conns:
        head = b"crowd %06d round %d:" % (i, rnd)
        c.load(head + sc.rng.randbytes(max(0, sc.args.size - len(head))))


def sort_out(sc, conns, rnd, why=None):
    """(served, closed) after a round; fails on anything else."""
    served, closed, bad = [], [], []
    for i, c in conns:
        p = netlabs.conn_problem(c)
        if p is None:
            served.append((i, c))
        elif (c.eof or c.error in ("reset", "broken pipe")) and not c.got and rnd == 0:
            closed.append((i, c))
        else:
            bad.append(p)
    if bad:
        sc.fail("round %d: %d of %d connections were neither served nor closed by the "
                "server%s:\n  %s%s" % (rnd, len(bad), len(conns), netlabs.pump_why(why, sc),
                                        "\n  ".join(bad[:5]), "\n  ..." if len(bad) > 5 else ""),
                socks=netlabs.stuck([c for _, c in conns]))
    return served, closed


def main():
    p = netlabs.parser(__doc__.split("\n")[0], hold=True)
    p.add_argument("--count", type=int, default=100, help="connections (default 100)")
    p.add_argument("--size", type=int, default=64, help="bytes per connection per round (default 64)")
    p.add_argument("--rounds", type=int, default=1, help="rounds (default 1; with --hold, rounds after the first run after the release)")
    p.add_argument("--min-served", type=int, default=None, help="fewest connections that must be served (default all)")
    p.add_argument("--min-closed", type=int, default=0, help="fewest the server must close (default 0)")
    sc = netlabs.Scenario(p.parse_args())
    sc.args.size = max(sc.args.size, 24)
    want_served = sc.args.count if sc.args.min_served is None else sc.args.min_served

    conns = list(enumerate(netlabs.connect_many(sc, sc.args.count, "connection")))
    load_round(sc, conns, 0)
    why = netlabs.pump(sc, [c for _, c in conns])
    served, closed = sort_out(sc, conns, 0, why)
    if len(served) < want_served:
        sc.fail("%d of %d connections were served, expected at least %d (%d were closed "
                "by the server)" % (len(served), len(conns), want_served, len(closed)))
    if len(closed) < sc.args.min_closed:
        sc.fail("%d of %d connections were closed by the server, expected at least %d "
                "(%d were served)" % (len(closed), len(conns), sc.args.min_closed, len(served)))
    for _, c in closed:
        c.sock.close()
    if sc.args.hold:
        sc.hold("ready served=%d closed=%d" % (len(served), len(closed)))
    for rnd in range(1, sc.args.rounds):
        load_round(sc, served, rnd)
        why = netlabs.pump(sc, [c for _, c in served])
        again, _ = sort_out(sc, served, rnd, why)
        if len(again) < len(served):
            sc.fail("round %d: %d of %d connections were served" % (rnd, len(again), len(served)))
    for _, c in served:
        c.sock.close()
    sc.ok("%d connections at once: %d served (%d round(s) of %d bytes), %d closed by the server"
          % (len(conns), len(served), sc.args.rounds, sc.args.size, len(closed)))


if __name__ == "__main__":
    main()
