#!/usr/bin/env python3
"""scale - does one loop per thread scale with cores?  The scaling table of
`make compare` (tests/bench/compare --only scale), for 16-multireactor.

    QUICK=1 tests/bench/compare --only scale     (with the rest of compare)
    QUICK=1 tests/bench/scale.py                 (this table alone)

Round trips per second at 1,000 connections (64-byte ping-pong, every reply
verified by tests/bench/loadgen) for -j 1, 2, 4 ... loops, in both -m
dispatch and -m reuseport, each run on a fresh server.

Split mode, always: a scaling measurement with the load generator on the
server's cores measures how the two share them, not how the server scales
(every cycle the client burns is one the loops do not get).  The CPUs this
process may use are cut in two: the server is pinned (tests/lib/launch
--cpus, i.e. sched_setaffinity, as taskset does) to the first half, the
load generator, with one thread per CPU of its own, to the rest.  The
loop counts measured are the powers of two up to the server's CPUs, and
the server's CPU count itself: more loops than CPUs would measure the
scheduler time-slicing loops, not loops running in parallel, so those are
left out and the table says so.  On a 2-CPU machine that leaves -j 1 only;
on 16 CPUs, -j 1, 2, 4, 8 against a load generator with 8 threads.  With a
single CPU there is no split: the table says it measured nothing that
scales.

Per cell: round trips/s (median of the repetitions, min..max), the speedup
against -j 1 of the same mode, and the CPU use in % of one CPU of the server
(from the schedstat of all its threads: -j 4 that scales uses about 400%)
and of the load generator (its own count).
"client-bound" marks a run whose load generator used over 90% of its CPUs:
the client, not the server, set the rate, and the speedup is a lower bound.
Also writes results/scale.csv, one row per run.
"""
import csv
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time

LAB = "16-multireactor"
MODES = ("dispatch", "reuseport")
CONNS = 1000
SIZE = 64


def plan(cpus):
    """(server CPUs, load generator CPUs, loop counts, what was left out)."""
    cpus = sorted(cpus)
    if len(cpus) < 2:
        return cpus, cpus, [1], ""  # no split: table() says so
    half = len(cpus) // 2
    server, client = cpus[:half], cpus[half:]
    js, j = [], 1
    while j <= len(server):
        js.append(j)
        j *= 2
    if js[-1] != len(server):
        js.append(len(server))
    left = ""
    if len(server) < len(cpus):
        over = [j for j in (2 ** k for k in range(1, 10)) if len(server) < j <= len(cpus)]
        if over:
            left = ("-j %s not run: in split mode the server has %d CPU%s, and more loops than "
                    "CPUs would time-slice them" % (", ".join(map(str, over)), len(server),
                                                    "" if len(server) == 1 else "s"))
    return server, client, js, left


def wrapper(dirname, server, j, mode):
    """A script that runs the server with -j and -m (compare starts PATH -p PORT)."""
    path = os.path.join(dirname, "server-j%d-%s" % (j, mode))
    with open(path, "w") as f:
        f.write('#!/bin/sh\nexec "%s" -j %d -m %s "$@"\n' % (server, j, mode))
    os.chmod(path, 0o755)
    return path


