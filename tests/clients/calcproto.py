#!/usr/bin/env python3
"""calcproto.py - the lab 09 calculator protocol, for the test clients
(python3 standard library only).

    frame(payload)          b"7@12 + 30@" for b"12 + 30"
    evaluate(payload)       (status, result): an independent reference evaluator
                            (python ints, so overflow is a plain range check)
    reply(payload)          the reply payload the server owes, b"0 42"
    ReplyParser             splits the server's byte stream into reply payloads,
                            and says exactly where a stream stops being frames
    ReplyReader             a thread that reads replies until N arrived or EOF
    CalcConn + pump_calc    many connections driven from one thread
    check_replies()         fails a scenario at the first wrong reply, with the
                            request, what was expected, what came, and a hint

The protocol (labs/09-framing/README.md): a frame is LEN@PAYLOAD@, LEN 1 to
4 ASCII digits (leading zeros allowed), at most 1024.  A request payload is
"X OP Y" with single spaces, X and Y signed 64-bit decimal integers, OP one
of + - * / %.  A reply payload is "STATUS RESULT": 0 ok, 1 division or
modulo by zero, 2 unknown operator, 3 malformed expression, 4 overflow,
9 bad frame; RESULT is 0 unless STATUS is 0.  Checked in the order 3, 2, 1, 4.

Run by hand (no server needed for `lines` and `answer`):

    python3 tests/clients/calcproto.py --port 9527 ask '12 + 30' '1 / 0'
    python3 tests/clients/calcproto.py lines --count 100 --seed 1 > lines.txt
    python3 tests/clients/calcproto.py answer < lines.txt     # what `client` must print
"""

import argparse
import selectors
import socket
import sys
import threading
import time

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
MAX_LEN = 1024
OPS = (b"+", b"-", b"*", b"/", b"%")

OK, DIVZERO, UNKNOWN_OP, MALFORMED, OVERFLOW, BUSY, BAD_FRAME = 0, 1, 2, 3, 4, 5, 9
WHY = {
    DIVZERO: "division by zero",
    UNKNOWN_OP: "unknown operator",
    MALFORMED: "malformed expression",
    OVERFLOW: "overflow",
    BUSY: "server busy",
    BAD_FRAME: "bad frame",
}
TOO_LONG = "error: expression too long (over 1024 bytes)"
BAD_FRAME_REPLY = b"9 0"


# ---------- the reference evaluator ------------------------------------------------

def frame(payload):
    """One frame: LEN@PAYLOAD@ (LEN without leading zeros)."""
    payload = bytes(payload)
    return b"%d@" % len(payload) + payload + b"@"


def parse_operand(tok):
    """An operand: an optional '-', then one or more ASCII digits and nothing
    else, within int64.  None if it is not one.  (python's int() would also
    take '+5', ' 5', '5_0' and non-ASCII digits: the bytes are checked first.)"""
    digits = tok[1:] if tok[:1] == b"-" else tok
    if not digits or any(c < 0x30 or c > 0x39 for c in digits):
        return None
    v = int(digits)
    if tok[:1] == b"-":
        v = -v
    if v < INT64_MIN or v > INT64_MAX:
        return None
    return v


def trunc_div(x, y):
    """x / y truncated toward zero, as C does (python's // floors)."""
    q = abs(x) // abs(y)
    return -q if (x < 0) != (y < 0) else q


def evaluate(payload):
    """(status, result) for one request payload (bytes)."""
    toks = bytes(payload).split(b" ")
    if len(toks) != 3:
        return MALFORMED, 0
    x, op, y = parse_operand(toks[0]), toks[1], parse_operand(toks[2])
    if x is None or y is None:
        return MALFORMED, 0
    if op not in OPS:
        return UNKNOWN_OP, 0
    if op in (b"/", b"%") and y == 0:
        return DIVZERO, 0
    if op == b"+":
        r = x + y
    elif op == b"-":
        r = x - y
    elif op == b"*":
        r = x * y
    elif op == b"/":
        r = trunc_div(x, y)
    else:
        # The remainder of the truncated division: its sign is x's.  This
        # is also why INT64_MIN % -1 is 0 (the quotient would overflow, the
        # remainder does not).
        r = x - y * trunc_div(x, y)
    if r < INT64_MIN or r > INT64_MAX:
        return OVERFLOW, 0
    return OK, r


