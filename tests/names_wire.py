#!/usr/bin/env python3
"""Loopback helpers for tests/names_wire.rs. Nothing leaves this PC.

  dns-server ADDR NAME ANSWER   answers A queries for NAME with ANSWER on ADDR:53 (UDP)
  listen ADDR PORT              accepts and holds TCP connections
  dns-client SERVER NAME PORT   asks SERVER:53 for NAME, connects to the answer:PORT, holds
  tls-client ADDR PORT NAME     connects and sends a TLS ClientHello with NAME, holds
Each prints "ready" (clients: "ready <local port>") once set up.
"""
import socket
import ssl
import struct
import sys
import time


def dns_server(addr, name, answer):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 53))
    print("ready", flush=True)
    want = name.lower().encode()
    while True:
        q, peer = s.recvfrom(512)
        if len(q) < 12:
            continue
        # question name
        pos, labels = 12, []
        while pos < len(q) and q[pos] != 0:
            n = q[pos]
            labels.append(q[pos + 1:pos + 1 + n])
            pos += 1 + n
        qend = pos + 5
        asked = b".".join(labels).lower()
        header = q[:2] + b"\x81\x80" + b"\x00\x01"
        if asked != want:
            s.sendto(q[:2] + b"\x81\x83\x00\x01\x00\x00\x00\x00\x00\x00" + q[12:qend], peer)
            continue
        ans = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + socket.inet_aton(answer)
        s.sendto(header + b"\x00\x01\x00\x00\x00\x00" + q[12:qend] + ans, peer)


def listen(addr, port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, int(port)))
    s.listen(16)
    print("ready", flush=True)
    held = []
    while True:
        c, _ = s.accept()
        held.append(c)


def query(name):
    q = struct.pack(">HHHHHH", 0x4b5a, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00\x00\x01\x00\x01"


def dns_client(server, name, port):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(5)
    u.sendto(query(name), (server, 53))
    r, _ = u.recvfrom(512)
    u.close()
    addr = socket.inet_ntoa(r[-4:])
    c = socket.create_connection((addr, int(port)))
    print("ready", c.getsockname()[1], flush=True)
    time.sleep(60)


def tls_client(addr, port, name):
    raw = socket.create_connection((addr, int(port)))
    print("ready", raw.getsockname()[1], flush=True)
    ctx = ssl.create_default_context()
    raw.settimeout(60)
    try:
        # The listener never answers: the hello is sent, the handshake waits.
        ctx.wrap_socket(raw, server_hostname=name)
    except (OSError, ssl.SSLError):
        pass
    time.sleep(60)


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    {"dns-server": dns_server, "listen": listen, "dns-client": dns_client,
     "tls-client": tls_client}[mode](*args)
