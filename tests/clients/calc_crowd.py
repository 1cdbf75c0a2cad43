#!/usr/bin/env python3
"""calc_crowd.py - N clients at once, each pipelining its own requests.

    python3 tests/clients/calc_crowd.py --port 9527 --clients 200 --requests 50
    python3 tests/clients/calc_crowd.py --port 9527 --clients 10000 --requests 1 --hold --final

All N connect first.  Then, in each round, every client sends --requests
requests at once (pipelined, in one write per client as far as the socket
takes it) while all are connected; the first of each client's requests
names it ('CLIENT * 1000003 + ROUND' has a result no other client gets),
the rest are random (seeded).  Every client must get exactly its own
replies, in order: no lost client, no cross-talk.

--hold: after the first round, print "ready N" and keep every connection
open until stdin reaches EOF; --final: one more round after that.
--pending: before the hold, every client also sends the start of a frame
that it never finishes (the server must hold it as a partial frame).
--close rst: leave with RST instead of FIN.
"""
import calcproto
import netlabs


def load_round(sc, conns, rnd):
    for i, c in enumerate(conns):
        reqs = [b"%d * 1000003" % i, b"%d + %d" % (i * 1000003, rnd)]
        reqs += [calcproto.random_expression(sc.rng) for _ in range(max(0, sc.args.requests - 2))]
        c.load(reqs[:max(1, sc.args.requests)])


def main():
    p = netlabs.parser(__doc__.split("\n")[0], hold=True)
    p.add_argument("--clients", type=int, default=10, help="connections (default 10)")
    p.add_argument("--requests", type=int, default=20, help="requests per client per round (default 20)")
    p.add_argument("--rounds", type=int, default=1, help="rounds before the hold (default 1)")
    p.add_argument("--final", action="store_true", help="with --hold: one more round after release")
    p.add_argument("--pending", action="store_true", help="leave a partial frame on every connection")
    p.add_argument("--close", choices=["fin", "rst"], default="fin", help="how clients leave")
    sc = netlabs.Scenario(p.parse_args())
    calcproto.self_check()
    socks = netlabs.connect_many(sc, sc.args.clients)
    conns = [calcproto.CalcConn(c.sock, c.label) for c in socks]
    for rnd in range(sc.args.rounds):
        load_round(sc, conns, rnd)
        calcproto.pump_calc(sc, conns)
        calcproto.fail_problems(sc, conns, "round %d with all %d clients connected" % (rnd, len(conns)))
    if sc.args.pending:
        for c in conns:
            netlabs.send_all(sc, c.sock, b"1024@" + b"0" * sc.rng.randint(0, 1000), what=c.label)
    if sc.args.hold:
        sc.hold("ready %d" % len(conns))
        if sc.args.final:
            if sc.args.pending:
                sc.fail("--final after --pending: the partial frames would swallow the round")
            load_round(sc, conns, sc.args.rounds)
            calcproto.pump_calc(sc, conns)
            calcproto.fail_problems(sc, conns, "after the hold, with all %d clients connected" % len(conns))
    for c in conns:
        if sc.args.close == "rst":
            netlabs.abort(c.sock)
        else:
            c.sock.close()
    sc.ok("%d clients at once, %d round(s) of %d requests each, every client got exactly its own replies"
          % (len(conns), sc.args.rounds + (1 if sc.args.hold and sc.args.final else 0), sc.args.requests))


if __name__ == "__main__":
    main()
