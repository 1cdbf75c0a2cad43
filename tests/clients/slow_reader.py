#!/usr/bin/env python3
"""slow_reader.py - a client that sends a lot and does not read, while
another client measures the server's latency.

    python3 tests/clients/slow_reader.py --port 9527 --size 67108864 --pause-read 3

The slow client sends --size bytes (default 64 MiB) as fast as the server
takes them and reads nothing for --pause-read seconds; then it reads, and
must get every byte back, uppercased, in order.  Meanwhile, once the slow
client has sent --probe-after bytes (default 4 MiB, more than the sockets
buffer, so by then the server holds output it cannot send), a probe
repeatedly echoes --probe-size bytes, alternating between one persistent
connection and a fresh connection each time, until the slow client starts
reading.  Each probe must complete within --max-latency seconds (default
1.5): a server that blocks, or spins, on the slow client's full socket
fails here.  Prints the probe count and the worst latency.
"""
import threading
import time
import netlabs


def main():
    p = netlabs.parser(__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=64 << 20, help="slow client's payload (default 64 MiB)")
    p.add_argument("--pause-read", type=float, default=3.0, metavar="S",
                   help="seconds before the slow client reads (default 3)")
    p.add_argument("--probe-after", type=int, default=4 << 20,
                   help="start probing once this many bytes were sent (default 4 MiB)")
    p.add_argument("--probe-size", type=int, default=100, help="bytes per probe (default 100)")
    p.add_argument("--max-latency", type=float, default=1.5, help="seconds per probe (default 1.5)")
    sc = netlabs.Scenario(p.parse_args())
    data = netlabs.payload(sc.rng, sc.args.size)
    want = netlabs.expected(data)

    slow = sc.connect("slow client: connect")
    victim = sc.connect("probe: connect")
    go_read = threading.Event()
    probing = threading.Event()
    reader = netlabs.Reader(slow, len(want), sc.deadline, start_after=go_read, sc=sc)
    reader.start()
    t0 = time.monotonic()
    threading.Timer(sc.args.pause_read, go_read.set).start()

    sent = [0]

    def writer():
        sizes = netlabs.chunks(sc.rng, len(data), 16384, 262144)
        view = memoryview(data)
        off = 0
        for n in sizes:
            netlabs.send_all(sc, slow, view[off:off + n],
                             what="slow client: send (at offset %d of %d)" % (off, len(data)))
            off += n
            sent[0] = off
            if off >= min(sc.args.probe_after, len(data)):
                probing.set()
        probing.set()

    w = threading.Thread(target=writer, daemon=True)
    w.start()
    # Wait (bounded) for the slow client to get far enough ahead.
    while not probing.wait(0.2):
        if sc.remaining() <= 0 or go_read.is_set():
            sc.fail("the slow client could send only %d bytes in %.1f s without reading "
                    "(the server stopped reading it too early)" % (sent[0], time.monotonic() - t0))
    probes, worst = 0, 0.0
    while not go_read.is_set() or probes == 0:
        msg = b"probe %d:" % probes + sc.rng.randbytes(max(0, sc.args.probe_size - 16))
        fresh = probes % 2 == 1
        t = time.monotonic()
        what = ("probe %d (%s connection) while the slow client has sent %d bytes and read none"
                % (probes, "a new" if fresh else "its own", sent[0]))
        if fresh:
            s = sc.connect(what + ": connect")
            netlabs.echo_once(sc, s, msg, what, limit=sc.args.max_latency)
            s.close()
        else:
            netlabs.echo_once(sc, victim, msg, what, limit=sc.args.max_latency)
        lat = time.monotonic() - t
        worst = max(worst, lat)
        if lat > sc.args.max_latency:
            sc.fail("%s took %.3f s, more than %.1f s: the server stalls on a client that "
                    "does not read (blocking or spinning write?)" % (what, lat, sc.args.max_latency))
        probes += 1
        time.sleep(0.01)  # pacing, not synchronisation: about 100 probes a second
    w.join(max(0.1, sc.remaining()))
    if w.is_alive():
        sc.fail("the slow client could not finish sending within the deadline (%d of %d bytes sent)"
                % (sent[0], len(data)))
    reader.join()
    netlabs.reader_verdict(sc, reader, want, "slow client's echo")
    victim.close()
    slow.close()
    sc.ok("%d bytes came back exact after a %.1f s pause; %d probes, worst latency %.3f s"
          % (len(data), sc.args.pause_read, probes, worst))


if __name__ == "__main__":
    main()
