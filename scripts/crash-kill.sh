#!/usr/bin/env bash
# Crash safety: kills kizuki with SIGKILL at random moments while it marks
# programs (`kizuki mark`) and samples/writes its files (`kizuki watch`:
# baseline, hash cache, and the evidence journal where the build has one).
# Afterwards every mark whose success line was printed before the kill is
# in marks.json, nothing was quarantined as corrupt, kizuki still starts,
# and `kizuki history verify` passes (when the build has a journal).
#
#   scripts/crash-kill.sh [rounds]     default 200; CI runs 30
set -euo pipefail
cd "$(dirname "$0")/.."

rounds="${1:-200}"
export CARGO_INCREMENTAL=0
cargo build --quiet --bin kizuki
bin="$PWD/target/debug/kizuki"

work="$(mktemp -d)"
watch_pid=""
cleanup() {
  if [ -n "$watch_pid" ]; then kill -9 "$watch_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
data="$work/data"
mkdir -p "$data" "$work/progs"
k() { "$bin" --data-dir "$data" --lang en "$@"; }

# One small file per round: each mark names a program of its own.
for i in $(seq 1 "$rounds"); do
  printf '#!/bin/sh\n# program %s\n' "$i" >"$work/progs/prog-$i"
  chmod +x "$work/progs/prog-$i"
done

now_ms() { date +%s%3N; }
# How long an undisturbed mark takes: kills land anywhere in 0..1.5x that.
t0=$(now_ms)
k mark "$work/progs/prog-1" unknown --record-only >/dev/null
k mark "$work/progs/prog-1" unknown --record-only >/dev/null
span=$(( ($(now_ms) - t0) / 2 ))
[ "$span" -ge 5 ] || span=5
limit=$(( span * 3 / 2 ))
echo "crash-kill: $rounds rounds; a mark takes ~${span} ms; kills land in 0..${limit} ms"

marks=(trusted unknown blocked)
acked=0

killed_watch=0
really_killed=0
: >"$work/acked"
for i in $(seq 1 "$rounds"); do
  # A sampler writing its files, killed at its own random moment.
  if [ -z "$watch_pid" ]; then
    # "$bin" itself in the background (not a function: $! must be kizuki's
    # own PID, or the kill would hit a subshell and kizuki would live on).
    "$bin" --data-dir "$data" --lang en watch --seconds 1 --interval-ms 100 \
      >/dev/null 2>>"$work/watch.err" &
    watch_pid=$!
    watch_kill_at=$(( $(now_ms) + RANDOM % 1500 ))
  fi

  mark="${marks[$((RANDOM % 3))]}"
  out="$work/out-$i"
  "$bin" --data-dir "$data" --lang en mark "$work/progs/prog-$i" "$mark" --record-only \
    >"$out" 2>"$out.err" &
  pid=$!
  delay=$(( RANDOM % (limit + 1) ))
  sleep "$(awk -v d="$delay" 'BEGIN { printf "%.3f", d / 1000 }')"
  kill -9 "$pid" 2>/dev/null || true
  code=0
  wait "$pid" 2>/dev/null || code=$?
  # 137 = killed by SIGKILL: the kill landed while kizuki ran.
  [ "$code" = 137 ] && really_killed=$((really_killed + 1))
  if grep -q '^Marked ' "$out"; then
    acked=$((acked + 1))
    echo "$work/progs/prog-$i $mark" >>"$work/acked"
  fi

  if [ -n "$watch_pid" ] && [ "$(now_ms)" -ge "$watch_kill_at" ]; then
    kill -9 "$watch_pid" 2>/dev/null || true
    code=0
    wait "$watch_pid" 2>/dev/null || code=$?
    [ "$code" = 137 ] && killed_watch=$((killed_watch + 1))
    watch_pid=""
  fi
done
if [ -n "$watch_pid" ]; then
  kill -9 "$watch_pid" 2>/dev/null || true
  wait "$watch_pid" 2>/dev/null || true
  watch_pid=""
fi

fail=0
# Every acknowledged mark is in the file, with the mark that was printed.
if ! python3 - "$data/marks.json" "$work/acked" >"$work/check.out" <<'PY'
import json, os, sys
marks = {m["exe"]: m["mark"] for m in json.load(open(sys.argv[1]))["marks"]}
missing = 0
for line in open(sys.argv[2]):
    path, mark = line.split()
    path = os.path.realpath(path)
    if marks.get(path) != mark:
        missing += 1
        print(f"crash-kill: acknowledged mark lost: {path} {mark} (file has {marks.get(path)})")
print(f"crash-kill: marks in file: {len(marks)}")
print(f"lost={missing}")
sys.exit(1 if missing else 0)
PY
then
  fail=1
fi
grep -v '^lost=' "$work/check.out" || true
missing=$(sed -n 's/^lost=//p' "$work/check.out")

corrupt=$(find "$data" -name '*.corrupt-*' | wc -l)
temps=$(find "$data" -name '.*.tmp-*' | wc -l)
[ "$corrupt" = 0 ] || { echo "crash-kill: FAIL: $corrupt file(s) were found corrupt"; find "$data" -name '*.corrupt-*'; fail=1; }

# kizuki starts normally afterwards (and cleans up temp files of killed
# saves when it next saves marks).
if ! k scan --json >"$work/scan.json" 2>"$work/scan.err"; then
  echo "crash-kill: FAIL: scan after the kills failed:"; cat "$work/scan.err"; fail=1
fi
if grep -qi 'corrupt\|damaged\|could not be read' "$work/scan.err" "$work/watch.err" 2>/dev/null; then
  echo "crash-kill: FAIL: kizuki reported damaged files:"
  grep -hi 'corrupt\|damaged\|could not be read' "$work/scan.err" "$work/watch.err" | head -5
  fail=1
fi
k mark "$work/progs/prog-1" trusted --record-only >/dev/null
temps_after=$(find "$data" -name '.marks.json.tmp-*' | wc -l)
[ "$temps_after" = 0 ] || { echo "crash-kill: FAIL: $temps_after stale marks temp file(s) left"; fail=1; }

verify="skipped (this build has no journal: \`kizuki history verify\` not available)"
if k history verify --help >/dev/null 2>&1; then
  if k history verify >"$work/verify.out" 2>&1; then
    verify="passed"
  else
    verify="FAILED"; cat "$work/verify.out"; fail=1
  fi
fi

echo "crash-kill: rounds=$rounds marks_killed_mid_run=$really_killed acknowledged=$acked lost=$missing" \
  "watches_killed_mid_run=$killed_watch corrupt_files=$corrupt temp_files_before_restart=$temps" \
  "history_verify=$verify"
[ "$fail" = 0 ] && echo "crash-kill: PASS"
exit "$fail"
