#!/usr/bin/env python3
"""QDataStream peer for the interop tests of qipc-datastream (tests/qt_interop.rs).

Runs real Qt through PyQt5 (Qt 5.15) or PySide6 (Qt 6.x), offscreen.

Commands (the stream version and byte order come from --version/--byteorder):
  encode CASE...          print "CASE HEX" for each case (images: "CASE HEX FORMAT W H PIXELS",
                          the pixels being what Qt reports after reading its own stream back)
  decode CASE HEX         decode HEX as CASE's type and check it equals the case's value;
                          prints OK or FAIL with a diff, exits 1 on failure
  readimage HEX           read a QImage; print "FORMAT W H PIXELS" (PIXELS: comma-separated AARRGGBB)
  batch FILE              run many lines "encode V BO CASE" / "decode V BO CASE HEX" /
                          "readimage V BO CASE HEX"; prints "<line head> <result>" per line,
                          exits 1 if any decode failed
  list                    print the case names
"""

import argparse
import math
import sys

QT = None


def load(qt):
    global QT
    if qt == "5":
        from PyQt5 import QtCore, QtGui

        QT = (5, QtCore, QtGui)
    else:
        from PySide6 import QtCore, QtGui

        QT = (6, QtCore, QtGui)


def core():
    return QT[1]


def gui():
    return QT[2]


def enum(cls, name):
    # PyQt5 has flat enums (QDataStream.LittleEndian); PySide6 scoped ones too.
    if hasattr(cls, name):
        return getattr(cls, name)
    for scope in ("ByteOrder", "FloatingPointPrecision", "Format", "OpenModeFlag", "Status"):
        sc = getattr(cls, scope, None)
        if sc is not None and hasattr(sc, name):
            return getattr(sc, name)
    raise AttributeError(name)


# --- cases -------------------------------------------------------------------
# kind, value. The Rust test defines the same values under the same names.

UNICODE = "h\u00e9llo w\u00f6rld \u65e5\u672c \U0001F600"

CASES = {
    "i8": ("i8", -5),
    "u8": ("u8", 250),
    "i16": ("i16", -12345),
    "u16": ("u16", 54321),
    "i32": ("i32", -2),
    "i32_min": ("i32", -(2**31)),
    "u32": ("u32", 0x01020304),
    "u32_max": ("u32", 2**32 - 1),
    "i64": ("i64", -1234567890123456789),
    "u64": ("u64", 2**64 - 1),
    "bool_true": ("bool", True),
    "bool_false": ("bool", False),
    "f32": ("f32", 1.5),
    "f32_tenth": ("f32", 0.1),
    "f64": ("f64", math.pi),
    "f64_neg": ("f64", -1e300),
    "f32_single": ("f32s", 0.1),
    "f64_single": ("f64s", 2.5),
    "qstring_hello": ("qstring", "Hello from writer!"),
    "qstring_null": ("qstring", None),
    "qstring_empty": ("qstring", ""),
    "qstring_unicode": ("qstring", UNICODE),
    "qbytearray_abc": ("qbytearray", b"abc"),
    "qbytearray_ab": ("qbytearray", b"ab"),
    "qbytearray_null": ("qbytearray", None),
    "qbytearray_empty": ("qbytearray", b""),
    "qbytearray_all": ("qbytearray", bytes(range(256))),
    "qstringlist": ("qstringlist", ["a", "", "\u65e5\u672c"]),
    "qstringlist_empty": ("qstringlist", []),
    "qvariant_invalid": ("qvariant", None),
    "qvariant_bool": ("qvariant", True),
    "qvariant_int": ("qvariant", -7),
    "qvariant_longlong": ("qvariant", 1 << 40),
    "qvariant_double": ("qvariant", 2.5),
    "qvariant_string": ("qvariant", "str"),
    "qvariant_string_empty": ("qvariant", ""),
    "qvariant_bytearray": ("qvariant", b"\x00\xff"),
    # Decode-only: Python cannot make these QVariant types directly.
    "qvariant_uint": ("qvariant_ro", 4000000000),
    "qvariant_ulonglong": ("qvariant_ro", 2**63 + 5),
    "qvariant_stringlist": ("qvariant_ro", ["x", "y"]),
    # QMap<QString, QVariant> and QList<QVariant>, inside a QVariant.
    "qvariantmap": ("qvariant", {"b": "x", "a": 1, "c": {"n": [1, "y"], "m": 2.5}}),
    "qvariantmap_empty": ("qvariant", {}),
    "qvariantlist": ("qvariant", [1, "x", True, 2.5, b"z", ["in", 3]]),
    "qvariantlist_empty": ("qvariant", []),
}

