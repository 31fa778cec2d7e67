#!/usr/bin/env python3
"""Qt peer for the qipc command's tests against real Qt (qipc-cli/tests/qt.rs).

  create       QSharedMemory(key).create(size); prints READY <nativeKey> and stays attached
               until it is killed, gets SIGINT/SIGTERM, or its stdin closes; then detaches.
  create-once  tries create(size) once; prints OK (and detaches at exit) or the errorString;
               exit status 0 either way (the caller checks the line).

Keys: --key K is a legacy key (QSharedMemory(K)); --native TEXT is a QNativeIpcKey in text
form (Qt 6 only), e.g. posix:/name; a text without a scheme is a POSIX name, built as
QNativeIpcKey(name, QNativeIpcKey.Type.PosixRealtime).

Usage: cli_peer.py --qt 5|6 (create|create-once) (--key K | --native TEXT) [--size N]
Run it with QT_QPA_PLATFORM=offscreen.
"""

import argparse
import select
import signal
import sys


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--qt", choices=["5", "6"], required=True, help="5 = PyQt5 (Qt 5.15), 6 = PySide6 (Qt 6)")
    p.add_argument("--timeout", type=float, default=120.0, help="create: give up after this many seconds")
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("create", "create-once"):
        sp = sub.add_parser(name)
        g = sp.add_mutually_exclusive_group(required=True)
        g.add_argument("--key", help="legacy key, as QSharedMemory(KEY)")
        g.add_argument("--native", help="native key text (Qt 6 only)")
        sp.add_argument("--size", type=int, default=1024)
        sp.add_argument("--text", default="", help="bytes to write into the segment under the lock")
    return p.parse_args()


def fail(message, status=1):
    print(f"cli_peer: {message}", file=sys.stderr, flush=True)
    sys.exit(status)


def shared_memory(args):
    if args.qt == "5":
        from PyQt5 import QtCore
        if args.native is not None:
            fail("--native needs Qt 6.6+ (QNativeIpcKey)")
        return QtCore, QtCore.QSharedMemory(args.key)
    from PySide6 import QtCore
    if args.native is not None:
        if ":" in args.native:
            nk = QtCore.QNativeIpcKey.fromString(args.native)
        else:
            nk = QtCore.QNativeIpcKey(args.native, QtCore.QNativeIpcKey.Type.PosixRealtime)
        if not nk.isValid():
            fail(f"invalid native key {args.native!r}")
        return QtCore, QtCore.QSharedMemory(nk)
    return QtCore, QtCore.QSharedMemory(args.key)


def write_text(args, shm):
    data = args.text.encode()
    if not data:
        return
    shm.lock()
    n = min(shm.size(), len(data))
    if args.qt == "5":
        ptr = shm.data()
        ptr.setsize(shm.size())
        ptr[0:n] = data[:n]
    else:
        memoryview(shm.data())[0:n] = data[:n]
    shm.unlock()


def main():
    args = parse_args()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    QtCore, shm = shared_memory(args)
    if args.command == "create-once":
        if shm.create(args.size):
            print("OK", flush=True)
            shm.detach()
        else:
            print(f"ERROR {shm.errorString()}", flush=True)
        return
    if not shm.create(args.size):
        fail(f"create failed: {shm.errorString()}")
    write_text(args, shm)
    print(f"READY {shm.nativeKey()}", flush=True)
    # Wait for SIGINT/SIGTERM or stdin EOF, whichever comes first.
    deadline_left = args.timeout
    while deadline_left > 0:
        if signal.sigtimedwait({signal.SIGINT, signal.SIGTERM}, 0.05) is not None:
            break
        r, _, _ = select.select([sys.stdin], [], [], 0.05)
        if r and not sys.stdin.buffer.read1(4096):
            break
        deadline_left -= 0.1
    shm.detach()
    print("DETACHED", flush=True)


if __name__ == "__main__":
    main()
