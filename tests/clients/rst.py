#!/usr/bin/env python3
"""rst.py - clients that reset their connection (RST) in the middle of a stream.

    python3 tests/clients/rst.py --port 9527 --size 4194304 --count 3

Each of --count clients sends part of a --size payload while reading some of
the echo, then closes with SO_LINGER 0, so the kernel sends RST: the server
sees ECONNRESET on read or EPIPE on write (and SIGPIPE, if it did not ignore
it).  Then one more client must be served in full: the server survived.
"""
import selectors
import socket
import netlabs


GONE = ("Did it die of SIGPIPE (writing to a reset connection kills a process that "
        "neither ignores SIGPIPE nor uses MSG_NOSIGNAL), or exit on ECONNRESET/EPIPE?")


def reset_midstream(sc, i):
    data = netlabs.payload(sc.rng, sc.args.size)
    cut = sc.rng.randint(len(data) // 4, 3 * len(data) // 4)
    sock = sc.connect("client %d: connect" % i, gone=GONE if i else None)
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
    sent = got = 0
    try:
        # Pump until `cut` bytes are sent and some of the echo came back.
        while sent < cut or got == 0:
            if sc.remaining() <= 0 or sc.stalled():
                sc.fail("client %d: %d bytes sent, %d received, then %s before the client was to "
                        "reset: the server stopped %s"
                        % (i, sent, got, "nothing moved for %.1f s" % sc.stalled() if sc.stalled()
                           else "the deadline passed", "reading" if sent < cut else "answering"),
                        socks=[sock])
            for key, ev in sel.select(sc.wait_limit()):
                if ev & selectors.EVENT_READ:
                    b = sock.recv(1 << 16)
                    if not b:
                        sc.fail("client %d: the server closed the connection after %d bytes "
                                "sent, before the client reset it" % (i, sent))
                    got += len(b)
                    sc.progress()
                if ev & selectors.EVENT_WRITE and sent < cut:
                    sent += sock.send(data[sent:min(cut, sent + 65536)])
                    sc.progress()
                if sent >= cut:
                    sel.modify(sock, selectors.EVENT_READ)
    except (ConnectionResetError, BrokenPipeError):
        sc.fail("client %d: the server reset the connection first" % i)
    sel.close()
    netlabs.abort(sock)
    return sent


def main():
    p = netlabs.parser(__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=4 << 20, help="payload per client (default 4 MiB)")
    p.add_argument("--count", type=int, default=3, help="clients that reset (default 3)")
    sc = netlabs.Scenario(p.parse_args())
    total = 0
    for i in range(sc.args.count):
        total += reset_midstream(sc, i)
    data = netlabs.payload(sc.rng, 4096)
    sock = sc.connect("after %d resets: connect" % sc.args.count, gone=GONE)
    netlabs.exchange(sc, sock, data, what="the client after %d resets" % sc.args.count,
                     hint=GONE)
    sock.close()
    sc.ok("%d clients reset mid-stream (%d bytes sent); the next client was served"
          % (sc.args.count, total))


if __name__ == "__main__":
    main()
