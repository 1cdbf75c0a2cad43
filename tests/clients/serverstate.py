#!/usr/bin/env python3
"""serverstate.py - what a stuck server is doing, read from /proc, and the
likely cause of a failure that follows from it (python3 standard library only).

A scenario that fails because the server stopped making progress calls
diagnose() before it closes its connections, while the server is still in
the state that broke it.  /proc tells, without stopping the server:

  - where each thread (of each process) of the server waits: in epoll_wait,
    select/poll, accept, a read or write on a socket (its wchan, and its
    system call when /proc/PID/syscall is readable), or runs (spins);
  - each socket it holds: fd, O_NONBLOCK or not, and from /proc/net/tcp its
    state and the bytes queued both ways (rx_queue: sent to the server and
    not read yet; on a listening socket, connections not accepted yet);
  - its epoll interest list (fdinfo's tfd lines) and which fds are EPOLLET;
  - for each of the failing client's own connections, the server's end:
    accepted or still queued, held by which process and fd, unread bytes.

From those facts and the lab (NETLABS_LAB, set by the harness) it names the
likely cause in one line, "likely cause: ...", only when the facts point at
one; otherwise it only lists them.

    python3 tests/clients/serverstate.py --port 9527 [--lab 07-epoll-et]
    python3 tests/clients/serverstate.py --pid 1234 [--client-port 45678 ...]

prints the same lines for a server you started yourself.
"""

import argparse
import os
import socket
import time

# /proc/net/tcp states
TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
              6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN",
              11: "CLOSING"}
O_NONBLOCK = 0o4000
EPOLLOUT = 0x004
EPOLLET = 1 << 31

# x86-64 and aarch64 system call numbers of the calls a server waits in.
SYSCALLS = {
    "x86_64": {0: "read", 1: "write", 7: "poll", 23: "select", 43: "accept", 44: "sendto",
               45: "recvfrom", 46: "sendmsg", 47: "recvmsg", 232: "epoll_wait", 270: "pselect6",
               271: "ppoll", 281: "epoll_pwait", 288: "accept4", 441: "epoll_pwait2",
               19: "readv", 20: "writev", 202: "futex", 35: "nanosleep", 230: "clock_nanosleep",
               61: "wait4", 34: "pause"},
    "aarch64": {63: "read", 64: "write", 73: "ppoll", 72: "pselect6", 202: "accept", 242: "accept4",
                206: "sendto", 207: "recvfrom", 211: "sendmsg", 212: "recvmsg", 22: "epoll_pwait",
                441: "epoll_pwait2", 65: "readv", 66: "writev", 98: "futex", 101: "nanosleep",
                115: "clock_nanosleep", 260: "wait4"},
}.get(os.uname().machine, {})

READS = {"read", "recvfrom", "recvmsg", "readv"}
WRITES = {"write", "sendto", "sendmsg", "writev"}


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


# ---------- facts ---------------------------------------------------------------------

def tcp_table():
    """{inode: dict} and {(local, remote): dict} from /proc/net/tcp (IPv4)."""
    by_inode, by_addr = {}, {}
    text = _read("/proc/net/tcp") or ""
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 10:
            continue
        try:
            tx, rx = (int(x, 16) for x in f[4].split(":"))
            e = {"local": _addr(f[1]), "remote": _addr(f[2]), "state": TCP_STATES.get(int(f[3], 16), f[3]),
                 "tx": tx, "rx": rx, "inode": int(f[9])}
        except ValueError:
            continue
        if e["inode"]:
            by_inode[e["inode"]] = e
        by_addr[(e["local"], e["remote"])] = e
    return by_inode, by_addr


def _addr(hexaddr):
    ip, port = hexaddr.split(":")
    return (socket.inet_ntoa(int(ip, 16).to_bytes(4, "little")), int(port, 16))