# The image cases: width, height, source format, pixels (AARRGGBB, row by row).
# tests/qt_interop.rs defines the same images.


def big_pixels(w, h):
    return [
        (((x * 7 + y * 3) & 255) << 24) | (((x * 6) & 255) << 16) | (((y * 8) & 255) << 8) | (((x ^ y) * 4) & 255)
        for y in range(h)
        for x in range(w)
    ]


IMAGE_SPECS = {
    "image_rgb32": (3, 2, "Format_RGB32", [0xFFFF0000, 0xFF00FF00, 0xFF0000FF, 0xFF123456, 0xFFFFFFFF, 0xFF000000]),
    "image_argb32": (3, 2, "Format_ARGB32", [0xFFFF0000, 0x8000FF00, 0x000000FF, 0x00000000, 0x40FFFFFF, 0xC0123456]),
    "image_gray8": (3, 2, "Format_Grayscale8", [0xFF000000, 0xFF101010, 0xFF808080, 0xFFFEFEFE, 0xFFFFFFFF, 0xFF7F7F7F]),
    "image_indexed8": (
        3,
        2,
        "Format_Indexed8",
        [0xFFFF0000, 0x8000FF00, 0xFF0000FF, 0xFFFF0000, 0x00000000, 0x8000FF00],
    ),
    # An identity grey colour table: Qt writes a grey PNG for it.
    "image_indexed8_gray": (4, 1, "Format_Indexed8_gray", [0xFF000000, 0xFF404040, 0xFFC0C0C0, 0xFFFFFFFF]),
    "image_mono": (9, 2, "Format_Mono", [0xFFFF0000 if (i % 3) else 0xFF0000FF for i in range(18)]),
    "image_argb32_big": (40, 30, "Format_ARGB32", big_pixels(40, 30)),
    "image_rgb32_big": (33, 17, "Format_RGB32", [p | 0xFF000000 for p in big_pixels(33, 17)]),
}

IMAGES = ["image_null"] + list(IMAGE_SPECS)


