#!/usr/bin/env python3
"""Times `kizuki scan --json` against `ss -tanup` under the same socket load,
and checks that every client connection of the load is attributed to the
child process that really holds it.

    cargo build --release
    python3 benches/scan_vs_ss.py [--procs 200] [--conns 5000] [--rounds 9]

Prints the medians and the ratio kizuki / ss. The load stays on 127.0.0.1
(see ../shared/bench/loadgen.py) and stops by itself.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def find_loadgen():
    for p in (os.path.join(ROOT, "..", "shared", "bench", "loadgen.py"),
              os.path.join(ROOT, "..", "..", "shared", "bench", "loadgen.py")):
        if os.path.exists(p):
            return os.path.abspath(p)
    sys.exit("loadgen.py not found beside the repository (../shared/bench)")


def timed(cmd):
    t = time.perf_counter()
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t, out.stdout


def children_of(ppid):
    kids = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[1]) == ppid:
            kids.add(int(d))
    return kids


def ss_owners(port):
    """local port -> pid for client sockets connected to `port`, per ss."""
    out = subprocess.run(["ss", "-tanp"], stdout=subprocess.PIPE, text=True, check=True).stdout
    owners = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 6 or parts[0] != "ESTAB" or not parts[4].endswith(f":{port}"):
            continue
        m = re.search(r"pid=(\d+)", line)
        if m:
            owners[int(parts[3].rsplit(":", 1)[1])] = int(m.group(1))
    return owners


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--procs", type=int, default=200)
    ap.add_argument("--conns", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--kizuki", default=os.path.join(ROOT, "target", "release", "kizuki"))
    a = ap.parse_args()

    load = subprocess.Popen([sys.executable, find_loadgen(), "--procs", str(a.procs),
                             "--conns", str(a.conns), "--seconds", "600"],
                            stdout=subprocess.PIPE, text=True)
    try:
        ready = load.stdout.readline().split()
        if not ready or ready[0] != "ready":
            sys.exit("load generator did not come up")
        server = int(ready[1])
        data = tempfile.mkdtemp(prefix="kizuki-bench-")
        kz = [a.kizuki, "--data-dir", data, "scan", "--json"]
        _, first = timed(kz)  # fills the hash cache, as a running app has
        scan = json.loads(first)

        # Correctness: every client connection belongs to the right child.
        kids = children_of(server)
        port = None
        for p in scan["programs"]:
            for c in p["connections"]:
                if c["pid"] == server and c["state"] == "LISTEN" and c["local"].startswith("127.0.0.1:"):
                    port = int(c["local"].rsplit(":", 1)[1])
        truth = ss_owners(port)
        ours = {}
        for p in scan["programs"]:
            for c in p["connections"]:
                if c["remote"] == f"127.0.0.1:{port}" and c["state"] == "ESTABLISHED":
                    ours[int(c["local"].rsplit(":", 1)[1])] = c["pid"]
        wrong = [lp for lp, pid in ours.items() if truth.get(lp) != pid or pid not in kids]
        print(f"client connections: kizuki {len(ours)}, ss {len(truth)}, expected {a.conns}; "
              f"misattributed {len(wrong)}")

        tk, ts = [], []
        for _ in range(a.rounds):
            tk.append(timed(kz)[0])
            ts.append(timed(["ss", "-tanup"])[0])
        mk, ms = statistics.median(tk), statistics.median(ts)
        print(f"kizuki scan --json: median {mk*1000:.1f} ms (min {min(tk)*1000:.1f}, max {max(tk)*1000:.1f})")
        print(f"ss -tanup:          median {ms*1000:.1f} ms (min {min(ts)*1000:.1f}, max {max(ts)*1000:.1f})")
        print(f"ratio kizuki/ss: {mk/ms:.2f}")
        ok = len(ours) == a.conns and not wrong
        sys.exit(0 if ok else 1)
    finally:
        load.terminate()
        load.wait()


if __name__ == "__main__":
    main()
