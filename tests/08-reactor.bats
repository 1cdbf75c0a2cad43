#!/usr/bin/env bats
# Lab 08: the pooled-buffer reactor (reactor.h + epoll backend, a size-class
# buffer pool, connections with back-pressure, the echo app on top).
#
#   bats tests/08-reactor.bats                       the reference solution
#   NETLABS_TREE=labs bats tests/08-reactor.bats     your labs/ build
#   SERVER=/path/to/server bats tests/08-reactor.bats
#
# The pool's own tests are in C: tests/unit/bufpool_test.c (make unit).
# Tags: echo (the service), design (this lab's mechanism), robust (bad
# clients), scale.
#
# The server's pool stats (SIGUSR1, and at exit with -v) are part of the
# lab's contract: one "stats: connections N" line, then one line per class
# "pool: class SIZE: in_use N free N peak N", then "pool: total: ...".

load lib/netlabs
load lib/scenarios_nonblocking

HIGH_WATER_KB=4096 # the output high-water mark per connection (labs/08-reactor/README.md)

# ---------- helpers for this lab --------------------------------------------------

# pool_stats: send SIGUSR1 and print the stats dump the server writes to its
# stderr in answer (waits for the dump itself, at most 5 s).
pool_stats() {
    local before after i
    before=$(grep -c '^pool: total:' "$SERVER_ERR")
    kill -USR1 "$SERVER_PID"
    for ((i = 0; i < 100; i++)); do
        after=$(grep -c '^pool: total:' "$SERVER_ERR")
        ((after > before)) && break
        sleep 0.05
    done
    ((after > before)) || fail "$(printf '%s\n' "sent SIGUSR1; expected a stats dump ('pool: total: ...') on stderr within 5 s, got none. stderr:" "$(tail -5 "$SERVER_ERR")")"
    last_stats
}

# last_stats: the last dump in the server's stderr.
last_stats() {
    awk '/^stats:/ { buf = "" } /^(stats|pool):/ { buf = buf $0 "\n" } END { printf "%s", buf }' "$SERVER_ERR"
}

# stats_when_idle: pool_stats, repeated until it reports 0 connections (the
# server may still be closing the last ones when the client exits), at most
# 5 s.  A server that never gets there leaks connections.
stats_when_idle() {
    local st i
    for ((i = 0; i < 50; i++)); do
        st=$(pool_stats)
        [[ $st == *"stats: connections 0"* ]] && break
        sleep 0.1
    done
    printf '%s\n' "$st"
}

# busy_classes STATS: the class lines with in_use > 0.
busy_classes() {
    awk '$1 == "pool:" && $2 == "class" && $5 != 0' <<<"$1"
}

rss_kb() { proc_field "$SERVER_PID" VmRSS; }

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
@test "echo: 200 clients at once each get exactly their own bytes back" {
    start_server
    run client concurrency.py --clients 200 --size 5000 --rounds 2
    assert_success
}

# ---------- robust ----------------------------------------------------------------

# bats test_tags=robust
@test "robust: clients that reset (RST) mid-stream do not kill the server; the next is served" {
    start_server
    run client rst.py --size 4194304 --count 3
    assert_success
    assert_server_alive
    local st busy
    st=$(stats_when_idle)
    busy=$(busy_classes "$st")
    [[ -z $busy && $st == *"stats: connections 0"* ]] || fail "$(printf '%s\n' "after the reset clients left, expected 0 connections and no buffer in use; stats:" "$st" \
        "  a connection closed on an error must give its buffers back too.")"
}

# bats test_tags=robust
@test "robust: clients that hang up before their echo arrives do not kill the server (SIGPIPE)" {
    start_server
    run client hangup.py --count 10
    assert_success
    assert_server_alive
}

# bats test_tags=robust
@test "robust: a client that stops reading for 2 s while sending 16 MiB then gets it all back" {
    # Back-pressure pauses reading this client; it must resume once the
    # client reads again (below the low-water mark), losing nothing.
    start_server
    run client burst.py --size 16777216 --pause-read 2
    assert_success
}

# ---------- lab 07's scenarios: the reactor must do all of it too -----------------------
# (tests/lib/scenarios_nonblocking.bash; the same functions tests/07-epoll-et.bats runs)

# bats test_tags=design
@test "design: one write of 1 MiB, then the client only reads: it all comes back (read until EAGAIN)" {
    nb_one_write_burst
}

