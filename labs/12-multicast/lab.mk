# Lab 12 is lab 11's UDP echo, announcing itself, and a discover program.
# It does not copy lab 11: the server links lab 11's udp.c from the same
# tree (the student's own labs/11-udp when you build labs/12), so your echo
# carries forward.  See the Makefile's header for what a lab.mk may say.
SERVER_SRCS := server.c announce.c mcast.c
BUILDS_ON   := 11-udp
BASE_SRCS   := 11-udp/udp.c

# The lab's third program, discover (the Makefile builds a server and a
# client per lab).  This file is read once for each tree: the directory
# it sits in says which.  Building the server builds discover too (an
# order-only prerequisite), so every tool that builds a lab's server
# (make, the grader, the mutants) gets discover next to it, at
# build/<variant>/<tree>/12-multicast/discover.
L12 := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
EXTRA_PROGS += $(B)/$(L12)/discover
$(B)/$(L12)/discover: $(B)/$(L12)/discover.o $(B)/$(L12)/mcast.o $(B)/common/wrap.o
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(B)/$(L12)/server: | $(B)/$(L12)/discover
