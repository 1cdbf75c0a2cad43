"""sitecustomize.py - lab 14's one change to lab 09's protocol, for lab 09's
clients when they test a server that speaks lab 14's protocol (lab 15).

    PYTHONPATH=tests/clients/lab14speaks python3 tests/clients/calc_table.py ...

Lab 14 gives the payload PING a meaning: its reply is the payload PONG (lab
09 answers '3 0', a malformed expression), and a PONG gets no reply at all.
Python imports this module at startup from PYTHONPATH; it teaches the
reference evaluator (calcproto.reply) PING's new answer, and keeps PONG out
of the random requests (one request, one reply: lab 14's
tm_lab09.py does the same).  Nothing else changes: every other expected
reply is lab 09's.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import calcproto  # noqa: E402  (the clients' own import finds this module)

del sys.path[0]

_reply = calcproto.reply
_draw = calcproto.random_expression


def reply(payload):
    if bytes(payload) == b"PING":
        return b"PONG"
    return _reply(payload)


def random_expression(rng):
    while True:
        e = _draw(rng)
        if e != b"PONG":
            return e


calcproto.reply = reply
calcproto.random_expression = random_expression
