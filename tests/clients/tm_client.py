#!/usr/bin/env python3
"""tm_client.py - lab 14's client program against a server played by this
script: does it answer PINGs, and does it reconnect with backoff?

    python3 tests/clients/tm_client.py --client build/plain/labs/14-timers/client --mode pong
    python3 tests/clients/tm_client.py --client ... --mode resend
    python3 tests/clients/tm_client.py --client ... --mode giveup

The script listens on a free port of 127.0.0.1, runs the client program
there (--client, with -p PORT) and plays the server:

  pong    one connection: PING every 100 ms, five times; each must be
          answered 4@PONG@ within 500 ms; then the client's stdin gets two
          expressions and EOF: it must print both results and exit 0,
          on that one connection.
  resend  the first 3 connections are closed as soon as a whole request
          arrived, without an answer; the 4th is served.  The client must
          print every result once, in order, exit 0, and wait longer before
          each new attempt (the handout's backoff: 50 ms, doubling).
  giveup  every connection is closed at once.  The client must keep trying
          with growing waits, then give up: exit 1, a message on stderr,
          within 10 s, after 4 to 10 attempts.
"""
import argparse
import os
import selectors
import socket
import subprocess
import sys
import threading
import time

import calcproto


def fail(msg, repro):
    sys.stderr.write("FAIL: %s\nreproduce: %s\n" % (msg, repro))
    sys.exit(1)


