#!/usr/bin/env python3
"""calc_backpressure.py - a client that pipelines requests and never reads.

    python3 tests/clients/calc_backpressure.py --port 9527 --hold

One connection sends requests (a seeded pattern of frames, repeated; most of
them small requests with large replies, as '0@@' -> '3@3 0@') as fast as the
server takes them, reading nothing.  A server with back-pressure stops
reading this connection once 4 MiB of replies wait for it; the kernel
buffers fill and send() stalls.  After --stall seconds without progress (or
--size bytes sent) the client prints "ready SENT" (with --hold: and waits
until stdin reaches EOF; the test measures the server meanwhile).  Then it
checks the connection is still open (paused, not dropped), half-closes and
reads: the server must resume reading it and answer every complete request
sent, in order (the last, cut, frame gets no reply), then close.
"""
import select
import socket
import time

import calcproto
import netlabs


def pattern(sc):
    reqs = []
    for _ in range(1000):
        k = sc.rng.random()
        if k < 0.5:
            reqs.append(b"")                      # 3 bytes in, 6 out: the worst ratio
        elif k < 0.7:
            reqs.append(b"%d" % sc.rng.randint(0, 9))  # 4 in, 6 out
        else:
            reqs.append(calcproto.random_expression(sc.rng))
    return reqs


def main():
    p = netlabs.parser(__doc__.split("\n")[0], hold=True)
    p.add_argument("--size", type=int, default=64 << 20, help="most bytes to send (default 64 MiB)")
    p.add_argument("--stall", type=float, default=1.0,
                   help="seconds without progress that mean 'the server stopped reading' (default 1)")
    sc = netlabs.Scenario(p.parse_args())
    calcproto.self_check()
    reqs = pattern(sc)
    frames = [calcproto.frame(r) for r in reqs]
    pat = b"".join(frames)
    replies = [calcproto.frame(calcproto.reply(r)) for r in reqs]
    block = pat * max(1, (1 << 20) // len(pat))
    sock = sc.connect()
    sock.setblocking(False)
    sent, last = 0, time.monotonic()
    while sent < sc.args.size:
        if sc.remaining() <= 0:
            sc.fail("sent %d of %d bytes of requests without reading, and the send never stalled for "
                    "%.1f s before the deadline: the server keeps reading a client that reads nothing "
                    "(its replies pile up without bound)" % (sent, sc.args.size, sc.args.stall))
        _, w, _ = select.select([], [sock], [], min(sc.args.stall, max(0.01, sc.remaining())))
        if not w:
            if time.monotonic() - last >= sc.args.stall:
                break
            continue
        off = sent % len(block)
        try:
            n = sock.send(block[off:off + min(65536, sc.args.size - sent)])
        except BlockingIOError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            sc.fail("the server dropped the connection after %d bytes of requests: a client that does "
                    "not read yet must be paused (back-pressure), not disconnected" % sent)
        sent += n
        last = time.monotonic()
    sock.setblocking(True)
    if sc.args.hold:
        sc.hold("ready %d" % sent)
    # The replies owed: every frame complete within the bytes sent.
    full, rem = divmod(sent, len(pat))
    n_tail, off = 0, 0
    for f in frames:
        if off + len(f) > rem:
            break
        off += len(f)
        n_tail += 1
    want = b"".join(replies) * full + b"".join(replies[:n_tail])
    nreq = full * len(reqs) + n_tail
    # Whether the connection was kept (paused) rather than dropped shows
    # here: a dropped one cannot answer every request sent.
    reader = netlabs.Reader(sock, 0, sc.deadline, until_eof=True)
    reader.start()
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # reset meanwhile: the reader reports it
    reader.join()
    got = reader.data
    what = ("after sending %d bytes of requests (%d complete frames) without reading, the client "
            "half-closed and read" % (sent, nreq))
    if got != want:
        # Which reply went wrong: from the pattern's reply lengths (parsing
        # a million replies would take seconds).
        off = netlabs.first_diff(want, got)
        plen = len(b"".join(replies))
        idx, pos = (off // plen) * len(reqs), (off // plen) * plen
        for rep in replies:
            if pos + len(rep) > off:
                break
            pos += len(rep)
            idx += 1
        how = {"reset": "then the server reset the connection", "timeout": "then nothing more came"}.get(
            reader.error, "then the server closed the connection" if reader.eof else "then recv failed: %s" % reader.error)
        if off == len(got):
            sc.fail("%s: %d of %d replies came back (all right), %s; the next one owed was '%s' to %s. "
                    "A paused connection must resume reading once its output drains below the low-water "
                    "mark, and lose nothing" % (what, idx, nreq, how, calcproto.reply(reqs[idx % len(reqs)]).decode(),
                                              calcproto.show(reqs[idx % len(reqs)])))
        if off == len(want):
            sc.fail("%s: all %d replies came back, then %d more bytes: %s"
                    % (what, nreq, len(got) - len(want), calcproto.show(got[off:], 60)))
        sc.fail("%s: reply %d (to %s) is wrong: expected %s, the bytes there are %s"
                % (what, idx + 1, calcproto.show(reqs[idx % len(reqs)]), calcproto.show(replies[idx % len(reqs)]),
                   calcproto.show(got[pos:pos + 40])))
    if reader.error or not reader.eof:
        sc.fail("%s: every reply came back, but then %s instead of EOF"
                % (what, "a reset" if reader.error == "reset" else reader.error or "no EOF"))
    sock.close()
    sc.ok("%d bytes of requests sent without reading before the server stopped reading; then all "
          "%d replies came back right" % (sent, nreq))


if __name__ == "__main__":
    main()
