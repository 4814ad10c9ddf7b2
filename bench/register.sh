#!/usr/bin/env bash
# Digest-authenticated REGISTER throughput: Hark or Kamailio under sipp, loopback only.
#
#   bench/register.sh TARGET RATE DURATION
#     TARGET    hark | kamailio
#     RATE      registrations started per second (sipp -r, -rp 1000)
#     DURATION  seconds of load (sipp -m RATE*DURATION); keep it <= 20 on shared hosts
#
# One registration = REGISTER, 401, REGISTER with credentials, 200 (two transactions),
# for users 10000.. with passwords pw10000.. (bench/sipp/register_auth.xml).
#
# Prints one line (wrapped here):
#   target=kamailio rate=18000 achieved=17566.5 sustained=17967 ok=360000 failed=0
#   retrans=0 elapsed=20.49 created=360000 server_cpu=17.83 server_cpu_us_per_reg=49.5
#   server_rss_kb=7056888 server_pss_kb=2349861 procs=6 sipp_cpu=13.12 sipp_rc=0
# (server_pss_kb and procs for Kamailio only). ok/failed/retrans/created are sipp's
# counts: calls (= registrations) and retransmissions sent by sipp.
# achieved = successful registrations / (last sipp stats time - start), so a slow tail
# of retransmissions lowers it; sustained = median of the per-second success counts
# while calls were being started (-fd 1). server_cpu = user+system
# seconds of the server's processes (all threads / all Kamailio processes) from just
# before sipp starts to just after it ends (drain included).
# server_rss_kb = VmHWM: peak resident set; for Kamailio the sum over its processes,
# which counts the shared memory segment once per process that touched it, so
# server_pss_kb (proportional set size, at the end of the run) is printed as well.
#
# Environment:
#   PORT            SIP port (default: a free one)
#   USERS           number of users (default 10000)
#   HARK_BIN        default: target/release/hark
#   HARK_ARGS       extra arguments for `hark pbx serve`
#   KAMAILIO_BIN    default: kamailio from PATH, else /usr/sbin/kamailio
#   KAMAILIO_CHILDREN  UDP worker processes (kamailio -n; default 2)
#   KAMAILIO_DEFINES   space-separated -A defines: STATELESS, TIMER_J_32S (see the cfg)
#   KAMAILIO_ARGS      extra kamailio arguments (default "-x tlsf": the TLSF memory
#                      allocator; the stock q_malloc costs ~2x the CPU per
#                      registration and its knee is lower). KAMAILIO_ARGS="-x qm"
#                      for the stock allocator, KAMAILIO_ARGS="" for none.
#   KAMAILIO_SHM_MB    shared memory (kamailio -m). tm holds every completed
#                      transaction for 5 s (wt_timer), ~13 KB each, two per
#                      registration; running out means 500s and drops. Default:
#                      RATE/4 MB (twice what that needs), at least 1024; x7 with
#                      TIMER_J_32S.
#   SIPP_ARGS       extra sipp arguments
#   BENCH_ALLOW_BUSY=1 run even while cargo/rustc is running (numbers will be noise)
#   KEEP=1          keep the work directory (logs, sipp stats) and print its path
set -euo pipefail

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[[ $# -eq 3 ]] || usage
target=$1 rate=$2 duration=$3
[[ $target == hark || $target == kamailio ]] || usage
[[ $rate =~ ^[0-9]+$ && $rate -gt 0 && $duration =~ ^[0-9]+$ && $duration -gt 0 ]] || usage

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
scenario=$here/sipp/register_auth.xml
kcfg=$here/kamailio/kamailio.cfg
users=${USERS:-10000}
domain=pbx.test

die() { echo "register.sh: $*" >&2; exit 1; }
command -v sipp >/dev/null || die "sipp not found (apt-get install sip-tester)"
command -v python3 >/dev/null || die "python3 not found"

if [[ ${BENCH_ALLOW_BUSY:-} != 1 ]] && busy=$(pgrep -f '^(\S*/)?(cargo|rustc|cargo-fuzz)( |$)' | head -1) && [[ -n $busy ]]; then
    die "a cargo/rustc process is running (pid $busy); wait for it or set BENCH_ALLOW_BUSY=1"
fi
(( duration <= 20 )) || echo "register.sh: warning: duration ${duration}s > 20s" >&2

work=$(mktemp -d /tmp/hark-bench.XXXXXX)
server_pid=
sipp_pid=

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $sipp_pid ]] && kill -0 "$sipp_pid" 2>/dev/null; then
        # sipp runs under /usr/bin/time: stop sipp itself, then time exits.
        kill $(descendants "$sipp_pid") "$sipp_pid" 2>/dev/null || true
        wait "$sipp_pid" 2>/dev/null || true
    fi
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        # Kamailio's main process stops its children on SIGTERM; Hark is one process.
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$server_pid" 2>/dev/null; then
            local kids
            kids=$(descendants "$server_pid")
            kill -KILL "$server_pid" $kids 2>/dev/null || true
        fi
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ ${KEEP:-} == 1 ]]; then
        echo "register.sh: work directory kept: $work" >&2
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# All descendants of a pid (Kamailio forks its workers from the main process).
descendants() {
    local kid
    for kid in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        echo "$kid"
        descendants "$kid"
    done
}

