#!/usr/bin/env python3
"""slowpoke.py - a slow client must not delay a fast one.

    python3 tests/clients/slowpoke.py --port 9527 [--gap 1] [--bytes 4] [--bound 2]

A slow client connects and sends one byte every --gap seconds (--bytes in
all), checking each echo.  Once its first byte has been echoed (so the server
is in the middle of serving it), a fast client connects and does one echo
round trip every --gap/4 seconds while the slow one keeps going; each round
trip must come back within --bound seconds.  A server that serves one client
until EOF, or waits on a read that can block, leaves the fast client waiting
for as long as the slow one stays, and fails here.
"""
import threading
import time
import netlabs


def main():
    p = netlabs.parser(__doc__.split("\n")[0])
    p.add_argument("--gap", type=float, default=1.0, help="seconds between the slow client's bytes (default 1)")
    p.add_argument("--bytes", type=int, default=4, help="bytes the slow client sends (default 4)")
    p.add_argument("--bound", type=float, default=2.0, help="the longest a fast round trip may take (default 2 s)")
    p.add_argument("--size", type=int, default=1024, help="bytes per fast round trip (default 1024)")
    sc = netlabs.Scenario(p.parse_args())
    a = sc.args
    slow_data = netlabs.payload(sc.rng, a.bytes)
    slow = sc.connect("slow client: connect")
    netlabs.echo_once(sc, slow, slow_data[:1], "slow client byte 0")
    done = threading.Event()

    def trickle():
        for i in range(1, len(slow_data)):
            if done.wait(a.gap):
                return
            netlabs.echo_once(sc, slow, slow_data[i:i + 1], "slow client byte %d" % i)
        done.wait()

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    fast = sc.connect("fast client: connect")
    rounds = max(1, int((len(slow_data) - 1) * 4))
    worst = 0.0
    for r in range(rounds):
        data = netlabs.payload(sc.rng, a.size, all_values=False)
        t0 = time.monotonic()
        netlabs.send_all(sc, fast, data, what="fast client round %d" % r)
        got, why = netlabs.recv_exact(sc, fast, len(data), limit=a.bound)
        took = time.monotonic() - t0
        if why is not None:
            sc.fail("fast client round %d: %s after %.1f s with %d of %d bytes back, while a "
                    "client sending one byte every %.1f s was connected: the server is stuck "
                    "serving the slow client (does it read it until EOF, or block on it?)"
                    % (r, why, took, len(got), len(data), a.gap))
        netlabs.check(sc, netlabs.expected(data), got, "fast client round %d" % r)
        worst = max(worst, took)
        time.sleep(a.gap / 4)  # pacing: spread the round trips over the slow client's life
    done.set()
    t.join()
    slow.close()
    fast.close()
    sc.ok("%d fast round trips while a slow client trickled, the slowest %.3f s (bound %.1f s)"
          % (rounds, worst, a.bound))


if __name__ == "__main__":
    main()