def reply_payload(status, result=0):
    return b"%d %d" % (status, result if status == OK else 0)


def reply(payload):
    """The reply payload the server owes for a request payload."""
    return reply_payload(*evaluate(payload))


def client_line(line):
    """What the client program prints for one input line (bytes, no newline)."""
    if len(line) > MAX_LEN:
        return TOO_LONG
    st, r = evaluate(line)
    return str(r) if st == OK else "error: " + WHY[st]


# A table of hand-checked cases: (payload, status, result).  Each was worked
# out by hand from the protocol's rules; the evaluator above must agree with
# every one (self_check), so neither can drift alone.
MIN, MAX = b"-9223372036854775808", b"9223372036854775807"
HAND = {
    "examples": [
        (b"12 + 30", 0, 42),
        (b"", 3, 0),
        (b"PING", 3, 0),
        (b"1 ^ 0", 2, 0),
        (b"x / 0", 3, 0),
        (b"-7 / 2", 0, -3),
        (b"-7 % 2", 0, -1),
        (b"007 + 1", 0, 8),
        (b"-0 * 5", 0, 0),
    ],
    "operators": [
        (b"2 + 3", 0, 5), (b"-2 + -3", 0, -5), (b"0 + 0", 0, 0),
        (b"2 - 3", 0, -1), (b"-2 - -3", 0, 1), (b"10 - 10", 0, 0),
        (b"6 * 7", 0, 42), (b"-6 * 7", 0, -42), (b"-6 * -7", 0, 42), (b"123456789 * 0", 0, 0),
        (b"42 / 6", 0, 7), (b"43 / 6", 0, 7), (b"5 / 10", 0, 0), (b"-42 / -6", 0, 7),
        (b"43 % 6", 0, 1), (b"42 % 6", 0, 0), (b"5 % 10", 0, 5), (b"0 % 7", 0, 0),
    ],
    "limits": [
        (MAX + b" + 0", 0, INT64_MAX),
        (MIN + b" + 0", 0, INT64_MIN),
        (MAX + b" + 1", 4, 0),
        (MIN + b" + -1", 4, 0),
        (MAX + b" + " + MIN, 0, -1),
        (MAX + b" + " + MAX, 4, 0),
        (MIN + b" + " + MIN, 4, 0),
        (MIN + b" - 1", 4, 0),
        (MAX + b" - -1", 4, 0),
        (b"0 - " + MIN, 4, 0),
        (b"-1 - " + MIN, 0, INT64_MAX),
        (MIN + b" - " + MIN, 0, 0),
        (MAX + b" - " + MAX, 0, 0),
        (MAX + b" * 2", 4, 0),
        (MIN + b" * -1", 4, 0),
        (b"-1 * " + MIN, 4, 0),
        (MIN + b" * 1", 0, INT64_MIN),
        (MAX + b" * -1", 0, -INT64_MAX),
        (b"4294967296 * 4294967296", 4, 0),
        (b"3037000499 * 3037000499", 0, 9223372030926249001),
        (b"3037000500 * 3037000500", 4, 0),
        (b"-3037000500 * 3037000500", 4, 0),
        (b"4611686018427387904 * -2", 0, INT64_MIN),
        (b"4611686018427387904 * 2", 4, 0),
        (MIN + b" / -1", 4, 0),
        (MIN + b" % -1", 0, 0),
        (MIN + b" / 1", 0, INT64_MIN),
        (MIN + b" / " + MIN, 0, 1),
        (MAX + b" / " + MIN, 0, 0),
        (MIN + b" % " + MAX, 0, -1),
        (MAX + b" % " + MIN, 0, INT64_MAX),
        (b"9223372036854775808 + 0", 3, 0),
        (b"-9223372036854775809 + 0", 3, 0),
        (b"0 + 99999999999999999999", 3, 0),
        (b"0009223372036854775807 + 0", 0, INT64_MAX),
    ],
    "division": [
        (b"1 / 0", 1, 0), (b"1 % 0", 1, 0), (b"0 / 0", 1, 0), (b"0 % -0", 1, 0),
        (MIN + b" / 0", 1, 0), (MAX + b" % 000", 1, 0),
        (b"-7 / 2", 0, -3), (b"7 / -2", 0, -3), (b"-7 / -2", 0, 3), (b"7 / 2", 0, 3),
        (b"-7 % 2", 0, -1), (b"7 % -2", 0, 1), (b"-7 % -2", 0, -1), (b"7 % 2", 0, 1),
        (b"-1 / 2", 0, 0), (b"-1 % 2", 0, -1), (b"-9 / 3", 0, -3), (b"-9 % 3", 0, 0),
    ],
    "malformed": [
        (b"+5 + 1", 3, 0), (b"1 + +5", 3, 0), (b"5a + 1", 3, 0), (b"- + 1", 3, 0),
        (b"1e3 + 1", 3, 0), (b"1 + 0x10", 3, 0), (b"1 + --2", 3, 0), (b"1.5 + 1", 3, 0),
        (b"1  + 2", 3, 0), (b" 1 + 2", 3, 0), (b"1 + 2 ", 3, 0), (b"1+2", 3, 0),
        (b"1 +2", 3, 0), (b"1 + 2 + 3", 3, 0), (b"1 +  2", 3, 0), (b"", 3, 0), (b" ", 3, 0),
        (b"  ", 3, 0), (b"PING", 3, 0), (b"1\t+ 2", 3, 0), (b"1 + 2\t", 3, 0),
        (b"1 + \x002", 3, 0), (b"1\x00 + 2", 3, 0), (b"1 + 2\n", 3, 0), (b"1 + 2\r", 3, 0),
        (b"\xd9\xa1 + 1", 3, 0), (b"1 + ", 3, 0), (b" + 1", 3, 0), (b"1 + -", 3, 0),
        # out of range: one past each end, far past, and past 2^64 (a
        # parser that wraps modulo 2^64 reads 18446744073709551617 as 1)
        (b"9223372036854775808 + 0", 3, 0), (b"0 + -9223372036854775809", 3, 0),
        (b"99999999999999999999 - 1", 3, 0), (b"1 * 18446744073709551617", 3, 0),
        (b"-18446744073709551616 + 0", 3, 0), (b"00000000000000000000009223372036854775808 + 0", 3, 0),
    ],
    "order": [
        (b"x / 0", 3, 0), (b"1 ^ x", 3, 0), (b"1 x", 3, 0), (b"1 ^ 0", 2, 0),
        (b"1 ^ 2", 2, 0), (b"1 x 2", 2, 0), (b"1 ++ 2", 2, 0), (b"1 // 2", 2, 0),
        (b"1 +- 2", 2, 0), (b"1 \t 2", 2, 0), (b"1 +\t 2", 2, 0), (b"1 \x00 2", 2, 0),
        (b"5 ^ 0", 2, 0), (MAX + b" ^ " + MAX, 2, 0), (b"1 / -", 3, 0),
        (b"9223372036854775808 / 0", 3, 0), (b"0 / 0", 1, 0), (MIN + b" % 0", 1, 0),
        (MIN + b" / -1", 4, 0), (b"1 mod 0", 2, 0), (b"1 ^ 9223372036854775808", 3, 0),
    ],
}


