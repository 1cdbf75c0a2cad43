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
@test "echo: after the client half-closes, the server sends everything, then EOF" {
    start_server
    expect_pass halfclose.py --size 1048576
}

# bats test_tags=echo
@test "echo: 50 clients at once each get exactly their own bytes back" {
    start_server
    expect_pass concurrency.py --clients 50 --size 20000 --rounds 3
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
    expect_pass many.py --count 200 --parallel 8
    expect_pass echo.py --size 1000
    # Every client has gone; the server sees the last EOFs on its own time
    # (a bounded wait while the count keeps falling).
    local after epfd n f
    poll_progress 5000 "fds_at_most $before" fd_count "$SERVER_PID" || true
    after=$(fd_count "$SERVER_PID")
    for f in /proc/"$SERVER_PID"/fd/*; do
        [[ $(readlink "$f") == 'anon_inode:[eventpoll]' ]] && epfd=${f##*/}
    done
    [[ -n ${epfd:-} ]] || report_failure --cause "the server has no epoll instance: this lab waits with epoll_wait()" \
        "expected an epoll fd among the server's fds"
    n=$(grep -c '^tfd:' "/proc/$SERVER_PID/fdinfo/$epfd")
    ((after <= before)) || report_failure --cause "the server does not close() the connections of clients that leave (on read() returning 0 or an error)" \
        "expected the server's fd count back at $before after 200 clients came and went, found $after"
    ((n == 1)) || report_failure --cause "connections that closed are still in the epoll interest list ($((n - 1)) of them): remove a connection (EPOLL_CTL_DEL) before close(), or close every fd that refers to it" \
        "expected only the listening socket in the epoll interest list once every client left, found $n entries:" \
        "$(grep '^tfd:' "/proc/$SERVER_PID/fdinfo/$epfd" | head -5)"
}

# ---------- robust ----------------------------------------------------------------

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
@test "scale: 5,000 simultaneous clients in one thread, no children" {
    ulimit -n 20000
    start_server
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
}
