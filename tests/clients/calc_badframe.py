#!/usr/bin/env python3
"""calc_badframe.py - a bad frame after good requests: replies, '3@9 0@', EOF.

    python3 tests/clients/calc_badframe.py --port 9527
    python3 tests/clients/calc_badframe.py --port 9527 --mode silent --hold

For each bad frame (every kind: a non-digit in LEN, a 5th LEN digit, an
empty LEN, LEN over 1024, a byte other than '@' after the payload; several
of each), one connection sends a few good requests and the bad frame in the
same write.  The server owes, in this order: a reply to every good request,
then the bad-frame reply '3@9 0@', then EOF (it shuts down its sending
side).  It must never reset the connection: a reset can destroy the
replies still in flight.

--mode garbage (default): the write goes on past the bad frame with random
garbage, and the client keeps sending garbage while it reads, and for a
moment after the EOF (the server must read and discard it: a server that
closes with unread input sends RST), then half-closes.
--mode silent: the write ends exactly at the offending byte (the 5th digit,
the '@' of '1025@', the byte after the payload...): the server must see the
bad frame without more input.  The client then sends nothing; with --hold it
prints "ready N" and keeps its N connections open until stdin reaches EOF,
so the test can watch the server close them (within about 2 s).
"""
import errno
import socket
import time

import calcproto
import netlabs

# kind -> [(the bad frame's bytes up to and including the offending byte,
#           what may follow it in a real stream)]
BAD = {
    "a non-digit in LEN": [(b"1x", b"@1 + 2@"), (b"x", b"@"), (b"-", b"1@1@"), (b" ", b"7@12 + 30@"),
                           (b"12+", b"@1 + 2@"), (b"\x00", b"")],
    "a 5th LEN digit": [(b"00007", b"@12 + 30@"), (b"12345", b"@"), (b"99999", b"")],
    "an empty LEN": [(b"@", b"1 + 2@"), (b"@", b"@")],
    "LEN over 1024": [(b"1025@", b"1" * 1025 + b"@"), (b"9999@", b"1 + 2@"), (b"2000@", b"")],
    "no '@' after the payload": [(b"7@12 + 30X", b"@"), (b"5@1 + 23", b"@"), (b"0@x", b"@"),
                                 (b"3@1 + ", b"2@"), (b"1024@" + b"0" * 1020 + b"1 + 2", b"@")],
}


def variants(kinds):
    for kind in kinds:
        for bad, rest in BAD[kind]:
            yield kind, bad, rest


def good_requests(sc):
    # Any valid frames: their replies may have any status, 9 excepted.
    return [calcproto.random_expression(sc.rng) for _ in range(sc.rng.randint(3, 8))]


def garbage(sc, n):
    return sc.rng.randbytes(n)


def run_garbage(sc, kind, bad, rest):
    goods = good_requests(sc)
    sock = sc.connect()
    head = b"".join(calcproto.frame(g) for g in goods)
    what = "%d good requests, then the bad frame %s (%s) in the same write" % (
        len(goods), calcproto.show(bad + rest, 40), kind)
    reader = calcproto.ReplyReader(sock, None, time.monotonic() + min(5, sc.remaining()))
    reader.start()
    netlabs.send_all(sc, sock, head + bad + rest + garbage(sc, sc.rng.randint(0, 3000)), what=what)
    # The garbage goes on while the replies come: the server must discard it.
    hint = ("after a bad frame, shut down the sending side (shutdown SHUT_WR) and read and discard "
            "until the client's EOF; close() with unread input sends RST")
    try:
        for _ in range(16):
            if not reader.is_alive():
                break
            sock.sendall(garbage(sc, 4096))
    except (ConnectionResetError, BrokenPipeError):
        reader.join()
        calcproto.check_replies(sc, goods, reader, what, tail=[calcproto.BAD_FRAME_REPLY])
        sc.fail("%s: the server reset the connection while the client was still sending; %s" % (what, hint))
    reader.join()
    calcproto.check_replies(sc, goods, reader, what + ", then garbage", expect_eof=True,
                            tail=[calcproto.BAD_FRAME_REPLY], hint_extra=hint)
    # A little more garbage after the EOF (well within the 2 s the server
    # keeps discarding): a closed socket would answer it with RST.  The
    # pauses pace the sends; each send sees a reset that came meanwhile.
    try:
        for _ in range(3):
            sock.sendall(garbage(sc, 1024))
            time.sleep(0.01)
        sock.shutdown(socket.SHUT_WR)
    except (ConnectionResetError, BrokenPipeError):
        sc.fail("%s: after its EOF, the server reset the connection while the client was still "
                "sending (just after the EOF); %s" % (what, hint))
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        sc.fail("%s: after its EOF, the connection failed with %s: the server reset it; %s"
                % (what, errno.errorcode.get(err, err), hint))
    sock.close()


def run_silent(sc, kind, bad):
    goods = good_requests(sc)
    sock = sc.connect()
    what = ("%d good requests, then %s (%s) in the same write, and nothing more: the last byte "
            "sent makes the frame bad" % (len(goods), calcproto.show(bad, 40), kind))
    netlabs.send_all(sc, sock, b"".join(calcproto.frame(g) for g in goods) + bad, what=what)
    reader = calcproto.read_replies(sc, sock, None, limit=5)
    calcproto.check_replies(
        sc, goods, reader, what, expect_eof=True, tail=[calcproto.BAD_FRAME_REPLY],
        hint_extra="a bad frame is known at its offending byte: a non-digit or a 5th digit before the "
                   "'@', '@' with no digit before it, a LEN over 1024 at its '@', a byte other than '@' "
                   "after the payload; then send the replies owed, '3@9 0@', and shutdown(SHUT_WR)")
    return sock


def main():
    p = netlabs.parser(__doc__.split("\n")[0], hold=True)
    p.add_argument("--mode", choices=["garbage", "silent"], default="garbage")
    p.add_argument("--kind", default="all", help="all, or one of: %s" % "; ".join(BAD))
    sc = netlabs.Scenario(p.parse_args())
    calcproto.self_check()
    kinds = list(BAD) if sc.args.kind == "all" else [sc.args.kind]
    for k in kinds:
        if k not in BAD:
            sc.fail("no such kind %r (the kinds: %s)" % (k, "; ".join(BAD)))
    n = 0
    held = []
    for kind, bad, rest in variants(kinds):
        if sc.args.mode == "garbage":
            run_garbage(sc, kind, bad, rest)
        else:
            held.append(run_silent(sc, kind, bad))
        n += 1
    if sc.args.hold:
        sc.hold("ready %d" % len(held))
    for s in held:
        s.close()
    sc.ok("%d bad frames (%s): the replies owed, then '3@9 0@', then EOF%s"
          % (n, ", ".join(kinds), ", no reset while the client sent garbage"
             if sc.args.mode == "garbage" else ", without more input"))


if __name__ == "__main__":
    main()
