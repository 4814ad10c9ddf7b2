#!/usr/bin/env bash
# The main job. On a desktop (DISPLAY or WAYLAND_DISPLAY set): the Hark desktop app, in
# embedded PBX mode on first launch (it sets up the office, your extension, and starts the
# PBX). Without a display: the PBX headless; its first run creates a data directory with
# two extensions and prints their passwords. HARK_HEADLESS=1 forces the headless PBX.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

need_rust
if [ -z "${HARK_HEADLESS:-}" ] && { [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; }; then
    need_desktop_build
    build_ui
    cargo build --release --quiet -p hark-desktop
    echo ">> starting the Hark desktop app (data: ${HARK_DESKTOP_DATA:-$HOME/.local/share/hark/desktop})" >&2
    exec target/release/hark-desktop
fi
cargo build --release --quiet -p hark-cli
hark=target/release/hark

data=${HARK_DATA:-$HOME/.local/share/hark/pbx}
domain=${HARK_DOMAIN:-hark.local}
if [ ! -f "$data/hark.db" ]; then
    "$hark" pbx init --data "$data" --domain "$domain"
    for ext in 101 102; do
        pw=$(LC_ALL=C tr -dc 'a-zA-Z0-9' </dev/urandom | head -c 12 || true)
        "$hark" pbx user add --data "$data" --tenant default --ext "$ext" --password "$pw"
        echo "   extension $ext password: $pw"
    done
    echo "   turn recording on for everyone: $hark pbx tenant set --data $data --tenant default --audio-recording on"
fi

# SIP on 5060, or the next free port when another server holds it.
port=${HARK_SIP_PORT:-5060}
while ss -Hlun "sport = :$port" 2>/dev/null | grep -q . || ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; do
    port=$((port + 1))
done
http=${HARK_HTTP:-127.0.0.1:8080}
echo ">> PBX for domain $domain: phones register to <ip-of-this-machine>:$port (UDP or TCP) as EXT@$domain"
exec "$hark" pbx serve --data "$data" --sip "0.0.0.0:$port" --http "$http"
