#!/bin/sh
# Builds the kizuki .deb, installs it, checks what it installed, starts the
# guard by hand (no systemd here) with its default paths, blocks a
# throwaway program through the guard's socket, purges the package and
# checks that nothing of kizuki is left: no table, no cgroup, no state, no
# socket, no guard. Run as root from anywhere in the repository:
#
#     sh packaging/ci-deb.sh
#
# Needs: cargo-deb (cargo install cargo-deb --locked), and the Debian
# packages desktop-file-utils, appstream, nftables, python3, systemd
# (systemd-analyze). The firewall rule it
# creates drops only the sockets of a throwaway `sleep` it starts, so the
# machine's network is never touched. Exits non-zero with a FAIL line.
set -eu

cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-target}

say() { echo "ci-deb: $*"; }
fail() {
    echo "ci-deb: FAIL: $*" >&2
    exit 1
}

# Prints kizuki's cgroup folders; false when there are none.
cgroups_left() {
    found=1
    for mnt in $(awk '/ - cgroup2 / { print $5 }' /proc/self/mountinfo); do
        if [ -d "$mnt/kizuki-blocked" ]; then
            echo "$mnt/kizuki-blocked"
            found=0
        fi
    done
    return $found
}

# True when dpkg has any trace of kizuki (installed, half-installed,
# or removed with its configuration left).
pkg_present() {
    st=$(dpkg-query -W -f='${Status}' kizuki 2>/dev/null || true)
    case "$st" in "" | *not-installed*) return 1 ;; *) return 0 ;; esac
}

