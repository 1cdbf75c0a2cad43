#!/usr/bin/env bats
# Lab 09: the network calculator (LEN@PAYLOAD@ frames on lab 08's reactor),
# and its client program.
#
#   bats tests/09-framing.bats                       the reference solution
#   NETLABS_TREE=labs bats tests/09-framing.bats     your labs/ build
#   SERVER=/path/to/server CLIENT=/path/to/client bats tests/09-framing.bats
#
# Tags: echo (the service: every answer right), design (framing, bad frames,
# half-close, back-pressure, clean exit), robust (bad clients), scale.
#
# The expected replies come from tests/clients/calcproto.py: an evaluator
# written independently of the C code (python integers, so overflow is a
# plain range check), held to a table of hand-checked cases.  Ask the
# server by hand:  python3 tests/clients/calcproto.py --port PORT ask '12 + 30'

load lib/netlabs

HIGH_WATER_KB=4096 # the output high-water mark per connection (as lab 08)

# ---------- helpers for this lab --------------------------------------------------

client_bin() {
    echo "${CLIENT:-$(lab_binary client)}"
}

# calc_client HINT SCRIPT ARGS...: run a scenario client; on failure, fail
# with its output (the FAIL line says what was sent, expected and received,
# and how to reproduce it) and the likely cause.
calc_client() {
    local hint=$1
    shift
    run client "$@"
    if ((status != 0)); then
        fail "$(printf '%s\n' "expected: tests/clients/$1 to pass (exit 0); it exited $status:" \
            "$(sed 's/^/    /' <<<"$output" | head -30)" \
            "  likely cause: $hint" \
            "  server: $(server_cmd)")"
    fi
}

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

# stats_when_idle: pool_stats until it reports 0 connections (the server may
# still be closing the last ones when the client exits), at most 5 s.
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

# run_client_program INPUT WANT REPRO: run the client program against the
# current server with stdin from the file INPUT; it must exit 0 and print
# exactly the file WANT.  REPRO: how to replay it by hand, for the message.
run_client_program() {
    local input=$1 want=$2 repro=$3 bin st=0
    local got=$BATS_TEST_TMPDIR/client.out err=$BATS_TEST_TMPDIR/client.err
    bin=$(client_bin)
    [[ -x $bin ]] || fail "no client binary at $bin: run 'make' (or set CLIENT=/path/to/client)"
    timeout -k 1 20 "$bin" -p "$SERVER_PORT" <"$input" >"$got" 2>"$err" || st=$?
    ((st == 0)) && cmp -s "$want" "$got" && return 0
    local diffmsg
    diffmsg=$(python3 - "$input" "$want" "$got" <<'EOF'
import sys
inp, want, got = (open(f, "rb").read().split(b"\n") for f in sys.argv[1:])
for w in (want, got):
    if w and w[-1] == b"":
        w.pop()
n = next((i for i in range(min(len(want), len(got))) if want[i] != got[i]), min(len(want), len(got)))
cut = lambda b: repr(b[:100])[1:] + ("... (%d bytes)" % len(b) if len(b) > 100 else "")
print("%d lines in, %d expected out, %d printed" % (len(inp) - (inp[-1] == b""), len(want), len(got)))
if n < len(want) or n < len(got):
    print("first difference at output line %d:" % (n + 1))
    print("  input line:  %s" % (cut(inp[n]) if n < len(inp) else "(none)"))
    print("  expected:    %s" % (cut(want[n]) if n < len(want) else "(nothing more)"))
    print("  printed:     %s" % (cut(got[n]) if n < len(got) else "(nothing more)"))
EOF
    )
    fail "$(printf '%s\n' "the client program: expected exit status 0 and one line per input line; it exited $st." \
        "$diffmsg" \
        "  its stderr: $(head -c 600 "$err")" \
        "  reproduce: $(server_bin) -p 9527 & then: $repro")"
}

# sockets_at_most N SECONDS: wait until the server has at most N sockets
# open (status 0), or SECONDS pass (status 1).
sockets_at_most() {
    local n=$1 i
    for ((i = 0; i < $2 * 20; i++)); do
        (($(socket_count) <= n)) && return 0
        sleep 0.05
    done
    return 1
}

