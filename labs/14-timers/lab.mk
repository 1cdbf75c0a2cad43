# Lab 14 is lab 09's calculator with timers.  It copies nothing: it links
# lab 08's reactor, pool and connections and lab 09's calc.c from the same
# tree (your own labs/08 and labs/09 when you build labs/14), so both must
# work first.  The timers (timer.c) are this lab's own.  See the Makefile's
# header for what a lab.mk may say.
SERVER_SRCS := server.c timer.c
# The client links lab 09's calc.c too (BASE_SRCS is for the server only).
CLIENT_SRCS := client.c ../09-framing/calc.c
BUILDS_ON   := 08-reactor 09-framing
BASE_SRCS   := 08-reactor/conn.c 08-reactor/bufpool.c 08-reactor/reactor.c 08-reactor/reactor_epoll.c 09-framing/calc.c
