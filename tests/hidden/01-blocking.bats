#!/usr/bin/env bats
# Hidden tests for lab 01: instructor-only.  tests/grade merges them into
# lab 01's score (Gradescope visibility after_due_date); `make dist` leaves
# this directory out.  Written like any tests/NN-name.bats: a copy of it in
# any HIDDEN=dir works the same way.

load lib/netlabs

# bats test_tags=echo
@test "echo: 200 clients one after another, each with its own payload" {
    start_server
    run client many.py --count 200
    assert_success
    assert_server_alive
}

# bats test_tags=robust
@test "robust: a client that resets mid-stream, then one that trickles, then a normal one" {
    start_server
    run client rst.py --size 1048576 --count 1
    assert_success
    run client trickle.py --count 20
    assert_success
    run client echo.py --size 65536
    assert_success
    assert_server_alive
}
