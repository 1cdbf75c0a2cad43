#!/usr/bin/env python3
"""hol - head-of-line blocking: slow work in the loop against a thread pool.
The head-of-line table of `make compare` (tests/bench/compare --only hol),
for 10-threadpool.

    QUICK=1 tests/bench/compare --only hol     (with the rest of compare)
    QUICK=1 tests/bench/hol.py                 (this table alone)

100 connections, each with one request in flight (tests/bench/loadgen
--proto calc --depth 1), every reply verified.  1% of the requests
(--slow-permille 10) are "X ~ 20": wait 20 ms, then answer "0 X"; the
rest are the ordinary calculator mix.  The same server three ways, each on
a fresh process:

  --inline      the naive design: the loop itself sleeps 20 ms for every
                "~", and every other connection's request waits behind it;
  -t 2:16       the pool (its default size): "~" goes to a worker, the loop
                goes on answering;
  -t 64:64      a pool big enough for the offered slow work (Little's law:
                slow requests/s x 20 ms workers busy on average).

Per row: the latency of the PLAIN requests (p50, p99: what head-of-line
blocking does to the requests that did nothing slow), of the "~" requests
(no less than 20 ms by construction), requests/s (both kinds), "5 0" busy
replies (a full queue: an answer, not an error), and the server's threads
and CPU.  The server and the load generator are placed on the CPUs as in
the rest of compare (the same CPU unless SPLIT=1).  Also writes
results/hol.csv, one row per run.
"""
import csv
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchrun  # noqa: E402

LAB = "10-threadpool"
CONNS = 100
SLOW_PERMILLE = 10
SLOW_MS = 20
DESIGNS = [
    ("--inline (in the loop)", ["--inline"]),
    ("pool -t 2:16 (default)", ["-t", "2:16"]),
    ("pool -t 64:64", ["-t", "64:64"]),
]


def run(cmp, a):
    """Measure and return the Markdown section (empty when lab 10 is not built)."""
    server = os.path.join(cmp.BUILD, "solutions", LAB, "server")
    if not os.access(server, os.X_OK):
        cmp.progress("hol: %s is not built: no head-of-line table" % server)
        return ""
    lg_args = ["--proto", "calc", "--depth", "1", "-c", str(CONNS),
               "--slow-permille", str(SLOW_PERMILLE), "--slow-ms", str(SLOW_MS)]
    runs = []
    total, i = a.reps * len(DESIGNS), 0
    for rep in range(a.reps):
        # Rotate the order: no design always gets the machine first.
        order = DESIGNS[rep % len(DESIGNS):] + DESIGNS[:rep % len(DESIGNS)]
        for label, args in order:
            i += 1
            r = benchrun.run_one(cmp, label, server, ["-p", "0"] + args, lg_args, a,
                                 server_cpus=a.server_cpus, client_cpus=a.client_cpus)
            r.update(rep=rep + 1, design=label)
            runs.append(r)
            why = benchrun.bad(r)
            cmp.progress("hol %2d/%d  rep %d  %-24s %s" % (
                i, total, rep + 1, label, "FAILED: " + why if why else
                "%s req/s  plain p50 %.0f µs p99 %.0f µs  slow p99 %.0f µs" % (
                    cmp.human(r["rps"]), r["plain_p50_us"], r["plain_p99_us"],
                    r["slow_p99_us"])))
    write_csv(os.path.join(cmp.RESULTS, "hol.csv"), runs)
    return table(cmp, runs, a)


def ms(us):
    return "%.1f" % (us / 1000.0) if us >= 100 else "%.2f" % (us / 1000.0)


