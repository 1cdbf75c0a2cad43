#!/usr/bin/env python3
"""ur_flood.py - many connections' data arriving at once, more than a small pool of receive buffers holds.

    python3 tests/clients/ur_flood.py --port 9527 --count 200 --size 65536

Opens --count connections and makes one round trip on each (so the server
has accepted every one and is receiving on it).  Then it stops the server
(SIGSTOP; found by NETLABS_SERVER_PID or by its port), sends up to --size
bytes on every connection (what the kernel takes without blocking), and
lets the server run again (SIGCONT): the server then finds data waiting
on all of them at once.  Lab 17's server receives into a ring of 256
provided buffers of 4 KiB (1 MiB): with 200 x 64 KiB waiting, the kernel
runs out of buffers and ends some receives with -ENOBUFS.  Every
connection must still get exactly its uppercase back, the rest of its
--size included, and then one more round trip on each must work: a
server that closes on -ENOBUFS, or never re-arms the receive it ended,
fails here.  --mark prints when the flood ran, so that a trace of the
server can be cut to it.
"""
import os
import signal
import time

import netlabs
import serverstate


def server_pid(sc):
    """The harness's server (NETLABS_SERVER_PID) if it listens on our
    port, else the process /proc shows listening there."""
    env = os.environ.get("NETLABS_SERVER_PID", "")
    if env.isdigit():
        pid = int(env)
        if not serverstate.fds(pid) or serverstate._listens_on(pid, sc.args.port):
            return pid
    return serverstate.find_server(sc.args.port)


def round_trip(sc, conns, what):
    for i, c in enumerate(conns):
        c.load(b"%s %06d:" % (what.encode(), i) + sc.rng.randbytes(48))
    why = netlabs.pump(sc, conns)
    bad = [x for x in (netlabs.conn_problem(c) for c in conns) if x]
    if bad:
        sc.fail("%s: %d of %d connections did not get their echo%s:\n  %s%s"
                % (what, len(bad), len(conns), netlabs.pump_why(why, sc), "\n  ".join(bad[:5]),
                   "\n  ..." if len(bad) > 5 else ""), socks=netlabs.stuck(conns))


def main():
    p = netlabs.parser(__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=200, help="connections (default 200)")
    p.add_argument("--size", type=int, default=65536, help="bytes per connection (default 64 KiB)")
    p.add_argument("--mark", action="store_true",
                   help="print 'flood FROM TO' (wall-clock seconds, as strace -ttt shows them): "
                        "from just before the server runs again to the last byte of the flood's echo")
    sc = netlabs.Scenario(p.parse_args())
    conns = netlabs.connect_many(sc, sc.args.count, "connection")
    round_trip(sc, conns, "first round trip")

    pid = server_pid(sc)
    if pid is None:
        sc.fail("cannot find the server's pid (set NETLABS_SERVER_PID)", state=False)
    block = netlabs.payload(sc.rng, 2 * sc.args.size)
    for c in conns:
        off = sc.rng.randrange(sc.args.size)
        c.load(block[off:off + sc.args.size])
    queued = 0
    os.kill(pid, signal.SIGSTOP)
    try:
        for c in conns:
            c.sock.setblocking(False)
            try:
                while c.sent < len(c.out):
                    c.sent += c.sock.send(c.out[c.sent:c.sent + 65536])
            except BlockingIOError:
                pass
            finally:
                c.sock.setblocking(True)
            queued += c.sent
    finally:
        t_from = time.time()
        os.kill(pid, signal.SIGCONT)
    sc.progress()
    why = netlabs.pump(sc, conns)
    t_to = time.time()
    bad = [x for x in (netlabs.conn_problem(c) for c in conns) if x]
    if bad:
        sc.fail("%d of %d connections lost their echo after %d bytes (%.1f MiB) arrived on them all "
                "at once while the server was stopped%s:\n  %s%s\n"
                "likely cause: the provided-buffer ring ran dry and a receive ended with -ENOBUFS: "
                "that is a pause, not an error. Re-arm that receive once buffers are back in the ring "
                "(never close the connection for it), and give every buffer back once its bytes are copied"
                % (len(bad), len(conns), queued, queued / 1048576, netlabs.pump_why(why, sc),
                   "\n  ".join(bad[:5]), "\n  ..." if len(bad) > 5 else ""),
                socks=netlabs.stuck(conns))
    if sc.args.mark:
        print("flood %.6f %.6f" % (t_from, t_to))
    round_trip(sc, conns, "round trip after the flood")
    for c in conns:
        c.sock.close()
    sc.ok("%d connections: %.1f MiB arrived at once and came back exact, then one more round trip each"
          % (len(conns), queued / 1048576))


if __name__ == "__main__":
    main()
