#!/usr/bin/env python3
"""udp_echo.py - datagrams to the UDP uppercase echo (lab 11), every answer
checked.

    udp_echo.py --port P [--clients N] [--count M] [--sizes 0,1,65507 | --size LO-HI]
                [--window W] [--binary] [--rto S] [--sends K]
    udp_echo.py --port P --flood M       M datagrams, never reading the answers
    udp_echo.py --port P --leave N       N clients that send one datagram and close at once

Each of N clients is a socket of its own (its own source port); the M
datagrams go out interleaved (datagram i from client i mod N), at most W
unanswered at a time.  Every answer must come back to the socket that sent
the question, from the server's own address, as ONE datagram holding exactly
the question uppercased (ASCII a-z only), the same length: 0 bytes and
65,507 bytes included.  UDP may lose a datagram, so one that gets no answer
within S seconds (--rto, 0.5) is sent again, with the wait doubled, K times
in all (--sends, 4); an answer may then come twice, never more often than
its question was sent.

Fails on: an answer that is not the uppercase of anything sent (with the
closest question, in hex), one that is the first bytes of a longer answer
(truncated by a small buffer, or sent in pieces), another client's answer
(cross-talk), an answer from another address or port, one answered more
often than asked, or a question never answered.
"""

import selectors
import socket
import sys
import time

import udp_lib
from udp_lib import UDP_MAX_PAYLOAD, expected, short


def parse_sizes(a):
    if a.sizes:
        return [int(x) for x in a.sizes.split(",")]
    lo, _, hi = a.size.partition("-")
    return (int(lo), int(hi or lo))


