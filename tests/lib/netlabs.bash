# netlabs.bash - the helpers every tests/NN-name.bats loads with `load lib/netlabs`.
#
# Which binary is tested:
#   SERVER=/path/to/server      test this binary (an instructor grading elsewhere)
#   NETLABS_TREE=labs           the student's build (default: solutions; labs
#                               where there is no solutions/, as in the tarball)
#   NETLABS_VARIANT=address     a sanitizer build (default: plain)
# The lab is the .bats file's name: tests/04-select.bats tests 04-select.
#
# Every server is started by tests/lib/launch (its own session and process
# group, every signal at its default action, no inherited fd above 2) and
# ended, whole group, by tests/lib/sweep in teardown whatever happened.
# Ports come from -p 0 and the "listening on" line, so suites can run in
# parallel.
#
# Failing fast: a client gives up once nothing has moved for
# PROGRESS_TIMEOUT seconds although the server owes it bytes (a stuck
# server fails in seconds, a slow one keeps the whole CLIENT_TIMEOUT), and
# reads the server's state from /proc before it lets go of its connections
# (tests/clients/serverstate.py).
#
# Failure messages: report_failure puts the most specific line first,
# "likely cause: ..." (how the server died, what the test saw missing, or
# the client's diagnosis), because graders show only a failure's first line.

bats_require_minimum_version 1.5.0
bats_load_library bats-support
bats_load_library bats-assert

NETLABS_ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
CLIENTS=$NETLABS_ROOT/tests/clients
LAUNCH=$NETLABS_ROOT/tests/lib/launch
SWEEP=$NETLABS_ROOT/tests/lib/sweep
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
# Deadline for one client scenario: room for real progress on a loaded
# machine, never waited out by a stuck server (see PROGRESS_TIMEOUT).
CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-20}
# Seconds with nothing moving (no byte either way while the server owes
# some) after which a client gives up.  Sanitizer builds run several times
# slower, so they get more.
case $NETLABS_VARIANT in
address) PROGRESS_TIMEOUT=${PROGRESS_TIMEOUT:-6} ;;
thread) PROGRESS_TIMEOUT=${PROGRESS_TIMEOUT:-10} ;;
*) PROGRESS_TIMEOUT=${PROGRESS_TIMEOUT:-3} ;;
esac
# The clients read these: their patience, and which lab's rules explain
# what they find in /proc.
export NETLABS_PROGRESS_TIMEOUT=$PROGRESS_TIMEOUT NETLABS_LAB=$LAB

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
    SERVER_PID= SERVER_PORT= SERVER_ADDR= SERVER_ERR= SERVER_SIGIGN= SERVER_STOPPED=
    # Every group we start, for teardown_file's safety net.
    NETLABS_GROUPS=$BATS_FILE_TMPDIR/groups
    # Exit statuses already collected (wait works once per process).
    declare -gA NETLABS_STATUS=()
    [[ -z ${NETLABS_SANDBOX_TAG:-} ]] || netlabs_sandbox_setup
}

netlabs_teardown() {
    local pid fd st=0
    for pid in "${SERVER_PIDS[@]}"; do
        end_group "$pid"
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
        st=1
    fi
    if [[ -n ${NETLABS_SANDBOX_TAG:-} ]]; then
        netlabs_sandbox_sweep || st=1
    fi
    return "$st"
}

