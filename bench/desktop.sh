#!/usr/bin/env bash
# Desktop app: launch-to-interactive time and idle memory/CPU, Hark vs Linphone desktop,
# each on its own Xvfb display with a fresh home directory, loopback only.
#
#   bench/desktop.sh [RUNS] [IDLE_SECS]     (defaults: 5 runs, 20 s idle window)
#
# Per run and app, one line:
#   app=hark run=1 window_ms=412 interactive_ms=655 pss_kb=118000 rss_kb=190000 procs=3 idle_cpu_pct=0.21
# window_ms: from spawn until the app's top-level window is mapped (xwininfo, polled every
# 20 ms). interactive_ms (Hark only): the app's own mark, printed when the UI has mounted
# and made its first command call (it answers clicks from then on). Hark starts in
# embedded PBX mode (first launch: it creates its PBX, starts it, registers to it).
# Both run in their own session bus (dbus-run-session; Linphone needs one), which is not
# counted. Memory is read 10 s after the window appears, summed over the app's process tree
# (WebKit's web and network processes included): PSS (shared pages split between
# processes) and RSS. idle_cpu_pct: user+system CPU of the tree over IDLE_SECS, as a
# percentage of one core. procs_pss_kb_ticks: per process COMM:PSS_KB:CPU_TICKS (ticks
# since the process started, read after the idle window), to see where the totals go.
#
# Environment: HARK_DESKTOP (default target/release/hark-desktop), LINPHONE (default
# linphone, from Debian's linphone-desktop; SKIP_LINPHONE=1 to leave it out).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

runs=${1:-5}
idle=${2:-20}
app=${HARK_DESKTOP:-target/release/hark-desktop}
[ -x "$app" ] || { echo "error: $app missing: cargo build --release -p hark-desktop" >&2; exit 1; }
apt_need xvfb:Xvfb x11-utils:xwininfo dbus:dbus-run-session
[ -n "${SKIP_LINPHONE:-}" ] || apt_need linphone-desktop:linphone

hz=$(getconf CLK_TCK)
now_ms() { date +%s%3N; }

# All descendants of $1, and $1, but the session bus (dbus-run-session, dbus-daemon).
tree() {
    local pids=("$1") out=() p
    while [ ${#pids[@]} -gt 0 ]; do
        p=${pids[0]}; pids=("${pids[@]:1}")
        case "$(cat /proc/"$p"/comm 2>/dev/null)" in dbus-run-sessio*|dbus-daemon) ;; *) out+=("$p") ;; esac
        for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do pids+=("$c"); done
    done
    echo "${out[@]}"
}
sum_kb() { # FIELD PIDS...
    local field=$1; shift; local total=0 v p
    for p in "$@"; do
        v=$(awk -v f="$field:" '$1==f {print $2}' /proc/"$p"/smaps_rollup 2>/dev/null || true)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}
# Per process of the tree: COMM:PSS_KB:CPU_TICKS_SINCE_START, comma-separated (where the
# total goes: the app, WebKit's web process, WebKit's network process).
by_proc() {
    local out=() p comm pss ticks
    for p in "$@"; do
        comm=$(tr ' ' '_' </proc/"$p"/comm 2>/dev/null) || continue
        pss=$(sum_kb Pss "$p")
        ticks=$(awk '{print $14 + $15}' /proc/"$p"/stat 2>/dev/null || echo 0)
        out+=("$comm:$pss:$ticks")
    done
    local IFS=,; echo "${out[*]}"
}
cpu_ticks() {
    local total=0 p
    for p in "$@"; do
        [ -r /proc/"$p"/stat ] || continue
        total=$((total + $(awk '{print $14 + $15}' /proc/"$p"/stat)))
    done
    echo "$total"
}

measure() { # NAME WINDOW_REGEX COMMAND...
    local name=$1 regex=$2; shift 2
    local home; home=$(mktemp -d)
    local disp=$((200 + RANDOM % 500))
    Xvfb ":$disp" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
    local xpid=$!
    for _ in $(seq 100); do [ -e "/tmp/.X11-unix/X$disp" ] && break; sleep 0.05; done
    local log=$home/stderr.log
    local t0; t0=$(now_ms)
    HOME=$home XDG_DATA_HOME=$home/.local/share XDG_CONFIG_HOME=$home/.config DISPLAY=":$disp" \
        HARK_DESKTOP_DATA=$home/hark HARK_SIP=127.0.0.1:0 setsid dbus-run-session -- "$@" >"$log" 2>&1 &
    local pid=$!
    local window_ms=""
    for _ in $(seq 1500); do
        if DISPLAY=":$disp" xwininfo -root -tree 2>/dev/null | grep -Eqi "$regex"; then
            window_ms=$(( $(now_ms) - t0 )); break
        fi
        sleep 0.02
    done
    local interactive_ms="-"
    if [ "$name" = hark ]; then
        for _ in $(seq 600); do
            if grep -q "interactive after" "$log"; then
                interactive_ms=$(sed -n 's/.*interactive after \([0-9]*\) ms.*/\1/p' "$log" | head -1); break
            fi
            sleep 0.05
        done
    fi
    sleep 10
    # shellcheck disable=SC2046
    local pids; pids=$(tree "$pid")
    local pss rss c0 c1
    pss=$(sum_kb Pss $pids); rss=$(sum_kb Rss $pids)
    c0=$(cpu_ticks $pids); sleep "$idle"; c1=$(cpu_ticks $(tree "$pid"))
    # shellcheck disable=SC2046
    local by; by=$(by_proc $(tree "$pid"))
    local cpu; cpu=$(awk -v d=$((c1 - c0)) -v hz="$hz" -v s="$idle" 'BEGIN {printf "%.2f", 100 * d / hz / s}')
    echo "app=$name run=$run window_ms=${window_ms:-timeout} interactive_ms=$interactive_ms pss_kb=$pss rss_kb=$rss procs=$(echo $pids | wc -w) idle_cpu_pct=$cpu procs_pss_kb_ticks=$by"
    [ -n "$window_ms" ] || { echo "--- $name did not map its window; its log:" >&2; tail -20 "$log" >&2; }
    kill -TERM -- -"$pid" 2>/dev/null || true
    sleep 1
    kill -KILL -- -"$pid" 2>/dev/null || true
    kill "$xpid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$home"
}

for run in $(seq "$runs"); do
    measure hark '"Hark"' "$app"
    [ -n "${SKIP_LINPHONE:-}" ] || measure linphone '"Linphone' "${LINPHONE:-linphone}"
done
