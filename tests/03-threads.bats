#!/usr/bin/env bats
# Lab 03: the thread-per-connection uppercase-echo server.
#
#   bats tests/03-threads.bats                       the reference solution
#   NETLABS_TREE=labs bats tests/03-threads.bats     your labs/ build
#   SERVER=/path/to/server bats tests/03-threads.bats
#   NETLABS_VARIANT=thread bats --filter-tags tsan tests/03-threads.bats
#                                                    the ThreadSanitizer build
#
# Tags: echo (the service), design (this lab's mechanism: a detached thread
# per client, the fd passed by value, nothing leaked), robust (bad clients),
# tsan (also run on the ThreadSanitizer build by `make test`).

load lib/netlabs

# ---------- helpers for this lab -----------------------------------------------------

# Threads of an idle server: 1, the main thread.  A ThreadSanitizer build
# also runs the sanitizer's own background thread once any thread exists.
idle_threads() {
    if grep -qa __tsan_init "$(server_bin)"; then echo 2; else echo 1; fi
}
threads_at_most() { (($(thread_count "$SERVER_PID") <= $1)); }
fds_back_to() { (($(fd_count "$SERVER_PID") <= $1)); }
kib() { proc_field "$SERVER_PID" "$1"; } # VmSize / VmRSS in KiB

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

# bats test_tags=echo,tsan
@test "echo: 30 clients one after another are each served" {
    start_server
    expect_pass many.py --count 30
}

# ---------- robust ----------------------------------------------------------------

# bats test_tags=robust,tsan
@test "robust: clients that reset (RST) mid-stream do not kill the server; the next is served" {
    start_server
    expect_pass rst.py --size 4194304 --count 3
    assert_server_alive
    expect_pass echo.py --size 4096
}

# bats test_tags=robust,tsan
@test "robust: clients that hang up before their echo arrives do not kill the server (SIGPIPE)" {
    start_server
    expect_pass hangup.py --count 10
    assert_server_alive
}

# bats test_tags=robust
@test "robust: out of fds (EMFILE), the server survives without spinning and serves again once fds free up" {
    local PRE=(prlimit --nofile=64 --)
    start_server
    # 100 connections, more than 64 fds allow: accept() fails with EMFILE
    # while the rest wait in the queue.
    start_held hold_idle.py --count 100
    assert_server_alive
    local t0 t1
    t0=$(cpu_ticks "$SERVER_PID")
    sleep 2 # a measurement window, not a synchronisation
    t1=$(cpu_ticks "$SERVER_PID")
    assert_server_alive
    release_held || true
    ((t1 - t0 <= 20)) || report_failure \
        --cause "out of fds, the accept loop spins: accept() fails with EMFILE at once while the connection stays queued, so pause before retrying (Accept() in common/ does)" \
        "expected the server, out of fds, to wait quietly: it used $((t1 - t0)) ticks (1/100 s) of CPU in 2 s." \
        "reproduce: prlimit --nofile=64 -- $(server_bin) -p 0 & python3 tests/clients/hold_idle.py --port PORT --count 100 --hold"
    # The held connections are gone: their threads end and free fds.
    expect_pass many.py --count 20 --parallel 4
    assert_server_alive
}

# bats test_tags=robust
@test "robust: a client that sends one byte at a time is served byte by byte" {
    start_server
    expect_pass trickle.py --count 100
}

# bats test_tags=robust,tsan
@test "robust: clients resetting mid-stream do not disturb 5 clients connected meanwhile" {
    start_server
    start_held concurrency.py --clients 5 --final
    expect_pass rst.py --size 1048576 --count 3
    expect_released "the 5 held clients were disturbed by the resets:"
    assert_server_alive
}

# ---------- design -----------------------------------------------------------------

# bats test_tags=design,tsan
@test "design: 100 clients at once, each with its own random payload, each gets exactly its own bytes" {
    start_server
    # 100 connects in a burst: the accept loop hands out fds faster than
    # the threads start, which is when an fd passed by address goes wrong.
    expect_pass concurrency.py --clients 100 --size 8192 --rounds 3
}

# bats test_tags=design,tsan
@test "design: 200 clients from 4 connecting threads, coming and going, are each served" {
    start_server
    expect_pass many.py --count 200 --parallel 4
}

# bats test_tags=design,tsan
@test "design: the thread count rises with clients and returns to one when they leave" {
    start_server
    local idle held
    idle=$(idle_threads)
    start_held concurrency.py --clients 20
    held=$(thread_count "$SERVER_PID")
    expect_released "expected: 20 clients held, then released, each served; they were not:"
    ((held >= 20 + 1)) || report_failure \
        --cause "the server does not start a thread per connection: $held threads while 20 clients were connected (pthread_create() one per accepted connection; the thread serves it)" \
        "expected at least 21 threads (main + one per client) while 20 clients were connected, found $held." \
        "$(repro "python3 tests/clients/concurrency.py --port PORT --clients 20 --hold; grep Threads /proc/PID/status")"
    poll_progress 5000 "threads_at_most $idle" thread_count "$SERVER_PID" || report_failure \
        --cause "a client's thread does not end when its client leaves: it must close its connection and return" \
        "after the 20 clients left the server still has $(thread_count "$SERVER_PID") threads (expected $idle)." \
        "$(repro "python3 tests/clients/concurrency.py --port PORT --clients 20; grep Threads /proc/PID/status")"
}

# bats test_tags=design
@test "design: memory does not grow over 500 sequential connections (threads are detached)" {
    start_server
    expect_pass many.py --count 20
    poll_progress 5000 "threads_at_most $(idle_threads)" thread_count "$SERVER_PID" || true
    local size0 rss0 size1 rss1
    size0=$(kib VmSize) rss0=$(kib VmRSS)
    expect_pass many.py --count 500
    poll_progress 5000 "threads_at_most $(idle_threads)" thread_count "$SERVER_PID" || true
    size1=$(kib VmSize) rss1=$(kib VmRSS)
    # A thread nobody joins or detaches keeps its stack (8 MiB of address
    # space) after it returns: 500 of them are ~4 GiB.  Detached threads'
    # stacks are freed or reused, so the growth stays small.
    local dsize=$((size1 - size0)) drss=$((rss1 - rss0))
    ((dsize < 131072 && drss < 65536)) || report_failure \
        --cause "finished threads keep their stacks: a joinable thread that is never joined keeps its 8 MiB stack, so create the threads detached (or pthread_detach them)" \
        "after 500 more connections VmSize grew by $((dsize / 1024)) MiB ($size0 -> $size1 KiB), VmRSS by $((drss / 1024)) MiB ($rss0 -> $rss1 KiB); expected less than 128 MiB and 64 MiB." \
        "$(repro "python3 tests/clients/many.py --port PORT --count 500; grep -E 'VmSize|VmRSS' /proc/PID/status")"
}

# bats test_tags=design
@test "design: the server's fd count is flat after 300 connections" {
    start_server
    local before after
    before=$(fd_count "$SERVER_PID")
    expect_pass many.py --count 300
    poll_until 2000 fds_back_to "$before" || {
        after=$(fd_count "$SERVER_PID")
        report_failure --cause "a client's thread does not close its connection when it is done (there is only one copy of the fd: close(connfd) before the thread returns)" \
            "the server had $before open fds before 300 connections and $after after (expected $before)." \
            "$(repro "python3 tests/clients/many.py --port PORT --count 300; ls /proc/PID/fd | wc -l")"
    }
}
