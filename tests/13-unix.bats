#!/usr/bin/env bats
# Lab 13: the uppercase echo on a Unix-domain socket (-u PATH, -u @NAME),
# who is on the other end (SO_PEERCRED, --allow-uid), and a prefork master
# that hands TCP connections to worker processes (-w N, SCM_RIGHTS).
#
#   bats tests/13-unix.bats                       the reference solution
#   NETLABS_TREE=labs bats tests/13-unix.bats     your labs/ build
#   SERVER=/path/to/server bats tests/13-unix.bats
#
# Tags: echo (the service, over each kind of socket), design (the socket
# file, the abstract name, credentials, the prefork tree as /proc shows it),
# robust (bad arguments, bad clients, a master that dies), scale.
#
# The Unix-socket clients are tests/clients/ux_*.py (they take --unix PATH
# or --unix @NAME); ux_prefork.py reads /proc to say which process holds
# each TCP connection.  One test needs a client running under another uid:
# as root it uses setpriv; otherwise it is skipped, and says why.

load lib/netlabs

setup() {
    netlabs_setup
    UX_DIR=
}

teardown() {
    local st=0
    netlabs_teardown || st=$?
    [[ -n ${UX_DIR:-} ]] && rm -rf "$UX_DIR"
    return "$st"
}

# ---------- helpers for this lab --------------------------------------------------

# ux_dir: UX_DIR, a fresh directory for this test's socket files.  Not in
# $BATS_TEST_TMPDIR: sun_path holds 107 bytes and bats' directories can be
# long, and under the grader both the server (the sandbox uid) and a client
# of another uid must reach it, while bats' directories are private (umask
# 077).  So: a short one under /tmp, traversable by all, owned by the uid
# the server runs as; teardown removes it.
ux_dir() {
    UX_DIR=$(mktemp -d /tmp/nlux.XXXXXX)
    chmod 755 "$UX_DIR"
    if [[ -n ${NETLABS_SANDBOX_UID:-} && $(id -u) == 0 ]]; then
        chown "$NETLABS_SANDBOX_UID:$NETLABS_SANDBOX_UID" "$UX_DIR"
    fi
}