def self_check():
    """The hand table and the evaluator must agree; a disagreement is a bug in
    the test, not in the server (exit 2)."""
    for name, cases in HAND.items():
        for payload, st, r in cases:
            got = evaluate(payload)
            if got != (st, r):
                print("calcproto: internal error: set %s: %s evaluates to %s, the hand table says %s"
                      % (name, show(payload), got, (st, r)), file=sys.stderr)
                sys.exit(2)


# ---------- random expressions --------------------------------------------------------

_EDGES = [0, 1, -1, 2, -2, 7, -7, INT64_MAX, INT64_MIN, INT64_MAX - 1, INT64_MIN + 1,
          1 << 32, -(1 << 32), 3037000499, 3037000500, -3037000500, 1 << 62, -(1 << 62)]
_BAD_OPS = [b"^", b"x", b"++", b"//", b"+-", b"**", b"mod", b"=", b"&", b"\t", b"+\x00", b"\xc3\xb7"]
_JUNK = [b"+5", b"5a", b"-", b"1e3", b"--1", b"0x1f", b"1.0", b"", b"9223372036854775808",
         b"-9223372036854775809", b"99999999999999999999", b"\x00", b"a", b"1\t", b"\xd9\xa1"]


def random_int(rng):
    k = rng.random()
    if k < 0.35:
        return rng.randint(-100, 100)
    if k < 0.55:
        return rng.randint(-(1 << 31), 1 << 31)
    if k < 0.75:
        return rng.choice(_EDGES) + rng.randint(-2, 2) * (rng.random() < 0.3)
    if k < 0.9:
        return rng.randint(INT64_MIN, INT64_MAX)
    return rng.choice([1, -1]) * rng.randint(1 << 61, INT64_MAX)


