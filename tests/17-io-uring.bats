#!/usr/bin/env bats
# Lab 17: the uppercase echo as a completion-based server on io_uring.
#
#   bats tests/17-io-uring.bats                       the reference solution
#   NETLABS_TREE=labs bats tests/17-io-uring.bats     your labs/ build
#   SERVER=/path/to/server bats tests/17-io-uring.bats
#
# Tags: echo (the service), design (this lab's mechanism: the ring, what
# goes through it, batching, multishot, provided buffers), robust (bad
# clients), scale.  Lab 07's scenarios (tests/lib/scenarios_nonblocking.bash)
# run unchanged against this server: the way it waits changed, not what a
# client may expect.
#
# Where io_uring cannot be used (sysctl kernel.io_uring_disabled, a
# seccomp filter that refuses io_uring_setup, as in many containers, or a
# kernel without it) every test is skipped with the reason: the probe is
# made here, without your code.

load lib/netlabs
load lib/scenarios_nonblocking

# Probed once per file; each test skips in setup (bats before 1.10 cannot
# skip from setup_file).
setup_file() {
    export UR_UNAVAILABLE
    UR_UNAVAILABLE=$(uring_unavailable) || UR_UNAVAILABLE=
}

setup() {
    netlabs_setup
    require_pkgs liburing
    [[ -z $UR_UNAVAILABLE ]] || skip "$UR_UNAVAILABLE"
}

# ---------- helpers for this lab --------------------------------------------------

# uring_unavailable: prints why io_uring cannot be used here and returns 0,
# or returns 1 when it can.  Asks the kernel directly: io_uring_setup
# (syscall 425 on every architecture) for a 1-entry ring, then closes it.
uring_unavailable() {
    local d
    d=$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null) || d=0
    if [[ $d == 2 ]]; then
        echo "io_uring is disabled on this machine (sysctl kernel.io_uring_disabled = 2): lab 17 cannot run here"
        return 0
    fi
    local err
    err=$(python3 - <<'EOF'
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
params = ctypes.create_string_buffer(120)  # struct io_uring_params
fd = libc.syscall(425, 1, params)
if fd < 0:
    e = ctypes.get_errno()
    print("%s (%s)" % (errno.errorcode.get(e, str(e)), os.strerror(e)))
    sys.exit(1)
os.close(fd)
EOF
    ) && return 1
    case $err in
    ENOSYS*) echo "io_uring_setup fails with $err: this kernel has no io_uring, or a seccomp filter (a container's) refuses it: lab 17 cannot run here" ;;
    EPERM*)
        if [[ $d == 1 ]]; then
            echo "io_uring_setup fails with $err: sysctl kernel.io_uring_disabled = 1 lets only root and the group kernel.io_uring_group use io_uring: lab 17 cannot run here"
        else
            echo "io_uring_setup fails with $err: a seccomp filter (a container's) refuses io_uring: lab 17 cannot run here"
        fi
        ;;
    *) echo "io_uring_setup fails with ${err:-an error}: lab 17 cannot run here" ;;
    esac
    return 0
}

# uring_fd: the server's io_uring fd (anon_inode:[io_uring]), or nothing.
uring_fd() {
    local f
    for f in /proc/"$SERVER_PID"/fd/*; do
        [[ $(readlink "$f" 2>/dev/null) == 'anon_inode:[io_uring]' ]] && { echo "${f##*/}"; return 0; }
    done
    return 0
}

# sq_head FD: how many SQEs the kernel has taken from the server's ring so
# far (SqHead in /proc/PID/fdinfo/FD), or nothing if not shown.
sq_head() {
    awk '/^SqHead:/ {print $2}' "/proc/$SERVER_PID/fdinfo/$1" 2>/dev/null
}

fds_at_least() { (($(fd_count "$SERVER_PID") >= $1)); }
fds_at_most() { (($(fd_count "$SERVER_PID") <= $1)); }

