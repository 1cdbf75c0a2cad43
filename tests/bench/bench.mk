# tests/bench: the load generator and the outside reference servers that
# `make compare` measures next to the solutions.

EXTRA_PROGS += $(B)/tests/bench/loadgen
$(B)/tests/bench/loadgen: $(B)/tests/bench/loadgen.o
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# udpgen: the UDP ping-pong of compare's UDP table (tests/bench/udp.py).
EXTRA_PROGS += $(B)/tests/bench/udpgen
$(B)/tests/bench/udpgen: $(B)/tests/bench/udpgen.o
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The libevent server is built only where libevent is installed
# (Debian/Ubuntu: sudo apt-get install -y libevent-dev pkg-config);
# without it `make compare` leaves its row out.
LIBEVENT_LIBS := $(shell pkg-config --libs libevent 2>/dev/null)
ifneq ($(LIBEVENT_LIBS),)
# What the libevent servers share (the command line, the listener, the
# stop signals): libevent_bench.c, linked into each.
LIBEVENT_BENCH := $(B)/tests/bench/libevent_bench.o $(B)/common/wrap.o
$(B)/tests/bench/libevent_bench.o: CPPFLAGS += $(shell pkg-config --cflags libevent)
EXTRA_PROGS += $(B)/tests/bench/libevent_server
$(B)/tests/bench/libevent_server.o: CPPFLAGS += $(shell pkg-config --cflags libevent)
$(B)/tests/bench/libevent_server: $(B)/tests/bench/libevent_server.o $(LIBEVENT_BENCH)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(LIBEVENT_LIBS)
# The same source with libevent's defaults, for the untuned row.
EXTRA_PROGS += $(B)/tests/bench/libevent_server_untuned
$(B)/tests/bench/libevent_server_untuned.o: tests/bench/libevent_server.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(shell pkg-config --cflags libevent) -DLIBEVENT_UNTUNED $(CFLAGS) -Werror -MMD -MP -c -o $@ $<
$(B)/tests/bench/libevent_server_untuned: $(B)/tests/bench/libevent_server_untuned.o $(LIBEVENT_BENCH)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(LIBEVENT_LIBS)
# Raw events and its own read()/write() and buffers, memcached's way: the
# libevent-raw row.
EXTRA_PROGS += $(B)/tests/bench/libevent_raw_server
$(B)/tests/bench/libevent_raw_server.o: CPPFLAGS += $(shell pkg-config --cflags libevent)
$(B)/tests/bench/libevent_raw_server: $(B)/tests/bench/libevent_raw_server.o $(LIBEVENT_BENCH)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(LIBEVENT_LIBS)
endif
