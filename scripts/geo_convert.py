#!/usr/bin/env python3
"""Converts the offline country and network-owner data into kizuki's own
compact format (assets/geo/kizuki-geo.bin). Run by scripts/refresh-geo.sh;
see docs/geo-data.md for the sources and their licences.

Inputs:
  --country-mmdb  iptoasn-country.mmdb (IPtoASN, PDDL 1.0) read with the
                  `maxminddb` Python package
  --asn-v4/--asn-v6  asn-ipv4.csv / asn-ipv6.csv (RouteViews, NRO, DB-IP
                  Lite; CC BY 4.0): start,end,asn,organisation
  --date          the data's date (YYYY-MM-DD)

Format (all of it zlib-compressed), little endian, LEB128 varints:
  b"KZGEO1\\n"  date (varint length + UTF-8)
  countries: varint n, n x 2 ASCII bytes
  organisations: varint n, n x (varint length + UTF-8)
  as table: varint n, n x (varint asn delta, varint organisation index+1 or 0)
  four range tables (country v4, country v6, asn v4, asn v6):
    varint n, n x (varint start delta, varint value); value 0 = unknown;
    a segment runs from its start up to the next segment's start.
"""
import argparse
import csv
import ipaddress
import sys
import zlib


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def text(s):
    raw = s.encode("utf-8")
    return varint(len(raw)) + raw


def segments(ranges, top):
    """ranges: sorted (start, end, value>0); returns [(start, value)] covering
    0..top with 0 for gaps, adjacent equal values merged."""
    segs = []
    pos = 0
    for s, e, v in ranges:
        if s < pos:
            # overlapping input: keep the earlier one
            if e < pos:
                continue
            s = pos
        if s > pos:
            segs.append((pos, 0))
        segs.append((s, v))
        pos = e + 1
    if pos <= top:
        segs.append((pos, 0))
    merged = []
    for s, v in segs:
        if merged and merged[-1][1] == v:
            continue
        merged.append((s, v))
    return merged


def table(segs):
    out = bytearray(varint(len(segs)))
    prev = 0
    for s, v in segs:
        out += varint(s - prev)
        out += varint(v)
        prev = s
    return bytes(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--country-mmdb", required=True)
    ap.add_argument("--asn-v4", required=True)
    ap.add_argument("--asn-v6", required=True)
    ap.add_argument("--date", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    import maxminddb

    countries = []
    cidx = {}
    c4, c6 = [], []
    with maxminddb.open_database(a.country_mmdb) as r:
        for net, rec in r:
            code = (rec or {}).get("country_code") if isinstance(rec, dict) else None
            if not code or len(code) != 2 or not code.isascii():
                continue
            code = code.upper()
            if code not in cidx:
                cidx[code] = len(countries) + 1
                countries.append(code)
            row = (int(net.network_address), int(net.broadcast_address), cidx[code])
            (c4 if net.version == 4 else c6).append(row)
    c4.sort()
    c6.sort()

    orgs = []
    oidx = {}
    as_org = {}
    a4, a6 = [], []
    for path, dest in ((a.asn_v4, a4), (a.asn_v6, a6)):
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.reader(f):
                if len(row) < 3:
                    continue
                try:
                    s = int(ipaddress.ip_address(row[0]))
                    e = int(ipaddress.ip_address(row[1]))
                    asn = int(row[2])
                except ValueError:
                    continue
                if asn <= 0 or asn > 0xFFFFFFFF or e < s:
                    continue
                org = row[3].strip() if len(row) > 3 else ""
                if org and asn not in as_org:
                    if org not in oidx:
                        oidx[org] = len(orgs) + 1
                        orgs.append(org)
                    as_org[asn] = oidx[org]
                as_org.setdefault(asn, 0)
                dest.append((s, e, asn))
    a4.sort()
    a6.sort()

    body = bytearray(b"KZGEO1\n")
    body += text(a.date)
    body += varint(len(countries))
    for c in countries:
        body += c.encode("ascii")
    body += varint(len(orgs))
    for o in orgs:
        body += text(o)
    asns = sorted(as_org)
    body += varint(len(asns))
    prev = 0
    for n in asns:
        body += varint(n - prev)
        body += varint(as_org[n])
        prev = n
    top4, top6 = (1 << 32) - 1, (1 << 128) - 1
    for ranges, top in ((c4, top4), (c6, top6), (a4, top4), (a6, top6)):
        body += table(segments(ranges, top))
    packed = zlib.compress(bytes(body), 9)
    with open(a.out, "wb") as f:
        f.write(packed)
    print(
        f"countries {len(countries)} orgs {len(orgs)} asns {len(asns)} "
        f"ranges c4 {len(c4)} c6 {len(c6)} a4 {len(a4)} a6 {len(a6)} "
        f"raw {len(body)} packed {len(packed)}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