# The server's threads, without the kernel's io_uring workers (iou-wrk-*,
# threads the kernel may add to the process for requests it cannot
# complete without blocking; not the program's own).
own_threads() {
    cat /proc/"$SERVER_PID"/task/*/comm 2>/dev/null | grep -vc '^iou-' || true
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
    expect_pass --hint "a short send taken as complete (send the rest of the buffer before anything newer), or a receive buffer reused before its bytes were copied" \
        burst.py --size 8388608
}

# bats test_tags=echo
@test "echo: 50 clients at once each get exactly their own bytes back" {
    start_server
    expect_pass concurrency.py --clients 50 --size 20000 --rounds 3
}

# ---------- design: lab 07's scenarios -----------------------------------------------

# bats test_tags=design
@test "design: one write of 1 MiB, then the client only reads: it all comes back (the receive stays armed)" {
    start_server
    CLIENT_TIMEOUT=10 expect_pass --hint "the receive was not re-armed: a multishot recv whose completion lacks IORING_CQE_F_MORE has ended (it ran out of buffers, or the CQ was full), and a single-shot one ends every time" \
        burst.py --size 1048576 --write-first
}

# bats test_tags=design
@test "design: 200 connections queued at once are all accepted and served (the accept stays armed)" {
    nb_connect_burst 200
}

# bats test_tags=design
@test "design: 32 MiB then shutdown(SHUT_WR): every byte comes back, then EOF (flush before close)" {
    nb_halfclose_flush 33554432 settle
}

# bats test_tags=design
@test "design: idle with 1,000 connections, the server uses almost no CPU over 2 s" {
    nb_idle_cpu 1000
}

# bats test_tags=design
@test "design: SIGTERM with clients connected and output unsent: exit 0, nothing leaked" {
    nb_sigterm_clean_exit --pending --valgrind
}

# ---------- design: io_uring ------------------------------------------------------

# bats test_tags=design
@test "design: while clients echo, the server's only syscall is io_uring_enter (no epoll, accept, read/recv, write/send)" {
    start_server
    local trace=$BATS_TEST_TMPDIR/strace.out
    strace_attach "$trace"
    local st=0 out
    out=$(run_client concurrency.py --clients 3 --size 20000 --rounds 3 2>&1) || st=$?
    strace_detach
    local calls bad
    calls=$(grep -oE '^[0-9]+ +[a-z_0-9]+\(' "$trace" | sed -E 's/^[0-9]+ +//; s/\($//' | sort | uniq -c | sort -rn)
    bad=$(grep -oE '^[0-9]+ +(epoll_[a-z_0-9]*|accept4?|read|readv|recv|recvfrom|recvmsg|recvmmsg|write|writev|send|sendto|sendmsg|sendmmsg|poll|ppoll|select|pselect6)\(' "$trace" |
        sed -E 's/^[0-9]+ +//; s/\($//' | sort | uniq -c | sort -rn)
    [[ -z $bad ]] || report_failure --cause "the server makes the socket syscalls itself ($(tr -s ' \n' ' ' <<<"$bad")): in this lab every accept, receive and send is a request in the submission queue, and the loop's one syscall is io_uring_enter" \
        "expected only io_uring_enter (and nothing from the list above) while 3 clients echoed; strace -f -p PID counted:" "$calls" \
        "reproduce: $(server_cmd) & strace -f -p \$! while python3 tests/clients/concurrency.py --port PORT --clients 3 --size 20000 --rounds 3"
    grep -qE '^[0-9]+ +io_uring_enter\(' "$trace" || report_failure --cause "the server never called io_uring_enter while clients were served: it does not wait for completions through io_uring" \
        "expected io_uring_enter calls while 3 clients echoed; strace -f -p PID counted:" "${calls:-no syscall at all}"
    ((st == 0)) || report_failure "expected: concurrency.py --clients 3 to pass while strace watched; it exited $st:" "$out" "server: $(server_cmd)"
}

# bats test_tags=design
@test "design: 100 messages arriving at once are answered in a batch: many SQEs per io_uring_enter" {
    start_server
    local trace=$BATS_TEST_TMPDIR/strace.out
    strace_attach "$trace" -ttt -e trace=io_uring_enter
    local st=0 out
    # The client stops the server (SIGSTOP) while every connection sends,
    # so one turn of the loop finds up to 100 receives completed; --mark
    # says when that was, and only that part of the trace counts.
    out=$(run_client ur_flood.py --count 100 --size 1000 --mark 2>&1) || st=$?
    strace_detach
    ((st == 0)) || report_failure "expected: ur_flood.py --count 100 --size 1000 to pass; it exited $st:" "$out" "server: $(server_cmd)"
    local from to stats n sqes max
    read -r _ from to < <(grep '^flood ' <<<"$out")
    [[ -n $to ]] || fail "ur_flood.py --mark printed no 'flood FROM TO' line: $out"
    # PID TIME io_uring_enter(fd, to_submit, min_complete, flags, ...)
    stats=$(awk -v from="$from" -v to="$to" '/io_uring_enter\(/ && $2 >= from && $2 <= to {
            split($0, a, ","); n++; s += a[2]; if (a[2] + 0 > m) m = a[2] + 0 }
        END { print n + 0, s + 0, m + 0 }' "$trace")
    read -r n sqes max <<<"$stats"
    ((n > 0)) || report_failure --cause "the server never called io_uring_enter while the 100 messages were answered" \
        "expected io_uring_enter calls in strace -f -ttt -e trace=io_uring_enter -p PID between $from and $to; the trace:" "$(head -10 "$trace")"
    ((max >= 10)) || report_failure --cause "each io_uring_enter submits at most $max SQE(s): the server submits operation by operation (io_uring_submit() after each io_uring_get_sqe()). Queue every SQE a turn of the loop produces, then submit them all with the one io_uring_enter that also waits (io_uring_submit_and_wait)" \
        "expected, after 100 messages arrived at once, one io_uring_enter to submit many SQEs (at least 10 of the 100 sends); while they were answered, strace saw $n calls submitting $sqes SQEs, at most $max in one." \
        "reproduce: $(server_cmd) & strace -f -e trace=io_uring_enter -p \$! while NETLABS_SERVER_PID=\$! python3 tests/clients/ur_flood.py --port PORT --count 100 --size 1000"
}

# bats test_tags=design
@test "design: receive buffers come from a provided-buffer ring (IORING_REGISTER_PBUF_RING)" {
    command -v strace >/dev/null || skip "strace is not installed"
    local trace=$BATS_TEST_TMPDIR/strace.out
    # (strace runs the server: SERVER_PID is strace's; teardown ends both)
    local PRE=(strace -f -e trace=io_uring_setup,io_uring_register -o "$trace")
    START_TIMEOUT=10 start_server
    expect_pass echo.py --size 65536
    if ! grep -qE 'io_uring_setup\(' "$trace"; then
        grep -q 'PTRACE\|ptrace' "$SERVER_ERR" && skip "strace cannot trace here: $(head -c 200 "$SERVER_ERR")"
        report_failure --cause "the server never called io_uring_setup (io_uring_queue_init)" \
            "expected io_uring_setup in strace -f -e trace=io_uring_setup,io_uring_register; the trace:" "$(head -10 "$trace")"
    fi
    grep -qE 'io_uring_register\([0-9]+, IORING_REGISTER_PBUF_RING' "$trace" || report_failure \
        --cause "no provided-buffer ring is registered (io_uring_register_buf_ring): each receive must pick its buffer from the ring (IOSQE_BUFFER_SELECT and buf_group), so that idle connections pin no buffer" \
        "expected io_uring_register(..., IORING_REGISTER_PBUF_RING, ...) before the 'listening on' line; strace saw:" "$(head -10 "$trace")" \
        "reproduce: strace -f -e trace=io_uring_setup,io_uring_register $(server_bin) -p 0"
}

# bats test_tags=design
@test "design: multishot accept: 200 connections cost one accept submission (SqHead in /proc)" {
    ulimit -n 20000
    start_server
    local ufd before after
    ufd=$(uring_fd)
    [[ -n $ufd ]] || report_failure --cause "the server has no io_uring instance (no anon_inode:[io_uring] among its fds)" \
        "expected an io_uring fd; found: $(ls -l /proc/"$SERVER_PID"/fd 2>/dev/null | tail -n +2 | awk '{print $9, $11}' | tr '\n' ' ')"
    before=$(sq_head "$ufd")
    [[ -n $before ]] || skip "this kernel's /proc/PID/fdinfo does not show SqHead"
    local fds0
    fds0=$(fd_count "$SERVER_PID")
    start_held hold_idle.py --count 200
    poll_until 5000 fds_at_least $((fds0 + 200)) || true
    after=$(sq_head "$ufd")
    local fds1
    fds1=$(fd_count "$SERVER_PID")
    release_held || true
    ((fds1 >= fds0 + 200)) || report_failure --cause "the server did not accept the 200 connections (its fd count went from $fds0 to $fds1)" \
        "expected 200 idle connections to be accepted within 5 s."
    local per=$(((after - before) * 100 / 200))
    ((after - before <= 260)) || report_failure --cause "$((after - before)) SQEs for 200 new idle connections (${per:0:-2}.${per: -2} each): one accept submitted per connection. One multishot accept (io_uring_prep_multishot_accept) serves every connection while its completions carry IORING_CQE_F_MORE; each connection then costs its one receive" \
        "expected at most 260 SQEs (one receive per connection, plus a few) while 200 idle clients connected; SqHead in /proc/$SERVER_PID/fdinfo/$ufd went from $before to $after." \
        "reproduce: $(server_cmd) & watch SqHead in /proc/\$!/fdinfo/FD while python3 tests/clients/hold_idle.py --port PORT --count 200 --hold"
}

# bats test_tags=design
@test "design: 200 connections' data arriving at once (more than the buffer ring holds): every byte comes back (-ENOBUFS is a pause)" {
    start_server
    expect_pass --hint "a receive ended with -ENOBUFS (the provided-buffer ring ran dry) must be re-armed once buffers are back, not treated as an error; and each buffer goes back to the ring once its bytes are copied" \
        ur_flood.py --count 200 --size 65536
    assert_server_alive
}

# ---------- robust ----------------------------------------------------------------

# bats test_tags=robust
@test "robust: a client sends 64 MiB and reads nothing for 3 s: loses nothing, and others keep a low latency" {
    nb_slow_reader 67108864
}

# bats test_tags=robust
@test "robust: out of fds (prlimit --nofile=64): no crash, no spin, new clients served once fds free up" {
    nb_emfile_no_spin
}

# bats test_tags=robust
@test "robust: clients that reset (RST) mid-stream do not kill the server; the next is served" {
    start_server
    expect_pass --hint "a connection freed (or its fd closed) while one of its operations was still in flight: cancel what is in flight, and free it when the last completion has come back" \
        rst.py --size 4194304 --count 3
    assert_server_alive
    expect_pass echo.py --size 4096
}

# The same resets under valgrind (plain build): a connection freed while
# its receive or send is in flight does not crash the plain build, its
# completions just read freed memory, which only a memory checker sees.
# bats test_tags=robust
@test "robust: clients that reset (RST) mid-stream, under valgrind: no completion touches a freed connection" {
    require_valgrind
    local vlog=$BATS_TEST_TMPDIR/valgrind.log
    local PRE=(valgrind -q --leak-check=no --error-exitcode=42 --log-file="$vlog" --)
    START_TIMEOUT=30 start_server
    expect_pass --hint "a connection freed (or its fd closed) while one of its operations was still in flight: cancel what is in flight, and free it when the last completion has come back" \
        rst.py --size 1048576 --count 3
    expect_pass echo.py --size 4096
    SERVER_STOPPED=$SERVER_PID
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait_exit "$SERVER_PID" 20 || true
    SERVER_STATUS=$WAIT_STATUS
    [[ $SERVER_STATUS == 0 ]] || report_failure \
        --cause "a completion came back for a connection already freed (or its buffer): free a connection, and close its fd, only once nothing of it is in flight (cancel, then wait for the last completion)" \
        "expected no memory error under valgrind while 3 clients reset mid-stream, then exit 0 on SIGTERM; got exit status $SERVER_STATUS (42: valgrind found errors; 'timeout': still running). valgrind says:" \
        "$(grep -v '^==[0-9]*== *$' "$vlog" 2>/dev/null | head -30 | sed 's/^/  /')" \
        "reproduce: valgrind $(server_cmd) & python3 tests/clients/rst.py --port PORT --size 1048576 --count 3; kill -TERM %1"
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
@test "scale: 5,000 simultaneous clients in one thread, no children, fds back to where they were" {
    ulimit -n 20000
    start_server
    local before=$(fd_count "$SERVER_PID")
    start_held concurrency.py --clients 5000
    local threads kids
    threads=$(own_threads)
    kids=$(children_of "$SERVER_PID" || true) # (children_of can return 1 when it found none)
    expect_released "expected: the 5000 clients, once released, to leave cleanly; they did not:"
    [[ $threads == 1 ]] || report_failure --cause "the server runs $threads threads of its own: this lab serves every client from one thread, through one ring" \
        "expected 1 thread (besides the kernel's iou-wrk workers) while 5000 clients were connected, found $threads"
    [[ -z $kids ]] || report_failure --cause "the server forks: this lab serves every client from one process" \
        "expected no child processes, found:" "$kids"
    expect_pass echo.py --size 1000
    # The server sees the last EOFs on its own time: a bounded wait while
    # the count keeps falling.
    poll_progress 5000 "fds_at_most $before" fd_count "$SERVER_PID" || report_failure \
        --cause "the server does not close the connections of clients that leave (a receive that returned 0, or an error, must end in a close once nothing of that connection is in flight)" \
        "expected the server's fd count back at $before once the 5000 clients left (and a new one came and went), found $(fd_count "$SERVER_PID")"
}
