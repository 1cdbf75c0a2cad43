"""ux_unix.py - netlabs.py's scenarios over a Unix-domain stream socket (lab 13).

The scenario clients of netlabs.py connect over TCP (--port).  Lab 13's
server also listens on a Unix-domain socket, so its clients take
--unix PATH instead: a socket file, or @NAME for NAME in Linux's abstract
namespace (the address is then a NUL byte followed by exactly the bytes of
NAME: the length counts, so no trailing NULs).  Everything else (the
deadline, the progress clock, the seeded payloads, the checks and their
messages, exit statuses 0/1/3) is netlabs.py's.
"""

import argparse
import os
import socket
import sys
import time
import weakref

import netlabs


def parser(description, hold=False):
    """netlabs.parser() with --unix PATH instead of --port."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--unix", required=True, metavar="PATH",
                   help="the server's socket file, or @NAME for an abstract name")
    p.add_argument("--timeout", type=float, default=20.0,
                   help="overall deadline in seconds (default 20)")
    p.add_argument("--progress-timeout", type=float, metavar="S",
                   default=float(os.environ.get("NETLABS_PROGRESS_TIMEOUT") or 3.0),
                   help="give up once nothing has moved for S seconds while the server owes bytes "
                        "(default 3, or $NETLABS_PROGRESS_TIMEOUT; 0: only --timeout)")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed for the payload (default: a fresh one, printed on failure)")
    # Accepted and ignored, so that the bats harness's start_held (which
    # passes --port) can run these clients too.
    p.add_argument("--port", help=argparse.SUPPRESS)
    if hold:
        p.add_argument("--hold", action="store_true",
                       help='once connected, print "ready ..." and hold until stdin reaches EOF')
    return p


def address(name):
    """The address to connect to for PATH or @NAME."""
    return "\0" + name[1:] if name.startswith("@") else name


class UnixScenario(netlabs.Scenario):
    """A netlabs.Scenario whose connections go to --unix."""

    def __init__(self, args):
        args.port = 0  # (netlabs.Scenario and its messages look for these two)
        args.addr = "unix:" + args.unix
        super().__init__(args)

    def connect(self, what="connect", gone=None):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(max(0.1, self.wait_limit()))
        try:
            s.connect(address(self.args.unix))
        except socket.timeout:
            s.close()
            self.fail("%s to unix:%s: connect() did not complete within %.1f s: the server's listen "
                      "backlog is full (it stopped accepting)" % (what, self.args.unix,
                                                                  time.monotonic() - self.last_progress))
        except (ConnectionRefusedError, FileNotFoundError) as e:
            s.close()
            if gone:
                self.fail("%s: %s: the server is gone. %s" % (what, e.strerror, gone))
            print("cannot connect to unix:%s: %s" % (self.args.unix, e.strerror), file=sys.stderr)
            sys.stderr.flush()
            os._exit(netlabs.EXIT_NOCONN)
        except OSError as e:
            s.close()
            print("cannot connect to unix:%s: %s" % (self.args.unix, e.strerror), file=sys.stderr)
            sys.stderr.flush()
            os._exit(netlabs.EXIT_NOCONN)
        s.settimeout(None)
        self.socks.append(weakref.ref(s))
        self.progress()
        return s

    def server_state(self, socks=None, waiting_for="reply"):
        # serverstate.py reads TCP sockets from /proc/net/tcp; for a Unix
        # socket all it could say is whether bytes wait unread.
        return []