def make_payload(rng, i, client, size, binary):
    """Unique (for 16 bytes and up), lowercase letters in it so the
    uppercasing shows, every byte value in it with --binary."""
    head = b"c%05d q%06d " % (client % 100000, i % 1000000)
    if size < len(head):
        return bytes(rng.randrange(256) if binary else rng.choice(b"abcxyz019 ") for _ in range(size))
    body = size - len(head)
    if binary:
        vals = list(range(256))
        rng.shuffle(vals)
        first = bytes(vals)[:body]
        return head + first + rng.randbytes(body - len(first))
    letters = b"abcdefghijklmnopqrstuvwxyz0123456789 .-"
    if body <= 4096:
        return head + bytes(rng.choice(letters) for _ in range(body))
    chunk = bytes(rng.choice(letters) for _ in range(4096))
    return head + (chunk * (body // 4096 + 1))[:body]


def main():
    p = udp_lib.parser(__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=1)
    p.add_argument("--count", type=int, default=None, help="datagrams in all (default: 2 per client)")
    p.add_argument("--sizes", default=None, help="comma-separated sizes, used in turn")
    p.add_argument("--size", default="0-1400", help="LO-HI: random sizes (default 0-1400)")
    p.add_argument("--window", type=int, default=32, help="unanswered datagrams at most (default 32)")
    p.add_argument("--binary", action="store_true", help="every byte value, NUL and 0x80-0xFF included")
    p.add_argument("--rto", type=float, default=0.5, help="first wait before a resend (default 0.5 s)")
    p.add_argument("--sends", type=int, default=4, help="sends per datagram before failing (default 4)")
    p.add_argument("--flood", type=int, default=0, help="send this many and never read the answers")
    p.add_argument("--leave", type=int, default=0, help="this many clients send once and close at once")
    a = p.parse_args()
    sc = udp_lib.Scenario(a)
    server = (a.addr, a.port)

    if a.flood:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # answers overflow and are dropped
        for i in range(a.flood):
            try:
                s.sendto(make_payload(sc.rng, i, 0, sc.rng.randrange(1, 1400), True), server)
            except (BlockingIOError, OSError):
                pass  # a full send buffer: UDP may drop it
        s.close()
        sc.ok("sent %d datagrams without reading an answer" % a.flood)
    if a.leave:
        for i in range(a.leave):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.sendto(make_payload(sc.rng, i, i, 64, False), server)
            s.close()  # gone before the answer: the server's sendto goes nowhere
        sc.ok("%d clients sent a datagram each and closed before the answer" % a.leave)

    sizes = parse_sizes(a)
    count = a.count if a.count is not None else (
        len(sizes) if isinstance(sizes, list) else 2 * a.clients)
    socks = []
    for _ in range(a.clients):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.bind(("127.0.0.1" if a.addr.startswith("127.") else "0.0.0.0", 0))
        s.setblocking(False)
        socks.append(s)
    byfd = {s.fileno(): i for i, s in enumerate(socks)}
    sel = selectors.DefaultSelector()  # epoll: 10,000 sockets are past select()'s 1024
    for s in socks:
        sel.register(s, selectors.EVENT_READ)

    reqs = []  # [client, payload, answer, sends, answers, last_sent, rto]
    for i in range(count):
        size = sizes[i % len(sizes)] if isinstance(sizes, list) else sc.rng.randint(*sizes)
        client = i % a.clients
        pl = make_payload(sc.rng, i, client, size, a.binary)
        reqs.append([client, pl, expected(pl), 0, 0, 0.0, a.rto])
    # answer bytes -> request indexes, per client
    index = [dict() for _ in socks]
    for i, r in enumerate(reqs):
        index[r[0]].setdefault(r[2], []).append(i)

    what = "%d datagram%s (%s) from %d client%s%s" % (
        count, "" if count == 1 else "s",
        ("sizes " + ",".join(map(str, sizes))) if isinstance(sizes, list) else "sizes %d-%d" % sizes,
        a.clients, "" if a.clients == 1 else "s", ", interleaved" if a.clients > 1 else "")

    def send(i):
        r = reqs[i]
        try:
            socks[r[0]].sendto(r[1], server)
        except BlockingIOError:
            pass  # a full send buffer: it counts as lost, the resend covers it
        except OSError as e:
            sc.fail("sending %s from client %d: %s" % (short(r[1]), r[0], e.strerror))
        r[3] += 1
        r[5] = time.monotonic()

    def answered_by_other(data, me):
        for c, idx in enumerate(index):
            if c != me and data in idx:
                return c
        return None

    def check(data, src, c):
        if src != server:
            sc.fail("client %d got an answer from %s:%d, not from the server's %s:%d.\n"
                    "  likely cause: the answer must go out of the socket the question came in on "
                    "(the one bound to the address the client sent to), with sendto() to the "
                    "address recvfrom() gave" % (c, src[0], src[1], server[0], server[1]))
        hits = index[c].get(data)
        if hits:
            for i in hits:
                if reqs[i][4] == 0:
                    reqs[i][4] = 1
                    return True
            for i in hits:
                if reqs[i][4] < reqs[i][3]:
                    reqs[i][4] += 1  # a late answer to a resend: allowed
                    return False
            r = reqs[hits[0]]
            sc.fail("client %d: the answer to %s came %d times, but it was sent only %d time%s.\n"
                    "  likely cause: one datagram in, one datagram out: answer each recvfrom() "
                    "once" % (c, short(r[1]), r[4] + 1, r[3], "" if r[3] == 1 else "s"))
        other = answered_by_other(data, c)
        if other is not None:
            sc.fail("client %d (port %d) got the answer meant for client %d: %s.\n"
                    "  likely cause: the answer must go back to the address recvfrom() returned "
                    "for THIS datagram (no address kept from an earlier one, no connect() on the "
                    "server's socket)" % (c, socks[c].getsockname()[1], other, short(data)))
        # Not an answer to anything: the closest question says how it is wrong.
        mine = [reqs[i] for idx in index[c].values() for i in idx]
        pref = [r for r in mine if len(r[2]) > len(data) and r[2].startswith(data)]
        if pref:
            r = max(pref, key=lambda r: len(r[2]))
            sc.fail("client %d: a %d-byte datagram came back for a %d-byte one: its first %d bytes, "
                    "right, and nothing more.\n"
                    "  likely cause: one datagram in must be ONE datagram out, whole: a receive "
                    "buffer smaller than the datagram truncates it (recvfrom() returns the buffer's "
                    "size, the rest is lost: the buffer must hold 65,507 bytes, and MSG_TRUNC "
                    "tells the real length), and an answer sent in pieces arrives as several "
                    "datagrams" % (c, len(data), len(r[1]), len(data)))
        near = min(mine, key=lambda r: (abs(len(r[2]) - len(data)), udp_lib.first_diff(r[2], data) * -1))
        cause = ""
        if len(data) == len(near[2]) and data == near[1]:
            cause = "\n  likely cause: the datagram came back as it was sent, not uppercased"
        elif len(data) > len(near[2]) and data.startswith(near[2]):
            cause = ("\n  likely cause: the answer is longer than the question: send exactly the "
                     "count recvfrom() returned")
        elif len(data) == len(near[2]) and b"\0" in near[1] and \
                data[:near[1].index(b"\0")] == near[2][:near[1].index(b"\0")]:
            cause = ("\n  likely cause: from the first NUL byte on the answer is wrong: the "
                     "datagram is handled as a C string (strlen, %s); use recvfrom()'s count")
        sc.fail("client %d got a datagram that answers nothing it sent; the closest question's "
                "answer %s%s" % (c, udp_lib.describe(near[2], data), cause))

    nxt = 0
    done = 0
    resent = 0
    outstanding = set()
    while done < count:
        while nxt < count and len(outstanding) < a.window:
            send(nxt)
            outstanding.add(nxt)
            nxt += 1
        now = time.monotonic()
        if now > sc.deadline:
            sc.fail("%s: after %.1f s, %d still have no answer (%d answered)" % (
                what, a.timeout, count - done, done))
        wake = now + 0.2
        for i in list(outstanding):
            r = reqs[i]
            due = r[5] + r[6]
            if due <= now:
                if sc.server_gone():
                    sc.fail("%s: the server is gone (it exited) with %d of %d datagrams answered; "
                            "its stderr, below, says why" % (what, done, count))
                if r[3] >= a.sends:
                    sc.fail("%s: %s from client %d got no answer after %d sends over %.1f s "
                            "(%d of %d answered).\n  likely cause: %s" % (
                                what, short(r[1]), r[0], r[3], now - r[5] + sum(a.rto * 2 ** k for k in range(r[3] - 1)),
                                done, count,
                                "datagrams of %d bytes get no answer: the server's buffer must hold "
                                "any datagram up to 65,507 bytes, and a truncated one (MSG_TRUNC) "
                                "is dropped, not answered short" % len(r[1]) if len(r[1]) > 4096 else
                                "an empty datagram is a datagram: recvfrom() returning 0 is not an "
                                "error nor an end of anything, answer it with an empty datagram"
                                if len(r[1]) == 0 else
                                "the server stopped answering (is it still running? does it answer "
                                "more than one client?)"))
                r[6] *= 2
                send(i)
                resent += 1
                due = r[5] + r[6]
            wake = min(wake, due)
        for key, _ in sel.select(max(0.0, wake - time.monotonic())):
            s = key.fileobj
            c = byfd[s.fileno()]
            while True:
                try:
                    data, src = s.recvfrom(UDP_MAX_PAYLOAD + 2)
                except BlockingIOError:
                    break
                except ConnectionRefusedError:
                    continue  # an ICMP error for an earlier datagram
                if check(data, src, c):
                    done += 1
                    for i in index[c][data]:
                        if i in outstanding and reqs[i][4] > 0:
                            outstanding.discard(i)
    sc.ok("%s: each answered, uppercased, same length, to its own client; %d resent" % (what, resent))


if __name__ == "__main__":
    main()
