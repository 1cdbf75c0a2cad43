#!/usr/bin/env python3
"""tp_pipe.py - pipelined requests with slow ones among them (lab 10).

    python3 tests/clients/tp_pipe.py --port 9527 --mode table
    python3 tests/clients/tp_pipe.py --port 9527 --mode order --delay 400
    python3 tests/clients/tp_pipe.py --port 9527 --mode fuzz --conns 20 --count 300
    python3 tests/clients/tp_pipe.py --port 9527 --mode flood --count 200000 --delay 100
    python3 tests/clients/tp_pipe.py --port 9527 --mode badframe --delay 300

Every request of a connection goes in one write (as far as the socket takes
it) and every reply is checked, in request order, against tp_proto.py's
evaluator.

  table     X ~ Y's cases (tp_proto.HAND: Y out of range is 3, ~~ is 2, ...)
            among lab 09 requests, and `7 ~ DELAY`, which must not be
            answered before DELAY.
  order     `1 ~ DELAY` first, then plain requests and shorter slow ones
            (DELAY/3, 0, DELAY/2) between them: every reply in request order,
            so nothing comes back before DELAY.  --conns of them at once.
  fuzz      --count random requests per connection on --conns connections,
            one in five `~ 0..--max-delay`: all in order, no cross-talk.
  flood     --count requests `I ~ DELAY` on one connection.  Each reply must
            be `0 I` or `5 0` (busy), in order; at most --max-accepted are
            accepted (the queue is bounded), and the whole flood is answered
            within --within seconds.
  badframe  `1 ~ DELAY`, two plain requests, then a bad frame and garbage:
            the three replies in order, then `3@9 0@`, then EOF (no reset).
"""
import time

import calcproto
import netlabs
import tp_proto