work=""
dummy_pid=""
guard_pid=""
cleanup() {
    status=$?
    if [ -n "$guard_pid" ]; then
        kill "$guard_pid" 2>/dev/null || true
        wait "$guard_pid" 2>/dev/null || true
    fi
    if [ -n "$dummy_pid" ]; then
        kill "$dummy_pid" 2>/dev/null || true
        wait "$dummy_pid" 2>/dev/null || true
    fi
    # Whatever failed, leave the machine as it was.
    if pkg_present; then
        DEBIAN_FRONTEND=noninteractive apt-get purge -y -q kizuki >/dev/null 2>&1 || true
    fi
    if command -v nft >/dev/null 2>&1 && nft list table inet kizuki >/dev/null 2>&1; then
        nft delete table inet kizuki || true
    fi
    # The test's process is gone, so kizuki's cgroups are empty.
    for parent in $(cgroups_left || true); do
        rmdir "$parent"/*/ "$parent" 2>/dev/null || true
    done
    [ -n "$work" ] && rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT INT TERM

[ "$(id -u)" = 0 ] || fail "run as root: it installs and purges a package"
for tool in desktop-file-validate appstreamcli nft dpkg-query apt-get python3 systemd-analyze; do
    command -v "$tool" >/dev/null 2>&1 || fail "$tool not found (apt-get install desktop-file-utils appstream nftables)"
done
cargo deb --version >/dev/null 2>&1 || fail "cargo-deb not found (cargo install cargo-deb --locked)"

if pkg_present; then
    say "kizuki is installed from before; purging it first"
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q kizuki >/dev/null
fi
if nft list table inet kizuki >/dev/null 2>&1; then
    fail "an nftables table inet kizuki exists before the test; remove it (nft delete table inet kizuki) and rerun"
fi

work=$(mktemp -d /tmp/kizuki-ci-deb.XXXXXX)

say "building the package (cargo deb)"
start=$(date +%s)
cargo deb >"$work/cargo-deb.log" 2>&1 || {
    tail -n 30 "$work/cargo-deb.log" >&2
    fail "cargo deb failed"
}
deb=$(ls -t "$target_dir"/debian/kizuki_*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || fail "cargo deb made no $target_dir/debian/kizuki_*.deb"
case "$deb" in /*) ;; *) deb="$PWD/$deb" ;; esac
say "built $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB) in $(($(date +%s) - start)) s"

# Files the package must install.
expected="
/usr/bin/kizuki
/usr/share/applications/jp.kizuki.Kizuki.desktop
/usr/share/metainfo/jp.kizuki.Kizuki.metainfo.xml
/usr/share/kizuki/autostart/jp.kizuki.Kizuki.desktop
/usr/share/polkit-1/actions/jp.kizuki.policy
/usr/lib/systemd/system/kizuki-guard.service
/usr/share/icons/hicolor/scalable/apps/jp.kizuki.Kizuki.svg
/usr/share/icons/hicolor/16x16/apps/jp.kizuki.Kizuki.png
/usr/share/icons/hicolor/32x32/apps/jp.kizuki.Kizuki.png
/usr/share/icons/hicolor/48x48/apps/jp.kizuki.Kizuki.png
/usr/share/icons/hicolor/64x64/apps/jp.kizuki.Kizuki.png
/usr/share/icons/hicolor/128x128/apps/jp.kizuki.Kizuki.png
/usr/share/icons/hicolor/256x256/apps/jp.kizuki.Kizuki.png
/usr/share/doc/kizuki/IPA_Font_License_Agreement_v1.0.txt
/usr/share/doc/kizuki/README.fonts.txt
/usr/share/doc/kizuki/copyright
"

# One request to the guard over its socket, as root; prints the reply line.
ask_guard() {
    python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(60)
s.connect("/run/kizuki/guard.sock")
s.sendall((sys.argv[1] + "\n").encode())
print(s.makefile().readline().strip())' "$1"
}

# Starts the guard by hand with its default paths (/var/lib/kizuki,
# /run/kizuki/guard.sock), as an administrator would without systemd, and
# blocks a throwaway copy of sleep through the socket: this makes kizuki's
# nftables table and a cgroup under kizuki-blocked, and moves the running
# process there. A new start of the copy is caught too.
make_kizuki_rules() {
    cp /bin/sleep "$work/kizuki-ci-blocked"
    "$work/kizuki-ci-blocked" 600 &
    dummy_pid=$!
    /usr/bin/kizuki guard >"$work/guard.log" 2>&1 &
    guard_pid=$!
    n=0
    until ask_guard '{"op":"status"}' 2>/dev/null | grep -q '"reply":"ok"'; do
        n=$((n + 1))
        [ "$n" -lt 300 ] || { cat "$work/guard.log" >&2; fail "the guard did not answer on /run/kizuki/guard.sock"; }
        kill -0 "$guard_pid" 2>/dev/null || { cat "$work/guard.log" >&2; fail "kizuki guard exited"; }
        sleep 0.1
    done
    reply=$(ask_guard "{\"op\":\"block\",\"exe\":\"$work/kizuki-ci-blocked\"}")
    echo "$reply" | grep -q '"reply":"ok"' || fail "the guard did not block: $reply"
    echo "$reply" | grep -q '"enforced":true' || fail "the guard reports the block not in force: $reply"
    nft list table inet kizuki >/dev/null 2>&1 || fail "the guard made no table inet kizuki"
    cgroups_left >/dev/null || fail "the guard made no kizuki-blocked cgroup"
    grep -q kizuki-blocked "/proc/$dummy_pid/cgroup" || fail "the running program was not moved into its cgroup"
    first=$("$work/kizuki-ci-blocked" 0 && echo started)
    [ "$first" = started ] || fail "a new start of the blocked program did not run at all"
    [ -d /var/lib/kizuki ] && [ -S /run/kizuki/guard.sock ] || fail "no guard state or socket"
    say "the guard added table inet kizuki and $(cgroups_left)"
}

install_and_check() {
    say "installing with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$deb" >"$work/apt.log" 2>&1 || {
        tail -n 30 "$work/apt.log" >&2
        fail "apt-get install $deb failed"
    }
    version=$(/usr/bin/kizuki --version) || fail "/usr/bin/kizuki --version did not run"
    case "$version" in kizuki\ *) ;; *) fail "/usr/bin/kizuki --version printed '$version'" ;; esac
    say "installed: $version"
    dpkg -L kizuki >"$work/files"
    for f in $expected; do
        [ -f "$f" ] || fail "the package did not install $f"
        grep -qx "$f" "$work/files" || fail "dpkg -L kizuki does not list $f"
    done
    desktop-file-validate /usr/share/applications/jp.kizuki.Kizuki.desktop \
        || fail "desktop-file-validate rejected the menu entry"
    desktop-file-validate /usr/share/kizuki/autostart/jp.kizuki.Kizuki.desktop \
        || fail "desktop-file-validate rejected the autostart entry"
    # --no-net: the checks never go online (CI has no network to offer).
    appstreamcli validate --no-net /usr/share/metainfo/jp.kizuki.Kizuki.metainfo.xml \
        || fail "appstreamcli validate rejected the metainfo"
    # polkit reads the action only if the file is well-formed XML; when
    # polkitd is reachable (a system bus), ask it directly.
    if command -v xmllint >/dev/null 2>&1; then
        xmllint --noout --nonet /usr/share/polkit-1/actions/jp.kizuki.policy \
            || fail "the polkit policy is not well-formed XML"
    fi
    if command -v pkaction >/dev/null 2>&1 && pkaction >/dev/null 2>&1; then
        for action in block unblock panic resume clear; do
            pkaction --action-id "jp.kizuki.$action" >/dev/null 2>&1 \
                || fail "polkit does not know the action jp.kizuki.$action"
        done
    else
        say "polkitd not reachable: checked the policy file only"
    fi
    systemd-analyze verify /usr/lib/systemd/system/kizuki-guard.service \
        || fail "systemd-analyze verify rejected kizuki-guard.service"
}

check_nothing_left() {
    pkg_present && fail "dpkg still knows kizuki after purge: $(dpkg-query -W -f='${Status}' kizuki)"
    while read -r f; do
        if [ -e "$f" ] && [ ! -d "$f" ]; then
            fail "purge left $f"
        fi
    done <"$work/files"
    for d in /usr/share/kizuki /usr/share/doc/kizuki; do
        [ ! -e "$d" ] || fail "purge left $d"
    done
    ls /var/lib/dpkg/info/kizuki.* >/dev/null 2>&1 && fail "purge left /var/lib/dpkg/info/kizuki.*"
    if nft list table inet kizuki >/dev/null 2>&1; then
        fail "purge left the nftables table inet kizuki"
    fi
    nft list ruleset | grep -q kizuki && fail "purge left kizuki rules in the ruleset"
    left=$(cgroups_left) && fail "purge left cgroup $left"
    [ ! -e /var/lib/kizuki ] || fail "purge left the guard's state /var/lib/kizuki"
    [ ! -e /run/kizuki/guard.sock ] || fail "purge left the guard's socket"
    [ ! -e /run/kizuki ] || fail "purge left /run/kizuki"
    if [ -n "$guard_pid" ]; then
        kill -0 "$guard_pid" 2>/dev/null && fail "the guard still runs after the purge"
        wait "$guard_pid" 2>/dev/null || true
        guard_pid=""
    fi
    # The blocked process was handed back, not killed.
    kill -0 "$dummy_pid" 2>/dev/null || fail "the blocked process did not survive the purge"
    grep -q kizuki-blocked "/proc/$dummy_pid/cgroup" && fail "the blocked process is still in a kizuki cgroup"
    kill "$dummy_pid" 2>/dev/null || true
    wait "$dummy_pid" 2>/dev/null || true
    dummy_pid=""
    return 0
}

say "round 1: install, add rules, purge"
install_and_check
make_kizuki_rules
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q kizuki >"$work/apt.log" 2>&1 || {
    tail -n 30 "$work/apt.log" >&2
    fail "apt-get purge kizuki failed"
}
check_nothing_left
say "round 1: nothing of kizuki is left"

say "round 2: the binary is already gone when the package is purged"
install_and_check
make_kizuki_rules
rm -f /usr/bin/kizuki
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q kizuki >"$work/apt.log" 2>&1 || {
    tail -n 30 "$work/apt.log" >&2
    fail "apt-get purge kizuki failed without its binary"
}
check_nothing_left
say "round 2: nothing of kizuki is left"

say "PASS"
