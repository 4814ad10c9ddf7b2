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
    # rusqlite builds SQLite from source (bundled); Opus decoding links the system libopus;
    # the softphone's audio devices (cpal) link ALSA.
    apt_need gcc:cc pkg-config:pkg-config
    apt_need_pkg libopus-dev libasound2-dev
}

# The desktop app (Tauri 2 on WebKitGTK): its build libraries, and Node for the UI.
need_desktop_build() {
    apt_need_pkg libwebkit2gtk-4.1-dev libjavascriptcoregtk-4.1-dev libsoup-3.0-dev libgtk-3-dev \
        librsvg2-dev libayatana-appindicator3-dev libasound2-dev
    command -v npm >/dev/null 2>&1 || apt_need npm:npm
}

# ui/: install the locked packages when missing, then build ui/dist (embedded into the
# app's binary at compile time).
build_ui() {
    ( cd ui
      if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
          echo ">> npm ci (ui/)" >&2
          npm ci --no-audit --no-fund --loglevel=error >&2
      fi
      npm run --silent build >&2 )
}

# The desktop app's end-to-end test: Xvfb, WebKitWebDriver, tauri-driver.
need_desktop_e2e() {
    # xdotool presses the app's global shortcut on the virtual display.
    apt_need xvfb:Xvfb webkit2gtk-driver:WebKitWebDriver xdotool:xdotool
    if ! command -v tauri-driver >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/tauri-driver" ]; then
        echo ">> cargo install tauri-driver" >&2
        cargo install tauri-driver --locked --quiet
    fi
}
