#!/usr/bin/env bats
# Lab 16: the uppercase echo on one lab 08 reactor per thread.
#
#   bats tests/16-multireactor.bats                       the reference solution
#   NETLABS_TREE=labs bats tests/16-multireactor.bats     your labs/ build
#   NETLABS_VARIANT=thread bats --filter-tags tsan tests/16-multireactor.bats
#   SERVER=/path/to/server bats tests/16-multireactor.bats
#
# Tags: echo (the service, in both modes), design (the loops: how many,
# who serves which connection, a clean stop), robust (lab 07's scenarios
# in both modes, bad clients), scale, tsan (also run on the
# ThreadSanitizer build by `make test`).
#
# The contract the tests read (labs/16-multireactor/README.md):
#   - `server [-p PORT] [-a ADDR] [-v] [-j N] [-m dispatch|reuseport]`;
#   - loop I runs in its own thread, named "loop I" (/proc/PID/task/TID/comm);
#     the server has N such threads plus the main thread;
#   - with -v, a loop that takes a connection logs "loop I tid T: connect ADDR:PORT";
#   - on SIGUSR1 every loop logs "loop I tid T: connections N accepted M".
# Which thread serves a connection is checked in /proc, not only taken
# from the log (tests/clients/mr_owner.py).

load lib/netlabs
load lib/scenarios_nonblocking

MODES=(dispatch reuseport)

# ---------- helpers for this lab --------------------------------------------------

# loop_threads: the names of the server's threads that are loops, sorted.
loop_threads() {
    cat /proc/"$SERVER_PID"/task/*/comm 2>/dev/null | grep -E '^loop [0-9]+$' | sort -V
}

# The threads besides the loops: main, and on a ThreadSanitizer build the
# sanitizer's own background thread.
others() {
    if grep -qa __tsan_init "$(server_bin)"; then echo 2; else echo 1; fi
}

# usr1_stats N: send SIGUSR1 and print the N "loop I tid T: connections ..."
# lines it produces (waits for them, at most 5 s).
usr1_stats() {
    local n=$1 before after i
    before=$(grep -c '^loop [0-9]* tid [0-9]*: connections ' "$SERVER_ERR") || true
    kill -USR1 "$SERVER_PID"
    for ((i = 0; i < 100; i++)); do
        after=$(grep -c '^loop [0-9]* tid [0-9]*: connections ' "$SERVER_ERR") || true
        ((after >= before + n)) && break
        sleep 0.05
    done
    ((after >= before + n)) || report_failure --cause "on SIGUSR1 each loop must print one line 'loop I tid T: connections N accepted M': the main thread reads the signal and wakes every loop through its eventfd, and each loop prints its own counters" \
        "sent SIGUSR1 to a server with $n loops; expected $n such lines on stderr within 5 s, got $((after - before)). stderr:" "$(tail -8 "$SERVER_ERR")" \
        "reproduce: $(server_cmd) -j $n & kill -USR1 \$!"
    grep '^loop [0-9]* tid [0-9]*: connections ' "$SERVER_ERR" | tail -n "$n" | sort -V
}

# A script that runs the server with extra arguments, for the scenarios
# that start their own server (nb_emfile_no_spin).
wrap_server() {
    local w=$BATS_TEST_TMPDIR/server-wrapped bin=$1
    shift
    printf '#!/bin/sh\nexec %q %s "$@"\n' "$bin" "$*" >"$w"
    chmod +x "$w"
    echo "$w"
}

# ---------- echo --------------------------------------------------------------------

# bats test_tags=echo,tsan
@test "echo: every byte value comes back uppercased, in both modes, on 3 loops" {
    local m
    for m in "${MODES[@]}"; do
        start_server -j 3 -m "$m"
        expect_pass --hint "-m $m: the echo on several loops (each loop is lab 08's reactor with its own pool)" echo.py --size 262144
        stop_server
        [[ $SERVER_STATUS == 0 ]] || report_failure "-m $m: expected exit 0 on SIGTERM, got $SERVER_STATUS" "stderr:" "$(tail -5 "$SERVER_ERR")"
    done
}

# bats test_tags=echo,tsan
@test "echo: 200 clients at once each get exactly their own bytes back, in both modes" {
    local m
    for m in "${MODES[@]}"; do
        start_server -j 4 -m "$m"
        expect_pass --hint "-m $m: connections mixed up between loops (a connection must be read and written by one loop only)" \
            concurrency.py --clients 200 --size 5000 --rounds 2
    done
}

# ---------- design: the loops ---------------------------------------------------------

# bats test_tags=design
@test "design: -j N runs N loop threads named 'loop 0'..'loop N-1' plus main; the default is the CPUs we may use" {
    local m n want got
    for m in "${MODES[@]}"; do
        for n in 1 3; do
            start_server -j "$n" -m "$m"
            want=$((n + $(others)))
            got=$(thread_count "$SERVER_PID")
            [[ $got == "$want" ]] || report_failure --cause "-j $n must start exactly $n loop threads, besides the main thread (which accepts in dispatch mode and reads the signals)" \
                "-m $m -j $n: expected $want threads in /proc/$SERVER_PID/status, found $got; threads: $(cat /proc/"$SERVER_PID"/task/*/comm | tr '\n' ',')" \
                "reproduce: $(server_cmd) -j $n -m $m & grep Threads /proc/\$!/status"
            got=$(loop_threads | tr '\n' ',')
            want=$(for ((i = 0; i < n; i++)); do echo "loop $i"; done | tr '\n' ',')
            [[ $got == "$want" ]] || report_failure --cause "name each loop's thread 'loop I' (pthread_setname_np(pthread_self(), ...) in the thread), I from 0" \
                "-m $m -j $n: expected the threads '$want' in /proc/$SERVER_PID/task/*/comm, found '$got'"
            stop_server
        done
    done
    # No -j: one loop per CPU this process may use (sched_getaffinity), not
    # per CPU of the machine: under taskset -c 0, one.
    local PRE=(taskset -c 0)
    start_server
    want=$((1 + $(others)))
    got=$(thread_count "$SERVER_PID")
    [[ $got == "$want" ]] || report_failure --cause "without -j, run one loop per CPU the process may use: CPU_COUNT of sched_getaffinity(), not sysconf(_SC_NPROCESSORS_ONLN)" \
        "under 'taskset -c 0' (one CPU allowed), expected 1 loop + main = $want threads, found $got" \
        "reproduce: taskset -c 0 $(server_cmd) & grep Threads /proc/\$!/status"
    stop_server
    PRE=()
    start_server
    want=$(($(nproc) + $(others)))
    got=$(thread_count "$SERVER_PID")
    [[ $got == "$want" ]] || report_failure --cause "without -j, run one loop per CPU the process may use (sched_getaffinity)" \
        "with $(nproc) CPUs allowed (nproc), expected $(nproc) loops + main = $want threads, found $got" \
        "reproduce: $(server_cmd) & grep Threads /proc/\$!/status"
}

