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
    ((after > before)) || report_failure --cause "SIGUSR1 prints no pool stats: the handler sets a flag, and the loop prints the dump ('stats: ...', 'pool: class ...', 'pool: total: ...') on stderr when it sees it" \
        "sent SIGUSR1; expected a stats dump ('pool: total: ...') on stderr within 5 s, got none. stderr:" "$(tail -5 "$SERVER_ERR")"
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
    expect_pass echo.py --size 262144
}

# bats test_tags=echo
@test "echo: an 8 MiB payload comes back whole while the client reads as it writes" {
    start_server
    expect_pass burst.py --size 8388608
}

# bats test_tags=echo
@test "echo: 200 clients at once each get exactly their own bytes back" {
    start_server
    expect_pass concurrency.py --clients 200 --size 5000 --rounds 2
}

# ---------- robust ----------------------------------------------------------------

# bats test_tags=robust
@test "robust: clients that reset (RST) mid-stream do not kill the server; the next is served" {
    start_server
    expect_pass rst.py --size 4194304 --count 3
    assert_server_alive
    local st busy
    st=$(stats_when_idle)
    busy=$(busy_classes "$st")
    [[ -z $busy && $st == *"stats: connections 0"* ]] || report_failure \
        --cause "a connection closed on an error (a reset) keeps its connection or buffers: free both on every way out, not only on EOF" \
        "after the reset clients left, expected 0 connections and no buffer in use; stats:" "$st"
}

# bats test_tags=robust
@test "robust: clients that hang up before their echo arrives do not kill the server (SIGPIPE)" {
    start_server
    expect_pass hangup.py --count 10
    assert_server_alive
}

# bats test_tags=robust
@test "robust: a client that stops reading for 2 s while sending 16 MiB then gets it all back" {
    # Back-pressure pauses reading this client; it must resume once the
    # client reads again (below the low-water mark), losing nothing.
    start_server
    expect_pass burst.py --size 16777216 --pause-read 2
}

# ---------- lab 07's scenarios: the reactor must do all of it too -----------------------
# (tests/lib/scenarios_nonblocking.bash; the same functions tests/07-epoll-et.bats runs)

# bats test_tags=design
@test "design: one write of 1 MiB, then the client only reads: it all comes back (read until the socket is empty)" {
    nb_one_write_burst
}

# bats test_tags=design
@test "design: 200 small round trips: a read that returns less than asked ends the turn (no read just for EAGAIN)" {
    nb_short_read_stops 200
}

# bats test_tags=design
@test "design: bytes and FIN in one event: the bytes come back, then EOF (a short read is not the end after a hang-up)" {
    nb_fin_with_data 100
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
    local out st=0
    out=$(run_client refused.py --count 5 --within 5 2>&1) || st=$?
    assert_server_alive
    release_held || true
    ((st == 0)) || report_failure \
        --cause "out of fds, new clients are left hanging: on EMFILE close the spare fd, accept and close the client, and reopen the spare AFTER that close (reopening first fails and loses the spare for good)" \
        "with its fds used up by 100 held clients, the server left new clients hanging:" "$out"
    expect_pass many.py --count 10
}

# ---------- design: memory ------------------------------------------------------------

