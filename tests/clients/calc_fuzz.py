#!/usr/bin/env python3
"""calc_fuzz.py - random expressions, pipelined, checked against the reference.

    python3 tests/clients/calc_fuzz.py --port 9527 --count 3000
    python3 tests/clients/calc_fuzz.py --port 9527 --count 10000 --write one

Generates --count request payloads from --seed (calcproto.random_expression:
mostly valid expressions over the whole int64 range, overflow included, some
unknown operators and malformed ones), sends them all as frames without
waiting for replies, either in random chunks of 1 to 4096 bytes (--write
random, so frames are split anywhere and many share a read) or in one write
(--write one), while a thread reads.  Every reply must be the one the
reference evaluator computes, in request order; then the client half-closes
and expects EOF.
"""
import socket

import calcproto
import netlabs


def main():
    p = netlabs.parser(__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=3000, help="requests (default 3000)")
    p.add_argument("--write", choices=["random", "one"], default="random",
                   help="random chunks of 1-4096 bytes (default), or one write")
    sc = netlabs.Scenario(p.parse_args())
    calcproto.self_check()
    reqs = [calcproto.random_expression(sc.rng) for _ in range(sc.args.count)]
    data = b"".join(calcproto.frame(r) for r in reqs)
    sizes = None if sc.args.write == "one" else netlabs.chunks(sc.rng, len(data), 1, 4096)
    sock = sc.connect()
    # Every reply must come while the connection stays open; only then
    # does the client half-close and expect EOF.
    reader = calcproto.ReplyReader(sock, len(reqs), sc.deadline)
    reader.start()
    what = "%d pipelined requests (%d bytes, %s)" % (
        len(reqs), len(data), "in one write" if sizes is None else "in %d random chunks" % len(sizes))
    netlabs.send_all(sc, sock, data, sizes, what=what)
    reader.join()
    calcproto.check_replies(sc, reqs, reader, what)
    sock.shutdown(socket.SHUT_WR)
    reader = calcproto.read_replies(sc, sock, None, limit=5, parser=reader.parser)
    calcproto.check_replies(sc, reqs, reader, what + ", then a half-close", expect_eof=True)
    sock.close()
    sc.ok("%s: every reply right, in order, then EOF" % what)


if __name__ == "__main__":
    main()
