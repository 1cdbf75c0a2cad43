"""benchrun - one fresh server, one load generator run: the step the tables
of tests/bench/hol.py and tests/bench/unixsock.py are made of.

run_one() starts the server through compare's Server (tests/lib/launch,
its listening line waited for: "listening on ADDR:PORT" or "listening on
unix:PATH"), runs tests/bench/loadgen against it in sync mode (-S) so the
server's CPU time is read from /proc at exactly the window's edges, and
returns loadgen's JSON line with server_cpu_pct, threads and procs added,
or "failed" with the reason.  The server is always stopped, whole group.
"""
import json
import os
import queue
import subprocess
import threading


def run_one(cmp, name, path, server_args, loadgen_args, a, server_cpus=None, client_cpus=None):
    srv = cmp.Server(name, path, cpus=server_cpus, args=server_args)
    res = {"server": name}
    try:
        srv.start()
    except RuntimeError as e:
        res["failed"] = str(e)
        return res
    notes = []
    target = ["--unix", srv.unix] if srv.unix else ["-p", str(srv.port)]
    lg = subprocess.Popen(
        [cmp.LOADGEN] + target + list(loadgen_args) +
        ["-t", str(a.seconds), "-w", str(a.warmup), "-T", str(a.connect_timeout),
         "-W", str(a.settle), "-l", name, "-S"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=(lambda: os.sched_setaffinity(0, client_cpus)) if client_cpus else None)
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
        res["procs"] = s1["procs"]
    except (RuntimeError, ValueError, IndexError, subprocess.TimeoutExpired, BrokenPipeError) as e:
        res["failed"] = str(e)
    finally:
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
    """Why a run cannot be trusted, or None."""
    if r.get("failed"):
        return r["failed"]
    if r.get("verify_failures"):
        return "%d wrong replies" % r["verify_failures"]
    if r.get("errors"):
        return "%d errors" % r["errors"]
    if not r.get("alive", True):
        return "server died"
    return None


def load_compare():
    """compare, imported as a module (it has no .py suffix)."""
    import importlib.machinery
    import importlib.util
    here = os.path.dirname(os.path.abspath(__file__))
    loader = importlib.machinery.SourceFileLoader("compare", os.path.join(here, "compare"))
    spec = importlib.util.spec_from_loader("compare", loader)
    cmp = importlib.util.module_from_spec(spec)
    loader.exec_module(cmp)
    return cmp


def standalone_args(description):
    """The timing options compare gives a table, for a module run alone."""
    import argparse
    p = argparse.ArgumentParser(description=description)
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
    cpus = sorted(os.sched_getaffinity(0))
    a.split = False
    a.server_cpus = a.client_cpus = {cpus[-1]}
    return a
