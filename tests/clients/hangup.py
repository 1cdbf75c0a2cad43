#!/usr/bin/env python3
"""hangup.py - clients that send, hang up and are gone before the echo comes.

    python3 tests/clients/hangup.py --port 9527 --count 10 [--while-stopped 3]

Each of --count clients sends --size bytes, shuts down its write side and
closes at once, without reading.  The server's first echo reaches a closed
socket, whose kernel answers with RST; its next write then fails with EPIPE
and raises SIGPIPE, which kills a process that neither ignores SIGPIPE nor
sends with MSG_NOSIGNAL.

That next write only happens if the server still has bytes to echo, which
depends on its read size: a server reading 16 KiB or more at a time echoes a
16 KiB client in one write and never writes again.  So --while-stopped K
more clients hang up while the server is stopped (SIGSTOP; this client finds
the server by its port, or NETLABS_SERVER_PID): each sends a few bytes, FIN,
then RST, all before the server runs again (SIGCONT).  The server then reads
the bytes (they come before the reset) and its first write fails with EPIPE,
whatever its read size.  Then one more client must be served in full.
"""
import os
import signal
import socket

import netlabs
import serverstate

GONE = ("Did it die of SIGPIPE? Writing to a connection the peer has closed raises SIGPIPE, "
        "whose default action kills the process: ignore it (or send with MSG_NOSIGNAL) and "
        "handle EPIPE like ECONNRESET.")


def server_pid(sc):
    """The harness's server (NETLABS_SERVER_PID) unless /proc shows it does
    not listen on our port (a test running two servers); else the process
    /proc shows listening there."""
    env = os.environ.get("NETLABS_SERVER_PID", "")
    if env.isdigit():
        pid = int(env)
        if not serverstate.fds(pid) or serverstate._listens_on(pid, sc.args.port):
            return pid  # (fds unreadable: another uid's process, trust the harness)
    return serverstate.find_server(sc.args.port)


def hang_up_while_stopped(sc, i, pid):
    """One client's bytes, FIN and RST, all queued while the server is
    stopped.  Returns the client's port, or None if the server could not be
    stopped."""
    try:
        os.kill(pid, signal.SIGSTOP)
    except OSError:
        return None
    try:
        sock = sc.connect("stopped-server client %d: connect" % i, gone=GONE)
        port = sock.getsockname()[1]
        sock.sendall(netlabs.payload(sc.rng, sc.rng.randint(1, 4096)))
        sock.shutdown(socket.SHUT_WR)  # FIN first: the server's end goes to CLOSE_WAIT ...
        netlabs.abort(sock)  # ... so this RST makes its next write fail with EPIPE
    finally:
        os.kill(pid, signal.SIGCONT)
    return port


def alive(pid):
    st = serverstate._read("/proc/%d/stat" % pid)
    return bool(st) and st.rsplit(")", 1)[1].split()[0] != "Z"


def wait_closed(sc, pid, ports):
    """Wait (bounded, while the server lives) until the server has closed
    the connections of these client ports: it has read their bytes and
    met the reset.  Returns the ports still open."""
    while True:
        _, by_addr = serverstate.tcp_table()
        left = [p for p in ports if any(l[1] == sc.args.port and r[1] == p for l, r in by_addr)]
        if not left or not alive(pid) or sc.stalled():
            return left
        netlabs.time.sleep(0.02)


def main():
    p = netlabs.parser(__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=10, help="clients that hang up (default 10)")
    p.add_argument("--size", type=int, default=16384, help="bytes each sends (default 16384)")
    p.add_argument("--while-stopped", type=int, default=3, metavar="K",
                   help="clients that hang up while the server is stopped (default 3; 0: none)")
    sc = netlabs.Scenario(p.parse_args())
    for i in range(sc.args.count):
        sock = sc.connect("client %d: connect" % i, gone=GONE if i else None)
        netlabs.send_all(sc, sock, netlabs.payload(sc.rng, sc.args.size), what="client %d" % i,
                         hint=GONE)
        sock.shutdown(socket.SHUT_WR)
        sock.close()
    stopped = []
    if sc.args.while_stopped:
        pid = server_pid(sc)
        for i in range(sc.args.while_stopped):
            port = hang_up_while_stopped(sc, i, pid) if pid is not None else None
            if port is None:
                print("note: could not stop the server (pid %s): the hang-ups while it is stopped "
                      "were skipped" % pid)
                break
            stopped.append(port)
        sc.progress()
        left = wait_closed(sc, pid, stopped) if stopped else []
        if left and alive(pid):
            sc.fail("%d of %d clients that sent, half-closed and reset while the server was stopped "
                    "still have their connection open in the server %.1f s later: it must read, "
                    "meet the error (EPIPE or ECONNRESET) and close them" % (
                        len(left), len(stopped), sc.args.progress_timeout))
    stopped = len(stopped)
    data = netlabs.payload(sc.rng, 4096)
    sock = sc.connect("after %d hang-ups: connect" % (sc.args.count + stopped), gone=GONE)
    netlabs.exchange(sc, sock, data, what="the client after %d hang-ups" % (sc.args.count + stopped),
                     hint=GONE)
    sock.close()
    sc.ok("%d clients hung up before their echo (%d of them while the server was stopped); "
          "the next client was served" % (sc.args.count + stopped, stopped))


if __name__ == "__main__":
    main()
