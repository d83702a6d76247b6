#!/usr/bin/env bash
# Screenshots of the real window under Xvfb, run as an ordinary user
# (a test user, kizukishot: `useradd -m kizukishot`), with a planted "free tool" in
# ~/ダウンロード that keeps a loopback connection to a local listener.
#
#   scripts/screenshots.sh start  <ja|en> <WxH>   start Xvfb, the tool, the window
#   scripts/screenshots.sh click  <x> <y>         click in the window
#   scripts/screenshots.sh type   <text>          type text (ASCII)
#   scripts/screenshots.sh key    <keysym>        press a key (Return, Escape…)
#   scripts/screenshots.sh shot   <name>          docs/screenshots/<name>.png (256 colours)
#   scripts/screenshots.sh stop                   stop all of the above
#
# Needs: Xvfb, xdotool, ImageMagick (import, convert), ncat, setpriv; root
# to switch to that user. Only loopback traffic. KIZUKI_BIN picks the binary
# (default target/debug/kizuki). KIZUKI_SHOT_ROOT=1 runs the window as root
# with --allow-root instead (event capture counts bytes only as root until
# the guard shares its capture with the window); the window then says so.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
work=${KIZUKI_SHOT_DIR:-/tmp/kizuki-shots}
# A home folder outside /tmp, so the planted tool is "in Downloads".
home=${KIZUKI_SHOT_HOME:-/home/kizukishot}
out="$here/docs/screenshots"
display=${KIZUKI_SHOT_DISPLAY:-:58}
port=${KIZUKI_SHOT_PORT:-47123}

as_user() {
    if [[ "${KIZUKI_SHOT_ROOT:-0}" == 1 ]]; then
        env HOME="$home" "$@"
    else
        setpriv --reuid=kizukishot --regid=kizukishot --clear-groups \
            env HOME="$home" XDG_RUNTIME_DIR="$work/run" "$@"
    fi
}

window_id() {
    DISPLAY=$display timeout 5 xdotool search --class kizuki 2>/dev/null | head -1
}

start() {
    local lang=$1 size=$2
    stop || true
    mkdir -p "$home/ダウンロード" "$work/run" "$out"
    echo "$size" >"$work/size"
    chmod 700 "$work/run"
    install -m 755 "${KIZUKI_BIN:-$here/target/debug/kizuki}" "$work/kizuki"
    install -m 755 "$(command -v ncat)" "$home/ダウンロード/freetool"
    # A Japanese desktop names its Downloads folder here.
    mkdir -p "$home/.config"
    printf 'XDG_DOWNLOAD_DIR="$HOME/ダウンロード"\n' >"$home/.config/user-dirs.dirs"
    chown -R kizukishot:kizukishot "$home" "$work/run"
    Xvfb "$display" -screen 0 "${size}x24" -ac -nolisten tcp </dev/null >/dev/null 2>&1 &
    echo $! >"$work/xvfb.pid"
    sleep 1
    # The listener, and the planted tool talking to it every few seconds.
    as_user ncat -lk 127.0.0.1 "$port" </dev/null >/dev/null 2>&1 &
    echo $! >"$work/listener.pid"
    sleep 0.5
    # One connection held open, and a short one every few seconds
    # (20 kB each), like a program that reports home.
    setsid bash -c "exec setpriv --reuid=kizukishot --regid=kizukishot --clear-groups env HOME='$home' bash -c \"sleep 100000 | '$home/ダウンロード/freetool' 127.0.0.1 $port >/dev/null 2>&1 & while true; do head -c 20000 /dev/zero | timeout 2 '$home/ダウンロード/freetool' 127.0.0.1 $port >/dev/null 2>&1; sleep 3; done\"" </dev/null >/dev/null 2>&1 &
    echo $! >"$work/tool.pgid"
    local extra=()
    [[ "${KIZUKI_SHOT_ROOT:-0}" == 1 ]] && extra=(--allow-root)
    as_user env DISPLAY="$display" LANG=ja_JP.UTF-8 "$work/kizuki" --lang "$lang" \
        --data-dir "$home/data" "${extra[@]}" </dev/null >"$work/window.log" 2>&1 &
    echo $! >"$work/window.pid"
    for _ in $(seq 40); do
        [[ -n "$(window_id)" ]] && break
        sleep 0.5
    done
    sleep 4
}

click() {
    DISPLAY=$display xdotool mousemove "$1" "$2" click 1
    sleep 1.2

}

shot() {
    local name=$1 raw="$work/$1.png" size
    size=$(cat "$work/size")
    # The pointer off the window: no hover colour, no tooltip.
    DISPLAY=$display xdotool mousemove "${size%x*}" "${size#*x}"
    sleep 0.8
    local id
    id=$(window_id)
    [[ -n "$id" ]] || { echo "no kizuki window" >&2; return 1; }
    DISPLAY=$display timeout 20 import -window "$id" "$raw"
    convert "$raw" -colors 256 PNG8:"$out/$name.png"
    echo "$out/$name.png"
}

stop() {
    if [[ -f "$work/tool.pgid" ]]; then
        kill -- "-$(cat "$work/tool.pgid")" 2>/dev/null || true
        rm -f "$work/tool.pgid"
    fi
    for f in window listener xvfb; do
        if [[ -f "$work/$f.pid" ]]; then
            kill "$(cat "$work/$f.pid")" 2>/dev/null || true
            rm -f "$work/$f.pid"
        fi
    done
    sleep 0.5
}

cmd=${1:-}
shift || true
case "$cmd" in
start) start "$@" ;;
click) click "$@" ;;
type)
    DISPLAY=$display xdotool type --delay 60 "$1"
    sleep 1
    ;;
key)
    DISPLAY=$display xdotool key "$1"
    sleep 1
    ;;
shot) shot "$@" ;;
stop) stop ;;
*)
    sed -n '2,18p' "$0"
    exit 2
    ;;
esac
