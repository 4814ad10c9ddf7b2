# Shared by run.sh and test.sh: install what is missing, quietly, once.

# apt_need PKG:BINARY ... installs the packages whose binary is not on PATH.
apt_need() {
    local missing=()
    for pair in "$@"; do
        local pkg=${pair%%:*} bin=${pair#*:}
        command -v "$bin" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo ">> installing ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# apt_need_pkg PKG... installs packages that ship no binary to look for (libraries).
apt_need_pkg() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo ">> installing ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

need_rust() {
    if ! command -v cargo >/dev/null 2>&1; then
        [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
    fi
    command -v cargo >/dev/null 2>&1 || {
        echo "error: cargo is not installed; install Rust with rustup (https://rustup.rs) and retry" >&2
        exit 1
    }
    # rusqlite builds SQLite from source (bundled); Opus decoding links the system libopus.
    apt_need gcc:cc pkg-config:pkg-config
    apt_need_pkg libopus-dev
}
