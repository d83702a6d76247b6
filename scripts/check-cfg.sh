#!/usr/bin/env bash
# OS code lives in OS folders (CONTRIBUTING.md): a production
# `#[cfg(...)]` / `#![cfg(...)]` / `cfg_attr(...)` that names an OS
# (target_os, target_family, windows, unix) may appear only in the paths
# below. Test code is not checked: a file is read up to its first top-level
# `#[cfg(test)]` (the unit-test module at the end), and a predicate that
# also names `test` is a test-only item. `cfg!(...)` in an expression is
# allowed anywhere: both branches compile on every OS.
#
# Usage: scripts/check-cfg.sh [SRC_DIR]   (default: src)
set -euo pipefail
src=${1:-src}

# Folders and files whose job is OS code.
allowed=(
  "$src/platform/"
  "$src/probe/"
  "$src/tray/"
  "$src/capture/"
  "$src/names/capture/"
  "$src/guard/linux/"
  "$src/firewall/nft.rs"
  "$src/firewall/netsh.rs"
  "$src/firewall/cgroup.rs"
)
# Files that still hold a small OS branch. Each is a known debt, not a
# place to add more: new OS code goes into an OS folder.
legacy=(
  "$src/firewall/mod.rs"        # picks the backend (nft / netsh / none)
  "$src/notify/desktop.rs"      # the per-OS notification senders
  "$src/guard/mod.rs"           # the guard exists on Linux only
  "$src/guard/client.rs"        # Unix socket client, stub elsewhere
  "$src/guard/live_probe.rs"    # reads the guard over its Unix socket, stub elsewhere
  "$src/ui/mod.rs"              # the Windows console is hidden
)

is_allowed() {
  local f=$1 a
  for a in "${allowed[@]}" "${legacy[@]}"; do
    [[ -n $a && $f == "$a"* ]] && return 0
  done
  return 1
}

pattern='(#!?\[cfg|cfg_attr)\(.*(target_os|target_family|windows|unix)'
bad=0
while IFS= read -r -d '' f; do
  is_allowed "$f" && continue
  hits=$(awk -v pat="$pattern" '
    /^#\[cfg\(test\)\]/ { exit }
    $0 ~ pat && $0 !~ /[(, ]test[), ]/ { printf "%s:%d: %s\n", FILENAME, FNR, $0 }
  ' "$f")
  if [[ -n $hits ]]; then
    printf '%s\n' "$hits"
    bad=1
  fi
done < <(find "$src" -name '*.rs' -print0 | sort -z)

if ((bad)); then
  echo "check-cfg: OS-specific cfg outside the OS folders (see scripts/check-cfg.sh)" >&2
  exit 1
fi
echo "check-cfg: ok"