def server_pids(pid):
    """The server and every descendant (a fork server's children)."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = _read("/proc/%s/stat" % d)
        if not st:
            continue
        try:
            ppid = int(st.rsplit(")", 1)[1].split()[1])
        except (IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo.extend(sorted(kids.get(p, [])))
    return out


def find_server(port):
    """The pid holding the listening socket on port, or None."""
    by_inode, _ = tcp_table()
    want = {ino for ino, e in by_inode.items() if e["state"] == "LISTEN" and e["local"][1] == port}
    if not want:
        return None
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            for fd in os.listdir("/proc/%s/fd" % d):
                link = os.readlink("/proc/%s/fd/%s" % (d, fd))
                if link.startswith("socket:[") and int(link[8:-1]) in want:
                    return int(d)
        except (OSError, ValueError):
            continue
    return None


def _listens_on(pid, port):
    by_inode, _ = tcp_table()
    for e in fds(pid).values():
        t = by_inode.get(e.get("inode"))
        if t and t["state"] == "LISTEN" and t["local"][1] == port:
            return True
    return False


def threads(pid):
    out = []
    try:
        tids = sorted(int(t) for t in os.listdir("/proc/%d/task" % pid))
    except OSError:
        return out
    for tid in tids:
        st = _read("/proc/%d/task/%d/stat" % (pid, tid))
        if not st:
            continue
        rest = st.rsplit(")", 1)[1].split()
        sc = (_read("/proc/%d/task/%d/syscall" % (pid, tid)) or "").split()
        call, args = None, []
        if sc and sc[0].isdigit():
            call = SYSCALLS.get(int(sc[0]), "syscall %s" % sc[0])
            args = [int(a, 16) for a in sc[1:7]]
        out.append({"tid": tid, "state": rest[0], "ticks": int(rest[11]) + int(rest[12]),
                    "wchan": (_read("/proc/%d/task/%d/wchan" % (pid, tid)) or "").strip(),
                    "call": call, "args": args})
    return out


def fds(pid):
    """{fd: {"kind": socket|epoll|other, "inode", "nonblock", "tfds": {fd: events}}}"""
    out = {}
    try:
        names = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return out
    for n in names:
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, n))
        except OSError:
            continue
        info = _read("/proc/%d/fdinfo/%s" % (pid, n)) or ""
        flags = 0
        tfds = {}
        for line in info.splitlines():
            f = line.split()
            if f and f[0] == "flags:":
                flags = int(f[1], 8)
            elif f and f[0] == "tfd:" and len(f) >= 4:
                tfds[int(f[1])] = int(f[3], 16)
        e = {"kind": "other", "nonblock": bool(flags & O_NONBLOCK), "link": link}
        if link.startswith("socket:["):
            e.update(kind="socket", inode=int(link[8:-1]))
        elif link == "anon_inode:[eventpoll]":
            e.update(kind="epoll", tfds=tfds)
        out[int(n)] = e
    return out


def snapshot(pid, window=0.15):
    """Everything diagnose() looks at.  Samples the CPU over `window` s."""
    pids = server_pids(pid)
    procs = []
    for p in pids:
        procs.append({"pid": p, "threads": threads(p), "fds": fds(p)})
    t0 = time.monotonic()
    ticks0 = sum(t["ticks"] for pr in procs for t in pr["threads"])
    time.sleep(window)  # a measurement window, not a synchronisation
    ticks1 = sum(t["ticks"] for p in pids for t in threads(p))
    hz = os.sysconf("SC_CLK_TCK")
    by_inode, by_addr = tcp_table()
    return {"pid": pid, "procs": procs, "tcp": by_inode, "tcp_addr": by_addr,
            "cpu": (ticks1 - ticks0) / hz / max(1e-3, time.monotonic() - t0)}


# ---------- reading the facts -----------------------------------------------------------

def _wait_kind(t):
    """What a thread is doing: epoll, select/poll, accept, read, write,
    socket (read or write), running, or other."""
    c, w = t["call"], t["wchan"]
    if t["state"] == "R":
        return "running"
    if c in ("epoll_wait", "epoll_pwait", "epoll_pwait2") or w in ("do_epoll_wait", "ep_poll"):
        return "epoll"
    if c in ("select", "pselect6"):
        return "select"
    if c in ("poll", "ppoll"):
        return "poll"
    if w.startswith("poll_schedule_timeout") or w in ("do_select", "do_sys_poll"):
        return "select/poll"
    if c in ("accept", "accept4") or w == "inet_csk_accept":
        return "accept"
    if c in READS:
        return "read"
    if c in WRITES:
        return "write"
    if w in ("sk_wait_data", "tcp_recvmsg", "tcp_recvmsg_locked"):
        return "read"
    if w in ("sk_stream_wait_memory",):
        return "write"
    if w == "wait_woken":
        return "socket"
    return "other"


WAIT_NAMES = {"epoll": "epoll_wait()", "select": "select()", "poll": "poll()",
              "select/poll": "select()/poll()", "accept": "accept()"}


def _owners(snap):
    """{inode: [(pid, fd)]}"""
    own = {}
    for pr in snap["procs"]:
        for fd, e in pr["fds"].items():
            if e["kind"] == "socket":
                own.setdefault(e["inode"], []).append((pr["pid"], fd))
    return own


def my_ends(snap, client_ports, server_port):
    """For each client port: the server's end of that connection."""
    out = []
    own = _owners(snap)
    by_port = {remote[1]: v for (local, remote), v in snap["tcp_addr"].items() if local[1] == server_port}
    for cp in client_ports:
        e = by_port.get(cp)
        if e is not None:
            out.append(dict(e, client_port=cp, owners=own.get(e["inode"], [])))
    return out