def format_int(rng, v):
    s = b"%d" % v
    if rng.random() < 0.05:  # leading zeros are fine
        zeros = b"0" * rng.randint(1, 5)
        s = b"-" + zeros + s[1:] if v < 0 else zeros + s
    return s


def random_expression(rng):
    """One request payload: mostly valid expressions over int64 (edges and
    overflow included), some unknown operators, some malformed."""
    k = rng.random()
    x = format_int(rng, random_int(rng))
    y_val = random_int(rng)
    op = rng.choice(OPS)
    if op in (b"/", b"%") and rng.random() < 0.15:
        y_val = 0
    y = format_int(rng, y_val)
    if k < 0.80:
        return x + b" " + op + b" " + y
    if k < 0.87:
        return x + b" " + rng.choice(_BAD_OPS) + b" " + y
    # Malformed, in one of several ways.
    m = rng.randrange(7)
    if m == 0:
        x = rng.choice(_JUNK)
    elif m == 1:
        y = rng.choice(_JUNK)
    elif m == 2:
        return rng.choice([x + b"  " + op + b" " + y, x + b" " + op + b"  " + y,
                           x + op + b" " + y, x + b" " + op + y, x + op + y])
    elif m == 3:
        return rng.choice([b" ", b""]) + x + b" " + op + b" " + y + rng.choice([b" ", b"\t"])
    elif m == 4:
        return rng.choice([b"", b"PING", b"1 +", b"+ 1", b"1 + 2 + 3", b"-0", b" "])
    elif m == 5:
        return x + b" " + rng.choice(_BAD_OPS) + b" " + rng.choice(_JUNK)
    else:
        return b"+" + x.lstrip(b"-") + b" " + op + b" " + y
    return x + b" " + op + b" " + y


# ---------- reading replies -----------------------------------------------------------

def show(b, limit=70):
    """A payload as a python-style quoted string, cut if long."""
    b = bytes(b)
    s = repr(b[:limit])[1:]
    if len(b) > limit:
        s += "... (%d bytes)" % len(b)
    return s


