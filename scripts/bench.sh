#!/usr/bin/env bash
# kizuki's performance figures, side by side in one run (docs/PERFORMANCE.md):
#   1. event capture: a loopback connect/close loop with and without
#      `kizuki watch` capturing (root only; benches/capture_overhead.py);
#   2. `kizuki scan --json` against `ss -tanup`, whole processes, under
#      ../shared/bench/loadgen.py (200 processes, 5,000 connections), no guard
#      (benches/paired.py);
#   3. the app hidden in the tray as an ordinary user under Xvfb: CPU and
#      resident memory idle, under the same load, and after the window was
#      shown once (benches/hidden_app.py).
# As root, parts 2 and 3 run in a network and PID namespace of their own
# (unshare): the machine's other processes and sockets stay out of the
# figures, so "200 processes / 5,000 connections" is what is measured.
#
#   scripts/bench.sh [--quick]      (--quick: fewer rounds, shorter windows)
#
# Needs python3, ss (iproute2), Xvfb, dbus-daemon, xdotool, Debian's
# python3-dbus and python3-gi, util-linux (setpriv, unshare). Everything
# stays on 127.0.0.1 and stops by itself.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KIZUKI="${KIZUKI:-$ROOT/target/release/kizuki}"
ROUNDS=11 SECONDS_EACH=30 CAPTURE_ROUNDS=3
if [[ "${1:-}" == "--quick" ]]; then
    ROUNDS=5 SECONDS_EACH=15 CAPTURE_ROUNDS=2
fi
export ROUNDS SECONDS_EACH CAPTURE_ROUNDS KIZUKI

if [[ -z "${KIZUKI_BENCH_INNER:-}" ]]; then
    if [[ ! -x "$KIZUKI" ]]; then
        (cd "$ROOT" && cargo build --release)
    fi
    echo "kizuki performance, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r)"
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "## 1. event capture overhead (loopback connect/close loop)"
    if [[ "$(id -u)" == 0 ]]; then
        python3 "$ROOT/benches/capture_overhead.py" --kizuki "$KIZUKI" \
            --rounds "$CAPTURE_ROUNDS" --runs 5 --conns 3000
    else
        echo "  skipped: event capture needs root"
    fi
    echo
    if [[ "$(id -u)" == 0 ]]; then
        exec unshare --net --pid --fork --mount-proc \
            env KIZUKI_BENCH_INNER=1 KIZUKI_BENCH_NETNS=1 bash "${BASH_SOURCE[0]}" "$@"
    fi
    export KIZUKI_BENCH_INNER=1
fi
if [[ "${KIZUKI_BENCH_NETNS:-}" == 1 ]]; then
    ip link set lo up
    echo "(parts 2 and 3 in a network and PID namespace of their own)"
fi

loadgen=""
for up in "$ROOT/../shared" "$ROOT/../../shared"; do
    [[ -f "$up/bench/loadgen.py" ]] && loadgen="$up/bench/loadgen.py" && break
done
[[ -n "$loadgen" ]] || { echo "loadgen.py not found in ../shared/bench" >&2; exit 1; }

echo "## 2. kizuki scan --json vs ss -tanup, 200 processes / 5,000 connections, no guard"
tmp="$(mktemp -d)"
load_pid=""
cleanup() {
    [[ -n "$load_pid" ]] && kill "$load_pid" 2>/dev/null && wait "$load_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
python3 "$loadgen" --procs 200 --conns 5000 --seconds 600 >"$tmp/load.out" &
load_pid=$!
for _ in $(seq 120); do grep -q ready "$tmp/load.out" 2>/dev/null && break; sleep 0.5; done
grep -q ready "$tmp/load.out" || { echo "the load did not come up" >&2; exit 1; }
echo "  load: $(cat "$tmp/load.out"), $(ls /proc | grep -c '^[0-9]') processes seen"
mkdir -p "$tmp/data"
python3 "$ROOT/benches/paired.py" --rounds "$ROUNDS" \
    --a "$KIZUKI --data-dir $tmp/data scan --json" --label-a "kizuki scan --json" \
    --b "ss -tanup" --label-b "ss -tanup"
kill "$load_pid"; wait "$load_pid" 2>/dev/null || true; load_pid=""
echo

echo "## 3. the app hidden in the tray (ordinary user, Xvfb)"
hidden=(python3 "$ROOT/benches/hidden_app.py" --kizuki "$KIZUKI" --seconds "$SECONDS_EACH" --warmup 10)
if [[ "${KIZUKI_BENCH_NETNS:-}" == 1 ]]; then
    # A fresh network namespace: part 2's connections linger in TIME_WAIT
    # for a minute and would count as the idle desktop's.
    unshare --net "${hidden[@]}"
else
    "${hidden[@]}"
fi