netlabs_teardown_file() {
    # Safety net: anything a timed-out or interrupted test left behind.
    local pid args=()
    [[ -e $BATS_FILE_TMPDIR/groups ]] || return 0
    while read -r pid; do
        args+=(--group "$pid")
    done <"$BATS_FILE_TMPDIR/groups"
    ((${#args[@]} == 0)) || "$SWEEP" "${args[@]}" >/dev/null || true
}

setup() { netlabs_setup; }
teardown() { netlabs_teardown; }
teardown_file() { netlabs_teardown_file; }

# ---------- processes --------------------------------------------------------------
# No background watchdog jobs and no `wait` on a process that may be gone
# already: bash then reports "wait_for: No record of process N" at some later
# command, and that line became a test's first line.  Waits poll /proc.

# alive PID: the process exists and is not a zombie (bash builtins only).
alive() {
    local stat
    read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
    # The state follows the command name, which may hold spaces and ')'.
    stat=${stat##*) }
    [[ -n $stat && ${stat%% *} != Z ]]
}

# collect_status PID: the exit status of one of our children that has
# exited (128+N when killed by signal N), into WAIT_STATUS.  Only after
# alive has said no: wait would block on a live process.
collect_status() {
    local pid=$1 st=0
    if [[ -n ${NETLABS_STATUS[$pid]:-} ]]; then
        WAIT_STATUS=${NETLABS_STATUS[$pid]}
        return 0
    fi
    wait "$pid" 2>/dev/null || st=$?
    NETLABS_STATUS[$pid]=$st
    WAIT_STATUS=$st
}

# wait_exit PID SECONDS: wait (polling, at most SECONDS) for one of our
# servers to exit.  Sets WAIT_STATUS to its status, or to "timeout" (then it
# has been killed with SIGKILL).  Must run in the test's own shell, not in
# $(...): only the shell that started the server can collect its status.
wait_exit() {
    local pid=$1 end
    end=$(($(date +%s%N) + ${2%.*} * 1000000000))
    while alive "$pid" && (($(date +%s%N) < end)); do
        sleep 0.02
    done
    if alive "$pid"; then
        kill -KILL "$pid" 2>/dev/null || true
        while alive "$pid"; do sleep 0.02; done
        collect_status "$pid"
        WAIT_STATUS=timeout
        return 1
    fi
    collect_status "$pid"
}

# end_group PID [GRACE]: SIGTERM a server's whole process group, give it
# GRACE seconds (default 2), then SIGKILL what is left.
end_group() {
    # (most groups are gone already: a signal 0 to the group says so)
    kill -0 -- "-$1" 2>/dev/null || return 0
    "$SWEEP" --group "$1" --term "${2:-2}" >/dev/null || true
}

# poll_until MS CMD...: run CMD every 20 ms until it succeeds; fail (status
# 1) if MS milliseconds pass first.  A bounded wait for a state a correct
# server reaches by itself, not a sleep standing in for synchronisation.
poll_until() {
    local end=$(($(date +%s%3N) + $1))
    shift
    until "$@"; do
        (($(date +%s%3N) < end)) || return 1
        sleep 0.02
    done
}

# poll_progress MS CMD MEASURE...: like poll_until, but gives up early once
# MEASURE (a command printing a number, such as a count of processes still
# running) has not changed for PROGRESS_TIMEOUT seconds: a server that is
# slowly getting there keeps the whole MS, a stuck one fails at once.
poll_progress() {
    local end=$(($(date +%s%3N) + $1)) cond=$2 last= now changed
    shift 2
    changed=$(date +%s%3N)
    until $cond; do
        now=$("$@")
        if [[ $now != "$last" ]]; then
            last=$now
            changed=$(date +%s%3N)
        fi
        (($(date +%s%3N) < end)) || return 1
        (($(date +%s%3N) - changed < PROGRESS_TIMEOUT * 1000)) || return 1
        sleep 0.02
    done
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

# require_pkgs PKG...: skip (counted neither way, with the reason) when a
# library the lab is built with is not installed: the Makefile leaves such
# a lab out of the build (its lab.mk's PKGS).  A binary given with SERVER=
# was built somewhere it was there, so nothing is skipped.
require_pkgs() {
    [[ -n ${SERVER:-} ]] && return 0
    local p missing=()
    for p in "$@"; do
        pkg-config --exists "$p" 2>/dev/null || missing+=("$p")
    done
    ((${#missing[@]} == 0)) ||
        skip "this lab needs ${missing[*]}, which pkg-config cannot find here (README.md's apt-get line installs it)"
}

# require_valgrind: skip (counted neither way, with the reason) a test
# whose promise is valgrind's verdict, where valgrind cannot give it: not
# installed, or a sanitizer build (valgrind cannot run those; tests/run
# runs the same test on the plain build, where it can).
require_valgrind() {
    command -v valgrind >/dev/null || skip "valgrind is not installed"
    ! ldd "$(server_bin)" 2>/dev/null | grep -qE 'lib(a|t|ub)san' || skip "a sanitizer build: valgrind runs on the plain build"
}

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
    "$LAUNCH" -- "${PRE[@]}" "$bin" "$@" >"$fifo" 2>"$err" &
    pid=$!
    SERVER_PIDS+=("$pid")
    echo "$pid" >>"$NETLABS_GROUPS"
    # Opening the fifo waits for the server side to open it too; both
    # happen at once.  Keep it open so the server never gets SIGPIPE on
    # stdout; teardown closes it.
    exec {fd}<"$fifo"
    SERVER_FDS+=("$fd")
    # Wait for the line, but not for nothing: a server that already waits
    # for clients (in accept, epoll_wait, select, poll) without having
    # printed it never will.
    local rc=142 t0 waiting=0 w part
    t0=$(date +%s%3N)
    line=
    while (($(date +%s%3N) - t0 < START_TIMEOUT * 1000)); do
        rc=0
        # (a read that times out keeps what it got of the line in part)
        IFS= read -r -t 0.25 part <&"$fd" || rc=$?
        line+=$part
        ((rc > 128)) || break
        read -r w 2>/dev/null <"/proc/$pid/wchan" || w=
        case $w in
        inet_csk_accept | do_epoll_wait | ep_poll | poll_schedule_timeout*) waiting=$((waiting + 1)) ;;
        *) waiting=0 ;;
        esac
        ((waiting < 4)) || break
    done
    if ((rc != 0)); then
        # read's status is above 128 on timeout; otherwise stdout closed.
        local why="closed its stdout or exited" said cause=
        ((rc > 128)) && why="was still running, silent"
        said=$(grep -v '^[[:space:]]*$' "$err" 2>/dev/null | tail -1 | cut -c1-200) || true
        [[ -n $said ]] && why+="; its last words: '$said'"
        if ((waiting >= 4)); then
            cause="the server waits for clients (in accept, epoll_wait, select or poll) but its 'listening on' line never came out: stdout to a pipe is fully buffered, so fflush(stdout) right after printing it (announce_listening() does)"
        elif grep -q 'Address already in use' "$err" 2>/dev/null; then
            cause="bind() failed: address already in use. If old connections to this port sit in TIME_WAIT (a restart), set SO_REUSEADDR on the listening socket before bind()"
        elif [[ $said == *TODO* ]]; then
            cause="the server stops at a TODO that is not written yet: '$said'"
        elif ((rc <= 128)) && ! alive "$pid"; then
            collect_status "$pid"
            cause=$(death_cause "$WAIT_STATUS" "$err")
        fi
        report_failure --cause "$cause" \
            "the server did not print 'listening on ADDR:PORT' within ${START_TIMEOUT}s (it $why)." \
            "command: $bin $*" "its stderr:" "$(sed 's/^/  /' "$err" | head -20)" \
            "(print the line with announce_listening() after listen(), and flush stdout)"
    fi
    if [[ ! $line =~ ^listening\ on\ ([0-9.]+):([0-9]+)$ ]]; then
        fail "expected the first stdout line to be 'listening on ADDR:PORT', got '$line' (command: $bin $*)"
    fi
    SERVER_PID=$pid
    SERVER_ADDR=${BASH_REMATCH[1]}
    SERVER_PORT=${BASH_REMATCH[2]}
    SERVER_ERR=$err
    export NETLABS_SERVER_PID=$pid
    # (|| true: a server that exits right after its line has no status file;
    # the next client then reports it gone, with its stderr.)
    SERVER_SIGIGN=$(awk '/^SigIgn:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || true
}

# stop_server: SIGTERM the current server (not its group: SIGTERM must
# end the whole server by itself) and wait (at most 2 s) for its exit.
# Sets SERVER_STATUS (128+N if killed by signal N; "timeout").  Whatever
# is left of its group is then killed.
stop_server() {
    local pid=$SERVER_PID
    SERVER_STOPPED=$pid
    kill -TERM "$pid" 2>/dev/null || true
    wait_exit "$pid" 2 || true
    SERVER_STATUS=$WAIT_STATUS
    end_group "$pid" 0
}

# server_gone: 0 (and SERVER_DEATH set to what happened) when the current
# server is no longer running, and not because the test stopped it
# (stop_server, or SERVER_STOPPED=$SERVER_PID before signalling it).  Must
# run in the test's own shell.
server_gone() {
    SERVER_DEATH=
    [[ -n ${SERVER_PID:-} && ${SERVER_STOPPED:-} != "$SERVER_PID" ]] || return 1
    alive "$SERVER_PID" && return 1
    collect_status "$SERVER_PID"
    SERVER_DEATH=$(death_cause "$WAIT_STATUS" "$SERVER_ERR")
}

# death_cause STATUS ERRFILE: one sentence on how a server ended.
death_cause() {
    local st=$1 err=$2 said sig
    said=$(grep -v '^[[:space:]]*$' "$err" 2>/dev/null | tail -1 | cut -c1-160) || true
    if [[ $st =~ ^[0-9]+$ ]] && ((st > 128)); then
        sig=$(kill -l $((st - 128)) 2>/dev/null) || sig="signal $((st - 128))"
        case $sig in
        PIPE) echo "the server was killed by SIGPIPE: it wrote to a connection whose client had already gone. Ignore SIGPIPE (signal(SIGPIPE, SIG_IGN)) or send with MSG_NOSIGNAL, and treat EPIPE like ECONNRESET: close that client, keep serving" ;;
        SEGV | BUS) echo "the server crashed (SIG$sig): an invalid pointer or an index out of bounds. The ASan build shows where: make SAN=address, then NETLABS_VARIANT=address bats tests/$LAB.bats" ;;
        ABRT)
            if grep -q 'buffer overflow detected' "$err" 2>/dev/null; then
                echo "glibc stopped the server ('buffer overflow detected'): a write past the end of a buffer$([[ $LAB == 04-* ]] && echo ", such as FD_SET() on an fd >= FD_SETSIZE (1024), which lies outside the fd_set")"
            else
                echo "the server aborted (SIGABRT)${said:+; its last words: '$said'}"
            fi
            ;;
        *) echo "the server was killed by SIG$sig${said:+; its last words: '$said'}" ;;
        esac
        return 0
    fi
    case $said in
    *'Connection reset by peer'* | *ECONNRESET*) echo "the server exited (status $st) when a client reset its connection ('$said'): ECONNRESET (and EPIPE) end that one client, not the server: close it and keep serving" ;;
    *'Broken pipe'* | *EPIPE*) echo "the server exited (status $st) on a write to a client that had gone ('$said'): EPIPE ends that one client, not the server" ;;
    *'Too many open files'* | *EMFILE*) echo "the server exited (status $st) when it ran out of fds ('$said'): EMFILE is a reason to wait (or refuse one client), not to exit" ;;
    *'Bad file descriptor'* | *EBADF*) echo "the server exited (status $st) on an fd that was already closed ('$said'): a closed fd is still in its table" ;;
    *TODO*) echo "the server stops at a TODO that is not written yet: '$said'" ;;
    *AddressSanitizer* | *LeakSanitizer* | *'runtime error'*) echo "a sanitizer stopped the server: '$said' (its report is below)" ;;
    *) echo "the server exited (status $st)${said:+; its last words: '$said'}" ;;
    esac
}

