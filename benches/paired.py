#!/usr/bin/env python3
"""Times two commands side by side as whole processes, in turn (A B A B …)
after one warm-up run each, and prints the median wall and CPU time (user +
system, the kernel's accounting of each finished child) and the ratio A / B: the median of the per-pair ratios, so a
comparison holds while a shared machine's speed drifts.

    python3 benches/paired.py --rounds 11 --a 'kizuki scan --json' --b 'ss -tanup'

Output of the commands is read and thrown away. Exit status 1 when a run
of either command failed.
"""
import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time


def run(cmd):
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    while p.stdout.read(1 << 16):
        pass
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, p.returncode


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--a", required=True, help="command A, split as a shell splits words")
    ap.add_argument("--b", required=True, help="command B")
    ap.add_argument("--label-a", default=None)
    ap.add_argument("--label-b", default=None)
    a = ap.parse_args()
    ca, cb = shlex.split(a.a), shlex.split(a.b)
    la, lb = a.label_a or a.a, a.label_b or a.b
    run(ca)
    run(cb)
    ra, rb, failed = [], [], 0
    for _ in range(a.rounds):
        x, y = run(ca), run(cb)
        failed += (x[3] != 0) + (y[3] != 0)
        ra.append(x)
        rb.append(y)
    med = lambda rs, i: statistics.median(r[i] for r in rs)
    for label, rs in ((la, ra), (lb, rb)):
        print(f"  {label}: wall {med(rs, 0) * 1000:.0f} ms (min {min(r[0] for r in rs) * 1000:.0f},"
              f" max {max(r[0] for r in rs) * 1000:.0f}), CPU {med(rs, 1) * 1000:.0f} ms")
    wall = statistics.median(x[0] / y[0] for x, y in zip(ra, rb))
    cpu = statistics.median(x[1] / max(y[1], 1e-6) for x, y in zip(ra, rb))
    print(f"  ratio A/B ({a.rounds} pairs, median): wall {wall:.2f}, CPU {cpu:.2f}")
    if failed:
        print(f"  {failed} runs failed", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