def make_image(case):
    # Built from raw bytes: PySide6 6.12's QImage.setPixel corrupts the
    # refcount of None when called many times (Fatal Python error: none_dealloc).
    import struct

    G = gui()
    if case == "image_null":
        return G.QImage()
    w, h, fmt, px = IMAGE_SPECS[case]
    table = None
    if fmt == "Format_Indexed8_gray":
        fmt = "Format_Indexed8"
        table = [0xFF000000 | (i * 0x010101) for i in range(256)]
        data, bpl = bytes(p & 0xFF for p in px), w
    elif fmt in ("Format_Indexed8", "Format_Mono"):
        table = []
        for p in px:
            if p not in table:
                table.append(p)
        idx = [table.index(p) for p in px]
        if fmt == "Format_Indexed8":
            data, bpl = bytes(idx), w
        else:
            bpl = (w + 7) // 8
            rows = bytearray(bpl * h)
            for i, ix in enumerate(idx):
                x, y = i % w, i // w
                rows[y * bpl + x // 8] |= ix << (7 - x % 8)
            data = bytes(rows)
    elif fmt == "Format_Grayscale8":
        data, bpl = bytes(p & 0xFF for p in px), w
    else:
        # ARGB32 / RGB32: native-endian quint32 0xAARRGGBB.
        data, bpl = struct.pack("=%dI" % len(px), *px), 4 * w
    img = G.QImage(data, w, h, bpl, enum(G.QImage, fmt)).copy()
    if table is not None:
        img.setColorTable(table)
    return img


def describe_image(img):
    if img.isNull():
        return "Format_Invalid 0 0 -"
    fmt = img.format()
    name = None
    G = gui()
    for n in dir(G.QImage) + dir(getattr(G.QImage, "Format", object)):
        if n.startswith("Format_"):
            try:
                if enum(G.QImage, n) == fmt:
                    name = n
                    break
            except AttributeError:
                pass
    pixels = ",".join(
        "%08X" % (img.pixel(x, y) & 0xFFFFFFFF) for y in range(img.height()) for x in range(img.width())
    )
    return "%s %d %d %s" % (name, img.width(), img.height(), pixels)


# --- streams -----------------------------------------------------------------


def new_stream(version, byteorder, data=None):
    C = core()
    # The QBuffer owns its byte array (a temporary QByteArray would dangle).
    buf = C.QBuffer()
    if data is None:
        buf.open(enum(C.QIODevice, "WriteOnly"))
    else:
        buf.setData(C.QByteArray(data))
        buf.open(enum(C.QIODevice, "ReadOnly"))
    s = C.QDataStream(buf)
    s.setVersion(version)
    s.setByteOrder(enum(C.QDataStream, "LittleEndian" if byteorder == "le" else "BigEndian"))
    return s, buf


def status_ok(s):
    return s.status() == enum(core().QDataStream, "Ok")


def to_variant_value(v):
    """Python value for writeQVariant."""
    C = core()
    if isinstance(v, bytes):
        return C.QByteArray(v)
    if isinstance(v, dict):
        return {k: to_variant_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [to_variant_value(x) for x in v]
    return v


def from_qt(v):
    """Normalises what Qt read back into plain Python values."""
    C = core()
    if isinstance(v, C.QByteArray):
        return bytes(v)
    if isinstance(v, dict):
        return {k: from_qt(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [from_qt(x) for x in v]
    return v


def write_case(s, case):
    C = core()
    if case in IMAGES:
        s << make_image(case)
        return
    kind, v = CASES[case]
    if kind in ("f32s", "f64s"):
        s.setFloatingPointPrecision(enum(C.QDataStream, "SinglePrecision"))
    if kind == "i8":
        s.writeInt8(v)
    elif kind == "u8":
        s.writeUInt8(v)
    elif kind == "i16":
        s.writeInt16(v)
    elif kind == "u16":
        s.writeUInt16(v)
    elif kind == "i32":
        s.writeInt32(v)
    elif kind == "u32":
        s.writeUInt32(v)
    elif kind == "i64":
        s.writeInt64(v)
    elif kind == "u64":
        s.writeUInt64(v)
    elif kind == "bool":
        s.writeBool(v)
    elif kind in ("f32", "f32s"):
        s.writeFloat(v)
    elif kind in ("f64", "f64s"):
        s.writeDouble(v)
    elif kind == "qstring":
        s.writeQString(v)
    elif kind == "qbytearray":
        s << (C.QByteArray() if v is None else C.QByteArray(v))
    elif kind == "qstringlist":
        s.writeQStringList(v)
    elif kind == "qvariant":
        s.writeQVariant(to_variant_value(v))
    else:
        raise SystemExit("case %s cannot be encoded by Qt from Python" % case)


def read_case(s, case):
    C = core()
    kind, _ = CASES[case]
    if kind in ("f32s", "f64s"):
        s.setFloatingPointPrecision(enum(C.QDataStream, "SinglePrecision"))
    r = {
        "i8": s.readInt8,
        "u8": s.readUInt8,
        "i16": s.readInt16,
        "u16": s.readUInt16,
        "i32": s.readInt32,
        "u32": s.readUInt32,
        "i64": s.readInt64,
        "u64": s.readUInt64,
        "bool": s.readBool,
        "f32": s.readFloat,
        "f32s": s.readFloat,
        "f64": s.readDouble,
        "f64s": s.readDouble,
        "qstring": s.readQString,
        "qstringlist": s.readQStringList,
        "qvariant": s.readQVariant,
        "qvariant_ro": s.readQVariant,
    }.get(kind)
    if kind == "qbytearray":
        ba = C.QByteArray()
        s >> ba
        return None if ba.isNull() else bytes(ba)
    return from_qt(r())


def expected_value(case):
    kind, v = CASES[case]
    if kind == "qstring" and v is None:
        # Python bindings read a null QString as "" (the null flag is lost).
        return ""
    if kind in ("f32", "f32s"):
        import struct

        return struct.unpack("<f", struct.pack("<f", v))[0]
    return v


def same(a, b):
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def do_encode(version, bo, case):
    s, buf = new_stream(version, bo)
    write_case(s, case)
    if not status_ok(s):
        return "FAIL status %s" % s.status()
    buf.close()
    data = bytes(buf.data())
    out = data.hex()
    if case in IMAGES:
        # What Qt itself reads back from that stream.
        rs, _ = new_stream(version, bo, data)
        img = gui().QImage()
        rs >> img
        out += " " + describe_image(img)
    return out


def do_decode(version, bo, case, hexdata):
    data = bytes.fromhex(hexdata)
    s, buf = new_stream(version, bo, data)
    got = read_case(s, case)
    exp = expected_value(case)
    if not status_ok(s):
        return False, "FAIL status %s (read %r)" % (s.status(), got)
    if not s.atEnd():
        return False, "FAIL %d bytes left" % (len(data) - buf.pos())
    if not same(got, exp):
        return False, "FAIL got %r expected %r" % (got, exp)
    return True, "OK"


def do_readimage(version, bo, hexdata):
    data = bytes.fromhex(hexdata)
    s, buf = new_stream(version, bo, data)
    img = gui().QImage()
    s >> img
    if not status_ok(s):
        return False, "FAIL status %s" % s.status()
    if not s.atEnd():
        return False, "FAIL %d bytes left" % (len(data) - buf.pos())
    return True, describe_image(img)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qt", choices=["5", "6"], required=True)
    ap.add_argument("--version", type=int, default=None, help="QDataStream version (default: Qt's)")
    ap.add_argument("--byteorder", choices=["be", "le"], default="be")
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("encode")
    e.add_argument("cases", nargs="+")
    d = sub.add_parser("decode")
    d.add_argument("case")
    d.add_argument("hex")
    ri = sub.add_parser("readimage")
    ri.add_argument("hex")
    b = sub.add_parser("batch")
    b.add_argument("file")
    sub.add_parser("list")
    a = ap.parse_args()
    load(a.qt)
    C = core()
    if QT[0] == 6:
        # Needed for QImage I/O plugins to be found consistently.
        from PySide6.QtGui import QGuiApplication  # noqa: F401
    version = a.version if a.version is not None else C.QDataStream().version()
    ok = True
    if a.cmd == "list":
        print("\n".join(list(CASES) + IMAGES))
    elif a.cmd == "encode":
        for case in a.cases:
            print(case, do_encode(version, a.byteorder, case))
    elif a.cmd == "decode":
        ok, msg = do_decode(version, a.byteorder, a.case, a.hex)
        print(msg)
    elif a.cmd == "readimage":
        ok, msg = do_readimage(version, a.byteorder, a.hex)
        print(msg)
    elif a.cmd == "batch":
        with open(a.file) as f:
            for line in f:
                parts = line.split()
                if not parts:
                    continue
                cmd, v, bo, case = parts[0], int(parts[1]), parts[2], parts[3]
                head = " ".join(parts[:4])
                try:
                    if cmd == "encode":
                        res = do_encode(v, bo, case)
                        good = not res.startswith("FAIL")
                    elif cmd == "decode":
                        good, res = do_decode(v, bo, case, parts[4])
                    elif cmd == "readimage":
                        good, res = do_readimage(v, bo, parts[4])
                    else:
                        good, res = False, "FAIL unknown command"
                except Exception as exc:  # report, keep going
                    good, res = False, "FAIL exception %r" % (exc,)
                ok = ok and good
                print(head, res)
    sys.stdout.flush()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
