#!/usr/bin/env python3
"""calc_shortserver.py - a calculator server that hangs up too early (for
testing the client program, not a server).

    python3 tests/clients/calc_shortserver.py -p 0 --answer 1

Listens like a lab server ("listening on 127.0.0.1:PORT"), then serves
connections one at a time: reads every request until the client's EOF,
answers only the first --answer of them (correctly), and closes.  A client
program must print the replies it got, then report on stderr that the
server closed early, and exit 1.
"""
import argparse
import socket
import sys

import calcproto


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-p", type=int, default=0, dest="port")
    p.add_argument("-a", default="127.0.0.1", dest="addr")
    p.add_argument("--answer", type=int, default=1, help="requests answered per connection")
    args = p.parse_args()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((args.addr, args.port))
    ls.listen(16)
    print("listening on %s:%d" % ls.getsockname(), flush=True)
    while True:
        s, _ = ls.accept()
        data = b""
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
        except OSError:
            pass
        # Read as frames; this server trusts its client.
        reqs, pos = [], 0
        while True:
            at = data.find(b"@", pos)
            if at < 0:
                break
            n = int(data[pos:at])
            reqs.append(data[at + 1:at + 1 + n])
            pos = at + 2 + n
        out = b"".join(calcproto.frame(calcproto.reply(r)) for r in reqs[:args.answer])
        try:
            s.sendall(out)
        except OSError:
            pass
        print("answered %d of %d requests, closing" % (min(args.answer, len(reqs)), len(reqs)),
              file=sys.stderr, flush=True)
        s.close()


if __name__ == "__main__":
    main()
