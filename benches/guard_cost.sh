#!/usr/bin/env bash
# The guard's own cost (docs/PERFORMANCE.md, "The guard"), as root:
#   benches/guard_cost.sh idle [BIN]   own PID + network namespace, 68 sleepers
#   benches/guard_cost.sh load [BIN]   under ../shared/bench/loadgen.py
#                                      (200 processes, 5,000 connections;
#                                      LOADGEN= its path)
# Prints CPU (utime + stime, % of one core) over MEAS seconds after WARM
# seconds, and VmRSS, RssAnon and PSS. The guard runs on a temporary state
# folder with the service's malloc setting (GLIBC_TUNABLES, see
# packaging/linux/kizuki-guard.service). Compare two builds in turn, A B A B.
set -euo pipefail
MODE=${1:?idle or load}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${2:-$ROOT/target/release/kizuki}
LOADGEN=${LOADGEN:-$ROOT/../shared/bench/loadgen.py}
WARM=${WARM:-15} MEAS=${MEAS:-30}
export GLIBC_TUNABLES=${GLIBC_TUNABLES-glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=2097152:glibc.malloc.trim_threshold=524288}
D=$(mktemp -d); mkdir -m 700 "$D/state"
export KIZUKI_GUARD_SOCKET=$D/guard.sock KIZUKI_STATE_DIR=$D/state BIN WARM MEAS D

measure() {
    "$BIN" guard 2>"$D/guard.log" & local gp=$!
    sleep "$WARM"
    local a b
    a=$(awk '{print $14+$15}' /proc/$gp/stat); sleep "$MEAS"; b=$(awk '{print $14+$15}' /proc/$gp/stat)
    echo "cpu=$(echo "scale=2; ($b-$a)/$MEAS" | bc)% $(grep -E 'VmRSS|RssAnon' /proc/$gp/status | tr -s ' \t\n' ' ')pss=$(awk '/^Pss:/{s+=$2} END{print s}' /proc/$gp/smaps)kB"
    kill $gp; wait $gp 2>/dev/null || true
}
export -f measure

case $MODE in
idle)
    unshare --pid --net --fork --mount-proc bash -c '
        ip link set lo up
        for i in $(seq 68); do sleep 100000 & done
        measure' ;;
load)
    setsid python3 "$LOADGEN" --procs 200 --conns 5000 \
        --seconds $((WARM + MEAS + 30)) >"$D/load.log" 2>&1 & lp=$!
    measure
    kill -- -$lp 2>/dev/null || true; wait 2>/dev/null || true ;;
*) echo "idle or load" >&2; exit 2 ;;
esac
rm -rf "$D"
