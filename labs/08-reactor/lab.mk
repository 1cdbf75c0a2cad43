# Lab 08 is built from several files.  The reactor backend is chosen here:
# a reactor_poll.c with the same function names could replace
# reactor_epoll.c in this list without touching any other file.
SERVER_SRCS_08-reactor := server.c conn.c bufpool.c reactor_epoll.c
