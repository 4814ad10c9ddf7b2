#!/usr/bin/env bash
# The call load without and with recording, one right after the other (same sitting).
#
#   bench/record_compare.sh CONCURRENCY DURATION [LOAD]
#
# Runs bench/calls.sh with RECORD=0, then with RECORD=1 (same arguments and environment),
# prints both result lines, then one line of comparisons:
#   compare concurrency= reached_off= reached_on= cpu_ms_per_call_s_off= cpu_ms_per_call_s_on=
#   cpu_ratio= steady_cpu_ms_per_call_s_off= steady_cpu_ms_per_call_s_on= steady_ratio=
#   e2e_loss_pct_off= e2e_loss_pct_on= loss_ratio= rss_mb_off= rss_mb_on= recordings=
#   files_with_gaps= gaps= cpu_ms_per_rec_s= interference_off= interference_on=
# (ratios: on / off; "inf" or "nan" when the off figure is 0). ORDER=on-off runs the recorded
# load first. Everything bench/calls.sh says about a quiet machine applies to both runs.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[[ $# -eq 2 || $# -eq 3 ]] || { sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

declare -A line
order=(0 1)
[[ ${ORDER:-off-on} == on-off ]] && order=(1 0)
for rec in "${order[@]}"; do
    out=$(RECORD=$rec "$here/calls.sh" "$@") || { echo "record_compare.sh: calls.sh failed (RECORD=$rec)" >&2; exit 1; }
    line[$rec]=$out
    echo "record=$rec $out"
    sleep 3
done
python3 - "${line[0]}" "${line[1]}" <<'PY'
import sys
off, on = (dict(kv.split("=", 1) for kv in l.split()) for l in sys.argv[1:3])
def ratio(k):
    try:
        a, b = float(off[k]), float(on[k])
    except (KeyError, ValueError):
        return "nan"
    return f"{b / a:.2f}" if a else ("nan" if b == 0 else "inf")
print(f"compare concurrency={on.get('concurrency')} reached_off={off.get('reached')} reached_on={on.get('reached')} "
      f"cpu_ms_per_call_s_off={off.get('cpu_ms_per_call_s')} cpu_ms_per_call_s_on={on.get('cpu_ms_per_call_s')} "
      f"cpu_ratio={ratio('cpu_ms_per_call_s')} "
      f"steady_cpu_ms_per_call_s_off={off.get('steady_cpu_ms_per_call_s')} "
      f"steady_cpu_ms_per_call_s_on={on.get('steady_cpu_ms_per_call_s')} steady_ratio={ratio('steady_cpu_ms_per_call_s')} "
      f"e2e_loss_pct_off={off.get('e2e_loss_pct')} e2e_loss_pct_on={on.get('e2e_loss_pct')} loss_ratio={ratio('e2e_loss_pct')} "
      f"rss_mb_off={off.get('rss_mb')} rss_mb_on={on.get('rss_mb')} recordings={on.get('recordings')} "
      f"files_with_gaps={on.get('files_with_gaps')} gaps={on.get('gaps')} cpu_ms_per_rec_s={on.get('cpu_ms_per_rec_s')} "
      f"interference_off={off.get('interference')} interference_on={on.get('interference')}")
PY
