#!/usr/bin/env bats
# Lab 11: the uppercase echo over UDP, and a client that survives a lossy
# network.
#
#   bats tests/11-udp.bats                       the reference solution
#   NETLABS_TREE=labs bats tests/11-udp.bats     your labs/ build
#   SERVER=/path/to/server CLIENT=/path/to/client bats tests/11-udp.bats
#
# Tags: echo (each datagram's answer), design (boundaries, one socket, the
# client's retransmission, duplicates, backoff and "no server", clean
# exit), robust (clients that vanish, floods), scale.
#
# The bad network is tests/clients/udp_lossy.py, a proxy the tests start
# like a server: it drops, duplicates, holds back (reorders) and delays
# datagrams from a seed, and logs what it did.  The client tests that do
# not need your server put the proxy in --echo mode, so they test the
# client alone.

load lib/netlabs

# ---------- helpers for this lab ---------------------------------------------------

client_bin() {
    echo "${CLIENT:-$(lab_binary client)}"
}

# udp_scenario HINT ARGS...: run tests/clients/udp_echo.py against the
# current server; on failure, fail with its report and HINT as the likely
# cause (unless the report names one).
udp_scenario() {
    local hint=$1
    shift
    expect_pass --hint "$hint" udp_echo.py "$@"
}

# start_proxy ARGS...: start the lossy proxy (tests/clients/udp_lossy.py,
# -p 0 ARGS) as one more server of this test.  Sets PROXY_PORT, PROXY_PID
# and PROXY_LOG (its event log); SERVER_* stay those of the real server.
start_proxy() {
    local pid=${SERVER_PID:-} port=${SERVER_PORT:-} addr=${SERVER_ADDR:-} err=${SERVER_ERR:-} ign=${SERVER_SIGIGN:-}
    PROXY_LOG=$BATS_TEST_TMPDIR/proxy.log
    SERVER=$CLIENTS/udp_lossy.py start_server --log "$PROXY_LOG" "$@"
    PROXY_PORT=$SERVER_PORT PROXY_PID=$SERVER_PID PROXY_ARGS="$*"
    SERVER_PID=$pid SERVER_PORT=$port SERVER_ADDR=$addr SERVER_ERR=$err SERVER_SIGIGN=$ign
    export NETLABS_SERVER_PID=$pid
}

# proxy_count DIR EVENT: how many times the proxy did EVENT (in, drop, dup,
# late, out) to datagrams going DIR (up: the client's; down: answers).
proxy_count() {
    grep -c "^[0-9.]* $1 $2 " "$PROXY_LOG" 2>/dev/null || true
}

# run_udp_client PORT INPUT [ARGS...]: run the client program with stdin
# from the file INPUT against PORT.  Sets CL_STATUS, CL_MS (how long it
# ran), CL_OUT and CL_ERR (files).
run_udp_client() {
    local port=$1 input=$2 bin t0
    shift 2
    bin=$(client_bin)
    [[ -x $bin ]] || fail "no client binary at $bin: run 'make' (or set CLIENT=/path/to/client)"
    CL_OUT=$BATS_TEST_TMPDIR/client.out CL_ERR=$BATS_TEST_TMPDIR/client.err
    CL_STATUS=0
    t0=$(date +%s%3N)
    timeout -k 1 "${CLIENT_LIMIT:-20}" "$bin" -p "$port" "$@" <"$input" >"$CL_OUT" 2>"$CL_ERR" || CL_STATUS=$?
    CL_MS=$(($(date +%s%3N) - t0))
}

# client_todo: after run_udp_client, the TODO the client stopped at, as a
# likely cause (nothing if it did not).
client_todo() {
    local said
    said=$(grep -m1 'TODO' "$CL_ERR" 2>/dev/null) || return 0
    echo "the client stops at a TODO that is not written yet: '$said'"
}