# bats test_tags=design
@test "design: 200 connections queued behind one edge are all accepted and served (accept until EAGAIN)" {
    nb_connect_burst 200
}

# bats test_tags=design
@test "design: 8 MiB then shutdown(SHUT_WR): every byte comes back, then EOF (flush before close)" {
    nb_halfclose_flush
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
    nb_sigterm_clean_exit --pending
}

# bats test_tags=robust
@test "robust: a client sends 64 MiB and reads nothing for 3 s: loses nothing, and others keep a low latency" {
    nb_slow_reader 67108864
}

# bats test_tags=robust
@test "robust: out of fds (prlimit --nofile=64): no crash, no spin, new clients served once fds free up" {
    nb_emfile_no_spin
}

# bats test_tags=robust
@test "robust: out of fds, each new client is closed at once (spare fd), not left queued" {
    local PRE=(prlimit --nofile=64 --)
    start_server
    PRE=()
    start_held hold_idle.py --count 100
    # The table is full: the server must keep refusing, every time.
    run client refused.py --count 5 --within 5
    local st=$status out=$output
    assert_server_alive
    release_held || true
    ((st == 0)) || fail "$(printf '%s\n' "with its fds used up by 100 held clients, the server left new clients hanging:" "$out" \
        "  on EMFILE: close the spare fd, accept and close the client, and reopen the spare AFTER that close" \
        "  (the client's fd takes the spare's number; reopening first fails and loses the spare for good).")"
    run client many.py --count 10
    assert_success
}

# ---------- design: memory ------------------------------------------------------------

