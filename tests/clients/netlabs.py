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
in seconds: a scenario never runs longer), --progress-timeout (how long it
waits while nothing moves: no byte sent or received although the server owes
some; default 3 s, or $NETLABS_PROGRESS_TIMEOUT) and --seed (the random
payload; printed in the reproduce line, so a failure can be replayed byte for
byte).

A server that stops making progress fails within --progress-timeout, however
long --timeout is: a slow server that keeps moving bytes gets the whole
deadline, a stuck one is reported at once.  Before a stuck scenario exits,
serverstate.py reads what the server is doing from /proc (where each thread
waits, its sockets, what is left unread) and the FAIL message ends with the
likely cause when the facts name one.
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
import weakref

import serverstate

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
    p.add_argument("--progress-timeout", type=float, metavar="S",
                   default=float(os.environ.get("NETLABS_PROGRESS_TIMEOUT") or 3.0),
                   help="give up once nothing has moved for S seconds while the server owes bytes "
                        "(default 3, or $NETLABS_PROGRESS_TIMEOUT; 0: only --timeout)")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed for the payload (default: a fresh one, printed on failure)")
    if hold:
        p.add_argument("--hold", action="store_true",
                       help='once connected, print "ready" and hold until stdin reaches EOF')
    return p


_fail_lock = threading.Lock()


