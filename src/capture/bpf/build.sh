#!/usr/bin/env bash
# Rebuilds kizuki.bpf.o from kizuki.bpf.c. Needs clang-16, bpftool and
# libbpf-dev (Debian packages) and a kernel with BTF; building kizuki
# itself needs none of them (the object is committed).
#   src/capture/bpf/build.sh            rebuild kizuki.bpf.o in place
#   src/capture/bpf/build.sh OUT.o      build into OUT.o (to compare)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/kizuki.bpf.o}"
clang="${CLANG:-clang-16}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# CO-RE: the types come from the running kernel's BTF; field offsets are
# relocated at load time on whatever kernel runs kizuki.
bpftool btf dump file /sys/kernel/btf/vmlinux format c >"$work/vmlinux.h"
"$clang" -O2 -g -target bpf -D__TARGET_ARCH_x86 \
  -I"$work" -I/usr/include/x86_64-linux-gnu \
  -fdebug-prefix-map="$here"=. -fdebug-prefix-map="$work"=. \
  -c "$here/kizuki.bpf.c" -o "$work/kizuki.bpf.o"
# Keep the BTF the loader needs, drop DWARF (smaller, reproducible).
llvm-strip-16 -g "$work/kizuki.bpf.o" 2>/dev/null || true
cp "$work/kizuki.bpf.o" "$out"
echo "built $out ($(wc -c <"$out") bytes)"
