#!/usr/bin/env bats
# Lab 06: epoll, level-triggered, one thread.
#
#   bats tests/06-epoll-lt.bats                       the reference solution
#   NETLABS_TREE=labs bats tests/06-epoll-lt.bats     your labs/ build
#   SERVER=/path/to/server bats tests/06-epoll-lt.bats
#
# Tags: echo (the service), design (this lab's mechanism), robust (bad
# clients), scale.  Some scenarios are shared with labs 07 and 08
# (tests/lib/scenarios_nonblocking.bash).

load lib/netlabs
load lib/scenarios_nonblocking

# ---------- echo --------------------------------------------------------------------

# bats test_tags=echo
@test "echo: every byte value 0-255, sent in random chunks, comes back uppercased" {
    start_server
    run client echo.py --size 262144
    assert_success
}

# bats test_tags=echo
@test "echo: an 8 MiB payload comes back whole while the client reads as it writes" {
    start_server
    run client burst.py --size 8388608
    assert_success
}

# bats test_tags=echo
@test "echo: after the client half-closes, the server sends everything, then EOF" {
    start_server
    run client halfclose.py --size 1048576
    assert_success
}

# bats test_tags=echo
@test "echo: 50 clients at once each get exactly their own bytes back" {
    start_server
    run client concurrency.py --clients 50 --size 20000 --rounds 3
    assert_success
}

# ---------- design -----------------------------------------------------------------

# bats test_tags=design
@test "design: waits in epoll_wait, connections in the interest list, level-triggered (no EPOLLET)" {
    nb_strace_epoll lt
}

# bats test_tags=design
@test "design: idle with 1,000 connections, the server uses almost no CPU over 2 s" {
    nb_idle_cpu 1000
}

# bats test_tags=design
@test "design: SIGTERM with 20 clients connected: exit 0, nothing leaked" {
    nb_sigterm_clean_exit --valgrind
}

# bats test_tags=design
@test "design: closed connections leave the interest list and the fd table" {
    start_server
    local before
    before=$(fd_count "$SERVER_PID")
    run client many.py --count 200 --parallel 8
    assert_success
    run client echo.py --size 1000
    assert_success
    # Every client has gone; the server sees the last EOFs on its own time
    # (a bounded wait for them to be closed, not a synchronisation sleep).
    local after epfd n i f
    for ((i = 0; i < 50; i++)); do
        after=$(fd_count "$SERVER_PID")
        ((after <= before)) && break
        sleep 0.1
    done
    for f in /proc/"$SERVER_PID"/fd/*; do
        [[ $(readlink "$f") == 'anon_inode:[eventpoll]' ]] && epfd=${f##*/}
    done
    [[ -n ${epfd:-} ]] || fail "expected an epoll fd among the server's fds"
    n=$(grep -c '^tfd:' "/proc/$SERVER_PID/fdinfo/$epfd")
    ((after <= before)) || fail "expected the server's fd count back at $before after 200 clients came and went, found $after: close every connection"
    ((n == 1)) || fail "expected only the listening socket in the epoll interest list once every client left, found $n entries: $(grep '^tfd:' "/proc/$SERVER_PID/fdinfo/$epfd" | head -5)"
}

# ---------- robust ----------------------------------------------------------------

# bats test_tags=robust
@test "robust: clients that reset (RST) mid-stream do not kill the server; the next is served" {
    start_server
    run client rst.py --size 4194304 --count 3
    assert_success
    assert_server_alive
    run client echo.py --size 4096
    assert_success
}

# bats test_tags=robust
@test "robust: clients that hang up before their echo arrives do not kill the server (SIGPIPE)" {
    start_server
    run client hangup.py --count 10
    assert_success
    assert_server_alive
}

# bats test_tags=robust
@test "robust: a client that sends one byte at a time is served byte by byte" {
    start_server
    run client trickle.py --count 100
    assert_success
}

# bats test_tags=robust
@test "robust: 300 clients come and go (every fourth resets), 8 at a time" {
    start_server
    run client many.py --count 300 --parallel 8
    assert_success
    assert_server_alive
}

# ---------- scale ----------------------------------------------------------------

# bats test_tags=scale
@test "scale: 5,000 simultaneous clients in one thread, no children" {
    ulimit -n 20000
    start_server
    start_held concurrency.py --clients 5000
    local threads kids
    threads=$(thread_count "$SERVER_PID")
    kids=$(children_of "$SERVER_PID" || true) # (children_of can return 1 when it found none)
    release_held || fail "5000 clients at once: $HELD_OUTPUT"
    [[ $threads == 1 ]] || fail "expected 1 thread while 5000 clients were connected, found $threads"
    [[ -z $kids ]] || fail "expected no child processes, found: $kids"
    run client echo.py --size 1000
    assert_success
}
