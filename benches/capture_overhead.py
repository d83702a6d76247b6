#!/usr/bin/env python3
"""How much event capture slows a loopback connect/close loop: blocks of
runs of benches/connect_loop.py without capture, then with `kizuki watch`
running (as root it loads the eBPF capture), in turn, several rounds.
Prints the median wall and CPU time of the loop each way and its speed with
capture as a share of its speed without (target: at least 95 %).

    sudo python3 benches/capture_overhead.py [--rounds 3] [--runs 5] [--conns 3000]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def loop(n):
    t = time.perf_counter()
    p = subprocess.Popen([sys.executable, os.path.join(HERE, "connect_loop.py"), str(n)])
    _, status, ru = os.wait4(p.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit("the connect loop failed")
    return time.perf_counter() - t, ru.ru_utime + ru.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--conns", type=int, default=3000)
    ap.add_argument("--kizuki", default=os.path.join(ROOT, "target", "release", "kizuki"))
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("event capture needs root: run as root")
    data = tempfile.mkdtemp(prefix="kizuki-capture-")
    without, with_ = [], []
    try:
        loop(a.conns)  # warm-up
        for _ in range(a.rounds):
            without += [loop(a.conns) for _ in range(a.runs)]
            watch = subprocess.Popen([a.kizuki, "--data-dir", data, "watch", "--seconds", "3600",
                                      "--json"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
            time.sleep(3)  # capture loads, the first ticks hash the machine's programs
            if watch.poll() is not None:
                sys.exit(f"kizuki watch ended: {watch.stderr.read()}")
            with_ += [loop(a.conns) for _ in range(a.runs)]
            watch.terminate()
            _, err = watch.communicate()
            if "capture" in err.lower() and "unavailable" in err.lower():
                sys.exit(f"capture did not load: {err}")
    finally:
        shutil.rmtree(data, ignore_errors=True)
    med = lambda xs, i: statistics.median(x[i] for x in xs)
    for label, xs in (("without capture", without), ("with capture", with_)):
        print(f"  {a.conns} connect/close {label}: wall {med(xs, 0) * 1000:.0f} ms,"
              f" CPU {med(xs, 1) * 1000:.0f} ms (median of {len(xs)})")
    print(f"  speed with capture / without: wall {med(without, 0) / med(with_, 0):.1%},"
          f" CPU {med(without, 1) / med(with_, 1):.1%} (target 95 %)")


if __name__ == "__main__":
    main()