# calc_sigterm_clean_exit [--valgrind]: SIGTERM while 20 clients are
# connected, each holding a partial frame the server must keep, and one
# client has pipelined requests without reading (the server holds unsent
# replies).  The server must exit 0 within 2 s (20 s under valgrind), and
# nothing may leak: teardown fails the test on any sanitizer report;
# --valgrind (on a build without sanitizers, when valgrind is installed)
# also requires no heap block in use and no fd of its own left open.
# (Lab 09's own version of scenarios_nonblocking.bash's
# nb_sigterm_clean_exit, whose clients speak uppercase echo.)
calc_sigterm_clean_exit() {
    local vg= vlog=$BATS_TEST_TMPDIR/valgrind.log
    if [[ ${1:-} == --valgrind ]] && command -v valgrind >/dev/null &&
        ! ldd "$(server_bin)" 2>/dev/null | grep -qE 'lib(a|t|ub)san'; then
        vg=1
        local PRE=(valgrind -q --trace-children=yes --leak-check=full --show-leak-kinds=all
            --errors-for-leak-kinds=all --track-fds=yes --error-exitcode=42 --log-file="$vlog" --)
        START_TIMEOUT=30 start_server -v
        PRE=()
    else
        start_server -v
    fi
    start_held calc_crowd.py --clients 20 --requests 20 --pending
    local h1_in=$HELD_IN h1_out=$HELD_OUT h1_pid=$HELD_PID h1_err=$HELD_ERR
    # Under valgrind the server is slow: a few MiB of requests are enough
    # to leave replies unsent.
    start_held calc_backpressure.py ${vg:+--size 4194304}
    if [[ -n $vg ]]; then
        # Valgrind's leak check takes a while after main returns: 20 s (the
        # plain and ASan runs check the 2 s promptness).
        kill -TERM "$SERVER_PID"
        wait_exit "$SERVER_PID" 20 || true
        SERVER_STATUS=$WAIT_STATUS
    else
        stop_server
    fi
    # The non-reading client's replies died with the server: it would only
    # report that.
    kill -TERM "$HELD_PID" 2>/dev/null || true
    release_held || true
    HELD_IN=$h1_in HELD_OUT=$h1_out HELD_PID=$h1_pid HELD_ERR=$h1_err
    release_held || true
    local what="with 20 clients connected, each holding a partial frame, and one client's replies unsent${vg:+, under valgrind}"
    [[ $SERVER_STATUS == 0 ]] || fail "$(printf '%s\n' "expected exit status 0 within $([[ -n $vg ]] && echo 20 || echo 2) s of SIGTERM ($what); got: $SERVER_STATUS ('timeout' = still running; 143 = killed by the signal; 42 = valgrind found errors or memory still in use)." \
        "  its stderr:" "$(grep -vE '^(connect|close) ' "$SERVER_ERR" | tail -20 | sed 's/^/    /')" \
        "${vg:+  valgrind:$'\n'$(grep -v '^==[0-9]*== *$' "$vlog" 2>/dev/null | head -30 | sed 's/^/    /')}" \
        "  reproduce: $(server_cmd) -v & python3 tests/clients/calc_crowd.py --port PORT --clients 20 --pending --hold; kill -TERM the server; echo \$?")"
    if grep -q 'LeakSanitizer' "$SERVER_ERR"; then
        fail "$(printf '%s\n' "expected no leak at exit; LeakSanitizer reports (free every connection's state and buffers before returning from main):" "$(grep -A12 'ERROR: LeakSanitizer' "$SERVER_ERR" | head -30)")"
    fi
    # With -v the server prints its stats at exit, after closing everything.
    local st busy
    st=$(last_stats)
    [[ $st == *"stats: connections 0"* ]] || fail "$(printf '%s\n' "with -v the server prints its stats at exit, after closing every connection; expected 'stats: connections 0', got:" "$st")"
    busy=$(busy_classes "$st")
    [[ -z $busy ]] || fail "$(printf '%s\n' "at exit, buffers are still in use (leaked: the partial frames' input, the unsent replies):" "$busy")"
    if [[ -n $vg ]]; then
        local inuse openfds
        inuse=$(grep -oE 'in use at exit: [0-9,]+ bytes in [0-9,]+ blocks' "$vlog" | tail -1)
        openfds=$(awk '/Open (file descriptor|AF_|socket)/ {pending=$0; next}
            pending { if ($0 !~ /inherited from parent/) print pending; pending="" }' "$vlog")
        [[ -z $inuse || $inuse == 'in use at exit: 0 bytes in 0 blocks' ]] || fail "$(printf '%s\n' "expected every allocation freed at exit; valgrind: $inuse" "$(grep -v '^==[0-9]*== *$' "$vlog" | head -40)")"
        [[ -z $openfds ]] || fail "$(printf '%s\n' "expected every fd the server opened to be closed at exit; valgrind --track-fds lists:" "$openfds")"
    fi
}

# ---------- echo: the answers ----------------------------------------------------------

# bats test_tags=echo
@test "echo: the protocol's examples: 7@12 + 30@ is answered 4@0 42@; LEN with leading zeros; 0@@" {
    start_server
    calc_client "the frame is LEN@PAYLOAD@ with LEN 1 to 4 digits (leading zeros allowed), the reply is framed the same way: '4@0 42@'" \
        calc_table.py --set examples
}

# bats test_tags=echo
@test "echo: each operator + - * / % on positive, negative and zero operands" {
    start_server
    calc_client "the arithmetic of one of + - * / %, or the parsing of a '-' sign" \
        calc_table.py --set operators
}

# bats test_tags=echo
@test "echo: int64 edges: INT64_MIN and INT64_MAX, overflow on + - * (4), INT64_MIN / -1 (4), INT64_MIN % -1 (0 0)" {
    start_server
    calc_client "overflow must be detected before it happens (signed overflow is undefined in C: __builtin_*_overflow, or compare with INT64_MAX - y first); INT64_MIN / -1 is 4 and INT64_MIN % -1 is 0, and both trap in C if computed" \
        calc_table.py --set limits
}

# bats test_tags=echo
@test "echo: division and modulo by zero (1); / and % truncate toward zero with negative operands" {
    start_server
    calc_client "a zero divisor is status 1 (check before dividing: it is SIGFPE in C); C's / and % already truncate toward zero" \
        calc_table.py --set division
}

# bats test_tags=echo
@test "echo: malformed expressions (3): leading +, out of range, wrong spacing, empty payload, PING, tab, NUL" {
    start_server
    calc_client "an operand is an optional '-' then one or more digits and nothing else, within int64 (strtoll accepts '+', spaces and clamps on overflow: check every byte, errno ERANGE and the end pointer); exactly 3 tokens split on single spaces" \
        calc_table.py --set malformed
}

# bats test_tags=echo
@test "echo: unknown operators (2), and the order of checks: 3 before 2 before 1 before 4" {
    start_server
    calc_client "check the operands (3) before the operator (2), the operator before a zero divisor (1), and that before overflow (4): 'x / 0' is 3, '1 ^ 0' is 2" \
        calc_table.py --set order
}

# bats test_tags=echo
@test "echo: 3,000 random expressions sent in random chunks all match a reference evaluator" {
    start_server
    calc_client "one of the rules above, on a case the tables do not name: the FAIL line gives the expression; ask it alone with calcproto.py" \
        calc_fuzz.py --count 3000
}

# bats test_tags=echo,client
@test "echo: the client program prints each result, or 'error: WHY', in input order" {
    start_server
    local input=$BATS_TEST_TMPDIR/lines.txt want=$BATS_TEST_TMPDIR/want.txt long max
    long=$(printf '1%.0s' {1..1025})            # 1025 bytes: not sent
    max="$(printf '0%.0s' {1..1019})1 + 2"      # 1024 bytes: the longest that is sent
    {
        printf '%s\n' '12 + 30' '1 / 0' '1 ^ 2' 'PING' '9223372036854775807 + 1' "$long" '' \
            '-7 % 2' "$max" '-9223372036854775808 / -1' '-9223372036854775808 % -1'
        printf '%s' '6 * 7' # the last line has no newline
    } >"$input"
    printf '%s\n' 42 'error: division by zero' 'error: unknown operator' 'error: malformed expression' \
        'error: overflow' 'error: expression too long (over 1024 bytes)' 'error: malformed expression' \
        -1 3 'error: overflow' 0 42 >"$want"
    run_client_program "$input" "$want" "printf '12 + 30\\n1 / 0\\n1 ^ 2\\n' | $(client_bin) -p 9527 (the test's input: $input)"
}

# bats test_tags=echo,client
@test "echo: the client program answers 20,000 piped lines, each on its line, in order" {
    start_server
    local input=$BATS_TEST_TMPDIR/lines.txt want=$BATS_TEST_TMPDIR/want.txt seed=$RANDOM
    python3 "$CLIENTS/calcproto.py" lines --count 20000 --seed "$seed" >"$input"
    python3 "$CLIENTS/calcproto.py" answer <"$input" >"$want"
    run_client_program "$input" "$want" \
        "python3 tests/clients/calcproto.py lines --count 20000 --seed $seed > lines; $(client_bin) -p 9527 < lines > got; python3 tests/clients/calcproto.py answer < lines | diff - got"
}

# ---------- design: frames ---------------------------------------------------------------

# bats test_tags=design
@test "design: each kind of bad frame after good requests in one write: their replies, then 3@9 0@, then EOF, and no reset while garbage follows" {
    start_server
    calc_client "on a bad frame: queue the replies owed, then '3@9 0@', then shutdown(SHUT_WR) once they are sent; read and discard what the client still sends until its EOF (a close() with unread input sends RST, which can destroy the replies in flight)" \
        calc_badframe.py
    assert_server_alive
}

# bats test_tags=design
@test "design: a bad frame is seen at its offending byte, and a client that then says nothing is closed within about 2 s" {
    start_server
    local base n
    base=$(socket_count)
    start_held calc_badframe.py --mode silent
    n=${HELD_READY#ready }
    # Each connection got its replies, '3@9 0@' and EOF; the server now
    # waits (at most 2 s) for an EOF that never comes, then must close.
    if ! sockets_at_most "$base" 5; then
        local now
        now=$(socket_count)
        release_held || true
        fail "$(printf '%s\n' "after a bad frame the server shut down its sending side on $n connections whose clients then sent nothing;" \
            "  expected it to close them within about 2 s (5 s allowed): it still had $((now - base)) of them open after 5 s ($now sockets, $base before)." \
            "  likely cause: a connection that is shut down and waits for the client's EOF needs a deadline too (2 s), or it lingers forever" \
            "  reproduce: $(server_cmd) & python3 tests/clients/calc_badframe.py --port PORT --mode silent --hold; watch ls /proc/PID/fd")"
    fi
    release_held || fail "$(printf '%s\n' "the silent client failed:" "$HELD_OUTPUT")"
}

# bats test_tags=design
@test "design: frames split at every byte position, and sent one byte at a time, are answered" {
    start_server
    calc_client "a read may end anywhere in a frame: keep the incomplete rest (return how many bytes were used) and parse it again with the next bytes; never assume one read holds whole frames" \
        calc_split.py
}

# bats test_tags=design
@test "design: 10,000 pipelined requests in one write are answered in order" {
    start_server
    calc_client "one read can hold many frames: answer every complete frame in the input before reading again, in order" \
        calc_fuzz.py --count 10000 --write one
}

# bats test_tags=design
@test "design: frames across the 4 KiB buffer boundaries (one write, and writes ending at a boundary); 1024-byte payloads" {
    start_server
    calc_client "a frame can start in one buffer's worth of input and end in the next: the partial frame must survive the buffer being consumed, moved or grown; LEN 1024 is the largest allowed" \
        calc_boundary.py
}

# bats test_tags=design
@test "design: half-close with complete and incomplete frames pending: every complete request answered, then EOF" {
    start_server
    calc_client "on EOF: answer every complete frame still in the input, send all the replies, then close; an incomplete frame at EOF gets no reply (it is not a bad frame)" \
        calc_halfclose.py
}

# bats test_tags=design,robust
@test "design: a client pipelining without reading is paused, not dropped, under the high-water mark; others are answered meanwhile" {
    start_server
    run client calc_fuzz.py --count 2000 # warm up: the pool's first buffers
    assert_success
    local base peak
    base=$(rss_kb)
    start_held calc_backpressure.py
    local sent=${HELD_READY#ready }
    # Meanwhile, everyone else is served, quickly.
    calc_client "a client that does not read must not hold up the others: never block or spin on its full socket" \
        calc_probe.py --count 20 --max-latency 1.5
    calc_client "others must be served while one client is paused" \
        calc_crowd.py --clients 20 --requests 100
    peak=$(proc_field "$SERVER_PID" VmHWM)
    # The output stops at the high-water mark (the reference stops one
    # read short of it, since a reply can be twice its request); the pool's
    # smaller buffers it grew through stay on the free lists: allow the
    # mark plus 3 MiB, as lab 08 does.  Without back-pressure the replies
    # to this client's 64 MiB of requests would take tens of MiB.
    local limit=$((base + HIGH_WATER_KB + 3072))
    ((peak <= limit)) || fail "$(printf '%s\n' \
        "the server's peak RSS reached ${peak} kB; expected at most ${limit} kB (${base} kB before + ${HIGH_WATER_KB} kB high-water + 3 MiB)." \
        "  a client sent ${sent} bytes of requests without reading a reply. Stop reading a connection once its pending" \
        "  output passes the high-water mark (back-pressure), and resume below the low-water mark." \
        "  $(repro "python3 tests/clients/calc_backpressure.py --port PORT --hold; watch VmHWM in /proc/PID/status")")"
    run pool_stats
    [[ $output == *"stats: connections 1"* ]] || fail "expected the non-reading client to stay connected, paused (1 connection); stats: $output"
    release_held || fail "$(printf '%s\n' "the non-reading client, once it read (a paused connection must resume below the low-water mark and answer everything):" "$HELD_OUTPUT")"
}

# bats test_tags=design
@test "design: idle connections hold no pool buffer once their pipelined requests are answered" {
    start_server
    start_held calc_crowd.py --clients 5 --requests 3000 --final
    local st busy
    st=$(pool_stats)
    [[ $st == *"stats: connections 5"* ]] || fail "expected 'stats: connections 5' with 5 clients connected; got: $st"
    busy=$(busy_classes "$st")
    [[ -z $busy ]] || fail "$(printf '%s\n' "5 idle connections (each had 3,000 requests answered) still hold pool buffers:" "$busy" \
        "  once every complete frame is answered and sent, the input and output buffers are empty: give them back to the pool.")"
    release_held || fail "after the hold, one more round failed: $HELD_OUTPUT"
    st=$(stats_when_idle)
    [[ $st == *"stats: connections 0"* ]] || fail "$(printf '%s\n' "all clients left, but the server still counts connections:" "$st")"
    busy=$(busy_classes "$st")
    [[ -z $busy ]] || fail "$(printf '%s\n' "all clients left, but buffers are still in use:" "$busy")"
}

# bats test_tags=design
@test "design: SIGTERM with clients connected and requests pending: exit 0 within 2 s, everything freed" {
    calc_sigterm_clean_exit
}

# bats test_tags=design
@test "design: SIGTERM with clients connected and requests pending, under valgrind: no block in use, no fd left open" {
    require_valgrind
    calc_sigterm_clean_exit --valgrind
}

# ---------- robust -------------------------------------------------------------------

# bats test_tags=robust
@test "robust: clients that reset (RST) mid-pipeline or hang up before their replies do not kill the server; the next is served" {
    start_server
    calc_client "ignore SIGPIPE (or send with MSG_NOSIGNAL); on ECONNRESET or EPIPE close only that connection" \
        calc_rst.py --count 3 --hangups 10
    assert_server_alive
    local st busy
    st=$(stats_when_idle)
    busy=$(busy_classes "$st")
    [[ -z $busy && $st == *"stats: connections 0"* ]] || fail "$(printf '%s\n' "after the reset clients left, expected 0 connections and no buffer in use; stats:" "$st" \
        "  a connection closed on an error must give its buffers back too.")"
}

# bats test_tags=robust
@test "robust: 200 clients at once each get exactly their own results (no cross-talk)" {
    start_server
    calc_client "each connection's partial frame and replies are its own: no shared static buffer in the parser" \
        calc_crowd.py --clients 200 --requests 50 --rounds 2
}

# bats test_tags=robust,client
@test "robust: the client program, when the server hangs up before every reply came: prints what came, says why on stderr, exits 1" {
    # A stand-in server that answers the first request only, then closes.
    SERVER=$CLIENTS/calc_shortserver.py start_server --answer 1
    local bin
    bin=$(client_bin)
    [[ -x $bin ]] || fail "no client binary at $bin: run 'make' (or set CLIENT=/path/to/client)"
    run --separate-stderr timeout -k 1 10 "$bin" -p "$SERVER_PORT" < <(printf '1 + 2\n2 * 3\n4 - 5\n')
    [[ $status -eq 1 && $output == 3 && -n $stderr ]] || fail "$(printf '%s\n' \
        "sent 3 lines to a server that answers only the first (3) and then closes;" \
        "  expected: '3' on stdout, a message on stderr, exit status 1" \
        "  got: exit status $status, stdout '$(head -c 300 <<<"$output")', stderr '$(head -c 300 <<<"$stderr")'" \
        "  likely cause: EOF from the server while replies are still owed must be an error (the client knows how many it sent)" \
        "  reproduce: python3 tests/clients/calc_shortserver.py -p 9527 --answer 1 & printf '1 + 2\\n2 * 3\\n4 - 5\\n' | $bin -p 9527")"
    # And with no server at all: a message and exit 1, not a hang.
    local port=$SERVER_PORT
    stop_server
    run --separate-stderr timeout -k 1 10 "$bin" -p "$port" < <(printf '1 + 2\n')
    [[ $status -eq 1 && -n $stderr ]] || fail "$(printf '%s\n' "with nothing listening on port $port, expected a message on stderr and exit status 1;" \
        "  got: exit status $status, stdout '$(head -c 300 <<<"$output")', stderr '$(head -c 300 <<<"$stderr")'")"
}

# ---------- scale --------------------------------------------------------------------

# bats test_tags=design,scale
@test "scale: 10,000 idle connections are all answered, hold no pool buffer, cost under 2 KiB of RSS each" {
    ulimit -n 20000
    start_server
    run client calc_fuzz.py --count 2000 # warm up
    assert_success
    local base after
    base=$(rss_kb)
    CLIENT_TIMEOUT=40 start_held calc_crowd.py --clients 10000 --requests 1 --final
    after=$(rss_kb)
    local st
    st=$(pool_stats)
    [[ $st == *"stats: connections 10000"* ]] || fail "expected 'stats: connections 10000' with 10,000 clients connected; got: $st"
    local busy
    busy=$(busy_classes "$st")
    [[ -z $busy ]] || fail "$(printf '%s\n' "10,000 idle connections (each answered once) still hold pool buffers:" "$busy" \
        "  give a connection's input and output buffers back to the pool as soon as they are empty.")"
    local per=$(((after - base) * 1024 / 10000))
    ((per < 2048)) || fail "$(printf '%s\n' "RSS grew from ${base} kB to ${after} kB with 10,000 idle connections: ${per} bytes each, expected under 2048." \
        "  an idle connection should hold a small struct and no buffer. $(repro "python3 tests/clients/calc_crowd.py --port PORT --clients 10000 --requests 1 --hold")")"
    release_held || fail "after the hold, one more round on all 10,000 connections failed: $HELD_OUTPUT"
}
