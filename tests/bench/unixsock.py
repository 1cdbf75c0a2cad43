#!/usr/bin/env python3
"""unixsock - the same echo over AF_UNIX, over TCP loopback, and as a prefork
tree.  The Unix-socket table of `make compare` (tests/bench/compare --only
unix), for 13-unix.

    QUICK=1 tests/bench/compare --only unix     (with the rest of compare)
    QUICK=1 tests/bench/unixsock.py             (this table alone)

One server binary, four ways, each on a fresh process:

  -u PATH     one epoll loop on a Unix-domain stream socket (tests/bench/
              loadgen --unix PATH);
  -p 0        the same loop on TCP loopback;
  -w 1        the prefork master: it accepts on TCP and passes each
              connection (SCM_RIGHTS) to its one worker;
  -w CPUS     the same with one worker per CPU this run may use.

Ping-pong on 10 connections, 64-byte and 16 KiB messages, every byte of
every reply verified: round trips/s and latency p50/p99 per round trip.
The server and the load generator are NOT pinned here: a prefork tree with
N workers pinned to one CPU would measure nothing, and the four rows must
share one placement to be compared; these figures are therefore not
comparable with the pinned tables above.  Also writes results/unix.csv,
one row per run.
"""
import csv
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchrun  # noqa: E402

LAB = "13-unix"
CONNS = 10
SIZES = [(64, "64 B"), (16384, "16 KiB")]


def designs(ncpu):
    return [("AF_UNIX (-u PATH)", "unix"),
            ("TCP loopback (-p 0)", ["-p", "0"]),
            ("TCP prefork -w 1", ["-w", "1", "-p", "0"]),
            ("TCP prefork -w %d (CPUs)" % ncpu, ["-w", str(ncpu), "-p", "0"])]


def run(cmp, a):
    """Measure and return the Markdown section (empty when lab 13 is not built)."""
    server = os.path.join(cmp.BUILD, "solutions", LAB, "server")
    if not os.access(server, os.X_OK):
        cmp.progress("unix: %s is not built: no Unix-socket table" % server)
        return ""
    ncpu = len(os.sched_getaffinity(0))
    ds = designs(ncpu)
    runs = []
    total, i = a.reps * len(ds) * len(SIZES), 0
    with tempfile.TemporaryDirectory(prefix="netlabs-unix.") as tmp:
        for rep in range(a.reps):
            for size, skey in SIZES:
                order = ds[rep % len(ds):] + ds[:rep % len(ds)]
                for label, args in order:
                    i += 1
                    if args == "unix":  # a fresh socket file for every run
                        args = ["-u", os.path.join(tmp, "echo-%d.sock" % i)]
                    r = benchrun.run_one(cmp, label, server, args,
                                         ["-c", str(CONNS), "-s", str(size)], a)
                    r.update(rep=rep + 1, design=label, size_key=skey)
                    runs.append(r)
                    why = benchrun.bad(r)
                    cmp.progress("unix %2d/%d  rep %d  %-6s %-26s %s" % (
                        i, total, rep + 1, skey, label, "FAILED: " + why if why else
                        "%s rt/s  p50 %.0f µs  p99 %.0f µs" % (
                            cmp.human(r["rtps"]), r["p50_us"], r["p99_us"])))
    write_csv(os.path.join(cmp.RESULTS, "unix.csv"), runs)
    return table(runs, ds, a)


def cell(rs):
    ok = [r for r in rs if not benchrun.bad(r)]
    if not ok:
        return ["n/a (%s)" % (benchrun.bad(rs[0]) if rs else "not run"), "", ""]
    vals = [r["rtps"] for r in ok]
    m = statistics.median(vals)
    rt = "{:,.0f}".format(m)
    if len(vals) > 1:
        rt += " ({:,.0f}..{:,.0f})".format(min(vals), max(vals))
    if any(r.get("client_bound") for r in ok):
        rt += " client-bound"
    return [rt, "%.0f" % statistics.median(r["p50_us"] for r in ok),
            "%.0f" % statistics.median(r["p99_us"] for r in ok)]


def table(runs, ds, a):
    out = []
    w = out.append
    w("## Unix-domain sockets, TCP loopback, prefork (%s)\n" % LAB)
    w("The uppercase echo, ping-pong on %d connections, every byte verified; %s%d repetition%s "
      "of %.1f s%s. Not pinned: the server and the load generator may use all %d CPUs (a prefork "
      "tree pinned to one CPU would measure nothing), so these rows compare with each other, not "
      "with the pinned tables above. Latency in µs per round trip.\n" % (
          CONNS, "QUICK mode: " if a.quick else "", a.reps, "" if a.reps == 1 else "s",
          a.seconds, " (median, min..max)" if a.reps > 1 else "",
          len(os.sched_getaffinity(0))))
    head = "| server |"
    rule = "|---|"
    for _, skey in SIZES:
        head += " %s rt/s | p50 µs | p99 µs |" % skey
        rule += "---:|---:|---:|"
    w(head)
    w(rule)
    for label, _ in ds:
        cells = []
        for _, skey in SIZES:
            cells += cell([r for r in runs if r["design"] == label and r["size_key"] == skey])
        w("| %s | %s |" % (label, " | ".join(cells)))
    w("")
    w("AF_UNIX skips the TCP/IP stack (no checksums, no segments, no ACKs, no congestion "
      "window): the same loop should answer more round trips over it at both sizes. The prefork master costs a hop only at accept time (the worker then owns "
      "the connection), so with few connections -w 1 is the single loop in another process, "
      "and more workers help only as far as there are free CPUs: on a busy 2-CPU machine the "
      "load generator takes one of them. Figures from such a machine are noisy: compare the "
      "ratios, not the digits.\n")
    failed = [r for r in runs if r.get("notes") and benchrun.bad(r)]
    for r in failed[:6]:
        w("- %s, %s (rep %d): %s" % (r["design"], r["size_key"], r["rep"],
                                     r["notes"].replace("|", "/")))
    if failed:
        w("")
    return "\n".join(out) + "\n"


def write_csv(path, runs):
    keys = ["rep", "design", "size", "conns", "round_trips", "rtps", "p50_us", "p99_us",
            "server_cpu_pct", "client_cpu_pct", "client_bound", "threads", "procs", "errors",
            "verify_failures", "failed", "notes"]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(keys)
        for r in runs:
            wr.writerow([r.get(k, "") for k in keys])


def main():
    """Alone: compare's servers, loadgen and timings, this table only."""
    cmp = benchrun.load_compare()
    a = benchrun.standalone_args("the lab 13 Unix-socket table")
    if not os.access(cmp.LOADGEN, os.X_OK):
        sys.exit("unixsock: %s is not built: run make" % cmp.LOADGEN)
    os.makedirs(cmp.RESULTS, exist_ok=True)
    md = run(cmp, a)
    sys.stdout.write(md)
    sys.exit(0 if md else 1)


if __name__ == "__main__":
    main()
