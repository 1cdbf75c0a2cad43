#!/usr/bin/env python3
"""tm_timers.py - lab 14's timers, seen from the clients: idle closes,
heartbeats (PING after MS, 2 MS, 3 MS of silence, the close at 4 MS), PONG
for a client's PING, and clients that stay because they speak.

    python3 tests/clients/tm_timers.py --port 9527 --mode idle --ms 1000     # server -i 1000
    python3 tests/clients/tm_timers.py --port 9527 --mode beat --ms 400      # server -k 400
    python3 tests/clients/tm_timers.py --port 9527 --mode answer --ms 300    # server -k 300
    python3 tests/clients/tm_timers.py --port 9527 --mode active --ms 300    # server -k 300 -i 300
    python3 tests/clients/tm_timers.py --port 9527 --mode pingpong
    python3 tests/clients/tm_timers.py --port 9527 --mode churn --ms 400     # server -k 400

Every event is timed on this side with the monotonic clock, from the
moment the client started to connect or to send its last byte (the server
cannot have heard it earlier; the clock is read before the call, since the
client may be descheduled after it while the server goes on).  "Early" is any event more than 3 ms before its
deadline (the clocks are the same, only the order of two system calls
differs); "late" is more than --late ms after it.

Modes:
  idle     --conns N silent connections, --stagger ms apart: each must be
           closed (EOF) between MS and MS + late after its connect, with no
           frame before.  --touch F: each sends one byte (half a frame) at
           F * MS: the close must then come MS after that byte.
  beat     --conns N silent connections: exactly 3 PINGs, at MS, 2 MS and
           3 MS, then EOF at 4 MS (each within the tolerance).
  answer   --conns N connections that answer each PING with PONG at once:
           for --for seconds none is closed, every PING comes at least MS
           after the client last sent, and at least one came; then a
           request on each is answered.
  active   --conns N connections that send a request (every other one in
           two halves) every --every ms for --for seconds: every reply
           right, no PING, never closed.
  pingpong PING is answered PONG, a PONG gets nothing, in a pipeline with
           requests; replies in order.
  churn    --conns N clients come and go (FIN, RST, after a request), then
           N new ones (on the same fds, with the same memory) stay active
           for 3 MS, then fall silent: each gets its first PING between MS
           and MS + late after its last byte, and nothing before.
"""
import heapq
import selectors
import socket
import struct
import time

import calcproto
import netlabs

EARLY = 0.003


class Peer:
    def __init__(self, label):
        self.label = label
        self.sock = None
        self.t0 = None          # connected at
        self.last_tx = None     # last byte sent at
        self.frames = []        # (time, payload)
        self.eof_at = None
        self.reset_at = None
        self.parser = calcproto.ReplyParser()
        self.answer = False     # answer PINGs with PONGs
        self.requests = []      # sent, in order
        self.replies = []       # (time, payload) that are not PING/PONG

    @property
    def closed(self):
        return self.eof_at is not None or self.reset_at is not None

    def pings(self):
        return [t for t, p in self.frames if p == b"PING"]

    def rel(self, t):
        return (t - self.t0) * 1000.0


