#!/usr/bin/env python3
"""calc_boundary.py - frames across the 4 KiB buffer boundaries, and max-size payloads.

    python3 tests/clients/calc_boundary.py --port 9527

The server reads into pooled buffers of 4 KiB, 8 KiB, 16 KiB...  A frame
that starts in one buffer's worth of input and ends in the next is where a
parser that assumes "a read holds whole frames", or forgets a partial frame
when its buffer grows or moves, goes wrong.  Padding frames (valid 1024-byte
and shorter requests with leading zeros) place a test frame so that stream
offsets 4096, 8192, 12288, 16384, 32768, 65536 and 131072 fall at a chosen
byte inside it: in its LEN, on its first '@', inside its payload, on its
trailing '@'.  Test frames: a 1024-byte payload (the maximum) and a short one.
Each placement is one connection, sent in one write, and again on another
connection in writes that end exactly at each boundary (each write waits for
the replies to the frames it completed, so the server has read it).  First,
max-size 1024-byte payloads of every status, on one connection.
"""
import socket

import calcproto
import netlabs

BOUNDARIES = [4096, 8192, 12288, 16384, 32768, 65536, 131072]


def padded(tail, size=1024):
    """A request payload of exactly `size` bytes: zeros, then tail."""
    return b"0" * (size - len(tail)) + tail


def pad_payloads(n):
    """Request payloads whose frames fill exactly n bytes (n >= 8)."""
    out = []
    while n > 2 * 1030:
        out.append(padded(b"1 + 1"))
        n -= 1030
    # One or two frames for the rest: try a split where both sizes exist.
    for a in range(0, n + 1):
        b = n - a
        pa, pb = payload_for(a), payload_for(b)
        if (a == 0 or pa is not None) and pb is not None:
            if a:
                out.append(pa)
            out.append(pb)
            return out
    raise ValueError("cannot pad %d bytes" % n)


def payload_for(total):
    """A request payload whose frame is exactly `total` bytes, or None."""
    for digits in (1, 2, 3, 4):
        m = total - digits - 2
        if 5 <= m <= 1024 and len(b"%d" % m) == digits:
            return padded(b"1 + 1", m)
    return None


def placement(test_payload, k):
    """Request payloads for a stream where test_payload's frame has its
    byte k at each boundary, and the stream offsets of every frame's end."""
    f = calcproto.frame(test_payload)
    reqs, pos = [], 0
    for b in BOUNDARIES:
        start = b - k
        reqs += pad_payloads(start - pos)
        reqs.append(test_payload)
        pos = start + len(f)
    return reqs


def ends_of(reqs):
    out, off = [], 0
    for r in reqs:
        off += len(calcproto.frame(r))
        out.append(off)
    return out


def run(sc, reqs, what, at_boundaries):
    data = b"".join(calcproto.frame(r) for r in reqs)
    sock = sc.connect(what + ": connect")
    parser = calcproto.ReplyParser()
    if not at_boundaries:
        reader = calcproto.ReplyReader(sock, len(reqs), sc.deadline, parser=parser)
        reader.start()
        netlabs.send_all(sc, sock, data, what=what)
        reader.join()
        calcproto.check_replies(sc, reqs, reader, what)
    else:
        ends = ends_of(reqs)
        cuts = [b for b in BOUNDARIES if b < len(data)] + [len(data)]
        prev = 0
        for cut in cuts:
            netlabs.send_all(sc, sock, data[prev:cut], what="%s (the write of bytes %d-%d)" % (what, prev, cut))
            whole = sum(1 for e in ends if e <= cut)
            r = calcproto.read_replies(sc, sock, whole, parser=parser, limit=5)
            calcproto.check_replies(sc, reqs[:whole], r, "%s, after the write that ends at offset %d" % (what, cut))
            prev = cut
    sock.shutdown(socket.SHUT_WR)
    r = calcproto.read_replies(sc, sock, None, parser=parser, limit=5)
    calcproto.check_replies(sc, reqs, r, what + ", then a half-close", expect_eof=True)
    sock.close()


def main():
    p = netlabs.parser(__doc__.split("\n")[0])
    sc = netlabs.Scenario(p.parse_args())
    calcproto.self_check()
    # Max-size payloads, every status.
    maxes = [padded(b"1 + 2"), padded(b"9223372036854775807 + 1"), padded(b"7 / 0"), padded(b"1 ^ 2"),
             b"1" * 1024, b" " * 1024, padded(b"-1 * -9223372036854775807"), padded(b"x")]
    maxes.append(b"-" + padded(b"5 % 3", 1023))
    run(sc, maxes, "1024-byte payloads (the maximum LEN)", False)
    tests = [padded(b"7 * -1"), b"4095 + 1"]
    count = 0
    for t in tests:
        f = calcproto.frame(t)
        ks = sorted(set([1, 2, 3, 4, 5, 6, len(f) // 2, len(f) - 1]))
        for k in ks:
            reqs = placement(t, k)
            for at_b in (False, True):
                what = ("the frame %s placed so that byte %d of it (%s) falls at each of stream offsets %s, %s"
                        % (calcproto.show(f, 30), k, calcproto.show(f[k:k + 1]), ", ".join(map(str, BOUNDARIES)),
                           "in writes that end at those offsets" if at_b else "in one write"))
                run(sc, reqs, what, at_b)
                count += 1
    sc.ok("max-size payloads, then %d placements across the 4 KiB boundaries up to %d: every reply right"
          % (count, BOUNDARIES[-1]))


if __name__ == "__main__":
    main()
