#!/usr/bin/env python3
"""bursts.py - many connections, each sending one large burst, then leaving.

    python3 tests/clients/bursts.py --port 9527 --count 1000 --size 1048576 --parallel 8

--count connections, --parallel at a time, each sends --size bytes while
reading, checks the echo is exactly the uppercase, and closes.  Passes when
every one is served.  Used to show that a server's buffers go back to its
pool (and its memory stops growing) once the clients are gone.
"""
import netlabs


def main():
    p = netlabs.parser(__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=1000, help="connections (default 1000)")
    p.add_argument("--size", type=int, default=1 << 20, help="bytes per connection (default 1 MiB)")
    p.add_argument("--parallel", type=int, default=8, help="at a time (default 8)")
    sc = netlabs.Scenario(p.parse_args())
    size, k = sc.args.size, max(1, sc.args.parallel)
    # One random block, each connection sends a different rotation of it.
    block = netlabs.payload(sc.rng, 2 * size)
    done = 0
    while done < sc.args.count:
        n = min(k, sc.args.count - done)
        conns = netlabs.connect_many(sc, n, "connection")
        for j, c in enumerate(conns):
            c.label = "connection %d of %d" % (done + j, sc.args.count)
            off = sc.rng.randrange(size)
            c.load(block[off:off + size])
        why = netlabs.pump(sc, conns)
        bad = [p for p in (netlabs.conn_problem(c) for c in conns) if p]
        if bad:
            sc.fail("%d of %d connections in this batch did not get their burst back%s:\n  %s"
                    % (len(bad), n, netlabs.pump_why(why, sc), "\n  ".join(bad[:5])),
                    socks=netlabs.stuck(conns))
        for c in conns:
            c.sock.close()
        done += n
    sc.ok("%d connections each sent %d bytes and got them back uppercased" % (done, size))


if __name__ == "__main__":
    main()
