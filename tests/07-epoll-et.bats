#!/usr/bin/env bats
# Lab 07: epoll, edge-triggered, non-blocking sockets, per-connection
# output buffers.
#
#   bats tests/07-epoll-et.bats                       the reference solution
#   NETLABS_TREE=labs bats tests/07-epoll-et.bats     your labs/ build
#   SERVER=/path/to/server bats tests/07-epoll-et.bats
#
# Tags: echo (the service), design (this lab's mechanism), robust (bad
# clients), scale.  The lab's own scenarios live in
# tests/lib/scenarios_nonblocking.bash (lab 08 runs them too).

load lib/netlabs
load lib/scenarios_nonblocking

fds_at_most() { (($(fd_count "$SERVER_PID") <= $1)); }

# ---------- echo --------------------------------------------------------------------

# bats test_tags=echo
@test "echo: every byte value 0-255, sent in random chunks, comes back uppercased" {
    start_server
    expect_pass echo.py --size 262144
}

# bats test_tags=echo
@test "echo: an 8 MiB payload comes back whole while the client reads as it writes" {
    start_server
    expect_pass burst.py --size 8388608
}

# bats test_tags=echo
@test "echo: 50 clients at once each get exactly their own bytes back" {
    start_server
    expect_pass concurrency.py --clients 50 --size 20000 --rounds 3
}

# ---------- design -----------------------------------------------------------------

# bats test_tags=design
@test "design: one write of 1 MiB, then the client only reads: it all comes back (read until EAGAIN)" {
    nb_one_write_burst
}

# bats test_tags=design
@test "design: 200 connections queued behind one edge are all accepted and served (accept until EAGAIN)" {
    nb_connect_burst 200
}

# bats test_tags=design
@test "design: 32 MiB then shutdown(SHUT_WR): every byte comes back, then EOF (flush before close)" {
    nb_halfclose_flush 33554432 settle
}

# bats test_tags=design
@test "design: EPOLLET and non-blocking sockets (strace and /proc), waiting in epoll_wait" {
    nb_strace_et_nonblock
}

# bats test_tags=design
@test "design: idle with 1,000 connections, the server uses almost no CPU over 2 s" {
    nb_idle_cpu 1000
}

# bats test_tags=design
@test "design: SIGTERM with clients connected and output unsent: exit 0, nothing leaked" {
    nb_sigterm_clean_exit --pending --valgrind
}

# ---------- robust ----------------------------------------------------------------

# bats test_tags=robust
@test "robust: a client sends 64 MiB and reads nothing for 3 s: loses nothing, and others keep a low latency" {
    nb_slow_reader 67108864
}

# bats test_tags=robust
@test "robust: out of fds (prlimit --nofile=64): no crash, no spin, new clients served once fds free up" {
    nb_emfile_no_spin
}

# bats test_tags=robust
@test "robust: clients that reset (RST) mid-stream do not kill the server; the next is served" {
    start_server
    expect_pass rst.py --size 4194304 --count 3
    assert_server_alive
    expect_pass echo.py --size 4096
}

# bats test_tags=robust
@test "robust: clients that hang up before their echo arrives do not kill the server (SIGPIPE)" {
    start_server
    expect_pass hangup.py --count 10
    assert_server_alive
}

# bats test_tags=robust
@test "robust: a client that sends one byte at a time is served byte by byte" {
    start_server
    expect_pass trickle.py --count 100
}

# bats test_tags=robust
@test "robust: 300 clients come and go (every fourth resets), 8 at a time" {
    start_server
    expect_pass many.py --count 300 --parallel 8
    assert_server_alive
}

# ---------- scale ----------------------------------------------------------------

# bats test_tags=scale
@test "scale: 5,000 simultaneous clients in one thread, no children, fds back to where they were" {
    ulimit -n 20000
    start_server
    local before=$(fd_count "$SERVER_PID")
    start_held concurrency.py --clients 5000
    local threads kids
    threads=$(thread_count "$SERVER_PID")
    kids=$(children_of "$SERVER_PID" || true) # (children_of can return 1 when it found none)
    expect_released "expected: the 5000 clients, once released, to leave cleanly; they did not:"
    [[ $threads == 1 ]] || report_failure --cause "the server runs $threads threads: this lab serves every client from one thread, with epoll" \
        "expected 1 thread while 5000 clients were connected, found $threads"
    [[ -z $kids ]] || report_failure --cause "the server forks: this lab serves every client from one process, with epoll" \
        "expected no child processes, found:" "$kids"
    expect_pass echo.py --size 1000
    # The server sees the last EOFs on its own time: a bounded wait while
    # the count keeps falling.
    poll_progress 5000 "fds_at_most $before" fd_count "$SERVER_PID" || report_failure \
        --cause "the server does not close() the connections of clients that leave" \
        "expected the server's fd count back at $before once the 5000 clients left (and a new one came and went), found $(fd_count "$SERVER_PID")"
}
