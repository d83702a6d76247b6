#!/usr/bin/env bash
# Process churn soak: the real sampler (MonitorCore, native probe, every
# stage of `kizuki watch`) runs while ~100 processes a second start and exit
# and sockets open and close. Reports panics (must be 0), misattributions
# found by checking sampled sockets against /proc/PID/fd (must be 0), and
# resident memory after warm-up and at the end (must stay flat).
#
#   scripts/soak-churn.sh [minutes]     default 10; CI runs 1
#
# Env: SOAK_RATE (processes/s, default 100), SOAK_INTERVAL_MS (default 250),
# SOAK_MAX_GROWTH_KB (allowed RSS growth after warm-up, default 4096).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(uname -s)" != Linux ]; then
  echo "soak-churn: Linux only; skipping"
  exit 0
fi

minutes="${1:-10}"
seconds=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')
rate="${SOAK_RATE:-100}"
interval="${SOAK_INTERVAL_MS:-250}"
max_growth="${SOAK_MAX_GROWTH_KB:-4096}"

export CARGO_INCREMENTAL=0
cargo build --quiet --example churn_soak
bin=target/debug/examples/churn_soak

work="$(mktemp -d)"
churn_pid=""
cleanup() {
  if [ -n "$churn_pid" ]; then kill "$churn_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/data"

echo "soak-churn: ${seconds}s, ${rate} processes/s, sampling every ${interval} ms"
"$bin" churn --seconds "$((seconds + 3))" --rate "$rate" --child-dir "$work" \
  >"$work/churn.out" 2>&1 &
churn_pid=$!

status=0
"$bin" sampler --seconds "$seconds" --interval-ms "$interval" --data-dir "$work/data" \
  2>"$work/sampler.err" | tee "$work/sampler.out" || status=$?
wait "$churn_pid" || true
churn_pid=""
cat "$work/churn.out"

result="$(grep '^RESULT ' "$work/sampler.out" || true)"
if [ -z "$result" ]; then
  echo "soak-churn: FAIL: the sampler printed no result (exit $status)"
  tail -n 20 "$work/sampler.err"
  exit 1
fi
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$result"; }
panics=$(field panics)
mis=$(field misattributions)
wrong=$(field wrong_program)
start=$(field rss_start_kb)
end=$(field rss_end_kb)
growth=$((end - start))
panic_lines=$(grep -c 'panicked' "$work/sampler.err" || true)

echo "soak-churn: panics=$panics (stderr panic lines: $panic_lines) misattributions=$mis" \
  "wrong_program=$wrong rss_after_warmup_kb=$start rss_end_kb=$end growth_kb=$growth"
fail=0
[ "$panics" = 0 ] && [ "$panic_lines" = 0 ] || { echo "soak-churn: FAIL: panics"; fail=1; }
[ "$mis" = 0 ] && [ "$wrong" = 0 ] || { echo "soak-churn: FAIL: misattributed sockets"; fail=1; }
[ "$growth" -le "$max_growth" ] || { echo "soak-churn: FAIL: memory grew ${growth} KB"; fail=1; }
[ "$status" = 0 ] || [ "$fail" = 1 ] || { echo "soak-churn: FAIL: sampler exit $status"; fail=1; }
[ "$fail" = 0 ] && echo "soak-churn: PASS"
exit "$fail"
