# Lab 08 is built from several files (see the Makefile's header for what a
# lab.mk may say).  The reactor's core (reactor.c) is the same whatever
# waits; the backend is chosen here: a reactor_poll.c defining the same
# backend_* functions (reactor_backend.h) could replace reactor_epoll.c in
# this list without touching any other file.
SERVER_SRCS := server.c conn.c bufpool.c reactor.c reactor_epoll.c
