#!/usr/bin/env python3
"""mr_owner.py - which loop thread serves each connection (lab 16), from /proc.

    python3 tests/clients/mr_owner.py --port P --pid PID --log SERVER_STDERR \
        --clients 40 --loops 4 [--rounds 30] [--exact]

The server runs with -v, so each loop logs "loop I tid T: connect ADDR:PORT"
on stderr (the file --log) when it takes a connection.  This client opens
--clients connections and echoes once on each, then checks:

  1. every connection was logged by exactly one loop, and that loop's tid is
     a thread of PID named "loop I" (/proc/PID/task/TID/comm);
  2. every one of the --loops loops got at least one connection (--exact:
     exactly clients/loops each, as round-robin dispatch promises);
  3. the thread the server names is the thread that does the work: for each
     connection in turn, --rounds echo round trips, one at a time, while
     the CPU time of every thread is measured (/proc/PID/task/TID/schedstat,
     in ns).  The owner reads and writes the bytes; the other loops sleep
     in epoll_wait: the thread that ran most must be the one named in the
     log.
     Done twice, in two passes over all connections, so a connection that
     moved between loops (it must live on one loop for life) is caught.
"""
import os
import re
import time

import netlabs


def tasks(pid):
    """{tid: (comm, nanoseconds on a CPU)} for every thread of pid
    (/proc/PID/task/TID/schedstat: its first field is the time the thread
    has run, in ns, far finer than the 10 ms ticks of .../stat)."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                comm = f.read().strip()
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                ns = int(f.read().split()[0])
            out[int(tid)] = (comm, ns)
        except OSError:
            pass  # a thread that just ended
    return out


def main():
    p = netlabs.parser(__doc__.split("\n")[0])
    p.add_argument("--pid", type=int, required=True, help="the server's pid")
    p.add_argument("--log", required=True, help="the server's stderr (run with -v)")
    p.add_argument("--clients", type=int, default=40)
    p.add_argument("--loops", type=int, required=True, help="the -j the server runs with")
    p.add_argument("--rounds", type=int, default=30, help="round trips per connection and pass")
    p.add_argument("--exact", action="store_true", help="round-robin: exactly clients/loops each")
    sc = netlabs.Scenario(p.parse_args())
    a = sc.args
    repro = "server: run it with -v -j %d and its stderr in a file, then this client" % a.loops

    socks = []
    for i in range(a.clients):
        s = sc.connect("client %d: connect" % i)
        socks.append(s)
        netlabs.echo_once(sc, s, b"hello %d" % i, "client %d" % i)
    ports = {s.getsockname()[1]: i for i, s in enumerate(socks)}

    # 1. the log: "loop I tid T: connect 127.0.0.1:PORT", one per connection.
    line = re.compile(r"^loop (\d+) tid (\d+): connect [0-9.]+:(\d+)$")
    owner = {}  # client index -> (loop, tid)
    deadline = time.monotonic() + 5
    while True:
        owner.clear()
        dup = []
        with open(a.log, errors="replace") as f:
            for text in f:
                m = line.match(text.strip())
                if m and int(m.group(3)) in ports:
                    i = ports[int(m.group(3))]
                    if i in owner:
                        dup.append(text.strip())
                    owner[i] = (int(m.group(1)), int(m.group(2)))
        if len(owner) == a.clients or time.monotonic() > deadline:
            break
        time.sleep(0.05)  # the log line is written before the echo; this is a bound, not a sync
    missing = [i for i in range(a.clients) if i not in owner]
    if missing or dup:
        sc.fail("expected one 'loop I tid T: connect 127.0.0.1:PORT' line on stderr (-v) per "
                "connection; %d of %d connections have none%s"
                % (len(missing), a.clients, ("; logged twice: " + "; ".join(dup[:3])) if dup else ""),
                + "\n" + repro, state=False)
    threads = tasks(a.pid)
    for i, (loop, tid) in sorted(owner.items()):
        want = "loop %d" % loop
        if tid not in threads:
            sc.fail("connection %d was logged by 'loop %d tid %d', but /proc/%d/task has no thread %d "
                    "(threads: %s): log the id of the loop's own thread (syscall(SYS_gettid), called "
                    "in that thread)" % (i, loop, tid, a.pid, tid, sorted(threads)) + "\n" + repro, state=False)
        if threads[tid][0] != want:
            sc.fail("thread %d, which the log says is loop %d, is named '%s' in /proc/%d/task/%d/comm, "
                    "expected '%s' (pthread_setname_np in the loop's thread)"
                    % (tid, loop, threads[tid][0], a.pid, tid, want) + "\n" + repro, state=False)

    # 2. the spread.
    per = {}
    for loop, _ in owner.values():
        per[loop] = per.get(loop, 0) + 1
    counts = [per.get(j, 0) for j in range(a.loops)]
    if any(c == 0 for c in counts) or len(per) != a.loops:
        sc.fail("expected the %d connections spread over all %d loops; per loop (0..%d): %s%s"
                % (a.clients, a.loops, a.loops - 1, counts,
                   "; loops outside 0..%d: %s" % (a.loops - 1, sorted(set(per) - set(range(a.loops))))
                   if set(per) - set(range(a.loops)) else "") + "\n" + repro, state=False)
    if a.exact and any(c != a.clients // a.loops for c in counts):
        sc.fail("expected round-robin dispatch to give each loop exactly %d of %d connections; "
                "per loop: %s" % (a.clients // a.loops, a.clients, counts) + "\n" + repro, state=False)

    # 3. the work: who wakes up for each connection's round trips.
    loop_tids = {tid for _, tid in owner.values()}
    for pas in (1, 2):
        for i, s in enumerate(socks):
            before = tasks(a.pid)
            for k in range(a.rounds):
                netlabs.echo_once(sc, s, b"round %d" % k, "client %d, pass %d" % (i, pas))
            after = tasks(a.pid)
            delta = {t: after[t][1] - before[t][1] for t in loop_tids if t in before and t in after}
            busiest = max(delta, key=lambda t: delta[t])
            loop, tid = owner[i]
            if busiest != tid or delta[tid] == 0:
                sc.fail("connection %d (pass %d) is logged as loop %d's (tid %d), but during its %d "
                        "round trips the thread that ran most was %d (CPU time per loop "
                        "thread, ns: %s): a connection must be served by the loop "
                        "that took it, for life" % (i, pas, loop, tid, a.rounds, busiest,
                                                    {t: delta[t] for t in sorted(delta)}) + "\n" + repro, state=False)
    for s in socks:
        s.close()
    sc.ok("%d connections over %d loops %s, each served by its own loop thread (checked in /proc)"
          % (a.clients, a.loops, counts))


if __name__ == "__main__":
    main()