assert_server_alive() {
    server_gone || return 0
    report_failure "the server died (pid $SERVER_PID)." "its stderr ends:" "$(tail -20 "$SERVER_ERR" | sed 's/^/  /')"
}

# ---------- failure messages ---------------------------------------------------------

# report_failure [--cause TEXT] [--hint TEXT] HEADLINE [DETAIL...]: fail
# the test.  The message starts with its most specific line, "likely
# cause: ...": how the server died if it did, else --cause (what this test
# itself saw missing), else the first "likely cause:" line of DETAIL (a
# client's diagnosis from what it saw), else --hint (the usual reason for
# this symptom, when nothing more specific is known).  Then HEADLINE (what
# was expected, what came back), then DETAIL indented, then the end of the
# server's stderr if it died.  Must run in the test's own shell (it asks
# how the server died).
report_failure() {
    local cause= hint=
    while [[ ${1:-} == --cause || ${1:-} == --hint ]]; do
        if [[ $1 == --cause ]]; then cause=$2; else hint=$2; fi
        shift 2
    done
    local head=$1
    shift
    local detail
    detail=$(printf '%s\n' "$@")
    local died=
    if server_gone; then
        died=$SERVER_DEATH
    fi
    local first=${died:-$cause}
    if [[ -z $first ]]; then
        first=$(grep -m1 -E '^[[:space:]]*likely cause: ' <<<"$detail" | sed -E 's/^[[:space:]]*likely cause: //') || true
    fi
    first=${first:-$hint}
    # Without a cause, what the client said went wrong beats the headline.
    local lead=
    [[ -n $first ]] && lead="likely cause: $first"
    [[ -z $lead ]] && lead=$(grep -m1 -E '^[[:space:]]*FAIL: ' <<<"$detail" | sed -E 's/^[[:space:]]*//') || true
    {
        [[ -n $lead ]] && echo "$lead"
        echo "$head"
        # (the line already shown first is not repeated)
        if [[ -n $lead ]]; then
            grep -v -F "${lead#likely cause: }" <<<"$detail" || true
        else
            printf '%s\n' "$detail"
        fi | sed -e '/^$/d' -e 's/^/  /'
        if [[ -n $died ]]; then
            echo "  the server is gone; the end of its stderr:"
            tail -5 "$SERVER_ERR" 2>/dev/null | sed 's/^/    /'
        fi
    } | fail
}