def describe(snap, ends=(), lab=""):
    """Fact lines: the server's processes and threads, and this client's
    connections as the server sees them."""
    lines = []
    main = snap["procs"][0] if snap["procs"] else None
    if main is None:
        return ["the server (pid %d) is gone" % snap["pid"]]
    kinds = {}
    for pr in snap["procs"]:
        for t in pr["threads"]:
            k = _wait_kind(t)
            what = dict(WAIT_NAMES, read="a read", write="a write", socket="a socket read or write",
                        running="running", other=t["wchan"] or t["call"] or "?")[k]
            kinds[what] = kinds.get(what, 0) + 1
    n_thr = sum(len(pr["threads"]) for pr in snap["procs"])
    lines.append("server pid %d: %d process%s, %d thread%s (%s), %.0f%% CPU"
                 % (snap["pid"], len(snap["procs"]), "es" if len(snap["procs"]) != 1 else "", n_thr,
                    "s" if n_thr != 1 else "",
                    ", ".join("%d in %s" % (n, w) if w != "running" else "%d running" % n
                              for w, n in sorted(kinds.items(), key=lambda x: -x[1])),
                    snap["cpu"] * 100))
    for e in list(ends)[:3]:
        if e["owners"]:
            pid, fd = e["owners"][0]
            f = _fd(snap, pid, fd)
            extra = ""
            if f is not None and not f["nonblock"] and lab[:2] in ("06", "07", "08", "09"):
                extra = ", blocking (no O_NONBLOCK)"
            lines.append("this client's connection (port %d): the server's fd %d%s, %s, %d bytes "
                         "sent to the server and not read by it yet%s"
                         % (e["client_port"], fd, "" if pid == snap["pid"] else " in child pid %d" % pid,
                            e["state"], e["rx"], extra))
        elif e["state"] == "ESTABLISHED":
            lines.append("this client's connection (port %d): not accepted yet (in the listening "
                         "socket's queue), %d bytes waiting" % (e["client_port"], e["rx"]))
    return lines


def _fd(snap, pid, fd):
    for pr in snap["procs"]:
        if pr["pid"] == pid:
            return pr["fds"].get(fd)
    return None


def _listen(snap):
    """(pid, fd, tcp entry) of the listening socket."""
    for pr in snap["procs"][:1]:
        for fd, e in pr["fds"].items():
            t = snap["tcp"].get(e.get("inode"))
            if e["kind"] == "socket" and t and t["state"] == "LISTEN":
                return pr["pid"], fd, t
    return None, None, None


def _conns(pr, snap):
    """The established connection sockets of one process: [(fd, fdentry, tcp)]."""
    out = []
    for fd, e in sorted(pr["fds"].items()):
        t = snap["tcp"].get(e.get("inode")) if e["kind"] == "socket" else None
        if t and t["state"] != "LISTEN":
            out.append((fd, e, t))
    return out


def _epolls(pr):
    return [(fd, e) for fd, e in pr["fds"].items() if e["kind"] == "epoll"]


def _fdlist(fds, n=6):
    fds = list(fds)
    return " ".join(str(x) for x in fds[:n]) + (" ..." if len(fds) > n else "")


