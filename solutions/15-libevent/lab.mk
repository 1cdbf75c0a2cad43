# Lab 15 is lab 09's calculator with lab 14's timers, on libevent instead
# of our own reactor.  It copies nothing: the frames are found and answered
# by lab 09's calc.c, linked from the same tree (your own labs/09 when you
# build labs/15), so lab 09 must work first.  The reactor, the connections
# and the timers are libevent's (PKGS: pkg-config finds it).  Lab 15 has
# no client program: lab 09's and lab 14's clients talk to it unchanged.
# See the Makefile's header for what a lab.mk may say.
SERVER_SRCS := server.c
# Lab 09 itself stands on lab 08, so both are named: where lab 15 fails,
# the grader builds and checks the labs under it, and lab 09 needs lab 08's
# files to build.  Only lab 09's calc.c is linked.
BUILDS_ON   := 08-reactor 09-framing
BASE_SRCS   := 09-framing/calc.c
PKGS        := libevent
