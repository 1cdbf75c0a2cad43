#!/usr/bin/env bash
# Gradescope: builds the autograder image (runs once, as root, on Ubuntu).
# The autograder zip (tests/gradescope/make-zip) holds this file,
# run_autograder, and this checkout's Makefile, common/ and tests/ (hidden
# tests included, solutions never), all unpacked into /autograder/source.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends make gcc libc6-dev bats bats-support bats-assert \
    python3 strace procps iproute2 psmisc util-linux ca-certificates
chmod +x /autograder/source/tests/grade /autograder/source/tests/lib/* 2>/dev/null || true
