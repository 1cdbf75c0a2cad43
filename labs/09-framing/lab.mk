# Lab 09 is the calculator on lab 08's reactor.  It does not copy lab 08:
# it links lab 08's files from the same tree (the student's own labs/08
# when you build labs/09), so your reactor, pool and connections carry
# forward.  See the Makefile's header for what a lab.mk may say.
SERVER_SRCS := server.c calc.c
CLIENT_SRCS := client.c calc.c
BUILDS_ON   := 08-reactor
BASE_SRCS   := 08-reactor/conn.c 08-reactor/bufpool.c 08-reactor/reactor.c 08-reactor/reactor_epoll.c