# user+system CPU seconds of pid and its descendants (threads are included in a
# process's own stat line).
cpu_secs() {
    local pids
    pids="$1 $(descendants "$1")"
    python3 - "$(getconf CLK_TCK)" $pids <<'EOF'
import sys
tck = int(sys.argv[1]); total = 0
for pid in sys.argv[2:]:
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        continue
    fields = stat[stat.rindex(")") + 2:].split()
    total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
print(f"{total / tck:.2f}")
EOF
}

# Sum of a /proc/PID/status (or smaps_rollup) field over pid and descendants, in kB.
mem_kb() {
    local file=$1 key=$2 pid total=0 v
    for pid in $server_pid $(descendants "$server_pid"); do
        v=$(awk -v k="$key:" '$1 == k { print $2 }' "/proc/$pid/$file" 2>/dev/null || true)
        total=$(( total + ${v:-0} ))
    done
    echo "$total"
}

# Sends OPTIONS until a 200 comes back: the server is up and answering.
wait_ready() {
    python3 - "$port" <<'EOF' || die "server did not answer OPTIONS on udp:127.0.0.1:$port (log: $work/server.log)"
import socket, sys, time
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(0.2)
lport = s.getsockname()[1]
deadline = time.time() + 20
n = 0
while time.time() < deadline:
    n += 1
    msg = (f"OPTIONS sip:{port}@127.0.0.1:{port} SIP/2.0\r\n"
           f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bK-ready-{n}\r\n"
           "Max-Forwards: 70\r\n"
           f"From: <sip:probe@127.0.0.1>;tag=ready{n}\r\n"
           f"To: <sip:probe@127.0.0.1:{port}>\r\n"
           f"Call-ID: ready-{n}@127.0.0.1\r\n"
           f"CSeq: {n} OPTIONS\r\n"
           "Content-Length: 0\r\n\r\n")
    s.sendto(msg.encode(), ("127.0.0.1", port))
    try:
        while True:
            data = s.recv(65535)
            if data.startswith(b"SIP/2.0 200"):
                sys.exit(0)
    except socket.timeout:
        pass
sys.exit(1)
EOF
}

free_port() {
    python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

port=${PORT:-$(free_port)}
hbin=$(realpath -m "${HARK_BIN:-$root/target/release/hark}")
# Everything runs in the work directory, so that stray files (sipp logs) land there.
cd "$work"

# Users: sipp injection file (user;password) and Hark's import file (ext,password).
python3 - "$work" "$users" <<'EOF'
import sys
work, n = sys.argv[1], int(sys.argv[2])
with open(f"{work}/users.csv", "w") as sipp, open(f"{work}/hark-users.csv", "w") as hark:
    sipp.write("SEQUENTIAL\n")
    for u in range(10000, 10000 + n):
        sipp.write(f"{u};pw{u}\n")
        hark.write(f"{u},pw{u}\n")
EOF

case $target in
kamailio)
    kbin=${KAMAILIO_BIN:-$(command -v kamailio || echo /usr/sbin/kamailio)}
    [[ -x $kbin ]] || die "kamailio not found"
    mkdir -p "$work/run"
    defines=()
    shm_mb=$(( rate / 4 > 1024 ? rate / 4 : 1024 ))
    for d in ${KAMAILIO_DEFINES:-}; do
        defines+=(-A "$d")
        if [[ $d == TIMER_J_32S ]]; then shm_mb=$(( shm_mb * 7 )); fi
    done
    shm_mb=${KAMAILIO_SHM_MB:-$shm_mb}
    # -DD: no daemon (the main process stays our child); -E: log to stderr.
    "$kbin" -f "$kcfg" -DD -E -l "udp:127.0.0.1:$port" -n "${KAMAILIO_CHILDREN:-2}" -m "$shm_mb" \
        -Y "$work/run" -P "$work/run/kamailio.pid" -w "$work" "${defines[@]}" ${KAMAILIO_ARGS--x tlsf} \
        >"$work/server.log" 2>&1 &
    server_pid=$!
    ;;