# expect_answers INPUT REPRO [HINT]: after run_udp_client, the client must
# have exited 0 and printed each input line uppercased, once, in order.
expect_answers() {
    local input=$1 repro=$2 hint=${3:-} want=$BATS_TEST_TMPDIR/want.txt
    python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); sys.stdout.buffer.write(d.upper() + (b"" if d.endswith(b"\n") or not d else b"\n"))' "$input" >"$want"
    ((CL_STATUS == 0)) && cmp -s "$want" "$CL_OUT" && return 0
    local diffmsg
    diffmsg=$(python3 - "$want" "$CL_OUT" <<'EOF'
import sys
want, got = (open(f, "rb").read().split(b"\n") for f in sys.argv[1:])
for w in (want, got):
    if w and w[-1] == b"":
        w.pop()
cut = lambda b: repr(b[:80])[2:-1] + ("... (%d bytes)" % len(b) if len(b) > 80 else "")
print("%d lines expected, %d printed" % (len(want), len(got)))
n = next((i for i in range(min(len(want), len(got))) if want[i] != got[i]), min(len(want), len(got)))
if n < len(want) or n < len(got):
    print("first difference at line %d:" % (n + 1))
    print("  expected: %s" % (cut(want[n]) if n < len(want) else "(nothing more)"))
    print("  printed:  %s" % (cut(got[n]) if n < len(got) else "(nothing more)"))
    if n < len(got) and n > 0 and got[n] == want[n - 1]:
        print("likely cause: line %d's answer was printed twice: a duplicate (or the answer to a resend) must be recognised by its sequence number and dropped" % n)
    elif n < len(got) and got[n] in want[:n]:
        print("likely cause: an earlier line's answer came back late and was printed as this line's: check the sequence number of every answer, drop any that is not the one you wait for")
    elif n < len(got) and n + 1 < len(want) and got[n] == want[n + 1]:
        print("likely cause: line %d's answer is missing: a lost datagram must be sent again until its answer comes" % (n + 1))
    elif n < len(got) and got[n].split(b" ", 1)[-1] == want[n] and got[n] != want[n]:
        print("likely cause: the sequence number is printed with the answer: strip the header before printing")
EOF
    )
    local todo
    todo=$(client_todo)
    report_failure ${todo:+--cause "$todo"} --hint "$hint" \
        "the client program: expected exit status 0 and each input line uppercased, once, in order; it exited $CL_STATUS after $CL_MS ms." \
        "$diffmsg" "its stderr: $(head -c 600 "$CL_ERR")" "reproduce: $repro"
}

# lines_file N: N test lines (letters, digits first, empty ones, a last
# line without its newline) into a file; prints its name.
lines_file() {
    local f=$BATS_TEST_TMPDIR/lines.txt
    python3 - "$1" "$f" <<'EOF'
import random, sys
n, path = int(sys.argv[1]), sys.argv[2]
rng = random.Random(n)
words = ["alpha", "bravo", "7 dwarfs", "42 is the answer", "", "x", "Mixed Case 123", "tab\there", "udp!"]
lines = ["line %d %s %s" % (i + 1, rng.choice(words), "z" * rng.randrange(0, 60)) if i % 7 else rng.choice(words) for i in range(n)]
with open(path, "w") as f:
    f.write("\n".join(lines))  # no newline after the last line
EOF
    echo "$f"
}

