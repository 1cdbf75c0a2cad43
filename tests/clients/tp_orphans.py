#!/usr/bin/env python3
"""tp_orphans.py - clients that leave while their slow requests run or wait
(lab 10).

    python3 tests/clients/tp_orphans.py --port 9527 --rounds 3

Run it against a server with one worker (-t 1:1), so that tasks run one
after another, oldest first.  Each round: --leavers connections each
pipeline --tasks requests `I ~ DELAY` and leave at once, half with FIN and
half with RST, while the first of their tasks runs and the rest wait.  Then
--stayers new connections (the kernel hands the server the same fd
numbers again, and malloc the same memory) each send a plain request, a
slow one and another plain request.  Their slow request waits behind every
task of the leavers, so by its reply every leaver's task has finished: each
stayer must have received exactly its own three replies, nothing of the
leavers'.  A server that keeps a pointer (or an fd) to a connection in a
task, and uses it when the task comes back, sends a leaver's reply to a
stayer, or writes freed memory (the ASan build says where).
"""
import calcproto
import netlabs
import tp_proto


def main():
    p = netlabs.parser(__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--leavers", type=int, default=4)
    p.add_argument("--stayers", type=int, default=4)
    p.add_argument("--tasks", type=int, default=4, help="slow requests per leaver (default 4)")
    p.add_argument("--delay", type=int, default=30, help="ms per slow request (default 30)")
    sc = netlabs.Scenario(p.parse_args())
    a = sc.args
    tp_proto.self_check()
    for rnd in range(a.rounds):
        leavers = [sc.connect("round %d, leaver %d: connect" % (rnd + 1, i + 1)) for i in range(a.leavers)]
        for i, s in enumerate(leavers):
            reqs = [tp_proto.slow(-(rnd * 1000 + i * 100 + k + 1), a.delay) for k in range(a.tasks)]
            netlabs.send_all(sc, s, b"".join(calcproto.frame(r) for r in reqs) + calcproto.frame(b"1 + 1"),
                             what="leaver %d" % (i + 1))
        for i, s in enumerate(leavers):
            if i % 2:
                netlabs.abort(s)
            else:
                s.close()
        stayers = tp_proto.connect_timed(sc, a.stayers, "round %d, stayer" % (rnd + 1))
        for i, c in enumerate(stayers):
            n = rnd * 1000 + i + 1
            c.load([b"%d * 1000003" % n, tp_proto.slow(n, 1), b"%d + 1" % n])
        tp_proto.pump(sc, stayers)
        for c in stayers:
            tp_proto.check_conn(sc, c, "round %d: after %d clients left with slow requests running and waiting"
                                % (rnd + 1, a.leavers),
                                hint="a task that comes back after its client left must not be sent anywhere: "
                                "the connection's fd number and memory now belong to someone else. When a "
                                "connection closes, disown its tasks still in the pool (or count references), "
                                "and drop such a task when it comes back")
        tp_proto.close_all(stayers)
    sc.ok("%d rounds: %d clients left with %d slow requests each in flight; every later client got exactly "
          "its own replies" % (a.rounds, a.leavers, a.tasks))


if __name__ == "__main__":
    main()