class Scenario:
    """The parsed arguments plus a deadline, a progress clock, a seeded RNG
    and failure reporting."""

    def __init__(self, args):
        self.args = args
        if args.seed is None:
            args.seed = int.from_bytes(os.urandom(4), "big")
        self.rng = random.Random(args.seed)
        self.started = time.monotonic()
        self.deadline = self.started + args.timeout
        self.name = os.path.basename(sys.argv[0])
        # Progress: the last time a byte moved either way (or the end of a
        # pause the client itself made).  Shared by every thread and
        # connection of the scenario: a server that serves anyone is moving.
        pt = getattr(args, "progress_timeout", None)
        self.patience = pt if pt and pt > 0 else None
        self.last_progress = self.started
        self.socks = []  # weak references to every connection made, for the diagnosis

    # -- time --
    def remaining(self):
        return self.deadline - time.monotonic()

    def elapsed(self):
        return time.monotonic() - self.started

    # -- progress --
    def progress(self):
        """A byte moved (or a deliberate pause ended): restart the clock."""
        now = time.monotonic()
        if now > self.last_progress:
            self.last_progress = now

    def pause(self, seconds):
        """The client itself is about to move nothing for `seconds` (it stops
        reading on purpose): the clock starts again once the pause is over."""
        until = time.monotonic() + seconds
        if until > self.last_progress:
            self.last_progress = until

    def stalled(self):
        """Seconds since anything moved, if that is more than the patience;
        else 0."""
        if self.patience is None:
            return 0
        quiet = time.monotonic() - self.last_progress
        return quiet if quiet > self.patience else 0

    def wait_limit(self, end=None):
        """How long one blocking wait may last: until the deadline (or
        `end`), or until the patience runs out, whichever comes first.
        Never below 10 ms: the caller then checks stalled() and remaining()."""
        end = self.deadline if end is None else min(end, self.deadline)
        left = end - time.monotonic()
        if self.patience is not None:
            left = min(left, self.last_progress + self.patience - time.monotonic() + 0.01)
        return max(0.01, left)

    # -- results --
    def reproduce(self):
        """The command line that replays this run, seed included."""
        argv = [a for a in sys.argv[1:]]
        if "--seed" not in argv:
            argv += ["--seed", str(self.args.seed)]
        path = os.path.abspath(sys.argv[0])
        if not os.path.relpath(path).startswith(".."):
            path = os.path.relpath(path)
        return "python3 " + " ".join(shlex.quote(a) for a in [path] + argv)

    def fail(self, message, socks=None, waiting_for="reply", state=True):
        """Report and exit 1, from any thread (os._exit: sys.exit in a
        thread would only end that thread).  The first thread to fail
        reports; any other blocks here until the process is gone, so two
        reports never run together.  Unless the message already names a
        likely cause (or state=False), the server's state follows it,
        read while this client's connections (socks: the ones that went
        wrong; default all) are still open."""
        _fail_lock.acquire()  # never released: this process ends here
        sys.stdout.flush()
        lines = ["FAIL: %s" % message.rstrip("\n")]
        if state and "likely cause:" not in message:
            lines += ["  " + x for x in self.server_state(socks, waiting_for)]
        lines.append("reproduce: %s" % self.reproduce())
        try:
            os.write(2, ("\n".join(lines) + "\n").encode(errors="replace"))
        except OSError:
            pass
        os._exit(EXIT_FAIL)

    def server_state(self, socks=None, waiting_for="reply"):
        """serverstate.report() for this server and these connections."""
        ports = []
        if socks is None:
            socks = [s for s in (r() for r in self.socks) if s is not None]
        for s in socks:
            try:
                ports.append(s.getsockname()[1])
            except OSError:
                pass  # closed already
        return serverstate.report(self.args.port, ports, waiting_for=waiting_for)

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
                                         timeout=max(0.1, self.wait_limit()))
        except socket.timeout:
            self.fail("%s to %s:%d: no answer to the handshake within %.1f s: the kernel no longer "
                      "queues connections for this server (its listen backlog is full: it stopped "
                      "accepting)" % (what, self.args.addr, self.args.port, time.monotonic() - self.last_progress))
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
        self.socks.append(weakref.ref(s))
        self.progress()
        return s

    def hold(self, message="ready"):
        """Print the ready line, then block until stdin reaches EOF."""
        print(message)
        sys.stdout.flush()
        while sys.stdin.buffer.read(4096):
            pass
        self.progress()  # holding was our choice: the clock starts now


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
    offset, both sides around it in hex, and the likely cause when the
    difference has a telltale shape (see data_cause)."""
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
    msg = "%s\n  expected:\n%s\n  got:\n%s" % (head, hexdump(want, start), hexdump(got, start))
    cause = data_cause(want, got, off) if off < n else None
    return msg + ("\n  likely cause: " + cause if cause else "")


def data_cause(want, got, off):
    """What a wrong reply says about the server, from its shape alone: bytes
    after a NUL left as they were (C string functions on binary data),
    letters not uppercased, non-letters changed, another client's bytes,
    bytes missing or repeated.  None when the shape says nothing."""
    w, g = want[off], got[off]
    tag = b"CLIENT "  # concurrency.py's payloads start "client NNNNNN round R:"
    if want.startswith(tag) and got.startswith(tag) and want[:20] != got[:20]:
        return ("another client's bytes (%s) came back on this connection: connections are mixed up "
                "(one buffer or fd shared between clients, e.g. a thread given &connfd instead of its "
                "value)" % got[:22].decode(errors="replace").rstrip(":"))
    if 0x61 <= g <= 0x7A and w == g - 32:
        nul = want.rfind(b"\0", max(0, off - 65536), off)
        if nul >= 0 and want.find(b"\0", off, off + 1) < 0 and _unchanged_after(want, got, off):
            return ("from the NUL byte at offset %d on, letters came back as sent (not uppercased): the "
                    "server handles the data as a C string (strlen(), strchr(), %%s stop at the first NUL). "
                    "TCP carries bytes, not strings: use the count read() returned" % nul)
        return ("letters from offset %d on came back as sent, not uppercased: upcase every byte that "
                "read() returned, using its count" % off)
    if not (0x61 <= want[off] + 32 <= 0x7A) and g != w and g not in range(0x41, 0x5B) and \
            _unchanged_after(want, got, off + 1, 256):
        return ("byte 0x%02x at offset %d came back as 0x%02x: only the ASCII letters a-z may change "
                "(toupper() under a locale, or arithmetic on every byte, also changes others)" % (w, off, g))
    probe = got[off:off + 48]
    if len(probe) >= 16:
        k = want.find(probe, off + 1, off + (8 << 20))
        if k > off:
            return ("%d bytes are missing at offset %d (what came next is the data from offset %d): "
                    "bytes were dropped between read() and write(): a short write whose rest was "
                    "never sent, or a buffer reused before it was sent" % (k - off, off, k))
    probe = want[off:off + 48]
    if len(probe) >= 16:
        k = got.find(probe, off + 1, off + (8 << 20))
        if k > off:
            return ("%d extra bytes at offset %d (the right data resumes at offset %d of the reply): "
                    "bytes were sent twice, e.g. after a short write the whole buffer again instead "
                    "of the rest" % (k - off, off, k))
    return None


def _unchanged_after(want, got, off, span=4096):
    """Do got and want differ only by letters left lowercase in got[off:off+span]?"""
    a, b = want[off:off + span], got[off:off + span]
    return len(a) == len(b) and a == b.upper()


def check(sc, want, got, what="reply"):
    """Fail the scenario unless got == want."""
    msg = compare(want, got, what)
    if msg:
        sc.fail(msg)


# ---------- moving bytes ------------------------------------------------------------

class Reader(threading.Thread):
    """Reads a socket in a thread of its own until `want` bytes arrived (or,
    with until_eof, until EOF), so the writer never deadlocks against a
    server that echoes while it reads.  After join(): data, eof, error.
    With sc, every byte counts as the scenario's progress, and the reader
    gives up (error "stall") once nothing has moved for sc's patience."""

    def __init__(self, sock, want, deadline, until_eof=False, start_after=None, sc=None):
        super().__init__(daemon=True)
        self.sock, self.want, self.deadline = sock, want, deadline
        self.until_eof, self.start_after, self.sc = until_eof, start_after, sc
        self.buf = bytearray()
        self.eof = False
        self.error = None  # a string: "timeout", "stall", "reset", or an errno text

    def run(self):
        if self.start_after is not None:
            self.start_after.wait()
        sc = self.sc
        try:
            while self.until_eof or len(self.buf) < self.want:
                left = self.deadline - time.monotonic()
                if left <= 0:
                    self.error = "timeout"
                    return
                if sc is not None and sc.stalled():
                    self.error = "stall"
                    return
                wait = min(left, 0.5) if sc is None else min(left, sc.wait_limit())
                r, _, _ = select.select([self.sock], [], [], wait)
                if not r:
                    continue
                limit = 1 << 20
                if not self.until_eof:
                    limit = min(limit, self.want - len(self.buf))
                b = self.sock.recv(limit)
                if sc is not None:
                    sc.progress()
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
    """Send data (in chunks of the given sizes), within the deadline, and
    while the server keeps taking bytes.  A server that stopped reading shows
    up here: no byte taken for the patience, or the deadline."""
    view = memoryview(data)
    sizes = sizes or [len(data)]
    off = 0
    try:
        for n in sizes:
            end = off + n
            while off < end:
                if sc.remaining() <= 0:
                    raise socket.timeout
                quiet = sc.stalled()
                if quiet:
                    sc.fail("%s: the server has taken no byte for %.1f s, with %d of %d bytes sent: "
                            "it stopped reading this connection" % (what, quiet, off, len(data)),
                            socks=[sock])
                sock.settimeout(sc.wait_limit())
                try:
                    off += sock.send(view[off:end])
                except socket.timeout:
                    continue
                sc.progress()
    except socket.timeout:
        sc.fail("%s: timed out after %.1f s with %d of %d bytes sent: the server stopped "
                "reading (is it blocked writing to a client that does not read?)"
                % (what, sc.elapsed(), off, len(data)), socks=[sock])
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
    if reader.error in ("timeout", "stall"):
        if reader.error == "stall":
            when = "nothing more came for %.1f s" % (time.monotonic() - sc.last_progress)
        else:
            when = "the deadline (%.1f s) passed" % sc.args.timeout
        if got == want and expect_eof:
            sc.fail("%s: all %d bytes came back, but no EOF followed (%s): the server must "
                    "close the connection once the client has half-closed and the echo is sent"
                    % (what, len(want), when), socks=[reader.sock], waiting_for="eof")
        if want.startswith(got):
            sc.fail("%s: %d of %d bytes came back (all correct so far), then %s: the server "
                    "stopped sending" % (what, len(got), len(want), when), socks=[reader.sock])
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
        sc.fail("%s: no EOF after the echo" % what, socks=[reader.sock], waiting_for="eof")