class Loop:
    """One selector for every peer, and timed actions."""

    def __init__(self, sc):
        self.sc = sc
        self.sel = selectors.DefaultSelector()
        self.actions = []
        self.n = 0

    def at(self, t, fn):
        self.n += 1
        heapq.heappush(self.actions, (t, self.n, fn))

    def connect(self, p):
        # The clock is read BEFORE the call: the server cannot accept the
        # connection (or read a byte) before the client asked for it, but
        # the client may be descheduled after the call returns while the
        # server gets on with it.
        t = time.monotonic()
        p.sock = self.sc.connect("%s: connect" % p.label)
        p.t0 = p.last_tx = t
        p.sock.setblocking(False)
        self.sel.register(p.sock, selectors.EVENT_READ, p)

    def send(self, p, data):
        if p.closed:
            return
        t = time.monotonic()  # before the send: see connect()
        try:
            p.sock.setblocking(True)
            p.sock.sendall(data)
            p.sock.setblocking(False)
        except (BrokenPipeError, ConnectionResetError):
            p.reset_at = time.monotonic()
            self._drop(p)
            return
        p.last_tx = t
        self.sc.progress()

    def request(self, p, req, split=False):
        p.requests.append(req)
        f = calcproto.frame(req)
        if split:
            self.send(p, f[:len(f) // 2])
            self.at(time.monotonic() + 0.02, lambda: self.send(p, f[len(f) // 2:]))
        else:
            self.send(p, f)

    def _drop(self, p):
        try:
            self.sel.unregister(p.sock)
        except (KeyError, ValueError):
            pass

    def _read(self, p):
        now = time.monotonic()
        try:
            b = p.sock.recv(65536)
        except BlockingIOError:
            return
        except ConnectionResetError:
            p.reset_at = now
            self._drop(p)
            return
        if not b:
            p.eof_at = now
            self._drop(p)
            return
        self.sc.progress()
        before = len(p.parser.replies)
        p.parser.feed(b)
        if p.parser.error:
            self.sc.fail("%s: the server's bytes are not LEN@PAYLOAD@ frames: %s" % (p.label, p.parser.error))
        for payload in p.parser.replies[before:]:
            p.frames.append((now, payload))
            if payload == b"PING":
                if p.answer:
                    self.send(p, b"4@PONG@")
            elif payload == b"PONG":
                p.replies.append((now, payload))
            else:
                p.replies.append((now, payload))

    def run(self, until, done=None):
        """Serve events and actions until the time `until` or done()."""
        while True:
            now = time.monotonic()
            if now >= until or now >= self.sc.deadline or (done and done()):
                return
            while self.actions and self.actions[0][0] <= now:
                _, _, fn = heapq.heappop(self.actions)
                fn()
            nxt = until
            if self.actions:
                nxt = min(nxt, self.actions[0][0])
            wait = max(0.0, min(nxt - time.monotonic(), 0.05))
            for key, _ in self.sel.select(wait):
                self._read(key.data)

    def close_all(self, peers):
        for p in peers:
            self._drop(p)
            p.sock.close()


def fmt_frames(p, limit=6):
    if not p.frames:
        return "no frame"
    return ", ".join("%s at %.0f ms" % (calcproto.show(pl, 20), p.rel(t)) for t, pl in p.frames[:limit])


def ended(p):
    if p.eof_at is not None:
        return "EOF at %.0f ms" % p.rel(p.eof_at)
    if p.reset_at is not None:
        return "a reset (RST) at %.0f ms" % p.rel(p.reset_at)
    return "still open"


def check_window(sc, p, what, t, ref, ms, late, server_flag):
    """t (an event's time) must lie in [ref + ms - EARLY, ref + ms + late]."""
    got = (t - ref) * 1000.0
    if got < ms - EARLY * 1000:
        sc.fail("%s: %s came %.0f ms after %s, expected no sooner than %d ms (%s): a timer that fires "
                "early. likely cause: a deadline measured from the wrong moment, or a wrong unit "
                "(seconds vs milliseconds, ms vs ns), or a check like 'now - last >= MS' done with "
                "a coarser clock" % (p.label, what, got, "its connect" if ref == p.t0 else "its last byte",
                                     ms, server_flag), state=False)
    if got > ms + late:
        sc.fail("%s: %s came %.0f ms after %s; expected at %d ms, at most %d ms late (%s). likely cause: "
                "the timer fires late: a periodic sweep (once a second?) instead of a timer set to "
                "the earliest deadline, or the timerfd not re-armed after a change"
                % (p.label, what, got, "its connect" if ref == p.t0 else "its last byte", ms, late,
                   server_flag), state=False)


def main():
    ap = netlabs.parser(__doc__.split("\n")[0])
    ap.add_argument("--mode", required=True,
                    choices=["idle", "beat", "answer", "active", "pingpong", "churn"])
    ap.add_argument("--ms", type=int, default=500, help="the server's -i or -k (default 500)")
    ap.add_argument("--late", type=int, default=400, help="ms an event may be late (default 400)")
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--stagger", type=int, default=0, help="ms between connects (idle)")
    ap.add_argument("--touch", type=float, default=None, help="idle: send one byte at F * MS")
    ap.add_argument("--for", dest="duration", type=float, default=2.0, help="seconds (answer, active)")
    ap.add_argument("--every", type=int, default=None, help="ms between requests (active; default MS/2)")
    sc = netlabs.Scenario(ap.parse_args())
    a = sc.args
    sc.patience = None  # silence is what this client tests: only --timeout bounds it
    calcproto.self_check()
    loop = Loop(sc)
    ms, late = a.ms, a.late
    sec = ms / 1000.0

    if a.mode == "idle":
        flag = "server -i %d" % ms
        peers = [Peer("connection %d of %d" % (i + 1, a.conns)) for i in range(a.conns)]
        start = time.monotonic()
        touched = {}

        def touch(p):
            loop.send(p, b"1")
            touched[p] = p.last_tx

        for i, p in enumerate(peers):
            def go(p=p):
                loop.connect(p)
                if a.touch is not None:
                    loop.at(p.t0 + a.touch * sec, lambda: touch(p))
            loop.at(start + i * a.stagger / 1000.0, go)
        end = start + (a.conns * a.stagger) / 1000.0 + sec * (1 + (a.touch or 0)) + late / 1000.0 + 1.0
        loop.run(end, lambda: all(p.t0 and p.closed for p in peers))
        worst = 0.0
        for p in peers:
            if p.frames:
                sc.fail("%s: silent, it received %s; expected nothing before the close (%s, no -k)"
                        % (p.label, fmt_frames(p), flag), state=False)
            ref = touched.get(p, p.t0)
            if p.eof_at is None:
                why = ended(p)
                if why == "still open":
                    sc.fail("%s: silent for %.0f ms and still open; expected EOF %d ms after %s (%s). "
                            "likely cause: no idle timer for the connection, or one that is not armed "
                            "(the timerfd set only once, or its callback never re-armed)"
                            % (p.label, (time.monotonic() - ref) * 1000, ms,
                               "its last byte" if p in touched else "its connect", flag), state=False)
                sc.fail("%s: expected a clean close (EOF) after %d ms of silence; got %s"
                        % (p.label, ms, why), state=False)
            if a.touch is not None and p not in touched:
                sc.fail("%s: closed (%s) before it sent its byte at %.0f ms: the close must come %d ms "
                        "after the LAST byte" % (p.label, ended(p), a.touch * ms, ms), state=False)
            check_window(sc, p, "the close (EOF)", p.eof_at, ref, ms, late, flag)
            worst = max(worst, (p.eof_at - ref) * 1000 - ms)
        loop.close_all(peers)
        sc.ok("%d silent connections closed %d ms after their %s, at most %.0f ms late"
              % (a.conns, ms, "last byte" if a.touch is not None else "connect", worst))

    if a.mode == "beat":
        flag = "server -k %d" % ms
        peers = [Peer("connection %d of %d" % (i + 1, a.conns)) for i in range(a.conns)]
        start = time.monotonic()
        for i, p in enumerate(peers):
            loop.at(start + i * sec / max(1, a.conns), lambda p=p: loop.connect(p))
        loop.run(start + 5 * sec + late / 1000.0 + 1.0, lambda: all(p.t0 and p.closed for p in peers))
        worst = 0.0
        for p in peers:
            pings = p.pings()
            others = [pl for _, pl in p.frames if pl != b"PING"]
            if others:
                sc.fail("%s: silent, it received %s; expected only PINGs" % (p.label, fmt_frames(p)), state=False)
            for n, t in enumerate(pings[:3], 1):
                check_window(sc, p, "PING %d" % n, t, p.t0, n * ms, late, flag)
                worst = max(worst, p.rel(t) - n * ms)
            if p.eof_at is None:
                sc.fail("%s: silent, it got %d PINGs (%s) and then %s; expected PINGs at %d, %d, %d ms, "
                        "then EOF at %d ms (%s). likely cause: %s"
                        % (p.label, len(pings), fmt_frames(p), ended(p), ms, 2 * ms, 3 * ms, 4 * ms, flag,
                           "no heartbeat timer" if not pings else
                           "the connection is never closed after the third unanswered PING"), state=False)
            if len(pings) != 3:
                sc.fail("%s: silent, it got %d PINGs (%s) before %s; expected exactly 3 (at %d, %d, %d ms), "
                        "then the close at %d ms (%s). likely cause: %s"
                        % (p.label, len(pings), fmt_frames(p), ended(p), ms, 2 * ms, 3 * ms, 4 * ms, flag,
                           "closing after two missed PINGs (an off-by-one in the count)" if len(pings) < 3
                           else "the PING count not checked before sending another"), state=False)
            check_window(sc, p, "the close (EOF) after 3 PINGs", p.eof_at, p.t0, 4 * ms, late, flag)
            worst = max(worst, p.rel(p.eof_at) - 4 * ms)
        loop.close_all(peers)
        sc.ok("%d silent connections: PINGs at %d, %d, %d ms, EOF at %d ms, at most %.0f ms late"
              % (a.conns, ms, 2 * ms, 3 * ms, 4 * ms, worst))

    if a.mode == "answer":
        flag = "server -k %d" % ms
        peers = [Peer("answering connection %d of %d" % (i + 1, a.conns)) for i in range(a.conns)]
        for p in peers:
            p.answer = True
            loop.connect(p)
        # Remember when each PING came relative to the client's last byte
        # before it (connect, or the PONG it sent).
        gaps = {p: [] for p in peers}
        orig = loop._read

        def read(p):
            before = p.last_tx
            n = len(p.frames)
            orig(p)
            for t, pl in p.frames[n:]:
                if pl == b"PING":
                    gaps[p].append((t - before) * 1000)
                    before = p.last_tx
        loop._read = read
        end = time.monotonic() + a.duration
        loop.run(end, lambda: any(p.closed for p in peers))
        for p in peers:
            if p.closed:
                sc.fail("%s: it answered every PING with 4@PONG@ at once, yet the server ended it: %s "
                        "(after %s). likely cause: the PONG does not end the silence (any byte from the "
                        "client must), or the ping count is not reset when the client speaks"
                        % (p.label, ended(p), fmt_frames(p, 10)), state=False)
            if not p.pings():
                sc.fail("%s: in %.1f s with %s, no PING came; expected one after each %d ms of silence"
                        % (p.label, a.duration, flag, ms), state=False)
            for g in gaps[p]:
                if g < ms - EARLY * 1000:
                    sc.fail("%s: a PING came %.0f ms after the client's last byte (its PONG); expected "
                            "no PING before %d ms of silence (%s). likely cause: the heartbeat runs on a "
                            "fixed period instead of from the last byte received"
                            % (p.label, g, ms, flag), state=False)
        reqs = {}
        for p in peers:
            req = b"%d * %d" % (sc.rng.randint(-99999, 99999), sc.rng.randint(-99999, 99999))
            reqs[p] = req
            loop.request(p, req)
        loop.run(time.monotonic() + 3.0, lambda: all(p.replies or p.closed for p in peers))
        for p in peers:
            want = calcproto.reply(reqs[p])
            if not p.replies or p.replies[0][1] != want:
                sc.fail("%s: after the heartbeats, the request %s: expected '%s', got %s"
                        % (p.label, calcproto.show(reqs[p]), want.decode(),
                           calcproto.show(p.replies[0][1]) if p.replies else ended(p)))
        n = sum(len(p.pings()) for p in peers)
        loop.close_all(peers)
        sc.ok("%d clients answering PINGs stayed %.1f s (%d PINGs, none early), then got their answers"
              % (a.conns, a.duration, n))

    if a.mode == "active":
        every = (a.every or ms // 2) / 1000.0
        peers = [Peer("active connection %d of %d" % (i + 1, a.conns)) for i in range(a.conns)]
        for p in peers:
            loop.connect(p)
        end = time.monotonic() + a.duration
        k = [0]

        def tick(p):
            if time.monotonic() >= end or p.closed:
                return
            k[0] += 1
            req = b"%d + %d" % (sc.rng.randint(-10**6, 10**6), sc.rng.randint(-10**6, 10**6))
            loop.request(p, req, split=(k[0] % 2 == 0))
            loop.at(time.monotonic() + every, lambda: tick(p))
        for i, p in enumerate(peers):
            loop.at(time.monotonic() + every * i / len(peers), lambda p=p: tick(p))
        loop.run(end, lambda: any(p.closed for p in peers))
        loop.run(time.monotonic() + 2.0,
                 lambda: all(len(p.replies) >= len(p.requests) or p.closed for p in peers))
        for p in peers:
            if p.closed:
                sc.fail("%s: it sent a request every %d ms (every other one in two halves 20 ms apart), "
                        "yet the server ended it: %s after %d requests. likely cause: the timer is set "
                        "at connect and never pushed back when bytes arrive (or only whole frames count)"
                        % (p.label, every * 1000, ended(p), len(p.requests)), state=False)
            if p.pings():
                sc.fail("%s: it was never silent for %d ms, yet got %s. likely cause: PINGs on a fixed "
                        "period instead of after MS of silence" % (p.label, ms, fmt_frames(p)), state=False)
            got = [pl for _, pl in p.replies]
            for i, req in enumerate(p.requests):
                want = calcproto.reply(req)
                if i >= len(got) or got[i] != want:
                    sc.fail("%s: request %d, %s: expected '%s', got %s"
                            % (p.label, i + 1, calcproto.show(req), want.decode(),
                               calcproto.show(got[i]) if i < len(got) else "nothing"))
        n = sum(len(p.requests) for p in peers)
        loop.close_all(peers)
        sc.ok("%d active connections, %d requests in %.1f s: all answered, no PING, none closed"
              % (a.conns, n, a.duration))

    if a.mode == "pingpong":
        p = Peer("pingpong")
        loop.connect(p)
        seq = [(b"PING", b"PONG"), (b"12 + 30", b"0 42"), (b"PONG", None), (b"6 * 7", b"0 42"),
               (b"PING", b"PONG"), (b"PONG", None), (b"PONG", None), (b"1 / 0", b"1 0"),
               (b"PING", b"PONG"), (b"ping", b"3 0"), (b"PING ", b"3 0"), (b"PINGPONG", b"3 0")]
        for _ in range(200):
            r = calcproto.random_expression(sc.rng)
            if r not in (b"PING", b"PONG"):
                seq.append((r, calcproto.reply(r)))
            seq.append(sc.rng.choice([(b"PING", b"PONG"), (b"PONG", None)]))
        want = [w for _, w in seq if w is not None]
        # One at a time first (each answer before the next), then all in one write.
        for i, (req, w) in enumerate(seq[:12]):
            loop.send(p, calcproto.frame(req))
            if w is not None:
                n = len(p.frames) + 1
                loop.run(time.monotonic() + 2.0, lambda: len(p.frames) >= n or p.closed)
                got = p.frames[-1][1] if p.frames else None
                if len(p.frames) < n or got != w:
                    sc.fail("sent %s alone (step %d): expected the reply %s, got %s%s"
                            % (calcproto.show(calcproto.frame(req)), i + 1, calcproto.show(calcproto.frame(w)),
                               calcproto.show(calcproto.frame(got)) if got is not None else ended(p),
                               "; a PONG gets no reply, a PING the payload PONG" if req in (b"PING", b"PONG")
                               else ""), state=False)
        before = len(p.frames)
        loop.send(p, b"".join(calcproto.frame(r) for r, _ in seq))
        total = len([w for _, w in seq[:12] if w is not None]) + len(want)
        loop.run(time.monotonic() + 5.0, lambda: len(p.frames) >= total or p.closed)
        got = [pl for _, pl in p.frames[before:]]
        for i, w in enumerate(want):
            if i >= len(got) or got[i] != w:
                sc.fail("a pipeline of %d frames (requests, PINGs, PONGs) in one write: reply %d expected "
                        "%s, got %s (a PONG gets no reply; a PING gets the payload PONG, in its place "
                        "among the replies)" % (len(seq), i + 1, calcproto.show(w),
                                                 calcproto.show(got[i]) if i < len(got) else "nothing"),
                        state=False)
        if len(got) > len(want):
            sc.fail("a pipeline of %d frames: %d replies owed, %d came (the first extra: %s): a PONG must "
                    "get no reply" % (len(seq), len(want), len(got), calcproto.show(got[len(want)])), state=False)
        loop.close_all([p])
        sc.ok("PING answered PONG, PONG unanswered, %d frames pipelined in order" % len(seq))

    if a.mode == "churn":
        flag = "server -k %d" % ms
        gone = [Peer("short-lived %d" % i) for i in range(a.conns)]
        for i, p in enumerate(gone):
            loop.connect(p)
            if i % 3 == 1:
                loop.request(p, b"1 + 1")
        loop.run(time.monotonic() + 0.05)
        for i, p in enumerate(gone):
            loop._drop(p)
            if i % 3 == 2:
                p.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            p.sock.close()
        peers = [Peer("new connection %d of %d" % (i + 1, a.conns)) for i in range(a.conns)]
        for p in peers:
            loop.connect(p)
        end = time.monotonic() + 3 * sec
        every = sec / 3

        def tick(p):
            if time.monotonic() >= end or p.closed:
                return
            loop.request(p, b"%d - 1" % sc.rng.randint(0, 10**9))
            loop.at(time.monotonic() + every, lambda: tick(p))
        for i, p in enumerate(peers):
            loop.at(time.monotonic() + every * i / len(peers), lambda p=p: tick(p))
        loop.run(end, lambda: any(p.closed for p in peers))
        # Silent now: the first PING of each comes MS after its last byte.
        loop.run(time.monotonic() + sec + late / 1000.0 + 1.0,
                 lambda: any(p.closed for p in peers) or all(p.pings() for p in peers))
        for p in peers:
            if p.closed:
                sc.fail("%s (after %d clients came and went): %s while it sent a request every %d ms. "
                        "likely cause: the timer of a connection that closed was not cancelled, and fired "
                        "later for a new connection on the same fd or memory"
                        % (p.label, a.conns, ended(p), every * 1000), state=False)
            pings = p.pings()
            early = [t for t in pings if t < end]
            if early:
                sc.fail("%s: a PING at %.0f ms while it sent every %d ms (%s). likely cause: a stale timer "
                        "of a closed connection fired for this one" % (p.label, p.rel(early[0]), every * 1000,
                                                                       flag), state=False)
            got = [pl for _, pl in p.replies]
            for i, req in enumerate(p.requests):
                if i >= len(got) or got[i] != calcproto.reply(req):
                    sc.fail("%s: request %d, %s: expected '%s', got %s" % (
                        p.label, i + 1, calcproto.show(req), calcproto.reply(req).decode(),
                        calcproto.show(got[i]) if i < len(got) else "nothing"))
            if not pings:
                sc.fail("%s: silent for %.0f ms after its last request, no PING came (%s)"
                        % (p.label, (time.monotonic() - p.last_tx) * 1000, flag), state=False)
            check_window(sc, p, "the first PING after it fell silent", pings[0], p.last_tx, ms, late, flag)
        loop.close_all(peers)
        sc.ok("%d clients came and went; %d new ones were never disturbed while active, then pinged on time"
              % (a.conns, a.conns))


if __name__ == "__main__":
    main()
