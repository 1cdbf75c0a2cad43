#!/usr/bin/env python3
"""tm_lab09.py - run one of lab 09's calculator clients against lab 14.

    python3 tests/clients/tm_lab09.py calc_crowd.py --port 9527 --clients 50

Lab 14 gives the payload PING a meaning of its own (the answer is PONG,
not lab 09's malformed-expression '3 0'), so the random requests of lab
09's clients must not contain it.  This wrapper draws them again until they
are neither PING nor PONG, then runs the named client unchanged, with the
remaining arguments (wherever the script name stands among them).
"""
import os
import runpy
import sys

import calcproto

_draw = calcproto.random_expression


def random_expression(rng):
    while True:
        e = _draw(rng)
        if e not in (b"PING", b"PONG"):
            return e


calcproto.random_expression = random_expression


def main():
    args = sys.argv[1:]
    scripts = [a for a in args if a.endswith(".py")]
    if not scripts:
        sys.exit("usage: tm_lab09.py SCRIPT.py ARGS...")
    script = scripts[0]
    args.remove(script)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), script)
    sys.argv = [path] + args
    runpy.run_path(path, run_name="__main__")


if __name__ == "__main__":
    main()
