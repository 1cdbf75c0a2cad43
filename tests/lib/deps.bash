# deps.bash - find the test tools, or install them (Debian/Ubuntu, as root).
#
# netlabs uses Debian's packages: bats (bats-core 1.8+), bats-support and
# bats-assert, which install their libraries under /usr/lib/bats where
# bats_load_library finds them.  Where the distribution's bats is older than
# 1.8 (Ubuntu 22.04 ships 1.2.1, before test tags), ensure_bats installs
# bats-core and both libraries from npm instead, at the versions below
# (npm's global prefix, /usr/local: bats in /usr/local/bin, the libraries in
# /usr/local/lib/node_modules).  Elsewhere, install bats-core 1.8+ and the two
# libraries any way you like and point BATS_LIB_PATH at them.

NETLABS_PACKAGES=(pkg-config libevent-dev liburing-dev valgrind bats bats-support bats-assert python3 python3-lxml python3-yaml strace procps iproute2 psmisc)
NETLABS_NPM_BATS=(bats@1.11.1 bats-support@0.3.0 bats-assert@2.2.4)
# Where the libraries may be: Debian's, a hand install's, npm's global ones.
NETLABS_BATS_LIB_PATH=/usr/lib/bats:/usr/local/lib/bats:/usr/local/lib/node_modules:/usr/lib/node_modules

bats_ok() {
    command -v bats >/dev/null || return 1
    local v
    v=$(bats --version | awk '{print $2}')
    # 1.8 brought test tags (--filter-tags) and BATS_TEST_TIMEOUT fixes.
    [[ $(printf '%s\n' 1.8.0 "$v" | sort -V | head -1) == 1.8.0 ]] || return 1
    local p found lib dirs
    for lib in bats-support bats-assert; do
        found=
        IFS=: read -ra dirs <<<"${BATS_LIB_PATH:-$NETLABS_BATS_LIB_PATH}"
        for p in "${dirs[@]}"; do
            [[ -e $p/$lib/load.bash ]] && found=1
        done
        [[ -n $found ]] || return 1
    done
    command -v python3 >/dev/null && command -v strace >/dev/null
}

# bats_too_old: a bats is installed, older than 1.8.
bats_too_old() {
    command -v bats >/dev/null || return 1
    local v
    v=$(bats --version | awk '{print $2}')
    [[ $(printf '%s\n' 1.8.0 "$v" | sort -V | head -1) != 1.8.0 ]]
}

# npm_bats: bats-core and its libraries from npm (as root; NETLABS_NPM_PREFIX
# installs them elsewhere instead of npm's global prefix).
npm_bats() {
    if ! command -v npm >/dev/null; then
        apt-get install -y -qq npm >/dev/null || { echo "apt-get install npm failed" >&2; return 1; }
    fi
    echo "bats $(bats --version 2>/dev/null | awk '{print $2}') is too old (netlabs needs 1.8+): installing ${NETLABS_NPM_BATS[*]} from npm"
    local prefix=(${NETLABS_NPM_PREFIX:+--prefix "$NETLABS_NPM_PREFIX"}) root
    npm install -g --no-audit --no-fund "${prefix[@]}" "${NETLABS_NPM_BATS[@]}" >/dev/null ||
        { echo "npm install failed" >&2; return 1; }
    # npm 7 and later no longer link a package's directories.bin, which is
    # how bats names its command: link it by hand, ahead of the old one.
    root=$(npm root -g "${prefix[@]}") || return 1
    mkdir -p "${NETLABS_NPM_PREFIX:-/usr/local}/bin" &&
        ln -sf "$root/bats/bin/bats" "${NETLABS_NPM_PREFIX:-/usr/local}/bin/bats" || return 1
    hash -r
}

ensure_bats() {
    if bats_ok; then
        export BATS_LIB_PATH=${BATS_LIB_PATH:-$NETLABS_BATS_LIB_PATH}
        return 0
    fi
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "installing the test tools: ${NETLABS_PACKAGES[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null &&
            apt-get install -y -qq "${NETLABS_PACKAGES[@]}" >/dev/null || {
            echo "apt-get install failed" >&2
            return 1
        }
        if ! bats_ok && bats_too_old; then npm_bats || return 1; fi
        if bats_ok; then
            export BATS_LIB_PATH=${BATS_LIB_PATH:-$NETLABS_BATS_LIB_PATH}
            return 0
        fi
    fi
    cat >&2 <<MSG
The tests need bats-core 1.8 or newer with bats-support and bats-assert,
python3 and strace.  On Debian 12 or Ubuntu 24.04:
    sudo apt-get install ${NETLABS_PACKAGES[*]}
On Ubuntu 22.04 (whose bats, 1.2.1, is too old), the same, then:
    sudo apt-get install npm && sudo npm install -g ${NETLABS_NPM_BATS[*]}
(or run the tests once as root: they install what is missing).
Elsewhere, install them and set BATS_LIB_PATH to the directory holding
bats-support/ and bats-assert/.
MSG
    return 1
}