# sigterm_exit [--valgrind]: SIGTERM while clients are sending; the server
# must exit 0 within 1 s (20 s under valgrind, which then must find no
# block in use and no fd of the server's own left open).
sigterm_exit() {
    local vg= vlog=$BATS_TEST_TMPDIR/valgrind.log limit=1
    # Under a sanitizer build (which reports leaks itself) or without
    # valgrind, the plain check.
    if [[ ${1:-} == --valgrind ]] && command -v valgrind >/dev/null &&
        ! ldd "$(server_bin)" 2>/dev/null | grep -qE 'lib(a|t|ub)san'; then
        vg=1 limit=20
        local PRE=(valgrind -q --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all
            --track-fds=yes --error-exitcode=42 --log-file="$vlog" --)
        START_TIMEOUT=30 start_server -v
        PRE=()
    else
        start_server -v
    fi
    udp_scenario "the server must answer before it is stopped" --clients 20 --count 200 --binary
    # A stream of datagrams still arriving as the signal comes.
    python3 "$CLIENTS/udp_echo.py" --port "$SERVER_PORT" --flood 3000 >/dev/null 2>&1 &
    local flood=$!
    SERVER_STOPPED=$SERVER_PID
    kill -TERM "$SERVER_PID"
    wait_exit "$SERVER_PID" "$limit" || true
    local st=$WAIT_STATUS
    wait "$flood" || true
    local cause=
    case $st in
    0) ;;
    timeout) cause="the server did not exit within $limit s of SIGTERM: the wait never sees the stop. Have the handler set a flag, and wait with ppoll() and a mask that lets SIGTERM in only during the wait (block_stop_signals()), or a blocking recvfrom() may sleep through it" ;;
    143) cause="SIGTERM killed the server: it has no handler. Install one (on_stop_signals) that sets a flag, leave the loop, free the buffer, close the socket and return 0" ;;
    42) cause="valgrind found errors or memory still in use at exit (its report is below)" ;;
    *) cause="the server exited with status $st on SIGTERM, expected 0" ;;
    esac
    [[ $st == 0 ]] || report_failure --cause "$cause" \
        "expected exit status 0 within $limit s of SIGTERM${vg:+, under valgrind}; got: $st." \
        "its stderr:" "$(tail -20 "$SERVER_ERR" | sed 's/^/  /')" \
        "${vg:+valgrind:$'\n'$(grep -v '^==[0-9]*== *$' "$vlog" 2>/dev/null | head -30 | sed 's/^/  /')}" \
        "reproduce: $(server_cmd) & python3 tests/clients/udp_echo.py --port PORT --flood 100000 & kill -TERM the server; echo \$?"
    if [[ -n $vg ]]; then
        local inuse openfds
        inuse=$(grep -oE 'in use at exit: [0-9,]+ bytes in [0-9,]+ blocks' "$vlog" | tail -1)
        openfds=$(awk '/Open (file descriptor|AF_|socket)/ {pending=$0; next}
            pending { if ($0 !~ /inherited from parent/) print pending; pending="" }' "$vlog")
        [[ -z $inuse || $inuse == 'in use at exit: 0 bytes in 0 blocks' ]] || report_failure \
            --cause "memory still allocated at exit ($inuse): free the datagram buffer before returning from main" \
            "expected every allocation freed at exit; valgrind: $inuse" "$(grep -v '^==[0-9]*== *$' "$vlog" | head -40)"
        [[ -z $openfds ]] || report_failure --cause "an fd still open at exit: close the socket before returning from main" \
            "expected every fd the server opened to be closed at exit; valgrind --track-fds lists:" "$openfds"
    fi
}

# ---------- echo -------------------------------------------------------------------

# bats test_tags=echo
@test "echo: each datagram comes back to its sender uppercased, the same length: letters, digits, every byte value (NUL, 0x80-0xFF)" {
    start_server
    udp_scenario "uppercase a-z only, every other byte as it came; use recvfrom()'s count (a datagram is bytes, not a C string), and sendto() the address recvfrom() filled in" \
        --binary --count 100 --size 1-3000
}

# bats test_tags=echo
@test "echo: an empty datagram (0 bytes) is answered with an empty datagram" {
    start_server
    udp_scenario "recvfrom() returning 0 is an empty datagram, not an end of anything (UDP has no connection to end): send an empty datagram back" \
        --sizes 0,5,0,0 --count 4 --rto 0.3 --sends 3
}

# bats test_tags=echo
@test "echo: a 65,507-byte datagram, the largest over IPv4, comes back whole as one datagram" {
    start_server
    udp_scenario "the receive buffer must hold the largest datagram, 65,507 bytes: recvfrom() truncates to the buffer and the rest is lost (MSG_TRUNC returns the real length); send the answer in one sendto()" \
        --sizes 65507,40000,9000,65507 --count 4
}

# bats test_tags=echo
@test "echo: the client program prints each line uppercased, once, in order (empty lines, digits first, no final newline)" {
    start_server
    local input
    input=$(lines_file 200)
    run_udp_client "$SERVER_PORT" "$input"
    expect_answers "$input" "$(server_bin) -p 9527 & $(client_bin) -p 9527 < $input" \
        "each line goes out as one datagram 'SEQ LINE' and is printed without its header, once, in order; the last line may have no newline"
}

