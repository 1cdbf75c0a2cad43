#!/usr/bin/env python3
"""ux_prefork.py - which process holds each connection of a prefork server (lab 13).

    python3 tests/clients/ux_prefork.py --port 9527 --master PID --workers 3 --conns 6 --spread

The server was started as `server -w N -p PORT`: a master process that
accepts and hands each connection to one of N worker processes (its
children) with SCM_RIGHTS.  This client opens --conns connections one after
another, each echoed once (so it has reached its worker), then looks in
/proc: /proc/net/tcp gives the inode of the server's end of each connection
(and of the listening socket), /proc/PID/fd of the master and of each worker
says who has a descriptor for it.  It checks that
  - the master has exactly N live children (the workers), waiting for them
    up to --settle seconds (a replaced worker takes a moment to appear);
  - every connection is held by exactly one process, a worker, and the
    master holds none of them (it must close its copy once handed over;
    waited for up to --settle seconds);
  - with --spread, the connections are spread evenly: each worker holds
    --conns / N of them (the master hands them out in turn);
  - with --listener, only the master holds the listening socket, and each
    worker holds no socket but its clients and its own end of its channel.
--hold: then print "ready" and hold every connection until stdin reaches
EOF; afterwards each is echoed once more, or, with --expect-eof, each must
see EOF or a reset (the whole server was stopped meanwhile).
"""
import os
import select
import socket
import time

import netlabs