# ---------- clients ----------------------------------------------------------------

# run_client SCRIPT ARGS...: run tests/clients/SCRIPT against the current
# server, bounded: --timeout CLIENT_TIMEOUT, and its own progress timeout.
run_client() {
    local script=$1
    shift
    timeout -k 2 "$((CLIENT_TIMEOUT + 5))" python3 "$CLIENTS/$script" \
        --port "$SERVER_PORT" --timeout "$CLIENT_TIMEOUT" "$@"
}

# client SCRIPT ARGS...: run_client for `run client ...`; when it fails and
# the server is gone, says so after the client's output.
client() {
    local st=0
    run_client "$@" || st=$?
    if ((st != 0)) && [[ -n $SERVER_PID ]] && ! alive "$SERVER_PID"; then
        echo "the server (pid $SERVER_PID) is no longer running. The end of its stderr:"
        tail -5 "$SERVER_ERR" 2>/dev/null | sed 's/^/    /'
    fi
    return "$st"
}

# expect_pass [--cause-if CMD] [--hint TEXT] SCRIPT ARGS...: the client
# scenario must pass (exit 0).  On failure the test fails with
# report_failure: the likely cause first, then the client's report and
# reproduce line.  --cause-if CMD: a command that prints what this test's
# mechanism looks like when it is missing (nothing when it looks fine); it
# runs after a failure, while the server is still up.  --hint TEXT: the
# usual reason for this failure, shown when nothing more specific is known.
expect_pass() {
    local check= hint=
    while [[ $1 == --cause-if || $1 == --hint ]]; do
        if [[ $1 == --cause-if ]]; then check=$2; else hint=$2; fi
        shift 2
    done
    local out st=0 cause=
    out=$(run_client "$@" 2>&1) || st=$?
    ((st == 0)) && return 0
    [[ -n $check ]] && cause=$($check)
    local what="it exited $st"
    ((st == 3)) && what="it could not connect"
    ((st == 124 || st == 137)) && what="it was still running after $((CLIENT_TIMEOUT + 5)) s and was killed"
    report_failure --cause "$cause" --hint "$hint" "expected: the client $* to pass; $what:" "$out" "server: $(server_cmd)"
}

