#!/usr/bin/env bats
# Lab 04: one thread serves many clients with select().
#
#   bats tests/04-select.bats                       the reference solution
#   NETLABS_TREE=labs bats tests/04-select.bats     your labs/ build
#   SERVER=/path/to/server bats tests/04-select.bats
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

# ---------- design -----------------------------------------------------------------

# bats test_tags=design
@test "design: 500 clients at once are served by one process with one thread and no children" {
    ulimit -S -n 4096 || fail "test setup: cannot raise the soft fd limit to 4096 (hard limit $(ulimit -H -n))"
    start_server
    start_held concurrency.py --clients 500 --final
    local threads kids
    threads=$(thread_count "$SERVER_PID")
    kids=$(children_of "$SERVER_PID") || true
    release_held || fail "$(printf '%s\n' "the 500 clients were not all served again after the hold:" "$HELD_OUTPUT")"
    [[ $threads == 1 ]] || fail "expected 1 thread while 500 clients were connected, found $threads: this lab serves everyone from one thread with select() (server: $(server_cmd))"
    [[ -z $kids ]] || fail "$(printf '%s\n' "expected no child processes while 500 clients were connected, found (pid state):" "$kids" "this lab serves everyone from one process with select()")"
}

# bats test_tags=design
@test "design: the server waits for readiness with select(), not poll() or epoll" {
    start_server
    waits_seen concurrency.py --clients 3 --rounds 2
    [[ $WAITS_SEEN == *" select "* || $WAITS_SEEN == *" pselect6 "* ]] ||
        fail "expected select() (or pselect) while 3 clients were served; saw:${WAITS_SEEN:- nothing} (by $WAITS_HOW)"
    [[ $WAITS_SEEN != *poll* ]] ||
        fail "expected select() only, but the server also waits with:$WAITS_SEEN (by $WAITS_HOW); poll and epoll are labs 05 and 06"
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

# Clients leave while others stay; new clients reuse the freed (low) fds.
# The ones that stayed must still be served: the table forgets the fds that
# left (FD_CLR; a stale one makes select() fail with EBADF) and maxfd
# still covers the highest fd in use (a reused low fd must not lower it).
# bats test_tags=design
@test "design: clients that leave are removed; those that stay, above reused fds, are still served" {
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
    ((st == 0)) || fail "$(printf '%s\n' "10 clients that stayed connected while 110 others came and went (reusing lower fds) were not served afterwards:" "$HELD_OUTPUT" "(is maxfd still the highest fd in the set after a low fd is reused? is the fd_set copied before every select?)")"
    assert_server_alive
    run grep -E 'EBADF|Bad file descriptor' "$SERVER_ERR"
    [[ $status -ne 0 ]] || fail "$(printf '%s\n' "the server logged EBADF: a closed fd was left in the set:" "$output")"
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

# With the fd limit at 2048, 1,100 connections get fds past 1023.  FD_SET
# on such an fd writes past the end of the fd_set: in the plain build
# (_FORTIFY_SOURCE=2 -O2) glibc aborts.  The server must close those
# connections (and say so on stderr) and keep serving the rest.
# bats test_tags=scale
@test "scale: with 1,100 connections, fds >= FD_SETSIZE are refused cleanly and the rest served" {
    ulimit -S -n 2048 || fail "test setup: cannot raise the soft fd limit to 2048 (hard limit $(ulimit -H -n))"
    start_server
    # At most 1,024 fds (0-1023) fit in an fd_set, so at least 1100 - 1024
    # connections must be refused.
    start_held crowd.py --count 1100 --min-served 1000 --min-closed 76 --rounds 2
    local ready=$HELD_READY
    assert_server_alive
    local maxfd
    maxfd=$(ls "/proc/$SERVER_PID/fd" | sort -n | tail -1)
    release_held || fail "$(printf '%s\n' "the connections the server accepted (below FD_SETSIZE) were not all served again:" "$HELD_OUTPUT")"
    assert_server_alive
    ((maxfd < 1024)) || fail "with 1,100 clients connected the server held fd $maxfd open: a connection whose fd is >= FD_SETSIZE (1024) must be closed at once"
    local closed=${ready##*closed=} logged
    logged=$(grep -c 'FD_SETSIZE' "$SERVER_ERR" || true)
    ((logged >= closed)) || fail "$(printf '%s\n' "the server closed $closed connections (client: '$ready') but logged only $logged lines mentioning FD_SETSIZE; log each refusal. Its stderr ends:" "$(tail -5 "$SERVER_ERR")")"
    run client echo.py --size 4096
    assert_success
}
