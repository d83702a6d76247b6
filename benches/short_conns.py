#!/usr/bin/env python3
"""How many one-second connections does kizuki see at its default interval?

    cargo build --release
    python3 benches/short_conns.py [--count 60] [--hold 1.0]

Starts a local TCP server, then makes --count connections to it at random
moments, each held for --hold seconds, while `kizuki watch` samples at its
normal interval. Afterwards it counts how many of those connections (by
their client port) appear in kizuki's output. An event-driven monitor would
see all of them; polling sees a connection only when a sample falls inside
it. Everything stays on 127.0.0.1.
"""
import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=60)
    ap.add_argument("--hold", type=float, default=1.0)
    ap.add_argument("--kizuki", default=os.path.join(ROOT, "target", "release", "kizuki"))
    a = ap.parse_args()

    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(256)
    port = srv.getsockname()[1]
    held = []

    def accept():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            held.append(c)

    threading.Thread(target=accept, daemon=True).start()

    # Random start times over the window, so their phase against the
    # sampler is random too.
    span = a.count * 0.7
    seconds = int(span + a.hold + 6)
    data = tempfile.mkdtemp(prefix="kizuki-short-")
    subprocess.run([a.kizuki, "--data-dir", data, "scan"], stdout=subprocess.DEVNULL, check=True)
    watch = subprocess.Popen([a.kizuki, "--data-dir", data, "watch", "--seconds", str(seconds), "--json"],
                             stdout=subprocess.PIPE)
    time.sleep(2.0)
    starts = sorted(random.uniform(0, span) for _ in range(a.count))
    t0 = time.monotonic()
    ports = []
    for s in starts:
        time.sleep(max(0.0, t0 + s - time.monotonic()))
        c = socket.create_connection(("127.0.0.1", port))
        ports.append(c.getsockname()[1])
        threading.Timer(a.hold, c.close).start()
    out, _ = watch.communicate()
    srv.close()
    seen = set()
    for p in json.loads(out)["programs"]:
        for c in p["connections"]:
            if c["remote"] == f"127.0.0.1:{port}":
                seen.add(int(c["local"].rsplit(":", 1)[1]))
    hit = sum(1 for p in ports if p in seen)
    print(f"{hit} of {len(ports)} connections held {a.hold:.1f} s were seen "
          f"({100.0 * hit / len(ports):.1f} %) at the default interval")
    sys.exit(0 if hit * 10 >= len(ports) * 9 else 1)


if __name__ == "__main__":
    main()
