#!/usr/bin/env python3
"""A general Qt peer for qipc's interop tests (qipc/tests/qt_interop.rs).

One Python process runs a whole scenario: a list of commands, each printing one
or more lines that the Rust side waits for. Commands come from the command line
(separated by a lone `;`) or, when there are none there, one per line from
stdin (split like a shell would). The `wait` command waits for a line on stdin
or for SIGINT/SIGTERM/SIGUSR1, so a scenario can pause while the Rust side
does its part.

Usage: peer.py --qt 5|6 [--timeout SECONDS] [COMMAND ARGS... [; COMMAND ARGS...]...]
Run with QT_QPA_PLATFORM=offscreen. 5 = PyQt5 (Qt 5.15), 6 = PySide6 (Qt 6.x).

Commands (one QSharedMemory object is "current"; `key`/`native` replace it):
  key KEY              QSharedMemory(KEY), a legacy key (System V on Linux).   -> KEY <nativeKey>
  keyhex HEX           the same, with the key given as hex of its UTF-8 bytes.  -> KEY <nativeKey>
  native TEXT          Qt 6: QSharedMemory(QNativeIpcKey.fromString(TEXT)), e.g. posix:/name.
                       Qt 5: setNativeKey(TEXT) (System V paths only).          -> KEY <nativeKey>
  create SIZE          create(SIZE)                                             -> CREATED <size()>
  attach [ro|rw]       attach(mode)                                             -> ATTACHED <size()>
  detach               detach()                                                 -> DETACHED <bool>
  write OFFSET HEX     lock, copy bytes, unlock                                 -> WROTE <n>
  read OFFSET N        lock, copy N bytes, unlock                               -> VALUE <hex>
  peek OFFSET N        copy N bytes without the lock                            -> VALUE <hex>
  poke OFFSET HEX      copy bytes without the lock                              -> WROTE <n>
  lock / unlock        lock() / unlock()                                        -> LOCKED / UNLOCKED
  incr K u32|u64       K times: lock, read the counter at offset 0 (native endian), +1, write, unlock
                                                                                -> COUNTED <last value written>
  status               -> STATUS attached=<0|1> size=<n> error=<int> errorString=<hex>
  keys HEX...          native keys Qt derives for each key (hex of UTF-8), one line per key:
                       KEYINFO <hexkey> name=<hex value> ...   (values hex-encoded UTF-8)
                       Qt 5: ctor (QSharedMemory(key).nativeKey()).
                       Qt 6: ctor, shm_sysv, sem_sysv, shm_posix, sem_posix, safe_posix, safe_sysv
                       (nativeKey()) and the same with _str (toString()).
  parse HEX...         Qt 6: QNativeIpcKey.fromString for each text (hex of UTF-8):
                       PARSED <hextext> valid=<0|1> type=<int> native=<hex> legacy_str=<hex toString()>
  semfile HEX          QSystemSemaphore(key, 1, Create); prints the key file it made in the temp dir
                       (observed, not computed), then destroys it (the owner removes it).
                                                                                -> SEMFILE <hex path> ...
  echo TEXT...         prints TEXT
  wait                 -> WAITING, then waits for a stdin line or a signal       -> RESUMED <line|signal>
  sleep SECONDS
  exit [STATUS]        exits at once (the QSharedMemory destructor detaches)

A failing command prints `ERROR <command> <error()> <errorString()>` and the peer
exits with status 2; prefix the command with `?` to go on instead.
"""

import argparse
import os
import select
import shlex
import signal
import struct
import sys
import time

SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGUSR1}


def out(line):
    print(line, flush=True)


def hexs(text):
    return text.encode("utf-8").hex()


def unhex(h):
    return bytes.fromhex(h).decode("utf-8")


class Stdin:
    """Line reader on fd 0 that works with select (no hidden buffering)."""

    def __init__(self):
        self.buf = b""
        self.eof = False

    def readline(self, timeout, signals=False):
        """A line (without newline); '' at EOF; None on timeout; or, with
        signals=True, the name of a signal that arrived (SIGINT, ...)."""
        deadline = time.monotonic() + timeout
        while True:
            if b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                return line.decode("utf-8")
            if self.eof:
                if self.buf:
                    line, self.buf = self.buf, b""
                    return line.decode("utf-8")
                return ""
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([0], [], [], min(left, 0.05))
            if r:
                chunk = os.read(0, 4096)
                if not chunk:
                    self.eof = True
                else:
                    self.buf += chunk
            elif signals:
                info = signal.sigtimedwait(SIGNALS, 0)
                if info is not None:
                    return signal.Signals(info.si_signo).name


