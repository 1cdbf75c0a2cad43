# scenarios_nonblocking.bash - whole test scenarios for the non-blocking
# servers (labs 07-epoll-et and 08-reactor, some also 06-epoll-lt).
#
#   load lib/netlabs
#   load lib/scenarios_nonblocking
#   @test "design: ..." { nb_connect_burst 200; }
#
# Each nb_* function runs one whole scenario and fails the test with a
# message whose first line is the likely cause (report_failure): what the
# clients or /proc saw missing when they can tell, else the mechanism the
# scenario is about.  Then what was expected, what happened and how to
# reproduce it.  Each starts the server itself (start_server) unless one is
# already running in this test (SERVER_PID set); nb_emfile_no_spin always
# starts its own, under prlimit.

# ---------- helpers ------------------------------------------------------------------

nb_ensure_server() {
    [[ -n ${SERVER_PID:-} ]] || start_server
}

# nb_client HINT SCRIPT ARGS...: run a client; on failure, fail with the
# likely cause (HINT, the usual bug behind this scenario, unless the
# client or /proc named a more specific one), its output and the
# reproduce lines.
nb_client() {
    local hint=$1
    shift
    expect_pass --hint "$hint" "$@"
}

# nb_blocking_cause: the connections the server holds that are blocking
# sockets, as a cause (nothing if every socket has O_NONBLOCK).
nb_blocking_cause() {
    local fd flags notnb=()
    for fd in $(nb_socket_fds); do
        flags=$(awk '/^flags:/ {print $2}' "/proc/$SERVER_PID/fdinfo/$fd" 2>/dev/null) || continue
        [[ -n $flags ]] || continue
        ((8#$flags & 04000)) || notnb+=("$fd")
    done
    ((${#notnb[@]} == 0)) ||
        echo "the server's sockets are blocking (no O_NONBLOCK on fds ${notnb[*]}): a read or write that would wait blocks the only thread. Use accept4(..., SOCK_NONBLOCK) or fcntl(F_SETFL, O_NONBLOCK)"
    return 0
}

# nb_cpu_over SECONDS: CPU ticks (1/100 s) the server burns in SECONDS of
# wall time.  The wait is a measurement window, not a synchronisation.
nb_cpu_over() {
    local t0 t1
    t0=$(cpu_ticks "$SERVER_PID")
    sleep "$1"
    t1=$(cpu_ticks "$SERVER_PID")
    echo $((t1 - t0))
}

# The fds of the server that are sockets, one number per line.
nb_socket_fds() {
    local f
    for f in /proc/"$SERVER_PID"/fd/*; do
        [[ $(readlink "$f" 2>/dev/null) == socket:* ]] && echo "${f##*/}"
    done
}

# ---------- the scenarios ----------------------------------------------------------------

# One send() of 1 MiB, then the client only reads.  A server that reads once
# per edge leaves bytes in the socket buffer and never hears about them again.
nb_one_write_burst() {
    nb_ensure_server
    # A stalled server is the failure here: no need to wait the full 20 s.
    CLIENT_TIMEOUT=10 nb_client "the server does not read until EAGAIN after an edge-triggered event: the rest of the burst sits in the socket buffer and no new event comes" \
        burst.py --size 1048576 --write-first
}

# ROUNDS (default 200) round trips of 1-512 bytes, one at a time, on one
# connection while strace records the server's reads.  Each request is one
# short segment, so the server's read returns less than it asked for, which
# means the socket is empty now (epoll(7)); a server that reads again to
# hear EAGAIN makes one useless syscall per round trip.  A few EAGAINs are
# honest (bytes that arrive between epoll_wait and the read are read early,
# and their own event then finds nothing); one per round trip is the loop.
nb_short_read_stops() {
    local rounds=${1:-200}
    nb_ensure_server
    local trace=$BATS_TEST_TMPDIR/reads.out
    strace_attach "$trace" -e trace=read,readv,recvfrom,recvmsg
    nb_client "the server stopped answering small round trips" shortread.py --rounds "$rounds"
    strace_detach
    local reads eagain
    reads=$(grep -cE '(read|readv|recvfrom|recvmsg)\(' "$trace") || true
    eagain=$(grep -cE '(read|readv|recvfrom|recvmsg)\(.*= -1 EAGAIN' "$trace") || true
    ((reads >= rounds)) || report_failure --cause "strace saw $reads reads for $rounds round trips: the server reads with a call this test does not watch (it watches read, readv, recvfrom and recvmsg)" \
        "expected at least one read per round trip in strace; the trace:" "$(head -20 "$trace")"
    ((eagain * 4 <= rounds)) || report_failure --cause "$eagain of the server's $reads reads in $rounds small round trips returned EAGAIN: after a read that returned less than it asked for, the socket is already empty (epoll(7)), so the next read can only say EAGAIN. Stop at a short read (unless the event has REACTOR_HUP: then read on to the EOF)" \
        "expected at most $((rounds / 4)) reads returning EAGAIN over $rounds one-at-a-time round trips (one read each); strace shows:" "$(grep -E 'EAGAIN' "$trace" | head -3)" "server: $(server_cmd)"
}

# SIZE (default 100) bytes and the FIN reach the server in one event (the
# client sends both while the server is stopped): the bytes must come back,
# then EOF.  Stopping at the short read without looking at the hang-up
# leaves the FIN unread, and no later event announces it.
nb_fin_with_data() {
    local size=${1:-100}
    nb_ensure_server
    nb_client "the server stops at a short read even when the event says the client hung up (REACTOR_HUP): the FIN arrived with the bytes, no new event will come for it, so read on until read() returns 0" \
        shortread.py --fin-with-data --size "$size"
}

# COUNT connections queued while the server is stopped (SIGSTOP), so that
# they all stand behind one edge of the listening socket; after SIGCONT,
# each must be accepted and served.  A server that accepts once per event
# serves one and leaves the rest waiting forever.
nb_connect_burst() {
    local count=${1:-200}
    nb_ensure_server
    kill -STOP "$SERVER_PID"
    # connect() completes in the kernel (the accept queue) while the
    # server is stopped; "ready" means all COUNT are queued.  (If this
    # fails, teardown kills the stopped server.)
    # --timeout 15 (after start_held's own): a stalled server fails in 15 s.
    start_held hold_idle.py --count "$count" --go --timeout 15
    kill -CONT "$SERVER_PID"
    local st=0
    release_held || st=$?
    if ((st != 0)); then
        report_failure --hint "the accept loop stops before EAGAIN (one accept per edge-triggered event)" \
            "expected: all $count connections queued at once to be accepted and echoed; the client exited $st:" \
            "$(head -20 <<<"$HELD_OUTPUT")" \
            "reproduce: $(server_cmd) & kill -STOP it, run python3 tests/clients/hold_idle.py --port PORT --count $count --go --hold, kill -CONT it, press Ctrl-D"
    fi
    assert_server_alive
}

# A client sends SIZE (64 MiB) and reads nothing for 3 s, then reads: every
# byte must come back.  Meanwhile probes on another connection (and on fresh
# connections) must each be answered within 1.5 s.
nb_slow_reader() {
    local size=${1:-67108864}
    nb_ensure_server
    nb_client "a write that blocks (or spins on EAGAIN) while one client does not read stalls everyone; or bytes dropped when send() says EAGAIN (keep them in the connection's output buffer)" \
        slow_reader.py --size "$size" --pause-read 3 --max-latency 1.5
    assert_server_alive
    nb_client "the server stopped serving after the slow client" echo.py --size 4096
}

# SIZE (default 8 MiB), then shutdown(SHUT_WR): every byte must come back,
# then EOF.  With "settle" (lab 07's single event loop) the client reads
# only once the server has handled the EOF (see halfclose.py): the kernel
# then holds at most the server's send buffer (4 MiB) and the client's
# receive buffer, so with 32 MiB most of the echo is still in the server's
# own output buffer, and a server that closes at EOF without flushing loses
# it every time.  Without it, the client reads as soon as the FIN is sent
# and the server's last flush may push everything into the kernel while it
# drains: the mistake is then caught only sometimes.  (A server with
# back-pressure, lab 08's 4 MiB high-water mark, may deadlock with a SIZE
# above its mark plus the kernel's buffers: the client reads nothing until
# it has sent everything.)
nb_halfclose_flush() {
    local size=${1:-8388608} settle=()
    [[ ${2:-} == settle ]] && settle=(--settle)
    nb_ensure_server
    nb_client "on EOF from the client, the server must first send everything still in the connection's output buffer (wait for EPOLLOUT), then close" \
        halfclose.py --size "$size" "${settle[@]}"
}

# strace the running server while 3 clients connect and echo: the
# connections must be registered with EPOLLET and made non-blocking
# (accept4 SOCK_NONBLOCK or fcntl O_NONBLOCK), and the server must wait in
# epoll_wait/epoll_pwait.  /proc confirms the state: every socket fd has
# O_NONBLOCK, and the epoll fd watches the connections with EPOLLET.
nb_strace_et_nonblock() {
    nb_strace_epoll et
}

# nb_strace_epoll et|lt: the same for either mode; "lt" requires epoll
# with NO EPOLLET on any fd (lab 06) and says nothing about O_NONBLOCK.
nb_strace_epoll() {
    local mode=$1
    nb_ensure_server
    local trace=$BATS_TEST_TMPDIR/strace.out
    strace_attach "$trace" -e trace=epoll_create,epoll_create1,epoll_ctl,epoll_wait,epoll_pwait,epoll_pwait2,accept,accept4,fcntl
    # The clients may fail (a server that blocks serves one and stalls):
    # look at what the server did anyway, and report the mechanism first.
    local held_failed=
    HELD_TRY=1 start_held concurrency.py --clients 3 || held_failed=$HELD_FAILED
    # /proc: the state the server left its fds in.
    local fd flags notnb=() epfd= etline
    for fd in $(nb_socket_fds); do
        flags=$(awk '/^flags:/ {print $2}' "/proc/$SERVER_PID/fdinfo/$fd" 2>/dev/null)
        [[ -n $flags ]] || continue
        ((8#$flags & 04000)) || notnb+=("$fd")
    done
    for fd in /proc/"$SERVER_PID"/fd/*; do
        [[ $(readlink "$fd") == 'anon_inode:[eventpoll]' ]] && epfd=${fd##*/}
    done
    etline=$(awk '/^tfd:/ {print}' "/proc/$SERVER_PID/fdinfo/${epfd:-none}" 2>/dev/null)
    [[ -n $held_failed ]] || release_held || true
    strace_detach
    local log
    log=$(cat "$trace")
    # The held client's own diagnosis, and what failed, follow any
    # mechanism found missing.
    local also=()
    [[ -z $held_failed ]] || also=("and the clients failed:" "$held_failed")
    # strace shows what the server did to each new connection, even if
    # /proc no longer shows it (the failed clients have left).
    local nb_seen=
    grep -qE 'accept4\(.*SOCK_NONBLOCK|fcntl\(.*F_SETFL.*O_NONBLOCK' <<<"$log" && nb_seen=1
    if [[ $mode != lt ]] && { ((${#notnb[@]} > 0)) || [[ -z $nb_seen ]]; }; then
        report_failure --cause "the connections are blocking sockets (${notnb[*]:+no O_NONBLOCK on fds ${notnb[*]}; }strace shows no accept4(..., SOCK_NONBLOCK) or fcntl(F_SETFL, O_NONBLOCK)): a read or write that would wait blocks the only thread. Use accept4(..., SOCK_NONBLOCK) or fcntl(F_SETFL, O_NONBLOCK)" \
            "expected every socket to be non-blocking (O_NONBLOCK in /proc/PID/fdinfo, and accept4(SOCK_NONBLOCK) or fcntl in strace) while 3 clients were connected." \
            "${also[@]}" "server: $(server_cmd)"
    fi
    [[ -n $epfd ]] || report_failure --cause "the server has no epoll instance: this lab waits with epoll_wait() (epoll_create1, epoll_ctl)" \
        "expected an epoll fd (anon_inode:[eventpoll]) among the server's fds; found none: $(ls -l /proc/"$SERVER_PID"/fd 2>/dev/null | tail -n +2 | awk '{print $9, $11}' | tr '\n' ' ')" \
        "${also[@]}"
    local n_et=0 n_all=0 ev
    # tfd lines: "tfd: N events: HEX data: ..."; EPOLLET is bit 31.
    while read -r _ _ _ ev _; do
        [[ -n $ev ]] || continue
        n_all=$((n_all + 1))
        (((16#$ev & 0x80000000) != 0)) && n_et=$((n_et + 1))
    done <<<"$etline"
    grep -qE 'epoll_(p?wait2?)\(' <<<"$log" || report_failure \
        --cause "the server does not wait in epoll_wait()/epoll_pwait() (strace saw no call)" \
        "expected the server to wait in epoll_wait/epoll_pwait (strace) while clients were served; the trace:" "$(head -20 <<<"$log")" "${also[@]}"
    if [[ $mode == lt ]]; then
        ((n_et == 0)) || report_failure --cause "EPOLLET in the level-triggered lab: $n_et of the $n_all fds in the interest list are edge-triggered" \
            "expected level-triggered epoll (no EPOLLET) in this lab; /proc/$SERVER_PID/fdinfo/$epfd shows:" "$etline" "${also[@]}"
        ! grep -qE 'epoll_ctl\(.*EPOLLET' <<<"$log" || report_failure --cause "EPOLLET in the level-triggered lab (strace shows it in epoll_ctl)" \
            "expected no EPOLLET in this lab's epoll_ctl calls; strace shows:" "$(grep -E 'epoll_ctl\(.*EPOLLET' <<<"$log" | head -5)" "${also[@]}"
        grep -qE 'epoll_ctl\(.*EPOLL_CTL_ADD' <<<"$log" || report_failure --cause "new connections are not added to the epoll interest list (no epoll_ctl(EPOLL_CTL_ADD) in strace)" \
            "expected epoll_ctl(..., EPOLL_CTL_ADD, ...) for the new connections in strace; the trace:" "$(head -20 <<<"$log")" "${also[@]}"
        ((n_all >= 4)) || [[ -n $held_failed ]] || report_failure --cause "connections are missing from the epoll interest list ($n_all fds listed, expected the listening socket and 3 clients)" \
            "expected the listening socket and the 3 connected clients in the epoll interest list; /proc/$SERVER_PID/fdinfo/$epfd lists $n_all fds:" "$etline"
        [[ -z $held_failed ]] || report_failure "$(head -1 <<<"$held_failed")" "$(tail -n +2 <<<"$held_failed")" "server: $(server_cmd)"
        return 0
    fi
    grep -qE 'epoll_ctl\(.*EPOLLET' <<<"$log" || report_failure --cause "the connections are not registered with EPOLLET (no EPOLLET in strace's epoll_ctl calls): this lab is edge-triggered" \
        "expected epoll_ctl(..., {events=...EPOLLET...}) for the new connections in strace; the trace:" "$(head -20 <<<"$log")" "${also[@]}"
    ((n_et >= 3)) || [[ -n $held_failed ]] || report_failure --cause "the connections are not registered with EPOLLET: /proc shows $n_et of $n_all fds edge-triggered" \
        "expected the 3 connected clients registered with EPOLLET; /proc/$SERVER_PID/fdinfo/$epfd shows:" "$etline" "server: $(server_cmd)"
    ((n_all >= 4)) || [[ -n $held_failed ]] || report_failure --cause "connections are missing from the epoll interest list ($n_all fds listed, expected the listening socket and 3 clients)" \
        "expected the listening socket and the 3 connected clients in the epoll interest list; /proc/$SERVER_PID/fdinfo/$epfd lists $n_all fds:" "$etline"
    [[ -z $held_failed ]] || report_failure "$(head -1 <<<"$held_failed")" "$(tail -n +2 <<<"$held_failed")" "server: $(server_cmd)"
}

# With COUNT (default 1000) idle connections held open, the server must use
# (almost) no CPU over 2 s: it sleeps in epoll_wait instead of spinning.
nb_idle_cpu() {
    local count=${1:-1000} ticks
    ulimit -n 20000
    nb_ensure_server
    start_held concurrency.py --clients "$count"
    ticks=$(nb_cpu_over 2)
    release_held || true
    ((ticks <= 20)) || report_failure \
        --cause "the idle server spins ($ticks ticks of CPU in 2 s with $count idle connections): EPOLLOUT left on while there is nothing to send (level-triggered, it is always ready), or a loop retrying on EAGAIN" \
        "expected an idle server (with $count idle connections) to sleep in epoll_wait: it used $ticks ticks (1/100 s) of CPU in 2 s." \
        "reproduce: $(server_cmd) & python3 tests/clients/concurrency.py --port PORT --clients $count --hold, then watch top"
}

# Under prlimit --nofile=64, 100 connections exhaust the server's fds: it
# must neither crash nor spin (accept failing with EMFILE on a listening
# socket that stays readable), and must serve new clients once they leave.
nb_emfile_no_spin() {
    local PRE=(prlimit --nofile=64 --)
    start_server
    start_held hold_idle.py --count 100
    local ticks
    ticks=$(nb_cpu_over 2)
    assert_server_alive
    release_held || true
    ((ticks <= 20)) || report_failure \
        --cause "out of fds, the server spins: accept() keeps failing with EMFILE while the listening socket stays readable. Keep a spare fd: close it, accept and close the client, reopen it (spare_fd_refuse)" \
        "expected the server, out of fds (EMFILE) with 100 connections pending, to wait quietly: it used $ticks ticks (1/100 s) of CPU in 2 s." \
        "reproduce: prlimit --nofile=64 -- $(server_bin) -p 0 & python3 tests/clients/hold_idle.py --port PORT --count 100 --hold"
    # The held connections are gone: the server must take new clients again.
    nb_client "after running out of fds the server stopped accepting (an EMFILE that ended the accept loop for good, or that killed the server?)" \
        many.py --count 20 --parallel 4
    assert_server_alive
}

# SIGTERM while clients are connected (with --pending, also one client that
# sent a lot without reading, so the server holds unsent output): the
# server must exit 0 within 2 s, and a sanitizer build must report no leak
# (teardown fails the test on any sanitizer report).
# --valgrind: on a build without sanitizers, and when valgrind is
# installed, run the server under valgrind too: it must exit with no heap
# block in use (LeakSanitizer ignores blocks a global still points to;
# valgrind does not) and no fd of its own left open.
nb_sigterm_clean_exit() {
    local pending= vg= a
    for a in "$@"; do
        case $a in
        --pending) pending=1 ;;
        --valgrind) vg=1 ;;
        *) fail "nb_sigterm_clean_exit: unknown option $a" ;;
        esac
    done
    local vlog=$BATS_TEST_TMPDIR/valgrind.log
    if [[ -n $vg && -z ${SERVER_PID:-} ]] && command -v valgrind >/dev/null &&
        ! ldd "$(server_bin)" 2>/dev/null | grep -qE 'lib(a|t|ub)san'; then
        local PRE=(valgrind -q --trace-children=yes --leak-check=full --show-leak-kinds=all
            --errors-for-leak-kinds=all --track-fds=yes --error-exitcode=42 --log-file="$vlog" --)
        START_TIMEOUT=30 start_server
    else
        vg=
        nb_ensure_server
    fi
    start_held concurrency.py --clients 20
    local h1_in=$HELD_IN h1_out=$HELD_OUT h1_pid=$HELD_PID h1_err=$HELD_ERR
    if [[ -n $pending ]]; then
        start_held hold_idle.py --count 1 --send 33554432
    fi
    if [[ -n $vg ]]; then
        # Valgrind's leak check takes a while after the server returns:
        # allow it 20 s (the ASan run checks the 2 s promptness).
        SERVER_STOPPED=$SERVER_PID
        kill -TERM "$SERVER_PID"
        wait_exit "$SERVER_PID" 20 || true
        SERVER_STATUS=$WAIT_STATUS
    else
        stop_server
    fi
    release_held || true
    if [[ -n $pending ]]; then
        HELD_IN=$h1_in HELD_OUT=$h1_out HELD_PID=$h1_pid HELD_ERR=$h1_err
        release_held || true
    fi
    local what="with 20 clients connected${pending:+ and unsent output}${vg:+, under valgrind}" cause
    case $SERVER_STATUS in
    0) cause= ;;
    timeout) cause="the server did not exit within $([[ -n $vg ]] && echo 20 || echo 2) s of SIGTERM: the loop never sees the stop (have the handler set a flag; wait with epoll_pwait() and a mask that lets SIGTERM in only while waiting, see block_stop_signals(); leave the loop when the flag is set)" ;;
    143) cause="SIGTERM killed the server: it has no handler. Install one (on_stop_signals) that sets a flag, leave the loop, free everything and return 0" ;;
    42) cause="valgrind found errors or memory still in use at exit (its report is below)" ;;
    *) cause="the server exited with status $SERVER_STATUS on SIGTERM, expected 0" ;;
    esac
    [[ $SERVER_STATUS == 0 ]] || report_failure --cause "$cause" \
        "expected exit status 0 within $([[ -n $vg ]] && echo 20 || echo 2) s of SIGTERM ($what); got: $SERVER_STATUS." \
        "its stderr:" "$(tail -20 "$SERVER_ERR" | sed 's/^/  /')" \
        "${vg:+valgrind:$'\n'$(grep -v '^==[0-9]*== *$' "$vlog" 2>/dev/null | head -30 | sed 's/^/  /')}" \
        "reproduce: $(server_cmd) & python3 tests/clients/concurrency.py --port PORT --clients 20 --hold; kill -TERM the server; echo \$?"
    if grep -q 'LeakSanitizer' "$SERVER_ERR"; then
        report_failure --cause "memory leaked at exit: free every connection's state and buffers before returning from main" \
            "expected no leak at exit; LeakSanitizer reports:" "$(grep -A12 'ERROR: LeakSanitizer' "$SERVER_ERR" | head -30)"
    fi
    if [[ -n $vg ]]; then
        local inuse openfds
        inuse=$(grep -oE 'in use at exit: [0-9,]+ bytes in [0-9,]+ blocks' "$vlog" | tail -1)
        # Every fd valgrind lists except those inherited from the harness.
        openfds=$(awk '/Open (file descriptor|AF_|socket)/ {pending=$0; next}
            pending { if ($0 !~ /inherited from parent/) print pending; pending="" }' "$vlog")
        [[ -z $inuse || $inuse == 'in use at exit: 0 bytes in 0 blocks' ]] || report_failure \
            --cause "memory still allocated at exit ($inuse): free every connection's state and buffers, and the table, before returning from main" \
            "expected every allocation freed at exit; valgrind: $inuse" "$(grep -v '^==[0-9]*== *$' "$vlog" | head -40)"
        [[ -z $openfds ]] || report_failure --cause "fds still open at exit: close every connection, the epoll fd and the listening socket before returning from main" \
            "expected every fd the server opened to be closed at exit; valgrind --track-fds lists:" "$openfds"
    fi
}
