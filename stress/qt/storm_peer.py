#!/usr/bin/env python3
"""Qt peer of the qipc stress suite: the mixed storm (stress/README.md).

A real Qt process (PyQt5 = Qt 5.15, PySide6 = Qt 6.x) that counts in the same
segment layout, under the same lock, as the Rust workers (stress/src/worker.rs)
and reports through the same board (stress/src/board.rs: the constants below
must match it; BOARD_MAGIC guards that).

The coordinator starts it with the venv's Python (.qt-venv/bin/python, made by
scripts/setup-qt.sh), QT_QPA_PLATFORM=offscreen and TMPDIR set to the storm's
key directory:

  storm_peer.py --qt 5|6 --role anchor|attacher --backend sysv|posix --key KEY
                --key-dir DIR --board PATH --seat N --seed S --deadline-ms T
                --hang-ms H --size BYTES [--expect-not-found]

Roles:
  anchor    QSharedMemory.create(size) once, stay attached until the board's
            anchor-stop flag, one last locked check, detach, exit 0.
  attacher  loop until the stop flag: a fresh QSharedMemory, attach, 1-4
            locked increments, detach, destroy the object.

Qt's lock() has no time-out: an interval timer (SIGALRM, default action:
terminate) bounds every Qt call; the coordinator counts that death as a hang.
Output lines (stdout, a log file): "ERROR <op> <kind> <text>" and
"EVENT <kind> <text>", as the Rust workers write them.
"""

import argparse
import ctypes
import hashlib
import mmap
import os
import random
import signal
import struct
import sys
import time

# ---- board layout (stress/src/board.rs) ---------------------------------
BOARD_MAGIC = 0x5149504353545202
B_STOP, B_ANCHOR_STOP, B_KILLED_COUNT = 8, 16, 24
B_KILLED, KILLED_LEN = 4096, 4096
B_PIDS, PIDS_LEN = 4096 + 8 * 4096, 65536
B_SEATS = B_PIDS + 4 * PIDS_LEN
SEAT_BYTES, SEATS = 256, 128
BOARD_LEN = B_SEATS + SEAT_BYTES * SEATS
(R_PID, R_PHASE, R_OP, R_PARK, R_OPS, R_VIOLATIONS, R_LOST, R_DEAD_HOLDERS, R_REMOVED_MAPS, R_HANGS,
 R_ERRORS, R_EXPECTED, R_CREATES, R_ATTACHES, R_DETACHES) = range(15)
R_BEAT = 21
PH_IDLE, PH_CALL, PH_LOCKING, PH_HOLDING, PH_PARKED, PH_READY, PH_DONE = range(7)
OP_NONE, OP_CREATE, OP_ATTACH, OP_DETACH, OP_DROP, OP_LOCK, OP_CRITICAL = range(7)
OP_NAMES = ["(between operations)", "create", "attach", "detach", "drop", "lock", "lock + critical section"]

# ---- segment layout ----------------------------------------------------------
SEG_HOLDER, SEG_COUNTER, SEG_SLOTS, SLOTS = 0, 16, 64, 128
SEG_LEN = SEG_SLOTS + 8 * SLOTS

EXIT_SETUP, EXIT_HANG, EXIT_DEADLINE = 2, 3, 4
ALARM_MARGIN = 5.0
SHM_DEST = 0o1000
ERROR_NAMES = ["NoError", "PermissionDenied", "InvalidSize", "KeyError", "AlreadyExists", "NotFound",
               "LockError", "OutOfResources", "Unknown"]


