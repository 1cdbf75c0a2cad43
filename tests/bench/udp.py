#!/usr/bin/env python3
"""udp - the UDP echo of lab 11, datagram by datagram and in batches.
The UDP table of `make compare` (tests/bench/compare --only udp), for
11-udp.

    QUICK=1 tests/bench/compare --only udp     (with the rest of compare)
    QUICK=1 tests/bench/udp.py                 (this table alone)

tests/bench/udpgen (C, epoll) plays ping-pong with N connected UDP sockets
(1 and 100), S-byte datagrams (64 B and 1,400 B: a small request, and about
the most that fits one Ethernet frame), every answer checked (the uppercase
of what was sent, the same length).  The rung 11 server two ways, each on a
fresh process:

  plain      udp_echo_ready(): one recvfrom() and one sendto() per datagram;
  --batch    udp_echo_batch(): recvmmsg() takes up to 64 waiting datagrams
             in one call, sendmmsg() sends their answers in one call.

Per row: datagrams answered per second (each a round trip), latency p50 and
p99, the datagrams lost (no answer within 1 s: UDP drops rather than
waits, typically at the server's receive buffer when 100 clients send at
once), the server's CPU, and, in a separate short run as in the echo
table, the server's system calls per datagram (perf stat on
raw_syscalls:sys_enter, counted as the echo table counts them; "n/a"
without perf).  Server and generator are placed as in the rest of compare
(the same CPU unless SPLIT=1).  A wrong answer fails the run.  Also writes
results/udp.csv, one row per run.
"""
import csv
import json
import os
import queue
import statistics
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchrun  # noqa: E402

LAB = "11-udp"
SIZES = [64, 1400]
CLIENTS = [1, 100]
DESIGNS = [("plain", []), ("--batch", ["--batch"])]
LOST_S = 1.0  # an answer not back within this is counted lost
LAST_RUNS = []  # the runs of the last run(): compare's exit status looks at them


def udpgen_path(cmp):
    return os.path.join(cmp.BUILD, "tests", "bench", "udpgen")


