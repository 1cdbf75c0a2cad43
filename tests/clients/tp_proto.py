"""tp_proto.py - lab 10's additions to the calculator protocol, for its test
clients (python3 standard library only; the rest is calcproto.py's).

    evaluate(payload)      (status, result), `X ~ Y` included
    reply(payload)         the reply payload owed: b"0 42"
    slow(x, ms)            the request payload b"X ~ MS"
    TimedConn + pump       many connections driven from one thread, each
                           reply stamped with the time it arrived
    check_conn()           the replies of one connection: right, in order
    server_threads()       the server's thread count, from /proc

Lab 10 adds one operator: `X ~ Y` waits Y milliseconds (0 to 10000, else
status 3) in a worker thread, then answers `0 X`.  And one status: 5, busy,
when the pool's queue is full (or a connection holds too many replies behind
a slow one); RESULT is then 0.  The order of checks is lab 09's: a request
whose X or Y is not a number is 3 before its operator is looked at.
"""

import os
import selectors
import socket
import time

import calcproto

SLOW_MAX_MS = 10000
BUSY = b"5 0"


def evaluate(payload):
    """(status, result) for one request payload, `~` included."""
    toks = bytes(payload).split(b" ")
    if len(toks) == 3 and toks[1] == b"~":
        x, y = calcproto.parse_operand(toks[0]), calcproto.parse_operand(toks[2])
        if x is None or y is None or y < 0 or y > SLOW_MAX_MS:
            return calcproto.MALFORMED, 0
        return calcproto.OK, x
    return calcproto.evaluate(payload)


def reply(payload):
    return calcproto.reply_payload(*evaluate(payload))


def is_slow(payload):
    """A `~` request the server must hand to its pool (a valid one)."""
    toks = bytes(payload).split(b" ")
    return len(toks) == 3 and toks[1] == b"~" and evaluate(payload)[0] == calcproto.OK


def delay_of(payload):
    return int(bytes(payload).split(b" ")[2]) / 1000.0 if is_slow(payload) else 0.0


def slow(x, ms):
    return b"%d ~ %d" % (x, ms)


# Hand-checked cases for `~`: (payload, status, result).
HAND = [
    (b"5 ~ 0", 0, 5),
    (b"-42 ~ 1", 0, -42),
    (b"-9223372036854775808 ~ 2", 0, -(1 << 63)),
    (b"9223372036854775807 ~ 0", 0, (1 << 63) - 1),
    (b"7 ~ 0010", 0, 7),
    (b"1 ~ 10001", 3, 0),
    (b"1 ~ -1", 3, 0),
    (b"1 ~ 99999999999999999999", 3, 0),
    (b"x ~ 5", 3, 0),
    (b"+1 ~ 5", 3, 0),
    (b"1 ~ 5 ", 3, 0),
    (b"1  ~ 5", 3, 0),
    (b"1 ~", 3, 0),
    (b"1 ~~ 5", 2, 0),
    (b"1 ~+ 5", 2, 0),
    (b"1 +~ 5", 2, 0),
]


def self_check():
    calcproto.self_check()
    for payload, st, r in HAND:
        if evaluate(payload) != (st, r):
            raise SystemExit("tp_proto: internal error: %r evaluates to %s, the table says %s"
                             % (payload, evaluate(payload), (st, r)))


# ---------- the server process -----------------------------------------------------

def server_pid(args):
    """The server's pid: --pid, or $NETLABS_SERVER_PID (set by start_server)."""
    pid = getattr(args, "pid", None) or os.environ.get("NETLABS_SERVER_PID")
    return int(pid) if pid else None


