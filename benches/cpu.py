#!/usr/bin/env python3
"""kizuki's own CPU use while it samples at the default interval, on an idle
machine and under the 10,000-socket load.

    cargo build --release
    python3 benches/cpu.py [--seconds 60] [--procs 200] [--conns 5000]

Runs the same sampler the app runs (`kizuki watch`, which also feeds the
findings and the journal) for the given time, and reports the CPU seconds it
used (user + system, from the kernel's accounting of the child) as a
percentage of one core. The load stays on 127.0.0.1 and stops by itself.
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def loadgen():
    for up in ("..", os.path.join("..", "..")):
        p = os.path.abspath(os.path.join(ROOT, up, "shared", "bench", "loadgen.py"))
        if os.path.exists(p):
            return p
    sys.exit("loadgen.py not found beside the repository (../shared/bench)")


def measure(kizuki, seconds):
    data = tempfile.mkdtemp(prefix="kizuki-cpu-")
    # One scan first so executables are hashed, as in a running app.
    subprocess.run([kizuki, "--data-dir", data, "scan", "--json"],
                   stdout=subprocess.DEVNULL, check=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.monotonic()
    subprocess.run([kizuki, "--data-dir", data, "watch", "--seconds", str(seconds), "--json"],
                   stdout=subprocess.DEVNULL, check=True)
    wall = time.monotonic() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, after.ru_maxrss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--procs", type=int, default=200)
    ap.add_argument("--conns", type=int, default=5000)
    ap.add_argument("--kizuki", default=os.path.join(ROOT, "target", "release", "kizuki"))
    a = ap.parse_args()

    cpu, wall, rss = measure(a.kizuki, a.seconds)
    print(f"idle:   {cpu:.2f} s CPU in {wall:.1f} s = {100*cpu/wall:.2f} % of one core (max RSS {rss/1024:.0f} MB)")

    load = subprocess.Popen([sys.executable, loadgen(), "--procs", str(a.procs), "--conns",
                             str(a.conns), "--seconds", str(a.seconds + 120)],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = load.stdout.readline()
        if not line.startswith("ready"):
            sys.exit("load generator did not come up")
        cpu, wall, rss = measure(a.kizuki, a.seconds)
        print(f"loaded: {cpu:.2f} s CPU in {wall:.1f} s = {100*cpu/wall:.2f} % of one core "
              f"({line.split()[3]} connections; max RSS {rss/1024:.0f} MB)")
    finally:
        load.terminate()
        load.wait()


if __name__ == "__main__":
    main()