def run_one(cmp, name, path, server_cpus, client_cpus, a):
    """One fresh server, one loadgen run with as many threads as it has CPUs."""
    srv = cmp.Server(name, path, cpus=set(server_cpus)).start()
    res = {"server": name, "conns": CONNS, "size": SIZE}
    notes = []
    threads = max(1, min(64, len(client_cpus)))
    lg = subprocess.Popen(
        [cmp.LOADGEN, "-p", str(srv.port), "-c", str(CONNS), "-s", str(SIZE), "-j", str(threads),
         "-t", str(a.seconds), "-w", str(a.warmup), "-T", str(a.connect_timeout),
         "-W", str(a.settle), "-l", name, "-S"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=(lambda: os.sched_setaffinity(0, client_cpus)))
    q = queue.Queue()
    threading.Thread(target=cmp.lines_of, args=(lg.stderr, q), daemon=True).start()
    try:
        if not cmp.wait_line(q, "window start", a.connect_timeout + a.warmup + a.settle + 30, notes):
            raise RuntimeError("no window start")
        s0 = cmp.sample(srv.proc.pid)
        lg.stdin.write("\n")
        lg.stdin.flush()
        if not cmp.wait_line(q, "window end", a.seconds + 30, notes):
            raise RuntimeError("no window end")
        s1 = cmp.sample(srv.proc.pid)
        lg.stdin.write("\n")
        lg.stdin.flush()
        out = lg.stdout.read()
        lg.wait(30)
        res.update(json.loads(out.strip().splitlines()[-1]))
        res["server_cpu_pct"] = (s1["cpu_ns"] - s0["cpu_ns"]) / 1e9 / res["seconds"] * 100
        res["threads"] = s1["threads"]
    except (RuntimeError, ValueError, IndexError, subprocess.TimeoutExpired, BrokenPipeError) as e:
        res["failed"] = str(e)
    finally:
        if lg.poll() is None:
            lg.kill()
            lg.wait()
        res["alive"] = srv.alive()
        srv.stop()
    res["notes"] = "; ".join(n.strip() for n in notes if n.strip() and not n.startswith("window"))[:300]
    return res


def run(cmp, a):
    """Measure and return the Markdown section (empty when lab 16 is not built)."""
    server = os.path.join(cmp.BUILD, "solutions", LAB, "server")
    if not os.access(server, os.X_OK):
        cmp.progress("scale: %s is not built: no scaling table" % server)
        return ""
    server_cpus, client_cpus, js, left = plan(os.sched_getaffinity(0))
    runs = []
    with tempfile.TemporaryDirectory(prefix="netlabs-scale.") as tmp:
        total, i = a.reps * len(js) * len(MODES), 0
        for rep in range(a.reps):
            for j in js:
                # Alternate which mode goes first: neither always gets the
                # machine fresh.
                for mode in MODES if rep % 2 == 0 else MODES[::-1]:
                    i += 1
                    r = run_one(cmp, "%s -j %d -m %s" % (LAB, j, mode),
                                wrapper(tmp, server, j, mode), server_cpus, client_cpus, a)
                    r.update(rep=rep + 1, loops=j, mode=mode)
                    runs.append(r)
                    cmp.progress("scale %2d/%d  rep %d  -j %-3d %-9s %s" % (
                        i, total, rep + 1, j, mode, cmp.short(r)))
    write_csv(os.path.join(cmp.RESULTS, "scale.csv"), runs)
    return table(runs, js, server_cpus, client_cpus, left, a)


def cell(rs, base, fmt_rt):
    ok = [r for r in rs if not r.get("failed") and not r.get("errors") and not r.get("verify_failures")]
    if not rs:
        return "-", "-", "-"
    if len(ok) < len(rs):
        bad = next(r for r in rs if r not in ok)
        why = bad.get("failed") or ("%d errors" % bad["errors"] if bad.get("errors") else "wrong bytes")
        return "n/a (%s)" % why, "-", "-"
    vals = [r["rtps"] for r in ok]
    m = statistics.median(vals)
    rt = fmt_rt(m) if len(vals) == 1 else "%s (%s..%s)" % (fmt_rt(m), fmt_rt(min(vals)), fmt_rt(max(vals)))
    if any(r.get("client_bound") for r in ok):
        rt += " client-bound"
    speed = "%.2fx" % (m / base) if base else "-"
    cpu = "%.0f%% / %.0f%%" % (statistics.median(r["server_cpu_pct"] for r in ok),
                               statistics.median(r.get("client_cpu_pct", 0) for r in ok))
    return rt, speed, cpu


def table(runs, js, server_cpus, client_cpus, left, a):
    def fmt_rt(x):
        return "{:,.0f}".format(x)

    def cpus(c):
        return ",".join(map(str, sorted(c)))

    out = []
    w = out.append
    split = server_cpus != client_cpus
    w("## Scaling: one loop per thread (%s)\n" % LAB)
    w("Round trips/s at %s connections, %d-byte messages, every reply verified; %s%d repetition%s "
      "of %.1f s%s. %s" % (
          "{:,}".format(CONNS), SIZE, "QUICK mode: " if a.quick else "", a.reps,
          "" if a.reps == 1 else "s", a.seconds, " (median, min..max)" if a.reps > 1 else "",
          ("Split mode: the server on CPU%s %s, the load generator (%d thread%s) on CPU%s %s, "
           "of the %d this run may use." % (
               "s" if len(server_cpus) > 1 else "", cpus(server_cpus), len(client_cpus),
               "s" if len(client_cpus) > 1 else "", "s" if len(client_cpus) > 1 else "",
               cpus(client_cpus), len(server_cpus) + len(client_cpus)))
          if split else "No split: one CPU, shared by the server and the load generator."))
    w("")
    w("| loops (-j) | dispatch rt/s | vs -j 1 | CPU server / client | reuseport rt/s | vs -j 1 | "
      "CPU server / client |")
    w("|---:|---:|---:|---:|---:|---:|---:|")
    base = {}
    for mode in MODES:
        ok = [r["rtps"] for r in runs if r["mode"] == mode and r["loops"] == 1 and
              not r.get("failed") and not r.get("errors") and not r.get("verify_failures")]
        base[mode] = statistics.median(ok) if ok else None
    for j in js:
        cells = []
        for mode in MODES:
            cells.extend(cell([r for r in runs if r["mode"] == mode and r["loops"] == j],
                              base[mode], fmt_rt))
        w("| %d | %s |" % (j, " | ".join(cells)))
    w("")
    if not split:
        w("This machine lets the run use one CPU: the server and the load generator take turns on "
          "it, so these figures say nothing about scaling.\n")
    elif len(js) == 1:
        w("Only -j 1 fits: the server has %d CPU in split mode, so this table shows no scaling "
          "at all; it is the baseline a larger machine's rows are compared with. Run it on a machine "
          "with 4 or more CPUs to see the loops scale (the same command measures -j 1, 2, ... up to "
          "half the CPUs).\n" % len(server_cpus))
    if left:
        w(left[0].upper() + left[1:] + ".\n")
    w("CPU: % of one CPU used during the window by all the server's threads (a server that "
      "scales to -j N uses up to N x 100%) and by the load generator's. client-bound: the load "
      "generator used over 90% of its CPUs, so the client set the rate and the speedup is a "
      "lower bound.\n")
    failed = [r for r in runs if r.get("notes")]
    for r in failed[:6]:
        w("- %s (rep %d): %s" % (r["server"], r["rep"], r["notes"].replace("|", "/")))
    if failed:
        w("")
    return "\n".join(out) + "\n"


def write_csv(path, runs):
    keys = ["rep", "mode", "loops", "conns", "size", "rtps", "p50_us", "p99_us", "server_cpu_pct",
            "client_cpu_pct", "client_bound", "threads", "errors", "verify_failures", "failed"]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(keys)
        for r in runs:
            wr.writerow([r.get(k, "") for k in keys])


def main():
    """Alone: compare's servers, loadgen and timings, this table only."""
    import argparse
    import importlib.machinery
    import importlib.util
    here = os.path.dirname(os.path.abspath(__file__))
    loader = importlib.machinery.SourceFileLoader("compare", os.path.join(here, "compare"))
    spec = importlib.util.spec_from_loader("compare", loader)
    cmp = importlib.util.module_from_spec(spec)
    loader.exec_module(cmp)
    p = argparse.ArgumentParser(description="the lab 16 scaling table (split mode)")
    p.add_argument("--quick", action="store_true", default=bool(os.environ.get("QUICK")),
                   help="one repetition, short runs (also QUICK=1)")
    p.add_argument("--reps", type=int, default=int(os.environ.get("REPS", 0)) or None)
    p.add_argument("--seconds", type=float, default=None, help="measured seconds per run")
    a = p.parse_args()
    a.reps = a.reps or (1 if a.quick else 3)
    a.seconds = a.seconds or (0.8 if a.quick else 3.0)
    a.warmup = 0.2 if a.quick else 0.5
    a.connect_timeout = 10.0
    a.settle = 3.0 if a.quick else 5.0
    if not os.access(cmp.LOADGEN, os.X_OK):
        sys.exit("scale: %s is not built: run make" % cmp.LOADGEN)
    os.makedirs(cmp.RESULTS, exist_ok=True)
    md = run(cmp, a)
    sys.stdout.write(md)
    sys.exit(0 if md else 1)


if __name__ == "__main__":
    main()
