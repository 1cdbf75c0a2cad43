#!/usr/bin/env python3
"""udp_lossy.py - a bad network for UDP, on loopback: a proxy that drops,
duplicates, reorders and delays datagrams, from a seed (lab 11).

    udp_lossy.py [-p PORT] [-a ADDR] (--to ADDR:PORT | --echo)
                 [--drop F] [--dup F] [--reorder F] [--delay MS] [--faults up|down|both]
                 [--seed N] [--log FILE]

It binds ADDR:PORT (default 127.0.0.1, port 0: the kernel chooses), prints
"listening on ADDR:PORT" like every netlabs server, and relays each
datagram a client sends to the server --to (from a socket of its own per
client, so the server sees one peer per client) and each answer back to
that client.  --echo: no server behind it; the proxy answers itself, like
the uppercase echo, so a client can be tested alone.

On the way (--faults: the client's datagrams "up", the answers "down", or
both), each datagram is
  dropped     with probability --drop,
  duplicated  with probability --dup (both copies then travel on),
  held back   with probability --reorder (later ones overtake it: it is
              delayed by 2 x --delay + 20 ms more),
  delayed     by a random 0 to --delay milliseconds (default 0).
The choices come from --seed, in the order the datagrams arrive.

--log FILE: one line per event, "SECONDS DIR EVENT LENGTH FIRST-BYTES":
DIR up (client to server) or down; EVENT in, drop, dup, late, out.  The
tests read the client's sends (up in) and their timing there.
SIGTERM or SIGINT: exit 0.  Python standard library only.
"""

import argparse
import heapq
import os
import random
import select
import signal
import socket
import sys
import time


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-p", type=int, default=0, dest="port")
    p.add_argument("-a", default="127.0.0.1", dest="addr")
    p.add_argument("--to", default=None, help="ADDR:PORT of the server behind the proxy")
    p.add_argument("--echo", action="store_true", help="answer like the uppercase echo")
    p.add_argument("--drop", type=float, default=0.0)
    p.add_argument("--dup", type=float, default=0.0)
    p.add_argument("--reorder", type=float, default=0.0)
    p.add_argument("--delay", type=float, default=0.0, help="max delay in ms")
    p.add_argument("--faults", choices=("up", "down", "both"), default="both")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--log", default=None)
    a = p.parse_args()
    if (a.to is None) == (not a.echo):
        p.error("give exactly one of --to ADDR:PORT and --echo")
    upstream = None
    if a.to:
        host, _, port = a.to.rpartition(":")
        upstream = (host, int(port))

    rng = random.Random(a.seed)
    t0 = time.monotonic()
    log = open(a.log, "a", buffering=1) if a.log else None
    counts = {}

    def note(direction, event, data):
        counts[(direction, event)] = counts.get((direction, event), 0) + 1
        if log:
            log.write("%.4f %s %s %d %s\n" % (time.monotonic() - t0, direction, event, len(data),
                                              repr(bytes(data[:16]))[2:-1].replace(" ", "_")))

    def stop(sig, frame):
        if log:
            log.write("# %s\n" % " ".join("%s.%s=%d" % (d, e, n) for (d, e), n in sorted(counts.items())))
            log.close()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    down = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    down.bind((a.addr, a.port))
    down.setblocking(False)
    print("listening on %s:%d" % down.getsockname())
    sys.stdout.flush()

    timers = []  # (when, n, socket, data, dest or None)
    order = 0
    peers = {}   # client address -> its upstream socket
    owner = {}   # upstream socket fd -> client address

    def faulty(direction):
        return a.faults in (direction, "both")

    def travel(direction, data, sock, dest):
        """Put one datagram on the bad network."""
        nonlocal order
        note(direction, "in", data)
        copies = 1
        if faulty(direction):
            if rng.random() < a.drop:
                note(direction, "drop", data)
                return
            if rng.random() < a.dup:
                note(direction, "dup", data)
                copies = 2
        for _ in range(copies):
            delay = 0.0
            if faulty(direction):
                delay = rng.uniform(0, a.delay) / 1000
                if rng.random() < a.reorder:
                    note(direction, "late", data)
                    delay += (2 * a.delay + 20) / 1000
            order += 1
            heapq.heappush(timers, (time.monotonic() + delay, order, direction, sock, data, dest))

    def deliver(direction, sock, data, dest):
        note(direction, "out", data)
        if direction == "up" and upstream is None:
            # --echo: the "server" answers at once, onto the way down.
            travel("down", bytes(data).upper(), down, dest)
            return
        try:
            if dest is None:
                sock.send(data)
            else:
                sock.sendto(data, dest)
        except OSError:
            pass  # a network loses datagrams; so do we

    while True:
        wait = None
        if timers:
            wait = max(0.0, timers[0][0] - time.monotonic())
        ready, _, _ = select.select([down] + list(peers.values()), [], [], wait)
        for s in ready:
            while True:
                try:
                    data, src = s.recvfrom(65536)
                except BlockingIOError:
                    break
                except OSError:
                    break  # ECONNREFUSED: nothing listens behind us
                if s is down:
                    if upstream is None:
                        travel("up", data, None, src)
                        continue
                    u = peers.get(src)
                    if u is None:
                        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        u.connect(upstream)
                        u.setblocking(False)
                        peers[src] = u
                        owner[u.fileno()] = src
                    travel("up", data, u, None)
                else:
                    travel("down", data, down, owner[s.fileno()])
        now = time.monotonic()
        while timers and timers[0][0] <= now:
            _, _, direction, sock, data, dest = heapq.heappop(timers)
            deliver(direction, sock, data, dest)


if __name__ == "__main__":
    main()
