"""netlabs.py - what every test client shares (python3 standard library only).

A client script is a scenario: it connects to a server speaking the
uppercase-echo service (GUIDE.md, "The service and the command line"), does
one thing a real client might do, checks every byte that comes back, and
exits:

    0  pass            (one "ok: ..." line on stdout)
    1  check failed    ("FAIL: ..." on stderr: expected vs got, the first
                        differing offset, and a "reproduce:" command line)
    3  cannot connect  (the server is not there; nothing was checked)

Every script takes --port (required), --addr, --timeout (an overall deadline
in seconds: a scenario never runs longer) and --seed (the random payload;
printed in the reproduce line, so a failure can be replayed byte for byte).
"""

import argparse
import os
import random
import resource
import select
import selectors
import shlex
import socket
import struct
import sys
import threading
import time

EXIT_PASS, EXIT_FAIL, EXIT_NOCONN = 0, 1, 3

# Scale scenarios hold thousands of sockets: take the whole fd allowance.
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if _soft != _hard:
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (_hard, _hard))
    except (ValueError, OSError):
        pass


# ---------- command line ---------------------------------------------------------

def parser(description, hold=False):
    """An ArgumentParser with the options every scenario shares."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--port", type=int, required=True, help="server port")
    p.add_argument("--addr", default="127.0.0.1", help="server address (default 127.0.0.1)")
    p.add_argument("--timeout", type=float, default=20.0,
                   help="overall deadline in seconds (default 20)")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed for the payload (default: a fresh one, printed on failure)")
    if hold:
        p.add_argument("--hold", action="store_true",
                       help='once connected, print "ready" and hold until stdin reaches EOF')
    return p


class Scenario:
    """The parsed arguments plus a deadline, a seeded RNG and failure reporting."""

    def __init__(self, args):
        self.args = args
        if args.seed is None:
            args.seed = int.from_bytes(os.urandom(4), "big")
        self.rng = random.Random(args.seed)
        self.started = time.monotonic()
        self.deadline = self.started + args.timeout
        self.name = os.path.basename(sys.argv[0])

    # -- time --
    def remaining(self):
        return self.deadline - time.monotonic()

    def elapsed(self):
        return time.monotonic() - self.started

    # -- results --
    def reproduce(self):
        """The command line that replays this run, seed included."""
        argv = [a for a in sys.argv[1:]]
        if "--seed" not in argv:
            argv += ["--seed", str(self.args.seed)]
        path = os.path.relpath(os.path.abspath(sys.argv[0]))
        return "python3 " + " ".join(shlex.quote(a) for a in [path] + argv)

    def fail(self, message):
        """Report and exit 1, from any thread (os._exit: sys.exit in a
        thread would only end that thread)."""
        sys.stdout.flush()
        print("FAIL: %s" % message.rstrip("\n"), file=sys.stderr)
        print("reproduce: %s" % self.reproduce(), file=sys.stderr)
        sys.stderr.flush()
        os._exit(EXIT_FAIL)

    def ok(self, message):
        print("ok: %s (%.3f s)" % (message, self.elapsed()))
        sys.stdout.flush()
        sys.exit(EXIT_PASS)

    # -- connections --
    def connect(self, what="connect", gone=None):
        """A connected blocking socket, or exit 3 (the server is not there).
        With gone (a sentence), a refused connection is a failure instead:
        the server was there before, so it died."""
        try:
            s = socket.create_connection((self.args.addr, self.args.port),
                                         timeout=max(0.1, self.remaining()))
        except socket.timeout:
            self.fail("%s to %s:%d timed out: the server accepts no new connection "
                      "(listen backlog full?)" % (what, self.args.addr, self.args.port))
        except ConnectionRefusedError:
            if gone:
                self.fail("%s: connection refused: the server is gone. %s" % (what, gone))
            print("cannot connect to %s:%d: connection refused" % (self.args.addr, self.args.port),
                  file=sys.stderr)
            os._exit(EXIT_NOCONN)
        except OSError as e:
            print("cannot connect to %s:%d: %s" % (self.args.addr, self.args.port, e.strerror),
                  file=sys.stderr)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_NOCONN)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def hold(self, message="ready"):
        """Print the ready line, then block until stdin reaches EOF."""
        print(message)
        sys.stdout.flush()
        while sys.stdin.buffer.read(4096):
            pass


# ---------- payloads and checks ----------------------------------------------------

def expected(data):
    """What the service sends back: ASCII a-z uppercased, every other byte as is."""
    return bytes(data).upper()  # bytes.upper() maps ASCII letters only


def payload(rng, size, all_values=True):
    """size random bytes; with all_values, every byte value 0-255 appears in
    the first 256 bytes (in a random order), NUL and 0x80-0xFF included."""
    head = b""
    if all_values:
        values = list(range(256))
        rng.shuffle(values)
        head = bytes(values)[:size]
    return head + rng.randbytes(max(0, size - len(head)))


def chunks(rng, size, lo=1, hi=65536):
    """Random chunk lengths adding up to size."""
    out, left = [], size
    while left > 0:
        n = min(left, rng.randint(lo, hi))
        out.append(n)
        left -= n
    return out


def hexdump(data, start, width=16, lines=2):
    rows = []
    for off in range(start, min(len(data), start + width * lines), width):
        row = data[off:off + width]
        rows.append("    %08x  %-*s |%s|" % (
            off, width * 3, " ".join("%02x" % b for b in row),
            "".join(chr(b) if 32 <= b < 127 else "." for b in row)))
    return "\n".join(rows) if rows else "    (nothing)"


def first_diff(want, got):
    """Offset of the first difference (len of the shorter if one is a prefix)."""
    n = min(len(want), len(got))
    lo, step = 0, 65536
    while lo < n and want[lo:lo + step] == got[lo:lo + step]:
        lo += step
    for i in range(lo, min(n, lo + step)):
        if want[i] != got[i]:
            return i
    return n


def compare(want, got, what="reply"):
    """None if got == want, else a message: lengths, the first differing
    offset, and both sides around it in hex."""
    if got == want:
        return None
    n = min(len(want), len(got))
    off = first_diff(want, got)
    if off < n:
        head = "%s differs at byte offset %d (%d bytes expected, %d received)" % (
            what, off, len(want), len(got))
    elif len(got) < len(want):
        head = "%s is short: %d of %d bytes arrived (all of them right)" % (
            what, len(got), len(want))
    else:
        head = "%s is too long: %d bytes arrived, %d expected (the extra bytes start at offset %d)" % (
            what, len(got), len(want), off)
    start = max(0, (off // 16) * 16 - 16)
    return "%s\n  expected:\n%s\n  got:\n%s" % (head, hexdump(want, start), hexdump(got, start))


def check(sc, want, got, what="reply"):
    """Fail the scenario unless got == want."""
    msg = compare(want, got, what)
    if msg:
        sc.fail(msg)


# ---------- moving bytes ------------------------------------------------------------

class Reader(threading.Thread):
    """Reads a socket in a thread of its own until `want` bytes arrived (or,
    with until_eof, until EOF), so the writer never deadlocks against a
    server that echoes while it reads.  After join(): data, eof, error."""

    def __init__(self, sock, want, deadline, until_eof=False, start_after=None):
        super().__init__(daemon=True)
        self.sock, self.want, self.deadline = sock, want, deadline
        self.until_eof, self.start_after = until_eof, start_after
        self.buf = bytearray()
        self.eof = False
        self.error = None  # a string: "timeout", "reset", or an errno text

    def run(self):
        if self.start_after is not None:
            self.start_after.wait()
        try:
            while self.until_eof or len(self.buf) < self.want:
                left = self.deadline - time.monotonic()
                if left <= 0:
                    self.error = "timeout"
                    return
                r, _, _ = select.select([self.sock], [], [], min(left, 0.5))
                if not r:
                    continue
                limit = 1 << 20
                if not self.until_eof:
                    limit = min(limit, self.want - len(self.buf))
                b = self.sock.recv(limit)
                if not b:
                    self.eof = True
                    return
                self.buf += b
        except ConnectionResetError:
            self.error = "reset"
        except OSError as e:
            self.error = e.strerror or str(e)

    @property
    def data(self):
        return bytes(self.buf)


def send_all(sc, sock, data, sizes=None, what="send", hint=""):
    """Send data (in chunks of the given sizes), within the deadline.  A
    server that stopped reading shows up here as a timeout."""
    view = memoryview(data)
    sizes = sizes or [len(data)]
    off = 0
    try:
        for n in sizes:
            end = off + n
            while off < end:
                left = sc.remaining()
                if left <= 0:
                    raise socket.timeout
                sock.settimeout(left)
                off += sock.send(view[off:end])
    except socket.timeout:
        sc.fail("%s: timed out after %.1f s with %d of %d bytes sent: the server stopped "
                "reading (is it blocked writing to a client that does not read?)"
                % (what, sc.elapsed(), off, len(data)))
    except ConnectionResetError:
        sc.fail("%s: the server reset the connection after %d of %d bytes were sent. %s"
                % (what, off, len(data), hint))
    except BrokenPipeError:
        sc.fail("%s: the server closed the connection after %d of %d bytes were sent. %s"
                % (what, off, len(data), hint))
    return off


def reader_verdict(sc, reader, want, what="reply", expect_eof=False, hint=""):
    """Fail with a precise message unless the reader got exactly want
    (and, with expect_eof, then a clean EOF)."""
    got = reader.data
    if reader.error == "timeout":
        if got == want and expect_eof:
            sc.fail("%s: all %d bytes came back, but no EOF within %.1f s: the server must "
                    "close the connection after the client half-closes and the echo is sent"
                    % (what, len(want), sc.args.timeout))
        if want.startswith(got):
            sc.fail("%s: timed out after %.1f s with %d of %d bytes received (all correct "
                    "so far): the server stopped sending" % (what, sc.elapsed(), len(got), len(want)))
        check(sc, want, got, what)
    if reader.error == "reset":
        if got == want and expect_eof:
            sc.fail("%s: all %d bytes came back, then the server reset the connection "
                    "instead of closing it cleanly" % (what, len(want)))
        sc.fail("%s: the server reset the connection after %d of %d bytes came back. %s"
                % (what, len(got), len(want), hint))
    if reader.error:
        sc.fail("%s: recv failed after %d of %d bytes: %s" % (what, len(got), len(want), reader.error))
    if reader.eof and len(got) < len(want):
        sc.fail("%s: the server closed the connection after %d of %d bytes came back%s"
                % (what, len(got), len(want),
                   "" if want.startswith(got) else "\n" + (compare(want, got, what) or "")))
    check(sc, want, got, what)
    if expect_eof and not reader.eof:
        sc.fail("%s: no EOF after the echo" % what)


def exchange(sc, sock, data, sizes=None, shutdown=True, what="echo", hint=""):
    """Send data while a reader thread collects the reply; check it is
    exactly expected(data), then (with shutdown) a clean EOF."""
    want = expected(data)
    r = Reader(sock, len(want), sc.deadline, until_eof=shutdown)
    r.start()
    send_all(sc, sock, data, sizes, what, hint)
    if shutdown:
        sock.shutdown(socket.SHUT_WR)
    r.join()
    reader_verdict(sc, r, want, what, expect_eof=shutdown, hint=hint)


def recv_exact(sc, sock, n, what="reply", limit=None):
    """Read exactly n bytes before the deadline (or `limit` seconds).
    Returns (data, reason) where reason is None, "timeout", "eof" or "reset"."""
    end = sc.deadline if limit is None else min(sc.deadline, time.monotonic() + limit)
    buf = bytearray()
    try:
        while len(buf) < n:
            left = end - time.monotonic()
            if left <= 0:
                return bytes(buf), "timeout"
            sock.settimeout(left)
            b = sock.recv(n - len(buf))
            if not b:
                return bytes(buf), "eof"
            buf += b
    except socket.timeout:
        return bytes(buf), "timeout"
    except ConnectionResetError:
        return bytes(buf), "reset"
    return bytes(buf), None


def echo_once(sc, sock, data, what="echo", limit=None):
    """Send data, read len(data) back, fail unless it is expected(data)."""
    send_all(sc, sock, data, what=what)
    got, why = recv_exact(sc, sock, len(data), what, limit)
    want = expected(data)
    if why == "timeout":
        sc.fail("%s: no complete reply within %.1f s (%d of %d bytes came back)"
                % (what, limit if limit is not None else sc.args.timeout, len(got), len(want)))
    if why == "eof":
        sc.fail("%s: the server closed the connection after %d of %d bytes came back"
                % (what, len(got), len(want)))
    if why == "reset":
        sc.fail("%s: the server reset the connection after %d of %d bytes came back"
                % (what, len(got), len(want)))
    check(sc, want, got, what)


def abort(sock):
    """Close with SO_LINGER {1, 0}: the kernel sends RST instead of FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# ---------- many connections at once --------------------------------------------

