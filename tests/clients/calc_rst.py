#!/usr/bin/env python3
"""calc_rst.py - clients that reset mid-pipeline, or hang up before their replies.

    python3 tests/clients/calc_rst.py --port 9527 --count 3 --hangups 10

Each of --count clients pipelines about --size bytes of requests while
reading some of the replies, then closes with SO_LINGER 0 in the middle,
so the kernel sends RST: the server sees ECONNRESET on read or EPIPE on
write.  Then each of --hangups clients sends a batch of requests, shuts
down its write side and closes at once without reading: the server's
replies reach a closed socket (RST back, then EPIPE and SIGPIPE on the next
write).  Then one more client must be served in full: the server survived,
and still answers right.
"""
import selectors
import socket

import calcproto
import netlabs

GONE = ("Did it die of SIGPIPE (writing to a reset connection kills a process that neither ignores "
        "SIGPIPE nor sends with MSG_NOSIGNAL), or exit on ECONNRESET/EPIPE?")


def stream(sc, size):
    reqs, n = [], 0
    while n < size:
        r = calcproto.random_expression(sc.rng)
        reqs.append(r)
        n += len(calcproto.frame(r))
    return b"".join(calcproto.frame(r) for r in reqs)


def reset_midstream(sc, i):
    data = stream(sc, sc.args.size)
    cut = sc.rng.randint(len(data) // 4, 3 * len(data) // 4)
    sock = sc.connect("client %d: connect" % i, gone=GONE if i else None)
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
    sent = got = 0
    try:
        while sent < cut or got == 0:
            if sc.remaining() <= 0:
                sc.fail("client %d: timed out with %d bytes of requests sent and %d bytes of replies "
                        "received before the reset" % (i, sent, got))
            for _, ev in sel.select(min(0.5, sc.remaining())):
                if ev & selectors.EVENT_READ:
                    b = sock.recv(1 << 16)
                    if not b:
                        sc.fail("client %d: the server closed the connection after %d bytes of "
                                "requests, before the client reset it" % (i, sent))
                    got += len(b)
                if ev & selectors.EVENT_WRITE and sent < cut:
                    sent += sock.send(data[sent:min(cut, sent + 65536)])
                if sent >= cut:
                    sel.modify(sock, selectors.EVENT_READ)
    except (ConnectionResetError, BrokenPipeError):
        sc.fail("client %d: the server reset the connection first" % i)
    sel.close()
    netlabs.abort(sock)
    return sent


def main():
    p = netlabs.parser(__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=2 << 20, help="bytes of requests per client (default 2 MiB)")
    p.add_argument("--count", type=int, default=3, help="clients that reset (default 3)")
    p.add_argument("--hangups", type=int, default=10, help="clients that hang up (default 10)")
    sc = netlabs.Scenario(p.parse_args())
    calcproto.self_check()
    total = 0
    for i in range(sc.args.count):
        total += reset_midstream(sc, i)
    for i in range(sc.args.hangups):
        sock = sc.connect("hang-up client %d: connect" % i, gone=GONE if i or sc.args.count else None)
        netlabs.send_all(sc, sock, stream(sc, 65536), what="hang-up client %d" % i, hint=GONE)
        sock.shutdown(socket.SHUT_WR)
        sock.close()
    what = "the client after %d resets and %d hang-ups" % (sc.args.count, sc.args.hangups)
    sock = sc.connect(what + ": connect", gone=GONE)
    reqs = [calcproto.random_expression(sc.rng) for _ in range(200)]
    netlabs.send_all(sc, sock, b"".join(calcproto.frame(r) for r in reqs), what=what, hint=GONE)
    sock.shutdown(socket.SHUT_WR)
    r = calcproto.read_replies(sc, sock, None)
    calcproto.check_replies(sc, reqs, r, what, expect_eof=True, hint_extra=GONE)
    sock.close()
    sc.ok("%d clients reset mid-pipeline (%d bytes sent), %d hung up; the next client was served"
          % (sc.args.count, total, sc.args.hangups))


if __name__ == "__main__":
    main()
