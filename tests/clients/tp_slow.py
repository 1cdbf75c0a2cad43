#!/usr/bin/env python3
"""tp_slow.py - slow requests on many connections at once, and plain probes
meanwhile (lab 10).

    python3 tests/clients/tp_slow.py --port 9527 --slow 8 --delay 500 --within 1.5
    python3 tests/clients/tp_slow.py --port 9527 --slow 8 --delay 500 --probes 10 --probe-max 0.05
    python3 tests/clients/tp_slow.py --port 9527 --slow 8 --delay 800 --threads-peak 6 --pid PID

Each of --slow connections sends one `I ~ DELAY` (I = its number) at the
same moment.  Every reply must be `0 I`, and none may come before DELAY
(the server waited); all of them must be back within --within seconds of
the send.  A pool of workers runs them side by side: about one DELAY.  One
thread answering them in turn takes --slow times DELAY.

--probes K: meanwhile, K plain requests are sent one at a time, spread over
the first 80% of DELAY, alternating between one connection of their own and
a fresh connection each; each must be answered within --probe-max seconds
(--probe-over of them may take up to --probe-worst: a loaded machine's
scheduler hiccup; a loop that waits for slow work makes every probe wait).

--threads-peak P / --threads-max M: the server's thread count, sampled from
/proc/PID/status (Threads:) every few milliseconds while the requests run
(PID: --pid, or $NETLABS_SERVER_PID), must reach exactly P / never pass M.
"""
import socket
import time

import calcproto
import netlabs
import tp_proto


def probe(sc, i, own, worst):
    """One plain request; returns its latency in seconds."""
    req = b"%d * %d" % (i + 1, sc.rng.randint(-10**9, 10**9))
    fresh = i % 2 == 1
    what = "probe %d (on %s connection)" % (i + 1, "a new" if fresh else "its own")
    s = sc.connect(what + ": connect") if fresh else own
    t = time.monotonic()
    netlabs.send_all(sc, s, calcproto.frame(req), what=what)
    parser = calcproto.ReplyParser()
    s.settimeout(max(0.1, min(sc.remaining(), worst * 20)))
    try:
        while not parser.replies and not parser.error:
            b = s.recv(65536)
            if not b:
                sc.fail("%s: the server closed the connection instead of answering %s"
                        % (what, calcproto.show(req)))
            parser.feed(b)
    except socket.timeout:
        sc.fail("%s: no answer to %s within %.1f s while slow requests were running\n"
                "  likely cause: the event loop waits for the slow work itself (the naive design): "
                "hand `~` to a worker and go back to the loop"
                % (what, calcproto.show(req), time.monotonic() - t))
    lat = time.monotonic() - t
    if parser.error:
        sc.fail("%s: %s" % (what, parser.error))
    if parser.replies[0] != tp_proto.reply(req):
        sc.fail("%s: %s: expected '%s', got %s" % (what, calcproto.show(req),
                                                   tp_proto.reply(req).decode(), calcproto.show(parser.replies[0])))
    if fresh:
        s.close()
    return lat