# bats test_tags=design,robust
@test "design: a client sending 64 MiB and never reading stays under the high-water mark; others are served" {
    start_server
    run client echo.py --size 100000 # warm up: the pool's first buffers
    assert_success
    local base peak
    base=$(rss_kb)
    start_held backpressure.py --size 67108864
    local sent=${HELD_READY#ready }
    # Meanwhile, everyone else is served.
    run client concurrency.py --clients 20 --size 20000
    assert_success
    run client echo.py --size 1048576
    assert_success
    peak=$(proc_field "$SERVER_PID" VmHWM)
    local limit=$((base + HIGH_WATER_KB + 3072))
    ((peak <= limit)) || fail "$(printf '%s\n' \
        "the server's peak RSS reached ${peak} kB; expected at most ${limit} kB (${base} kB before + ${HIGH_WATER_KB} kB high-water + 3 MiB)." \
        "  a client sent ${sent} bytes without reading. Stop reading a connection once its pending output" \
        "  passes the high-water mark (back-pressure), and resume below the low-water mark." \
        "  $(repro "python3 tests/clients/backpressure.py --port PORT --hold; watch VmHWM in /proc/PID/status")")"
    run pool_stats
    [[ $output == *"stats: connections 1"* ]] || fail "expected the non-reading client to stay connected (1 connection); stats: $output"
    release_held || fail "the non-reading client: $HELD_OUTPUT"
}

# bats test_tags=design,scale
@test "scale: 10,000 idle connections are all served, hold no pool buffer, cost under 2 KiB of RSS each" {
    ulimit -n 20000
    start_server
    run client echo.py --size 100000 # warm up
    assert_success
    local base after
    base=$(rss_kb)
    CLIENT_TIMEOUT=40 start_held concurrency.py --clients 10000 --final
    after=$(rss_kb)
    local st
    st=$(pool_stats)
    [[ $st == *"stats: connections 10000"* ]] || fail "expected 'stats: connections 10000' with 10,000 clients connected; got: $st"
    local busy
    busy=$(busy_classes "$st")
    [[ -z $busy ]] || fail "$(printf '%s\n' "10,000 idle connections (each echoed once) still hold pool buffers:" "$busy" \
        "  give a connection's input and output buffers back to the pool as soon as they are empty.")"
    local per=$(((after - base) * 1024 / 10000))
    ((per < 2048)) || fail "$(printf '%s\n' "RSS grew from ${base} kB to ${after} kB with 10,000 idle connections: ${per} bytes each, expected under 2048." \
        "  an idle connection should hold a small struct and no buffer. $(repro "python3 tests/clients/concurrency.py --port PORT --clients 10000 --hold")")"
    release_held || fail "after the hold, one more round on all 10,000 connections failed: $HELD_OUTPUT"
}

# bats test_tags=design
@test "design: after 1,000 connections with 1 MiB bursts leave, every buffer is back in the pool and RSS stops growing" {
    start_server
    local fds
    fds=$(fd_count "$SERVER_PID")
    run client bursts.py --count 500 --size 1048576 --parallel 10
    assert_success
    local st1 rss1
    st1=$(stats_when_idle)
    rss1=$(rss_kb)
    run client bursts.py --count 500 --size 1048576 --parallel 10
    assert_success
    local st2 rss2
    st2=$(stats_when_idle)
    rss2=$(rss_kb)
    [[ $st2 == *"stats: connections 0"* ]] || fail "$(printf '%s\n' "all clients left, but the server still counts connections:" "$st2" "  close and free a connection on EOF, reset and error.")"
    local busy
    busy=$(busy_classes "$st2")
    [[ -z $busy ]] || fail "$(printf '%s\n' "all 1,000 clients left, but buffers are still in use (expected in_use 0 everywhere):" "$busy" \
        "  every buffer must go back to the pool (pool_free) when it empties and when its connection closes.")"
    [[ $(fd_count "$SERVER_PID") -eq $fds ]] || fail "the server had $fds fds open before, $(fd_count "$SERVER_PID") after 1,000 clients left: close every connection's fd"
    ((rss2 <= rss1 + 1024)) || fail "RSS grew from ${rss1} kB after 500 bursts to ${rss2} kB after 1,000: freed buffers are not being reused (pool_free -> free list -> pool_alloc)"
}

# ---------- design: the loop and shutdown ----------------------------------------------

# bats test_tags=design
@test "design: SIGUSR1 prints pool stats that add up; idle connections hold no buffer" {
    start_server
    run client echo.py --size 1048576
    assert_success
    local st
    start_held concurrency.py --clients 5 --size 30000 --final
    st=$(pool_stats)
    [[ $st == *"stats: connections 5"* ]] || fail "expected 'stats: connections 5' with 5 clients connected; got: $st"
    local busy
    busy=$(busy_classes "$st")
    [[ -z $busy ]] || fail "$(printf '%s\n' "5 idle connections (each echoed 30000 bytes) still hold pool buffers:" "$busy" \
        "  give a connection's buffers back to the pool as soon as they are empty.")"
    release_held || fail "after the hold, one more round failed: $HELD_OUTPUT"
    st=$(stats_when_idle)
    local classes
    classes=$(grep -c '^pool: class ' <<<"$st")
    [[ $classes -ge 4 ]] || fail "expected one 'pool: class SIZE: in_use N free N peak N' line per size class (4K to 8M); got: $st"
    # held (total line) must be the sum of (in_use + free) * size.
    run awk '$2 == "class" { sub(":", "", $3); sum += ($5 + $7) * $3; if ($9 < $5) bad = 1 }
             $2 == "total:" { held = $6 }
             END { if (bad || sum != held) { print "held " held " but classes add up to " sum (bad ? ", and a peak below in_use" : ""); exit 1 } }' <<<"$st"
    [[ $status -eq 0 ]] || fail "the stats do not add up: $output; stats: $st"
    run client echo.py --size 1000
    assert_success
}

# bats test_tags=design
@test "design: SIGTERM with clients connected and output pending: exit 0, everything freed" {
    start_server -v
    start_held concurrency.py --clients 20 --size 10000
    local first=$HELD_PID first_in=$HELD_IN first_out=$HELD_OUT first_err=$HELD_ERR
    start_held backpressure.py --size 33554432
    stop_server
    [[ $SERVER_STATUS == 0 ]] || fail "$(printf '%s\n' "SIGTERM: expected exit status 0 within 2 s, got '$SERVER_STATUS'. stderr:" "$(tail -12 "$SERVER_ERR")")"
    local st
    st=$(last_stats)
    [[ $st == *"stats: connections 0"* ]] || fail "$(printf '%s\n' "with -v the server prints its stats at exit, after closing every connection; expected 'stats: connections 0', got:" "$st")"
    local busy
    busy=$(busy_classes "$st")
    [[ -z $busy ]] || fail "$(printf '%s\n' "at exit, buffers are still in use (leaked):" "$busy")"
    release_held || true
    HELD_PID=$first HELD_IN=$first_in HELD_OUT=$first_out HELD_ERR=$first_err
    release_held || true
}