class ReplyParser:
    """Feed it the server's bytes; it collects the reply payloads.  The first
    byte that cannot be part of a frame stops it: error says what and where."""

    def __init__(self):
        self.buf = bytearray()
        self.pos = 0        # parse position in buf
        self.offset = 0     # stream offset of buf[0]
        self.replies = []
        self.error = None

    def feed(self, data):
        if self.error:
            return
        self.buf += data
        buf, pos, n = self.buf, self.pos, len(self.buf)
        out = self.replies
        while pos < n:
            at = buf.find(b"@", pos, min(n, pos + 6))
            if at == -1:
                if n - pos >= 5 or not buf[pos:n].isdigit():
                    break  # an error, reported below
                break      # an incomplete LEN: wait for more
            digits = buf[pos:at]
            if not (1 <= len(digits) <= 4 and digits.isdigit()) or int(digits) > MAX_LEN:
                break
            ln = int(digits)
            end = at + 1 + ln
            if end >= n:
                break      # payload or trailing '@' not here yet
            if buf[end] != 0x40:
                break
            out.append(bytes(buf[at + 1:end]))
            pos = end + 1
        if pos < n:
            self._check_partial(pos)
        if pos > 65536:    # keep the buffer small on long streams
            del buf[:pos]
            self.offset += pos
            pos = 0
        self.pos = pos

    def _check_partial(self, pos):
        """Is buf[pos:] a frame that could still complete?  If not, error."""
        buf, n = self.buf, len(self.buf)
        at = buf.find(b"@", pos, min(n, pos + 6))
        head = bytes(buf[pos:min(n, pos + 12)])
        where = "at stream offset %d (after %d good replies)" % (self.offset + pos, len(self.replies))
        if at == -1:
            if n - pos < 5 and buf[pos:n].isdigit():
                return
            self.error = "%s: %s is not a frame header (LEN, 1 to 4 digits, then '@')" % (where, show(head))
            return
        digits = buf[pos:at]
        if not (1 <= len(digits) <= 4 and digits.isdigit()):
            self.error = "%s: %s is not a frame header (LEN, 1 to 4 digits, then '@')" % (where, show(head))
        elif int(digits) > MAX_LEN:
            self.error = "%s: a reply frame with LEN %d (more than 1024)" % (where, int(digits))
        else:
            end = at + 1 + int(digits)
            if end < n and buf[end] != 0x40:
                self.error = ("%s: the frame %s... has %d payload bytes by its LEN, but the byte after "
                              "them is %s, not '@'" % (where, show(bytes(buf[pos:end + 1]), 40), int(digits),
                                                       show(bytes(buf[end:end + 1]))))

    @property
    def pending(self):
        """Bytes received after the last whole reply."""
        return len(self.buf) - self.pos


class ReplyReader(threading.Thread):
    """Reads a socket in its own thread, parsing replies, until `want`
    replies arrived (want=None: until EOF), or a reset, a stream that is not
    frames, or the deadline.  After join(): replies, eof, error ("timeout",
    "reset", an errno text), parser (its .error), eof_at (monotonic time)."""

    def __init__(self, sock, want, deadline, start_after=None, parser=None):
        super().__init__(daemon=True)
        self.sock, self.want, self.deadline, self.start_after = sock, want, deadline, start_after
        # A parser carried over from an earlier reader on the same stream:
        # `want` then counts every reply of the stream.
        self.parser = parser or ReplyParser()
        self.eof = False
        self.eof_at = None
        self.error = None
        self.received = 0
        self.waited = 0.0  # seconds it read for

    @property
    def replies(self):
        return self.parser.replies

    def run(self):
        if self.start_after is not None:
            self.start_after.wait()
        t0 = time.monotonic()
        try:
            self._read()
        finally:
            self.waited = time.monotonic() - t0

    def _read(self):
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ)
        try:
            while self.want is None or len(self.parser.replies) < self.want:
                if self.parser.error:
                    return
                left = self.deadline - time.monotonic()
                if left <= 0:
                    self.error = "timeout"
                    return
                if not sel.select(min(left, 0.5)):
                    continue
                b = self.sock.recv(1 << 20)
                if not b:
                    self.eof = True
                    self.eof_at = time.monotonic()
                    return
                self.received += len(b)
                self.parser.feed(b)
        except ConnectionResetError:
            self.error = "reset"
        except OSError as e:
            self.error = e.strerror or str(e)
        finally:
            sel.close()