def main():
    p = netlabs.parser(__doc__.split("\n")[0])
    p.add_argument("--mode", choices=["table", "order", "fuzz", "flood", "badframe"], required=True)
    p.add_argument("--conns", type=int, default=1, help="connections at once (order, fuzz)")
    p.add_argument("--count", type=int, default=200, help="requests per connection (fuzz, flood)")
    p.add_argument("--delay", type=int, default=400, help="ms of the slow requests (default 400)")
    p.add_argument("--max-delay", type=int, default=30, help="fuzz: the longest `~` (ms, default 30)")
    p.add_argument("--max-accepted", type=int, default=None, help="flood: at most this many `0 I`")
    p.add_argument("--within", type=float, default=None, help="seconds for every reply (default: none)")
    sc = netlabs.Scenario(p.parse_args())
    a = sc.args
    tp_proto.self_check()
    delay = a.delay / 1000.0
    rng = sc.rng

    if a.mode == "table":
        reqs = []
        for payload, _, _ in tp_proto.HAND:
            reqs += [payload, rng.choice(calcproto.HAND["operators"])[0]]
        reqs += [tp_proto.slow(7, a.delay), b"6 * 7"]
        conns = tp_proto.connect_timed(sc, 1, "client")
        conns[0].load(reqs)
    elif a.mode == "order":
        conns = tp_proto.connect_timed(sc, a.conns, "client")
        for k, c in enumerate(conns):
            reqs = [tp_proto.slow(k * 10 + 1, a.delay)]
            for i, d in enumerate([a.delay // 3, 0, a.delay // 2]):
                reqs += [calcproto.random_expression(rng) for _ in range(30)]
                reqs.append(tp_proto.slow(k * 10 + 2 + i, d))
            reqs += [calcproto.random_expression(rng) for _ in range(30)]
            c.load(reqs)
    elif a.mode == "fuzz":
        conns = tp_proto.connect_timed(sc, a.conns, "client")
        for k, c in enumerate(conns):
            reqs = [b"%d * 1000003" % k]  # names the client: no cross-talk
            for _ in range(a.count - 1):
                if rng.random() < 0.2:
                    reqs.append(tp_proto.slow(rng.randint(-10**6, 10**6), rng.randint(0, a.max_delay)))
                else:
                    reqs.append(calcproto.random_expression(rng))
            c.load(reqs)
    elif a.mode == "flood":
        conns = tp_proto.connect_timed(sc, 1, "flooding client")
        conns[0].load([tp_proto.slow(i + 1, a.delay) for i in range(a.count)])
    else:  # badframe
        conns = tp_proto.connect_timed(sc, 1, "client")
        reqs = [tp_proto.slow(1, a.delay), b"2 + 2", b"3 * 3"]
        conns[0].load(reqs)
        conns[0].out += b"12345@" + b"garbage after the bad frame " * 100

    t0 = time.monotonic()
    if a.mode == "badframe":
        c = conns[0]
        c.requests.append(b"(the bad frame)")
        tp_proto.pump(sc, conns)
        # Wait for EOF (or a reset) after the bad frame's reply.
        c.requests.pop()
        want = [tp_proto.reply(r) for r in reqs] + [calcproto.BAD_FRAME_REPLY]
        got = c.replies
        if got != want:
            sc.fail("a slow request, two plain ones, then a bad frame (12345@...), all in one write: expected "
                    "the replies %s, got %s\n  likely cause: %s"
                    % (" ".join("'%s'" % w.decode() for w in want), " ".join(calcproto.show(g) for g in got),
                       "the bad frame's '3@9 0@' must wait behind every reply owed, the slow one included, "
                       "and the polite shutdown only after it" if len(got) >= 1 and got[0] == calcproto.BAD_FRAME_REPLY
                       else "every reply owed before the bad frame is sent, in order, then '3@9 0@', then the "
                       "polite shutdown (conn_shutdown) once the slow reply has gone"))
        if c.times[0] - c.sent_at < delay * 0.95 - 0.005:
            sc.fail("the slow request's reply came %.3f s after the send, sooner than its %.3f s"
                    % (c.times[0] - c.sent_at, delay))
        r = calcproto.ReplyReader(c.sock, None, min(sc.deadline, time.monotonic() + 5), parser=c.parser)
        r.run()
        if r.error == "reset":
            sc.fail("after '3@9 0@' the server reset the connection instead of shutting down its sending side "
                    "(a close() with unread input sends RST)")
        if not r.eof or len(r.replies) != len(want):
            sc.fail("after '3@9 0@' expected EOF%s" % (
                " and nothing more; got %d more replies" % (len(r.replies) - len(want)) if r.eof else
                " within 5 s (the polite shutdown: SHUT_WR once the replies owed are sent)"))
        c.sock.close()
        sc.ok("a slow reply, two plain ones, then 3@9 0@ and EOF, in that order")

    tp_proto.pump(sc, conns, limit=a.within * 1.5 + 1 if a.within else None)
    if a.mode == "flood" and len(conns[0].replies) < a.count and tp_proto.BUSY not in conns[0].replies:
        sc.fail("%d slow requests pipelined at once: %d replies came back in %.1f s, not one of them '5 0' "
                "(busy)\n  likely cause: the pool's queue is not bounded: with -q N, a task that would be the "
                "N+1th waiting for a worker is refused, and the request answered '5 0' at once"
                % (a.count, len(conns[0].replies), time.monotonic() - t0), state=False)
    end = max((c.times[-1] for c in conns if c.times), default=time.monotonic())
    busy = 0
    to_check = conns
    if a.mode == "flood":
        # The generic check evaluates each request: too slow for a flood.
        got, n = conns[0].replies, len(conns[0].requests)
        busy = sum(1 for r in got if r == tp_proto.BUSY)
        fine = len(got) == n and all(r == tp_proto.BUSY or r == b"0 %d" % (i + 1) for i, r in enumerate(got))
        if fine and not conns[0].parser.error:
            to_check = []  # all fine
        else:
            busy = 0
    for c in to_check:
        busy += tp_proto.check_conn(sc, c, "%s, %d request(s) pipelined per connection" % (a.mode, len(c.requests)),
                                    busy_ok=a.mode == "flood")
    if a.mode in ("table", "order"):
        for c in conns:
            first = c.requests.index(next(r for r in c.requests if tp_proto.is_slow(r) and tp_proto.delay_of(r) == delay))
            t = c.times[first] - c.sent_at
            if t < delay * 0.95 - 0.005:
                sc.fail("%s: the reply to %s came %.3f s after the send, sooner than the %.3f s it waits"
                        % (c.label, calcproto.show(c.requests[first]), t, delay))
    total = end - t0
    if a.mode == "flood":
        accepted = a.count - busy
        if busy == 0:
            sc.fail("%d slow requests pipelined at once: every one was accepted, none answered '5 0' (busy)\n"
                    "  likely cause: the pool's queue is not bounded: with -q N, a task that would be the "
                    "N+1th waiting for a worker is refused, and the request answered '5 0' at once"
                    % a.count, state=False)
        if a.max_accepted is not None and accepted > a.max_accepted:
            sc.fail("%d slow requests pipelined at once: %d were accepted ('0 I'), %d busy; expected at most %d "
                    "accepted (the workers and the -q queue, while the flood arrives)\n"
                    "  likely cause: the queue holds more than -q N waiting tasks"
                    % (a.count, accepted, busy, a.max_accepted), state=False)
    if a.within is not None and total > a.within:
        sc.fail("%s: the last reply came %.2f s after the send; expected within %.2f s"
                % (a.mode, total, a.within))
    tp_proto.close_all(conns)
    extra = ""
    if a.mode == "flood":
        extra = ": %d accepted, %d busy" % (a.count - busy, busy)
    sc.ok("%s: %d connection(s), %d requests each, every reply right and in order, the last after %.3f s%s"
          % (a.mode, max(1, a.conns), a.count if a.mode in ("fuzz", "flood") else len(reqs), total, extra))


if __name__ == "__main__":
    main()
