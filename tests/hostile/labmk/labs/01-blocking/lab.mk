# A lab.mk that the grader's Makefile would include: its $(shell) copies the
# reference solution over the starter before anything is compiled.
$(shell cp @ROOT@/solutions/01-blocking/server.c $(dir $(lastword $(MAKEFILE_LIST)))server.c)
$(shell cp @ROOT@/solutions/01-blocking/client.c $(dir $(lastword $(MAKEFILE_LIST)))client.c)