# ---------- design -------------------------------------------------------------------

# bats test_tags=design
@test "design: boundaries kept: 500 datagrams of 0-1,400 bytes, 32 in flight at once, come back as 500 datagrams of the same sizes" {
    start_server
    udp_scenario "one recvfrom() is one datagram and one sendto() is one answer: never merge datagrams, never split one, never answer one twice" \
        --count 500 --window 32 --size 0-1400 --binary
}

# bats test_tags=design
@test "design: one socket, no per-client state: 1,000 clients interleaved each get only their own answers, and the server holds one socket throughout" {
    start_server
    local base max=0 n pid st=0 out=$BATS_TEST_TMPDIR/crowd.out
    base=$(socket_count)
    python3 "$CLIENTS/udp_echo.py" --port "$SERVER_PORT" --clients 1000 --count 3000 --window 64 --sends 3 \
        --timeout "$CLIENT_TIMEOUT" >"$out" 2>&1 &
    pid=$!
    # Sample the server's sockets while the crowd is served.
    while alive "$pid"; do
        n=$(socket_count)
        ((n > max)) && max=$n
        sleep 0.02
    done
    wait "$pid" || st=$?
    ((st == 0)) || report_failure --hint "each answer goes to the address recvfrom() gave for that very datagram: keep no 'current client', and never connect() the server's socket (it would then hear one peer only)" \
        "expected: 1,000 clients interleaved (3,000 datagrams) each answered with their own data; the client exited $st:" \
        "$(cat "$out")" "server: $(server_cmd)"
    ((max <= base && base == 1)) || report_failure \
        --cause "a UDP server needs no socket per client: one socket receives every client's datagrams, and recvfrom() says who sent each one" \
        "expected the server to hold exactly 1 socket while 1,000 clients were served; it had $base before and up to $max during." \
        "$(repro "python3 tests/clients/udp_echo.py --port PORT --clients 1000 --count 3000; ls -l /proc/PID/fd")"
}

# bats test_tags=design
@test "design: the client through a lossy network (drops, duplicates, reordering, delays; 3 seeds): every answer printed once, in order" {
    start_server
    local input seed
    input=$(lines_file 25)
    # -t 40: the first wait is shorter than the slowest round trip here (a
    # datagram held back takes 40 ms more), so some answers also come late,
    # after a resend: more duplicates to recognise.
    for seed in 1 2 3; do
        start_proxy --to "127.0.0.1:$SERVER_PORT" --drop 0.15 --dup 0.15 --reorder 0.15 --delay 10 --seed "$seed"
        run_udp_client "$PROXY_PORT" "$input" -t 40
        expect_answers "$input" "python3 tests/clients/udp_lossy.py $PROXY_ARGS -p 9600 & $(client_bin) -p 9600 -t 40 < $input" \
            "lost datagrams are sent again after a timeout; answers that carry another sequence number than the one awaited (duplicates, late answers to earlier sends) are dropped"
    done
    # The network really was bad (else the test proved nothing).  The three
    # proxies wrote one log.
    (($(proxy_count up drop) + $(proxy_count down drop) > 0 && $(proxy_count up dup) + $(proxy_count down dup) > 0 &&
        $(proxy_count up late) + $(proxy_count down late) > 0)) ||
        fail "the proxies dropped, duplicated or held back nothing: the test could not judge the client (proxy log: $PROXY_LOG)"
}

# bats test_tags=design
@test "design: the client resends what is lost: 30% of its datagrams dropped, every line still answered" {
    local input
    input=$(lines_file 30)
    start_proxy --echo --faults up --drop 0.3 --seed 11
    run_udp_client "$PROXY_PORT" "$input"
    expect_answers "$input" "python3 tests/clients/udp_lossy.py $PROXY_ARGS -p 9600 & $(client_bin) -p 9600 < $input" \
        "a datagram may vanish: wait for its answer with a timeout (poll() with a deadline, or SO_RCVTIMEO), and on timeout send the same datagram again"
    (($(proxy_count up drop) > 0)) || fail "the proxy dropped nothing (seed 11): the test proved nothing (log: $PROXY_LOG)"
}

