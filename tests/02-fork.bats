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

# The server's children: all of them, the zombies (state Z), the live ones.
n_children() { children_of "$SERVER_PID" | wc -l; }
n_zombies() { children_of "$SERVER_PID" | awk '$2 == "Z"' | wc -l; }
n_live() { children_of "$SERVER_PID" | awk '$2 != "Z"' | wc -l; }
no_children() { (($(n_children) == 0)); }
no_live_children() { (($(n_live) == 0)); }
fds_back_to() { (($(fd_count "$SERVER_PID") <= $1)); }
# The processes of the server's group still running (the parent, its
# children), one "PID COMMAND" per line.
group_left() { "$SWEEP" --list --group "$SERVER_PID" || true; }
group_gone() { [[ -z $(group_left) ]]; }
n_group() { group_left | wc -l; }
# One line per live child: "  PID STATE COMMAND".
live_children() {
    children_of "$SERVER_PID" | awk '$2 != "Z"' | head -5 | while read -r p s; do
        echo "  $p $s $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
    done
}

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
@test "robust: clients resetting mid-stream do not disturb 5 clients connected meanwhile" {
    start_server
    start_held concurrency.py --clients 5 --final
    expect_pass rst.py --size 1048576 --count 3
    expect_released "the 5 held clients were disturbed by the resets:"
    assert_server_alive
}

# ---------- design -----------------------------------------------------------------

# bats test_tags=design
@test "design: 50 clients are served at once, each answered while all are connected" {
    start_server
    expect_pass concurrency.py --clients 50 --expect parallel
}

# bats test_tags=design
@test "design: while 10 clients are connected the server has 10 child processes" {
    start_server
    start_held concurrency.py --clients 10
    local live
    live=$(n_live)
    expect_released "expected: 10 clients held, then released, each served; they were not:"
    ((live >= 10)) || report_failure --cause "the server does not fork() a child per connection: pid $SERVER_PID had $live live children while 10 clients were connected" \
        "expected at least 10 live children of pid $SERVER_PID while 10 clients were connected, found $live." \
        "fork() a child per accepted connection; the child serves it." \
        "$(repro "python3 tests/clients/concurrency.py --port PORT --clients 10 --hold; ps --ppid PID")"
}

# bats test_tags=design
@test "design: children exit when their client leaves" {
    start_server
    start_held concurrency.py --clients 10
    expect_released "expected: 10 clients held, then released, each served; they were not:"
    expect_pass many.py --count 10
    # Each child sees EOF or a reset, closes and exits; only the parent
    # stays.  (Given up early once no child has exited for a while.)
    poll_progress 5000 no_live_children n_live || report_failure \
        --cause "a child does not exit when its client leaves: it must _exit() after serving its client, never return into the accept loop" \
        "after every client left, $(n_live) children of pid $SERVER_PID are still alive:" \
        "$(live_children)" \
        "$(repro "python3 tests/clients/many.py --port PORT --count 10; ps --ppid PID")"
}

# bats test_tags=design
@test "design: 50 clients leave at the same instant and no zombie remains" {
    start_server
    start_held concurrency.py --clients 50
    local live
    live=$(n_live)
    ((live >= 50)) || report_failure --cause "the server does not fork() a child per connection: $live live children while 50 clients were connected" \
        "expected 50 children while 50 clients were connected, found $live"
    # The 50 close their connections back to back: 50 children exit at
    # once, and their SIGCHLDs coalesce.
    expect_released "expected: 50 clients held, then released, each served; they were not:"
    # First every child has finished (is gone or a zombie), however slowly
    # a loaded machine schedules 50 exits, as long as they keep exiting...
    poll_progress 20000 no_live_children n_live || report_failure \
        --cause "children do not exit when their clients leave: $(n_live) of them still run" \
        "after the clients left, $(n_live) children are still running:" "$(live_children)"
    # ...then within 1 s none may be left unreaped.
    poll_until 1000 no_children || report_failure \
        --cause "$(n_zombies) zombie children remain: one SIGCHLD may stand for many exits, so reap in the handler with while (waitpid(-1, NULL, WNOHANG) > 0)" \
        "1 s after every child had exited, $(n_zombies) zombie children of pid $SERVER_PID remain (expected 0)." \
        "$(repro "python3 tests/clients/concurrency.py --port PORT --clients 50; ps --ppid PID -o pid,stat")"
    assert_server_alive
}

