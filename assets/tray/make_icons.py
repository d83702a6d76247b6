#!/usr/bin/env python3
"""Draws kizuki's three tray icons as SVG sources and 22/32/64 px PNGs.

Plain Python (no imaging library): each shape is a signed distance
function sampled 4x4 per pixel for smooth edges. Run it after changing
a shape; the PNGs are committed so building needs no tools.

  green: a circle with a check mark      (nothing needs attention)
  amber: a triangle with an exclamation  (something new to look at)
  red:   an octagon with an exclamation  (act now)

The shapes differ as well as the colours, so the state reads without colour.
"""
import math
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = (22, 32, 64)

# Colours chosen to read on light and dark panels (dark outline).
GREEN = (0x2E, 0x9E, 0x4F)
AMBER = (0xF2, 0xA9, 0x00)
RED = (0xD6, 0x2D, 0x20)
OUTLINE = (0x1F, 0x1F, 0x1F)
WHITE = (0xFF, 0xFF, 0xFF)
DARK = (0x20, 0x20, 0x20)


def seg(px, py, ax, ay, bx, by):
    """Distance from p to the segment a-b."""
    vx, vy = bx - ax, by - ay
    wx, wy = px - ax, py - ay
    t = max(0.0, min(1.0, (wx * vx + wy * vy) / (vx * vx + vy * vy)))
    dx, dy = wx - t * vx, wy - t * vy
    return math.hypot(dx, dy)


def polygon(px, py, pts):
    """Signed distance to a convex polygon (negative inside)."""
    d = min(seg(px, py, *pts[i], *pts[(i + 1) % len(pts)]) for i in range(len(pts)))
    inside = True
    for i in range(len(pts)):
        ax, ay = pts[i]
        bx, by = pts[(i + 1) % len(pts)]
        if (bx - ax) * (py - ay) - (by - ay) * (px - ax) < 0:
            inside = False
    return -d if inside else d


def circle(px, py):
    return math.hypot(px - 0.5, py - 0.5) - 0.46


TRIANGLE = [(0.5, 0.06), (0.96, 0.90), (0.04, 0.90)]
OCTAGON = [
    (0.5 + 0.47 * math.cos(math.pi / 8 + i * math.pi / 4),
     0.5 + 0.47 * math.sin(math.pi / 8 + i * math.pi / 4))
    for i in range(8)
]


def shape(name, px, py):
    if name == "green":
        return circle(px, py)
    if name == "amber":
        return polygon(px, py, TRIANGLE)
    return polygon(px, py, OCTAGON)


def glyph(name, px, py):
    """Distance to the white/dark mark drawn on the shape."""
    if name == "green":
        return min(seg(px, py, 0.27, 0.52, 0.43, 0.68), seg(px, py, 0.43, 0.68, 0.73, 0.35)) - 0.065
    top, bottom, dot = (0.36, 0.62, 0.77) if name == "amber" else (0.24, 0.56, 0.74)
    bar = seg(px, py, 0.5, top, 0.5, bottom) - 0.06
    return min(bar, math.hypot(px - 0.5, py - dot) - 0.07)


def fill_colour(name):
    return {"green": GREEN, "amber": AMBER, "red": RED}[name]


def mark_colour(name):
    return DARK if name == "amber" else WHITE


def pixel(name, x, y, size):
    """RGBA of one pixel, supersampled 4x4."""
    n = 4
    acc = [0.0, 0.0, 0.0, 0.0]
    line = 1.2 / size  # an outline about one pixel wide at every size
    for sy in range(n):
        for sx in range(n):
            px = (x + (sx + 0.5) / n) / size
            py = (y + (sy + 0.5) / n) / size
            d = shape(name, px, py)
            if d > 0:
                continue
            if d > -line:
                c = OUTLINE
            elif glyph(name, px, py) < 0:
                c = mark_colour(name)
            else:
                c = fill_colour(name)
            for i in range(3):
                acc[i] += c[i]
            acc[3] += 1
    if acc[3] == 0:
        return (0, 0, 0, 0)
    a = acc[3]
    return (round(acc[0] / a), round(acc[1] / a), round(acc[2] / a), round(255 * a / (n * n)))


def write_png(path, size, rows):
    raw = b"".join(b"\x00" + bytes(v for px in row for v in px) for row in rows)

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n"
    png += chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9))
    png += chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def hexc(c):
    return "#%02x%02x%02x" % c


def svg(name):
    s = 64
    if name == "green":
        body = f'<circle cx="32" cy="32" r="29.4" fill="{hexc(GREEN)}" stroke="{hexc(OUTLINE)}" stroke-width="1.5"/>'
        mark = (f'<polyline points="17.3,33.3 27.5,43.5 46.7,22.4" fill="none" stroke="#ffffff" '
                f'stroke-width="8.3" stroke-linecap="round" stroke-linejoin="round"/>')
    else:
        pts = TRIANGLE if name == "amber" else OCTAGON
        poly = " ".join(f"{x * s:.1f},{y * s:.1f}" for x, y in pts)
        body = (f'<polygon points="{poly}" fill="{hexc(fill_colour(name))}" '
                f'stroke="{hexc(OUTLINE)}" stroke-width="1.5" stroke-linejoin="round"/>')
        top, bottom, dot = (0.36, 0.62, 0.77) if name == "amber" else (0.24, 0.56, 0.74)
        c = hexc(mark_colour(name))
        mark = (f'<line x1="32" y1="{top * s:.1f}" x2="32" y2="{bottom * s:.1f}" stroke="{c}" '
                f'stroke-width="7.7" stroke-linecap="round"/>'
                f'<circle cx="32" cy="{dot * s:.1f}" r="4.5" fill="{c}"/>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">'
            f"{body}{mark}</svg>\n")


def main():
    for name in ("green", "amber", "red"):
        with open(os.path.join(HERE, f"kizuki-{name}.svg"), "w") as f:
            f.write(svg(name))
        for size in SIZES:
            rows = [[pixel(name, x, y, size) for x in range(size)] for y in range(size)]
            write_png(os.path.join(HERE, f"kizuki-{name}-{size}.png"), size, rows)


if __name__ == "__main__":
    main()
