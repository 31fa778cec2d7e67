#!/usr/bin/env python3
"""Writes a small seed corpus for the `decode` fuzz target into corpus/decode.

The first byte of every input selects the fuzz case (see fuzz_targets/decode.rs):
bit 0 byte order, bits 1-3 stream version, bits 4-6 the types, bit 7 single precision.
"""
import os
import struct
import zlib

os.makedirs("corpus/decode", exist_ok=True)
os.chdir("corpus/decode")


def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)


def png(w, h, ct, depth, rows, extra=b""):
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ct, 0, 0, 0)
    raw = b"".join(b"\0" + r for r in rows)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


imgs = [
    png(2, 1, 2, 8, [b"\xff\0\0\0\xff\0"]),
    png(2, 1, 6, 8, [b"\xff\0\0\x80\0\xff\0\xff"]),
    png(2, 2, 0, 8, [b"\x10\x20", b"\x30\x40"]),
    png(2, 1, 3, 8, [b"\0\1"], chunk(b"PLTE", b"\xff\0\0\0\xff\0") + chunk(b"tRNS", b"\x80")),
    png(3, 1, 0, 1, [b"\xa0"]),
    png(1, 1, 0, 16, [b"\x12\x34"]),
]
n = 0
for sel in range(256):
    if (sel >> 4) & 7 == 4:
        for im in imgs:
            open("img%d" % n, "wb").write(bytes([sel]) + b"\0\0\0\1" + im)
            n += 1
seeds = [
    b"\0\0\0\x06\0a\0b\0c",
    b"\0\0\0\x02\0\0\0\0\x07",
    b"\0\0\0\x0b\0\0\0\0\x01\0\0\0\x02\0a",
    b"\0\0\0\x02\0\0\0\x02\0a\0\0\0\x02\0\0\0\0\x01\0\0\0\0\0\0\0\x01\x01",
    b"\xff\xff\xff\xfe\0\0\0\0\0\0\0\x02ab",
]
for i, s in enumerate(seeds):
    for kind in range(8):
        open("seed%d_%d" % (i, kind), "wb").write(bytes([kind << 4]) + s)
