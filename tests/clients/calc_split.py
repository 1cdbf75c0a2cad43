#!/usr/bin/env python3
"""calc_split.py - frames split at every byte, and sent one byte at a time.

    python3 tests/clients/calc_split.py --port 9527

A handful of frames (LEN of 1 to 4 digits, leading zeros, an empty payload,
a 1024-byte payload, several statuses) make a stream S.  For every position
P in S, the client sends a sync frame and S[:P] in one write, waits for the
replies to the sync frame and to the frames complete in S[:P] (so the server
has read that write), and only then sends S[P:].  Then, with --bytewise (default on), S again one byte per send().
Every reply must be right and in order: a server that expects a whole
frame per read(), or loses the bytes it read before the rest arrived,
fails here.
"""
import socket

import calcproto
import netlabs


def framed(payload, width):
    """A frame whose LEN has `width` digits (leading zeros)."""
    return b"%0*d@" % (width, len(payload)) + payload + b"@"


# (payload, LEN width)
FRAMES = [
    (b"12 + 30", 1),
    (b"-9223372036854775808 % -1", 4),
    (b"", 1),
    (b"7 / 0", 3),
    (b"1 ^ 2", 1),
    (b"00042 * -3", 2),
    (b"9223372036854775807 + 1", 2),
]
BIG = b"0" * (1024 - len(b"5 - 8")) + b"5 - 8"


def main():
    p = netlabs.parser(__doc__.split("\n")[0])
    p.add_argument("--no-bytewise", action="store_true", help="skip the byte-at-a-time pass")
    sc = netlabs.Scenario(p.parse_args())
    calcproto.self_check()
    stream = b"".join(framed(pl, w) for pl, w in FRAMES)
    payloads = [pl for pl, _ in FRAMES]
    ends, off = [], 0  # where each frame of the stream ends
    for pl, w in FRAMES:
        off += len(framed(pl, w))
        ends.append(off)
    sock = sc.connect()
    parser = calcproto.ReplyParser()
    sent = []  # every request payload sent so far, in order
    for pos in range(len(stream) + 1):
        sync = b"0 + %d" % (1000 + pos)
        what = ("split at byte %d of %s: sent a sync frame and the first part, then (after the sync "
                "frame's reply) the rest" % (pos, calcproto.show(stream, 200)))
        netlabs.send_all(sc, sock, calcproto.frame(sync) + stream[:pos], what=what)
        whole = sum(1 for e in ends if e <= pos)  # frames complete in the first part
        sent += [sync] + payloads[:whole]
        r = calcproto.read_replies(sc, sock, len(sent), parser=parser, limit=5)
        calcproto.check_replies(sc, sent, r, what)
        netlabs.send_all(sc, sock, stream[pos:], what=what)
        sent += payloads[whole:]
        r = calcproto.read_replies(sc, sock, len(sent), parser=parser, limit=5)
        calcproto.check_replies(sc, sent, r, what)
    splits = len(stream) + 1
    if not sc.args.no_bytewise:
        for pl, w in FRAMES + [(BIG, 4)]:
            f = framed(pl, w)
            what = "the frame %s sent one byte per send()" % calcproto.show(f, 60)
            for i in range(len(f)):
                netlabs.send_all(sc, sock, f[i:i + 1], what=what)
            sent.append(pl)
            r = calcproto.read_replies(sc, sock, len(sent), parser=parser, limit=5)
            calcproto.check_replies(sc, sent, r, what)
    sock.shutdown(socket.SHUT_WR)
    r = calcproto.read_replies(sc, sock, None, parser=parser, limit=5)
    calcproto.check_replies(sc, sent, r, "after the half-close", expect_eof=True)
    sock.close()
    sc.ok("%d frames split at each of %d positions%s: %d replies, all right"
          % (len(FRAMES), splits, "" if sc.args.no_bytewise else ", then sent byte by byte", len(sent)))


if __name__ == "__main__":
    main()