class Peer:
    def __init__(self, major, timeout):
        self.major = major
        self.timeout = timeout
        if major == "5":
            from PyQt5 import QtCore
            self.version = QtCore.QT_VERSION_STR
        else:
            from PySide6 import QtCore
            self.version = QtCore.qVersion()
        self.QtCore = QtCore
        self.shm = None
        self.view = None
        self.mode_rw = True
        self.stdin = Stdin()

    # ---- helpers -----------------------------------------------------
    def enum(self, cls, scope, name):
        scoped = getattr(cls, scope, None)
        if scoped is not None and hasattr(scoped, name):
            return getattr(scoped, name)
        return getattr(cls, name)

    def err_int(self, e):
        return int(e.value) if hasattr(e, "value") else int(e)

    def fail(self, cmd):
        s = self.shm
        code = self.err_int(s.error()) if s is not None else -1
        text = s.errorString() if s is not None else "no shared memory object"
        raise CommandError(f"ERROR {cmd} {code} {text}")

    def need(self):
        if self.shm is None:
            raise CommandError("ERROR nokey -1 no key given")
        return self.shm

    def mem(self):
        """A writable/readable view of the whole segment."""
        shm = self.need()
        if not shm.isAttached():
            raise CommandError("ERROR data -1 not attached")
        if self.view is None:
            size = shm.size()
            if self.major == "5":
                ptr = shm.data() if self.mode_rw else shm.constData()
                ptr.setsize(size)
                self.view = memoryview(ptr)
            else:
                self.view = memoryview(shm.data() if self.mode_rw else shm.constData())
        return self.view

    def set_shm(self, shm):
        self.release_view()
        self.shm = shm
        out(f"KEY {shm.nativeKey()}")

    def release_view(self):
        if self.view is not None:
            try:
                self.view.release()
            except Exception:  # noqa: BLE001
                pass
        self.view = None

    # ---- commands ----------------------------------------------------
    def c_key(self, key):
        self.set_shm(self.QtCore.QSharedMemory(key))

    def c_keyhex(self, h):
        self.c_key(unhex(h))

    def c_native(self, text):
        if self.major == "5":
            shm = self.QtCore.QSharedMemory()
            shm.setNativeKey(text.split(":", 1)[1] if text.startswith("systemv:") else text)
        else:
            nk = self.QtCore.QNativeIpcKey.fromString(text)
            if not nk.isValid():
                raise CommandError(f"ERROR native -1 invalid native key {text!r}")
            shm = self.QtCore.QSharedMemory(nk)
        self.set_shm(shm)

    def c_create(self, size):
        shm = self.need()
        if not shm.create(int(size)):
            self.fail("create")
        self.mode_rw = True
        out(f"CREATED {shm.size()}")

    def c_attach(self, mode="rw"):
        shm = self.need()
        QSM = self.QtCore.QSharedMemory
        m = self.enum(QSM, "AccessMode", "ReadOnly" if mode == "ro" else "ReadWrite")
        if not shm.attach(m):
            self.fail("attach")
        self.mode_rw = mode != "ro"
        out(f"ATTACHED {shm.size()}")

    def c_detach(self):
        shm = self.need()
        self.release_view()
        ok = shm.detach()
        if not ok:
            self.fail("detach")
        out(f"DETACHED {ok}")

    def c_lock(self):
        if not self.need().lock():
            self.fail("lock")
        out("LOCKED")

    def c_unlock(self):
        if not self.need().unlock():
            self.fail("unlock")
        out("UNLOCKED")

    def c_peek(self, offset, n):
        o, n = int(offset), int(n)
        out(f"VALUE {bytes(self.mem()[o:o + n]).hex()}")

    def c_poke(self, offset, h):
        o, data = int(offset), bytes.fromhex(h)
        self.mem()[o:o + len(data)] = data
        out(f"WROTE {len(data)}")

    def c_read(self, offset, n):
        self.mem()
        if not self.shm.lock():
            self.fail("lock")
        try:
            self.c_peek(offset, n)
        finally:
            self.shm.unlock()

    def c_write(self, offset, h):
        self.mem()
        if not self.shm.lock():
            self.fail("lock")
        try:
            self.c_poke(offset, h)
        finally:
            self.shm.unlock()

    def c_incr(self, times, width="u32"):
        fmt, size = ("=I", 4) if width == "u32" else ("=Q", 8)
        view = self.mem()
        shm = self.shm
        value = None
        for _ in range(int(times)):
            if not shm.lock():
                self.fail("lock")
            (value,) = struct.unpack(fmt, view[0:size])
            value += 1
            view[0:size] = struct.pack(fmt, value)
            if not shm.unlock():
                self.fail("unlock")
        out(f"COUNTED {value}")

    def c_status(self):
        shm = self.need()
        out(f"STATUS attached={int(shm.isAttached())} size={shm.size()} error={self.err_int(shm.error())} "
            f"errorString={hexs(shm.errorString())}")

    def c_keys(self, *hexkeys):
        QtCore = self.QtCore
        for h in hexkeys:
            key = unhex(h)
            fields = [("ctor", QtCore.QSharedMemory(key).nativeKey())]
            if self.major == "6":
                K = QtCore.QNativeIpcKey
                SM, SS = QtCore.QSharedMemory, QtCore.QSystemSemaphore
                sysv, posix = K.Type.SystemV, K.Type.PosixRealtime
                for name, nk in [
                    ("shm_sysv", SM.legacyNativeKey(key, sysv)),
                    ("sem_sysv", SS.legacyNativeKey(key, sysv)),
                    ("shm_posix", SM.legacyNativeKey(key, posix)),
                    ("sem_posix", SS.legacyNativeKey(key, posix)),
                    ("safe_posix", SM.platformSafeKey(key, posix)),
                    ("safe_sysv", SM.platformSafeKey(key, sysv)),
                ]:
                    fields.append((name, nk.nativeKey()))
                    fields.append((name + "_str", nk.toString()))
            out(f"KEYINFO {h} " + " ".join(f"{n}={hexs(v)}" for n, v in fields))

    def c_parse(self, *hextexts):
        if self.major == "5":
            raise CommandError("ERROR parse -1 QNativeIpcKey needs Qt 6.6+")
        K = self.QtCore.QNativeIpcKey
        for h in hextexts:
            k = K.fromString(unhex(h))
            t = k.type()
            t = int(t.value) if hasattr(t, "value") else int(t)
            out(f"PARSED {h} valid={int(k.isValid())} type={t} native={hexs(k.nativeKey())} "
                f"str={hexs(k.toString())}")

    def c_semfile(self, h):
        key = unhex(h)
        tmp = self.QtCore.QDir.tempPath()
        before = set(os.listdir(tmp))
        sem = self.QtCore.QSystemSemaphore(key, 1, self.enum(self.QtCore.QSystemSemaphore, "AccessMode", "Create"))
        after = set(os.listdir(tmp))
        new = sorted(os.path.join(tmp, n) for n in after - before if n.startswith("qipc_systemsem_"))
        del sem
        out("SEMFILE " + " ".join(hexs(p) for p in new))

    def c_echo(self, *words):
        out(" ".join(words))

    def c_wait(self):
        out("WAITING")
        if not self.stdin.eof:
            got = self.stdin.readline(self.timeout, signals=True)
            if got is None:
                raise CommandError(f"ERROR wait -1 nothing on stdin and no signal within {self.timeout} s")
            if got.startswith("SIG") and got in {s.name for s in SIGNALS}:
                out(f"RESUMED {got}")
                return
            if got != "" or not self.stdin.eof:
                out(f"RESUMED {got}")
                return
        # No stdin (or it ended): only a signal resumes.
        info = signal.sigtimedwait(SIGNALS, self.timeout)
        if info is None:
            raise CommandError(f"ERROR wait -1 no signal within {self.timeout} s")
        out(f"RESUMED {signal.Signals(info.si_signo).name}")

    def c_sleep(self, seconds):
        time.sleep(float(seconds))

    def c_exit(self, status="0"):
        sys.stdout.flush()
        self.release_view()
        self.shm = None
        sys.exit(int(status))

    def run(self, words):
        tolerant = words[0].startswith("?")
        name = words[0].lstrip("?")
        fn = getattr(self, "c_" + name, None)
        if fn is None:
            raise SystemExit(f"peer.py: unknown command {name!r}")
        try:
            fn(*words[1:])
        except CommandError as e:
            out(str(e))
            if not tolerant:
                sys.exit(2)


class CommandError(Exception):
    pass


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--qt", choices=["5", "6"], required=True)
    p.add_argument("--timeout", type=float, default=120.0, help="longest wait for `wait`")
    p.add_argument("commands", nargs=argparse.REMAINDER)
    args = p.parse_args()
    # Signals are taken by `wait` (sigtimedwait); block them before anything exists.
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    peer = Peer(args.qt, args.timeout)
    out(f"QT {peer.version}")
    if args.commands:
        cmd = []
        for w in args.commands + [";"]:
            if w == ";":
                if cmd:
                    peer.run(cmd)
                cmd = []
            else:
                cmd.append(w)
    else:
        while True:
            line = peer.stdin.readline(args.timeout)
            if line is None:
                sys.exit("peer.py: no command within the timeout")
            if line == "" and peer.stdin.eof:
                break
            words = shlex.split(line)
            if words:
                peer.run(words)
    out("DONE")
    peer.release_view()
    peer.shm = None


if __name__ == "__main__":
    main()