# bats test_tags=design,robust
@test "design: a client sending 64 MiB and never reading stays under the high-water mark; others are served" {
    start_server
    expect_pass echo.py --size 100000 # warm up: the pool's first buffers
    local base peak
    base=$(rss_kb)
    start_held backpressure.py --size 67108864
    local sent=${HELD_READY#ready }
    # Meanwhile, everyone else is served.
    expect_pass concurrency.py --clients 20 --size 20000
    expect_pass echo.py --size 1048576
    peak=$(proc_field "$SERVER_PID" VmHWM)
    local limit=$((base + HIGH_WATER_KB + 3072))
    ((peak <= limit)) || report_failure \
        --cause "no back-pressure: the server keeps reading a client that does not read, and its output grows without bound. Stop reading a connection once its pending output passes the high-water mark, resume below the low-water mark" \
        "the server's peak RSS reached ${peak} kB; expected at most ${limit} kB (${base} kB before + ${HIGH_WATER_KB} kB high-water + 3 MiB); a client sent ${sent} bytes without reading." \
        "$(repro "python3 tests/clients/backpressure.py --port PORT --hold; watch VmHWM in /proc/PID/status")"
    run pool_stats
    [[ $output == *"stats: connections 1"* ]] || report_failure --cause "the server dropped a client only because it does not read: pause it (back-pressure), do not close it" \
        "expected the non-reading client to stay connected (1 connection); stats:" "$output"
    expect_released "expected: the non-reading client, once released, to still be connected; it was not:"
}

# bats test_tags=design,scale
@test "scale: 10,000 idle connections are all served, hold no pool buffer, cost under 2 KiB of RSS each" {
    ulimit -n 20000
    start_server
    expect_pass echo.py --size 100000 # warm up
    local base after
    base=$(rss_kb)
    CLIENT_TIMEOUT=40 start_held concurrency.py --clients 10000 --final
    after=$(rss_kb)
    local st
    st=$(pool_stats)
    [[ $st == *"stats: connections 10000"* ]] || report_failure --cause "the stats do not count the 10,000 connections held open" \
        "expected 'stats: connections 10000' with 10,000 clients connected; got:" "$st"
    local busy
    busy=$(busy_classes "$st")
    [[ -z $busy ]] || report_failure --cause "idle connections keep pool buffers: give a connection's input and output buffers back to the pool as soon as they are empty" \
        "10,000 idle connections (each echoed once) still hold pool buffers:" "$busy"
    local per=$(((after - base) * 1024 / 10000))
    ((per < 2048)) || report_failure --cause "an idle connection costs ${per} bytes: it should hold a small struct and no buffer" \
        "RSS grew from ${base} kB to ${after} kB with 10,000 idle connections: ${per} bytes each, expected under 2048." \
        "$(repro "python3 tests/clients/concurrency.py --port PORT --clients 10000 --hold")"
    expect_released "expected: one more round on all 10,000 connections after the hold; it failed:"
}

# bats test_tags=design
@test "design: after 1,000 connections with 1 MiB bursts leave, every buffer is back in the pool and RSS stops growing" {
    start_server
    local fds
    fds=$(fd_count "$SERVER_PID")
    expect_pass bursts.py --count 500 --size 1048576 --parallel 10
    local st1 rss1
    st1=$(stats_when_idle)
    rss1=$(rss_kb)
    expect_pass bursts.py --count 500 --size 1048576 --parallel 10
    local st2 rss2
    st2=$(stats_when_idle)
    rss2=$(rss_kb)
    [[ $st2 == *"stats: connections 0"* ]] || report_failure --cause "connections are not freed when their clients leave: close and free a connection on EOF, reset and error" \
        "all clients left, but the server still counts connections:" "$st2"
    local busy
    busy=$(busy_classes "$st2")
    [[ -z $busy ]] || report_failure --cause "buffers leak: every buffer must go back to the pool (pool_free) when it empties and when its connection closes" \
        "all 1,000 clients left, but buffers are still in use (expected in_use 0 everywhere):" "$busy"
    [[ $(fd_count "$SERVER_PID") -eq $fds ]] || report_failure --cause "fds leak: close every connection's fd when it ends" \
        "the server had $fds fds open before, $(fd_count "$SERVER_PID") after 1,000 clients left"
    ((rss2 <= rss1 + 1024)) || report_failure --cause "freed buffers are not reused (pool_free -> free list -> pool_alloc)" \
        "RSS grew from ${rss1} kB after 500 bursts to ${rss2} kB after 1,000"
}

# ---------- design: the loop and shutdown ----------------------------------------------

# bats test_tags=design
@test "design: SIGUSR1 prints pool stats that add up; idle connections hold no buffer" {
    start_server
    expect_pass echo.py --size 1048576
    local st
    start_held concurrency.py --clients 5 --size 30000 --final
    st=$(pool_stats)
    [[ $st == *"stats: connections 5"* ]] || report_failure --cause "the stats do not count the connections: 'stats: connections N' must say how many are open" \
        "expected 'stats: connections 5' with 5 clients connected; got:" "$st"
    local busy
    busy=$(busy_classes "$st")
    [[ -z $busy ]] || report_failure --cause "idle connections keep pool buffers: give a connection's buffers back to the pool as soon as they are empty" \
        "5 idle connections (each echoed 30000 bytes) still hold pool buffers:" "$busy"
    expect_released "expected: one more round on the 5 connections after the hold; it failed:"
    st=$(stats_when_idle)
    local classes
    classes=$(grep -c '^pool: class ' <<<"$st")
    [[ $classes -ge 4 ]] || report_failure --cause "the stats dump lacks the per-class lines" \
        "expected one 'pool: class SIZE: in_use N free N peak N' line per size class (4K to 8M); got:" "$st"
    # held (total line) must be the sum of (in_use + free) * size.
    run awk '$2 == "class" { sub(":", "", $3); sum += ($5 + $7) * $3; if ($9 < $5) bad = 1 }
             $2 == "total:" { held = $6 }
             END { if (bad || sum != held) { print "held " held " but classes add up to " sum (bad ? ", and a peak below in_use" : ""); exit 1 } }' <<<"$st"
    [[ $status -eq 0 ]] || report_failure --cause "the pool's counters do not add up: $output" "the stats:" "$st"
    expect_pass echo.py --size 1000
}

# bats test_tags=design
@test "design: SIGTERM with clients connected and output pending: exit 0, everything freed" {
    start_server -v
    start_held concurrency.py --clients 20 --size 10000
    local first=$HELD_PID first_in=$HELD_IN first_out=$HELD_OUT first_err=$HELD_ERR
    start_held backpressure.py --size 33554432
    stop_server
    local cause="the server exited with status $SERVER_STATUS on SIGTERM, expected 0"
    [[ $SERVER_STATUS == timeout ]] && cause="the server did not exit within 2 s of SIGTERM: the loop never sees the stop"
    [[ $SERVER_STATUS == 143 ]] && cause="SIGTERM killed the server: it has no handler (on_stop_signals: set a flag, leave the loop, free everything, return 0)"
    [[ $SERVER_STATUS == 0 ]] || report_failure --cause "$cause" \
        "SIGTERM: expected exit status 0 within 2 s, got '$SERVER_STATUS'. stderr:" "$(tail -12 "$SERVER_ERR")"
    local st
    st=$(last_stats)
    [[ $st == *"stats: connections 0"* ]] || report_failure --cause "at exit the connections are not all closed before the final stats" \
        "with -v the server prints its stats at exit, after closing every connection; expected 'stats: connections 0', got:" "$st"
    local busy
    busy=$(busy_classes "$st")
    [[ -z $busy ]] || report_failure --cause "buffers leak at exit: closing a connection must give its buffers back" \
        "at exit, buffers are still in use (leaked):" "$busy"
    release_held || true
    HELD_PID=$first HELD_IN=$first_in HELD_OUT=$first_out HELD_ERR=$first_err
    release_held || true
}