def exchange(sc, sock, data, sizes=None, shutdown=True, what="echo", hint=""):
    """Send data while a reader thread collects the reply; check it is
    exactly expected(data), then (with shutdown) a clean EOF."""
    want = expected(data)
    r = Reader(sock, len(want), sc.deadline, until_eof=shutdown, sc=sc)
    r.start()
    send_all(sc, sock, data, sizes, what, hint)
    if shutdown:
        sock.shutdown(socket.SHUT_WR)
    r.join()
    reader_verdict(sc, r, want, what, expect_eof=shutdown, hint=hint)


def recv_exact(sc, sock, n, what="reply", limit=None):
    """Read exactly n bytes before the deadline (or `limit` seconds), while
    bytes keep coming.  Returns (data, reason) where reason is None,
    "timeout", "stall" (nothing for the patience), "eof" or "reset"."""
    end = sc.deadline if limit is None else min(sc.deadline, time.monotonic() + limit)
    buf = bytearray()
    try:
        while len(buf) < n:
            if time.monotonic() >= end:
                return bytes(buf), "timeout"
            if sc.stalled():
                return bytes(buf), "stall"
            sock.settimeout(sc.wait_limit(end))
            try:
                b = sock.recv(n - len(buf))
            except socket.timeout:
                continue
            sc.progress()
            if not b:
                return bytes(buf), "eof"
            buf += b
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
                % (what, limit if limit is not None else sc.args.timeout, len(got), len(want)),
                socks=[sock])
    if why == "stall":
        sc.fail("%s: %d of %d bytes came back, then nothing for %.1f s: the server stopped answering"
                % (what, len(got), len(want), time.monotonic() - sc.last_progress), socks=[sock])
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
    one thread, until each has its whole reply (or EOF, reset), the time runs
    out (the deadline, or `limit` seconds), or nothing has moved on any of
    them for the patience.  Never fails by itself: returns None when every
    conn is done, else "stall", "limit" or "deadline"."""
    end = sc.deadline if limit is None else min(sc.deadline, time.monotonic() + limit)
    sel = selectors.DefaultSelector()
    for c in conns:
        if not c.done:
            c.sock.setblocking(False)
            ev = selectors.EVENT_READ | (selectors.EVENT_WRITE if c.sent < len(c.out) else 0)
            sel.register(c.sock, ev, c)
    why = None
    try:
        while sel.get_map():
            if time.monotonic() >= end:
                why = "deadline" if end >= sc.deadline else "limit"
                break
            if limit is None and sc.stalled():
                why = "stall"
                break
            wait = end - time.monotonic() if limit is not None else sc.wait_limit(end)
            for key, ev in sel.select(max(0.01, min(wait, 0.5))):
                c = key.data
                try:
                    if ev & selectors.EVENT_WRITE:
                        c.sent += c.sock.send(c.out[c.sent:c.sent + 65536])
                        sc.progress()
                        if c.sent >= len(c.out):
                            sel.modify(c.sock, selectors.EVENT_READ, c)
                    if ev & selectors.EVENT_READ:
                        b = c.sock.recv(65536)
                        if not b:
                            c.eof = True
                        c.got += b
                        sc.progress()
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
    if why is None and any(not c.done for c in conns):
        why = "deadline"
    return why


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


def stuck(conns):
    """The sockets of the conns that did not get their whole reply."""
    return [c.sock for c in conns if conn_problem(c) is not None]


def pump_why(why, sc):
    """A clause for a failure message: how pump() ended."""
    if why == "stall":
        return " (nothing moved on any connection for %.1f s)" % (time.monotonic() - sc.last_progress)
    if why == "deadline":
        return " (the %.0f s deadline passed)" % sc.args.timeout
    return ""


def connect_many(sc, n, label="client"):
    """n connected sockets, opened one after another, as Conns."""
    conns = []
    for i in range(n):
        conns.append(Conn(sc.connect("%s %d of %d: connect" % (label, i, n)), "%s %d" % (label, i)))
    return conns
