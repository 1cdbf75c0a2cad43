#!/usr/bin/env bats
# Lab 01: the iterative (blocking) uppercase-echo server, and its client.
#
#   bats tests/01-blocking.bats                       the reference solution
#   NETLABS_TREE=labs bats tests/01-blocking.bats     your labs/ build
#   SERVER=/path/to/server bats tests/01-blocking.bats
#
# Tags: echo (the service), design (this lab's mechanism), robust (bad
# clients), scale.

load lib/netlabs

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

# bats test_tags=echo
@test "echo: 30 clients one after another are each served" {
    start_server
    expect_pass many.py --count 30
}

# bats test_tags=echo
@test "echo: the client program sends piped lines and prints the uppercased replies" {
    start_server
    local client_bin=${CLIENT:-$(lab_binary client)}
    [[ -x $client_bin ]] || fail "no client binary at $client_bin: run 'make'"
    run timeout -k 1 10 "$client_bin" -p "$SERVER_PORT" < <(printf 'hello, world\nMiXeD 123 case\n\nlast line without newline')
    assert_success
    assert_output "$(printf 'HELLO, WORLD\nMIXED 123 CASE\n\nLAST LINE WITHOUT NEWLINE')"
}

# ---------- robust ----------------------------------------------------------------

# bats test_tags=robust
@test "robust: clients that reset (RST) mid-stream do not kill the server; the next is served" {
    start_server
    expect_pass rst.py --size 4194304 --count 3
    assert_server_alive
    expect_pass echo.py --size 4096
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

# ---------- design -----------------------------------------------------------------

# bats test_tags=design
@test "design: -p 0 listens on a port the kernel chose, and prints that port" {
    start_server
    local first=$SERVER_PORT
    [[ $first -gt 0 ]] || fail "printed port $first: print the port getsockname() returns, not the one asked for"
    start_server
    [[ $SERVER_PORT != "$first" ]] || fail "two servers started with -p 0 both printed port $first"
    expect_pass echo.py --size 1000
}

# bats test_tags=design
@test "design: the default address is 127.0.0.1, not every interface" {
    start_server
    [[ $SERVER_ADDR == 127.0.0.1 ]] || fail "announced $SERVER_ADDR:$SERVER_PORT, expected 127.0.0.1 without -a"
    # The kernel's view: a listening socket (state 0A) on 0100007F:port.
    local hexport
    hexport=$(printf '%04X' "$SERVER_PORT")
    run awk -v p=":$hexport" '$4 == "0A" && $2 ~ p"$" {print $2}' /proc/net/tcp
    assert_output "0100007F:$hexport"
    expect_pass echo.py --size 100
}

# bats test_tags=design
@test "design: a restart binds the same port at once while old connections sit in TIME_WAIT" {
    start_server
    local port=$SERVER_PORT
    start_held concurrency.py --clients 1
    # The server closes first (it dies with the connection open), so its
    # end of the connection goes to TIME_WAIT when the client closes.
    stop_server
    release_held || true
    local hexport
    hexport=$(printf '%04X' "$port")
    run awk -v p=":$hexport" '$4 == "06" && $2 ~ p"$"' /proc/net/tcp
    [[ -n $output ]] || fail "test setup: expected a TIME_WAIT socket on port $port"
    start_server_args -p "$port"
    [[ $SERVER_PORT == "$port" ]] || fail "restarted on port $SERVER_PORT, asked for $port"
    expect_pass echo.py --size 1000
}

# bats test_tags=design
@test "design: bad arguments print a usage line and exit 2; good ones listen" {
    local bin arg
    bin=$(server_bin)
    for arg in "-p 65536" "-p -1" "-p 80x" "-p" "-a not.an.address" "-x"; do
        # shellcheck disable=SC2086
        run --separate-stderr timeout -k 1 5 "$bin" $arg
        [[ $status -eq 2 ]] || fail "'server $arg' exited with $status, expected 2 (usage error)"
        [[ $stderr == *usage:* ]] || fail "'server $arg' printed no 'usage:' line on stderr: $stderr"
    done
    start_server -a 127.0.0.1
    expect_pass echo.py --size 100
}

# bats test_tags=design
@test "design: a second client waits while the first holds its connection, then is served" {
    start_server
    expect_pass concurrency.py --clients 2 --expect serial
}