# bats test_tags=design
@test "design: -m dispatch hands 40 connections round-robin, 10 to each of 4 loops, each served by its loop for life (/proc)" {
    start_server -v -j 4 -m dispatch
    expect_pass --hint "dispatch: the acceptor hands each new connection to the next loop (round-robin) through that loop's queue and a write to its eventfd; the loop adopts it and serves it until it closes" \
        mr_owner.py --pid "$SERVER_PID" --log "$SERVER_ERR" --clients 40 --loops 4 --exact
    local st tids t
    st=$(usr1_stats 4)
    for i in 0 1 2 3; do
        grep -qE "^loop $i tid [0-9]+: connections [0-9]+ accepted 10$" <<<"$st" || report_failure \
            --cause "each loop counts the connections it took ('accepted'), and prints its own count on SIGUSR1" \
            "after 40 connections to 4 loops, round-robin, expected 'loop $i tid T: connections N accepted 10' on SIGUSR1; got:" "$st"
    done
    tids=$(sed -E 's/^loop [0-9]+ tid ([0-9]+):.*/\1/' <<<"$st")
    for t in $tids; do
        [[ -d /proc/$SERVER_PID/task/$t ]] || report_failure --cause "print the loop's own thread id (syscall(SYS_gettid) called in the loop's thread)" \
            "SIGUSR1's line names tid $t, which is not a thread of the server (/proc/$SERVER_PID/task: $(ls /proc/"$SERVER_PID"/task | tr '\n' ' '))" "$st"
    done
}

# bats test_tags=design
@test "design: -m reuseport: 4 listening sockets on one port; 100 connections reach every loop, each served by its loop (/proc)" {
    start_server -v -j 4 -m reuseport
    local hexport listeners
    hexport=$(printf '%04X' "$SERVER_PORT")
    # State 0A is LISTEN in /proc/net/tcp.
    listeners=$(awk -v p=":$hexport" '$2 ~ p"$" && $4 == "0A"' /proc/net/tcp | wc -l)
    ((listeners == 4)) || report_failure --cause "reuseport: each loop opens its own listening socket on the same port, with SO_REUSEPORT set before bind() on every one" \
        "-j 4 -m reuseport: expected 4 listening sockets on port $SERVER_PORT in /proc/net/tcp, found $listeners" \
        "reproduce: $(server_cmd) -j 4 -m reuseport & ss -ltn"
    expect_pass --hint "reuseport: every loop accepts on its own listener; the kernel spreads connections over the listeners by a hash of addresses and ports" \
        mr_owner.py --pid "$SERVER_PID" --log "$SERVER_ERR" --clients 100 --loops 4
    local st sum
    st=$(usr1_stats 4)
    sum=$(sed -nE 's/^loop [0-9]+ tid [0-9]+: connections [0-9]+ accepted ([0-9]+)$/\1/p' <<<"$st" | awk '{ s += $1 } END { print s + 0 }')
    ((sum == 100)) || report_failure --cause "each loop counts the connections it accepted and prints the count on SIGUSR1" \
        "after 100 connections, expected the 4 loops' 'accepted' counts to add up to 100, got $sum:" "$st"
}

