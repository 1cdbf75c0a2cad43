# deps.bash - find the test tools, or install them (Debian/Ubuntu, as root).
#
# netlabs uses Debian's packages: bats (bats-core 1.8+), bats-support and
# bats-assert, which install their libraries under /usr/lib/bats where
# bats_load_library finds them.  Elsewhere, install bats-core 1.8+ and the
# two libraries any way you like and point BATS_LIB_PATH at them.

NETLABS_PACKAGES=(bats bats-support bats-assert python3 strace procps iproute2 psmisc)

bats_ok() {
    command -v bats >/dev/null || return 1
    local v
    v=$(bats --version | awk '{print $2}')
    # 1.8 brought test tags (--filter-tags) and BATS_TEST_TIMEOUT fixes.
    [[ $(printf '%s\n' 1.8.0 "$v" | sort -V | head -1) == 1.8.0 ]] || return 1
    local p found lib dirs
    for lib in bats-support bats-assert; do
        found=
        IFS=: read -ra dirs <<<"${BATS_LIB_PATH:-/usr/lib/bats:/usr/local/lib/bats}"
        for p in "${dirs[@]}"; do
            [[ -e $p/$lib/load.bash ]] && found=1
        done
        [[ -n $found ]] || return 1
    done
    command -v python3 >/dev/null && command -v strace >/dev/null
}

ensure_bats() {
    bats_ok && return 0
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "installing the test tools: ${NETLABS_PACKAGES[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null &&
            apt-get install -y -qq "${NETLABS_PACKAGES[@]}" >/dev/null || {
            echo "apt-get install failed" >&2
            return 1
        }
        bats_ok && return 0
    fi
    cat >&2 <<MSG
The tests need bats-core 1.8 or newer with bats-support and bats-assert,
python3 and strace.  On Debian/Ubuntu:
    sudo apt-get install ${NETLABS_PACKAGES[*]}
Elsewhere, install them and set BATS_LIB_PATH to the directory holding
bats-support/ and bats-assert/.
MSG
    return 1
}
