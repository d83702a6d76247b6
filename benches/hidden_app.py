#!/usr/bin/env python3
"""Memory and CPU of the real app hidden in the tray, as an ordinary user.

    cargo build --release
    python3 benches/hidden_app.py [--seconds 30] [--warmup 10] [--procs 200] [--conns 5000]

Starts Xvfb, a private D-Bus session with the test stand-ins of tests/dbus/
(a StatusNotifierWatcher and a notification server), then
`kizuki --minimized` on a fresh data folder: the window lives hidden in the
tray exactly as after autostart. Run as root, everything but Xvfb runs as
an ordinary user (`--user`, default nobody) through setpriv: the window
refuses root, and a user's app cannot read other users' processes.

Measures, each over `--seconds` after `--warmup`:
  1. hidden since start, idle desktop: CPU (utime + stime from
     /proc/PID/stat, % of one core) and resident memory (VmRSS, and the
     largest VmRSS seen);
  2. still hidden, under the socket load (../shared/bench/loadgen.py, run
     as the same user so its sockets are the user's own);
  3. the window opened from the tray (開く), then closed to the tray
     again (WM_DELETE_WINDOW, as a window manager's close button sends):
     the same figures, hidden again.
Prints one line per figure and `ratio` lines against the targets. The load
stays on 127.0.0.1 and stops by itself.
"""
import argparse
import ctypes
import ctypes.util
import os
import pwd
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


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def wait_line(proc, want, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith(want):
            return line.strip()
    sys.exit(f"timed out waiting for {want!r}")


class User:
    """Runs commands as `name` when this script runs as root."""

    def __init__(self, name):
        self.drop = os.geteuid() == 0
        pw = pwd.getpwnam(name) if self.drop else pwd.getpwuid(os.geteuid())
        self.uid, self.gid = pw.pw_uid, pw.pw_gid

    def argv(self, cmd):
        if not self.drop:
            return cmd
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups",
                "--"] + cmd

    def own(self, path):
        if self.drop:
            os.chown(path, self.uid, self.gid)


class Desktop:
    def __init__(self, tmp, user):
        self.procs = []
        self.user = user
        xvfb = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", "1280x800x24",
                                 "-nolisten", "tcp", "-ac"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        self.procs.append(xvfb)
        self.display = ":" + xvfb.stdout.readline().strip()
        busdir = os.path.join(tmp, "bus")
        os.mkdir(busdir, 0o700)
        user.own(busdir)
        bus = subprocess.Popen(user.argv(["dbus-daemon", "--session", "--nofork",
                                          "--print-address",
                                          f"--address=unix:path={busdir}/socket"]),
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.procs.append(bus)
        self.bus = bus.stdout.readline().strip()
        self.env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=self.bus, DISPLAY=self.display)
        self.watcher = None
        for script in ("watcher.py", "notifyd.py"):
            p = subprocess.Popen(user.argv([PYTHON, os.path.join(ROOT, "tests", "dbus", script)]),
                                 stdout=subprocess.PIPE, env=self.env, text=True)
            self.procs.append(p)
            wait_line(p, "ready")
            if script == "watcher.py":
                self.watcher = p

    def sni(self, *args):
        return subprocess.run(self.user.argv([PYTHON, os.path.join(ROOT, "tests", "dbus",
                                                                   "sni.py"), *args]),
                              env=self.env, stdout=subprocess.PIPE, text=True,
                              check=True).stdout

    def window(self):
        out = subprocess.run(["xdotool", "search", "--onlyvisible", "--class", "kizuki"],
                             env=self.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True).stdout.split()
        return int(out[0]) if out else None

    def close_window(self, wid):
        """Sends WM_DELETE_WINDOW, as a window manager's close button does."""
        x11 = ctypes.CDLL(ctypes.util.find_library("X11"))
        x11.XOpenDisplay.restype = ctypes.c_void_p
        x11.XInternAtom.restype = ctypes.c_ulong
        x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int,
                                   ctypes.c_long, ctypes.c_void_p]
        x11.XFlush.argtypes = [ctypes.c_void_p]
        x11.XCloseDisplay.argtypes = [ctypes.c_void_p]

        class ClientMessage(ctypes.Structure):
            _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong),
                        ("send_event", ctypes.c_int), ("display", ctypes.c_void_p),
                        ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                        ("format", ctypes.c_int), ("l", ctypes.c_long * 5),
                        ("pad", ctypes.c_long * 24)]

        d = x11.XOpenDisplay(self.display.encode())
        if not d:
            sys.exit("cannot open the X display")
        ev = ClientMessage()
        ev.type = 33  # ClientMessage
        ev.window = wid
        ev.message_type = x11.XInternAtom(d, b"WM_PROTOCOLS", 0)
        ev.format = 32
        ev.l[0] = x11.XInternAtom(d, b"WM_DELETE_WINDOW", 0)
        ev.l[1] = 0  # CurrentTime
        x11.XSendEvent(d, wid, 0, 0, ctypes.byref(ev))
        x11.XFlush(d)
        x11.XCloseDisplay(d)

    def close(self):
        for p in reversed(self.procs):
            p.terminate()
            p.wait()