def diagnose(snap, ends=(), lab="", waiting_for="reply"):
    """One "likely cause" sentence (without the prefix) or None."""
    if not snap["procs"]:
        return None  # the harness knows how it died
    lab = lab or ""
    num = lab[:2]
    main = snap["procs"][0]
    one_thread = num in ("04", "05", "06", "07", "08", "09")
    nonblocking = num in ("07", "08", "09")
    thr = [t for pr in snap["procs"] for t in pr["threads"]]
    kinds = [_wait_kind(t) for t in main["threads"]]
    conns = _conns(main, snap)

    # Lab 06 is level-triggered: EPOLLET there explains any stall.
    if num == "06":
        et = sorted(fd for _, ep in _epolls(main) for fd, ev in ep["tfds"].items() if ev & EPOLLET)
        if et:
            return ("EPOLLET in the level-triggered lab (fd%s %s registered edge-triggered): an edge-triggered "
                    "fd gets one event per arrival, so bytes or connections left after one read or accept "
                    "never get another. Register with EPOLLIN (and EPOLLOUT while output is pending) only"
                    % ("s" if len(et) > 1 else "", _fdlist(et)))

    # Lab 07 on: every connection must be non-blocking.
    if nonblocking:
        blocking = [fd for fd, e, t in conns if not e["nonblock"]]
        if blocking:
            return ("the connections are blocking sockets (no O_NONBLOCK on the server's fd%s %s): a read "
                    "or write that would wait blocks the only thread instead of returning EAGAIN. Accept with "
                    "accept4(..., SOCK_NONBLOCK) or set O_NONBLOCK with fcntl()"
                    % ("s" if len(blocking) > 1 else "", _fdlist(blocking)))

    # Spinning: CPU busy while nothing moves.
    if snap["cpu"] > 0.5 and any(t["state"] == "R" for t in thr):
        why = {"04": "a closed fd still in the fd_set (select() fails with EBADF at once), or a ready fd never read",
               "05": "a closed fd left in the pollfd array (poll() returns POLLNVAL for it at once, forever), "
                     "or an event never handled",
               "06": "EPOLLOUT left on with nothing to send (level-triggered, it is always ready), or a ready fd never read",
               "07": "a loop that retries on EAGAIN instead of waiting for the next event, or EPOLLOUT always on",
               "08": "a loop that retries on EAGAIN instead of waiting for the next event, or a write interest "
                     "left on with nothing to send"}.get(num, "a loop that retries at once instead of waiting")
        return ("the server spins: it used %.0f%% of a CPU while serving nothing (%s)" % (snap["cpu"] * 100, why))

    # A blocking call where the lab allows none.
    if one_thread and main["threads"]:
        t = main["threads"][0]
        k = kinds[0]
        if k in ("read", "write", "socket"):
            fd = t["args"][0] if t["args"] and t["call"] in READS | WRITES else None
            which = "fd %d" % fd if fd is not None else "a client's connection"
            if k == "socket":
                # wchan alone cannot tell a read from a write: the queues can.
                full = [x for x, e, tc in conns if tc["tx"] > 65536]
                k = "write" if full and not any(tc["rx"] for x, e, tc in conns) else "read"
            if k == "read":
                msg = ("the server's only thread is blocked in a read() on %s that has nothing to read, while "
                       "other clients wait" % which)
            else:
                msg = ("the server's only thread is blocked in a write() to %s whose client is not reading, "
                       "while other clients wait" % which)
            if num in ("04", "05"):
                return msg + (": read only the fds %s reported ready, once per wakeup, and never loop "
                              "on one client until EOF" % ("select()" if num == "04" else "poll()"))
            return msg + ": make every socket non-blocking and return to epoll_wait() on EAGAIN"

    # Lab 03: each connection has its own thread.  With the threads' system
    # calls readable, a connection no thread reads while another is read
    # by two shows an fd handed over by address.
    if num == "03":
        reading = {}
        for t in main["threads"]:
            if t["call"] in READS and t["args"]:
                reading[t["args"][0]] = reading.get(t["args"][0], 0) + 1
        for e in ends:
            if e["owners"] and e["rx"] > 0:
                fd = e["owners"][0][1]
                if reading and fd not in reading:
                    twice = sorted(f for f, n in reading.items() if n > 1)
                    return ("no thread reads fd %d (%d bytes wait there)%s: each thread must get its own "
                            "connection. Pass the fd's value (or a malloc'd copy) to pthread_create, not "
                            "&connfd, which the next accept() overwrites"
                            % (fd, e["rx"], ", while fd %s is read by two threads" % _fdlist(twice) if twice else ""))
                if not reading and all(_wait_kind(t) not in ("running",) for t in main["threads"]):
                    return ("%d bytes wait on fd %d and no thread is reading them: each connection must get "
                            "a thread of its own that serves it (pass the fd's value to pthread_create, not "
                            "&connfd, which the next accept() overwrites)" % (e["rx"], fd))

    # This client's connections, as the server sees them.
    for e in ends:
        if not e["owners"]:
            if e["state"] not in ("ESTABLISHED", "CLOSE_WAIT", "SYN_RECV"):
                continue
            lpid, lfd, lt = _listen(snap)
            q = lt["rx"] if lt else 0
            if num in ("01",):
                busy = [(fd, t) for fd, x, t in conns]
                cw = [fd for fd, t in busy if t["state"] == "CLOSE_WAIT"]
                if cw:
                    return ("the server still holds a connection whose client has left (fd %s in CLOSE_WAIT) "
                            "and does not accept the next client: when read() returns 0, close the "
                            "connection and go back to accept()" % _fdlist(cw))
                continue  # serving someone else: one at a time is this lab
            if num in ("02", "03"):
                if kinds and kinds[0] in ("read", "write", "socket"):
                    return ("the main %s is blocked in a read or write on a client's connection "
                            "instead of accept(): %s"
                            % ("process" if num == "02" else "thread",
                               "fork() a child per connection and let the child serve it" if num == "02"
                               else "create a thread per connection and let the thread serve it"))
                continue
            if kinds and kinds[0] in ("epoll", "select", "poll", "select/poll"):
                if kinds[0] == "epoll":
                    listed = any(lfd in ep["tfds"] for _, ep in _epolls(main)) if lfd is not None else True
                    if not listed:
                        return ("%d connection(s) wait to be accepted while the server sleeps in epoll_wait(), "
                                "and the listening socket (fd %s) is not in its interest list" % (q, lfd))
                    et = any(lfd in ep["tfds"] and ep["tfds"][lfd] & EPOLLET for _, ep in _epolls(main))
                    if et or num in ("07", "08"):
                        return ("%d connection(s) wait in the listening socket's queue while the server "
                                "sleeps in epoll_wait(): with EPOLLET one event stands for every connection "
                                "that arrived, so accept() in a loop until it fails with EAGAIN" % q)
                    return ("%d connection(s) wait in the listening socket's queue while the server sleeps "
                            "in epoll_wait() (is the listening socket's event handled by accept()?)" % q)
                return ("%d connection(s) wait in the listening socket's queue while the server sleeps in "
                        "%s: the listening fd %s is not in the set it waits on%s"
                        % (q, WAIT_NAMES[kinds[0]], lfd,
                           " (select() overwrites the set you pass with the ready fds: pass a copy made "
                           "before every call)" if num == "04" else ""))
            continue
        pid, fd = e["owners"][0]
        owner = next((pr for pr in snap["procs"] if pr["pid"] == pid), None)
        okinds = [_wait_kind(t) for t in owner["threads"]] if owner else []
        waits = [k for k in okinds if k in ("epoll", "select", "poll", "select/poll")]
        if e["rx"] > 0 and waits and len(okinds) == 1:
            if waits[0] == "epoll":
                eps = _epolls(owner)
                listed = [ep["tfds"][fd] for _, ep in eps if fd in ep["tfds"]]
                if not listed:
                    return ("%d bytes wait unread on fd %d, which is not in the epoll interest list, while "
                            "the server sleeps in epoll_wait(): add every accepted connection "
                            "(epoll_ctl EPOLL_CTL_ADD) and keep it there until it is closed" % (e["rx"], fd))
                if num in ("08", "09") and e["tx"] == 0:
                    return ("%d bytes wait unread on fd %d while the server sleeps in epoll_wait() and has "
                            "nothing in flight to this client: reading this connection stopped and never "
                            "restarted. A connection paused for back-pressure must resume once its output "
                            "falls below the low-water mark, and then read what is already there (no new "
                            "edge comes for it); otherwise, read until EAGAIN on every event" % (e["rx"], fd))
                if listed[0] & EPOLLET:
                    return ("%d bytes wait unread on fd %d (registered with EPOLLET) while the server sleeps "
                            "in epoll_wait(): edge-triggered, an event comes only when new bytes arrive, so "
                            "read until read() fails with EAGAIN every time" % (e["rx"], fd))
                continue
            if num == "04" or waits[0] == "select":
                return ("%d bytes wait unread on fd %d while the server sleeps in select(): fd %d is not in "
                        "the set it passed. select() overwrites the set you give it with the ready fds, so "
                        "give it a copy of the watched set made before every call (and FD_SET every "
                        "accepted fd)" % (e["rx"], fd, fd))
            if num == "05" or waits[0] == "poll":
                return ("%d bytes wait unread on fd %d while the server sleeps in poll(): fd %d is not in "
                        "the pollfd array it passed with POLLIN (was its slot lost or overwritten when "
                        "another client left?)" % (e["rx"], fd, fd))
        # Everything this client sent was read, no reply came, and the
        # server waits for more: it holds the bytes until some amount or
        # delimiter arrives.
        if e["rx"] == 0 and e["state"] == "ESTABLISHED" and waiting_for == "reply" and okinds and \
                e.get("tx", 0) == 0 and (
                    (num in ("01", "02") and okinds[0] in ("read", "socket")) or
                    (one_thread and okinds[0] in ("epoll", "select", "poll", "select/poll"))):
            if num in ("01", "02"):
                return ("the server read everything this client sent, but the reply never came and it waits "
                        "in a read() for more: answer each read() at once with the bytes it returned (no "
                        "waiting for a full buffer, a newline or a message; no readn())")
            return ("the server read everything this client sent (nothing waits unread, nothing is in flight), "
                    "but the reply never came: it holds the bytes (waiting for a full buffer, a newline, a "
                    "message?) or lost them (a write that failed with EAGAIN or was short, the rest "
                    "forgotten instead of kept for the next EPOLLOUT)")
        if e["state"] == "CLOSE_WAIT" and e["rx"] == 0 and waiting_for == "eof":
            if num == "02" and pid == snap["pid"]:
                return ("the parent process still holds this connection (fd %d) after its child finished: "
                        "the client never sees EOF while any copy is open. close(connfd) in the parent "
                        "right after fork()" % fd)
            return ("the server read this client's EOF but never closed the connection (fd %d%s is still "
                    "open)" % (fd, "" if pid == snap["pid"] else " of pid %d" % pid))
    return None


