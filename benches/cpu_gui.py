#!/usr/bin/env python3
"""CPU of the real app hidden in the tray, idle and under the socket load.

    cargo build --release
    python3 benches/cpu_gui.py [--seconds 60] [--warmup 15] [--procs 200] [--conns 5000]

Starts Xvfb, a private D-Bus session with the test stand-ins of
tests/dbus/ (a StatusNotifierWatcher and a notification server), then
`kizuki --minimized` on a fresh data folder, so the window lives hidden in
the tray exactly as after autostart. After a warm-up (first samples hash
every executable) it reads the process's utime + stime from /proc/PID/stat
twice, `--seconds` apart, and reports the difference as a percentage of one
core, with the machine's load average so a busy machine shows. The load
stays on 127.0.0.1 and stops by itself. Needs Xvfb, dbus-daemon and
Debian's python3-dbus / python3-gi.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PYTHON = "/usr/bin/python3"
TICKS = os.sysconf("SC_CLK_TCK")


def loadgen():
    for up in ("..", os.path.join("..", "..")):
        p = os.path.abspath(os.path.join(ROOT, up, "shared", "bench", "loadgen.py"))
        if os.path.exists(p):
            return p
    sys.exit("loadgen.py not found beside the repository (../shared/bench)")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15; after ")" the list starts at field 3.
    return (int(fields[11]) + int(fields[12])) / TICKS


def wait_line(proc, want, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith(want):
            return line.strip()
    sys.exit(f"timed out waiting for {want!r}")


class Desktop:
    def __init__(self, tmp):
        self.procs = []
        xvfb = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", "1280x800x24",
                                 "-nolisten", "tcp"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        self.procs.append(xvfb)
        self.display = ":" + xvfb.stdout.readline().strip()
        bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address",
                                f"--address=unix:path={tmp}/bus"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
        self.procs.append(bus)
        self.bus = bus.stdout.readline().strip()
        env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=self.bus)
        self.watcher = None
        for script in ("watcher.py", "notifyd.py"):
            p = subprocess.Popen([PYTHON, os.path.join(ROOT, "tests", "dbus", script)],
                                 stdout=subprocess.PIPE, env=env, text=True)
            self.procs.append(p)
            wait_line(p, "ready")
            if script == "watcher.py":
                self.watcher = p

    def close(self):
        for p in reversed(self.procs):
            p.terminate()
            p.wait()


def measure(kizuki, desktop, tmp, seconds, warmup):
    data = tempfile.mkdtemp(prefix="data-", dir=tmp)
    runtime = tempfile.mkdtemp(prefix="run-", dir=tmp)
    env = dict(os.environ, DISPLAY=desktop.display, DBUS_SESSION_BUS_ADDRESS=desktop.bus,
               XDG_RUNTIME_DIR=runtime, LANG="ja_JP.UTF-8")
    env.pop("WAYLAND_DISPLAY", None)
    args = [kizuki, "--minimized", "--data-dir", data]
    if os.geteuid() == 0:
        args.append("--allow-root")
    app = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        wait_line(desktop.watcher, "registered")
        time.sleep(warmup)
        load_before = os.getloadavg()[0]
        c0, t0 = cpu_seconds(app.pid), time.monotonic()
        time.sleep(seconds)
        c1, t1 = cpu_seconds(app.pid), time.monotonic()
        load_after = os.getloadavg()[0]
        with open(f"/proc/{app.pid}/status") as f:
            rss = next((l.split()[1] for l in f if l.startswith("VmRSS")), "?")
        return c1 - c0, t1 - t0, (load_before + load_after) / 2, rss
    finally:
        app.terminate()
        app.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=15)
    ap.add_argument("--procs", type=int, default=200)
    ap.add_argument("--conns", type=int, default=5000)
    ap.add_argument("--kizuki", default=os.path.join(ROOT, "target", "release", "kizuki"))
    a = ap.parse_args()
    for tool in ("Xvfb", "dbus-daemon"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed")

    tmp = tempfile.mkdtemp(prefix="kizuki-cpu-gui-")
    desktop = Desktop(tmp)
    try:
        cpu, wall, load, rss = measure(a.kizuki, desktop, tmp, a.seconds, a.warmup)
        print(f"hidden, idle:   {cpu:.2f} s CPU in {wall:.1f} s = {100 * cpu / wall:.2f} % of one core"
              f" (RSS {int(rss) // 1024} MB; machine load average {load:.1f} on {os.cpu_count()} cores)")
        gen = subprocess.Popen([sys.executable, loadgen(), "--procs", str(a.procs), "--conns",
                                str(a.conns), "--seconds", str(a.seconds + a.warmup + 120)],
                               stdout=subprocess.PIPE, text=True)
        try:
            line = gen.stdout.readline()
            if not line.startswith("ready"):
                sys.exit("load generator did not come up")
            cpu, wall, load, rss = measure(a.kizuki, desktop, tmp, a.seconds, a.warmup)
            print(f"hidden, loaded: {cpu:.2f} s CPU in {wall:.1f} s = {100 * cpu / wall:.2f} % of one core"
                  f" ({line.split()[3]} connections; RSS {int(rss) // 1024} MB;"
                  f" machine load average {load:.1f} on {os.cpu_count()} cores)")
        finally:
            gen.terminate()
            gen.wait()
    finally:
        desktop.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
