#!/usr/bin/env bash
# Concurrent relayed G.711 calls through `hark pbx serve` under sipp, loopback only.
#
#   bench/calls.sh CONCURRENCY DURATION [LOAD]
#     CONCURRENCY  calls to have up at once (the target; hark_calls_active shows what was reached)
#     DURATION     seconds each call is held after its ACK (sipp -d); >= 3
#     LOAD         seconds during which calls are started (default 2 x DURATION: concurrency
#                  climbs for DURATION seconds, then holds at CONCURRENCY for the rest);
#                  keep it <= 60 on shared hosts
#
# Calls are started at CONCURRENCY/DURATION per second (sipp -r CONCURRENCY -rp DURATION*1000)
# from extension 1000 to extension 2000, both authenticated by digest (407 / 401). One sipp UAC
# (bench/sipp/calls_uac.xml) and one sipp UAS (bench/sipp/calls_uas.xml, registered first with
# calls_register.xml from its own port); each plays RTP from a pcap after the ACK, so every
# call carries G.711 both ways through the PBX's relay (4 relay ports per call).
#
# The pcap (unless PCAP is set) is made here: PCMA, 20 ms packets, DURATION - 1 seconds, one SSRC
# with increasing sequence numbers, so that every packet a call should carry is sent before the
# BYE and the relay's sequence-number loss count is exact. expected = pcap packets x 2 x calls_ok.
#
# Addresses, all loopback: SIP on 127.0.0.1 (PBX, both sipps); RTP from the UAC on 127.0.0.2 and
# from the UAS on 127.0.0.3 (sipp -mi; the PBX relays on 127.0.0.1). sipp 3.6.1 plays each call's
# pcap from its own thread through its own raw IPPROTO_UDP socket, bound to the -mi address, and
# Linux walks every raw UDP socket of the host for every UDP datagram it delivers locally
# (raw_local_deliver), cloning it to those whose address matches: the load generator costs
# O(calls^2) in the kernel, charged partly to the PBX's own sends. With the media on their own
# addresses sipp's RTP toward the relay matches no raw socket (only the walk remains); with
# everything on 127.0.0.1 every datagram is cloned to every playing call's socket. PERF=1 shows
# the share.
#
# Prints one line (the figures to compare first: reached, e2e_loss_pct, steady_cpu_ms_per_call_s,
# rss_kb_per_call, setup_p50_ms/setup_p95_ms, machine_busy_pct, interference):
#   concurrency=TARGET reached=PEAK(hark_calls_active) duration= load= rate= calls_ok= calls_failed=
#   uas_ok= started= relay_in= relay_out= relay_lost= relay_dropped= relay_send_errors= expected=
#   loss_pct= missing_pct= e2e_loss_pct= sock_drops= server_cpu_s= server_cpu_pct= steady_cpu_pct=
#   cpu_ms_per_call_s= steady_cpu_ms_per_call_s= rss_mb= rss_kb_per_call= setup_p50_ms=
#   setup_p95_ms= setup_max_ms= uac_cpu_pct= uas_cpu_pct= machine_busy_pct= other_cpu_pct=
#   retrans= sipp_threads= interference= active_after= uac_rc=
# and, with RECORD=1, also:
#   recordings= recordings_peak= files_with_gaps= gaps= gap_ms= silent_channels= recorded_s=
#   cpu_ms_per_rec_s= wav_unreadable=
# where
#   relay_*            the PBX's /metrics totals over finished calls (hark_relay_*_total)
#   loss_pct           relay_lost / (relay_in + relay_lost): RTP missing by sequence number on
#                      arrival at the relay (a gap inside a stream; not packets dropped before the
#                      first one the relay accepted)
#   missing_pct        (expected - relay_in) / expected: RTP sipp should have sent that the relay
#                      did not accept
#   e2e_loss_pct       (expected - relay_out) / expected: RTP the relay did not pass on, whatever
#                      the cause; the figure for "under 0.1% loss"
#   server_cpu_s       user+system seconds of the PBX from the first call to the end of the run
#   server_cpu_pct     that over the wall time from the first call to the last BYE (100 = one core)
#   steady_cpu_pct     PBX CPU while hark_calls_active >= 95% of its peak; steady_cpu_ms_per_call_s is
#                      that divided by the calls up then: the relay's cost per call-second
#   cpu_ms_per_call_s  server_cpu_s / (calls_ok x DURATION): everything (signalling, CDRs) per
#                      call-second
#   rss_mb             VmHWM at the end; rss_kb_per_call = (VmHWM - VmRSS before the load) / reached
#   setup_*            first INVITE -> 200 OK as sipp measured it (includes the 407 round trip;
#                      sipp's clock moves in steps of a few ms)
#   sock_drops         datagrams the kernel dropped on the relay's sockets (full receive queue),
#                      from /proc/net/udp, sampled once a second (so a lower bound)
#   uac/uas_cpu_pct    the two sipps' CPU at steady state (100 = one core)
#   machine_busy_pct   all CPUs (200 = both cores of a 2-core box) while at steady state
#   other_cpu_pct      machine_busy_pct less the PBX and the two sipps: interrupts, ksoftirqd, this
#                      script's sampler, and anything else running on the box
#   sipp_threads       most threads of the two sipps (one per playing call, plus a few)
#   interference       seconds during which cargo, rustc, kamailio or another sipp ran (want 0;
#                      the names are in foreign.txt of the work directory)
#   recordings         WAV files under DATA/recordings/ once the PBX has stopped (one per
#                      answered call: want calls_ok); recordings_peak: most hark_recordings_active
#   files_with_gaps, gaps, gap_ms, silent_channels, recorded_s, wav_unreadable
#                      from bench/wavgaps.py over those files (DESIGN.md's gap: a 20 ms stretch,
#                      away from the ends (GAP_SKIP_MS, default 200), below 5% of the file's
#                      median 20 ms energy, per channel; both parties play a steady 400 Hz tone
#                      for DURATION - 1 s; the first few files with gaps are described on stderr)
#   cpu_ms_per_rec_s   server_cpu_s / recorded_s: PBX CPU per second of recorded audio. Every
#                      call is recorded, so DESIGN.md's "PBX CPU per recorded call-second" (CPU
#                      over the sum of call durations) is cpu_ms_per_call_s (and, at steady
#                      state, steady_cpu_ms_per_call_s); cpu_ms_per_rec_s is larger by
#                      DURATION / (DURATION - 1), the pcap ending a second before the BYE
#
# Environment:
#   PORT             SIP port (default: a free one)
#   RTP_PORTS        relay port range (default 20000-29999; 4 ports per call)
#   HARK_BIN         default: target/release/hark
#   HARK_ARGS        extra arguments for `hark pbx serve`
#   PCAP             play this pcap instead (one RTP stream; it must end before DURATION)
#   SIPP_ARGS        extra arguments for the UAC sipp
#   UAC_MEDIA_IP, UAS_MEDIA_IP  the sipps' RTP addresses (default 127.0.0.2, 127.0.0.3)
#   BENCH_ALLOW_BUSY=1  run even while cargo/rustc/sipp/kamailio runs (numbers will be noise)
#   PERF=1           also sample the whole machine with perf for 5 s at full concurrency and print
#                    (on stderr) each command's share of the CPU and how much of it is
#                    raw_local_deliver (see the notes on sipp's raw sockets in calls_uac.xml)
#   KEEP=1           keep the work directory (logs, sipp stats, samples) and print its path
#   RECORD=1         record every call: the tenant's audio recording is switched on
#                    (`hark pbx tenant set --audio-recording on`; users default to recorded), the
#                    PBX writes a stereo G.711 WAV per call under DATA/recordings/. After the run
#                    the PBX is stopped (SIGTERM: recordings finalized) and the files are checked
#                    for gaps with bench/wavgaps.py. bench/record_compare.sh runs the same load
#                    without and with recording, one after the other, and prints the ratios.
#   GAP_SKIP_MS      milliseconds at each end of a recording not checked for gaps (default 200)
set -euo pipefail

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[[ $# -eq 2 || $# -eq 3 ]] || usage
conc=$1 duration=$2 load=${3:-$(( 2 * ${2:-0} ))}
[[ $conc =~ ^[0-9]+$ && $conc -gt 0 && $duration =~ ^[0-9]+$ && $duration -ge 3 && $load =~ ^[0-9]+$ && $load -gt 0 ]] || usage

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
domain=pbx.test
caller=1000 callee=2000
caller_pw=bench-caller-pw callee_pw=bench-callee-pw
rtp_ports=${RTP_PORTS:-20000-29999}
rtp_lo=${rtp_ports%-*} rtp_hi=${rtp_ports#*-}
calls=$(( conc * load / duration ))
(( calls > 0 )) || calls=1

die() { echo "calls.sh: $*" >&2; exit 1; }
command -v sipp >/dev/null || die "sipp not found (apt-get install sip-tester)"
command -v python3 >/dev/null || die "python3 not found"
(( (rtp_hi - rtp_lo + 1) / 4 >= conc )) || die "RTP_PORTS $rtp_ports has room for $(( (rtp_hi - rtp_lo + 1) / 4 )) calls (4 ports each), fewer than $conc"
(( load <= 60 )) || echo "calls.sh: warning: load ${load}s > 60s" >&2
(( $(ulimit -n) >= 4 * conc + 1024 )) || ulimit -n $(( 4 * conc + 4096 )) 2>/dev/null \
    || die "open files limit $(ulimit -n) is too low for $conc calls (ulimit -n)"

if [[ ${BENCH_ALLOW_BUSY:-} != 1 ]]; then
    busy=$(pgrep -af '^(\S*/)?(cargo|rustc|cargo-fuzz|sipp|kamailio)( |$)' | cut -c1-160 | head -3 || true)
    [[ -z $busy ]] || die "the machine is busy; wait or set BENCH_ALLOW_BUSY=1:"$'\n'"$busy"
    # Anything else burning CPU (over 20% of one core, measured for a second) skews the figures.
    busy=$(python3 -c '
import time
def s():
    v = list(map(int, open("/proc/stat").readline().split()[1:]))
    return sum(v), v[3] + v[4]
t0, i0 = s(); time.sleep(1); t1, i1 = s()
import os
print(int(((t1 - t0) - (i1 - i0)) / max(1, t1 - t0) * 100 * os.cpu_count()))')
    (( busy < 20 )) || die "the machine is ${busy}% busy (100 = one core); wait or set BENCH_ALLOW_BUSY=1:"$'\n'"$(ps -eo pid,pcpu,args --sort=-pcpu | sed -n 2,4p | cut -c1-150)"
fi

hbin=${HARK_BIN:-$root/target/release/hark}
[[ -x $hbin ]] || die "hark binary not found at $hbin (cargo build --release -p hark-cli, or set HARK_BIN)"

work=$(mktemp -d /tmp/hark-calls.XXXXXX)
server_pid= uac_pid= uas_pid= mon_pid= perf_pid=

stop_pid() { # pid: TERM, then KILL after 5 s
    local pid=$1
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pid "$uac_pid"
    stop_pid "$uas_pid"
    stop_pid "$mon_pid"
    stop_pid "$perf_pid"
    stop_pid "$server_pid"
    if [[ ${KEEP:-} == 1 ]]; then
        echo "calls.sh: work directory kept: $work" >&2
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Free UDP ports on 127.0.0.1: N single ports, or (with "block") a port whose next 3 are free
# as well (sipp binds -mp and -mp+2 for audio and video).
free_ports() {
    python3 - "$@" <<'EOF'
import socket, sys, random
lo, hi = 40000, 60000
out = []
def free(p):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", p)); return True
    except OSError:
        return False
    finally:
        s.close()
for kind in sys.argv[1:]:
    while True:
        p = random.randrange(lo, hi, 4)
        width = 4 if kind == "block" else 1
        if all(free(p + i) for i in range(width)) and not any(abs(p - q) < 4 for q in out):
            out.append(p); break
print(" ".join(map(str, out)))
EOF
}

read -r port_auto uac_port uas_port uac_mp uas_mp < <(free_ports single single single block block)
port=${PORT:-$port_auto}

# ---- the pcap: PCMA, 20 ms, DURATION - 1 seconds (or the one given) ----
if [[ -n ${PCAP:-} ]]; then
    cp "$PCAP" "$work/calls_audio.pcap"
else
    python3 - "$work/calls_audio.pcap" "$(( (duration - 1) * 50 ))" <<'EOF'
import math, random, struct, sys
path, n = sys.argv[1], int(sys.argv[2])
def alaw(sample):  # 16-bit linear -> A-law (G.711)
    sign = 0x80 if sample >= 0 else 0
    if sample < 0: sample = -sample - 1
    sample = min(sample, 32767) >> 3
    if sample < 32: code = sample >> 1
    else:
        seg = sample.bit_length() - 5
        code = (seg << 4) | ((sample >> seg) & 0x0F)
    return (code | sign) ^ 0x55
# 400 Hz tone at 8 kHz: 20 samples per period, so every 160-sample frame is the same
frame = bytes(alaw(int(8000 * math.sin(2 * math.pi * 400 * i / 8000))) for i in range(160))
seq, ts, ssrc = random.randrange(65536), random.randrange(1 << 32), random.randrange(1 << 32)
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack(f"!{len(b)//2}H", b))
    while s >> 16: s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
with open(path, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # Ethernet
    t0 = 1_700_000_000
    for i in range(n):
        rtp = struct.pack("!BBHII", 0x80, 8 | (0x80 if i == 0 else 0), (seq + i) & 0xFFFF,
                          (ts + 160 * i) & 0xFFFFFFFF, ssrc) + frame
        udp = struct.pack("!HHHH", 6001, 6000, 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0xB8, 20 + len(udp), i & 0xFFFF, 0x4000, 64, 17, 0,
                         bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        pkt = b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01" + b"\x08\x00" + ip + udp
        us = i * 20_000
        f.write(struct.pack("<IIII", t0 + us // 1_000_000, us % 1_000_000, len(pkt), len(pkt)) + pkt)
EOF
fi
pcap_pkts=$(python3 - "$work/calls_audio.pcap" <<'EOF'
import struct, sys
d = open(sys.argv[1], "rb").read()
end = "<" if d[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
off, n = 24, 0
while off + 16 <= len(d):
    incl = struct.unpack(end + "IIII", d[off:off + 16])[2]
    off += 16 + incl; n += 1
print(n)
EOF
)

# ---- the PBX ----
printf '%s,%s\n%s,%s\n' "$caller" "$caller_pw" "$callee" "$callee_pw" >"$work/users.csv"
"$hbin" pbx init --data "$work/pbx" --domain "$domain" --admin-password bench-admin >"$work/init.log" 2>&1 \
    || die "hark pbx init failed: $(cat "$work/init.log")"
"$hbin" pbx user import --data "$work/pbx" --tenant default --csv "$work/users.csv" >"$work/import.log" 2>&1 \
    || die "hark pbx user import failed: $(cat "$work/import.log")"
record=0
[[ ${RECORD:-0} == 1 ]] && record=1
if (( record )); then
    "$hbin" pbx tenant set --data "$work/pbx" --tenant default --audio-recording on >"$work/tenant.log" 2>&1 \
        || die "hark pbx tenant set failed: $(cat "$work/tenant.log")"
fi
serve_args=(--data "$work/pbx" --sip "127.0.0.1:$port" --http 127.0.0.1:0 --rtp-ports "$rtp_ports")
if "$hbin" pbx serve --help 2>/dev/null | grep -q -- '--ring-timeout'; then
    serve_args+=(--ring-timeout 30)
fi
# shellcheck disable=SC2086
: >"$work/server.log"
"$hbin" pbx serve "${serve_args[@]}" ${HARK_ARGS:-} >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 200); do
    grep -q "HTTP listening on" "$work/server.log" && grep -q "SIP listening on udp:" "$work/server.log" && break
    kill -0 "$server_pid" 2>/dev/null || die "hark exited: $(tail -5 "$work/server.log")"
    sleep 0.05
done
http=$(sed -n 's/.*HTTP listening on \(http:\/\/\)\{0,1\}\([0-9.]*:[0-9]*\).*/\2/p' "$work/server.log" | head -1)
[[ -n $http ]] || die "no 'HTTP listening on' in the server log: $(tail -5 "$work/server.log")"

metrics() { # name...: their values from /metrics, one per line (0 if absent)
    python3 - "$http" "$@" <<'EOF'
import sys, urllib.request
text = urllib.request.urlopen(f"http://{sys.argv[1]}/metrics", timeout=5).read().decode()
vals = {}
for line in text.splitlines():
    if line and not line.startswith("#"):
        name, _, v = line.rpartition(" ")
        vals[name.split("{")[0]] = float(v)
for n in sys.argv[2:]:
    print(int(vals.get(n, 0)))
EOF
}
metrics hark_calls_active >/dev/null || die "GET http://$http/metrics failed"

sipp_common=(-i 127.0.0.1 -nostdin -buff_size 8388608 -key domain "$domain")
uac_media_ip=${UAC_MEDIA_IP:-127.0.0.2} uas_media_ip=${UAS_MEDIA_IP:-127.0.0.3}

# The callee registers from the port its UAS will run on.
(cd "$work" && sipp -sf "$here/sipp/calls_register.xml" -key user "$callee" "${sipp_common[@]}" \
    -au "$callee" -ap "$callee_pw" -auth_uri "$domain" -p "$uas_port" -m 1 -timeout 10s -timeout_error \
    -trace_err -error_file "$work/register_err.log" \
    "127.0.0.1:$port" >"$work/register.out" 2>&1) \
    || die "the callee did not register: $(tail -5 "$work/register.out"; cat "$work/register_err.log" 2>/dev/null | tail -20)"

# ---- the load ----
cat >"$work/monitor.py" <<'EOF'
import os, signal, sys, time, urllib.request
out, http, server, uac, uas, lo, hi = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:8])
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
def ticks(pid):
    try:
        s = open(f"/proc/{pid}/stat").read()
        f = s[s.rindex(")") + 2:].split()
        return int(f[11]) + int(f[12])
    except (OSError, ValueError):
        return -1
def status(pid, key):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1
def machine():
    f = open("/proc/stat").readline().split()[1:]
    v = list(map(int, f))
    return sum(v), v[3] + v[4]
def snmp():
    lines = [l.split() for l in open("/proc/net/snmp") if l.startswith("Udp:")]
    d = dict(zip(lines[0][1:], map(int, lines[1][1:])))
    return d.get("InDatagrams", 0), d.get("RcvbufErrors", 0), d.get("SndbufErrors", 0)
drops = {}  # inode -> last seen drops, relay sockets only
def relay_drops():
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            p = line.split()
            lport = int(p[1].split(":")[1], 16)
            if lo <= lport <= hi:
                drops[p[9]] = int(p[12])
ours = {server, uac, uas, os.getpid(), os.getppid()}
def foreign():
    """Other load on the box: cargo, rustc, kamailio, or a sipp that is not ours."""
    n = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) in ours:
            continue
        try:
            comm = open(f"/proc/{pid}/comm").read().strip()
        except OSError:
            continue
        if comm in ("cargo", "rustc", "cargo-fuzz", "kamailio", "sipp"):
            n += 1
            if pid not in seen_foreign:
                seen_foreign.add(pid)
                try:
                    cmd = open(f"/proc/{pid}/cmdline").read().replace("\0", " ")[:200]
                except OSError:
                    cmd = comm
                log_foreign.write(f"{time.time():.0f} {pid} {cmd}\n")
    return n
seen_foreign = set()
log_foreign = open(os.path.join(os.path.dirname(out), "foreign.txt"), "w", buffering=1)
def active():
    """hark_calls_active, hark_recordings_active (-1 when /metrics did not answer)."""
    calls = recs = -1
    try:
        text = urllib.request.urlopen(f"http://{http}/metrics", timeout=2).read().decode()
        for line in text.splitlines():
            if line.startswith("hark_calls_active"):
                calls = int(float(line.split()[-1]))
            elif line.startswith("hark_recordings_active"):
                recs = int(float(line.split()[-1]))
    except Exception:
        pass
    return calls, recs
with open(out, "w", buffering=1) as f:
    f.write("t active server_ticks rss_kb hwm_kb uac_ticks uas_ticks uac_threads uas_threads "
            "cpu_total cpu_idle udp_in rcvbuf_err sndbuf_err relay_sock_drops foreign recordings\n")
    while not stop:
        t = time.time()
        relay_drops()
        tot, idle = machine()
        udp_in, rcv, snd = snmp()
        calls, recs = active()
        f.write(f"{t:.3f} {calls} {ticks(server)} {status(server, 'VmRSS')} {status(server, 'VmHWM')} "
                f"{ticks(uac)} {ticks(uas)} {status(uac, 'Threads')} {status(uas, 'Threads')} "
                f"{tot} {idle} {udp_in} {rcv} {snd} {sum(drops.values())} {foreign()} {recs}\n")
        time.sleep(max(0.0, 1.0 - (time.time() - t)))
EOF

(cd "$work" && exec sipp -sf "$here/sipp/calls_uas.xml" -key user "$callee" "${sipp_common[@]}" \
    -mi "$uas_media_ip" -p "$uas_port" -mp "$uas_mp" -m "$calls" -trace_stat -stf "$work/uas_stat.csv" -fd 1 \
    -trace_err -error_file "$work/uas_err.log" \
    "127.0.0.1:$port" >"$work/uas.out" 2>&1) &
uas_pid=$!
sleep 0.5
kill -0 "$uas_pid" 2>/dev/null || die "the UAS sipp exited: $(tail -5 "$work/uas.out")"

rss_before=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$server_pid/status")
clk=$(getconf CLK_TCK)
server_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$server_pid/stat"; }
ticks_before=$(server_ticks)
t_start=$(date +%s.%N)

# shellcheck disable=SC2086
(cd "$work" && exec sipp -sf "$here/sipp/calls_uac.xml" -key user "$caller" -key callee "$callee" \
    "${sipp_common[@]}" -au "$caller" -ap "$caller_pw" -auth_uri "$callee@$domain" \
    -mi "$uac_media_ip" -p "$uac_port" -mp "$uac_mp" -r "$conc" -rp "$(( duration * 1000 ))" -m "$calls" -l "$(( 2 * conc + 10 ))" \
    -d "$(( duration * 1000 ))" -trace_stat -stf "$work/uac_stat.csv" -fd 1 \
    -trace_rtt -rtt_freq 1 -trace_err -error_file "$work/uac_err.log" \
    -timeout "$(( load + duration + 90 ))s" ${SIPP_ARGS:-} \
    "127.0.0.1:$port" >"$work/uac.out" 2>&1) &
uac_pid=$!
sleep 0.2
python3 "$work/monitor.py" "$work/samples.txt" "$http" "$server_pid" "$uac_pid" "$uas_pid" "$rtp_lo" "$rtp_hi" &
mon_pid=$!


if [[ ${PERF:-} == 1 ]] && command -v perf >/dev/null; then
    # 5 s of system-wide samples once the calls are all up (after DURATION + 2 s).
    (sleep $(( duration + 2 )) && exec perf record -a -q -o "$work/perf.data" -- sleep 5) >"$work/perf.log" 2>&1 &
    perf_pid=$!
fi

set +e
wait "$uac_pid"
uac_rc=$?
set -e
uac_pid=
t_end=$(date +%s.%N)
# The UAS ends once it has seen every call; failed calls may leave it waiting.
for _ in $(seq 100); do kill -0 "$uas_pid" 2>/dev/null || break; sleep 0.1; done
stop_pid "$uas_pid"
uas_pid=
# Relay totals count finished calls: wait for the PBX to end them all.
for _ in $(seq 100); do
    [[ $(metrics hark_calls_active) == 0 ]] && break
    sleep 0.2
done
stop_pid "$mon_pid"
mon_pid=
if [[ -n $perf_pid ]]; then
    wait "$perf_pid" 2>/dev/null || true
    # Share of all samples (both CPUs) per command, and how much of it is the kernel handing
    # copies of every datagram to sipp's raw sockets (raw_local_deliver).
    perf report -i "$work/perf.data" --no-children --sort comm,sym -g none --stdio 2>/dev/null | python3 -c '
import sys, collections
tot, raw = collections.Counter(), collections.Counter()
for line in sys.stdin:
    p = line.split()
    if len(p) >= 4 and p[0].endswith("%"):
        pct, comm, sym = float(p[0][:-1]), p[1], p[-1]
        tot[comm] += pct
        if sym == "raw_local_deliver":
            raw[comm] += pct
print("perf: " + " ".join(f"{c}={v:.1f}%(raw_local_deliver {raw[c]:.1f}%)" for c, v in tot.most_common(5)))
' >&2 || true
fi
kill -0 "$server_pid" 2>/dev/null || die "the PBX died during the run: $(tail -5 "$work/server.log")"
ticks_after=$(server_ticks)
hwm_kb=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$server_pid/status")
read -r m_active m_in m_out m_dropped m_lost m_senderr < <(metrics hark_calls_active \
    hark_relay_rtp_packets_in_total hark_relay_packets_out_total hark_relay_dropped_total \
    hark_relay_rtp_lost_total hark_relay_send_errors_total | tr '\n' ' '; echo)

# Recordings: stop the PBX (SIGTERM finalizes every recording, 5 s at most each), then check
# every WAV for gaps. After the CPU figures, so neither counts there.
gapline=
if (( record )); then
    for _ in $(seq 50); do
        [[ $(metrics hark_recordings_active) == 0 ]] && break
        sleep 0.2
    done
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$server_pid" 2>/dev/null && echo "calls.sh: warning: the PBX did not stop within 30 s" >&2
    stop_pid "$server_pid"
    server_pid=
    mkdir -p "$work/pbx/recordings"
    gapline=$(python3 "$here/wavgaps.py" --skip-ms "${GAP_SKIP_MS:-200}" "$work/pbx/recordings") \
        || die "wavgaps.py failed"
fi

python3 - "$work" <<EOF
import csv, glob, os, statistics, sys
work = sys.argv[1]
conc, duration, load, calls = $conc, $duration, $load, $calls
clk = $clk
pcap_pkts = $pcap_pkts
m_in, m_out, m_dropped, m_lost, m_senderr, m_active = $m_in, $m_out, $m_dropped, $m_lost, $m_senderr, $m_active
server_cpu = ($ticks_after - $ticks_before) / clk
wall = $t_end - $t_start
rss_before, hwm = $rss_before, $hwm_kb

def last_stat(path):
    try:
        rows = list(csv.reader(open(path), delimiter=";"))
        return dict(zip(rows[0], rows[-1]))
    except (OSError, IndexError):
        return {}
uac, uas = last_stat(f"{work}/uac_stat.csv"), last_stat(f"{work}/uas_stat.csv")
ok, failed = int(uac.get("SuccessfulCall(C)", 0)), int(uac.get("FailedCall(C)", 0))
uas_ok = int(uas.get("SuccessfulCall(C)", 0))
retrans = int(uac.get("Retransmissions(C)", 0)) + int(uas.get("Retransmissions(C)", 0))

rows = [l.split() for l in open(f"{work}/samples.txt")][1:]
S = [dict(zip("t active server uac_t uas_t".split(), (float(r[0]), int(r[1]), int(r[2]), int(r[5]), int(r[6])))) | {
        "tot": int(r[9]), "idle": int(r[10]), "drops": int(r[14]), "uac_th": int(r[7]), "uas_th": int(r[8]),
        "foreign": int(r[15]), "recs": int(r[16]) if len(r) > 16 else -1}
     for r in rows if len(r) >= 16]
peak = max((s["active"] for s in S), default=0)
steady = [s for s in S if peak and s["active"] >= 0.95 * peak]
def rate(a, b, key):
    return (b[key] - a[key]) / clk / (b["t"] - a["t"]) * 100 if b["t"] > a["t"] and a[key] >= 0 and b[key] >= 0 else float("nan")
if len(steady) >= 2:
    a, b = steady[0], steady[-1]
    steady_cpu = rate(a, b, "server")
    mean_active = statistics.mean(s["active"] for s in steady)
    steady_ms = steady_cpu * 10 / mean_active if mean_active else float("nan")
    busy = ((b["tot"] - a["tot"]) - (b["idle"] - a["idle"])) / max(1, b["tot"] - a["tot"]) * 100 * $(nproc)
    uac_cpu, uas_cpu = rate(a, b, "uac_t"), rate(a, b, "uas_t")
else:
    steady_cpu = steady_ms = busy = uac_cpu = uas_cpu = float("nan")
sock_drops = max((s["drops"] for s in S), default=0)

rtts = []
for path in glob.glob(f"{work}/*_rtt.csv"):
    for line in open(path):
        p = line.strip().split(";")
        if len(p) >= 2:
            try: rtts.append(float(p[1]))
            except ValueError: pass
rtts.sort()
def pct(q):
    return rtts[min(len(rtts) - 1, int(q * len(rtts)))] if rtts else float("nan")

expected = pcap_pkts * 2 * ok
loss = m_lost / (m_in + m_lost) * 100 if m_in + m_lost else float("nan")
missing = (expected - m_in) / expected * 100 if expected else float("nan")
e2e = (expected - m_out) / expected * 100 if expected else float("nan")
print(f"concurrency={conc} reached={peak} duration={duration} load={load} rate={conc / duration:.1f} "
      f"calls_ok={ok} calls_failed={failed} uas_ok={uas_ok} started={calls} "
      f"relay_in={m_in} relay_out={m_out} relay_lost={m_lost} relay_dropped={m_dropped} "
      f"relay_send_errors={m_senderr} expected={expected} loss_pct={loss:.4f} missing_pct={missing:.4f} "
      f"e2e_loss_pct={e2e:.4f} "
      f"sock_drops={sock_drops} server_cpu_s={server_cpu:.2f} server_cpu_pct={server_cpu / wall * 100:.1f} "
      f"steady_cpu_pct={steady_cpu:.1f} cpu_ms_per_call_s={server_cpu * 1000 / (ok * duration) if ok else float('nan'):.3f} "
      f"steady_cpu_ms_per_call_s={steady_ms:.3f} rss_mb={hwm / 1024:.1f} "
      f"rss_kb_per_call={(hwm - rss_before) / peak if peak else float('nan'):.1f} "
      f"setup_p50_ms={pct(0.5):.1f} setup_p95_ms={pct(0.95):.1f} setup_max_ms={rtts[-1] if rtts else float('nan'):.1f} "
      f"uac_cpu_pct={uac_cpu:.1f} uas_cpu_pct={uas_cpu:.1f} machine_busy_pct={busy:.0f} "
      f"other_cpu_pct={busy - steady_cpu - uac_cpu - uas_cpu:.0f} "
      f"retrans={retrans} sipp_threads={max((s['uac_th'] + s['uas_th'] for s in S), default=0)} "
      f"interference={sum(1 for s in S if s['foreign'])} active_after={m_active} uac_rc=$uac_rc", end="")
if $record:
    g = dict(kv.split("=", 1) for kv in "$gapline".split())
    rec_s = float(g.get("recorded_s", 0))
    nwav = sum(1 for _, _, fs in os.walk(f"{work}/pbx/recordings") for f in fs if f.endswith(".wav"))
    print(f" recordings={nwav} recordings_peak={max((s['recs'] for s in S), default=0)} "
          f"files_with_gaps={g.get('files_with_gaps')} gaps={g.get('gaps')} gap_ms={g.get('gap_ms')} "
          f"silent_channels={g.get('silent_channels')} recorded_s={rec_s:.1f} "
          f"cpu_ms_per_rec_s={server_cpu * 1000 / rec_s if rec_s else float('nan'):.3f} "
          f"wav_unreadable={g.get('unreadable')}", end="")
print()
EOF