class FakeServer(threading.Thread):
    def __init__(self, mode, drops):
        super().__init__(daemon=True)
        self.mode, self.drops = mode, drops
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.accepts = []       # monotonic times
        self.problem = None
        self.pongs = []         # (ping sent at, pong at)
        self.pings_done = threading.Event()
        self.stop = False

    def run(self):
        self.ls.settimeout(0.1)
        while not self.stop:
            try:
                s, _ = self.ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepts.append(time.monotonic())
            n = len(self.accepts)
            try:
                if self.mode == "giveup":
                    s.close()
                elif self.mode == "resend" and n <= self.drops:
                    self.read_one_then_close(s)
                else:
                    self.serve(s, pings=5 if self.mode == "pong" else 0)
            except OSError:
                pass

    def read_one_then_close(self, s):
        s.settimeout(2.0)
        rp = calcproto.ReplyParser()
        while not rp.replies and not rp.error:
            try:
                b = s.recv(4096)
            except socket.timeout:
                break
            if not b:
                break
            rp.feed(b)
        s.close()

    def serve(self, s, pings):
        s.setblocking(False)
        sel = selectors.DefaultSelector()
        sel.register(s, selectors.EVENT_READ)
        rp = calcproto.ReplyParser()  # frames are frames, whichever side sends them
        handled = 0
        sent_pings = []
        next_ping = time.monotonic() + 0.1 if pings else None
        end = time.monotonic() + 15
        while time.monotonic() < end:
            now = time.monotonic()
            if next_ping is not None and now >= next_ping:
                if len(sent_pings) > len(self.pongs):
                    self.problem = ("PING %d was not answered with 4@PONG@ within 500 ms"
                                    % len(sent_pings)) if now - sent_pings[-1] > 0.5 else self.problem
                if self.problem:
                    break
                if len(sent_pings) == len(self.pongs):
                    if len(sent_pings) == pings:
                        next_ping = None
                        self.pings_done.set()
                    else:
                        s.sendall(b"4@PING@")
                        sent_pings.append(now)
                        next_ping = now + 0.1
                else:
                    next_ping = now + 0.02
            for _ in sel.select(0.02):
                b = s.recv(65536)
                if not b:
                    s.close()
                    return
                rp.feed(b)
                if rp.error:
                    self.problem = "the client's bytes are not frames: %s" % rp.error
                    s.close()
                    return
                for pl in rp.replies[handled:]:
                    if pl == b"PONG":
                        if len(self.pongs) < len(sent_pings):
                            self.pongs.append((sent_pings[len(self.pongs)], time.monotonic()))
                        else:
                            self.problem = "a PONG came that answers no PING"
                    elif pl == b"PING":
                        s.sendall(b"4@PONG@")
                    else:
                        if pings and len(self.pongs) < pings:
                            self.problem = "a request came before stdin had any line"
                        s.sendall(calcproto.frame(calcproto.reply(pl)))
                handled = len(rp.replies)
        s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--client", required=True)
    ap.add_argument("--mode", choices=["pong", "resend", "giveup"], required=True)
    ap.add_argument("--timeout", type=float, default=20)
    ap.add_argument("--port", type=int, default=0, help="ignored (the script is the server)")
    a, _ = ap.parse_known_args()
    repro = "python3 %s --client %s --mode %s" % (os.path.relpath(__file__), a.client, a.mode)
    fs = FakeServer(a.mode, 3)
    fs.start()
    lines = {"pong": [b"12 + 30", b"1 / 0"], "resend": [b"12 + 30", b"1 / 0", b"6 * 7"],
             "giveup": [b"1 + 1"]}[a.mode]
    want = "".join(calcproto.client_line(x) + "\n" for x in lines)
    t0 = time.monotonic()
    p = subprocess.Popen([a.client, "-p", str(fs.port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        if a.mode == "pong":
            if not fs.pings_done.wait(6):
                p.kill()
                out, err = p.communicate()
                fail("the client, connected with stdin open: %s; %d PINGs answered (of 5), %d connections. "
                     "Expected each 4@PING@ answered 4@PONG@ at once. Its stderr: %s"
                     % (fs.problem or "the PINGs were not all answered within 6 s", len(fs.pongs),
                        len(fs.accepts), err.decode(errors="replace")[:300]), repro)
        p.stdin.write(b"".join(x + b"\n" for x in lines))
        p.stdin.close()
        try:
            p.wait(timeout=12)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            fail("the client did not exit within 12 s (%d connections made; %s)" % (
                len(fs.accepts), fs.problem or "no protocol problem seen"), repro)
        out, err = p.stdout.read().decode(errors="replace"), p.stderr.read().decode(errors="replace")
    finally:
        fs.stop = True
        if p.poll() is None:
            p.kill()
            p.wait()
        for f in (p.stdout, p.stderr):
            f.close()
    took = time.monotonic() - t0
    gaps = [(b - a2) * 1000 for a2, b in zip(fs.accepts, fs.accepts[1:])]
    gtxt = ", ".join("%.0f" % g for g in gaps) or "none"
    if fs.problem:
        fail(fs.problem, repro)
    if a.mode == "pong":
        if p.returncode != 0 or out != want:
            fail("after 5 PINGs answered, stdin %r: expected output %r and exit 0; got %r, exit %d, stderr %r"
                 % (lines, want, out, p.returncode, err[:300]), repro)
        if len(fs.accepts) != 1:
            fail("the client made %d connections; expected 1 (nothing dropped it)" % len(fs.accepts), repro)
        print("ok: 5 PINGs answered PONG (worst %.0f ms), then the results, on one connection"
              % max((b - s) * 1000 for s, b in fs.pongs))
        return
    if a.mode == "resend":
        if p.returncode != 0 or out != want:
            fail("the first 3 connections were closed after the request arrived, unanswered; the 4th "
                 "answers. Expected the client to reconnect, send the unanswered requests again, print "
                 "%r and exit 0; got %r, exit %d, stderr %r (%d connections)"
                 % (want, out, p.returncode, err[:300], len(fs.accepts)), repro)
        if len(fs.accepts) != 4:
            fail("expected exactly 4 connections (3 dropped, the 4th served), the client made %d"
                 % len(fs.accepts), repro)
    if a.mode == "giveup":
        if p.returncode != 1 or not err.strip():
            fail("every connection closed at once: expected the client to give up with a message on "
                 "stderr and exit 1; it exited %d after %.1f s and %d connections, stderr %r"
                 % (p.returncode, took, len(fs.accepts), err[:300]), repro)
        if not 4 <= len(fs.accepts) <= 10:
            fail("every connection closed at once: expected 4 to 10 attempts before giving up (the "
                 "handout: 6), the client made %d (gaps %s ms)" % (len(fs.accepts), gtxt), repro)
        if took > 10:
            fail("the client took %.1f s to give up; expected under 10 s" % took, repro)
    # The backoff: no attempt right after a drop, and the waits grow.
    if gaps[0] < 40:
        fail("the client reconnected %.0f ms after being dropped; expected a wait of at least 50 ms "
             "first (gaps between connections: %s ms)" % (gaps[0], gtxt), repro)
    for i in range(1, min(len(gaps), 4)):
        if gaps[i] < 1.5 * gaps[i - 1] - 20:
            fail("the waits between attempts must grow (exponential backoff: 50, 100, 200 ms...); the "
                 "gaps between connections were %s ms" % gtxt, repro)
    print("ok: %s; gaps between attempts %s ms" % (
        "reconnected 3 times and every request answered once" if a.mode == "resend"
        else "gave up after %d attempts, exit 1" % len(fs.accepts), gtxt))


if __name__ == "__main__":
    main()
