#!/usr/bin/env python3
"""concurrency.py - N clients connected at once, each with its own payload.

    python3 tests/clients/concurrency.py --port 9527 --clients 50
    python3 tests/clients/concurrency.py --port 9527 --clients 2 --expect serial

All N connect first.  --expect parallel (default): every client sends its own
distinct payload (it starts with "client NNNNNN:") while all are connected,
and every one must get back exactly its own bytes, uppercased: no lost client,
no cross-talk.  --expect serial (a one-client-at-a-time server): the first
client is answered; the others get nothing while it stays connected (checked
for --quiet seconds); each is answered once the one before it leaves.

--hold: after the first round, print "ready N" and keep every connection open
until stdin reaches EOF (a test inspects the server meanwhile); with --final,
do one more round after that.  --close rst: leave with RST instead of FIN.
"""
import socket
import netlabs


def load_round(sc, conns, rnd):
    for i, c in enumerate(conns):
        head = b"client %06d round %d:" % (i, rnd)
        c.load(head + sc.rng.randbytes(max(0, sc.args.size - len(head))))


def check_all(sc, conns, what, why=None):
    bad = [p for p in (netlabs.conn_problem(c) for c in conns) if p]
    if bad:
        sc.fail("%s: %d of %d clients did not get exactly their own bytes back%s:\n  %s%s"
                % (what, len(bad), len(conns), netlabs.pump_why(why, sc), "\n  ".join(bad[:5]),
                   "\n  ..." if len(bad) > 5 else ""), socks=netlabs.stuck(conns))


def parallel(sc, conns):
    for rnd in range(sc.args.rounds):
        load_round(sc, conns, rnd)
        why = netlabs.pump(sc, conns)
        check_all(sc, conns, "round %d with all %d clients connected" % (rnd, len(conns)), why)


def serial(sc, conns):
    load_round(sc, conns, 0)
    for i, c in enumerate(conns):
        why = netlabs.pump(sc, [c])
        p = netlabs.conn_problem(c)
        if p:
            sc.fail("%s was not answered%s%s: %s" % (
                c.label, " after the %d client(s) before it left" % i if i else "",
                netlabs.pump_why(why, sc), p), socks=[c.sock])
        rest = conns[i + 1:]
        if rest:
            netlabs.pump(sc, rest, limit=sc.args.quiet)
            early = [r for r in rest if r.got]
            if early:
                sc.fail("expected a one-client-at-a-time server, but %s got %d bytes back "
                        "while %s was still connected" % (early[0].label, len(early[0].got), c.label),
                        state=False)
        close(sc, c)


def close(sc, c):
    if sc.args.close == "rst":
        netlabs.abort(c.sock)
    else:
        c.sock.close()


def main():
    p = netlabs.parser(__doc__.split("\n")[0], hold=True)
    p.add_argument("--clients", type=int, default=10, help="connections (default 10)")
    p.add_argument("--expect", choices=["parallel", "serial"], default="parallel")
    p.add_argument("--size", type=int, default=64, help="bytes per client per round (default 64)")
    p.add_argument("--rounds", type=int, default=1, help="rounds (default 1)")
    p.add_argument("--quiet", type=float, default=1.0,
                   help="serial: seconds the waiting clients must get nothing (default 1)")
    p.add_argument("--final", action="store_true", help="with --hold: one more round after release")
    p.add_argument("--close", choices=["fin", "rst"], default="fin", help="how clients leave")
    sc = netlabs.Scenario(p.parse_args())
    sc.args.size = max(sc.args.size, 24)
    conns = netlabs.connect_many(sc, sc.args.clients)
    if sc.args.expect == "serial":
        serial(sc, conns)
        sc.ok("%d clients served one at a time, each after the one before left" % len(conns))
    parallel(sc, conns)
    if sc.args.hold:
        sc.hold("ready %d" % len(conns))
        if sc.args.final:
            load_round(sc, conns, sc.args.rounds)
            why = netlabs.pump(sc, conns)
            check_all(sc, conns, "after the hold", why)
    for c in conns:
        close(sc, c)
    sc.ok("%d clients connected at once, %d round(s) of %d bytes each, no cross-talk"
          % (len(conns), sc.args.rounds, sc.args.size))


if __name__ == "__main__":
    main()