# bats test_tags=design
@test "design: the parent's fd count is flat after 300 connections" {
    start_server
    local before after
    before=$(fd_count "$SERVER_PID")
    expect_pass many.py --count 300
    poll_until 2000 fds_back_to "$before" || {
        after=$(fd_count "$SERVER_PID")
        report_failure --cause "the parent keeps its copy of each connection: close(connfd) in the parent right after fork() (the child has its own)" \
            "the parent had $before open fds before 300 connections and $after after (expected $before)." \
            "$(repro "python3 tests/clients/many.py --port PORT --count 300; ls /proc/PID/fd | wc -l")"
    }
}

# bats test_tags=design
@test "design: a client that half-closes gets EOF: the parent keeps no copy of its connection" {
    start_server
    # A parent still holding connfd keeps the connection open after the
    # child closes it: the echo arrives, the EOF never does.
    CLIENT_TIMEOUT=5 expect_pass halfclose.py --size 65536
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
    expect_released "expected: the held client, once released, to be served; it was not:"
    [[ -n $inode && -n $child ]] || report_failure --cause "no child serves the held client: fork() a child per connection" \
        "test setup: listening inode '$inode', child '$child' (expected a child serving the held client)"
    [[ $fds != *"socket:[$inode]"* ]] || report_failure \
        --cause "the child keeps the listening socket: close(listenfd) in the child, or the port stays bound while any child lives" \
        "child $child holds the listening socket (socket:[$inode]); expected only its own connection." \
        "its fds:" "$fds"
}

# bats test_tags=design
@test "design: a client arriving after others have left is served (accept survives SIGCHLD)" {
    start_server
    start_held concurrency.py --clients 5
    expect_released "expected: 5 clients held, then released, each served; they were not:"
    # Wait until all five children have exited and been reaped (while they
    # keep going): the parent, blocked in accept(), has taken their SIGCHLDs.
    poll_progress 20000 no_children n_children || true
    assert_server_alive
    expect_pass --cause-if accept_eintr_cause echo.py --size 4096
}

# What a parent that stopped accepting after SIGCHLD left behind: a log
# line about accept and EINTR.
accept_eintr_cause() {
    grep -qiE 'accept.*(interrupted|EINTR)' "$SERVER_ERR" 2>/dev/null &&
        echo "accept() failed with EINTR when a SIGCHLD arrived, and the server gave up: install the handler with SA_RESTART, or retry accept() on EINTR"
    return 0
}

# SIGTERM is how a server is stopped (kill PID, a service manager): it must
# end the whole server.  Children left behind keep serving their clients,
# unseen, with nobody to stop them.
# bats test_tags=design
@test "design: SIGTERM to the parent ends the whole server, its children too" {
    start_server
    start_held concurrency.py --clients 3
    local before
    before=$(n_live)
    ((before >= 3)) || report_failure --cause "the server does not fork() a child per connection: $before live children while 3 clients were connected" \
        "expected 3 children while 3 clients were connected, found $before"
    # The parent only, as kill PID does: not its process group.
    SERVER_STOPPED=$SERVER_PID
    kill -TERM "$SERVER_PID"
    wait_exit "$SERVER_PID" 2 || true
    local parent=$WAIT_STATUS
    # Its children must be gone too: given up early once none has exited
    # for a while.
    poll_progress 2000 group_gone n_group || true
    local left
    left=$(group_left)
    release_held || true
    [[ $parent != timeout ]] || report_failure --cause "the parent did not exit within 2 s of SIGTERM" \
        "expected the server (pid $SERVER_PID) to exit on SIGTERM; it was still running 2 s later"
    [[ -z $left ]] || report_failure \
        --cause "after SIGTERM the parent exited but $(wc -l <<<"$left") of its children still serve their clients: SIGTERM must end the whole server. Catch SIGTERM in the parent, send SIGTERM to every live child (keep their pids as you fork them), wait for them, then exit" \
        "expected no process of the server left 2 s after SIGTERM to pid $SERVER_PID (3 clients connected); still running:" \
        "$left" \
        "$(repro "python3 tests/clients/concurrency.py --port PORT --clients 3 --hold; kill -TERM PID; ps -o pid,ppid,cmd -g PID")"
}
