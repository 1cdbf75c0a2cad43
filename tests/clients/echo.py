#!/usr/bin/env python3
"""echo.py - byte-exact echo: every byte value 0-255 (NUL and 0x80-0xFF
included), sent in random chunks while a separate thread reads the reply.

    python3 tests/clients/echo.py --port 9527 --size 262144

Passes when exactly the uppercased payload comes back, then (unless
--no-shutdown) a clean EOF after the client half-closes.
"""
import netlabs


def main():
    p = netlabs.parser(__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=65536, help="payload bytes (default 65536)")
    p.add_argument("--no-shutdown", action="store_true",
                   help="read the echo back without half-closing first")
    sc = netlabs.Scenario(p.parse_args())
    data = netlabs.payload(sc.rng, sc.args.size)
    sock = sc.connect()
    sizes = netlabs.chunks(sc.rng, len(data), 1, 4096)
    netlabs.exchange(sc, sock, data, sizes, shutdown=not sc.args.no_shutdown)
    sock.close()
    sc.ok("%d bytes in %d chunks came back uppercased, byte for byte" % (len(data), len(sizes)))


if __name__ == "__main__":
    main()