# start_held SCRIPT ARGS...: start a client with --hold in the background,
# wait for its "ready" line.  Sets HELD_PID, HELD_IN (fd to its stdin),
# HELD_OUT (fd of its stdout).  release_held closes its stdin and waits.
# HELD_CAUSE_IF=CMD: as expect_pass's --cause-if, if it does not get ready.
# HELD_TRY=1: if it does not get ready, return 1 with HELD_FAILED set to
# what happened, instead of failing the test (the test first looks at
# what it came to check).
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
    local line cause=
    # The client gives up by itself once the server stops making progress;
    # this bound is for a client that hangs.
    HELD_FAILED=
    if ! IFS= read -r -t "$((CLIENT_TIMEOUT + 5))" line <&"$HELD_OUT" || [[ $line != ready* ]]; then
        [[ -n ${HELD_CAUSE_IF:-} ]] && cause=$($HELD_CAUSE_IF)
        release_held || true
        local said="it printed '$line' instead of its 'ready' line"
        [[ -n $line ]] || said="it ended before its 'ready' line"
        HELD_FAILED=$(printf '%s\n' "expected: the client $script $* to get ready; $said:" "$(cat "$dir/held$n.err")")
        [[ -n ${HELD_TRY:-} ]] && return 1
        report_failure --cause "$cause" "expected: the client $script $* to get ready; $said:" \
            "$(cat "$dir/held$n.err")" "server: $(server_cmd)"
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