def log(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def proc_stat(pid):
    """(state, start time) of a process, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 1:].split()
    return fields[0], int(fields[19])


def alive(pid, start):
    st = proc_stat(pid)
    return st is not None and st[1] == start and st[0] not in ("Z", "X")


class Board:
    def __init__(self, path, seat):
        self.f = open(path, "r+b")
        self.mm = mmap.mmap(self.f.fileno(), BOARD_LEN)
        magic = self.word(0)
        if magic != BOARD_MAGIC:
            raise RuntimeError(f"board magic {magic:#x}: storm_peer.py does not match board.rs")
        self.base = B_SEATS + seat * SEAT_BYTES

    def word(self, off):
        return struct.unpack_from("=Q", self.mm, off)[0]

    def rec(self, w):
        return self.word(self.base + 8 * w)

    def set_rec(self, w, v):
        struct.pack_into("=Q", self.mm, self.base + 8 * w, v)

    def bump(self, w, by=1):
        self.set_rec(w, self.rec(w) + by)

    def was_killed(self, pid, start):
        n = min(self.word(B_KILLED_COUNT), KILLED_LEN)
        entry = ((start & 0xFFFFFFFF) << 32) | pid
        return entry in struct.unpack_from(f"={n}Q", self.mm, B_KILLED)


class Segment:
    """Copies in and out of an attached QSharedMemory."""

    def __init__(self, major, shm):
        self.view = None
        self.addr = None
        if major == "6":
            self.view = memoryview(shm.data())
        else:
            self.addr = int(shm.data())

    def read(self, off, n):
        if self.view is not None:
            return bytes(self.view[off:off + n])
        return ctypes.string_at(self.addr + off, n)

    def write(self, off, data):
        if self.view is not None:
            self.view[off:off + len(data)] = data
        else:
            ctypes.memmove(self.addr + off, data, len(data))

    def release(self):
        if self.view is not None:
            self.view.release()
            self.view = None


class Peer:
    def __init__(self, a):
        self.a = a
        self.major = a.qt
        try:
            if self.major == "5":
                from PyQt5 import QtCore
            else:
                from PySide6 import QtCore
        except ImportError as e:
            log(f"ERROR setup Unknown cannot import the Qt {self.major} bindings ({e}); run scripts/setup-qt.sh")
            sys.exit(EXIT_SETUP)
        self.QtCore = QtCore
        self.board = Board(a.board, a.seat)
        self.rng = random.Random(a.seed)
        self.hang = a.hang_ms / 1000.0
        st = proc_stat(os.getpid())
        self.me = (os.getpid(), st[1])
        self.reported = set()
        self.error_lines = 0
        self.armed_at = time.monotonic()
        self.key_file = None
        if a.backend == "sysv":
            letters = "".join(c for c in a.key if c.isascii() and c.isalpha())
            digest = hashlib.sha1(a.key.encode("utf-8")).hexdigest()
            self.key_file = os.path.join(a.key_dir, f"qipc_sharedmemory_{letters}{digest}")
        self.board.set_rec(R_PID, os.getpid())

    # ---- helpers --------------------------------------------------------
    def phase(self, ph, op):
        self.board.set_rec(R_OP, op)
        self.board.set_rec(R_PHASE, ph)

    def arm(self):
        self.armed_at = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, self.hang + ALARM_MARGIN)

    def disarm(self):
        """Disarms the backstop; a call that returned but took longer than
        the hang limit is a hang too."""
        signal.setitimer(signal.ITIMER_REAL, 0)
        took = time.monotonic() - self.armed_at
        if took > self.hang:
            self.board.bump(R_HANGS)
            op = self.board.rec(R_OP)
            name = OP_NAMES[op] if op < len(OP_NAMES) else str(op)
            self.event("hang", f"{name} took {took:.1f} s (returned)")

    def past_deadline(self):
        return time.time() * 1000 >= self.a.deadline_ms

    def stopping(self):
        return self.board.word(B_STOP) != 0 or self.past_deadline()

    def finish_code(self):
        if self.board.word(B_STOP) != 0:
            return 0
        log("DEADLINE the peer's deadline passed before the coordinator said stop")
        return EXIT_DEADLINE

    def new_shm(self):
        QtCore = self.QtCore
        if self.a.backend == "sysv":
            return QtCore.QSharedMemory(self.a.key)
        K = QtCore.QNativeIpcKey
        return QtCore.QSharedMemory(K(self.a.key, K.Type.PosixRealtime))

    def err_kind(self, shm):
        e = shm.error()
        n = int(e.value) if hasattr(e, "value") else int(e)
        return ERROR_NAMES[n] if 0 <= n < len(ERROR_NAMES) else str(n)

    def unexpected(self, op, text):
        self.board.bump(R_ERRORS)
        if self.error_lines < 20:
            self.error_lines += 1
            log(f"ERROR {op} {text}")
        time.sleep(0.001)

    def qt_error(self, op, shm):
        self.unexpected(op, f"{self.err_kind(shm)} Qt{self.major}: {shm.errorString()}")

    def event(self, kind, text):
        log(f"EVENT {kind} seat={self.a.seat} pid={self.me[0]} Qt{self.major}: {text}")

    def park_point(self):
        if self.board.rec(R_PARK) == 0:
            return
        self.phase(PH_PARKED, OP_NONE)
        while self.board.rec(R_PARK) != 0 and not self.stopping():
            time.sleep(0.001)
        self.phase(PH_IDLE, OP_NONE)

    # ---- the locked increment (same checks as Worker::locked_op) ----------
    def locked_op(self, shm, seg, att):
        self.board.bump(R_BEAT)
        self.phase(PH_LOCKING, OP_LOCK)
        self.arm()
        if not shm.lock():
            self.disarm()
            self.phase(PH_IDLE, OP_NONE)
            self.qt_error("lock", shm)
            return False
        self.phase(PH_HOLDING, OP_CRITICAL)
        raw = seg.read(0, SEG_LEN)
        hpid, hstart, counter = struct.unpack_from("=QQQ", raw, 0)
        slots = struct.unpack_from(f"={SLOTS}Q", raw, SEG_SLOTS)
        violation = None
        dead = False
        if hpid != 0:
            if alive(hpid, hstart) and not self.board.was_killed(hpid, hstart) and (hpid, hstart) != self.me:
                violation = f"pid {hpid} holds the lock too (its holder mark is set and it is alive)"
            else:
                dead = True
                self.board.bump(R_DEAD_HOLDERS)
        mark = struct.pack("=QQ", self.me[0], self.me[1])
        seg.write(SEG_HOLDER, mark)
        total = sum(slots) & 0xFFFFFFFFFFFFFFFF
        if counter != total:
            if not dead and violation is None:
                self.board.bump(R_LOST)
                self.event("lost", f"counter {counter} != sum of slots {total}, no dead holder")
            counter = total
        seat = self.a.seat
        mine = slots[seat]
        if att["base"] is None:
            att["base"] = mine
        elif att["base"] + att["ops"] != mine:
            if violation is None:
                self.board.bump(R_LOST)
                self.event("lost", f"own slot {seat} is {mine}, expected {att['base'] + att['ops']} since this attach")
            att["base"] = mine - att["ops"]
        seg.write(SEG_SLOTS + 8 * seat, struct.pack("=Q", mine + 1))
        seg.write(SEG_COUNTER, struct.pack("=Q", counter + 1))
        att["ops"] += 1
        self.board.bump(R_OPS)
        r = self.rng.random()
        if r > 0.85:
            time.sleep(self.rng.uniform(0.00001, 0.0003))
        self.check_mappings()
        if seg.read(SEG_HOLDER, 16) != mark:
            again = struct.unpack_from("=Q", seg.read(SEG_HOLDER, 8))[0]
            violation = violation or f"the holder mark changed to pid {again} while we held the lock"
        seg.write(SEG_HOLDER, bytes(16))
        ok = shm.unlock()
        self.disarm()
        self.phase(PH_IDLE, OP_NONE)
        if violation:
            self.board.bump(R_VIOLATIONS)
            self.event("violation", violation)
        if not ok:
            self.qt_error("unlock", shm)
            return False
        return True

    def check_mappings(self):
        try:
            with open("/proc/self/maps") as f:
                maps = f.read().splitlines()
        except OSError as e:
            self.report_map("maps", f"cannot read /proc/self/maps: {e}")
            return
        rows = []
        for line in maps:
            parts = line.split(None, 5)
            if len(parts) == 6:
                rows.append((int(parts[4]), parts[5]))
        if self.a.backend == "sysv":
            self.sysv_maps([r for r in rows if r[1].startswith("/SYSV")])
        else:
            self.posix_maps([r for r in rows if r[1].startswith("/dev/shm/")])

    def sysv_maps(self, rows):
        if not rows:
            return
        table = {}
        with open("/proc/sysvipc/shm") as f:
            for line in f.read().splitlines()[1:]:
                p = line.split()
                table[int(p[1])] = (int(p[0]), int(p[2], 8))
        try:
            st = os.stat(self.key_file)
            file_key = (0x51 << 24) | ((st.st_dev & 0xFF) << 16) | (st.st_ino & 0xFFFF)
            file_key = file_key - (1 << 32) if file_key >= 1 << 31 else file_key
        except OSError as e:
            file_key = None
            file_err = e
        for shmid, path in rows:
            row = table.get(shmid)
            if row is None:
                problem = f"System V segment {shmid} is gone"
            elif row[0] == 0 or row[1] & SHM_DEST:
                problem = f"System V segment {shmid} is marked for destruction"
            elif file_key is None:
                problem = f"System V segment {shmid}: its key file {self.key_file} is gone ({file_err})"
            elif file_key != row[0]:
                problem = f"System V segment {shmid} has key {row[0] & 0xFFFFFFFF:#x}, but the key file now gives {file_key & 0xFFFFFFFF:#x}"
            else:
                continue
            self.report_map(f"sysv:{shmid}", problem)

    def posix_maps(self, rows):
        name = self.a.key.lstrip("/")
        seg_path, sem_path = f"/dev/shm/{name}", f"/dev/shm/sem.{name}"

        def ino(p):
            try:
                return os.stat(p).st_ino
            except OSError:
                return None

        def split(path):
            return (path[:-10], True) if path.endswith(" (deleted)") else (path, False)

        seg_ino, sem_ino = ino(seg_path), ino(sem_path)
        sems = []
        for inode, path in rows:
            p, deleted = split(path)
            if p == seg_path and (deleted or inode != seg_ino):
                self.report_map(f"posix:{inode}", f"mapped {seg_path} (inode {inode}) is no longer the object of that name")
            elif p == sem_path:
                sems.append((inode, deleted))
        if sems and not any(not d and i == sem_ino for i, d in sems):
            inodes = ",".join(str(i) for i, _ in sems)
            self.report_map(f"posix-sem:{inodes}",
                            f"holding the lock, but no mapped {sem_path} (inodes {inodes}) is the semaphore of that name")

    def report_map(self, ident, text):
        if ident not in self.reported:
            self.reported.add(ident)
            self.board.bump(R_REMOVED_MAPS)
            self.event("removed-map", text)

    # ---- roles --------------------------------------------------------------
    def anchor(self):
        shm = self.new_shm()
        self.phase(PH_CALL, OP_CREATE)
        self.arm()
        ok = shm.create(self.a.size)
        self.disarm()
        if not ok:
            self.qt_error("create", shm)
            return EXIT_SETUP
        self.board.bump(R_CREATES)
        seg = Segment(self.major, shm)
        self.phase(PH_READY, OP_NONE)
        while self.board.word(B_ANCHOR_STOP) == 0:
            if self.past_deadline():
                return EXIT_DEADLINE
            self.board.bump(R_BEAT)
            time.sleep(0.005)
        self.locked_op(shm, seg, {"base": None, "ops": 0})
        seg.release()
        self.phase(PH_CALL, OP_DETACH)
        self.arm()
        ok = shm.detach()
        self.disarm()
        if ok:
            self.board.bump(R_DETACHES)
        else:
            self.qt_error("detach", shm)
        self.phase(PH_CALL, OP_DROP)
        self.arm()
        del shm
        self.disarm()
        return 0

    def attacher(self):
        while not self.stopping():
            self.park_point()
            shm = self.new_shm()
            self.attach_cycle(shm)
            # Destroying the object runs Qt's clean-up (semaphore handle and,
            # for an object that created them, the semaphore and key files).
            self.phase(PH_CALL, OP_DROP)
            self.arm()
            del shm
            self.disarm()
            self.phase(PH_IDLE, OP_NONE)
            time.sleep(self.rng.uniform(0, 0.002))
        return self.finish_code()

    def attach_cycle(self, shm):
        self.phase(PH_CALL, OP_ATTACH)
        self.arm()
        ok = shm.attach()
        self.disarm()
        self.phase(PH_IDLE, OP_NONE)
        if not ok:
            if self.err_kind(shm) == "NotFound" and self.a.expect_not_found:
                self.board.bump(R_EXPECTED)
            else:
                self.qt_error("attach", shm)
            time.sleep(0.002)
            return
        self.board.bump(R_ATTACHES)
        if shm.size() < SEG_LEN:
            self.unexpected("attach", f"InvalidSize Qt{self.major}: the segment has {shm.size()} bytes")
            self.detach(shm, None)
            return
        seg = Segment(self.major, shm)
        att = {"base": None, "ops": 0}
        for _ in range(self.rng.randint(1, 4)):
            if not self.locked_op(shm, seg, att):
                break
            if self.rng.random() < 0.5:
                time.sleep(self.rng.uniform(0, 0.0005))
        self.park_point()
        self.detach(shm, seg)

    def detach(self, shm, seg):
        if seg is not None:
            seg.release()
        self.phase(PH_CALL, OP_DETACH)
        self.arm()
        ok = shm.detach()
        self.disarm()
        self.phase(PH_IDLE, OP_NONE)
        if ok:
            self.board.bump(R_DETACHES)
        else:
            self.qt_error("detach", shm)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--qt", choices=["5", "6"], required=True)
    p.add_argument("--role", choices=["anchor", "attacher"], required=True)
    p.add_argument("--backend", choices=["sysv", "posix"], required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--key-dir", required=True)
    p.add_argument("--board", required=True)
    p.add_argument("--seat", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--deadline-ms", type=int, required=True)
    p.add_argument("--hang-ms", type=int, required=True)
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--expect-not-found", action="store_true")
    a = p.parse_args()
    if a.backend == "posix" and a.qt == "5":
        log("ERROR setup KeyError Qt 5 has no POSIX native keys in this build; use --qt 6")
        return EXIT_SETUP
    if os.getppid() == 1:
        log("ERROR setup Unknown the coordinator is gone")
        return EXIT_SETUP
    peer = Peer(a)
    code = peer.anchor() if a.role == "anchor" else peer.attacher()
    peer.phase(PH_DONE, OP_NONE)
    return code


if __name__ == "__main__":
    sys.exit(main())
