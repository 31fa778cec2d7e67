//! The two shared layouts of the suite.
//!
//! **The segment** (qipc's shared memory, written only under its lock), all
//! words native-endian `u64`:
//!
//! | offset | field |
//! |---|---|
//! | 0 | holder pid (0 = nobody is inside the critical section) |
//! | 8 | holder start time (`/proc/<pid>/stat` field 22) |
//! | 16 | global counter |
//! | 64 + 8 i | slot i (increments by the seat that owns slot i) |
//!
//! **The board** (a plain file in the run directory, mapped by every worker
//! and Qt peer): how workers report their counts to the coordinator in a way
//! that survives SIGKILL. `stress/qt/storm_peer.py` repeats these constants;
//! [`BOARD_MAGIC`] guards against the two drifting apart.

#![forbid(unsafe_code)]

use std::{io, path::Path, sync::atomic::Ordering};

use crate::sys::MappedFile;

// ---- segment -------------------------------------------------------------

/// Offset of the holder pid.
pub const SEG_HOLDER_PID: usize = 0;
/// Offset of the holder's start time.
pub const SEG_HOLDER_START: usize = 8;
/// Offset of the global counter.
pub const SEG_COUNTER: usize = 16;
/// Offset of slot 0.
pub const SEG_SLOTS: usize = 64;
/// Number of slots.
pub const SLOTS: usize = 128;
/// Bytes a segment needs for this layout.
pub const SEG_LEN: usize = SEG_SLOTS + 8 * SLOTS;
/// Fork children count in slot `seat + FORK_CHILD_SLOT_BASE`.
pub const FORK_CHILD_SLOT_BASE: usize = 64;

// ---- board -----------------------------------------------------------------

/// Word 0 of the board: "QIPCSTR" + layout version 2.
pub const BOARD_MAGIC: u64 = 0x5149_5043_5354_5202;
/// Set to 1 by the coordinator: churners finish (final check, detach, exit 0).
pub const B_STOP: usize = 8;
/// Set to 1 after the churners have gone: anchors finish.
pub const B_ANCHOR_STOP: usize = 16;
/// Number of pids written to the killed ring so far.
pub const B_KILLED_COUNT: usize = 24;
/// Number of pids written to the pid registry so far.
pub const B_PIDS_COUNT: usize = 32;
/// The killed ring: the processes the coordinator is about to SIGKILL
/// (written before the kill), so that a worker finding one as holder while
/// the kernel is still tearing it down does not count a violation. Each
/// entry is a u64: pid in the low 32 bits, the low 32 bits of its start time
/// (`/proc/<pid>/stat` field 22) in the high 32 bits, so a re-used pid does
/// not match.
pub const B_KILLED: usize = 4096;
/// Entries in the killed ring.
pub const KILLED_LEN: usize = 4096;
/// The pid registry: u32 pids of processes the coordinator did not start
/// itself (forked children), for attributing leftovers to this run.
pub const B_PIDS: usize = B_KILLED + 8 * KILLED_LEN;
/// Entries in the pid registry.
pub const PIDS_LEN: usize = 65536;
/// Seat records.
pub const B_SEATS: usize = B_PIDS + 4 * PIDS_LEN;
/// Bytes per seat record.
pub const SEAT_BYTES: usize = 256;
/// Seat records (fork children use `seat + FORK_CHILD_SLOT_BASE`).
pub const SEATS: usize = SLOTS;
/// Size of the board file.
pub const BOARD_LEN: usize = B_SEATS + SEAT_BYTES * SEATS;

/// Word indexes in a seat record.
pub mod rec {
    /// pid of the current occupant
    pub const PID: usize = 0;
    /// [`super::Phase`]
    pub const PHASE: usize = 1;
    /// [`super::Op`] in progress (for hang reports)
    pub const OP: usize = 2;
    /// coordinator: please park at the next safe point (then you are killed)
    pub const PARK: usize = 3;
    /// locked increments
    pub const OPS: usize = 4;
    /// mutual-exclusion violations (a live holder, or the holder changed under us)
    pub const VIOLATIONS: usize = 5;
    /// lost or torn updates without a dead holder
    pub const LOST: usize = 6;
    /// dead holders found (and repaired)
    pub const DEAD_HOLDERS: usize = 7;
    /// mappings of removed objects
    pub const REMOVED_MAPS: usize = 8;
    /// hangs detected by the worker itself (lock time-out, stuck child)
    pub const HANGS: usize = 9;
    /// unexpected errors
    pub const ERRORS: usize = 10;
    /// expected errors (AlreadyExists from create, NotFound from attach)
    pub const EXPECTED: usize = 11;
    /// successful creates
    pub const CREATES: usize = 12;
    /// successful attaches
    pub const ATTACHES: usize = 13;
    /// detaches (explicit)
    pub const DETACHES: usize = 14;
    /// handles dropped while attached
    pub const DROPS: usize = 15;
    /// handles re-used after a detach
    pub const REUSES: usize = 16;
    /// forks
    pub const FORKS: usize = 17;
    /// fork children whose updates were lost (subset of LOST)
    pub const FORK_LOST: usize = 18;
    /// panics of fork children
    pub const CHILD_PANICS: usize = 19;
    /// fork children that died of a signal other than SIGKILL/SIGALRM
    pub const CHILD_CRASHES: usize = 20;
    /// heartbeat: incremented every loop
    pub const BEAT: usize = 21;
}

/// What a worker is doing (seat word [`rec::PHASE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Phase {
    /// not started / between operations (a safe point)
    Idle = 0,
    /// inside a qipc call other than lock (create, attach, detach, drop)
    InCall = 1,
    /// waiting for the lock
    Locking = 2,
    /// holding the lock
    Holding = 3,
    /// parked at a safe point, waiting to be killed
    Parked = 4,
    /// anchor: segment created, ready for churners
    Ready = 5,
    /// finished
    Done = 6,
}