# expect_released [--cause-if CMD] WHAT [HINT...]: release_held; the held
# client must then exit 0, else the test fails with WHAT as the headline,
# the client's report, then the HINT lines.
expect_released() {
    local check= cause= st=0
    if [[ $1 == --cause-if ]]; then
        check=$2
        shift 2
    fi
    release_held || st=$?
    ((st == 0)) && return 0
    [[ -n $check ]] && cause=$($check)
    report_failure --cause "$cause" "$1" "$HELD_OUTPUT" "${@:2}" "server: $(server_cmd)"
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
        read -r pid _ state ppid _ 2>/dev/null <"$stat" || continue
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

# server_state [CLIENT-ARGS]: what tests/clients/serverstate.py reads in
# /proc about the current server: "likely cause: ..." (when the facts name
# one) and the facts.
server_state() {
    python3 "$CLIENTS/serverstate.py" --port "$SERVER_PORT" --pid "$SERVER_PID" --lab "$LAB" "$@" 2>&1
}

# ---------- strace on the running server -----------------------------------------------

# strace_try FILE ARGS...: attach strace -f ARGS -o FILE to the running
# server and wait (at most 5 s) until it traces.  Without -q, strace says
# "Process N attached" on stderr once it does: that line is the
# synchronisation.  Its own process group, so teardown ends it with the
# servers whatever happens.  0 when it traces (STRACE_PID set); 1 when it
# cannot, with STRACE_WHY saying why (not installed, or strace's words).
strace_try() {
    local out=$1 fifo line msg=
    shift
    STRACE_PID= STRACE_WHY=
    if ! command -v strace >/dev/null; then
        STRACE_WHY="strace is not installed"
        return 1
    fi
    fifo=$(mktemp -u "$BATS_TEST_TMPDIR/strace.XXXXXX")
    mkfifo "$fifo"
    setsid strace -f "$@" -o "$out" -p "$SERVER_PID" 2>"$fifo" 3>&- &
    STRACE_PID=$!
    SERVER_PIDS+=("$STRACE_PID")
    echo "$STRACE_PID" >>"$NETLABS_GROUPS"
    exec {line}<"$fifo"
    SERVER_FDS+=("$line")
    IFS= read -r -t 5 msg <&"$line" || true
    [[ $msg == *attached* ]] && return 0
    end_group "$STRACE_PID" 0
    STRACE_PID=
    STRACE_WHY="strace cannot attach to the server here: ${msg:-no output}"
    return 1
}

# strace_attach FILE ARGS...: strace_try, or skip the test saying why.  A
# server that is gone is a failure, not a reason to skip.
strace_attach() {
    strace_try "$@" && return 0
    assert_server_alive
    skip "$STRACE_WHY"
}

# strace_detach: stop tracing; the trace file is complete afterwards.
strace_detach() {
    [[ -n ${STRACE_PID:-} ]] || return 0
    kill -INT "$STRACE_PID" 2>/dev/null || true
    wait_exit "$STRACE_PID" 5 || true
}

# socket_count: how many of the server's fds are sockets (the listening
# socket and the connections; not epoll, signalfd or timer fds, which a
# server may open when it first needs them).
socket_count() {
    local f n=0
    for f in /proc/"$SERVER_PID"/fd/*; do
        [[ $(readlink "$f" 2>/dev/null) == socket:* ]] && n=$((n + 1))
    done
    echo "$n"
}

# ---------- labs 04-05: which call the server waits in ----------------------------------

# waits_seen SCRIPT ARGS...: attach strace -f to the running server, run one
# client scenario (client SCRIPT ARGS...; it must pass), detach, and set
# WAITS_SEEN to the readiness calls the server made meanwhile, as " name "
# words (select pselect6 poll ppoll epoll_wait epoll_pwait epoll_pwait2),
# and WAITS_HOW to what saw them.  Where strace cannot attach (no ptrace
# permission), falls back to the binary's dynamic symbols (nm -D):
# WAITS_HOW=symbols.  A failed client fails the test only after WAITS_SEEN
# is set, so the test can first say which call it saw (WAITS_FAILED holds
# the client's report).
waits_seen() {
    assert_server_alive
    local trace=$BATS_TEST_TMPDIR/waits.$SERVER_PID.out
    local calls=select,pselect6,poll,ppoll,epoll_wait,epoll_pwait,epoll_pwait2
    local traced= st=0 out
    strace_try "$trace" -e trace="$calls" && traced=1
    out=$(run_client "$@" 2>&1) || st=$?
    if [[ -n $traced ]]; then
        strace_detach
        WAITS_HOW="strace -f -e trace=$calls -p PID"
        WAITS_SEEN=" $(grep -oE '(^|[^a-z_0-9])(select|pselect6|poll|ppoll|epoll_wait|epoll_pwait2?)\(' "$trace" |
            tr -dc 'a-z_0-9\n' | sort -u | tr '\n' ' ')"
    else
        WAITS_HOW="nm -D $(server_bin) (${STRACE_WHY})"
        WAITS_SEEN=" $(nm -D --undefined-only "$(server_bin)" 2>/dev/null |
            awk '{print $NF}' | sed -E 's/@.*//; s/^__(p?poll)_chk$/\1/; s/^pselect$/pselect6/' |
            grep -xE 'select|pselect6|poll|ppoll|epoll_wait|epoll_pwait2?' | sort -u | tr '\n' ' ')"
    fi
    WAITS_FAILED=
    ((st == 0)) || WAITS_FAILED=$out
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
# It is killed here (tests/lib/sweep), and the test fails: a server must
# stop when told.

netlabs_sandbox_sweep() {
    local sel=(--env "NETLABS_SANDBOXED=$NETLABS_SANDBOX_TAG") left
    [[ -n ${NETLABS_SANDBOX_UID:-} ]] && sel+=(--uid "$NETLABS_SANDBOX_UID")
    # Processes of the groups just killed vanish within milliseconds; only
    # escaped ones are still there after 2 s.
    left=$("$SWEEP" --wait 2 "${sel[@]}") || true
    [[ -z $left ]] && return 0
    printf '%s\n' "# the server left processes running after it was stopped (a daemon: they left the server's process group); killed:" \
        "$(sed 's/^/    pid /' <<<"$left")" >&2
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
