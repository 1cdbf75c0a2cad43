#!/usr/bin/env python3
"""mc_listen.py - listen to a multicast group and to broadcasts, record every
datagram, then check the records (lab 12).  Run it inside the network
namespace the test made (nsenter), like the servers.

    mc_listen.py listen [--group G:P]... [--bcast A:P]... --for S [--out FILE]
    mc_listen.py check FILE --dest D:P [--text T]... [--min N] [--max N]
                 [--gap LO-HI] [--first-by MS] [--ttl N]
    mc_listen.py send --to D:P [--ttl N] DATA...

listen: joins each group G (a socket bound to G:P: it hears that group
only) and binds each broadcast address A:P (SO_REUSEADDR: it hears the
broadcasts to A:P only), prints "ready MS" (MS: the wall clock in
milliseconds), records every datagram for S seconds, one JSON object a line
(t: milliseconds of the wall clock, dest, src, ttl: the IP TTL it arrived
with, data), to FILE or stdout, then exits 0.

check: the records to D:P must number at least --min (and at most --max)
and each be exactly one of the --text values; with --gap, each text's
datagrams must come LO to HI seconds apart; with --first-by, each text's
first must have come by MS (wall clock, milliseconds); with --ttl, every one
must carry that TTL.  Exit 0 ("ok: ...") or 1 ("FAIL: ..." with the records).

send: one datagram per DATA to D:P (multicast with --ttl, broadcast or
unicast), for the tests that throw junk at discover.
"""

import argparse
import json
import select
import socket
import struct
import sys
import time

IP_RECVTTL = 12  # <linux/in.h>; not in python's socket module
IP_TTL = 2


def endpoint(s):
    host, _, port = s.rpartition(":")
    socket.inet_aton(host)
    return host, int(port)


def listen(a):
    socks = {}
    for g in a.group:
        host, port = endpoint(g)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        mreq = struct.pack("4s4si", socket.inet_aton(host), socket.inet_aton("0.0.0.0"), 0)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        socks[s] = g
    for b in a.bcast:
        host, port = endpoint(b)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        s.bind((host, port))
        socks[s] = b
    for s in socks:
        s.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
        s.setblocking(False)
    out = open(a.out, "w") if a.out else sys.stdout
    print("ready %d" % int(time.time() * 1000))
    sys.stdout.flush()
    end = time.monotonic() + a.__dict__["for"]
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select(list(socks), [], [], left)
        for s in ready:
            while True:
                try:
                    data, anc, _, src = s.recvmsg(70000, 64)
                except BlockingIOError:
                    break
                ttl = None
                for level, kind, val in anc:
                    if level == socket.IPPROTO_IP and kind == IP_TTL:
                        ttl = struct.unpack("i", val[:4])[0]
                out.write(json.dumps({"t": int(time.time() * 1000), "dest": socks[s],
                                      "src": "%s:%d" % src, "ttl": ttl,
                                      "data": data.decode("latin-1")}) + "\n")
                out.flush()
    return 0


def check(a):
    recs = []
    with open(a.file) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                recs.append(json.loads(line))
    mine = [r for r in recs if r["dest"] == a.dest]

    def show(rs):
        if not rs:
            return "    (none)"
        t0 = rs[0]["t"]
        return "\n".join("    +%5d ms  from %-21s ttl %-3s %r" % (r["t"] - t0, r["src"], r["ttl"], r["data"][:60])
                         for r in rs[:20]) + ("\n    ... %d more" % (len(rs) - 20) if len(rs) > 20 else "")

    def fail(msg):
        print("FAIL: %s\n  what came to %s:\n%s" % (msg, a.dest, show(mine)))
        sys.exit(1)

    if a.text:
        odd = [r for r in mine if r["data"] not in a.text]
        if odd:
            fail("expected only %s at %s; also came %r" % (
                " or ".join(repr(t) for t in a.text), a.dest, odd[0]["data"][:80]))
    if len(mine) < a.min:
        fail("expected at least %d datagram%s at %s; %d came" % (a.min, "" if a.min == 1 else "s", a.dest, len(mine)))
    if a.max is not None and len(mine) > a.max:
        fail("expected at most %d datagrams at %s; %d came" % (a.max, a.dest, len(mine)))
    if a.ttl is not None:
        bad = [r for r in mine if r["ttl"] != a.ttl]
        if bad:
            fail("expected every announcement to carry TTL %d (IP_MULTICAST_TTL); one came with TTL %s" % (a.ttl, bad[0]["ttl"]))
    for text in a.text or []:
        ts = [r["t"] for r in mine if r["data"] == text]
        if a.first_by is not None and ts and ts[0] > a.first_by:
            fail("the first %r came %d ms after the server was up: expected one at start (within %d ms)" % (
                text, ts[0] - (a.first_by - a.first_slack), a.first_slack))
        if a.gap and len(ts) > 1:
            lo, _, hi = a.gap.partition("-")
            gaps = [(b - x) / 1000 for x, b in zip(ts, ts[1:])]
            if any(g < float(lo) or g > float(hi) for g in gaps):
                fail("expected %r every second (gaps of %s s); the gaps were %s s" % (
                    text, a.gap, ", ".join("%.2f" % g for g in gaps)))
    print("ok: %d datagram%s at %s" % (len(mine), "" if len(mine) == 1 else "s", a.dest))
    return 0


def send(a):
    host, port = endpoint(a.to)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, a.ttl)
    for d in a.data:
        s.sendto(d.encode("latin-1").decode("unicode_escape").encode("latin-1"), (host, port))
    print("ok: sent %d datagrams to %s" % (len(a.data), a.to))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    l = sub.add_parser("listen")
    l.add_argument("--group", action="append", default=[])
    l.add_argument("--bcast", action="append", default=[])
    l.add_argument("--for", type=float, required=True)
    l.add_argument("--out", default=None)
    c = sub.add_parser("check")
    c.add_argument("file")
    c.add_argument("--dest", required=True)
    c.add_argument("--text", action="append", default=None)
    c.add_argument("--min", type=int, default=0)
    c.add_argument("--max", type=int, default=None)
    c.add_argument("--gap", default=None)
    c.add_argument("--first-by", type=int, default=None)
    c.add_argument("--first-slack", type=int, default=0, help="(for the message) the allowance in --first-by")
    c.add_argument("--ttl", type=int, default=None)
    s = sub.add_parser("send")
    s.add_argument("--to", required=True)
    s.add_argument("--ttl", type=int, default=1)
    s.add_argument("data", nargs="+", help="python escapes allowed: '\\x00'")
    a = p.parse_args()
    sys.exit({"listen": listen, "check": check, "send": send}[a.cmd](a))


if __name__ == "__main__":
    main()
