#!/usr/bin/env python3
"""calc_table.py - the calculator's hand-checked cases, one request at a time.

    python3 tests/clients/calc_table.py --port 9527 --set limits
    python3 tests/clients/calc_table.py --port 9527 --set all

Sends each case of the chosen sets (calcproto.HAND: examples, operators,
limits, division, malformed, order) as one frame on one connection, waits
for its reply before sending the next, and checks every reply against the
table (which the reference evaluator agrees with).  Then half-closes and
expects EOF.  --pipelined sends the whole set in one write instead.  The
examples set starts with the protocol's own example frames, sent as raw
bytes (LEN with leading zeros, the empty payload).
"""
import socket

import calcproto
import netlabs

# The protocol's own examples, as raw bytes on the wire (the table's cases
# are framed without leading zeros): (frame sent, the payload it carries).
RAW = [
    (b"7@12 + 30@", b"12 + 30"),
    (b"0007@12 + 30@", b"12 + 30"),
    (b"0@@", b""),
    (b"0000@@", b""),
    (b"4@PING@", b"PING"),
    (b"5@1 ^ 0@", b"1 ^ 0"),
]


def raw_examples(sc):
    """Each raw frame alone, its reply checked (the reply to 7@12 + 30@ is 4@0 42@)."""
    sock = sc.connect("examples: connect")
    parser = calcproto.ReplyParser()
    sent = []
    for i, (raw, payload) in enumerate(RAW):
        what = "the frame %s sent as is" % calcproto.show(raw)
        netlabs.send_all(sc, sock, raw, what=what)
        sent.append(payload)
        r = calcproto.read_replies(sc, sock, i + 1, parser=parser)
        calcproto.check_replies(sc, sent, r, what)
    sock.close()


def main():
    p = netlabs.parser(__doc__.split("\n")[0])
    p.add_argument("--set", default="all",
                   help="comma-separated: %s, or all" % ", ".join(calcproto.HAND))
    p.add_argument("--pipelined", action="store_true", help="send each set in one write")
    sc = netlabs.Scenario(p.parse_args())
    calcproto.self_check()
    names = list(calcproto.HAND) if sc.args.set == "all" else sc.args.set.split(",")
    total = 0
    if "examples" in names:
        raw_examples(sc)
        total += len(RAW)
    for name in names:
        if name not in calcproto.HAND:
            sc.fail("no such set %r (the sets: %s)" % (name, ", ".join(calcproto.HAND)))
        cases = [c[0] for c in calcproto.HAND[name]]
        sock = sc.connect("set %s: connect" % name)
        what = "set '%s'" % name
        if sc.args.pipelined:
            netlabs.send_all(sc, sock, b"".join(calcproto.frame(c) for c in cases), what=what)
            r = calcproto.read_replies(sc, sock, len(cases))
            calcproto.check_replies(sc, cases, r, what)
        else:
            parser = calcproto.ReplyParser()
            for i, case in enumerate(cases):
                netlabs.send_all(sc, sock, calcproto.frame(case), what=what)
                r = calcproto.read_replies(sc, sock, i + 1, parser=parser)
                calcproto.check_replies(sc, cases[:i + 1], r, what)
        sock.shutdown(socket.SHUT_WR)
        r = calcproto.read_replies(sc, sock, None, limit=5, parser=r.parser)
        calcproto.check_replies(sc, cases, r, what + ", after the client half-closed", expect_eof=True)
        sock.close()
        total += len(cases)
    sc.ok("%d cases in %d set(s) (%s), every reply right" % (total, len(names), ", ".join(names)))


if __name__ == "__main__":
    main()
