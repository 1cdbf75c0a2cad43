#!/usr/bin/env python3
"""many.py - clients that come and go: connect, echo once, leave.

    python3 tests/clients/many.py --port 9527 --count 300 [--parallel 8]

Each of --count connections sends 1-4096 random bytes, checks the echo and
closes (every fourth one resets instead).  --parallel K runs K at a time.
Passes when every one is served: the server keeps accepting and cleans up
after clients that left.
"""
import threading
import netlabs


def one(sc, i, rng):
    data = netlabs.payload(rng, rng.randint(1, 4096), all_values=False)
    sock = sc.connect("client %d: connect" % i)
    netlabs.echo_once(sc, sock, data, "client %d of %d" % (i, sc.args.count))
    if i % 4 == 3:
        netlabs.abort(sock)
    else:
        sock.close()


def main():
    p = netlabs.parser(__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=100, help="connections (default 100)")
    p.add_argument("--parallel", type=int, default=1, help="at a time (default 1)")
    sc = netlabs.Scenario(p.parse_args())
    k = max(1, sc.args.parallel)
    seeds = [sc.rng.getrandbits(32) for _ in range(k)]

    def worker(w):
        rng = netlabs.random.Random(seeds[w])
        for i in range(w, sc.args.count, k):
            one(sc, i, rng)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(k)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sc.ok("%d clients came and went (%d at a time), each served" % (sc.args.count, k))


if __name__ == "__main__":
    main()
