# netlabs.bash - the helpers every tests/NN-name.bats loads with `load lib/netlabs`.
#
# Which binary is tested:
#   SERVER=/path/to/server      test this binary (an instructor grading elsewhere)
#   NETLABS_TREE=labs           the student's build (default: solutions; labs
#                               where there is no solutions/, as in the tarball)
#   NETLABS_VARIANT=address     a sanitizer build (default: plain)
# The lab is the .bats file's name: tests/04-select.bats tests 04-select.
#
# Every server runs in its own process group (setsid), with fd 3 closed (bats
# waits for fd 3 to close), SIGPIPE at its default action (so a server cannot
# pass because its parent ignored SIGPIPE), and is killed, whole group, in
# teardown whatever happened.  Ports come from -p 0 and the "listening on"
# line, so suites can run in parallel.

bats_require_minimum_version 1.5.0
bats_load_library bats-support
bats_load_library bats-assert

NETLABS_ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
CLIENTS=$NETLABS_ROOT/tests/clients
LAB=${LAB:-$(basename "$BATS_TEST_FILENAME" .bats)}
# Without solutions/ (the student tarball), the student's own build.
if [[ -z ${NETLABS_TREE:-} ]]; then
    if [[ -d $NETLABS_ROOT/solutions ]]; then NETLABS_TREE=solutions; else NETLABS_TREE=labs; fi
fi
NETLABS_VARIANT=${NETLABS_VARIANT:-plain}
# A test that runs past this is failed and torn down (bats kills it).
BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-60}
# How long a server may take to print its "listening on" line.
START_TIMEOUT=${START_TIMEOUT:-5}
# Deadline for one client scenario.
CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-20}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=23}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-exitcode=66:second_deadlock_stack=1}

# ---------- which binary --------------------------------------------------------

lab_binary() { # lab_binary server|client
    echo "$NETLABS_ROOT/build/$NETLABS_VARIANT/$NETLABS_TREE/$LAB/$1"
}

server_bin() {
    echo "${SERVER:-$(lab_binary server)}"
}

# The command that starts this server by hand, for failure messages.
server_cmd() {
    echo "$(server_bin) -p $SERVER_PORT"
}

# ---------- setup / teardown -------------------------------------------------------

SERVER_PIDS=()
SERVER_FDS=()
HELD_FDS=()

netlabs_setup() {
    SERVER_PIDS=()
    SERVER_FDS=()
    SERVER_PID= SERVER_PORT= SERVER_ADDR= SERVER_ERR= SERVER_SIGIGN=
    # Every group we start, for teardown_file's safety net.
    NETLABS_GROUPS=$BATS_FILE_TMPDIR/groups
}

# Kill one server's whole process group: TERM, wait up to 2 s, then KILL.
kill_group() { # kill_group PID
    local pid=$1
    kill -TERM -- "-$pid" 2>/dev/null || return 0
    wait_exit "$pid" 2 || true
    kill -KILL -- "-$pid" 2>/dev/null || true
}

# Wait for one of our server processes to exit, at most SECONDS.  Sets
# WAIT_STATUS to its exit status (128+N when killed by signal N), or to
# "timeout" (then the server has been killed).  Must not run in a subshell:
# only the shell that started the server can wait for it.
wait_exit() { # wait_exit PID SECONDS
    local pid=$1 secs=$2 st flag=$BATS_TEST_TMPDIR/timeout.$1
    rm -f "$flag"
    # A watchdog, not a synchronisation sleep: it only fires if the server
    # overruns the deadline.
    (
        exec 3>&- 4>&- >/dev/null 2>&1
        # The trap first: a TERM that comes early must not orphan the sleep.
        trap 'kill $! 2>/dev/null; exit 0' TERM
        sleep "$secs" &
        wait $!
        touch "$flag"
        kill -KILL "$pid"
    ) &
    local dog=$!
    st=0
    wait "$pid" 2>/dev/null || st=$?
    kill -TERM "$dog" 2>/dev/null || true
    wait "$dog" 2>/dev/null || true
    if [[ -e $flag ]]; then
        WAIT_STATUS=timeout
        return 1
    fi
    WAIT_STATUS=$st
}