def children(master):
    """{pid: state} of the master's children."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rfind(")") + 2:].split()
        if int(rest[1]) == master:
            out[int(name)] = rest[0]
    return out


def sockets_of(pid):
    """The socket inodes PID has descriptors for."""
    out = set()
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return out
    for fd in fds:
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            out.add(int(link[8:-1]))
    return out


def tcp_table():
    """[(local_port, remote_port, state, inode)] of /proc/net/tcp (IPv4)."""
    rows = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            p = line.split()
            rows.append((int(p[1].split(":")[1], 16), int(p[2].split(":")[1], 16), p[3], int(p[9])))
    return rows


def main():
    p = netlabs.parser(__doc__.split("\n")[0], hold=True)
    p.add_argument("--master", type=int, required=True, help="the master's pid")
    p.add_argument("--workers", type=int, required=True, help="N, as given to -w")
    p.add_argument("--conns", type=int, default=6, help="connections to open (default 6)")
    p.add_argument("--spread", action="store_true", help="each worker must hold conns/N of them")
    p.add_argument("--listener", action="store_true", help="only the master may hold the listener")
    p.add_argument("--settle", type=float, default=3.0,
                   help="seconds to wait for workers to appear and the master to let go (default 3)")
    p.add_argument("--expect-eof", action="store_true",
                   help="with --hold: after the release every connection must be closed by the server")
    sc = netlabs.Scenario(p.parse_args())
    a = sc.args
    master, n = a.master, a.workers
    how = "(server -w %d -p %d, master pid %d)" % (n, a.port, master)

    # The workers: exactly n live children.
    end = time.monotonic() + a.settle
    while True:
        kids = children(master)
        live = sorted(pid for pid, st in kids.items() if st != "Z")
        if len(live) == n or time.monotonic() >= end:
            break
        time.sleep(0.02)
    if len(live) != n:
        zombies = sorted(pid for pid, st in kids.items() if st == "Z")
        sc.fail("expected the master to have %d live worker processes (its children), found %d: %s%s %s"
                % (n, len(live), live or "none",
                   "; not reaped (zombies): %s" % zombies if zombies else "", how), state=False)

    # The connections, one after another, each echoed once: by the time its
    # echo is back, it has reached its worker.
    socks = []
    for i in range(a.conns):
        s = sc.connect("connection %d of %d: connect" % (i, a.conns))
        netlabs.echo_once(sc, s, b"connection %d " % i + netlabs.payload(sc.rng, 64), "connection %d" % i)
        socks.append(s)

    procs = [master] + live
    table = tcp_table()
    listener = [ino for lp, rp, st, ino in table if lp == a.port and st == "0A"]
    conn_inode = []
    for s in socks:
        mine = s.getsockname()[1]
        found = [ino for lp, rp, st, ino in table if lp == a.port and rp == mine]
        if not found:
            sc.fail("no server-side socket for the connection from port %d in /proc/net/tcp %s"
                    % (mine, how), state=False)
        conn_inode.append(found[0])

    # Who holds what.  The master closes its copy just after sending it, so
    # give it until the settle deadline.
    end = time.monotonic() + a.settle
    while True:
        held = {pid: sockets_of(pid) for pid in procs}
        in_master = [i for i, ino in enumerate(conn_inode) if ino in held[master]]
        if not in_master or time.monotonic() >= end:
            break
        time.sleep(0.02)
    if in_master:
        sc.fail("the master (pid %d) still holds %d of the %d connections %.1f s after they were "
                "handed over (connections %s). likely cause: after send_fd() the master must "
                "close() its own copy: SCM_RIGHTS gives the worker a new descriptor for the same "
                "connection, and the connection stays open while any descriptor for it does %s"
                % (master, len(in_master), a.conns, a.settle, in_master, how), state=False)
    holders = []
    for i, ino in enumerate(conn_inode):
        h = [pid for pid in live if ino in held[pid]]
        if len(h) != 1:
            sc.fail("connection %d (client port %d) is held by %s, expected exactly one worker %s"
                    % (i, socks[i].getsockname()[1],
                       "no worker" if not h else "%d workers: %s" % (len(h), h), how), state=False)
        holders.append(h[0])
    counts = {pid: holders.count(pid) for pid in live}
    shown = ", ".join("worker %d holds %d" % (pid, counts[pid]) for pid in live)
    if a.spread:
        want = a.conns // n
        if any(c != want for c in counts.values()):
            sc.fail("%d connections opened one after another: expected each of the %d workers to hold "
                    "%d (handed out in turn), got: %s. likely cause: the master does not move on to "
                    "the next worker after each hand-over (or skips a live one) %s"
                    % (a.conns, n, want, shown, how), state=False)
    if a.listener:
        if not listener:
            sc.fail("no listening socket on port %d in /proc/net/tcp" % a.port, state=False)
        bad = [pid for pid in live if listener[0] in held[pid]]
        if listener[0] not in held[master]:
            sc.fail("the master (pid %d) does not hold the listening socket %s" % (master, how), state=False)
        if bad:
            sc.fail("workers %s hold the listening socket (inode %d) as well as the master. likely "
                    "cause: a forked child gets a copy of every descriptor of its parent; the worker "
                    "must close the listener (and every channel that is not its own) right after "
                    "fork(), or it keeps the port open after the master dies %s"
                    % (bad, listener[0], how), state=False)
        # Besides its clients, a worker needs one socket: its own end of its
        # own channel.  More means it kept copies of the master's ends.
        conns = set(conn_inode)
        extra = {pid: sorted(held[pid] - conns) for pid in live}
        over = {pid: socks_ for pid, socks_ in extra.items() if len(socks_) > 1}
        if over:
            sc.fail("besides its clients, each worker should hold one socket (its end of its channel to "
                    "the master); %s. likely cause: after fork() the child has a copy of every "
                    "descriptor the master had, including the master's ends of the channels made so far: "
                    "close them in the child, or the worker at the other end of such a channel does not "
                    "see EOF when the master dies %s"
                    % ("; ".join("worker %d holds %d: inodes %s" % (pid, len(v), v) for pid, v in over.items()),
                       how), state=False)

    if a.hold:
        sc.hold("ready %s" % " ".join(str(pid) for pid in holders))
        if a.expect_eof:
            end = time.monotonic() + a.settle
            open_ = []
            for i, s in enumerate(socks):
                r, _, _ = select.select([s], [], [], max(0.0, end - time.monotonic()))
                try:
                    b = s.recv(4096) if r else None
                except (ConnectionResetError, OSError):
                    b = b""
                if b is None or b:
                    open_.append(i)
            if open_:
                sc.fail("connections %s were still open %.1f s after the release: the server was "
                        "stopped, so their workers must have closed them" % (open_, a.settle),
                        state=False)
            sc.ok("%d connections, then every one closed by the server" % a.conns)
        for i, s in enumerate(socks):
            netlabs.echo_once(sc, s, b"again %d " % i + netlabs.payload(sc.rng, 64),
                              "connection %d after holding" % i)
    for s in socks:
        s.close()
    sc.ok("%d connections, each held by exactly one worker, none by the master: %s" % (a.conns, shown))


if __name__ == "__main__":
    main()
