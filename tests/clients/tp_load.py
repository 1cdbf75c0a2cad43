#!/usr/bin/env python3
"""tp_load.py - keep a server's pool busy: slow requests running and waiting
(lab 10).

    python3 tests/clients/tp_load.py --port 9527 --conns 10 --tasks 10 --delay 5000 --hold

--conns connections each pipeline --tasks requests `I ~ DELAY` and, with
--partial, the start of a frame they never finish.  With --wait-threads N,
it then waits (at most 5 s) until the server has N threads (Threads: in
/proc/PID/status; PID: --pid or $NETLABS_SERVER_PID), that is, until the
pool has grown to run them.  With --hold it prints "ready N" and holds the
connections open until stdin reaches EOF; it checks no reply (the tests
that use it stop the server meanwhile) and exits 0.
"""
import time

import calcproto
import netlabs
import tp_proto


def main():
    p = netlabs.parser(__doc__.split("\n")[0], hold=True)
    p.add_argument("--conns", type=int, default=10)
    p.add_argument("--tasks", type=int, default=10, help="slow requests per connection (default 10)")
    p.add_argument("--delay", type=int, default=5000, help="ms per slow request (default 5000)")
    p.add_argument("--partial", action="store_true", help="also leave a partial frame on each connection")
    p.add_argument("--wait-threads", type=int, default=None, help="wait until the server has this many threads")
    p.add_argument("--pid", type=int, default=None)
    sc = netlabs.Scenario(p.parse_args())
    a = sc.args
    socks = [sc.connect("client %d: connect" % (i + 1)) for i in range(a.conns)]
    for i, s in enumerate(socks):
        data = b"".join(calcproto.frame(tp_proto.slow(i * 1000 + k, a.delay)) for k in range(a.tasks))
        if a.partial:
            data += b"1024@" + b"7" * 100
        netlabs.send_all(sc, s, data, what="client %d" % (i + 1))
    n = None
    if a.wait_threads:
        pid = tp_proto.server_pid(a)
        end = time.monotonic() + 5
        while time.monotonic() < end:
            n = tp_proto.server_threads(pid)
            if n is None or n >= a.wait_threads:
                break
            time.sleep(0.005)
        if n is None or n < a.wait_threads:
            sc.fail("%d slow requests sent on %d connections: the server's thread count (/proc/%s/status) "
                    "reached %s within 5 s, expected %d (the pool grows while tasks wait)"
                    % (a.conns * a.tasks, a.conns, pid, n, a.wait_threads), state=False)
    if a.hold:
        sc.hold("ready %d" % (a.conns * a.tasks))
    for s in socks:
        s.close()
    sc.ok("%d slow requests sent on %d connections%s" % (a.conns * a.tasks, a.conns,
                                                          "; the server reached %d threads" % n if n else ""))


if __name__ == "__main__":
    main()