# Print sanitizer reports found in the stderr of the servers of this test.
sanitizer_reports() {
    local f
    for f in "$BATS_TEST_TMPDIR"/server*.err; do
        [[ -e $f ]] || continue
        grep -E -A30 'ERROR: (AddressSanitizer|LeakSanitizer)|WARNING: ThreadSanitizer|runtime error:' "$f" && return 0
    done
    return 1
}

netlabs_teardown() {
    local pid fd
    for pid in "${SERVER_PIDS[@]}"; do
        kill_group "$pid"
    done
    for fd in "${SERVER_FDS[@]}"; do
        # (no 2>/dev/null here: on exec it would silence stderr for good)
        exec {fd}<&- || true
    done
    SERVER_PIDS=()
    SERVER_FDS=()
    local reports
    if reports=$(sanitizer_reports); then
        printf '# the server reported a sanitizer error:\n%s\n' "$reports" >&2
        return 1
    fi
}

netlabs_teardown_file() {
    # Safety net: anything a timed-out or interrupted test left behind.
    local pid
    [[ -e $BATS_FILE_TMPDIR/groups ]] || return 0
    while read -r pid; do
        kill -KILL -- "-$pid" 2>/dev/null || true
    done <"$BATS_FILE_TMPDIR/groups"
}

setup() { netlabs_setup; }
teardown() { netlabs_teardown; }
teardown_file() { netlabs_teardown_file; }

# ---------- starting servers -------------------------------------------------------

# start_server [ARGS...]: start the server with -p 0 ARGS, wait for its
# "listening on" line.  Sets SERVER_PID, SERVER_ADDR, SERVER_PORT,
# SERVER_ERR (its stderr file) and SERVER_SIGIGN (the SigIgn mask of
# /proc/PID/status: what the server itself chose to ignore, since it
# starts with every signal at its default action).
# To wrap the command, set an array first: `local PRE=(prlimit --nofile=64 --)`
# (an array cannot prefix a function call the way VAR=x can).
start_server() {
    start_server_args -p 0 "$@"
}