def main():
    p = netlabs.parser(__doc__.split("\n")[0])
    p.add_argument("--slow", type=int, default=8, help="connections, one slow request each (default 8)")
    p.add_argument("--delay", type=int, default=500, help="ms each slow request waits (default 500)")
    p.add_argument("--within", type=float, default=None, help="seconds for all slow replies")
    p.add_argument("--probes", type=int, default=0, help="plain probes meanwhile (default 0)")
    p.add_argument("--probe-max", type=float, default=0.05, help="seconds per probe (default 0.05)")
    p.add_argument("--probe-over", type=int, default=2, help="probes allowed over --probe-max (default 2)")
    p.add_argument("--probe-worst", type=float, default=0.25, help="... but never over this (default 0.25)")
    p.add_argument("--threads-peak", type=int, default=None, help="the peak thread count must be this")
    p.add_argument("--threads-max", type=int, default=None, help="the thread count must never pass this")
    p.add_argument("--pid", type=int, default=None, help="the server's pid (default $NETLABS_SERVER_PID)")
    sc = netlabs.Scenario(p.parse_args())
    a = sc.args
    tp_proto.self_check()
    pid = tp_proto.server_pid(a)
    if (a.threads_peak or a.threads_max) and not pid:
        sc.fail("--threads-peak/--threads-max need the server's pid (--pid or $NETLABS_SERVER_PID)", state=False)
    delay = a.delay / 1000.0

    conns = tp_proto.connect_timed(sc, a.slow, "slow client")
    own = sc.connect("probe: connect") if a.probes else None
    for i, c in enumerate(conns):
        c.load([tp_proto.slow(i + 1, a.delay)])

    peak = [0]
    samples = []

    def sample():
        if pid:
            n = tp_proto.server_threads(pid)
            if n is not None:
                samples.append((time.monotonic() - t0, n))
                peak[0] = max(peak[0], n)

    t0 = time.monotonic()
    due = [t0 + (k + 1) * delay * 0.8 / (a.probes + 1) for k in range(a.probes)]
    lats = []
    while True:
        nxt = due[len(lats)] if len(lats) < len(due) else None
        tp_proto.pump(sc, conns, until=lambda: nxt is not None and time.monotonic() >= nxt, tick=sample)
        if nxt is not None and time.monotonic() >= nxt:
            lats.append(probe(sc, len(lats), own, a.probe_worst))
            sample()
            continue
        break
    end = max((c.times[0] for c in conns if c.times), default=time.monotonic())

    for c in conns:
        tp_proto.check_conn(sc, c, "slow requests on %d connections at once" % a.slow,
                            hint="with the default queue (1024) every slow request fits: none is busy")
    early = [(c, c.times[0] - c.sent_at) for c in conns if c.times[0] - c.sent_at < delay * 0.95 - 0.005]
    if early:
        c, t = early[0]
        sc.fail("%s: '%s' came back %.3f s after %s was sent: expected no sooner than the %.3f s it asks for\n"
                "  likely cause: the worker did not wait Y ms (X ~ Y waits Y milliseconds, then answers '0 X')"
                % (c.label, c.replies[0].decode(), t, calcproto.show(c.requests[0]), delay))
    total = end - t0
    if lats:
        over = [x for x in lats if x > a.probe_max]
        if len(over) > a.probe_over or max(lats) > a.probe_worst:
            sc.fail("plain requests while %d slow ones ran: latencies %s s; expected each within %.3f s "
                    "(%d may reach %.3f s)\n"
                    "  likely cause: the event loop waits for something slow: the slow request itself, or a lock "
                    "a worker holds while it works (the loop may only take the pool's lock for a moment)"
                    % (a.slow, ", ".join("%.3f" % x for x in lats), a.probe_max, a.probe_over, a.probe_worst))
    if a.within is not None and total > a.within:
        sc.fail("%d requests 'I ~ %d' sent at once on %d connections: the last reply came %.2f s after the "
                "send; expected within %.2f s (one at a time would take %.1f s)\n"
                "  likely cause: too few workers run them: the pool must grow from MIN toward MAX while tasks "
                "wait (the manager), and the workers must not hold the pool's lock while they run a task"
                % (a.slow, a.delay, a.slow, total, a.within, a.slow * delay))
    if own:
        own.close()
    tp_proto.close_all(conns)
    if a.threads_peak is not None and peak[0] != a.threads_peak:
        sc.fail("while %d slow requests ran, the server's thread count (Threads: in /proc/%d/status) peaked "
                "at %d; expected exactly %d\n  samples (s, threads): %s\n"
                "  likely cause: %s"
                % (a.slow, pid, peak[0], a.threads_peak, thin(samples),
                   "the pool does not grow to MAX while tasks wait (the manager adds workers in steps)"
                   if peak[0] < a.threads_peak else "more threads than MAX workers + the loop + the manager"),
                state=False)
    if a.threads_max is not None and peak[0] > a.threads_max:
        sc.fail("the server's thread count reached %d; expected never more than %d (MAX workers, the loop "
                "and the manager)\n  samples (s, threads): %s" % (peak[0], a.threads_max, thin(samples)),
                state=False)
    msg = "%d slow requests of %d ms on %d connections answered %.3f s after the send" % (
        a.slow, a.delay, a.slow, total)
    if lats:
        msg += "; %d probes meanwhile, median %.1f ms, worst %.1f ms" % (
            len(lats), sorted(lats)[len(lats) // 2] * 1000, max(lats) * 1000)
    if pid:
        msg += "; threads peaked at %d" % peak[0]
    sc.ok(msg)


def thin(samples):
    """The samples where the count changed."""
    out, last = [], None
    for t, n in samples:
        if n != last:
            out.append("%.3f:%d" % (t, n))
            last = n
    return " ".join(out[:30])


if __name__ == "__main__":
    main()
