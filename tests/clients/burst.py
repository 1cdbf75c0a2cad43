#!/usr/bin/env python3
"""burst.py - one large payload, much larger than the sockets can buffer.

    python3 tests/clients/burst.py --port 9527 --size 67108864

By default a writer sends as fast as it can while a reader thread reads.
--pause-read S: the reader waits S seconds before reading (a client that
stops reading for a while); the server must neither drop bytes nor block
other clients meanwhile.  --write-first: one send() of the whole payload
before reading anything (only sensible when --size fits in the socket
buffers, about 1 MiB).  Passes on exactly the uppercased payload.
"""
import threading
import time
import netlabs


def main():
    p = netlabs.parser(__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=64 << 20, help="payload bytes (default 64 MiB)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--write-first", action="store_true",
                   help="send the whole payload before reading")
    g.add_argument("--pause-read", type=float, default=0.0, metavar="S",
                   help="start reading only after S seconds")
    p.add_argument("--no-shutdown", action="store_true",
                   help="do not half-close after sending")
    sc = netlabs.Scenario(p.parse_args())
    data = netlabs.payload(sc.rng, sc.args.size)
    want = netlabs.expected(data)
    sock = sc.connect()
    go = threading.Event()
    r = netlabs.Reader(sock, len(want), sc.deadline, start_after=go, sc=sc)
    r.start()
    if sc.args.pause_read:
        # Not reading is our choice: the server may stop taking bytes meanwhile.
        sc.pause(sc.args.pause_read)
        threading.Timer(sc.args.pause_read, go.set).start()
    elif not sc.args.write_first:
        go.set()
    t0 = time.monotonic()
    netlabs.send_all(sc, sock, data, None if sc.args.write_first else
                     netlabs.chunks(sc.rng, len(data), 16384, 262144))
    go.set()
    r.join()
    netlabs.reader_verdict(sc, r, want, "burst echo")
    secs = time.monotonic() - t0
    sock.close()
    sc.ok("%d bytes came back exact (%.1f MiB/s)" % (len(data), len(data) / (1 << 20) / max(secs, 1e-6)))


if __name__ == "__main__":
    main()