# start_server_args ARGS...: the same, with exactly these arguments.
start_server_args() {
    local bin n fifo err pid fd line
    bin=$(server_bin)
    [[ -x $bin ]] || fail "no server binary at $bin: run 'make' first (or set SERVER=/path/to/server)"
    n=${#SERVER_PIDS[@]}
    fifo=$BATS_TEST_TMPDIR/server$n.out
    err=$BATS_TEST_TMPDIR/server$n.err
    mkfifo "$fifo"
    # env --default-signal: every signal back to its default action.  Bash
    # cannot do that itself: a shell started with SIGPIPE ignored cannot
    # un-ignore it, and `&` ignores SIGINT and SIGQUIT in the job.
    # setsid: the server gets its own process group and session.
    # The subshell first closes the harness's own fds (other servers' and
    # held clients' pipes): an inherited pipe end keeps a pipe from ever
    # reaching EOF.
    (
        close_harness_fds
        exec "${PRE[@]}" env --default-signal setsid "$bin" "$@"
    ) >"$fifo" 2>"$err" 3>&- 4>&- &
    pid=$!
    SERVER_PIDS+=("$pid")
    echo "$pid" >>"$NETLABS_GROUPS"
    # Opening the fifo waits for the server side to open it too; both
    # happen at once.  Keep it open so the server never gets SIGPIPE on
    # stdout; teardown closes it.
    exec {fd}<"$fifo"
    SERVER_FDS+=("$fd")
    local rc=0
    IFS= read -r -t "$START_TIMEOUT" line <&"$fd" || rc=$?
    if ((rc != 0)); then
        # read's status is above 128 on timeout; otherwise stdout closed.
        local why="closed its stdout or exited" said
        ((rc > 128)) && why="was still running, silent"
        said=$(grep -v '^[[:space:]]*$' "$err" 2>/dev/null | tail -1 | cut -c1-200) || true
        [[ -n $said ]] && why+="; its last words: '$said'"
        fail "$(printf '%s\n' \
            "the server did not print 'listening on ADDR:PORT' within ${START_TIMEOUT}s (it $why)." \
            "  command: $bin $*" \
            "  its stderr:" "$(sed 's/^/    /' "$err" | head -20)" \
            "  (print the line with announce_listening() after listen(), and flush stdout)")"
    fi
    if [[ ! $line =~ ^listening\ on\ ([0-9.]+):([0-9]+)$ ]]; then
        fail "expected the first stdout line to be 'listening on ADDR:PORT', got '$line' (command: $bin $*)"
    fi
    SERVER_PID=$pid
    SERVER_ADDR=${BASH_REMATCH[1]}
    SERVER_PORT=${BASH_REMATCH[2]}
    SERVER_ERR=$err
    # (|| true: a server that exits right after its line has no status file;
    # the next client then reports it gone, with its stderr.)
    SERVER_SIGIGN=$(awk '/^SigIgn:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || true
}

# stop_server: SIGTERM the current server and wait (at most 2 s) for its
# exit.  Sets SERVER_STATUS (128+N if killed by signal N; "timeout").
stop_server() {
    local pid=$SERVER_PID
    kill -TERM "$pid" 2>/dev/null || true
    wait_exit "$pid" 2 || true
    SERVER_STATUS=$WAIT_STATUS
    kill -KILL -- "-$pid" 2>/dev/null || true
}

assert_server_alive() {
    kill -0 "$SERVER_PID" 2>/dev/null && [[ $(proc_field "$SERVER_PID" State) != Z* ]] ||
        fail "$(printf '%s\n' "the server died (pid $SERVER_PID). Its stderr:" "$(tail -20 "$SERVER_ERR")")"
}

# ---------- clients ----------------------------------------------------------------

# client SCRIPT ARGS...: run tests/clients/SCRIPT against the current server
# under `run`-friendly, bounded conditions.
client() {
    local script=$1 st=0
    shift
    timeout -k 2 "$((CLIENT_TIMEOUT + 5))" python3 "$CLIENTS/$script" \
        --port "$SERVER_PORT" --timeout "$CLIENT_TIMEOUT" "$@" || st=$?
    if ((st != 0)) && [[ -n $SERVER_PID ]] && ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "the server (pid $SERVER_PID) is no longer running. The end of its stderr:"
        tail -5 "$SERVER_ERR" 2>/dev/null | sed 's/^/    /'
    fi
    return "$st"
}

# start_held SCRIPT ARGS...: start a client with --hold in the background,
# wait for its "ready" line.  Sets HELD_PID, HELD_IN (fd to its stdin),
# HELD_OUT (fd of its stdout).  release_held closes its stdin and waits.
start_held() {
    local script=$1
    shift
    local dir=$BATS_TEST_TMPDIR n=${HELD_N:-0}
    HELD_N=$((n + 1))
    mkfifo "$dir/held$n.in" "$dir/held$n.out"
    (
        close_harness_fds # an earlier held client's stdin must not stay open here
        exec timeout -k 2 "$((CLIENT_TIMEOUT + 30))" python3 "$CLIENTS/$script" \
            --port "$SERVER_PORT" --timeout "$((CLIENT_TIMEOUT + 25))" --hold "$@"
    ) <"$dir/held$n.in" >"$dir/held$n.out" 2>"$dir/held$n.err" 3>&- &
    HELD_PID=$!
    exec {HELD_IN}>"$dir/held$n.in"
    exec {HELD_OUT}<"$dir/held$n.out"
    HELD_FDS+=("$HELD_IN" "$HELD_OUT")
    HELD_ERR=$dir/held$n.err
    local line
    if ! IFS= read -r -t "$CLIENT_TIMEOUT" line <&"$HELD_OUT" || [[ $line != ready* ]]; then
        release_held || true
        fail "$(printf '%s\n' "the client $script $* did not get ready: ${line:-no output}" "$(cat "$dir/held$n.err")")"
    fi
    HELD_READY=$line
}

# Close, in a child about to exec, every fd the harness holds open.
close_harness_fds() {
    local f
    for f in "${SERVER_FDS[@]}" "${HELD_FDS[@]}"; do
        exec {f}>&- || true
    done
}

release_held() {
    exec {HELD_IN}>&-
    local st=0
    wait "$HELD_PID" || st=$?
    HELD_OUTPUT=$(cat <&"$HELD_OUT"; cat "$HELD_ERR")
    exec {HELD_OUT}<&-
    return "$st"
}

# ---------- looking at the server process -----------------------------------------------

proc_field() { # proc_field PID Field  (from /proc/PID/status)
    awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status" 2>/dev/null
}

fd_count() {
    ls "/proc/$1/fd" 2>/dev/null | wc -l
}

thread_count() {
    proc_field "$1" Threads
}

# Direct children of PID, one "pid state" per line.
children_of() {
    local stat pid ppid state
    for stat in /proc/[0-9]*/stat; do
        read -r pid _ state ppid _ <"$stat" 2>/dev/null || continue
        [[ $ppid == "$1" ]] && echo "$pid $state"
    done
    return 0
}

# CPU time (user+system) of PID in clock ticks.
# A process that is gone reads as 0 (check it is alive separately).
cpu_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# The reproduce line failure messages end with.
repro() {
    echo "reproduce: $(server_bin) -p 0 & then: $*"
}

# ---------- labs 04-05: which call the server waits in ----------------------------------

# waits_seen SCRIPT ARGS...: attach strace -f to the running server, run one
# client scenario (client SCRIPT ARGS...; it must pass), detach, and set
# WAITS_SEEN to the readiness calls the server made meanwhile, as " name "
# words (select pselect6 poll ppoll epoll_wait epoll_pwait epoll_pwait2),
# and WAITS_HOW to what saw them.  Where strace cannot attach (no ptrace
# permission), falls back to the binary's dynamic symbols (nm -D):
# WAITS_HOW=symbols.
waits_seen() {
    assert_server_alive
    local trace=$BATS_TEST_TMPDIR/waits.$SERVER_PID.out fifo=$BATS_TEST_TMPDIR/waits.$SERVER_PID.err
    local calls=select,pselect6,poll,ppoll,epoll_wait,epoll_pwait,epoll_pwait2
    local spid= sfd= msg= st=0 out
    if command -v strace >/dev/null; then
        mkfifo "$fifo"
        # Without -q, strace says "Process N attached" on stderr once it
        # traces: that line is the synchronisation.  Its own process group,
        # so teardown kills it with the servers if the test fails.
        setsid strace -f -e trace="$calls" -o "$trace" -p "$SERVER_PID" 2>"$fifo" 3>&- &
        spid=$!
        SERVER_PIDS+=("$spid")
        echo "$spid" >>"$NETLABS_GROUPS"
        exec {sfd}<"$fifo"
        SERVER_FDS+=("$sfd")
        IFS= read -r -t 5 msg <&"$sfd" || true
    fi
    out=$(client "$@" 2>&1) || st=$?
    if [[ $msg == *attached* ]]; then
        kill -INT "$spid" 2>/dev/null || true
        wait "$spid" 2>/dev/null || true
        WAITS_HOW="strace -f -e trace=$calls -p PID"
        WAITS_SEEN=" $(grep -oE '(^|[^a-z_0-9])(select|pselect6|poll|ppoll|epoll_wait|epoll_pwait2?)\(' "$trace" |
            tr -dc 'a-z_0-9\n' | sort -u | tr '\n' ' ')"
    else
        [[ -n $spid ]] && { kill -KILL "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; }
        WAITS_HOW="nm -D $(server_bin) (strace could not attach: ${msg:-strace not installed})"
        WAITS_SEEN=" $(nm -D --undefined-only "$(server_bin)" 2>/dev/null |
            awk '{print $NF}' | sed -E 's/@.*//; s/^__(p?poll)_chk$/\1/; s/^pselect$/pselect6/' |
            grep -xE 'select|pselect6|poll|ppoll|epoll_wait|epoll_pwait2?' | sort -u | tr '\n' ' ')"
    fi
    ((st == 0)) || fail "$(printf '%s\n' "the client ($*) failed while the server was traced:" "$out")"
}

# ---------- grading sandbox hook (tests/grade) ----------------------------------------
# Inert unless tests/grade runs the suite: it exports NETLABS_SANDBOX_TAG and
# points SERVER= / CLIENT= at scripts that exec tests/lib/sandbox, which
# marks every student process with NETLABS_SANDBOXED=<tag> in its environment
# and, as root, runs it as NETLABS_SANDBOX_UID.  Under tests/grade, SERVER is
# therefore a script; the real binary is NETLABS_SERVER_REAL (for tests that
# inspect the file itself).
#
# After a test's own teardown has killed its servers' process groups, a
# student process still alive escaped that group (fork + setsid: a daemon).
# It is killed here, and the test fails: a server must stop when told.

# The live (non-zombie) student processes of this grading run.
netlabs_sandbox_pids() {
    local d pid k v state uid e
    for d in /proc/[0-9]*; do
        pid=${d#/proc/}
        [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
        state= uid=
        # Bash builtins only: this runs after every test.
        while read -r k v _; do
            case $k in
            State:) state=$v ;;
            Uid:) uid=$v && break ;;
            esac
        done 2>/dev/null <"$d/status" || true
        [[ -n $state && $state != Z ]] || continue
        if [[ -n ${NETLABS_SANDBOX_UID:-} && $uid == "$NETLABS_SANDBOX_UID" ]]; then
            echo "$pid"
            continue
        fi
        while IFS= read -r -d '' e; do
            if [[ $e == "NETLABS_SANDBOXED=$NETLABS_SANDBOX_TAG" ]]; then
                echo "$pid"
                break
            fi
        done 2>/dev/null <"$d/environ" || true
    done
}

netlabs_sandbox_kill_all() {
    local i pids
    for ((i = 0; i < 50; i++)); do
        pids=$(netlabs_sandbox_pids)
        [[ -n $pids ]] || return 0
        if [[ -n ${NETLABS_SANDBOX_UID:-} && $(id -u) == 0 ]]; then
            # kill(-1) as that uid: every one of its processes at once, so a
            # fork bomb cannot outrun the sweep.
            setpriv --reuid="$NETLABS_SANDBOX_UID" --regid="$NETLABS_SANDBOX_UID" \
                --clear-groups -- /bin/sh -c 'kill -s KILL -- -1' 2>/dev/null || true
        fi
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
        sleep 0.05
    done
    return 1
}

netlabs_sandbox_sweep() {
    local i pids
    # A bounded wait for absence: processes of the groups just killed vanish
    # within milliseconds; only escaped ones are still there after 2 s.
    for ((i = 0; i < 40; i++)); do
        pids=$(netlabs_sandbox_pids)
        [[ -z $pids ]] && return 0
        sleep 0.05
    done
    local list
    list=$(for p in $pids; do
        printf '    pid %s: %s\n' "$p" "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-100)"
    done)
    netlabs_sandbox_kill_all || true
    printf '%s\n' "# the server left processes running after it was stopped (a daemon: they left the server's process group); killed:" \
        "$list" >&2
    return 1
}

# Tools a test wraps around the server (PRE=(valgrind --log-file=...)) run
# as the sandbox uid too: let that uid reach the test's directory and write
# the files named in NETLABS_SANDBOX_WRITABLE (and nothing else there).
netlabs_sandbox_setup() {
    [[ -n ${NETLABS_SANDBOX_UID:-} && $(id -u) == 0 ]] || return 0
    local d=$BATS_TEST_TMPDIR f
    while [[ $d == "$BATS_RUN_TMPDIR"* && $d != / ]]; do
        chmod o+x "$d" 2>/dev/null || true
        d=$(dirname "$d")
    done
    for f in ${NETLABS_SANDBOX_WRITABLE:-valgrind.log}; do
        : >"$BATS_TEST_TMPDIR/$f"
        chown "$NETLABS_SANDBOX_UID:$NETLABS_SANDBOX_UID" "$BATS_TEST_TMPDIR/$f"
    done
}

if [[ -n ${NETLABS_SANDBOX_TAG:-} ]]; then
    eval "netlabs_setup_unsandboxed() $(declare -f netlabs_setup | tail -n +2)"
    netlabs_setup() {
        netlabs_setup_unsandboxed
        netlabs_sandbox_setup
    }
    eval "netlabs_teardown_unsandboxed() $(declare -f netlabs_teardown | tail -n +2)"
    netlabs_teardown() {
        local st=0
        netlabs_teardown_unsandboxed || st=1
        netlabs_sandbox_sweep || st=1
        return "$st"
    }
fi
