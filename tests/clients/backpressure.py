#!/usr/bin/env python3
"""backpressure.py - a client that sends a lot and never reads a byte.

    python3 tests/clients/backpressure.py --port 9527 --size 67108864 --hold

One connection sends up to --size bytes without ever reading the echo.  A
server that applies back-pressure stops reading it once its output for that
connection reaches its high-water mark; the kernel buffers fill and this
client's send() blocks.  Once send() has made no progress for --stall
seconds (or everything was sent), the client prints "ready SENT" (with
--hold: and keeps the connection open until stdin reaches EOF).

Passes when the connection is still open at the end (the server did not
drop a client only because it is slow to read).  Whether the server's
memory stayed bounded meanwhile is for the test to measure.
"""
import select
import socket
import time

import netlabs


def main():
    p = netlabs.parser(__doc__.split("\n")[0], hold=True)
    p.add_argument("--size", type=int, default=64 << 20, help="bytes to send (default 64 MiB)")
    p.add_argument("--stall", type=float, default=1.0,
                   help="seconds without progress that count as 'the server stopped reading' (default 1)")
    sc = netlabs.Scenario(p.parse_args())
    data = netlabs.payload(sc.rng, min(sc.args.size, 1 << 20))
    sock = sc.connect()
    sock.setblocking(False)
    sent, last = 0, time.monotonic()
    while sent < sc.args.size:
        if sc.remaining() <= 0:
            sc.fail("sent %d of %d bytes and the send never stalled for %.1f s before the deadline"
                    % (sent, sc.args.size, sc.args.stall))
        _, w, _ = select.select([], [sock], [], min(sc.args.stall, max(0.01, sc.remaining())))
        if not w:
            if time.monotonic() - last >= sc.args.stall:
                break
            continue
        off = sent % len(data)
        try:
            n = sock.send(data[off:off + min(65536, sc.args.size - sent)])
        except BlockingIOError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            sc.fail("the server dropped the connection after %d bytes: a client that does not "
                    "read yet must be paused (back-pressure), not disconnected" % sent)
        sent += n
        last = time.monotonic()
    if sc.args.hold:
        sc.hold("ready %d" % sent)
    # Still connected?  A dropped connection shows as EOF or reset after
    # the echo bytes that did arrive; peek without consuming them.
    try:
        r, _, _ = select.select([sock], [], [], 0)
        if r and sock.recv(1, socket.MSG_PEEK) == b"":
            sc.fail("the server closed the connection of a client that only stopped reading")
    except ConnectionResetError:
        sc.fail("the server reset the connection of a client that only stopped reading")
    netlabs.abort(sock)
    sc.ok("sent %d bytes without reading; the server stopped reading us, kept the connection"
          % sent)


if __name__ == "__main__":
    main()