# ux_start ARGS...: start the server with exactly ARGS (one of them -u NAME)
# and wait for its line 'listening on unix:NAME'.  The same guarantees as
# the harness's start_server (it expects ADDR:PORT instead): started by
# tests/lib/launch in a process group of its own, recorded in SERVER_PIDS
# and the file's group list, so teardown ends it whatever happens.  Sets
# SERVER_PID, SERVER_ERR, UX_CMD (the command, for messages).
# UX_NOFILE=N: its fd limit.
ux_start() {
    local bin n fifo err pid fd line= part rc=142 t0 name= a prev=
    bin=$(server_bin)
    [[ -x $bin ]] || fail "no server binary at $bin: run 'make' first (or set SERVER=/path/to/server)"
    for a in "$@"; do
        [[ $prev == -u ]] && name=$a
        prev=$a
    done
    n=${#SERVER_PIDS[@]}
    fifo=$BATS_TEST_TMPDIR/server$n.out
    err=$BATS_TEST_TMPDIR/server$n.err
    mkfifo "$fifo"
    "$LAUNCH" ${UX_NOFILE:+--nofile "$UX_NOFILE"} -- "${PRE[@]}" "$bin" "$@" >"$fifo" 2>"$err" &
    pid=$!
    SERVER_PIDS+=("$pid")
    echo "$pid" >>"$NETLABS_GROUPS"
    exec {fd}<"$fifo"
    SERVER_FDS+=("$fd")
    SERVER_PID=$pid SERVER_ERR=$err SERVER_PORT= SERVER_ADDR=
    UX_CMD="$bin $*"
    t0=$(date +%s%3N)
    while (($(date +%s%3N) - t0 < START_TIMEOUT * 1000)); do
        rc=0
        IFS= read -r -t 0.25 part <&"$fd" || rc=$?
        line+=$part
        ((rc > 128)) || break
    done
    if ((rc != 0)); then
        local why="closed its stdout or exited" cause=
        ((rc > 128)) && why="was still running, silent"
        if ((rc <= 128)) && ! alive "$pid"; then
            collect_status "$pid"
            cause=$(death_cause "$WAIT_STATUS" "$err")
        fi
        # (a server that died has the end of its stderr shown by report_failure)
        local said=()
        alive "$pid" && said=("its stderr:" "$(sed 's/^/  /' "$err" | head -20)")
        report_failure --cause "$cause" \
            "expected the server to print 'listening on unix:$name' within ${START_TIMEOUT}s; it $why." \
            "command: $UX_CMD" "${said[@]}"
    fi
    if [[ $line != "listening on unix:$name" ]]; then
        report_failure "expected the first stdout line to be 'listening on unix:$name', got '$line'." \
            "command: $UX_CMD"
    fi
}

# ux_expect [--hint TEXT] SCRIPT ARGS...: run tests/clients/SCRIPT (bounded);
# it must pass, else the test fails with its report and the server command.
ux_expect() {
    local hint= out st=0
    if [[ $1 == --hint ]]; then
        hint=$2
        shift 2
    fi
    out=$(timeout -k 2 "$((CLIENT_TIMEOUT + 5))" python3 "$CLIENTS/$1" --timeout "$CLIENT_TIMEOUT" "${@:2}" 2>&1) || st=$?
    ((st == 0)) && { UX_OUT=$out; return 0; }
    local what="it exited $st"
    ((st == 3)) && what="it could not connect"
    ((st == 124 || st == 137)) && what="it was still running after $((CLIENT_TIMEOUT + 5)) s and was killed"
    report_failure --hint "$hint" "expected: the client $* to pass; $what:" "$out" \
        "server: ${UX_CMD:-$(server_cmd)}"
}

# The python3 that a process of another uid can run (a python3 under
# /root, pyenv's, is not), or nothing.
ux_python_for_others() {
    local p
    for p in "$(command -v python3)" /usr/bin/python3; do
        [[ -x $p ]] || continue
        setpriv --reuid=65534 --regid=65534 --clear-groups -- "$p" -c '' 2>/dev/null && { echo "$p"; return 0; }
    done
    return 1
}

# ux_as UID SCRIPT ARGS...: run a client as UID (root only), like ux_expect
# runs one; sets UX_OUT and UX_ST instead of failing.
ux_as() {
    local uid=$1 script=$2
    shift 2
    UX_ST=0
    UX_OUT=$(timeout -k 2 "$((CLIENT_TIMEOUT + 5))" setpriv --reuid="$uid" --regid="$uid" --clear-groups -- \
        "$UX_PY" "$CLIENTS/$script" --timeout "$CLIENT_TIMEOUT" "$@" 2>&1) || UX_ST=$?
}

# unused_uid [AVOID...]: a uid no account and no process uses (and none of
# AVOID).
unused_uid() {
    local u=$((3900000 + (RANDOM % 5000) * 7))
    while getent passwd "$u" >/dev/null || [[ -n $(ps -o pid= -U "$u" 2>/dev/null) ]] ||
        [[ " $* " == *" $u "* ]]; do
        u=$((u + 1))
    done
    echo "$u"
}

# The server's children: the live ones (its workers) and the zombies.
live_workers() { children_of "$SERVER_PID" | awk '$2 != "Z" {print $1}'; }
zombies() { children_of "$SERVER_PID" | awk '$2 == "Z" {print $1}'; }
n_live_workers() { live_workers | wc -l; }

# stop_with SIG: send SIG to the server (not its group) and wait (2 s).
stop_with() {
    SERVER_STOPPED=$SERVER_PID
    kill -"$1" "$SERVER_PID"
    wait_exit "$SERVER_PID" 2 || true
}

# The mode of a file as 3 octal digits, or "none".
mode_of() { stat -c %a "$1" 2>/dev/null || echo none; }

# A line of /proc/net/unix whose path is exactly $1 (@NAME for an abstract
# name; NULs show as @).
proc_unix_has() { awk -v p="$1" 'NR > 1 && $8 == p {f = 1} END {exit !f}' /proc/net/unix; }
proc_unix_like() { awk -v p="$1" 'NR > 1 && index($8, p) == 1 {print $8}' /proc/net/unix | head -3; }

# ---------- echo ---------------------------------------------------------------------

# bats test_tags=echo
@test "echo: -u PATH prints 'listening on unix:PATH'; every byte value comes back uppercased, then EOF after a half-close" {
    ux_dir
    ux_start -u "$UX_DIR/echo.sock"
    ux_expect ux_echo.py --unix "$UX_DIR/echo.sock" --size 262144
    ux_expect ux_echo.py --unix "$UX_DIR/echo.sock" --halfclose --size 1048576
}

# bats test_tags=echo
@test "echo: -u PATH: 100 clients connected at once each get exactly their own bytes" {
    ux_dir
    ux_start -u "$UX_DIR/echo.sock"
    ux_expect ux_echo.py --unix "$UX_DIR/echo.sock" --clients 100 --size 8192
}

# bats test_tags=echo
@test "echo: without -u or -w the server is the TCP echo of every lab (-p 0, byte-exact, half-close, 50 at once)" {
    start_server
    expect_pass echo.py --size 262144
    expect_pass halfclose.py --size 1048576
    expect_pass concurrency.py --clients 50
}

# bats test_tags=echo
@test "echo: -w 3: the prefork master's connections are served by its workers, byte-exact, 50 at once, half-close" {
    start_server -w 3
    expect_pass echo.py --size 262144
    expect_pass concurrency.py --clients 50
    expect_pass halfclose.py --size 1048576
}

# ---------- design: the socket file -----------------------------------------------------

# bats test_tags=design
@test "design: the socket file is created 0600 whatever the umask, and removed at SIGTERM and at SIGINT (exit 0)" {
    ux_dir
    local sock=$UX_DIR/echo.sock sig mode
    # umask 0: a server that leaves the mode to the umask makes the file
    # 0777, and anyone on the machine may connect.
    local PRE=(sh -c 'umask 0 && exec "$0" "$@"')
    for sig in TERM INT; do
        ux_start -u "$sock"
        mode=$(mode_of "$sock")
        [[ $mode == 600 ]] || report_failure \
            --cause "bind() creates the socket file with mode 0777 minus the umask (0 here): set the umask to 0177 around bind() (or create the file in a directory only you can enter)" \
            "expected $sock to be created with mode 600 (owner only) under umask 0; it is $mode." \
            "ls -l: $(ls -l "$sock" 2>&1)" "command: umask 0; $UX_CMD"
        ux_expect ux_echo.py --unix "$sock" --size 4096
        stop_with "$sig"
        [[ $WAIT_STATUS == 0 ]] || report_failure \
            "expected exit status 0 within 2 s of SIG$sig; got $WAIT_STATUS." "its stderr:" "$(tail -5 "$SERVER_ERR")" "command: $UX_CMD"
        [[ ! -e $sock && ! -L $sock ]] || report_failure \
            --cause "at SIGTERM/SIGINT, after the loop ends, unlink() the path the server bound: a file left behind makes the next server think one is still there (or, worse, a client connects to nothing)" \
            "expected $sock to be gone after the server exited on SIG$sig; it is still there: $(ls -l "$sock" 2>&1)" "command: $UX_CMD"
    done
}

# bats test_tags=design
@test "design: a stale socket file left by a killed server is replaced: the next server listens there and serves" {
    ux_dir
    local sock=$UX_DIR/echo.sock
    ux_start -u "$sock"
    stop_with KILL
    [[ -S $sock ]] || fail "expected the socket file $sock to remain after SIGKILL (nothing can remove it then); it is gone. command: $UX_CMD"
    ux_start -u "$sock"
    ux_expect ux_echo.py --unix "$sock" --size 65536
}

# bats test_tags=design
@test "design: a live server's path is never taken: a second server on it exits 1 saying so; the first keeps its file and serves" {
    ux_dir
    local sock=$UX_DIR/echo.sock ino first
    ux_start -u "$sock"
    first=$SERVER_PID
    ino=$(stat -c %i "$sock")
    run timeout -k 1 5 "$(server_bin)" -u "$sock"
    if ((status != 1)); then
        local cause="before unlink(), connect() to the path: if a server answers, it is alive: exit 1 and leave its file alone. Only ECONNREFUSED means the file is stale"
        ((status == 124)) && cause="the second server took the path and kept running: it unlinked the live server's socket file and bound its own (the first server is now unreachable). $cause"
        report_failure --cause "$cause" \
            "expected a second server on $sock (a live server listens there) to exit 1; it exited $status." \
            "its output: $(head -c 400 <<<"$output")" "reproduce: $(server_bin) -u $sock & then: $(server_bin) -u $sock"
    fi
    if ! grep -qiE 'in use|another|already|listening|alive' <<<"$output" || ! grep -qF "$sock" <<<"$output"; then
        report_failure "expected the second server to say why it exits: the path ($sock) and that a server is listening there (in use); it said: '$(head -c 300 <<<"$output")'" \
            "reproduce: $(server_bin) -u $sock & then: $(server_bin) -u $sock"
    fi
    SERVER_PID=$first
    assert_server_alive
    [[ $(stat -c %i "$sock" 2>/dev/null) == "$ino" ]] || report_failure \
        --cause "the second server unlinked the live server's socket file before giving up: look (connect) before you unlink" \
        "expected $sock to be the first server's socket file still (inode $ino); it is $(stat -c 'inode %i' "$sock" 2>&1)."
    ux_expect ux_echo.py --unix "$sock" --size 4096
}

# bats test_tags=design
@test "design: a path that exists but is not a socket is left alone: exit 1 saying it is not a socket, the file unchanged" {
    ux_dir
    local path=$UX_DIR/precious
    echo "precious data" >"$path"
    chmod 666 "$path"
    run timeout -k 1 5 "$(server_bin)" -u "$path"
    [[ $(cat "$path" 2>/dev/null) == "precious data" && ! -S $path ]] || report_failure \
        --cause "connect() to a regular file also fails with ECONNREFUSED: lstat() the path first and remove it only if it is a socket (S_ISSOCK)" \
        "expected the regular file $path to be left as it was; it was removed or replaced: $(ls -l "$path" 2>&1)" \
        "reproduce: echo data > /tmp/f; $(server_bin) -u /tmp/f"
    ((status == 1)) && grep -qi 'not a socket' <<<"$output" || report_failure \
        "expected the server to exit 1 with a message that $path is not a socket; it exited $status and said: '$(head -c 300 <<<"$output")'" \
        "reproduce: echo data > /tmp/f; $(server_bin) -u /tmp/f"
}

# bats test_tags=design
@test "design: at exit the server removes only its own socket file, not a newer server's at the same path" {
    ux_dir
    local sock=$UX_DIR/echo.sock old
    ux_start -u "$sock"
    old=$SERVER_PID
    rm -f "$sock"
    ux_start -u "$sock"
    SERVER_PID=$old
    stop_with TERM
    [[ -S $sock ]] || report_failure \
        --cause "at exit, unlink() the path only if it is still the file you created: stat() it after bind() and compare st_dev and st_ino before removing it" \
        "the first server's file was removed by hand and a second server bound $sock; on SIGTERM the first server removed the second one's socket file."
    ux_expect ux_echo.py --unix "$sock" --size 4096
}

# bats test_tags=design
@test "design: -u @NAME binds exactly NAME in the abstract namespace (no file, no trailing NULs); a second server on it exits 1" {
    ux_dir
    cd "$UX_DIR" # where a server that forgets the leading NUL creates its file
    local name=nl13-$$-$RANDOM
    ux_start -u "@$name"
    if ! proc_unix_has "@$name"; then
        local seen cause="the address is sun_family, a NUL, then the name; its length is offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name), not sizeof(struct sockaddr_un)"
        seen=$(proc_unix_like "@$name")
        [[ $seen == "@$name@"* ]] && cause="the bound name has NULs after NAME (/proc/net/unix shows them as @): bind() was given sizeof(struct sockaddr_un) instead of the exact length, so the name is NAME plus ~100 NULs and no client asking for NAME finds it"
        [[ -e $UX_DIR/@$name ]] && cause="a file named '@$name' appeared in the server's working directory: sun_path[0] must be NUL for an abstract name (strip the @, put a NUL there)"
        report_failure --cause "$cause" \
            "expected /proc/net/unix to list a socket bound to exactly '@$name'; found: ${seen:-none}." "command: $UX_CMD"
    fi
    ux_expect ux_echo.py --unix "@$name" --size 65536
    run timeout -k 1 5 "$(server_bin)" -u "@$name"
    ((status == 1)) || report_failure \
        "expected a second server on @$name to exit 1 (bind: EADDRINUSE); it exited $status: '$(head -c 300 <<<"$output")'" \
        "reproduce: $(server_bin) -u @$name & then: $(server_bin) -u @$name"
    ux_expect ux_echo.py --unix "@$name" --size 4096
}

# bats test_tags=design
@test "design: the longest path that fits sun_path (107 bytes) is served; 108 bytes is refused with exit 2, and no shortened file appears" {
    ux_dir
    local fit=$UX_DIR/ long
    while ((${#fit} < 107)); do fit+=a; done
    long=${fit}b
    run timeout -k 1 5 "$(server_bin)" -u "$long"
    ((status == 2)) || report_failure \
        --cause "sun_path is 108 bytes and must hold the path and its NUL: a path of 108 bytes or more is a usage error (exit 2), never truncated" \
        "expected -u with a 108-byte path to exit 2; it exited $status: '$(head -c 300 <<<"$output")'"
    [[ -z $(ls -A "$UX_DIR") ]] || report_failure \
        "a path of 108 bytes was refused, but a file appeared anyway: $(ls -A "$UX_DIR") (the path was cut short to fit)"
    ux_start -u "$fit"
    ux_expect ux_echo.py --unix "$fit" --size 4096
}

# ---------- design: credentials ---------------------------------------------------------

# bats test_tags=design
@test "design: SO_PEERCRED: with -v the server logs each Unix peer's pid and uid" {
    ux_dir
    ux_start -u "$UX_DIR/echo.sock" -v
    ux_expect ux_peer.py --unix "$UX_DIR/echo.sock"
    local pid uid
    pid=$(sed -nE 's/.*\(pid ([0-9]+)\).*/\1/p' <<<"$UX_OUT" | head -1)
    uid=$(id -u)
    poll_until 2000 grep -qE "(^|[^0-9])pid $pid([^0-9].*)?[^0-9]uid $uid([^0-9]|\$)" "$SERVER_ERR" || report_failure \
        --cause "getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) on the accepted socket gives struct ucred {pid, uid, gid}: log 'connect unix pid PID uid UID gid GID' with -v" \
        "expected the server's stderr to name the peer's pid $pid and uid $uid on one line (a client served over the Unix socket); its stderr:" \
        "$(tail -5 "$SERVER_ERR")" "command: $UX_CMD"
}

# bats test_tags=design
@test "design: --allow-uid UID: the socket file is 0666 and peers of the server's own uid are served" {
    ux_dir
    local sock=$UX_DIR/echo.sock own other
    local PRE=(sh -c 'umask 077 && exec "$0" "$@"')
    other=$(unused_uid)
    ux_start -u "$sock" --allow-uid "$other"
    own=$(proc_field "$SERVER_PID" Uid)
    [[ $(mode_of "$sock") == 666 ]] || report_failure \
        --cause "with --allow-uid the credential check is the gate, so every uid must be able to connect: create the file 0666 (umask 0111 around bind())" \
        "expected $sock to be 0666 with --allow-uid (under umask 077); it is $(mode_of "$sock")." "command: $UX_CMD"
    if [[ $own == "$(id -u)" ]]; then
        ux_expect ux_peer.py --unix "$sock"
    else
        UX_PY=$(ux_python_for_others) || skip "the server runs as uid $own and no python3 here can run as that uid"
        ux_as "$own" ux_peer.py --unix "$sock"
        ((UX_ST == 0)) || report_failure \
            "expected a client of the server's own uid ($own) to be served with --allow-uid $other; it exited $UX_ST:" "$UX_OUT" "command: $UX_CMD"
    fi
}

# bats test_tags=design
@test "design: --allow-uid UID: a peer of UID is served; a peer of another uid is closed at once, unserved, logged; the next is served" {
    ux_dir
    local sock=$UX_DIR/echo.sock own allowed other pid
    allowed=$(unused_uid)
    other=$(unused_uid "$allowed")
    ux_start -u "$sock" --allow-uid "$allowed"
    own=$(proc_field "$SERVER_PID" Uid)
    # What can be checked as any user first: the server serves its own uid.
    if [[ $own == "$(id -u)" ]]; then
        ux_expect ux_peer.py --unix "$sock"
    fi
    if [[ $(id -u) != 0 ]] || ! command -v setpriv >/dev/null; then
        skip "needs a client under another uid (root and setpriv: run as root, or under tests/grade as root)"
    fi
    UX_PY=$(ux_python_for_others) || skip "no python3 here can run under another uid (python3 under /root?)"
    [[ $own == "$(id -u)" ]] || {
        ux_as "$own" ux_peer.py --unix "$sock"
        ((UX_ST == 0)) || report_failure "expected a client of the server's own uid ($own) to be served; it exited $UX_ST:" "$UX_OUT" "command: $UX_CMD"
    }
    ux_as "$allowed" ux_peer.py --unix "$sock"
    ((UX_ST == 0)) || report_failure \
        --cause "compare the peer's uid (SO_PEERCRED) with the --allow-uid value: that uid must be served" \
        "expected a client of uid $allowed (the --allow-uid value) to be served; it exited $UX_ST:" "$UX_OUT" "command: $UX_CMD"
    ux_as "$other" ux_peer.py --unix "$sock" --expect-closed 2
    ((UX_ST == 0)) || report_failure \
        "expected a client of uid $other (neither $allowed nor the server's own, $own) to be closed within 2 s without a byte; it exited $UX_ST:" \
        "$UX_OUT" "command: $UX_CMD"
    pid=$(sed -nE 's/.*\(pid ([0-9]+)\).*/\1/p' <<<"$UX_OUT" | head -1)
    poll_until 2000 grep -qE "(^|[^0-9])pid $pid([^0-9].*)?[^0-9]uid $other([^0-9]|\$)" "$SERVER_ERR" || report_failure \
        --cause "a refused peer is always logged (not only with -v), with its pid and uid: 'refuse unix pid PID uid UID ...'" \
        "expected the server's stderr to name the refused peer (pid $pid, uid $other); its stderr:" "$(tail -5 "$SERVER_ERR")"
    assert_server_alive
    ux_as "$allowed" ux_peer.py --unix "$sock"
    ((UX_ST == 0)) || report_failure "expected the next client (uid $allowed) to be served after a refusal; it exited $UX_ST:" "$UX_OUT"
}

# ---------- design: prefork ---------------------------------------------------------------

# bats test_tags=design
@test "design: -w 3: each connection is held by exactly one worker, the master holds none, and 6 connections spread 2 per worker" {
    start_server -w 3
    expect_pass ux_prefork.py --master "$SERVER_PID" --workers 3 --conns 6 --spread
}

# bats test_tags=design
@test "design: -w 3: only the master holds the listening socket; a worker holds its clients and its own channel, nothing else" {
    start_server -w 3
    expect_pass ux_prefork.py --master "$SERVER_PID" --workers 3 --conns 3 --listener
}

# bats test_tags=design
@test "design: -w 3: a killed worker is reaped and replaced; the next 6 clients spread over all 3, the new one included" {
    start_server -w 3 -v
    expect_pass ux_prefork.py --master "$SERVER_PID" --workers 3 --conns 3
    local victim
    victim=$(live_workers | head -1)
    kill -KILL "$victim"
    replaced() {
        local live
        live=$(live_workers)
        [[ $(wc -l <<<"$live") == 3 && -z $(zombies) ]] && ! grep -qx "$victim" <<<"$live"
    }
    poll_until 3000 replaced || report_failure \
        --cause "$([[ -n $(zombies) ]] && echo "worker $victim is a zombie: the master must reap it (SIGCHLD, then waitpid(-1, &status, WNOHANG) in a loop) and start a new worker in its slot" || echo "the master reaped worker $victim but did not start a new one in its place")" \
        "expected, within 3 s of SIGKILL to worker $victim, 3 live workers again (none of them $victim) and no zombie; children now:" \
        "$(children_of "$SERVER_PID")" "the master's stderr:" "$(tail -5 "$SERVER_ERR")"
    expect_pass ux_prefork.py --master "$SERVER_PID" --workers 3 --conns 6 --spread
}

# bats test_tags=design
@test "design: -w 3: SIGTERM to the master ends the whole tree: exit 0 within 2 s, every worker gone, every client closed" {
    start_server -w 3
    local workers w
    workers=$(live_workers)
    start_held ux_prefork.py --master "$SERVER_PID" --workers 3 --conns 6 --expect-eof --settle 2
    stop_with TERM
    [[ $WAIT_STATUS == 0 ]] || report_failure \
        "expected the master to exit 0 within 2 s of SIGTERM; got $WAIT_STATUS." "its stderr:" "$(tail -5 "$SERVER_ERR")"
    gone() { local p; for p in $workers; do alive "$p" && return 1; done; return 0; }
    poll_until 1000 gone || report_failure \
        --cause "at SIGTERM the master must stop its workers (kill(pid, SIGTERM) each, or close their channels so they see EOF) and wait for them before it exits" \
        "expected every worker ($(echo $workers)) to be gone within 1 s of the master's exit; still running: $(for w in $workers; do alive "$w" && echo -n "$w "; done)"
    expect_released "expected every client connection to be closed once the tree was stopped"
}

# ---------- robust -------------------------------------------------------------------------

# bats test_tags=robust
@test "robust: bad arguments exit 2: --allow-uid without -u, -u with -w, -w 0, -w x, --allow-uid x, -u '', and a path over 107 bytes" {
    ux_dir
    local long=$UX_DIR/ args
    while ((${#long} < 200)); do long+=x; done
    local cases=("--allow-uid 1000" "-u $UX_DIR/s -w 2" "-w 0" "-w x" "-u $UX_DIR/s --allow-uid x" "-u ''" "-u $long")
    for args in "${cases[@]}"; do
        eval "run timeout -k 1 5 \"\$(server_bin)\" $args"
        ((status == 2)) || report_failure \
            "expected '$args' to be a usage error (a usage line on stderr, exit 2); it exited $status: '$(head -c 300 <<<"$output")'" \
            "reproduce: $(server_bin) $args"
    done
    [[ -z $(ls -A "$UX_DIR") ]] || report_failure "bad arguments, yet a file appeared: $(ls -A "$UX_DIR")"
}

# bats test_tags=robust
@test "robust: -u: 20 clients that send and leave without reading do not stop the server; the next is served" {
    ux_dir
    ux_start -u "$UX_DIR/echo.sock"
    ux_expect ux_echo.py --unix "$UX_DIR/echo.sock" --hangups 20 --size 262144
    assert_server_alive
}

# bats test_tags=robust
@test "robust: -w 3: when the master is killed (SIGKILL), its workers leave by themselves (EOF on their channel)" {
    start_server -w 3
    local workers
    workers=$(live_workers)
    expect_pass ux_prefork.py --master "$SERVER_PID" --workers 3 --conns 3
    stop_with KILL
    gone() { local p; for p in $workers; do alive "$p" && return 1; done; return 0; }
    poll_until 3000 gone || report_failure \
        --cause "a worker must leave when recvmsg() on its channel returns 0 (EOF: the master is gone), or orphans serve for ever and nobody can stop them; and no worker may hold another worker's channel end, or that EOF never comes" \
        "expected the workers ($(echo $workers)) to exit within 3 s of their master's SIGKILL; still running: $(for w in $workers; do alive "$w" && echo -n "$w "; done)"
}

# bats test_tags=robust
@test "robust: -w 2: after 200 connections (every fourth reset) the master's fd count is what it was" {
    start_server -w 2
    local before
    before=$(fd_count "$SERVER_PID")
    expect_pass many.py --count 200
    back() { (($(fd_count "$SERVER_PID") <= before)); }
    poll_until 2000 back || report_failure \
        --cause "the master keeps a descriptor per connection: close(fd) after send_fd(), and on every path that does not hand it over" \
        "expected the master's fd count to return to $before after 200 connections; it is $(fd_count "$SERVER_PID")." \
        "its fds: $(ls -l /proc/"$SERVER_PID"/fd 2>/dev/null | awk 'NR > 1 {print $NF}' | sort | uniq -c | sort -rn | head -5 | tr '\n' ';')"
}

# ---------- scale ----------------------------------------------------------------------------

# bats test_tags=scale
@test "scale: -u: 3,000 clients connected at once are all served" {
    ux_dir
    local UX_NOFILE=8192
    ux_start -u "$UX_DIR/echo.sock"
    ux_expect ux_echo.py --unix "$UX_DIR/echo.sock" --clients 3000 --size 256
}
