#!/usr/bin/env python3
"""Draws Skiff's app icon (a small sailing boat on a blue disc) as RGBA PNGs in icons/.

Pure standard library (zlib + struct), 4x4 supersampling; no downloaded art.
Run: /usr/bin/python3 scripts/gen-icons.py
"""
import os
import struct
import zlib

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "icons")
SIZES = {"32x32.png": 32, "128x128.png": 128, "128x128@2x.png": 256, "icon.png": 512}

BG = (33, 105, 196)      # disc
SAIL = (250, 250, 252)   # main sail
JIB = (214, 230, 250)    # fore sail
HULL = (120, 70, 40)     # wooden hull
MAST = (70, 45, 30)
WAVE = (160, 205, 245)


def inside_tri(x, y, a, b, c):
    def s(p, q, r):
        return (p[0] - r[0]) * (q[1] - r[1]) - (q[0] - r[0]) * (p[1] - r[1])
    d1, d2, d3 = s((x, y), a, b), s((x, y), b, c), s((x, y), c, a)
    neg = d1 < 0 or d2 < 0 or d3 < 0
    pos = d1 > 0 or d2 > 0 or d3 > 0
    return not (neg and pos)


def colour(u, v):
    """Colour at unit coordinates (0..1), or None for transparent."""
    dx, dy = u - 0.5, v - 0.5
    if dx * dx + dy * dy > 0.47 * 0.47:
        return None
    # hull: trapezoid between y 0.62 and 0.72
    if 0.62 <= v <= 0.72:
        t = (v - 0.62) / 0.10
        left, right = 0.18 + 0.10 * t, 0.82 - 0.06 * t
        if left <= u <= right:
            return HULL
    # mast
    if 0.49 <= u <= 0.515 and 0.18 <= v <= 0.62:
        return MAST
    # main sail (right of mast) and jib (left)
    if inside_tri(u, v, (0.53, 0.20), (0.53, 0.58), (0.78, 0.58)):
        return SAIL
    if inside_tri(u, v, (0.47, 0.26), (0.47, 0.58), (0.27, 0.58)):
        return JIB
    # two waves under the hull
    for base in (0.78, 0.85):
        import math
        w = base + 0.012 * math.sin(u * 6.283 * 3)
        if abs(v - w) < 0.012 and 0.2 < u < 0.8:
            return WAVE
    return BG


def render(n):
    ss = 4
    rows = []
    for y in range(n):
        row = bytearray([0])
        for x in range(n):
            r = g = b = a = 0
            for sy in range(ss):
                for sx in range(ss):
                    c = colour((x + (sx + 0.5) / ss) / n, (y + (sy + 0.5) / ss) / n)
                    if c is not None:
                        r += c[0]; g += c[1]; b += c[2]; a += 255
            k = ss * ss
            if a:
                cov = a // 255
                row += bytes((r // cov, g // cov, b // cov, a // k))
            else:
                row += bytes(4)
        rows.append(bytes(row))
    return b"".join(rows)


def png(n, raw):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", n, n, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for name, n in SIZES.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(png(n, render(n)))
        print("wrote", name, n)
