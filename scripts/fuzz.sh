#!/usr/bin/env bash
# Runs each fuzz target for a bounded time (not part of `cargo test`).
#
#   scripts/fuzz.sh [seconds-per-target] [target…]     default 60 s, all targets
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# The corpus grows in fuzz/corpus/<target> (ignored by git) and starts from
# the small seeds in fuzz/seeds/<target>. A crash leaves its input in
# fuzz/artifacts/<target>/: turn it into a regression test in the main crate
# (tests/hostile_*.rs or a unit test), fix the bug, then delete the artifact.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

secs="${1:-60}"
shift || true
targets=("$@")
if [ "${#targets[@]}" = 0 ]; then
  targets=(marks contacts report plan_validate plan_build)
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: needs the nightly toolchain and cargo-fuzz; skipping"
  exit 0
fi

export CARGO_INCREMENTAL=0
cargo +nightly fuzz build >/dev/null
failed=()
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  seeds=()
  [ -d "seeds/$t" ] && seeds=("seeds/$t")
  echo "fuzz: $t for ${secs}s"
  if cargo +nightly fuzz run "$t" "corpus/$t" "${seeds[@]}" -- \
      -max_total_time="$secs" -max_len=8192 -rss_limit_mb=2048 -print_final_stats=1 \
      2>"corpus/$t.log"; then
    grep -E '^stat::number_of_executed_units|^Done' "corpus/$t.log" | sed "s/^/fuzz: $t: /" || true
  else
    echo "fuzz: $t FAILED; input in fuzz/artifacts/$t/:"
    grep -E 'panicked|ERROR|SUMMARY' "corpus/$t.log" | head -5
    failed+=("$t")
  fi
done
if [ "${#failed[@]}" != 0 ]; then
  echo "fuzz: crashes in: ${failed[*]}"
  exit 1
fi
echo "fuzz: no crash"
