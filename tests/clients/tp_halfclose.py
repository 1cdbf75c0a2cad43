#!/usr/bin/env python3
"""tp_halfclose.py - half-close with slow requests still in the pool (lab 10).

    python3 tests/clients/tp_halfclose.py --port 9527 --delay 300

Sends `1 ~ DELAY`, then a plain request, then `2 ~ DELAY`, in one write,
and at once shuts down its sending side (as the lab 09 client, `nc -N` and
any pipelining client at the end of its input do).  Every complete request
must still be answered, in order (`0 1`, the plain result, `0 2`), and only
then may the server close: EOF after the last reply.  A server that closes
once its output is empty forgets the replies its workers still owe.
"""
import socket
import time

import calcproto
import netlabs


def main():
    p = netlabs.parser(__doc__.splitlines()[0])
    p.add_argument("--delay", type=int, default=300, help="ms each slow request waits")
    args = p.parse_args()
    sc = netlabs.Scenario(args)
    reqs = [b"1 ~ %d" % args.delay, b"20 * 21", b"2 ~ %d" % args.delay]
    want = [b"0 1", b"0 420", b"0 2"]
    s = sc.connect()
    t0 = time.monotonic()
    netlabs.send_all(sc, s, b"".join(calcproto.frame(r) for r in reqs), what="the requests")
    s.shutdown(socket.SHUT_WR)
    r = calcproto.read_replies(sc, s, None)  # until EOF
    got = [bytes(x) for x in r.replies]
    if got != want:
        sc.fail("after `%s` and a half-close (shutdown SHUT_WR), expected the replies %s, then EOF; "
                "got %s%s.\n  likely cause: the connection was closed once its output was empty, "
                "while workers still owed replies: hold it (conn_hold in append) until the queue is "
                "empty (conn_release in flush_ready)"
                % (" | ".join(x.decode() for x in reqs), [x.decode() for x in want],
                   [x.decode() for x in got], "" if r.eof else " (and no EOF)"), socks=[s])
    if time.monotonic() - t0 < args.delay / 1000.0:
        sc.fail("the slow replies came back before %d ms: the server did not wait" % args.delay)
    sc.ok("3 replies after a half-close, in order, then EOF")


if __name__ == "__main__":
    main()