def read_replies(sc, sock, want, limit=None, parser=None):
    """Read (in this thread) until the stream has `want` replies (None: until
    EOF), at most `limit` seconds.  Returns the finished ReplyReader."""
    deadline = sc.deadline if limit is None else min(sc.deadline, time.monotonic() + limit)
    r = ReplyReader(sock, want, deadline, parser=parser)
    r.run()
    return r


# ---------- checking -------------------------------------------------------------------

def hint(req, want, got):
    """The likely mistake behind one wrong reply."""
    try:
        ws, gs = int(want.split(b" ")[0]), int(got.split(b" ")[0])
    except ValueError:
        return "a reply payload is 'STATUS RESULT': two decimal numbers and one space"
    toks = req.split(b" ")
    op = toks[1] if len(toks) == 3 else b""
    if ws == OK and gs == OK:
        if op in (b"/", b"%"):
            return ("/ and % truncate toward zero, as C does (-7 / 2 = -3, -7 % 2 = -1); "
                    "a floor division or a wrong operand order gives other results")
        return "the arithmetic: check the operands were parsed whole (leading zeros, '-', 19 digits)"
    if ws != OK and got != reply_payload(gs):
        return "RESULT is 0 whenever STATUS is not 0"
    if ws == OVERFLOW and gs == OK:
        return ("the result does not fit in int64: detect it before computing (signed overflow is "
                "undefined in C): __builtin_add_overflow/_sub_/_mul_, and INT64_MIN / -1")
    if ws == OK and gs == OVERFLOW:
        if req.split(b" ")[0] == MIN and op == b"%":
            return "INT64_MIN % -1 is 0 (status 0): only the quotient overflows; do not compute it in C (it traps)"
        return "a result that fits in int64 was reported as overflow: check the overflow test's bounds"
    if ws == MALFORMED and gs != MALFORMED:
        return ("the parsing rules: exactly 3 tokens split on single spaces; an operand is an optional '-' "
                "then digits only, within int64 (strtoll clamps: check errno ERANGE and the end pointer); "
                "malformed (3) is checked before the operator (2) and the divisor (1)")
    if ws == UNKNOWN_OP:
        return ("with two valid operands, an operator token other than exactly + - * / % is 2; "
                "the unknown operator (2) is checked before division by zero (1)")
    if ws == DIVZERO:
        return "a zero divisor with / or % is 1, checked before overflow"
    if ws == OK and gs == MALFORMED:
        return ("a valid expression was called malformed: leading zeros ('007'), '-0' and the full "
                "int64 range (-9223372036854775808 included) are valid operands")
    return "the status codes are checked in the order 3, then 2, then 1, then 4"