hark)
    [[ -x $hbin ]] || die "hark binary not found at $hbin (cargo build --release -p hark-cli, or set HARK_BIN)"
    "$hbin" pbx init --data "$work/pbx" --domain "$domain" --admin-password bench-admin >"$work/init.log" 2>&1 \
        || die "hark pbx init failed: $(cat "$work/init.log")"
    "$hbin" pbx user import --data "$work/pbx" --tenant default --csv "$work/hark-users.csv" >"$work/import.log" 2>&1 \
        || die "hark pbx user import failed: $(cat "$work/import.log")"
    # shellcheck disable=SC2086
    "$hbin" pbx serve --data "$work/pbx" --sip "127.0.0.1:$port" --http 127.0.0.1:0 ${HARK_ARGS:-} \
        >"$work/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 200); do
        grep -q "SIP listening on udp:" "$work/server.log" && break
        kill -0 "$server_pid" 2>/dev/null || die "hark exited: $(tail -5 "$work/server.log")"
        sleep 0.05
    done
    ;;
esac

wait_ready
kill -0 "$server_pid" 2>/dev/null || die "server exited: $(tail -5 "$work/server.log")"

calls=$(( rate * duration ))
cpu_before=$(cpu_secs "$server_pid")

# shellcheck disable=SC2086
/usr/bin/time -f '%U %S' -o "$work/sipp.time" \
    sipp -sf "$scenario" -inf "$work/users.csv" \
        -au '[field0]' -ap '[field1]' -auth_uri "$domain" \
        -i 127.0.0.1 -r "$rate" -rp 1000 -m "$calls" -buff_size 8388608 \
        -nostdin -trace_stat -stf "$work/stat.csv" -fd 1 \
        -timeout "$(( duration + 60 ))s" ${SIPP_ARGS:-} \
        "127.0.0.1:$port" >"$work/sipp.out" 2>&1 &
sipp_pid=$!
set +e
wait "$sipp_pid"
sipp_rc=$?
set -e
sipp_pid=

kill -0 "$server_pid" 2>/dev/null || die "server died during the run: $(tail -5 "$work/server.log")"
cpu_after=$(cpu_secs "$server_pid")
rss_kb=$(mem_kb status VmHWM)
extra=
if [[ $target == kamailio ]]; then
    extra=" server_pss_kb=$(mem_kb smaps_rollup Pss) procs=$(( 1 + $(descendants "$server_pid" | wc -l) ))"
fi

[[ -s $work/stat.csv ]] || die "sipp wrote no statistics (exit $sipp_rc): $(tail -5 "$work/sipp.out")"
stats=$(python3 - "$work/stat.csv" <<'EOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter=";"))
head, last = rows[0], dict(zip(rows[0], rows[-1]))
epoch = lambda v: float(v.split("\t")[-1])
elapsed = epoch(last["CurrentTime"]) - epoch(last["StartTime"])
ok, failed = int(last["SuccessfulCall(C)"]), int(last["FailedCall(C)"])
retrans = int(last["Retransmissions(C)"])
# Per-second successes (-fd 1), full periods only: the steady rate without start-up
# and drain; the median resists one slow second.
per_sec = []
for row in rows[1:]:
    d = dict(zip(head, row))
    period = epoch(d["CurrentTime"]) - epoch(d["LastResetTime"])
    if period >= 0.9 and int(d["OutgoingCall(P)"]) > 0:
        per_sec.append(int(d["SuccessfulCall(P)"]) / period)
per_sec.sort()
median = per_sec[len(per_sec) // 2] if per_sec else 0
print(f"achieved={ok / elapsed if elapsed > 0 else 0:.1f} sustained={median:.0f} ok={ok} "
      f"failed={failed} retrans={retrans} elapsed={elapsed:.2f} created={last['TotalCallCreated']}")
EOF
)
read -r sipp_user sipp_sys < <(tail -n 1 "$work/sipp.time") || true
ok=$(sed -n 's/.* ok=\([0-9]*\).*/\1/p' <<<"$stats")
cpu=$(python3 -c "print(f'{$cpu_after - $cpu_before:.2f}')")
us_per_reg=$(python3 -c "print(f'{1e6 * ($cpu_after - $cpu_before) / $ok:.1f}' if $ok else 'nan')")
sipp_cpu=$(python3 -c "print(f'{${sipp_user:-0} + ${sipp_sys:-0}:.2f}')")

echo "target=$target rate=$rate $stats server_cpu=$cpu server_cpu_us_per_reg=$us_per_reg" \
     "server_rss_kb=$rss_kb$extra sipp_cpu=$sipp_cpu sipp_rc=$sipp_rc"
