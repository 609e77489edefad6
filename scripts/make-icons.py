#!/usr/bin/env python3
"""Draws Bottlebar's icons from geometry, so they are reproducible:
icons/app-icon.png (1024x1024, the source of every app icon size) and
icons/tray-template.png / tray-template@2x.png (black-on-transparent
template images for the macOS menu bar, which tints them for light and dark).
Standard library only."""
import struct
import zlib
from pathlib import Path


def png(path, size, pixel):
    rows = []
    for y in range(size):
        row = bytearray([0])
        for x in range(size):
            row.extend(pixel((x + 0.5) / size, (y + 0.5) / size))
        rows.append(bytes(row))
    raw = zlib.compress(b"".join(rows), 9)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")
    Path(path).write_bytes(data)


def rounded_rect(x, y, x0, y0, x1, y1, r):
    if not (x0 <= x <= x1 and y0 <= y <= y1):
        return False
    cx = min(max(x, x0 + r), x1 - r)
    cy = min(max(y, y0 + r), y1 - r)
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def bottle(x, y):
    """A bottle: body, shoulder, neck and cork; also its liquid line."""
    body = rounded_rect(x, y, 0.28, 0.38, 0.72, 0.88, 0.10)
    shoulder = rounded_rect(x, y, 0.34, 0.30, 0.66, 0.46, 0.08)
    neck = rounded_rect(x, y, 0.43, 0.16, 0.57, 0.34, 0.03)
    cork = rounded_rect(x, y, 0.41, 0.10, 0.59, 0.19, 0.03)
    return body or shoulder or neck, cork, body and y > 0.58


def app_pixel(x, y):
    # A rounded square background, the bottle in white, the liquid in teal.
    if not rounded_rect(x, y, 0.04, 0.04, 0.96, 0.96, 0.2):
        return (0, 0, 0, 0)
    glass, cork, liquid = bottle(x, y)
    if cork:
        return (214, 170, 110, 255)
    if liquid:
        return (32, 201, 151, 255)
    if glass:
        return (245, 248, 250, 255)
    t = y
    return (int(22 + 10 * t), int(34 + 20 * t), int(58 + 30 * t), 255)


def tray_pixel(x, y):
    glass, cork, liquid = bottle(x, y)
    inner = rounded_rect(x, y, 0.33, 0.43, 0.67, 0.83, 0.07) and not liquid
    if cork or liquid or (glass and not inner):
        return (0, 0, 0, 255)
    return (0, 0, 0, 0)


if __name__ == "__main__":
    out = Path(__file__).resolve().parent.parent / "icons"
    out.mkdir(exist_ok=True)
    png(out / "app-icon.png", 1024, app_pixel)
    png(out / "tray-template.png", 22, tray_pixel)
    png(out / "tray-template@2x.png", 44, tray_pixel)
    print(f"wrote {out}/app-icon.png, tray-template.png, tray-template@2x.png")
