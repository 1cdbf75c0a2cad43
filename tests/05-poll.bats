#!/usr/bin/env bats
# Lab 05: one thread serves many clients with poll().
#
#   bats tests/05-poll.bats                       the reference solution
#   NETLABS_TREE=labs bats tests/05-poll.bats     your labs/ build
#   SERVER=/path/to/server bats tests/05-poll.bats
#
# Tags: echo (the service), design (this lab's mechanism), robust (bad
# clients), scale.

load lib/netlabs

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
@test "echo: 30 clients one after another are each served" {
    start_server
    run client many.py --count 30
    assert_success
}

# bats test_tags=echo
@test "echo: 50 clients connected at once each get exactly their own bytes, 3 rounds" {
    start_server
    run client concurrency.py --clients 50 --rounds 3 --size 2000
    assert_success
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
@test "robust: 100 connected clients that all leave with RST at once do not stop the server" {
    ulimit -S -n 4096 || fail "test setup: cannot raise the soft fd limit to 4096 (hard limit $(ulimit -H -n))"
    start_server
    run client concurrency.py --clients 100 --close rst
    assert_success
    assert_server_alive
    run client echo.py --size 65536
    assert_success
}

# ---------- design -----------------------------------------------------------------

# bats test_tags=design
@test "design: the server waits for readiness with poll(), not select() or epoll" {
    start_server
    waits_seen concurrency.py --clients 3 --rounds 2
    [[ $WAITS_SEEN == *" poll "* || $WAITS_SEEN == *" ppoll "* ]] ||
        fail "expected poll() (or ppoll) while 3 clients were served; saw:${WAITS_SEEN:- nothing} (by $WAITS_HOW)"
    [[ $WAITS_SEEN != *select* && $WAITS_SEEN != *epoll* ]] ||
        fail "expected poll() only, but the server also waits with:$WAITS_SEEN (by $WAITS_HOW); select is lab 04, epoll lab 06"
}

# bats test_tags=design
@test "design: a client sending one byte per second does not delay another client's echo" {
    start_server
    # The fast client's round trips must each come back within 2 s while
    # the slow one is connected: a server that reads the slow client until
    # EOF (or blocks on it) keeps the fast one waiting for 3 s and more.
    run client slowpoke.py --gap 1 --bytes 4 --bound 2
    assert_success
}

# A closed fd left in the pollfd array comes back from every poll() at once
# (POLLNVAL): the server spins.  An idle server sleeps in poll().
# bats test_tags=design
@test "design: after 1,000 clients leave, the server sleeps (no CPU over 2 idle seconds) and still serves" {
    ulimit -S -n 4096 || fail "test setup: cannot raise the soft fd limit to 4096 (hard limit $(ulimit -H -n))"
    start_server
    run client concurrency.py --clients 1000
    assert_success
    # A client served after the 1,000 left: the server has been round its
    # loop since their EOFs arrived.
    run client echo.py --size 4096
    assert_success
    local hz t0 t1 used
    hz=$(getconf CLK_TCK)
    t0=$(cpu_ticks "$SERVER_PID")
    sleep 2 # a bounded wait for absence: an idle server burns nothing
    t1=$(cpu_ticks "$SERVER_PID")
    used=$((t1 - t0))
    # 10% of one core over 2 s: a busy loop burns close to 100%.
    ((used * 5 <= hz)) || fail "$(printf '%s
' "the idle server used $used clock ticks ($hz per second) of CPU over 2 s after 1,000 clients left: it spins. Is every closed fd removed from the pollfd array? Its stderr ends:" "$(tail -5 "$SERVER_ERR")")"
    assert_server_alive
    run client concurrency.py --clients 20
    assert_success
}

# Clients leave while others stay; the table's slots are reused.  The ones
# that stayed must still be served, and every fd that left is closed.
# bats test_tags=design
@test "design: clients that leave are removed; those that stay are still served" {
    start_server
    local base
    base=$(fd_count "$SERVER_PID")
    start_held concurrency.py --clients 10 --timeout 30
    local a_pid=$HELD_PID
    start_held concurrency.py --clients 10 --final --timeout 30
    # The first 10 leave: their fds are free again, below the second 10's.
    # (Killed rather than released: the second client inherited the
    # first's stdin pipe, so closing our end would not reach it.)
    kill -TERM "$a_pid"
    wait "$a_pid" 2>/dev/null || true
    run client many.py --count 100
    assert_success
    local st=0
    release_held || st=$?
    ((st == 0)) || fail "$(printf '%s\n' "10 clients that stayed connected while 110 others came and went (reusing lower fds) were not served afterwards:" "$HELD_OUTPUT" "(when a slot is freed, is the entry moved into it still watched, with its own name and fd?)")"
    assert_server_alive
    run grep -E 'EBADF|Bad file descriptor' "$SERVER_ERR"
    [[ $status -ne 0 ]] || fail "$(printf '%s\n' "the server logged EBADF: a closed fd was left in the pollfd array:" "$output")"
    run client echo.py --size 4096
    assert_success
    # Every fd of the 120 clients is closed again (bounded wait: the
    # server handles the last EOFs on its own time).
    local n i
    for ((i = 0; i < 50; i++)); do
        n=$(fd_count "$SERVER_PID")
        ((n <= base)) && break
        sleep 0.1
    done
    ((n <= base)) || fail "the server had $base fds before any client and still has $n after all of them left: it does not close() the clients that leave ($(ls -l /proc/$SERVER_PID/fd | tail -n +2 | awk '{print $9, $11}' | tr '\n' ' '))"
}

# ---------- scale ----------------------------------------------------------------

# An fd_set stops at 1,024 fds; a pollfd array has no such limit.  3,000
# clients connected at once must all be served, by one thread.
# bats test_tags=scale
@test "scale: 3,000 clients connected at once are all served by one thread, no children" {
    ulimit -S -n 20000 || fail "test setup: cannot raise the soft fd limit to 20000 (hard limit $(ulimit -H -n))"
    start_server
    start_held concurrency.py --clients 3000 --final
    local threads kids nfd
    threads=$(thread_count "$SERVER_PID")
    kids=$(children_of "$SERVER_PID") || true
    nfd=$(fd_count "$SERVER_PID")
    release_held || fail "$(printf '%s
' "the 3,000 clients were not all served again after the hold:" "$HELD_OUTPUT")"
    assert_server_alive
    ((nfd > 3000)) || fail "expected over 3,000 open fds in the server with 3,000 clients connected, found $nfd"
    [[ $threads == 1 ]] || fail "expected 1 thread while 3,000 clients were connected, found $threads: this lab serves everyone from one thread with poll() (server: $(server_cmd))"
    [[ -z $kids ]] || fail "$(printf '%s
' "expected no child processes while 3,000 clients were connected, found (pid state):" "$kids")"
    run client echo.py --size 4096
    assert_success
}
