#!/usr/bin/env python3
"""Qt peers of qipc's example programs (qipc/examples), for qipc/tests/programs.rs.

Re-implements, with real Qt (PyQt5 = Qt 5.15, PySide6 = Qt 6.x):

  write    the tutorial's Writer: QSharedMemory(key).create(1024), QBuffer + QDataStream
           out << QString("Hello from writer!"), lock / memcpy / unlock, then stays
           attached until SIGINT/SIGTERM (its a.exec()).
  read     the tutorial's Reader: attach, lock, copy size() bytes, unlock,
           QDataStream in >> message, prints `Data read from shared memory: "..."`.
  load     Qt's "Shared Memory Example" dialog, loadFromFile() without the window:
           QImage(file) -> QBuffer/QDataStream out << image -> create(buffer.size())
           -> lock / memcpy / unlock; then stays attached until SIGINT/SIGTERM.
  display  the same dialog's loadFromMemory(): attach -> lock -> QBuffer over
           (constData, size) -> in >> image -> unlock -> detach; saves the image as PNG
           and prints its width, height and QImage::Format.

Keys: --key K is a legacy key (QSharedMemory(K)); --native TEXT is a QNativeIpcKey in
text form (posix:NAME ...; Qt 6 only). Defaults are the programs': "SharedMemoryExample"
for write/read; for load/display "QSharedMemoryExample", as a legacy key on Qt 5 and as
the POSIX native key QNativeIpcKey("QSharedMemoryExample") on Qt 6 (the Qt 6.6+ example).

Usage: programs_peer.py --qt 5|6 COMMAND [options]. Exit status 0 on success.
Run it with QT_QPA_PLATFORM=offscreen (QImage needs QtGui, but no window is shown).
"""

import argparse
import atexit
import os
import shutil
import signal
import sys
import tempfile

MESSAGE = "Hello from writer!"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--qt", choices=["5", "6"], required=True, help="5 = PyQt5 (Qt 5.15), 6 = PySide6 (Qt 6)")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="write/load: give up waiting for a signal after this many seconds (exit 3)")
    sub = p.add_subparsers(dest="command", required=True)

    def keys(sp):
        g = sp.add_mutually_exclusive_group()
        g.add_argument("--key", help="legacy key, as QSharedMemory(KEY)")
        g.add_argument("--native", help="native key text, as QNativeIpcKey::fromString (Qt 6 only)")

    keys(sub.add_parser("write", help="the tutorial's Writer"))
    keys(sub.add_parser("read", help="the tutorial's Reader"))
    sp = sub.add_parser("load", help="Qt example: loadFromFile")
    sp.add_argument("image")
    keys(sp)
    sp = sub.add_parser("display", help="Qt example: loadFromMemory")
    sp.add_argument("--out", default="shared_image.png")
    keys(sp)
    return p.parse_args()


class Qt:
    """The few Qt names used here, from PyQt5 or PySide6."""

    def __init__(self, major):
        self.major = major
        if major == "5":
            from PyQt5 import QtCore, QtGui
            self.version = QtCore.QT_VERSION_STR
        else:
            from PySide6 import QtCore, QtGui
            self.version = QtCore.qVersion()
        self.QtCore, self.QtGui = QtCore, QtGui
        self.QSharedMemory = QtCore.QSharedMemory
        self.QBuffer = QtCore.QBuffer
        self.QDataStream = QtCore.QDataStream
        self.QImage = QtGui.QImage
        self.ReadOnly = self.enum(QtCore.QIODevice, "OpenModeFlag", "ReadOnly")
        self.ReadWrite = self.enum(QtCore.QIODevice, "OpenModeFlag", "ReadWrite")
        self.StreamOk = self.enum(QtCore.QDataStream, "Status", "Ok")

    @staticmethod
    def enum(cls, scope, name):
        scoped = getattr(cls, scope, None)
        if scoped is not None and hasattr(scoped, name):
            return getattr(scoped, name)
        return getattr(cls, name)

    def shared_memory(self, key, native, default_legacy, default_native=None):
        """A QSharedMemory for --key / --native, or the program's default key."""
        if native is None and key is None and default_native is not None and self.major == "6":
            native = default_native
        if native is not None:
            if self.major == "5":
                fail("--native needs Qt 6.6+ (QNativeIpcKey); Qt 5 has legacy keys only")
            text = native if ":" in native else "posix:" + native
            nk = self.QtCore.QNativeIpcKey.fromString(text)
            if not nk.isValid():
                fail(f"invalid native key {native!r}")
            return self.QSharedMemory(nk), f"native key {nk.toString()}"
        key = key if key is not None else default_legacy
        return self.QSharedMemory(key), f"legacy key {key!r}"

    def write_bytes(self, shm, data):
        """memcpy(shm.data(), data, qMin(shm.size(), len(data))); lock held by caller."""
        n = min(shm.size(), len(data))
        if self.major == "5":
            ptr = shm.data()
            ptr.setsize(shm.size())
            ptr[0:n] = data[:n]
        else:
            memoryview(shm.data())[0:n] = data[:n]

    def read_bytes(self, shm):
        """A copy of the whole segment; lock held by caller."""
        if self.major == "5":
            return bytes(shm.constData().asstring(shm.size()))
        return memoryview(shm.constData()).tobytes()[: shm.size()]

    def format_name(self, image):
        fmt = image.format()
        if self.major == "6":
            return fmt.name
        for name, value in vars(self.QImage).items():
            if name.startswith("Format_") and value == fmt:
                return name
        return str(int(fmt))


