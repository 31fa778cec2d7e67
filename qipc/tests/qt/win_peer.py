"""Windows Qt peer for qipc's Windows interop tests: real Qt under Windows CPython in Wine.

    python.exe win_peer.py --qt 5|6 ROLE [options]

--qt 6 uses PySide6 (Qt 6.12), --qt 5 PyQt5 (Qt 5.15.2). Every role prints one JSON object per line
on stdout (ASCII only; text also comes as "units", its UTF-16 code units, so that names Qt cut
inside a surrogate pair survive). Roles that keep something open print {"event": "ready", ...}
and then wait for a line on stdin ("the go line"); end of input counts as a line.

Keys: --key K is a legacy key, QSharedMemory(K). --native N is a Windows native key:
QNativeIpcKey(N, Windows) on Qt 6, setNativeKey(N) on Qt 5 (which has no QNativeIpcKey, and whose
QSharedMemory has no lock for native keys: lock() fails).

Roles:
  names K...            Qt's names for each key: legacy mapping / semaphore, legacyNativeKey,
                        platformSafeKey for both (Qt 6); Qt 5 can only show the mapping name.
  hold ITEM...          for each ITEM "legacy:K", "native:N" or (Qt 6) "safe:K" (platformSafeKey) create a 64-byte segment (which, for
                        a key with a lock, creates the lock semaphore too) and, for legacy keys, a
                        QSystemSemaphore(K); report, wait for the go line. The test then opens the
                        objects by the names qipc derives.
  create --size S       create a segment, report the outcome (error, errorString), detach, exit.
  attach [--readonly]   attach, report size() and the first bytes, detach, exit.
  write [--text T]      the tutorial's Writer: create(1024), QDataStream << QString(T) ("Hello from
                        writer!"), lock / copy / unlock; ready; after the go line it decodes the
                        QString now in the segment, reports it, detaches.
  read                  the tutorial's Reader: attach, lock, copy, unlock, detach, >> QString.
  image-write W H       the image example's loadFromFile with a generated W x H image: QDataStream
                        << QImage into a segment of exactly the stream's size; ready; go; detach.
  image-read            the example's loadFromMemory: attach, lock, >> QImage, unlock, detach;
                        reports size, format and a digest of the pixels.
  lock-hold [--create S] attach (or create) and lock; ready; after the go line unlock; then wait
                        for a second go line and detach.
  lock-wait             attach; ready; after the go line time a lock(), unlock, detach.
  increment N           attach; ready; after the go line N times: lock, add 1 to the
                        little-endian u64 at offset 0, unlock.
  sem-acquire           QSystemSemaphore(key, 1) (legacy or native key): time an acquire(); ready;
                        go; release(1).
  empty-key             what Qt does with QSharedMemory(""): create, lock; ready; go; unlock.
"""

import argparse
import ctypes
import hashlib
import json
import struct
import sys
import time


def out(**obj):
    print(json.dumps(obj, ensure_ascii=True), flush=True)