def window_for(desktop, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        w = desktop.window()
        if w:
            return w
        time.sleep(0.2)
    return None


def measure(pid, seconds):
    """CPU % of one core and (end, peak) VmRSS in KiB over `seconds`."""
    c0, t0 = cpu_seconds(pid), time.monotonic()
    peak = 0
    end = t0 + seconds
    while time.monotonic() < end:
        peak = max(peak, rss_kib(pid))
        time.sleep(0.5)
    c1, t1 = cpu_seconds(pid), time.monotonic()
    rss = rss_kib(pid)
    return 100 * (c1 - c0) / (t1 - t0), rss, max(peak, rss)


def report(label, fig, load):
    cpu, rss, peak = fig
    print(f"{label:<34} CPU {cpu:5.2f} % of one core   RSS {rss / 1024:6.1f} MB"
          f" (peak {peak / 1024:.1f} MB)   load average {load:.1f}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--procs", type=int, default=200)
    ap.add_argument("--conns", type=int, default=5000)
    ap.add_argument("--user", default="nobody")
    ap.add_argument("--kizuki", default=os.path.join(ROOT, "target", "release", "kizuki"))
    a = ap.parse_args()
    for tool in ("Xvfb", "dbus-daemon", "xdotool", "setpriv"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed")
    user = User(a.user)
    if os.environ.get("KIZUKI_BENCH_NETNS") == "1":
        # Inside a network namespace of our own (scripts/bench.sh): loopback up.
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    tmp = tempfile.mkdtemp(prefix="kizuki-hidden-")
    os.chmod(tmp, 0o755)
    desktop = Desktop(tmp, user)
    home = os.path.join(tmp, "home")
    os.mkdir(home, 0o700)
    user.own(home)
    data = os.path.join(home, "data")
    runtime = os.path.join(home, "run")
    env = dict(desktop.env, XDG_RUNTIME_DIR=runtime, LANG="ja_JP.UTF-8", HOME=home)
    env.pop("WAYLAND_DISPLAY", None)
    env.pop("KIZUKI_DATA_DIR", None)
    # Make the folders as the user (the data folder is the user's own).
    subprocess.run(user.argv(["mkdir", "-m", "700", "-p", data, runtime]), check=True)
    app = subprocess.Popen(user.argv([a.kizuki, "--minimized", "--data-dir", data]), env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gen = None
    figures = {}
    try:
        item = wait_line(desktop.watcher, "registered").split()[1]
        time.sleep(a.warmup)
        load = os.getloadavg()[0]
        figures["idle"] = measure(app.pid, a.seconds)
        report("hidden since start, idle", figures["idle"], load)

        gen = subprocess.Popen(user.argv([sys.executable, loadgen(), "--procs", str(a.procs),
                                          "--conns", str(a.conns), "--seconds",
                                          str(a.seconds + a.warmup + 120)]),
                               stdout=subprocess.PIPE, text=True)
        line = gen.stdout.readline()
        if not line.startswith("ready"):
            sys.exit("load generator did not come up")
        time.sleep(a.warmup)
        figures["load"] = measure(app.pid, a.seconds)
        report(f"hidden, {line.split()[3]} connections", figures["load"], os.getloadavg()[0])
        gen.terminate()
        gen.wait()
        gen = None
        desktop.sni("click", item, "開く")
        wid = window_for(desktop, 30)
        if wid is None:
            sys.exit("開く did not show the window")
        time.sleep(3)
        shown = measure(app.pid, 3)
        report("window shown", shown, os.getloadavg()[0])
        desktop.close_window(wid)
        end = time.monotonic() + 20
        while desktop.window() and time.monotonic() < end:
            time.sleep(0.2)
        if desktop.window():
            sys.exit("closing did not hide the window")
        time.sleep(a.warmup)
        figures["again"] = measure(app.pid, a.seconds)
        report("hidden again after showing", figures["again"], os.getloadavg()[0])
        if app.poll() is not None:
            sys.exit(f"kizuki ended early: {app.returncode}")
        worst_rss = max(figures["idle"][1], figures["load"][1]) / 1024
        print(f"ratio hidden RSS / 40 MB target:   {worst_rss / 40:.2f} (largest {worst_rss:.1f} MB,"
              " hidden since start)")
        print(f"ratio idle CPU / 0.3 % target:     {figures['idle'][0] / 0.3:.2f}")
    finally:
        if gen:
            gen.terminate()
            gen.wait()
        app.terminate()
        try:
            app.wait(timeout=20)
        except subprocess.TimeoutExpired:
            app.kill()
            app.wait()
        desktop.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
