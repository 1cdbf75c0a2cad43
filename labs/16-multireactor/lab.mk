# Lab 16 runs lab 08's reactor, pool and connections, one of each per
# thread.  It copies nothing: it links lab 08's files from the same tree
# (your own labs/08 when you build labs/16), so lab 08 must work first.
# See the Makefile's header for what a lab.mk may say.
SERVER_SRCS := server.c
BUILDS_ON   := 08-reactor
BASE_SRCS   := 08-reactor/conn.c 08-reactor/bufpool.c 08-reactor/reactor.c 08-reactor/reactor_epoll.c
