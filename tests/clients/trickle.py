#!/usr/bin/env python3
"""trickle.py - one byte per send, each echoed before the next is sent.

    python3 tests/clients/trickle.py --port 9527 --count 100 [--gap 0.01]

A server that waits for a full buffer, a newline or a "message" before it
answers fails here: TCP is a byte stream, and one byte is a valid read.
"""
import time
import netlabs


def main():
    p = netlabs.parser(__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=100, help="bytes to send (default 100)")
    p.add_argument("--gap", type=float, default=0.0, help="seconds between bytes (default 0)")
    sc = netlabs.Scenario(p.parse_args())
    data = netlabs.payload(sc.rng, sc.args.count)
    sock = sc.connect()
    for i in range(len(data)):
        netlabs.echo_once(sc, sock, data[i:i + 1], "byte %d of %d (0x%02x)" % (i, len(data), data[i]))
        if sc.args.gap:
            time.sleep(sc.args.gap)
    sock.close()
    sc.ok("%d single-byte sends, each echoed before the next" % len(data))


if __name__ == "__main__":
    main()
