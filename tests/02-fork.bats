#!/usr/bin/env bats
# Lab 02: the fork-per-connection uppercase-echo server.
#
#   bats tests/02-fork.bats                       the reference solution
#   NETLABS_TREE=labs bats tests/02-fork.bats     your labs/ build
#   SERVER=/path/to/server bats tests/02-fork.bats
#
# Tags: echo (the service), design (this lab's mechanism: a child per
# client, reaped; the right fds closed on each side), robust (bad clients).

load lib/netlabs

# ---------- helpers for this lab -----------------------------------------------------

now_ms() { date +%s%3N; }

# poll_until MS CMD...: run CMD every 20 ms until it succeeds; fail (status
# 1) if MS milliseconds pass first.  A bounded wait for a state a correct
# server reaches by itself, not a sleep standing in for synchronisation.
poll_until() {
    local end=$(($(now_ms) + $1))
    shift
    until "$@"; do
        (($(now_ms) < end)) || return 1
        sleep 0.02
    done
}

# The server's children: all of them, the zombies (state Z), the live ones.
n_children() { children_of "$SERVER_PID" | wc -l; }
n_zombies() { children_of "$SERVER_PID" | awk '$2 == "Z"' | wc -l; }
n_live() { children_of "$SERVER_PID" | awk '$2 != "Z"' | wc -l; }
no_children() { (($(n_children) == 0)); }
no_live_children() { (($(n_live) == 0)); }
fds_back_to() { (($(fd_count "$SERVER_PID") <= $1)); }

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
@test "robust: clients resetting mid-stream do not disturb 5 clients connected meanwhile" {
    start_server
    start_held concurrency.py --clients 5 --final
    run client rst.py --size 1048576 --count 3
    assert_success
    release_held || fail "$(printf '%s\n' "the 5 held clients were disturbed by the resets:" "$HELD_OUTPUT")"
    assert_server_alive
}

# ---------- design -----------------------------------------------------------------

# bats test_tags=design
@test "design: 50 clients are served at once, each answered while all are connected" {
    start_server
    run client concurrency.py --clients 50 --expect parallel
    assert_success
}

# bats test_tags=design
@test "design: while 10 clients are connected the server has 10 child processes" {
    start_server
    start_held concurrency.py --clients 10
    local live
    live=$(n_live)
    release_held || fail "the held clients failed: $HELD_OUTPUT"
    ((live >= 10)) || fail "$(printf '%s\n' \
        "expected at least 10 live children of pid $SERVER_PID while 10 clients were connected, found $live." \
        "  fork() a child per accepted connection; the child serves it." \
        "  $(repro "python3 tests/clients/concurrency.py --port PORT --clients 10 --hold; ps --ppid PID")")"
}

# bats test_tags=design
@test "design: children exit when their client leaves" {
    start_server
    start_held concurrency.py --clients 10
    release_held || fail "the held clients failed: $HELD_OUTPUT"
    run client many.py --count 10
    assert_success
    # Each child sees EOF or a reset, closes and exits; only the parent stays.
    poll_until 5000 no_live_children || fail "$(printf '%s\n' \
        "5 s after every client left, $(n_live) children of pid $SERVER_PID are still alive:" \
        "$(children_of "$SERVER_PID" | awk '$2 != "Z"' | head -5 | while read -r p s; do echo "  $p $s $(tr '\0' ' ' </proc/$p/cmdline)"; done)" \
        "  a child must _exit() after serving its client, never return into the accept loop." \
        "  $(repro "python3 tests/clients/many.py --port PORT --count 10; ps --ppid PID")")"
}

# bats test_tags=design
@test "design: 50 clients leave at the same instant and no zombie remains" {
    start_server
    start_held concurrency.py --clients 50
    local live
    live=$(n_live)
    ((live >= 50)) || fail "expected 50 children while 50 clients were connected, found $live"
    # The 50 close their connections back to back: 50 children exit at
    # once, and their SIGCHLDs coalesce.
    release_held || fail "the held clients failed: $HELD_OUTPUT"
    # First every child has finished (is gone or a zombie), however slowly
    # a loaded machine schedules 50 exits...
    poll_until 20000 no_live_children || fail "20 s after the clients left, $(n_live) children are still running"
    # ...then within 1 s none may be left unreaped.
    poll_until 1000 no_children || fail "$(printf '%s\n' \
        "1 s after every child had exited, $(n_zombies) zombie children of pid $SERVER_PID remain (expected 0)." \
        "  Reap in the SIGCHLD handler with while (waitpid(-1, NULL, WNOHANG) > 0): one SIGCHLD may stand for many exits." \
        "  $(repro "python3 tests/clients/concurrency.py --port PORT --clients 50; ps --ppid PID -o pid,stat")")"
    assert_server_alive
}

# bats test_tags=design
@test "design: the parent's fd count is flat after 300 connections" {
    start_server
    local before after
    before=$(fd_count "$SERVER_PID")
    run client many.py --count 300
    assert_success
    poll_until 2000 fds_back_to "$before" || {
        after=$(fd_count "$SERVER_PID")
        fail "$(printf '%s\n' \
            "the parent had $before open fds before 300 connections and $after after (expected $before)." \
            "  The parent must close(connfd) after fork(): the child has its own copy." \
            "  $(repro "python3 tests/clients/many.py --port PORT --count 300; ls /proc/PID/fd | wc -l")")"
    }
}

# bats test_tags=design
@test "design: a client that half-closes gets EOF: the parent keeps no copy of its connection" {
    start_server
    # A parent still holding connfd keeps the connection open after the
    # child closes it: the echo arrives, the EOF never does.
    CLIENT_TIMEOUT=5 run client halfclose.py --size 65536
    assert_success
}

# bats test_tags=design
@test "design: a child does not hold the listening socket" {
    start_server
    start_held concurrency.py --clients 1
    local hexport inode child fds
    hexport=$(printf '%04X' "$SERVER_PORT")
    # The listening socket's inode: state 0A (LISTEN) on our port.
    inode=$(awk -v p=":$hexport" '$4 == "0A" && $2 ~ p"$" {print $10}' /proc/net/tcp)
    child=$(children_of "$SERVER_PID" | awk '$2 != "Z" {print $1; exit}')
    fds=$(ls -l "/proc/$child/fd" 2>/dev/null)
    release_held || fail "the held client failed: $HELD_OUTPUT"
    [[ -n $inode && -n $child ]] || fail "test setup: listening inode '$inode', child '$child' (expected a child serving the held client)"
    [[ $fds != *"socket:[$inode]"* ]] || fail "$(printf '%s\n' \
        "child $child holds the listening socket (socket:[$inode]); expected only its own connection." \
        "  The child must close(listenfd): otherwise the port stays bound while any child lives." \
        "  its fds:" "$fds")"
}

# bats test_tags=design
@test "design: a client arriving after others have left is served (accept survives SIGCHLD)" {
    start_server
    start_held concurrency.py --clients 5
    release_held || fail "the held clients failed: $HELD_OUTPUT"
    # Wait until all five children have exited and been reaped: the parent,
    # blocked in accept(), has taken their SIGCHLDs.
    poll_until 20000 no_children || true
    assert_server_alive
    run client echo.py --size 4096
    assert_success
}