# bats test_tags=design,tsan
@test "design: SIGTERM in dispatch mode with clients connected and output unsent: exit 0, every loop joined, nothing leaked" {
    start_server -j 3 -m dispatch
    nb_sigterm_clean_exit --pending
}

# bats test_tags=design,tsan
@test "design: SIGTERM in reuseport mode with clients connected and output unsent: exit 0, every loop joined, nothing leaked" {
    start_server -j 3 -m reuseport
    nb_sigterm_clean_exit --pending
}

# bats test_tags=design
@test "design: SIGTERM under valgrind (default mode and -j): no block in use, no fd left open" {
    require_valgrind
    nb_sigterm_clean_exit --valgrind
}

# bats test_tags=design
@test "design: the command line: bad -j and -m values exit 2 with a usage line; -j 2 -m reuseport runs 2 loops" {
    local bin args st
    bin=$(server_bin)
    for args in "-j 0" "-j 257" "-j x" "-j 2x" "-j -1" "-j" "-m" "-m fork" "-m DISPATCH" "-p 70000"; do
        st=0
        # shellcheck disable=SC2086
        timeout 5 "$bin" -p 0 $args >/dev/null 2>"$BATS_TEST_TMPDIR/usage.err" </dev/null || st=$?
        ((st == 2)) && grep -qi usage "$BATS_TEST_TMPDIR/usage.err" || fail "$(printf '%s\n' \
            "'$bin -p 0 $args': expected a usage line on stderr and exit status 2; got status $st$([[ $st == 124 ]] && echo " (still running after 5 s: it started a server)")" \
            "  stderr: $(head -c 300 "$BATS_TEST_TMPDIR/usage.err")")"
    done
    start_server -j 2 -m reuseport
    [[ $(loop_threads | wc -l) == 2 ]] || report_failure "'-j 2 -m reuseport': expected 2 loop threads, found: $(loop_threads | tr '\n' ',')"
    expect_pass echo.py --size 4096
}

# ---------- lab 07's scenarios, in both modes -----------------------------------------

# bats test_tags=robust
@test "robust: one write of 1 MiB, then the client only reads (both modes): it all comes back" {
    local m
    for m in "${MODES[@]}"; do
        start_server -j 2 -m "$m"
        nb_one_write_burst
    done
}

# bats test_tags=robust,tsan
@test "robust: 200 connections queued behind one edge (both modes) are all accepted and served" {
    local m
    for m in "${MODES[@]}"; do
        start_server -j 2 -m "$m"
        nb_connect_burst 200
    done
}

# bats test_tags=robust
@test "robust: 8 MiB then shutdown(SHUT_WR) (both modes): every byte comes back, then EOF" {
    local m
    for m in "${MODES[@]}"; do
        start_server -j 2 -m "$m"
        nb_halfclose_flush
    done
}

# bats test_tags=robust
@test "robust: EPOLLET and non-blocking sockets, waiting in epoll_wait (both modes, -j 1)" {
    # One loop, so the one epoll instance holds all three clients.
    local m
    for m in "${MODES[@]}"; do
        rm -f "$BATS_TEST_TMPDIR/strace.fifo" # (the scenario's own, from the first mode)
        start_server -j 1 -m "$m"
        nb_strace_et_nonblock
    done
}

# bats test_tags=robust
@test "robust: a client sends 64 MiB and reads nothing for 3 s (both modes): others keep a low latency" {
    local m
    for m in "${MODES[@]}"; do
        start_server -j 2 -m "$m"
        nb_slow_reader 67108864
    done
}

# bats test_tags=robust
@test "robust: out of fds (prlimit --nofile=64) in both modes: no crash, no spin, served again once fds free up" {
    local m base
    base=$(server_bin)
    for m in "${MODES[@]}"; do
        SERVER=$(wrap_server "$base" -j 2 -m "$m") nb_emfile_no_spin
    done
}

# ---------- tsan, scale ---------------------------------------------------------------

# bats test_tags=robust,tsan
@test "robust: clients that come and go, reset and hang up on 4 loops while SIGUSR1 asks for stats: no race, exit 0" {
    local m
    for m in "${MODES[@]}"; do
        start_server -j 4 -m "$m"
        expect_pass many.py --count 300 --parallel 8
        usr1_stats 4 >/dev/null
        expect_pass hangup.py --count 10
        expect_pass concurrency.py --clients 50 --size 20000 --rounds 3
        stop_server
        [[ $SERVER_STATUS == 0 ]] || report_failure --cause "SIGTERM must stop every loop (its eventfd), join every thread, free everything and exit 0" \
            "-m $m -j 4: expected exit 0 on SIGTERM after the load, got $SERVER_STATUS" "stderr:" "$(tail -10 "$SERVER_ERR")"
    done
}

# bats test_tags=scale
@test "scale: 1,000 idle connections over the loops (both modes): almost no CPU over 2 s" {
    local m
    for m in "${MODES[@]}"; do
        start_server -j 2 -m "$m"
        nb_idle_cpu 1000
    done
}