def check_replies(sc, requests, reader, what, expect_eof=False, tail=(), hint_extra=""):
    """Fail the scenario unless the reader got exactly the replies owed for
    `requests` (payloads, in order), then the `tail` reply payloads, then
    (with expect_eof) a clean EOF."""
    want = [reply(p) for p in requests] + list(tail)
    got = reader.replies
    n = min(len(want), len(got))
    for i in range(n):
        if got[i] != want[i]:
            if i < len(requests):
                req = requests[i]
                sc.fail("%s: request %d (of %d sent), %s (frame %s): expected the reply '%s', got %s\n"
                        "  likely cause: %s\n  ask it alone: python3 tests/clients/calcproto.py --port %d ask %s"
                        % (what, i + 1, len(requests), show(req), show(frame(req), 40),
                           want[i].decode(), show(got[i]), hint(req, want[i], got[i]), sc.args.port,
                           shell_quote(req)))
            sc.fail("%s: reply %d (after the %d replies owed for the requests): expected '%s', got %s. %s"
                    % (what, i + 1, len(requests), want[i].decode(), show(got[i]), hint_extra))
    if reader.parser.error:
        sc.fail("%s: the server's reply stream is not a sequence of LEN@PAYLOAD@ frames %s (all %d replies "
                "before it were right)" % (what, reader.parser.error, len(got)))
    if len(got) > len(want):
        sc.fail("%s: %d replies came back, %d were owed (%d requests%s); the first extra one: %s. %s"
                % (what, len(got), len(want), len(requests),
                   " and the replies %s" % ", ".join("'%s'" % t.decode() for t in tail) if tail else "",
                   show(got[len(want)]), hint_extra))
    if len(got) < len(want):
        why = {"timeout": "then nothing more came (the client waited %.1f s)" % reader.waited,
               "reset": "then the server reset the connection (RST)",
               None: "then the server closed the connection" if reader.eof else "then the reading stopped"}
        missing = "the reply '%s'" % want[len(got)].decode()
        if len(got) < len(requests):
            missing += " to request %d, %s" % (len(got) + 1, show(requests[len(got)]))
        came = ("%d of %d replies came back (all right)" % (len(got), len(want)) if got
                else "no reply came back (%d owed)" % len(want))
        sc.fail("%s: %s, %s; the next one owed was %s. %s"
                % (what, came, why.get(reader.error, "then recv failed: %s" % reader.error),
                   missing, hint_extra))
    if expect_eof:
        if reader.error == "reset":
            sc.fail("%s: every reply came back, then the server reset the connection (RST) instead of "
                    "closing it cleanly (a close() with unread input sends RST: shut down the sending "
                    "side, read and discard until EOF, then close). %s" % (what, hint_extra))
        if not reader.eof:
            extra = ""
            if reader.parser.pending:
                extra = " (%d more bytes came that are not a whole frame)" % reader.parser.pending
            sc.fail("%s: every reply came back%s, but no EOF followed within the deadline. %s"
                    % (what, extra, hint_extra))
        if reader.parser.pending:
            sc.fail("%s: every reply came back, then %d bytes that are not a whole frame, then EOF"
                    % (what, reader.parser.pending))


def shell_quote(b):
    s = b.decode("latin-1")
    if all(32 <= ord(c) < 127 for c in s):
        return "'" + s.replace("'", "'\\''") + "'"
    return "$'" + "".join(c if 32 <= ord(c) < 127 and c not in "'\\" else "\\x%02x" % ord(c) for c in s) + "'"


# ---------- many connections ----------------------------------------------------------

class CalcConn:
    """One connection in pump_calc(): the bytes to send, the replies owed."""

    def __init__(self, sock, label):
        self.sock, self.label = sock, label
        self.out, self.sent = b"", 0
        self.requests = []
        self.parser = ReplyParser()
        self.eof = False
        self.error = None

    def load(self, requests):
        self.requests = list(requests)
        self.out, self.sent = b"".join(frame(p) for p in self.requests), 0
        self.parser = ReplyParser()

    @property
    def done(self):
        return (self.eof or self.error is not None or self.parser.error is not None
                or len(self.parser.replies) >= len(self.requests))

    def problem(self):
        """None if exactly the owed replies came back, else one line."""
        got = self.parser.replies
        for i, (req, r) in enumerate(zip(self.requests, got)):
            if reply(req) != r:
                return "%s: request %d, %s: expected '%s', got %s" % (
                    self.label, i + 1, show(req), reply(req).decode(), show(r))
        if self.parser.error:
            return "%s: %s" % (self.label, self.parser.error)
        if len(got) > len(self.requests):
            return "%s: %d replies for %d requests" % (self.label, len(got), len(self.requests))
        if len(got) < len(self.requests):
            how = self.error or ("the server closed the connection" if self.eof else "no more came")
            return "%s: %d of %d replies came back (%s)" % (self.label, len(got), len(self.requests), how)
        return None