def units(s):
    """The UTF-16 code units of a Python str (lone surrogates included)."""
    b = s.encode("utf-16-le", "surrogatepass")
    return list(struct.unpack("<%dH" % (len(b) // 2), b))


def name(s):
    return {"text": s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace"), "units": units(s)}


def num(e):
    """An enum value as an int (PySide6 enums are not ints; PyQt5's are)."""
    return int(getattr(e, "value", e))


def wait_go():
    sys.stdin.readline()


class Qt:
    def __init__(self, major):
        self.major = major
        if major == "6":
            import PySide6
            from PySide6 import QtCore, QtGui
            self.version = QtCore.qVersion()
            self.binding = "PySide6 " + PySide6.__version__
            self.ReadOnly = QtCore.QSharedMemory.AccessMode.ReadOnly
            self.ReadWrite = QtCore.QSharedMemory.AccessMode.ReadWrite
            self.SemCreate = QtCore.QSystemSemaphore.AccessMode.Create
            self.DevReadOnly = QtCore.QIODevice.OpenModeFlag.ReadOnly
            self.DevReadWrite = QtCore.QIODevice.OpenModeFlag.ReadWrite
            self.ARGB32 = QtGui.QImage.Format.Format_ARGB32
            self.Windows = QtCore.QNativeIpcKey.Type.Windows
        else:
            from PyQt5 import QtCore, QtGui
            self.version = QtCore.QT_VERSION_STR
            self.binding = "PyQt5 " + QtCore.PYQT_VERSION_STR
            self.ReadOnly = QtCore.QSharedMemory.ReadOnly
            self.ReadWrite = QtCore.QSharedMemory.ReadWrite
            self.SemCreate = QtCore.QSystemSemaphore.Create
            self.DevReadOnly = QtCore.QIODevice.ReadOnly
            self.DevReadWrite = QtCore.QIODevice.ReadWrite
            self.ARGB32 = QtGui.QImage.Format_ARGB32
            self.Windows = None
        self.QtCore, self.QtGui = QtCore, QtGui

    # ---- keys
    def shm(self, key=None, native=None):
        if native is not None:
            if self.major == "6":
                return self.QtCore.QSharedMemory(self.QtCore.QNativeIpcKey(native, self.Windows))
            m = self.QtCore.QSharedMemory()
            m.setNativeKey(native)
            return m
        return self.QtCore.QSharedMemory(key)

    def sem(self, key=None, native=None, initial=1):
        if native is not None:
            if self.major == "5":
                raise SystemExit("Qt 5 has no native keys for QSystemSemaphore")
            return self.QtCore.QSystemSemaphore(self.QtCore.QNativeIpcKey(native, self.Windows), initial, self.SemCreate)
        return self.QtCore.QSystemSemaphore(key, initial, self.SemCreate)

    # ---- memory (the lock is the caller's business)
    def read(self, shm, n=None):
        n = shm.size() if n is None else n
        if self.major == "6":
            return memoryview(shm.constData()).tobytes()[:n]
        return ctypes.string_at(int(shm.constData()), n)

    def write(self, shm, data, offset=0):
        if self.major == "6":
            memoryview(shm.data())[offset:offset + len(data)] = data
        else:
            ctypes.memmove(int(shm.data()) + offset, data, len(data))

    # ---- QDataStream
    def encode(self, value):
        buf = self.QtCore.QBuffer()
        buf.open(self.DevReadWrite)
        stream = self.QtCore.QDataStream(buf)
        if isinstance(value, str):
            stream.writeQString(value)
        else:
            stream << value
        return bytes(buf.data())

    def stream_over(self, data):
        buf = self.QtCore.QBuffer()
        buf.setData(data)
        buf.open(self.DevReadOnly)
        return buf, self.QtCore.QDataStream(buf)

    def decode_string(self, data):
        _buf, stream = self.stream_over(data)
        text = stream.readQString()
        return text, num(stream.status())

    def decode_image(self, data):
        buf, stream = self.stream_over(data)
        image = self.QtGui.QImage()
        stream >> image
        return image, num(stream.status())

    def image_digest(self, image):
        img = image.convertToFormat(self.ARGB32)
        h = hashlib.sha1()
        for y in range(img.height()):
            for x in range(img.width()):
                h.update(struct.pack("<I", img.pixel(x, y) & 0xFFFFFFFF))
        return h.hexdigest()

    def format_name(self, image):
        fmt = image.format()
        if self.major == "6":
            return fmt.name
        for n, v in vars(self.QtGui.QImage).items():
            if n.startswith("Format_") and v == fmt:
                return n
        return str(int(fmt))


def describe(shm):
    return {"error": num(shm.error()), "error_string": shm.errorString()}


def attached(qt, a, *mode):
    """The segment of the key in `a`, attached (with `mode` if given); exits with an error line if not."""
    shm = qt.shm(a.key, a.native)
    if not shm.attach(*mode):
        out(event="error", where="attach", **describe(shm))
        sys.exit(1)
    return shm


def key_args(p):
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--key")
    g.add_argument("--native")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qt", choices=["5", "6"], required=True)
    sub = ap.add_subparsers(dest="role", required=True)
    sp = sub.add_parser("names"); sp.add_argument("keys", nargs="*")
    sp = sub.add_parser("hold"); sp.add_argument("items", nargs="+")
    sp = sub.add_parser("create"); key_args(sp); sp.add_argument("--size", type=int, required=True)
    sp = sub.add_parser("attach"); key_args(sp); sp.add_argument("--readonly", action="store_true")
    sp = sub.add_parser("write"); key_args(sp); sp.add_argument("--text", default="Hello from writer!")
    sp = sub.add_parser("read"); key_args(sp)
    sp = sub.add_parser("image-write"); key_args(sp); sp.add_argument("width", type=int); sp.add_argument("height", type=int)
    sp = sub.add_parser("image-read"); key_args(sp)
    sp = sub.add_parser("lock-hold"); key_args(sp); sp.add_argument("--create", type=int)
    sp = sub.add_parser("lock-wait"); key_args(sp)
    sp = sub.add_parser("increment"); key_args(sp); sp.add_argument("count", type=int)
    sp = sub.add_parser("sem-acquire"); key_args(sp)
    sub.add_parser("empty-key")
    a = ap.parse_args()
    qt = Qt(a.qt)
    globals()["role_" + a.role.replace("-", "_")](qt, a)


def role_names(qt, a):
    C = qt.QtCore
    for k in a.keys:
        row = {"key": name(k), "qt": qt.version, "shm": name(C.QSharedMemory(k).nativeKey())}
        if qt.major == "6":
            W = qt.Windows
            row["sem"] = name(C.QSystemSemaphore(k).nativeIpcKey().nativeKey())
            legacy = C.QSharedMemory.legacyNativeKey(k)
            row["shm_legacy_native_key"] = name(legacy.nativeKey())
            row["legacy_type"] = num(legacy.type())
            row["shm_legacy_to_string"] = legacy.toString()
            row["sem_legacy_native_key"] = name(C.QSystemSemaphore.legacyNativeKey(k).nativeKey())
            row["shm_platform_safe"] = name(C.QSharedMemory.platformSafeKey(k, W).nativeKey())
            row["sem_platform_safe"] = name(C.QSystemSemaphore.platformSafeKey(k, W).nativeKey())
            row["native_to_string"] = C.QNativeIpcKey(k, W).toString()
        out(**row)


def role_hold(qt, a):
    keep = []
    for item in a.items:
        kind, _, k = item.partition(":")
        if kind == "safe":  # Qt 6: QSharedMemory(QSharedMemory::platformSafeKey(k, Windows))
            shm = qt.QtCore.QSharedMemory(qt.QtCore.QSharedMemory.platformSafeKey(k, qt.Windows))
        else:
            shm = qt.shm(key=k) if kind == "legacy" else qt.shm(native=k)
        ok = shm.create(64)
        row = {"item": name(item), "created": ok, "native": name(shm.nativeKey()), "size": shm.size()}
        row.update(describe(shm))
        row["lock"] = shm.lock() if ok else None
        if row["lock"]:
            shm.unlock()
        else:
            row.update({"lock_" + k2: v for k2, v in describe(shm).items()})
        keep.append(shm)
        if kind == "legacy":
            sem = qt.sem(key=k)
            row["sem_error"] = num(sem.error())
            keep.append(sem)
        out(**row)
    out(event="ready")
    wait_go()


def role_create(qt, a):
    shm = qt.shm(a.key, a.native)
    ok = shm.create(a.size)
    out(event="create", ok=ok, size=shm.size(), native=name(shm.nativeKey()), **describe(shm))
    if ok:
        shm.detach()


def role_attach(qt, a):
    shm = qt.shm(a.key, a.native)
    ok = shm.attach(qt.ReadOnly if a.readonly else qt.ReadWrite)
    row = {"event": "attach", "ok": ok, "native": name(shm.nativeKey())}
    row.update(describe(shm))
    if ok:
        row["size"] = shm.size()
        row["head"] = qt.read(shm, 16).hex()
        shm.detach()
    out(**row)


def role_write(qt, a):
    shm = qt.shm(a.key, a.native)
    if not shm.create(1024):
        out(event="error", where="create", **describe(shm))
        sys.exit(1)
    data = qt.encode(a.text)
    locked = shm.lock()
    qt.write(shm, data[: shm.size()])
    if locked:
        shm.unlock()
    out(event="ready", bytes=len(data), size=shm.size(), locked=locked, native=name(shm.nativeKey()))
    wait_go()
    locked = shm.lock()
    text, status = qt.decode_string(qt.read(shm))
    if locked:
        shm.unlock()
    out(event="now", text=text, status=status, locked=locked)
    shm.detach()


def role_read(qt, a):
    shm = attached(qt, a)
    locked = shm.lock()
    data = qt.read(shm)
    if locked:
        shm.unlock()
    shm.detach()
    text, status = qt.decode_string(data)
    out(event="read", text=text, status=status, size=len(data), locked=locked)


def role_image_write(qt, a):
    G = qt.QtGui
    image = G.QImage(a.width, a.height, qt.ARGB32)
    for y in range(a.height):
        for x in range(a.width):
            image.setPixel(x, y, 0xFF000000 | ((x * 255 // max(1, a.width - 1)) << 16) | ((y * 255 // max(1, a.height - 1)) << 8) | ((x * y) & 0xFF))
    data = qt.encode(image)
    shm = qt.shm(a.key, a.native)
    if not shm.create(len(data)):
        out(event="error", where="create", **describe(shm))
        sys.exit(1)
    locked = shm.lock()
    qt.write(shm, data[: min(len(data), shm.size())])
    if locked:
        shm.unlock()
    out(event="ready", bytes=len(data), size=shm.size(), digest=qt.image_digest(image), width=image.width(), height=image.height())
    wait_go()
    shm.detach()


def role_image_read(qt, a):
    shm = attached(qt, a, qt.ReadOnly)
    locked = shm.lock()
    data = qt.read(shm)
    image, status = qt.decode_image(data)
    if locked:
        shm.unlock()
    shm.detach()
    out(event="image", status=status, null=image.isNull(), width=image.width(), height=image.height(),
        format=qt.format_name(image), digest=qt.image_digest(image), locked=locked)


def role_lock_hold(qt, a):
    shm = qt.shm(a.key, a.native)
    ok = shm.create(a.create) if a.create else shm.attach()
    if not ok:
        out(event="error", where="create" if a.create else "attach", **describe(shm))
        sys.exit(1)
    locked = shm.lock()
    out(event="ready", locked=locked, **describe(shm))
    wait_go()
    unlocked = shm.unlock() if locked else False
    out(event="unlocked", ok=unlocked)
    wait_go()
    shm.detach()


def role_lock_wait(qt, a):
    shm = attached(qt, a)
    out(event="ready")
    wait_go()
    t = time.perf_counter()
    locked = shm.lock()
    waited = time.perf_counter() - t
    if locked:
        shm.unlock()
    out(event="locked", ok=locked, waited=waited)
    shm.detach()


def role_increment(qt, a):
    shm = attached(qt, a)
    out(event="ready")
    wait_go()
    t = time.perf_counter()
    failures = 0
    for _ in range(a.count):
        if not shm.lock():
            failures += 1
            continue
        (v,) = struct.unpack("<Q", qt.read(shm, 8))
        qt.write(shm, struct.pack("<Q", v + 1))
        shm.unlock()
    out(event="done", count=a.count, lock_failures=failures, seconds=time.perf_counter() - t)
    shm.detach()


def role_sem_acquire(qt, a):
    sem = qt.sem(a.key, a.native)
    t = time.perf_counter()
    ok = sem.acquire()
    out(event="ready", acquired=ok, waited=time.perf_counter() - t, error=num(sem.error()), error_string=sem.errorString())
    wait_go()
    out(event="released", ok=sem.release(1))


def role_empty_key(qt, a):
    shm = qt.QtCore.QSharedMemory("")
    created = shm.create(16)
    row = {"created": created, **describe(shm)}
    locked = shm.lock()
    row.update(locked=locked, lock_error=num(shm.error()), lock_error_string=shm.errorString())
    out(event="ready", **row)
    wait_go()
    if locked:
        shm.unlock()


if __name__ == "__main__":
    main()
