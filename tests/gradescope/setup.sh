#!/usr/bin/env bash
# Gradescope: builds the autograder image (runs once, as root, on Ubuntu).
# The autograder zip (tests/gradescope/make-zip) holds this file,
# run_autograder, and what tests/grade needs from this checkout (the
# Makefile, common/, the labs' tests, clients and weights, their lab.mk,
# their hidden tests; never solutions/), unpacked into /autograder/source.
#
# bats: Ubuntu 22.04's is 1.2.1, too old (netlabs needs 1.8+ for test tags):
# tests/lib/deps.bash then installs bats-core, bats-support and bats-assert
# from npm, at pinned versions.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends make gcc libc6-dev pkg-config libevent-dev liburing-dev bats bats-support bats-assert \
    python3 strace procps iproute2 psmisc util-linux ca-certificates
chmod +x /autograder/source/tests/grade /autograder/source/tests/lib/* \
    /autograder/source/tests/gradescope/* 2>/dev/null || true
cd /autograder/source
. tests/lib/deps.bash
ensure_bats
bats --version