def pump_calc(sc, conns, limit=None):
    """Send every conn's requests and read its replies, all at once, in one
    thread, until each has all its replies (or EOF, reset), or time is up."""
    end = sc.deadline if limit is None else min(sc.deadline, time.monotonic() + limit)
    sel = selectors.DefaultSelector()
    for c in conns:
        if not c.done:
            c.sock.setblocking(False)
            ev = selectors.EVENT_READ | (selectors.EVENT_WRITE if c.sent < len(c.out) else 0)
            sel.register(c.sock, ev, c)
    try:
        while sel.get_map():
            left = end - time.monotonic()
            if left <= 0:
                break
            for key, ev in sel.select(min(left, 0.5)):
                c = key.data
                try:
                    if ev & selectors.EVENT_WRITE:
                        c.sent += c.sock.send(c.out[c.sent:c.sent + 65536])
                        if c.sent >= len(c.out):
                            sel.modify(c.sock, selectors.EVENT_READ, c)
                    if ev & selectors.EVENT_READ:
                        b = c.sock.recv(65536)
                        if not b:
                            c.eof = True
                        c.parser.feed(b)
                except BlockingIOError:
                    pass
                except (ConnectionResetError, BrokenPipeError) as e:
                    c.error = "reset" if isinstance(e, ConnectionResetError) else "broken pipe"
                except OSError as e:
                    c.error = e.strerror or str(e)
                if c.done:
                    sel.unregister(c.sock)
    finally:
        sel.close()
        for c in conns:
            c.sock.setblocking(True)


def fail_problems(sc, conns, what):
    bad = [p for p in (c.problem() for c in conns) if p]
    if bad:
        sc.fail("%s: %d of %d clients did not get exactly their own replies:\n  %s%s"
                % (what, len(bad), len(conns), "\n  ".join(bad[:5]), "\n  ..." if len(bad) > 5 else ""))


# ---------- by hand ----------------------------------------------------------------------

def main():
    import random
    p = argparse.ArgumentParser(description="the lab 09 protocol by hand")
    p.add_argument("--port", type=int, default=9527)
    p.add_argument("--addr", default="127.0.0.1")
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("ask", help="send each EXPR as a frame (pipelined), print the replies")
    a.add_argument("expr", nargs="+")
    l = sub.add_parser("lines", help="print random expressions, one a line")
    l.add_argument("--count", type=int, default=100)
    l.add_argument("--seed", type=int, default=1)
    sub.add_parser("answer", help="stdin lines -> what the client program must print")
    args = p.parse_args()
    self_check()
    if args.cmd == "lines":
        rng = random.Random(args.seed)
        out = sys.stdout.buffer
        n = 0
        while n < args.count:
            e = random_expression(rng)
            if b"\n" in e or b"\r" in e or b"\x00" in e:
                continue  # a line cannot hold a newline; NUL makes poor shell input
            out.write(e + b"\n")
            n += 1
        return 0
    if args.cmd == "answer":
        data = sys.stdin.buffer.read()
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        for line in lines:
            print(client_line(line))
        return 0
    s = socket.create_connection((args.addr, args.port), timeout=5)
    exprs = [e.encode("latin-1") for e in args.expr]
    data = b"".join(frame(e) for e in exprs)
    print("sent: %s" % show(data, 200))
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    buf = b""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            buf += b
    except ConnectionResetError:
        print("(the server reset the connection)")
    print("received: %s" % show(buf, 400))
    rp = ReplyParser()
    rp.feed(buf)
    for e, r in zip(exprs, rp.replies):
        print("%-40s -> %-24s (expected %s)" % (show(e, 38), show(r), reply(e).decode()))
    if rp.error:
        print("not a frame: %s" % rp.error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
