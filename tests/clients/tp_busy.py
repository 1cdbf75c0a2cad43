#!/usr/bin/env python3
"""tp_busy.py - a full queue answers 5 (busy) at once (lab 10).

    python3 tests/clients/tp_busy.py --port 9527 --conns 4 --delay 800 --accepted 1:2 --busy-within 0.3

Against a server started with a small pool and queue (say -t 1:1 -q 1):
--conns connections each send one `I ~ DELAY` at the same moment.  The
pool takes what its workers and queue hold (-t 1:1 -q 1: one running, one
waiting); every other request must be answered `5 0` within --busy-within
seconds, not after a worker frees up.  The accepted ones (a count within
--accepted LO:HI) are answered `0 I`, no sooner than DELAY.
"""
import time

import calcproto
import netlabs
import tp_proto


def main():
    p = netlabs.parser(__doc__.split("\n")[0])
    p.add_argument("--conns", type=int, default=4, help="connections, one slow request each (default 4)")
    p.add_argument("--delay", type=int, default=800, help="ms of each slow request (default 800)")
    p.add_argument("--accepted", default="1:2", help="LO:HI accepted requests (default 1:2)")
    p.add_argument("--busy-within", type=float, default=0.3, help="seconds for the busy replies (default 0.3)")
    sc = netlabs.Scenario(p.parse_args())
    a = sc.args
    tp_proto.self_check()
    lo, hi = (int(x) for x in a.accepted.split(":"))
    delay = a.delay / 1000.0
    conns = tp_proto.connect_timed(sc, a.conns, "client")
    for i, c in enumerate(conns):
        c.load([tp_proto.slow(i + 1, a.delay)])
    t0 = time.monotonic()
    tp_proto.pump(sc, conns)
    for c in conns:
        tp_proto.check_conn(sc, c, "%d slow requests on %d connections at once" % (a.conns, a.conns), busy_ok=True)
    busy = [c for c in conns if c.replies[0] == tp_proto.BUSY]
    accepted = [c for c in conns if c.replies[0] != tp_proto.BUSY]
    if not lo <= len(accepted) <= hi:
        sc.fail("%d requests 'I ~ %d' at once on %d connections: %d were accepted and %d answered '5 0' (busy); "
                "expected %s accepted (the running task and the -q queue), the rest busy\n"
                "  likely cause: %s"
                % (a.conns, a.delay, a.conns, len(accepted), len(busy), "%d to %d" % (lo, hi) if lo != hi else lo,
                   "the queue is not bounded by -q (or the bound counts wrong: running tasks do not count)"
                   if len(accepted) > hi else
                   "requests refused although a worker or the queue had room: the running tasks do not count "
                   "against -q, and neither does a task an idle worker is about to take"), state=False)
    late = [(c, c.times[0] - c.sent_at) for c in busy if c.times[0] - c.sent_at > a.busy_within]
    if late:
        c, t = late[0]
        sc.fail("%s: '5 0' (busy) came %.3f s after its request; expected at once (within %.2f s)\n"
                "  likely cause: a full queue must not make the loop wait for room (no blocking submit, no "
                "waiting on a 'queue not full' condition in the loop): refuse the task and answer 5 at once"
                % (c.label, t, a.busy_within), state=False)
    early = [(c, c.times[0] - c.sent_at) for c in accepted if c.times[0] - c.sent_at < delay * 0.95 - 0.005]
    if early:
        c, t = early[0]
        sc.fail("%s: '%s' came %.3f s after %s, sooner than the %.3f s it waits"
                % (c.label, c.replies[0].decode(), t, calcproto.show(c.requests[0]), delay))
    tp_proto.close_all(conns)
    sc.ok("%d slow requests at once: %d accepted, %d busy, the busy replies within %.3f s"
          % (a.conns, len(accepted), len(busy), max(c.times[0] - c.sent_at for c in busy) if busy else 0))


if __name__ == "__main__":
    main()