def table(cmp, runs, a):
    out = []
    w = out.append
    w("## Head-of-line blocking: slow work in the loop or in a pool (%s)\n" % LAB)
    w("%d connections, one request in flight on each, every reply verified; %d in 1,000 requests "
      "are `X ~ %d` (wait %d ms, answer `0 X`), the rest the ordinary calculator mix. "
      "%s%d repetition%s of %.1f s%s; server and load generator on CPU %s / %s. "
      "Latency in ms, from the moment a request is queued to its verified reply.\n" % (
          CONNS, SLOW_PERMILLE, SLOW_MS, SLOW_MS, "QUICK mode: " if a.quick else "", a.reps,
          "" if a.reps == 1 else "s", a.seconds, " (median of each figure)" if a.reps > 1 else "",
          cmp.fmt_cpus(a.server_cpus), cmp.fmt_cpus(a.client_cpus)))
    w("| design | plain p50 ms | plain p99 ms | slow p50 ms | slow p99 ms | requests/s | "
      "busy (5 0) | threads | server CPU |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    notes = []
    for label, _ in DESIGNS:
        rs = [r for r in runs if r["design"] == label]
        ok = [r for r in rs if not benchrun.bad(r)]
        if not ok:
            why = benchrun.bad(rs[0]) if rs else "not run"
            w("| %s | n/a | n/a | n/a | n/a | n/a | | | |" % label)
            notes.append("%s: %s%s" % (label, why, (" (%s)" % rs[0]["notes"]) if rs and
                                       rs[0].get("notes") else ""))
            continue

        def m(k):
            return statistics.median(r[k] for r in ok)
        rps = [r["rps"] for r in ok]
        rps_s = "{:,.0f}".format(m("rps")) + (
            "" if len(rps) == 1 else " ({:,.0f}..{:,.0f})".format(min(rps), max(rps)))
        if len(ok) < len(rs):
            rps_s += " (%d of %d runs failed)" % (len(rs) - len(ok), len(rs))
        w("| %s | %s | %s | %s | %s | %s | %d | %d | %.0f%% |" % (
            label, ms(m("plain_p50_us")), ms(m("plain_p99_us")), ms(m("slow_p50_us")),
            ms(m("slow_p99_us")), rps_s, max(r["busy"] for r in ok),
            max(r["threads"] for r in ok), m("server_cpu_pct")))
    w("")
    w("In the loop, every `~` stops the whole server for %d ms: the plain requests of the other "
      "%d connections queue behind it, so their latency is counted in slow requests, not in "
      "microseconds, and it answers at most 1000 / %d `~` a second: with %d in 1,000 slow, about "
      "%s requests/s in all. With the pool "
      "the loop only hands `~` over; a pool smaller than the offered slow work (slow requests/s "
      "x %d ms workers busy at once) queues the `~` requests themselves, which shows in their "
      "p99 and, once the queue is full, as busy replies. Figures from a busy 2-CPU machine are "
      "noisy: compare the orders of magnitude, not the digits.\n" % (
          SLOW_MS, CONNS - 1, SLOW_MS, SLOW_PERMILLE,
          "{:,}".format(1000 // SLOW_MS * 1000 // SLOW_PERMILLE), SLOW_MS))
    for n in notes:
        w("- " + n.replace("|", "/"))
    if notes:
        w("")
    return "\n".join(out) + "\n"


def write_csv(path, runs):
    keys = ["rep", "design", "conns", "depth", "slow_permille", "slow_ms", "requests", "rps",
            "plain_requests", "plain_p50_us", "plain_p99_us", "plain_max_us", "slow_requests",
            "slow_p50_us", "slow_p99_us", "slow_max_us", "busy", "threads", "server_cpu_pct",
            "client_cpu_pct", "errors", "verify_failures", "failed", "notes"]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(keys)
        for r in runs:
            wr.writerow([r.get(k, "") for k in keys])


def main():
    """Alone: compare's servers, loadgen and timings, this table only."""
    cmp = benchrun.load_compare()
    a = benchrun.standalone_args("the lab 10 head-of-line table")
    if not os.access(cmp.LOADGEN, os.X_OK):
        sys.exit("hol: %s is not built: run make" % cmp.LOADGEN)
    os.makedirs(cmp.RESULTS, exist_ok=True)
    md = run(cmp, a)
    sys.stdout.write(md)
    sys.exit(0 if md else 1)


if __name__ == "__main__":
    main()
