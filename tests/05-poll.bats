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

# ---------- helpers for this lab -----------------------------------------------------

# one_loop_cause: what this lab's design looks like when it is missing (one
# process, one thread, poll()), or nothing.
one_loop_cause() {
    local t k
    t=$(thread_count "$SERVER_PID")
    k=$(children_of "$SERVER_PID" | awk '$2 != "Z"' | wc -l)
    if ((k > 0)); then
        echo "the server forks ($k child processes): this lab serves every client from one process, with poll()"
    elif [[ -n $t ]] && ((t > 1)); then
        echo "the server runs $t threads: this lab serves every client from one thread, with poll()"
    fi
    return 0
}

# ebadf_cause: a server that logged EBADF used an fd already closed.
ebadf_cause() {
    grep -qE 'EBADF|Bad file descriptor' "$SERVER_ERR" 2>/dev/null &&
        echo "the server used an fd that was already closed (EBADF): remove a client from the pollfd array when it leaves, and close its fd once"
    return 0
}

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
@test "echo: 30 clients one after another are each served" {
    start_server
    expect_pass many.py --count 30
}

# bats test_tags=echo
@test "echo: 50 clients connected at once each get exactly their own bytes, 3 rounds" {
    start_server
    expect_pass concurrency.py --clients 50 --rounds 3 --size 2000
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
@test "robust: 100 connected clients that all leave with RST at once do not stop the server" {
    ulimit -S -n 4096 || fail "test setup: cannot raise the soft fd limit to 4096 (hard limit $(ulimit -H -n))"
    start_server
    expect_pass concurrency.py --clients 100 --close rst
    assert_server_alive
    expect_pass echo.py --size 65536
}

# ---------- design -----------------------------------------------------------------

# bats test_tags=design
@test "design: the server waits for readiness with poll(), not select() or epoll" {
    start_server
    waits_seen concurrency.py --clients 3 --rounds 2
    [[ $WAITS_SEEN == *" poll "* || $WAITS_SEEN == *" ppoll "* ]] ||
        report_failure --cause "the server does not wait in poll(): it saw${WAITS_SEEN:- no readiness call at all}" \
            "expected poll() (or ppoll) while 3 clients were served; saw:${WAITS_SEEN:- nothing} (by $WAITS_HOW)" \
            ${WAITS_FAILED:+"and the client failed:" "$WAITS_FAILED"}
    [[ $WAITS_SEEN != *select* && $WAITS_SEEN != *epoll* ]] ||
        report_failure --cause "the server also waits with${WAITS_SEEN}: this lab waits with poll() only (select is lab 04, epoll lab 06)" \
            "expected poll() only, but the server also waits with:$WAITS_SEEN (by $WAITS_HOW)"
    [[ -z $WAITS_FAILED ]] || report_failure "expected: the client concurrency.py --clients 3 --rounds 2 to pass while the server was traced; it failed:" \
        "$WAITS_FAILED"
}

# bats test_tags=design
@test "design: a client sending one byte per second does not delay another client's echo" {
    start_server
    # The fast client's round trips must each come back within 2 s while
    # the slow one is connected: a server that reads the slow client until
    # EOF (or blocks on it) keeps the fast one waiting for 3 s and more.
    expect_pass slowpoke.py --gap 1 --bytes 4 --bound 2
}

# A closed fd left in the pollfd array comes back from every poll() at once
# (POLLNVAL): the server spins.  An idle server sleeps in poll().
# bats test_tags=design
@test "design: after 1,000 clients leave, the server sleeps (no CPU over 2 idle seconds) and still serves" {
    ulimit -S -n 4096 || fail "test setup: cannot raise the soft fd limit to 4096 (hard limit $(ulimit -H -n))"
    start_server
    expect_pass concurrency.py --clients 1000
    # A client served after the 1,000 left: the server has been round its
    # loop since their EOFs arrived.
    expect_pass echo.py --size 4096
    local hz t0 t1 used
    hz=$(getconf CLK_TCK)
    t0=$(cpu_ticks "$SERVER_PID")
    sleep 2 # a bounded wait for absence: an idle server burns nothing
    t1=$(cpu_ticks "$SERVER_PID")
    used=$((t1 - t0))
    # 10% of one core over 2 s: a busy loop burns close to 100%.
    ((used * 5 <= hz)) || report_failure \
        --cause "the idle server spins: a closed fd left in the pollfd array comes back from every poll() at once (POLLNVAL), forever. Remove every closed fd from the array" \
        "the idle server used $used clock ticks ($hz per second) of CPU over 2 s after 1,000 clients left. Its stderr ends:" \
        "$(tail -5 "$SERVER_ERR")"
    assert_server_alive
    expect_pass concurrency.py --clients 20
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
    wait_exit "$a_pid" 5 || true
    expect_pass many.py --count 100
    expect_released --cause-if ebadf_cause \
        "expected: 10 clients that stayed connected while 110 others came and went (reusing lower fds) to be served afterwards; they were not:" \
        "(when a slot is freed, is the entry moved into it still watched, with its own name and fd?)"
    assert_server_alive
    [[ -z $(ebadf_cause) ]] || report_failure --cause "$(ebadf_cause)" "the server logged EBADF:" \
        "$(grep -E 'EBADF|Bad file descriptor' "$SERVER_ERR" | head -5)"
    expect_pass echo.py --size 4096
    # Every fd of the 120 clients is closed again (a bounded wait while
    # the count keeps falling: the server handles the last EOFs on its own
    # time).
    poll_progress 5000 "fds_at_most $base" fd_count "$SERVER_PID" || report_failure \
        --cause "the server does not close() the connections of clients that leave (on read() returning 0 or an error: close it and remove it from the array)" \
        "the server had $base fds before any client and still has $(fd_count "$SERVER_PID") after all of them left:" \
        "$(ls -l /proc/$SERVER_PID/fd | tail -n +2 | awk '{print $9, $11}' | tr '\n' ' ')"
}

# ---------- scale ----------------------------------------------------------------

# An fd_set stops at 1,024 fds; a pollfd array has no such limit.  3,000
# clients connected at once must all be served, by one thread.
# bats test_tags=scale
@test "scale: 3,000 clients connected at once are all served by one thread, no children" {
    ulimit -S -n 20000 || fail "test setup: cannot raise the soft fd limit to 20000 (hard limit $(ulimit -H -n))"
    start_server
    HELD_CAUSE_IF=one_loop_cause start_held concurrency.py --clients 3000 --final
    local cause nfd
    cause=$(one_loop_cause)
    nfd=$(fd_count "$SERVER_PID")
    expect_released --cause-if one_loop_cause "expected: the 3,000 clients, once released, each served again; they were not:"
    assert_server_alive
    ((nfd > 3000)) || report_failure --cause "the server did not hold the 3,000 connections open at once (a fixed-size table? connections refused or closed?)" \
        "expected over 3,000 open fds in the server with 3,000 clients connected, found $nfd"
    [[ -z $cause ]] || report_failure --cause "$cause" \
        "expected 1 process with 1 thread while 3,000 clients were connected; found $(thread_count "$SERVER_PID") threads and these children (pid state):" \
        "$(children_of "$SERVER_PID")"
    expect_pass echo.py --size 4096
}