impl Phase {
    /// From the board word.
    pub fn from_word(w: u64) -> Phase {
        match w {
            1 => Phase::InCall,
            2 => Phase::Locking,
            3 => Phase::Holding,
            4 => Phase::Parked,
            5 => Phase::Ready,
            6 => Phase::Done,
            _ => Phase::Idle,
        }
    }
}

/// The operation in progress (seat word [`rec::OP`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum Op {
    /// none
    None = 0,
    /// `create`
    Create = 1,
    /// `attach`
    Attach = 2,
    /// `detach`
    Detach = 3,
    /// drop of an attached handle
    Drop = 4,
    /// `lock`
    Lock = 5,
    /// inside the critical section
    Critical = 6,
    /// waiting for a fork child
    ForkWait = 7,
    /// a forked child's work
    Child = 8,
}

impl Op {
    /// From the board word.
    pub fn from_word(w: u64) -> Op {
        match w {
            1 => Op::Create,
            2 => Op::Attach,
            3 => Op::Detach,
            4 => Op::Drop,
            5 => Op::Lock,
            6 => Op::Critical,
            7 => Op::ForkWait,
            8 => Op::Child,
            _ => Op::None,
        }
    }

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Op::None => "(between operations)",
            Op::Create => "create",
            Op::Attach => "attach",
            Op::Detach => "detach",
            Op::Drop => "drop",
            Op::Lock => "lock",
            Op::Critical => "critical section",
            Op::ForkWait => "waiting for fork child",
            Op::Child => "fork child",
        }
    }
}

/// The board of one storm.
#[derive(Debug)]
pub struct Board {
    map: MappedFile,
}

impl Board {
    /// Creates a zeroed board (coordinator).
    pub fn create(path: &Path) -> io::Result<Board> {
        let map = MappedFile::create(path, BOARD_LEN)?;
        map.u64_at(0).store(BOARD_MAGIC, Ordering::SeqCst);
        Ok(Board { map })
    }

    /// Opens an existing board (worker).
    pub fn open(path: &Path) -> io::Result<Board> {
        let map = MappedFile::open(path, BOARD_LEN)?;
        let magic = map.u64_at(0).load(Ordering::SeqCst);
        if magic != BOARD_MAGIC {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("board magic {magic:#x}")));
        }
        Ok(Board { map })
    }

    /// A header word.
    pub fn word(&self, off: usize) -> u64 {
        self.map.u64_at(off).load(Ordering::SeqCst)
    }

    /// Sets a header word.
    pub fn set_word(&self, off: usize, v: u64) {
        self.map.u64_at(off).store(v, Ordering::SeqCst);
    }

    /// A seat word.
    pub fn seat(&self, seat: usize, word: usize) -> u64 {
        self.map.u64_at(seat_off(seat, word)).load(Ordering::SeqCst)
    }

    /// Sets a seat word.
    pub fn set_seat(&self, seat: usize, word: usize, v: u64) {
        self.map.u64_at(seat_off(seat, word)).store(v, Ordering::SeqCst);
    }

    /// Adds to a seat counter.
    pub fn bump(&self, seat: usize, word: usize, by: u64) {
        self.map.u64_at(seat_off(seat, word)).fetch_add(by, Ordering::SeqCst);
    }

    /// Zeroes a seat record (coordinator, after harvesting it).
    pub fn clear_seat(&self, seat: usize) {
        for w in 0..SEAT_BYTES / 8 {
            self.set_seat(seat, w, 0);
        }
    }

    /// Appends a process to the killed ring (coordinator, before the kill).
    pub fn note_killed(&self, pid: u32, start: u64) {
        let n = self.map.u64_at(B_KILLED_COUNT).load(Ordering::SeqCst) as usize;
        self.map.u64_at(B_KILLED + 8 * (n % KILLED_LEN)).store(killed_entry(pid, start), Ordering::SeqCst);
        self.map.u64_at(B_KILLED_COUNT).store(n as u64 + 1, Ordering::SeqCst);
    }

    /// Was this process (pid and start time) killed by the coordinator?
    pub fn was_killed(&self, pid: u32, start: u64) -> bool {
        let n = (self.word(B_KILLED_COUNT) as usize).min(KILLED_LEN);
        let entry = killed_entry(pid, start);
        (0..n).any(|i| self.map.u64_at(B_KILLED + 8 * i).load(Ordering::SeqCst) == entry)
    }

    /// Records a pid started outside the coordinator (a fork child).
    pub fn register_pid(&self, pid: u32) {
        let n = self.map.u64_at(B_PIDS_COUNT).fetch_add(1, Ordering::SeqCst) as usize;
        self.map.u32_at(B_PIDS + 4 * (n % PIDS_LEN)).store(pid, Ordering::SeqCst);
    }

    /// The registered pids (the most recent [`PIDS_LEN`]).
    pub fn registered_pids(&self) -> Vec<u32> {
        let n = (self.word(B_PIDS_COUNT) as usize).min(PIDS_LEN);
        (0..n).map(|i| self.map.u32_at(B_PIDS + 4 * i).load(Ordering::SeqCst)).filter(|&p| p != 0).collect()
    }
}

fn killed_entry(pid: u32, start: u64) -> u64 {
    ((start & 0xffff_ffff) << 32) | u64::from(pid)
}

fn seat_off(seat: usize, word: usize) -> usize {
    assert!(seat < SEATS && word < SEAT_BYTES / 8, "seat {seat} word {word}");
    B_SEATS + seat * SEAT_BYTES + word * 8
}
