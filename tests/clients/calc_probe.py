#!/usr/bin/env python3
"""calc_probe.py - is the server answering quickly?  (a latency probe)

    python3 tests/clients/calc_probe.py --port 9527 --count 20 --max-latency 1.5

Sends --count requests one at a time, alternating between one persistent
connection and a fresh connection each time, and checks each reply arrives
right and within --max-latency seconds.  Run it while another client is
making the server work (or holding it up): a server that blocks or spins on
one client fails here.
"""
import time

import calcproto
import netlabs


def main():
    p = netlabs.parser(__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=20, help="probes (default 20)")
    p.add_argument("--max-latency", type=float, default=1.5, help="seconds per probe (default 1.5)")
    sc = netlabs.Scenario(p.parse_args())
    calcproto.self_check()
    own = sc.connect("probe: connect")
    parser = calcproto.ReplyParser()
    sent = []
    worst = 0.0
    for i in range(sc.args.count):
        req = b"%d * %d" % (i, sc.rng.randint(-10**9, 10**9))
        fresh = i % 2 == 1
        what = "probe %d (on %s connection)" % (i, "a new" if fresh else "its own")
        t = time.monotonic()
        if fresh:
            s = sc.connect(what + ": connect")
            netlabs.send_all(sc, s, calcproto.frame(req), what=what)
            r = calcproto.read_replies(sc, s, 1, limit=sc.args.max_latency)
            calcproto.check_replies(sc, [req], r, what)
            s.close()
        else:
            sent.append(req)
            netlabs.send_all(sc, own, calcproto.frame(req), what=what)
            r = calcproto.read_replies(sc, own, len(sent), parser=parser, limit=sc.args.max_latency)
            calcproto.check_replies(sc, sent, r, what)
        lat = time.monotonic() - t
        worst = max(worst, lat)
        if lat > sc.args.max_latency:
            sc.fail("%s took %.3f s, more than %.1f s" % (what, lat, sc.args.max_latency))
    own.close()
    sc.ok("%d probes answered right, worst latency %.3f s" % (sc.args.count, worst))


if __name__ == "__main__":
    main()