def report(port, client_ports=(), lab=None, pid=None, waiting_for="reply"):
    """Lines to print after a failure: "likely cause: ..." (if any), then
    the facts.  [] when the server cannot be found."""
    lab = lab if lab is not None else os.environ.get("NETLABS_LAB", "")
    if pid is None:
        # The harness names the server it started; check it is the one on
        # this port (a test may run two), else look for it.
        env = os.environ.get("NETLABS_SERVER_PID", "")
        pid = int(env) if env.isdigit() and _listens_on(int(env), port) else find_server(port)
    if pid is None:
        return []
    try:
        snap = snapshot(pid)
        if snap["procs"] and not snap["procs"][0]["threads"]:
            return []  # gone, or another uid's process this one may not read
        ends = my_ends(snap, client_ports, port)
        cause = diagnose(snap, ends, lab, waiting_for)
        lines = describe(snap, ends, lab)
    except Exception as e:  # a diagnosis must never hide the failure itself
        return ["(could not read the server's state: %s)" % e]
    return (["likely cause: " + cause] if cause else []) + lines


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, help="the server's listening port")
    p.add_argument("--pid", type=int, help="the server's pid (default: found from --port)")
    p.add_argument("--lab", default=os.environ.get("NETLABS_LAB", ""), help="NN-name")
    p.add_argument("--client-port", type=int, action="append", default=[],
                   help="a client's local port: describe that connection")
    a = p.parse_args()
    if a.pid is None and a.port is None:
        p.error("give --port or --pid")
    port = a.port
    if port is None:
        for fd, e in fds(a.pid).items():
            t = tcp_table()[0].get(e.get("inode"))
            if t and t["state"] == "LISTEN":
                port = t["local"][1]
    lines = report(port or 0, a.client_port, a.lab, a.pid or None)
    print("\n".join(lines) if lines else "no server found")


if __name__ == "__main__":
    main()