# bats test_tags=design
@test "design: the client drops duplicate and stale answers: every answer doubled, some held back" {
    local input
    input=$(lines_file 40)
    start_proxy --echo --faults down --dup 0.6 --reorder 0.3 --delay 15 --seed 5
    run_udp_client "$PROXY_PORT" "$input"
    expect_answers "$input" "python3 tests/clients/udp_lossy.py $PROXY_ARGS -p 9600 & $(client_bin) -p 9600 < $input" \
        "a duplicate (or a late answer to an earlier line) must not be printed: check each answer's sequence number against the one you wait for, and drop the others"
    (($(proxy_count down dup) > 0)) || fail "the proxy duplicated nothing (seed 5): the test proved nothing (log: $PROXY_LOG)"
}

# bats test_tags=design
@test "design: with no server, the client says 'no server' and exits 1 within 2 s (ICMP port unreachable as ECONNREFUSED on its connected socket)" {
    # A port where nothing listens: one the kernel just gave out and took
    # back (the client is tested alone: no server of yours is needed).
    local port input=$BATS_TEST_TMPDIR/one.txt
    port=$(python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    printf 'anyone there?\n' >"$input"
    run_udp_client "$port" "$input"
    if ((CL_STATUS != 1)) || ! grep -qi 'no server' "$CL_ERR" || ((CL_MS > 2000)); then
        local todo
        todo=$(client_todo)
        report_failure ${todo:+--cause "$todo"} --hint "connect() the client's UDP socket to the server: the ICMP port unreachable that comes back when nothing listens is then reported as ECONNREFUSED by the next recv() (or send()). An unconnected socket (sendto/recvfrom) never hears it, and the client waits out every timeout" \
            "with nothing listening on UDP port $port, expected the client to print a message with 'no server' on stderr and exit 1 within 2 s;" \
            "it exited $CL_STATUS after $CL_MS ms; stdout: '$(head -c 200 "$CL_OUT")'; stderr: '$(head -c 300 "$CL_ERR")'" \
            "reproduce: echo hi | $(client_bin) -p $port; echo \$?   (nothing listening on that port)"
    fi
}

# bats test_tags=design
@test "design: when nothing ever answers, the client resends with exponential backoff (each wait twice the last), then gives up with exit 1" {
    local input=$BATS_TEST_TMPDIR/one.txt
    printf 'hello?\n' >"$input"
    start_proxy --echo --faults up --drop 1 --seed 1
    run_udp_client "$PROXY_PORT" "$input" -t 50 -n 5
    local times gaps
    times=$(awk '$2 == "up" && $3 == "in" {print $1}' "$PROXY_LOG" | tr '\n' ' ')
    gaps=$(awk '$2 == "up" && $3 == "in" { if (n++) printf "%d ", ($1 - last) * 1000; last = $1 }' "$PROXY_LOG")
    local verdict
    verdict=$(python3 - "$CL_STATUS" $gaps <<'EOF'
import sys
st, gaps = int(sys.argv[1]), [int(g) for g in sys.argv[2:]]
if len(gaps) != 4:
    print("expected 5 sends of the line with -n 5 (4 gaps between them); the proxy saw %d" % (len(gaps) + 1))
elif gaps[0] < 40:
    print("the first resend came %d ms after the first send, before the 50 ms timeout (-t 50)" % gaps[0])
# A send can come late (a loaded machine), never early: each gap must be at
# least 90% of its doubled wait, and not wildly more.
elif any(g < 0.9 * 50 * 2 ** i or g > 3 * 50 * 2 ** i + 300 for i, g in enumerate(gaps)):
    print("each wait must be twice the one before (binary exponential backoff: 50, 100, 200, 400 ms with -t 50); the gaps were %s ms" % ", ".join(map(str, gaps)))
elif st != 1:
    print("after the last send went unanswered, expected exit status 1; got %d" % st)
EOF
    )
    [[ -n $(client_todo) ]] && verdict=$(client_todo)
    [[ -z $verdict ]] || report_failure --cause "$verdict" \
        "expected: with -t 50 -n 5 and a network that loses everything, 5 sends about 50, 100, 200 and 400 ms apart, then a message on stderr and exit status 1." \
        "the proxy saw the client send at (s): $times" "the client exited $CL_STATUS after $CL_MS ms; stderr: '$(head -c 300 "$CL_ERR")'" \
        "reproduce: python3 tests/clients/udp_lossy.py --echo --faults up --drop 1 --log /dev/stderr -p 9600 & echo hello | $(client_bin) -p 9600 -t 50 -n 5"
    [[ -s $CL_ERR ]] || fail "the client gave up (exit 1) without a word on stderr: say why (no answer after N sends)"
}

# bats test_tags=design
@test "design: SIGTERM while datagrams arrive: exit 0 within 1 s" {
    sigterm_exit
}

# bats test_tags=design
@test "design: SIGTERM under valgrind: no block in use, no fd left open" {
    require_valgrind
    sigterm_exit --valgrind
}

# bats test_tags=design
@test "design: --batch (recvmmsg/sendmmsg) answers exactly like the plain loop: every byte value, 0 and 65,507 bytes, boundaries kept, 1,000 clients interleaved" {
    local bin
    bin=$(server_bin)
    [[ -x $bin ]] || fail "no server binary at $bin: run 'make' first (or set SERVER=/path/to/server)"
    "$bin" -h 2>&1 | grep -q -- '--batch' || report_failure \
        --cause "the server has no --batch option yet: it is the exercise after the lab (README, 'After the lab: batching'): udp_echo_batch() with recvmmsg() and sendmmsg(), chosen by --batch in server.c, listed in the usage line (-h)" \
        "expected '$bin -h' to list --batch; it printed:" "$("$bin" -h 2>&1 | head -5)"
    start_server --batch
    udp_scenario "recvmmsg() fills msg_len and msg_hdr.msg_namelen for each datagram: answer each with exactly msg_len bytes (0 included) to its own msg_name, and reset every msg_namelen and iov_len before the next recvmmsg()" \
        --binary --count 100 --size 1-3000
    udp_scenario "an empty datagram is one too: msg_len 0 gets a 0-byte answer" \
        --sizes 0,5,0,0 --count 4 --rto 0.3 --sends 3
    udp_scenario "each buffer in the batch must hold 65,507 bytes; a datagram with MSG_TRUNC in its msg_hdr.msg_flags is dropped, never answered short" \
        --sizes 65507,40000,9000,65507 --count 4
    udp_scenario "one datagram in, one answer out: sendmmsg() returns how many it sent, so send the rest again, never the same answer twice" \
        --count 500 --window 32 --size 0-1400 --binary
    udp_scenario "each answer goes to the address recvmmsg() gave for that very datagram (msg_name), not to the batch's first sender" \
        --clients 1000 --count 3000 --window 64 --sends 3 --timeout "$CLIENT_TIMEOUT"
    assert_server_alive
}

# ---------- robust -------------------------------------------------------------------

# bats test_tags=robust
@test "robust: 200 clients that vanish before their answer, and 10,000 datagrams never read: the server lives and answers the next client" {
    start_server
    udp_scenario "a client that is gone costs nothing: sendto() to it may fail (or not), that is no reason to stop" --leave 200
    udp_scenario "a flood is no reason to stop: a failed sendto() (full buffer) drops that answer only" --flood 10000
    assert_server_alive
    udp_scenario "after the vanished clients and the flood, the server must still answer: a failed sendto() drops one answer, never the server" \
        --clients 5 --count 50 --binary
}

# ---------- scale --------------------------------------------------------------------

# bats test_tags=design,scale
@test "scale: 10,000 clients interleaved, 20,000 datagrams: each client gets only its own answers, the server holds one socket" {
    ulimit -n 20000
    start_server
    udp_scenario "one socket for every client: recvfrom() says who sent each datagram, sendto() answers that address" \
        --clients 10000 --count 20000 --window 128
    (($(socket_count) == 1)) || fail "expected 1 socket in the server after 10,000 clients; it has $(socket_count)"
}
