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

# ---------- helpers for this lab -----------------------------------------------------

# one_loop_cause: what this lab's design looks like when it is missing (one
# process, one thread, select()), or nothing.
one_loop_cause() {
    local t k
    t=$(thread_count "$SERVER_PID")
    k=$(children_of "$SERVER_PID" | awk '$2 != "Z"' | wc -l)
    if ((k > 0)); then
        echo "the server forks ($k child processes): this lab serves every client from one process, with select()"
    elif [[ -n $t ]] && ((t > 1)); then
        echo "the server runs $t threads: this lab serves every client from one thread, with select()"
    fi
    return 0
}

# ebadf_cause: a server that logged EBADF kept a closed fd in its set.
ebadf_cause() {
    grep -qE 'EBADF|Bad file descriptor' "$SERVER_ERR" 2>/dev/null &&
        echo "select() failed with EBADF: a closed fd is still in the watched set (FD_CLR it when its client leaves, before close())"
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

# ---------- design -----------------------------------------------------------------

# bats test_tags=design
@test "design: 500 clients at once are served by one process with one thread and no children" {
    ulimit -S -n 4096 || fail "test setup: cannot raise the soft fd limit to 4096 (hard limit $(ulimit -H -n))"
    start_server
    HELD_CAUSE_IF=one_loop_cause start_held concurrency.py --clients 500 --final
    local cause
    cause=$(one_loop_cause)
    expect_released --cause-if one_loop_cause "expected: the 500 clients, once released, each served again; they were not:"
    [[ -z $cause ]] || report_failure --cause "$cause" \
        "expected 1 process with 1 thread while 500 clients were connected; found $(thread_count "$SERVER_PID") threads and these children (pid state):" \
        "$(children_of "$SERVER_PID")" "server: $(server_cmd)"
}

# bats test_tags=design
@test "design: the server waits for readiness with select(), not poll() or epoll" {
    start_server
    waits_seen concurrency.py --clients 3 --rounds 2
    [[ $WAITS_SEEN == *" select "* || $WAITS_SEEN == *" pselect6 "* ]] ||
        report_failure --cause "the server does not wait in select(): it saw${WAITS_SEEN:- no readiness call at all}" \
            "expected select() (or pselect) while 3 clients were served; saw:${WAITS_SEEN:- nothing} (by $WAITS_HOW)" \
            ${WAITS_FAILED:+"and the client failed:" "$WAITS_FAILED"}
    [[ $WAITS_SEEN != *poll* ]] ||
        report_failure --cause "the server also waits with${WAITS_SEEN}: this lab waits with select() only (poll is lab 05, epoll lab 06)" \
            "expected select() only, but the server also waits with:$WAITS_SEEN (by $WAITS_HOW)"
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
    wait_exit "$a_pid" 5 || true
    expect_pass many.py --count 100
    expect_released --cause-if ebadf_cause \
        "expected: 10 clients that stayed connected while 110 others came and went (reusing lower fds) to be served afterwards; they were not:" \
        "(is maxfd still the highest fd in the set after a low fd is reused? is the fd_set copied before every select?)"
    assert_server_alive
    [[ -z $(ebadf_cause) ]] || report_failure --cause "$(ebadf_cause)" "the server logged EBADF:" \
        "$(grep -E 'EBADF|Bad file descriptor' "$SERVER_ERR" | head -5)"
    expect_pass echo.py --size 4096
    # Every fd of the 120 clients is closed again (a bounded wait while
    # the count keeps falling: the server handles the last EOFs on its own
    # time).
    poll_progress 5000 "fds_at_most $base" fd_count "$SERVER_PID" || report_failure \
        --cause "the server does not close() the connections of clients that leave (on read() returning 0 or an error: FD_CLR, then close)" \
        "the server had $base fds before any client and still has $(fd_count "$SERVER_PID") after all of them left:" \
        "$(ls -l /proc/$SERVER_PID/fd | tail -n +2 | awk '{print $9, $11}' | tr '\n' ' ')"
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
    expect_released "the connections the server accepted (below FD_SETSIZE) were not all served again:"
    assert_server_alive
    ((maxfd < 1024)) || report_failure --cause "a connection whose fd is >= FD_SETSIZE (1024) is kept: it cannot go in an fd_set, so close it at once (and say so on stderr)" \
        "with 1,100 clients connected the server held fd $maxfd open"
    local closed=${ready##*closed=} logged
    logged=$(grep -c 'FD_SETSIZE' "$SERVER_ERR" || true)
    ((logged >= closed)) || report_failure --cause "refused connections are not logged: write one line on stderr naming FD_SETSIZE for each" \
        "the server closed $closed connections (client: '$ready') but logged only $logged lines mentioning FD_SETSIZE. Its stderr ends:" \
        "$(tail -5 "$SERVER_ERR")"
    expect_pass echo.py --size 4096
}
