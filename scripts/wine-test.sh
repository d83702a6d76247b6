#!/usr/bin/env bash
# Runs the Windows build under Wine: the whole test suite cross-compiled
# for x86_64-pc-windows-gnu (unit tests, the Windows-only tests of
# src/platform/win/, the tray, the instance event, the Run key, the kittest window
# flows), then the real kizuki.exe on a Windows-like system: a program run
# from %TEMP% must be noticed, login start must use the Run key, and the
# window must open (on Xvfb, when it is installed).
#
# Needs: the x86_64-pc-windows-gnu target, gcc-mingw-w64-x86-64, wine64.
# Wine is not Windows: it reports no owning process for sockets, and its
# firewall (netsh advfirewall) and toast notifications are stubs, so those
# parts are not checked here.
set -euo pipefail
cd "$(dirname "$0")/.."

WINE=${WINE:-/usr/lib/wine/wine64}
command -v "$WINE" >/dev/null || WINE=$(command -v wine64 || command -v wine)
own_prefix=0
if [ -z "${WINEPREFIX:-}" ]; then
  WINEPREFIX=$(mktemp -d /tmp/kizuki-wine.XXXXXX)
  own_prefix=1
fi
export WINEPREFIX
export WINEDEBUG=-all
export CARGO_INCREMENTAL=0
# "No test may skip" is about root on Linux (nftables, cgroups, fanotify);
# under Wine nothing is privileged, so the Linux-only checks are not asked.
unset KIZUKI_REQUIRE_PRIVILEGED

echo "wine: $("$WINE" --version) in $WINEPREFIX"
"$WINE" wineboot -i >/dev/null 2>&1 || true

sys32="$WINEPREFIX/drive_c/windows/system32"
if [ ! -e "$sys32/bcryptprimitives.dll" ]; then
  echo "wine: no bcryptprimitives.dll; installing the test stand-in (scripts/wine/prng-shim.c)"
  x86_64-w64-mingw32-gcc -shared -O2 -o "$sys32/bcryptprimitives.dll" \
    scripts/wine/prng-shim.c scripts/wine/prng-shim.def -ladvapi32
fi

# Release: sysinfo's user listing trips a debug-only check on Wine's
# empty logon-session list (it is fine on Windows, where it is never
# empty).
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$WINE"
cargo test --release --target x86_64-pc-windows-gnu

exe=target/x86_64-pc-windows-gnu/release/kizuki.exe
cargo build --release --target x86_64-pc-windows-gnu
"$WINE" "$exe" --version

# A "free tool" started from %TEMP%, as the 2012 trojan was: kizuki.exe
# must list it with the runs-from-temp finding, found through Windows'
# own folders. (cmd.exe copied there, waiting on its input. Listening and
# beaconing need socket owners, which Wine does not report.)
temp_win=$("$WINE" cmd /c echo %TEMP% 2>/dev/null | tr -d '\r')
temp_unix=$("$WINE" winepath -u "$temp_win" 2>/dev/null | tr -d '\r')
work=$(mktemp -d)
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  "$(dirname "$WINE")/wineserver" -k 2>/dev/null || wineserver -k 2>/dev/null || true
  rm -rf "$work"
  if [ "$own_prefix" = 1 ]; then rm -rf "$WINEPREFIX"; fi
}
trap cleanup EXIT
cp "$sys32/cmd.exe" "$temp_unix/freetool.exe"
mkfifo "$work/in"
"$WINE" "$temp_win\\freetool.exe" <"$work/in" >/dev/null 2>&1 &
exec 3>"$work/in"   # keep its input open: it waits

data_win="C:\\kizuki-wine-data"
found=0
for _ in $(seq 1 30); do
  "$WINE" "$exe" --data-dir "$data_win" scan --json >"$work/scan.json" 2>"$work/scan.err" || true
  if python3 - "$work/scan.json" <<'PY'
import json, sys
snap = json.load(open(sys.argv[1], encoding="utf-8"))
names = {p["name"].lower() for p in snap["programs"]}
tool = [p for p in snap["programs"] if p["name"].lower() == "freetool.exe"]
if not tool:
    sys.exit(1)
kinds = {f["kind"] for f in tool[0]["findings"]}
print("kizuki.exe sees", len(snap["programs"]), "programs; freetool.exe findings:", sorted(kinds))
assert "services.exe" in names, names
assert "runs-from-temp" in kinds, kinds
assert tool[0]["exe"].lower().endswith("\\temp\\freetool.exe"), tool[0]["exe"]
PY
  then found=1; break; fi
done
exec 3>&-
if [ "$found" != 1 ]; then
  echo "FAIL: kizuki.exe did not report freetool.exe running from %TEMP%"
  cat "$work/scan.err"
  exit 1
fi

# Starting with Windows: the Run key, on and off again.
"$WINE" "$exe" --lang en autostart on | grep -q "CurrentVersion\\\\Run"
"$WINE" "$exe" --lang en autostart status | grep -q "^On"
"$WINE" "$exe" --lang en autostart off | grep -q "no longer"
"$WINE" "$exe" --lang en autostart status | grep -q "^Off"
# The window itself on a virtual display (eframe through Wine's OpenGL).
# Wine picks its graphics driver when its desktop starts, so it is
# restarted with DISPLAY set.
if command -v Xvfb >/dev/null && command -v xwininfo >/dev/null; then
  "$(dirname "$WINE")/wineserver" -k 2>/dev/null || true
  disp=":$((150 + RANDOM % 100))"
  Xvfb "$disp" -screen 0 1280x800x24 >/dev/null 2>&1 &
  export DISPLAY="$disp"
  KIZUKI_ALLOW_ROOT=1 "$WINE" "$exe" --data-dir "$data_win" --lang ja >"$work/gui.log" 2>&1 &
  shown=0
  for _ in $(seq 1 90); do
    if xwininfo -root -tree 2>/dev/null | grep -q '"気づき'; then shown=1; break; fi
    sleep 1
  done
  if [ "$shown" != 1 ]; then
    echo "FAIL: kizuki.exe's window did not appear under Wine"
    cat "$work/gui.log"
    exit 1
  fi
  echo "wine: kizuki.exe's window is up: $(xwininfo -root -tree | grep '"気づき' | head -1 | sed 's/^ *//')"
else
  echo "wine: Xvfb or xwininfo missing: the window was not started"
fi
echo "wine: PASS"