def server_threads(pid):
    """Threads of the process, from /proc/PID/status; None if it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


# ---------- connections with timed replies -------------------------------------------

class TimedConn:
    """One connection: requests to send, replies stamped as they arrive."""

    def __init__(self, sock, label):
        self.sock, self.label = sock, label
        self.requests = []
        self.out, self.sent = b"", 0
        self.sent_at = None      # when the last byte of the requests left
        self.parser = calcproto.ReplyParser()
        self.times = []          # arrival time of each reply, by index
        self.eof = False
        self.error = None

    def load(self, requests):
        self.requests += list(requests)
        self.out += b"".join(calcproto.frame(p) for p in requests)

    @property
    def replies(self):
        return self.parser.replies

    @property
    def done(self):
        return (self.eof or self.error is not None or self.parser.error is not None
                or len(self.parser.replies) >= len(self.requests))


def pump(sc, conns, until=None, limit=None, tick=None):
    """Send every conn's pending bytes and read its replies, in one thread,
    until each has all its replies (or EOF, reset), until() is true, or the
    time is up.  tick(): called at least every 5 ms (for sampling)."""
    end = sc.deadline if limit is None else min(sc.deadline, time.monotonic() + limit)
    sel = selectors.DefaultSelector()
    for c in conns:
        if not c.done:
            c.sock.setblocking(False)
            ev = selectors.EVENT_READ | (selectors.EVENT_WRITE if c.sent < len(c.out) else 0)
            sel.register(c.sock, ev, c)
    try:
        while sel.get_map():
            if until is not None and until():
                break
            left = end - time.monotonic()
            if left <= 0 or sc.stalled():
                break  # the caller reports what is missing
            for key, ev in sel.select(min(left, 0.005 if tick else 0.5)):
                c = key.data
                try:
                    if ev & selectors.EVENT_WRITE:
                        c.sent += c.sock.send(c.out[c.sent:c.sent + 262144])
                        sc.progress()
                        if c.sent >= len(c.out):
                            c.sent_at = time.monotonic()
                            sel.modify(c.sock, selectors.EVENT_READ, c)
                    if ev & selectors.EVENT_READ:
                        b = c.sock.recv(1 << 20)
                        now = time.monotonic()
                        if not b:
                            c.eof = True
                        else:
                            sc.progress()
                        c.parser.feed(b)
                        c.times += [now] * (len(c.parser.replies) - len(c.times))
                except BlockingIOError:
                    pass
                except (ConnectionResetError, BrokenPipeError) as e:
                    c.error = "reset" if isinstance(e, ConnectionResetError) else "broken pipe"
                except OSError as e:
                    c.error = e.strerror or str(e)
                if c.done:
                    sel.unregister(c.sock)
            if tick:
                tick()
    finally:
        sel.close()
        for c in conns:
            try:
                c.sock.setblocking(True)
            except OSError:
                pass


def tp_hint(req, want, got, misplaced):
    """The likely mistake behind one wrong reply."""
    if misplaced:
        return ("a reply was sent as soon as it was ready, ahead of an earlier request's reply still "
                "being computed: keep each connection's replies in a queue in request order, and send "
                "from its head only what is ready")
    if got == BUSY:
        return ("'5 0' (busy) is for a request the pool cannot take: -q N tasks already waiting for a "
                "worker (the running ones do not count)")
    toks = bytes(req).split(b" ")
    if len(toks) == 3 and toks[1] == b"~":
        return ("X ~ Y answers '0 X' after Y ms, for Y from 0 to 10000; anything else about it is "
                "lab 09's rules (3 before 2)")
    return calcproto.hint(req, want, got)


def check_conn(sc, c, what, busy_ok=False, hint=""):
    """Fail unless c got exactly the replies owed, in request order.  With
    busy_ok, a `~` request may be answered 5 (busy) instead.  Returns the
    number of busy replies."""
    got = c.replies
    busy = 0
    for i, (req, r) in enumerate(zip(c.requests, got)):
        want = reply(req)
        if r == want:
            continue
        if busy_ok and r == BUSY and is_slow(req):
            busy += 1
            continue
        # Whose reply is it?  The index of the request this reply belongs to.
        owner = next((k for k, q in enumerate(c.requests) if reply(q) == r), None)
        where = ""
        if owner is not None and owner != i:
            where = (" (that is the reply to request %d, %s: replies must come back in "
                     "request order)" % (owner + 1, calcproto.show(c.requests[owner])))
        sc.fail("%s: %s, request %d of %d, %s: expected the reply '%s'%s, got %s%s\n"
                "  likely cause: %s"
                % (what, c.label, i + 1, len(c.requests), calcproto.show(req), want.decode(),
                   " (or '5 0', busy)" if busy_ok and is_slow(req) else "", calcproto.show(r), where,
                   hint or tp_hint(req, want, r, owner is not None and owner != i)))
    if c.parser.error:
        sc.fail("%s: %s: the server's reply stream is not a sequence of LEN@PAYLOAD@ frames %s"
                % (what, c.label, c.parser.error))
    if len(got) > len(c.requests):
        sc.fail("%s: %s: %d replies for %d requests; the first extra one: %s"
                % (what, c.label, len(got), len(c.requests), calcproto.show(got[len(c.requests)])))
    if len(got) < len(c.requests):
        how = {"reset": "then the server reset the connection",
               None: "then the server closed the connection" if c.eof else "then nothing more came"}
        nxt = c.requests[len(got)]
        sc.fail("%s: %s: %d of %d replies came back, %s; the next one owed was '%s' to %s%s"
                % (what, c.label, len(got), len(c.requests), how.get(c.error, c.error),
                   reply(nxt).decode(), calcproto.show(nxt),
                   " (a slow request of %.1f s)" % delay_of(nxt) if is_slow(nxt) else ""))
    return busy


def connect_timed(sc, n, label):
    return [TimedConn(sc.connect("%s %d of %d: connect" % (label, i + 1, n)), "%s %d" % (label, i + 1))
            for i in range(n)]


def close_all(conns):
    for c in conns:
        try:
            c.sock.close()
        except OSError:
            pass


def nodelay(sock):
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock
