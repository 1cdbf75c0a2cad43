"""udp_lib.py - what the UDP and multicast test clients share (labs 11 and 12;
python3 standard library only).

Same conventions as the TCP scenarios (netlabs.py): exit status 0 pass (one
"ok: ..." line on stdout), 1 a check failed ("FAIL: ..." on stderr: what was
expected, what came back, and a "reproduce:" command line), 3 the scenario
could not even start; options --port, --addr, --timeout and --seed.
"""

import argparse
import os
import random
import shlex
import sys
import time

EXIT_PASS, EXIT_FAIL, EXIT_NOSTART = 0, 1, 3

# The largest UDP payload over IPv4: 65,535 - 20 (IP header) - 8 (UDP header).
UDP_MAX_PAYLOAD = 65507


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--port", type=int, required=True, help="server port")
    p.add_argument("--addr", default="127.0.0.1", help="server address (default 127.0.0.1)")
    p.add_argument("--timeout", type=float, default=20.0,
                   help="overall deadline in seconds (default 20)")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed (default: a fresh one, printed on failure)")
    return p


class Scenario:
    """Parsed arguments, a deadline, a seeded RNG, and the reports."""

    def __init__(self, args):
        self.args = args
        if args.seed is None:
            args.seed = int.from_bytes(os.urandom(4), "big")
        self.rng = random.Random(args.seed)
        self.started = time.monotonic()
        self.deadline = self.started + args.timeout

    def remaining(self):
        return self.deadline - time.monotonic()

    def server_gone(self):
        """True once the harness's server ($NETLABS_SERVER_PID, when set)
        has exited: a lost datagram and a dead server look the same from
        here, so a client about to resend asks /proc instead of waiting out
        every retransmission."""
        pid = os.environ.get("NETLABS_SERVER_PID", "")
        if not pid.isdigit():
            return False
        try:
            with open("/proc/%s/stat" % pid) as f:
                return f.read().rpartition(")")[2].split()[0] == "Z"
        except OSError:
            return True

    def elapsed(self):
        return time.monotonic() - self.started

    def reproduce(self):
        argv = list(sys.argv[1:])
        if "--seed" not in argv:
            argv += ["--seed", str(self.args.seed)]
        path = os.path.abspath(sys.argv[0])
        if not os.path.relpath(path).startswith(".."):
            path = os.path.relpath(path)
        return "python3 " + " ".join(shlex.quote(a) for a in [path] + argv)

    def fail(self, message):
        sys.stdout.flush()
        sys.stderr.write("FAIL: %s\nreproduce: %s\n" % (message.rstrip("\n"), self.reproduce()))
        sys.stderr.flush()
        os._exit(EXIT_FAIL)

    def ok(self, message):
        print("ok: %s (%.3f s)" % (message, self.elapsed()))
        sys.stdout.flush()
        sys.exit(EXIT_PASS)


def expected(data):
    """The echo's answer: ASCII a-z uppercased, every other byte as it was."""
    return bytes(data).upper()  # bytes.upper() maps ASCII letters only


def hexdump(data, start=0, width=16, lines=2):
    rows = []
    for off in range(start, min(len(data), start + width * lines), width):
        row = data[off:off + width]
        rows.append("    %08x  %-*s |%s|" % (
            off, width * 3, " ".join("%02x" % b for b in row),
            "".join(chr(b) if 32 <= b < 127 else "." for b in row)))
    return "\n".join(rows) if rows else "    (nothing: 0 bytes)"


def first_diff(want, got):
    n = min(len(want), len(got))
    for i in range(n):
        if want[i] != got[i]:
            return i
    return n


def describe(want, got):
    """One datagram compared with the one expected: what differs, in hex."""
    off = first_diff(want, got)
    if off < min(len(want), len(got)):
        head = "differs at byte %d (%d bytes expected, %d came)" % (off, len(want), len(got))
    elif len(got) < len(want):
        head = "is short: %d of the %d bytes expected, all of them right" % (len(got), len(want))
    else:
        head = "is too long: %d bytes, %d expected" % (len(got), len(want))
    start = max(0, (off // 16) * 16 - 16)
    return "%s\n  expected:\n%s\n  came:\n%s" % (head, hexdump(want, start), hexdump(got, start))


def short(data, n=60):
    """A datagram for a message: its length and its first bytes."""
    s = repr(bytes(data[:n]))[2:-1]
    return "%d bytes '%s%s'" % (len(data), s, "..." if len(data) > n else "")
