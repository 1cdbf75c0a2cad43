#!/usr/bin/env python3
"""calc_halfclose.py - half-close with complete and incomplete frames pending.

    python3 tests/clients/calc_halfclose.py --port 9527

Each connection sends a batch of requests, then (in the same write) the start
of a frame that never completes (or nothing), then shutdown(SHUT_WR), and
only then reads.  The server must answer every complete request, in order,
then close: no reply for the incomplete tail (it is not a bad frame, it was
cut by the EOF), and no reset.  The first connection sends --count requests
(default 50,000, about 1 MB: its replies outgrow the socket buffers, so the
server still holds output when it reads the EOF).
"""
import socket

import calcproto
import netlabs

TAILS = [b"", b"1", b"12", b"102", b"1024", b"7@", b"7@12 + 3", b"7@12 + 30", b"0@", b"0007@1",
         b"1024@" + b"0" * 600]


def main():
    p = netlabs.parser(__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=50000, help="requests on the first connection")
    sc = netlabs.Scenario(p.parse_args())
    calcproto.self_check()
    for i, tail in enumerate([b"12@1 + "] + TAILS):
        n = sc.args.count if i == 0 else sc.rng.randint(1, 50)
        reqs = [calcproto.random_expression(sc.rng) for _ in range(n)]
        data = b"".join(calcproto.frame(r) for r in reqs) + tail
        what = ("%d requests%s, then shutdown(SHUT_WR), then the client reads"
                % (n, ", the incomplete frame %s" % calcproto.show(tail, 30) if tail else ""))
        sock = sc.connect(what + ": connect")
        netlabs.send_all(sc, sock, data, what=what)
        sock.shutdown(socket.SHUT_WR)
        r = calcproto.read_replies(sc, sock, None)
        calcproto.check_replies(sc, reqs, r, what, expect_eof=True,
                                hint_extra="after EOF, answer every complete request, drop an incomplete "
                                           "frame without a reply, flush, then close" if tail else
                                           "after EOF, answer every complete request, flush, then close")
        sock.close()
    sc.ok("%d half-closed connections: every complete request answered, no reply for the incomplete "
          "tails, then EOF" % (len(TAILS) + 1))


if __name__ == "__main__":
    main()
