#!/usr/bin/env bash
# Mouth-to-ear delay of the softphone engine, file backend, through `hark pbx serve`
# (loopback): an impulse in one `hark phone`, the time until it comes out of the other.
#
#   bench/phone_latency.sh [CODEC] [RUNS]      CODEC: pcmu (default), pcma, g722, opus
#
# Each run: a PBX with extensions 101 and 102; `hark phone answer` (102) writes what its
# speaker plays (--record); `hark phone call` (101) plays a WAV of silence with one 5 ms
# click at 2.000 s (--play). Both files start when each phone's media starts (the caller
# on the 200 OK, the callee as it answers: the same moment on loopback, give or take the
# SIP round trip, well under a millisecond plus scheduling). The delay is where the click
# is in the callee's file minus 2.000 s: the caller's 20 ms frame clock, packetizing, the
# PBX's relay, the callee's jitter buffer and frame clock. Prints one line per run and the
# median. HARK_BIN defaults to target/release/hark.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
codec=${1:-pcmu}
runs=${2:-5}
hbin=${HARK_BIN:-$here/../target/release/hark}
[[ -x $hbin ]] || { echo "build it first: cargo build --release -p hark-cli" >&2; exit 2; }
work=$(mktemp -d /tmp/hark-latency.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

python3 - "$work/click.wav" <<'EOF'
import sys, wave, struct
rate = 48000
frames = [0] * (rate * 4)
for i in range(int(rate * 0.005)):
    frames[2 * rate + i] = 20000 if (i // 12) % 2 == 0 else -20000
with wave.open(sys.argv[1], "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(rate)
    w.writeframes(struct.pack("<%dh" % len(frames), *frames))
EOF

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
results=()
for run in $(seq 1 "$runs"); do
    data="$work/pbx$run"
    "$hbin" pbx init --data "$data" --domain bench.test >/dev/null
    "$hbin" pbx user add --data "$data" --tenant default --ext 101 --password pw101 >/dev/null
    "$hbin" pbx user add --data "$data" --tenant default --ext 102 --password pw102 >/dev/null
    sip=$(free_port)
    "$hbin" pbx serve --data "$data" --sip "127.0.0.1:$sip" --http 127.0.0.1:0 --rtp-ports 30000-30999 2>"$work/pbx$run.log" &
    pids+=($!)
    for _ in $(seq 100); do grep -q "SIP listening on udp" "$work/pbx$run.log" && break; sleep 0.05; done
    acct=(--server "127.0.0.1:$sip" --domain bench.test --codecs "$codec")
    "$hbin" phone answer "${acct[@]}" --user 102 --password pw102 --record "$work/heard$run.wav" --duration 4 2>"$work/answer$run.log" &
    apid=$!
    for _ in $(seq 100); do grep -q "registered" "$work/answer$run.log" && break; sleep 0.05; done
    "$hbin" phone call "${acct[@]}" --user 101 --password pw101 --play "$work/click.wav" --duration 4 102 2>"$work/call$run.log"
    wait "$apid" || true
    kill "${pids[-1]}" 2>/dev/null || true
    d=$(python3 - "$work/heard$run.wav" <<'EOF'
import sys, wave, struct
with wave.open(sys.argv[1]) as w:
    rate, n = w.getframerate(), w.getnframes()
    x = struct.unpack("<%dh" % n, w.readframes(n))
# The click: the first sample well above the noise floor after 1.5 s.
start = int(1.5 * rate)
peak = max(abs(v) for v in x[start:]) if n > start else 0
i = next((k for k in range(start, n) if abs(x[k]) > 0.3 * peak), None) if peak > 1000 else None
print("none" if i is None else "%.1f" % ((i / rate - 2.0) * 1000))
EOF
)
    echo "run=$run codec=$codec delay_ms=$d"
    [[ $d != none ]] && results+=("$d")
done
if ((${#results[@]})); then
    printf '%s\n' "${results[@]}" | sort -n | awk '{a[NR]=$1} END {print "median_delay_ms=" a[int((NR+1)/2)] " runs=" NR}'
else
    echo "no click was heard; see the logs in $work" >&2
    trap - EXIT
    exit 1
fi