class Conn:
    """One connection in a pump(): what to send, what must come back."""

    def __init__(self, sock, label):
        self.sock, self.label = sock, label
        self.out = b""
        self.sent = 0
        self.want = b""
        self.got = bytearray()
        self.eof = False
        self.error = None

    def load(self, data):
        """Queue data to send; its uppercase is expected back."""
        self.out, self.sent = bytes(data), 0
        self.want = expected(data)
        self.got = bytearray()

    @property
    def done(self):
        return self.eof or self.error is not None or len(self.got) >= len(self.want)


def pump(sc, conns, limit=None):
    """Send every conn's queued bytes and read its replies, all at once, in
    one thread, until each has its whole reply (or EOF, reset) or the time
    runs out (the deadline, or `limit` seconds).  Never fails by itself."""
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
                        c.got += b
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


def conn_problem(c):
    """None if c got exactly its reply, else a one-line reason."""
    want, got = c.want, bytes(c.got)
    if got == want:
        return None
    if c.error:
        return "%s: %s after %d of %d bytes came back" % (c.label, c.error, len(got), len(want))
    if c.eof and want.startswith(got):
        return "%s: the server closed the connection after %d of %d bytes came back" % (
            c.label, len(got), len(want))
    if want.startswith(got):
        return "%s: no complete reply (%d of %d bytes came back)" % (c.label, len(got), len(want))
    return compare(want, got, c.label)


def connect_many(sc, n, label="client"):
    """n connected sockets, opened one after another, as Conns."""
    conns = []
    for i in range(n):
        conns.append(Conn(sc.connect("%s %d of %d: connect" % (label, i, n)), "%s %d" % (label, i)))
    return conns