def fail(message, status=1):
    print(f"programs_peer: {message}", file=sys.stderr, flush=True)
    sys.exit(status)


def wait_for_signal(timeout):
    """Returns the name of SIGINT/SIGTERM once one arrives (they were blocked first)."""
    info = signal.sigtimedwait({signal.SIGINT, signal.SIGTERM}, timeout)
    if info is None:
        return None
    return signal.Signals(info.si_signo).name


def stay_attached(shm, what, timeout):
    """The Qt programs' event loop: keep the segment until a signal, then detach."""
    print(f"{what}; waiting for SIGINT/SIGTERM", flush=True)
    sig = wait_for_signal(timeout)
    if sig is None:
        shm.detach()
        fail(f"no signal within {timeout} s; detached and giving up", 3)
    ok = shm.detach()
    print(f"got {sig}, detach -> {ok}", flush=True)
    sys.exit(0 if ok else 1)


def cmd_write(qt, args):
    shm, desc = qt.shared_memory(args.key, args.native, "SharedMemoryExample")
    if not shm.create(1024):
        fail(f"Unable to create shared memory segment. ({desc}: {shm.errorString()})")
    buf = qt.QBuffer()
    buf.open(qt.ReadWrite)
    out = qt.QDataStream(buf)
    out.writeQString(MESSAGE)
    data = bytes(buf.data())
    shm.lock()
    qt.write_bytes(shm, data)
    shm.unlock()
    print("Data written to shared memory.", flush=True)
    stay_attached(shm, f"Qt {qt.version} writer: {len(data)} bytes in {desc}", args.timeout)


def cmd_read(qt, args):
    shm, desc = qt.shared_memory(args.key, args.native, "SharedMemoryExample")
    if not shm.attach():
        fail(f"Unable to attach to shared memory segment. ({desc}: {shm.errorString()})")
    shm.lock()
    data = qt.read_bytes(shm)
    shm.unlock()
    shm.detach()
    buf = qt.QBuffer()
    buf.setData(data)
    buf.open(qt.ReadOnly)
    stream = qt.QDataStream(buf)
    message = stream.readQString()
    if stream.status() != qt.StreamOk:
        fail(f"no QString at the start of the {len(data)}-byte segment ({desc}): status {stream.status()}")
    print(f'Data read from shared memory: "{message}"', flush=True)


def cmd_load(qt, args):
    # Dialog::loadFromFile(), minus the file dialog and the label.
    shm, desc = qt.shared_memory(args.key, args.native, "QSharedMemoryExample", "QSharedMemoryExample")
    image = qt.QImage()
    if not image.load(args.image):
        fail(f"Selected file is not an image, please select another. ({args.image})")
    buf = qt.QBuffer()
    buf.open(qt.ReadWrite)
    out = qt.QDataStream(buf)
    out << image
    data = bytes(buf.data())
    size = len(data)
    if not shm.create(size):
        fail(f"Unable to create shared memory segment. ({desc}: {shm.errorString()})")
    shm.lock()
    qt.write_bytes(shm, data)
    shm.unlock()
    print(f"loaded {image.width()} {image.height()} {qt.format_name(image)} segment {shm.size()} bytes",
          flush=True)
    stay_attached(shm, f"Qt {qt.version} load: {args.image} in {desc}", args.timeout)


def cmd_display(qt, args):
    # Dialog::loadFromMemory(), minus the label.
    shm, desc = qt.shared_memory(args.key, args.native, "QSharedMemoryExample", "QSharedMemoryExample")
    if not shm.attach():
        fail(f"Unable to attach to shared memory segment.\nLoad an image first. ({desc}: {shm.errorString()})")
    buf = qt.QBuffer()
    stream = qt.QDataStream(buf)
    image = qt.QImage()
    shm.lock()
    buf.setData(qt.read_bytes(shm))
    buf.open(qt.ReadOnly)
    stream >> image
    shm.unlock()
    shm.detach()
    if image.isNull() or stream.status() != qt.StreamOk:
        fail(f"the segment ({desc}) holds no QImage: status {stream.status()}")
    if not image.save(args.out, "PNG"):
        fail(f"cannot save {args.out}")
    print(f"displayed {image.width()} {image.height()} {qt.format_name(image)} -> {args.out}", flush=True)


def main():
    args = parse_args()
    # Block the signals before anything is created, so a signal that arrives
    # early is still taken by sigtimedwait and the segment is detached.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    runtime = None
    if args.qt == "5" and args.command in ("load", "display") and not os.environ.get("XDG_RUNTIME_DIR"):
        # Qt 5's QGuiApplication wants a runtime directory; without one it warns and
        # creates /tmp/runtime-<user>. Give it a private one for its start-up only, and
        # remove it as soon as the application exists (so not even SIGKILL leaves it).
        # Qt 5 has no native keys, so no key depends on it.
        runtime = tempfile.mkdtemp(prefix="programs_peer_runtime_")
        os.environ["XDG_RUNTIME_DIR"] = runtime
        atexit.register(shutil.rmtree, runtime, True)
    qt = Qt(args.qt)
    app = qt.QtGui.QGuiApplication(["programs_peer"]) if args.command in ("load", "display") else None
    if runtime is not None:
        shutil.rmtree(runtime, True)
    {"write": cmd_write, "read": cmd_read, "load": cmd_load, "display": cmd_display}[args.command](qt, args)
    del app


if __name__ == "__main__":
    main()
