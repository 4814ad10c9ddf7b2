#!/usr/bin/env bash
# Every test of the project: unit, property, and end-to-end against real SIP peers.
# Installs what it needs on Debian when missing. CI runs this (see .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

need_rust
# Real peers the end-to-end tests start (tests/): sipp, baresip, linphonec, kamailio.
apt_need sip-tester:sipp baresip-core:baresip linphone-cli:linphonec kamailio:kamailio
# A sound card for the audio-device tests: a private PulseAudio server with null sinks,
# reached by cpal through ALSA's pulse plugin. Not on desktops running PipeWire's pulse
# server (the packages conflict): there tests/phone_devices.rs fails and says why.
if dpkg-query -W -f='${Status}' pipewire-pulse 2>/dev/null | grep -q "install ok installed"; then
    echo "warning: pipewire-pulse is installed; not installing pulseaudio (tests/phone_devices.rs needs it)" >&2
else
    apt_need pulseaudio:pulseaudio pulseaudio-utils:pactl
    apt_need_pkg libasound2-plugins
fi

# The desktop app: WebKitGTK libraries, the UI's packages, its unit tests, its build.
need_desktop_build
need_desktop_e2e
build_ui
echo ">> UI unit tests (vitest)" >&2
( cd ui && npm test --silent )

echo ">> building" >&2
cargo build --workspace --bins --tests --quiet

# The fuzz targets must keep building (they are run by hand: see fuzz/README.md).
echo ">> checking fuzz targets build" >&2
cargo check --quiet --manifest-path fuzz/Cargo.toml --bins

echo ">> running tests" >&2
if command -v cargo-nextest >/dev/null 2>&1; then
    # The e2e tests start servers and peers: two at a time on a 2-core machine.
    cargo nextest run --workspace --test-threads 2 --no-fail-fast
else
    cargo test --workspace --no-fail-fast -- --test-threads 2
fi
