# Lab 11: the uppercase echo over UDP.  The server is server.c and udp.c
# (lab 12 links udp.c from here, so your echo carries forward); the client
# program is client.c alone.  See the Makefile's header for what a lab.mk
# may say.
SERVER_SRCS := server.c udp.c
CLIENT_SRCS := client.c