def run_one(cmp, a, server, design, args, clients, size, seconds, count_syscalls):
    """One fresh server, one udpgen run (-S: /proc and perf at the window's
    edges).  Returns udpgen's JSON with server_cpu_pct (and
    syscalls_per_dgram) added, or "failed" with the reason."""
    srv = cmp.Server("11-udp " + design, server, cpus=a.server_cpus, args=["-p", "0"] + args)
    res = {"design": design, "clients": clients, "size": size,
           "kind": "syscalls" if count_syscalls else "perf"}
    try:
        srv.start()
    except RuntimeError as e:
        res["failed"] = str(e)
        return res
    notes = []
    lg = subprocess.Popen(
        [udpgen_path(cmp), "-p", str(srv.port), "-c", str(clients), "-s", str(size),
         "-t", str(seconds), "-w", str(0.1 if count_syscalls else a.warmup), "-T", str(LOST_S),
         "-l", design, "-S"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=(lambda: os.sched_setaffinity(0, a.client_cpus)) if a.client_cpus else None)
    q = queue.Queue()
    threading.Thread(target=cmp.lines_of, args=(lg.stderr, q), daemon=True).start()
    perf = None
    try:
        if not cmp.wait_line(q, "window start", a.warmup + 2 * LOST_S + 30, notes):
            raise RuntimeError("no window start")
        s0 = cmp.sample(srv.proc.pid)
        if count_syscalls:
            perf = cmp.Perf(s0["pids"])
            if not perf.switch("enable"):
                notes.append("perf did not start")
        lg.stdin.write("\n")
        lg.stdin.flush()
        if not cmp.wait_line(q, "window end", seconds + LOST_S + 30, notes):
            raise RuntimeError("no window end")
        if perf:
            perf.switch("disable")
        s1 = cmp.sample(srv.proc.pid)
        lg.stdin.write("\n")
        lg.stdin.flush()
        out = lg.stdout.read()
        lg.wait(30)
        res.update(json.loads(out.strip().splitlines()[-1]))
        res["server_cpu_pct"] = (s1["cpu_ns"] - s0["cpu_ns"]) / 1e9 / res["seconds"] * 100
        if perf:
            res["syscalls_per_dgram"] = perf.per(res["datagrams"], res.get("seconds"))
            perf = None
    except (RuntimeError, ValueError, IndexError, subprocess.TimeoutExpired, BrokenPipeError) as e:
        res["failed"] = str(e)
    finally:
        if perf:
            perf.finish()
        if lg.poll() is None:
            lg.kill()
            lg.wait()
        while True:
            try:
                line = q.get(timeout=1)
            except queue.Empty:
                break
            if line is None:
                break
            notes.append(line.rstrip())
        res["alive"] = srv.alive()
        srv.stop()
    res["notes"] = "; ".join(n.strip() for n in notes
                             if n.strip() and not n.startswith("window"))[:300]
    return res


def bad(r):
    """Why a run cannot be trusted, or None.  A lost datagram is UDP doing
    what it may do: reported in its own column, not a failure; a wrong
    answer, a socket error or a dead server is."""
    if r.get("failed"):
        return r["failed"]
    if r.get("verify_failures"):
        return "%d wrong answers" % r["verify_failures"]
    if r.get("socket_errors"):
        return "%d socket errors" % r["socket_errors"]
    if not r.get("alive", True):
        return "server died"
    return None


def run(cmp, a):
    """Measure and return the Markdown section (empty when lab 11 or udpgen
    is not built)."""
    server = os.path.join(cmp.BUILD, "solutions", LAB, "server")
    if not os.access(server, os.X_OK):
        cmp.progress("udp: %s is not built: no UDP table" % server)
        return ""
    if not os.access(udpgen_path(cmp), os.X_OK):
        cmp.progress("udp: %s is not built: no UDP table" % udpgen_path(cmp))
        return ""
    perf = getattr(a, "perf", None)
    if perf is None:
        perf = cmp.have_perf()
    sys_seconds = getattr(a, "sys_seconds", 0.3 if a.quick else 1.0)
    cells = [(size, clients) for size in SIZES for clients in CLIENTS]
    runs = []
    total = len(cells) * len(DESIGNS) * (a.reps + (1 if perf else 0))
    i = 0
    for rep in range(a.reps + (1 if perf else 0)):
        syscalls = rep == a.reps  # the last round: the short perf runs
        for size, clients in cells:
            # Rotate the order: no design always gets the machine first.
            order = DESIGNS[rep % 2:] + DESIGNS[:rep % 2]
            for design, args in order:
                i += 1
                r = run_one(cmp, a, server, design, args, clients, size,
                            sys_seconds if syscalls else a.seconds, syscalls)
                r["rep"] = rep + 1
                runs.append(r)
                why = bad(r)
                cmp.progress("udp %2d/%d  %s %4d B %3d clients %-8s %s" % (
                    i, total, "syscalls" if syscalls else "rep %d   " % (rep + 1), size, clients,
                    design, "FAILED: " + why if why else
                    ("%s per datagram" % fmt(r.get("syscalls_per_dgram"), "%.2f")) if syscalls
                    else "%s dgram/s  p50 %.0f µs  p99 %.0f µs  lost %d" % (
                        cmp.human(r["dps"]), r["p50_us"], r["p99_us"], r["timeouts"])))
    LAST_RUNS[:] = runs
    write_csv(os.path.join(cmp.RESULTS, "udp.csv"), runs)
    return table(cmp, runs, a, perf)


def fmt(x, spec, na="n/a"):
    return na if x is None else spec % x


def table(cmp, runs, a, perf):
    out = []
    w = out.append
    w("## UDP: one datagram per system call, or a batch (%s)\n" % LAB)
    w("Ping-pong on connected UDP sockets, every answer checked (the uppercase of what was sent, "
      "the same length); a datagram whose answer is not back within %.0f s is counted lost. "
      "%s%d repetition%s of %.1f s%s; server and generator on CPU %s / %s. Latency in µs per "
      "round trip; syscalls per datagram from a separate short run (perf stat on "
      "raw_syscalls:sys_enter%s).\n" % (
          LOST_S, "QUICK mode: " if a.quick else "", a.reps, "" if a.reps == 1 else "s",
          a.seconds, " (median, min..max)" if a.reps > 1 else "",
          cmp.fmt_cpus(a.server_cpus), cmp.fmt_cpus(a.client_cpus),
          "" if perf else "; perf is not usable here: n/a"))
    w("| size | clients | server | datagrams/s | p50 µs | p99 µs | lost | server CPU | "
      "syscalls/datagram |")
    w("|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    notes = []
    for size in SIZES:
        for clients in CLIENTS:
            for design, _ in DESIGNS:
                rs = [r for r in runs if r["size"] == size and r["clients"] == clients and
                      r["design"] == design]
                pr = [r for r in rs if r["kind"] == "perf"]
                sr = [r for r in rs if r["kind"] == "syscalls" and not bad(r)]
                sysc = fmt(sr[0].get("syscalls_per_dgram") if sr else None, "%.2f")
                ok = [r for r in pr if not bad(r)]
                head = "| %d B | %d | %s |" % (size, clients, design)
                if not ok:
                    why = bad(pr[0]) if pr else "not run"
                    w(head + " n/a | | | | | %s |" % sysc)
                    notes.append("%d B, %d clients, %s: %s%s" % (
                        size, clients, design, why,
                        (" (%s)" % pr[0]["notes"]) if pr and pr[0].get("notes") else ""))
                    continue
                vals = [r["dps"] for r in ok]
                dps = "{:,.0f}".format(statistics.median(vals))
                if len(vals) > 1:
                    dps += " ({:,.0f}..{:,.0f})".format(min(vals), max(vals))
                if any(r.get("client_bound") for r in ok):
                    dps += " client-bound"
                if len(ok) < len(pr):
                    dps += " (%d of %d runs failed)" % (len(pr) - len(ok), len(pr))
                lost = sum(r["timeouts"] for r in ok)
                sent = sum(r["datagrams"] + r["timeouts"] for r in ok)
                w(head + " %s | %.0f | %.0f | %s | %.0f%% | %s |" % (
                    dps, statistics.median(r["p50_us"] for r in ok),
                    statistics.median(r["p99_us"] for r in ok),
                    "0" if lost == 0 else "%d (%.2f%%)" % (lost, 100.0 * lost / max(1, sent)),
                    statistics.median(r["server_cpu_pct"] for r in ok), sysc))
    w("")
    w("The plain loop makes two system calls per datagram (recvfrom, sendto) and, per wakeup, "
      "a wait (ppoll) and one more recvfrom that finds the queue empty: with one client about "
      "4 per datagram (fewer when the next one is already waiting). --batch makes three per "
      "wakeup whatever the batch holds (ppoll, one recvmmsg that returns what is queued, one "
      "sendmmsg): with one client a batch holds one datagram, so 3 per datagram; with 100 "
      "clients datagrams queue while the server works, and each batch answers several with the "
      "same three calls. A lost datagram is UDP behaving as it may: when 100 clients send at "
      "once the server's receive buffer (net.core.rmem_default) can fill, and the kernel drops "
      "what does not fit instead of making anyone wait; each loss costs its client the %.0f s "
      "timeout. Figures from a busy 2-CPU machine are noisy: compare the ratios, not the "
      "digits.\n" % LOST_S)
    for n in notes:
        w("- " + n.replace("|", "/"))
    if notes:
        w("")
    return "\n".join(out) + "\n"


def write_csv(path, runs):
    keys = ["rep", "kind", "design", "size", "clients", "datagrams", "dps", "p50_us", "p90_us",
            "p99_us", "max_us", "timeouts", "late", "socket_errors", "verify_failures",
            "server_cpu_pct", "client_cpu_pct", "client_bound", "syscalls_per_dgram", "failed",
            "notes"]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        wr = csv.writer(f)
        wr.writerow(keys)
        for r in runs:
            wr.writerow([r.get(k, "") for k in keys])


def main():
    """Alone: compare's servers and timings, this table only."""
    cmp = benchrun.load_compare()
    a = benchrun.standalone_args("the lab 11 UDP table")
    os.makedirs(cmp.RESULTS, exist_ok=True)
    md = run(cmp, a)
    sys.stdout.write(md)
    sys.exit(0 if md and not any(r.get("verify_failures") for r in LAST_RUNS) else 1)


if __name__ == "__main__":
    main()
