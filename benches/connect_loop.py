#!/usr/bin/env python3
"""A loopback connect/close loop: a listener and N connections opened,
accepted and closed one after another on 127.0.0.1 (the cost that event
capture adds to every connection). Stops by itself.

    python3 benches/connect_loop.py [N]
"""
import socket
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.bind(("127.0.0.1", 0))
srv.listen(128)
addr = srv.getsockname()
for _ in range(n):
    c = socket.create_connection(addr)
    s, _ = srv.accept()
    c.close()
    s.close()
srv.close()
