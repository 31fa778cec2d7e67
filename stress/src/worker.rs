//! The worker processes: the coordinator re-executes its own binary as
//! `qipc-stress worker --role ...`. A worker only uses qipc's public API and
//! reports through the board (see `board.rs`) and its log (stdout/stderr,
//! redirected by the coordinator to a file).
//!
//! Every locked increment runs the same checks (`Worker::locked_op`):
//! 1. read the holder field: a live holder (not one the coordinator killed)
//!    is a **mutual-exclusion violation**; a dead one is a **dead holder**
//!    (expected after kills), repaired by resyncing the counter;
//! 2. the counter must equal the sum of the slots, and our own slot must
//!    equal what we wrote since we attached: otherwise a **lost or torn
//!    update** without a dead holder;
//! 3. write our pid, increment our slot and the counter, linger a little;
//! 4. our mappings must all be reachable by name (**mappings of removed
//!    objects**);
//! 5. re-read the holder: it must still be us (else a violation), clear it.
//!
//! A worker never blocks without a limit: `lock_timeout` bounds the lock,
//! and an interval timer (SIGALRM, default action: terminate) bounds every
//! other qipc call; both count as hangs.

#![forbid(unsafe_code)]

use std::{
    collections::HashSet,
    io::Write,
    path::PathBuf,
    time::{Duration, Instant, SystemTime},
};

use qipc::{AccessMode, ErrorKind, SharedMemory};

use crate::{
    board::{self, rec, Board, Op, Phase, FORK_CHILD_SLOT_BASE, SEG_LEN, SLOTS},
    keys::{Backend, StormKey},
    procfs,
    rng::Rng,
    sys,
};

/// Exit status: bad arguments or setup (board, first create) failed.
pub const EXIT_SETUP: i32 = 2;
/// Exit status: the worker detected a hang (counted on the board).
pub const EXIT_HANG: i32 = 3;
/// Exit status: the worker's deadline passed before it was told to stop.
pub const EXIT_DEADLINE: i32 = 4;

/// Extra time the SIGALRM backstop allows beyond the hang limit.
const ALARM_MARGIN: Duration = Duration::from_secs(5);
/// At most this many error lines per process in the log.
const MAX_ERROR_LINES: u32 = 20;

/// What a worker does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Creates the segment, stays attached until told to stop, then checks
    /// the totals once more.
    Anchor,
    /// Attaches once and loops lock/increment/unlock (kill storm).
    Counter,
    /// Create-or-attach, a few increments, then detach / drop / keep /
    /// reuse / exit at random (creator storm, mixed churners).
    Churn,
    /// Create-or-attach, at most one increment, detach at once: the last
    /// detacher's removal races the next create/attach.
    Flicker,
    /// Attach, increment, fork; the child uses the inherited handle while
    /// the parent detaches.
    Fork,
}

impl Role {
    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Role::Anchor => "anchor",
            Role::Counter => "counter",
            Role::Churn => "churn",
            Role::Flicker => "flicker",
            Role::Fork => "fork",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        [Role::Anchor, Role::Counter, Role::Churn, Role::Flicker, Role::Fork].into_iter().find(|r| r.name() == s)
    }
}

/// A worker's command line.
#[derive(Debug, Clone)]
pub struct WorkerArgs {
    /// The role.
    pub role: Role,
    /// The key.
    pub key: StormKey,
    /// The directory of the System V key files (the worker's TMPDIR).
    pub key_dir: PathBuf,
    /// The board file.
    pub board: PathBuf,
    /// The seat (record and slot index).
    pub seat: usize,
    /// Random seed.
    pub seed: u64,
    /// Absolute deadline, milliseconds since the epoch.
    pub deadline_ms: u64,
    /// A lock wait longer than this is a hang.
    pub hang: Duration,
    /// Segment size for create.
    pub size: usize,
    /// Is NotFound from attach expected (no anchor keeps the segment)?
    pub expect_not_found: bool,
}

impl WorkerArgs {
    /// The command-line arguments (after `worker`).
    pub fn to_args(&self) -> Vec<String> {
        let mut v = vec![
            "--role".into(),
            self.role.name().into(),
            "--backend".into(),
            self.key.backend.name().into(),
            "--key".into(),
            self.key.text.clone(),
            "--key-dir".into(),
            self.key_dir.display().to_string(),
            "--board".into(),
            self.board.display().to_string(),
            "--seat".into(),
            self.seat.to_string(),
            "--seed".into(),
            self.seed.to_string(),
            "--deadline-ms".into(),
            self.deadline_ms.to_string(),
            "--hang-ms".into(),
            self.hang.as_millis().to_string(),
            "--size".into(),
            self.size.to_string(),
        ];
        if self.expect_not_found {
            v.push("--expect-not-found".into());
        }
        v
    }

    /// Parses [`WorkerArgs::to_args`].
    pub fn parse(args: &[String]) -> Result<WorkerArgs, String> {
        let mut role = None;
        let mut backend = None;
        let mut key = None;
        let mut key_dir = None;
        let mut board = None;
        let (mut seat, mut seed, mut deadline_ms, mut hang_ms, mut size) = (None, 0, None, None, None);
        let mut expect_not_found = false;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut val = || it.next().cloned().ok_or_else(|| format!("{a} needs a value"));
            let num = |s: String| s.parse::<u64>().map_err(|_| format!("{a}: not a number: {s}"));
            match a.as_str() {
                "--role" => role = Some(Role::parse(&val()?).ok_or("unknown role")?),
                "--backend" => backend = Some(Backend::parse(&val()?).ok_or("unknown backend")?),
                "--key" => key = Some(val()?),
                "--key-dir" => key_dir = Some(PathBuf::from(val()?)),
                "--board" => board = Some(PathBuf::from(val()?)),
                "--seat" => seat = Some(num(val()?)? as usize),
                "--seed" => seed = num(val()?)?,
                "--deadline-ms" => deadline_ms = Some(num(val()?)?),
                "--hang-ms" => hang_ms = Some(num(val()?)?),
                "--size" => size = Some(num(val()?)? as usize),
                "--expect-not-found" => expect_not_found = true,
                other => return Err(format!("unknown worker argument {other}")),
            }
        }
        let backend = backend.ok_or("--backend missing")?;
        let seat = seat.ok_or("--seat missing")?;
        if seat >= FORK_CHILD_SLOT_BASE {
            return Err(format!("--seat {seat}: at most {FORK_CHILD_SLOT_BASE} seats"));
        }
        let size = size.ok_or("--size missing")?;
        if size < SEG_LEN {
            return Err(format!("--size {size}: the layout needs {SEG_LEN} bytes"));
        }
        Ok(WorkerArgs {
            role: role.ok_or("--role missing")?,
            key: StormKey::from_parts(backend, &key.ok_or("--key missing")?),
            key_dir: key_dir.ok_or("--key-dir missing")?,
            board: board.ok_or("--board missing")?,
            seat,
            seed,
            deadline_ms: deadline_ms.ok_or("--deadline-ms missing")?,
            hang: Duration::from_millis(hang_ms.ok_or("--hang-ms missing")?),
            size,
            expect_not_found,
        })
    }
}

/// Entry point of `qipc-stress worker ...`; never returns.
pub fn main(args: &[String]) -> ! {
    let args = match WorkerArgs::parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("qipc-stress worker: {e}");
            std::process::exit(EXIT_SETUP);
        }
    };
    // The coordinator asked for SIGKILL at its death (PR_SET_PDEATHSIG, set
    // before exec); if it is already gone, do not start.
    if sys::getppid() == 1 {
        eprintln!("qipc-stress worker: the coordinator is gone");
        std::process::exit(EXIT_SETUP);
    }
    let mut w = match Worker::new(args) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("qipc-stress worker: setup: {e}");
            std::process::exit(EXIT_SETUP);
        }
    };
    let code = w.run();
    w.set_phase(Phase::Done, Op::None);
    std::process::exit(code)
}

/// Who holds the lock, as written into the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Holder {
    pid: u64,
    start: u64,
}

/// What we know about our own slot since we attached.
#[derive(Debug, Default, Clone, Copy)]
struct Attachment {
    /// Our slot's value at the first lock after attaching.
    base: Option<u64>,
    /// Increments since then.
    ops: u64,
}

impl Attachment {
    fn expected_slot(&self) -> Option<u64> {
        self.base.map(|b| b + self.ops)
    }
}

/// How a locked operation ended.
#[derive(Debug, PartialEq, Eq)]
enum Done {
    Ok,
    /// An unexpected error (already counted and logged); drop the handle.
    Failed,
}

/// Disarms the SIGALRM backstop when dropped.
struct Alarm;

impl Alarm {
    fn arm(after: Duration) -> Alarm {
        if let Err(e) = sys::set_alarm(Some(after)) {
            // Without the backstop a stuck call could outlive its deadline;
            // the coordinator's per-process deadline still catches it.
            eprintln!("setitimer failed: {e}");
        }
        Alarm
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        let _ = sys::set_alarm(None);
    }
}

struct Worker {
    a: WorkerArgs,
    board: Board,
    /// The record our counts go to (the seat; a fork child's own record).
    record: usize,
    /// Our slot in the segment.
    slot: usize,
    rng: Rng,
    deadline: SystemTime,
    me: Holder,
    /// Removed mappings already reported by this process.
    reported_maps: HashSet<String>,
    error_lines: u32,
    /// SysV: the segment's key file.
    key_file: PathBuf,
}

impl Worker {
    fn new(a: WorkerArgs) -> std::io::Result<Worker> {
        let board = Board::open(&a.board)?;
        let me = holder_of_self()?;
        let deadline = SystemTime::UNIX_EPOCH + Duration::from_millis(a.deadline_ms);
        let key_file = a.key.sysv_key_file(&a.key_dir);
        let w = Worker {
            board,
            record: a.seat,
            slot: a.seat,
            rng: Rng::new(a.seed),
            deadline,
            me,
            reported_maps: HashSet::new(),
            error_lines: 0,
            key_file,
            a,
        };
        w.board.set_seat(w.record, rec::PID, me.pid);
        Ok(w)
    }

    fn run(&mut self) -> i32 {
        match self.a.role {
            Role::Anchor => self.anchor(),
            Role::Counter => self.counter(),
            Role::Churn => self.churn(),
            Role::Flicker => self.flicker(),
            Role::Fork => self.forker(),
        }
    }

    // ---- roles ---------------------------------------------------------

    fn anchor(&mut self) -> i32 {
        let mut shm = self.a.key.handle();
        let size = self.a.size;
        let created = self.call(Op::Create, true, || shm.create(size, AccessMode::ReadWrite));
        if let Err(e) = created {
            self.unexpected("create", &e);
            return EXIT_SETUP;
        }
        self.board.bump(self.record, rec::CREATES, 1);
        self.set_phase(Phase::Ready, Op::None);
        while self.board.word(board::B_ANCHOR_STOP) == 0 {
            if self.past_deadline() {
                return EXIT_DEADLINE;
            }
            self.beat();
            std::thread::sleep(Duration::from_millis(5));
        }
        // The churners are gone: one last locked check of the totals.
        let mut att = Attachment::default();
        let _ = self.locked_op(&shm, &mut att);
        self.detach(&mut shm);
        0
    }

    fn counter(&mut self) -> i32 {
        let mut shm = self.a.key.handle();
        while !self.attach_only(&mut shm) {
            if self.stopping() {
                return self.finish_code();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let mut att = Attachment::default();
        while !self.stopping() {
            self.park_point();
            if self.locked_op(&shm, &mut att) == Done::Failed {
                std::thread::sleep(Duration::from_millis(1));
            }
            self.outside_delay();
        }
        self.detach(&mut shm);
        self.finish_code()
    }

    fn churn(&mut self) -> i32 {
        let mut handle: Option<SharedMemory> = None;
        let mut att = Attachment::default();
        let mut used_before = false;
        while !self.stopping() {
            self.park_point();
            let shm = handle.get_or_insert_with(|| self.a.key.handle());
            if !shm.is_attached() {
                if !self.create_or_attach(shm) {
                    self.retry_pause();
                    continue;
                }
                if used_before {
                    self.board.bump(self.record, rec::REUSES, 1);
                }
                used_before = true;
                att = Attachment::default();
            }
            let mut failed = false;
            for _ in 0..self.rng.range(1, 6) {
                if self.locked_op(shm, &mut att) == Done::Failed {
                    failed = true;
                    break;
                }
                self.outside_delay();
            }
            self.park_point();
            if failed {
                self.drop_handle(handle.take());
                used_before = false;
                continue;
            }
            // detach+reuse, detach+new handle, drop attached, keep, exit (0.5 %:
            // about 10 processes a second, so pids do not wrap in a long storm)
            match self.rng.weighted(&[300, 200, 200, 295, 5]) {
                0 => {
                    if !self.detach(shm) {
                        self.drop_handle(handle.take());
                        used_before = false;
                    }
                }
                1 => {
                    self.detach(shm);
                    self.drop_handle(handle.take());
                    used_before = false;
                }
                2 => {
                    self.drop_handle(handle.take());
                    used_before = false;
                }
                3 => continue,
                _ => {
                    self.drop_handle(handle.take());
                    return 0;
                }
            }
            // Stay detached for a while (about as long as a cycle takes
            // attached), so that now and then every churner is detached at
            // once and the last detacher removes the segment: without an
            // anchor it is destroyed and re-created all the time.
            self.park_point();
            std::thread::sleep(self.rng.micros(0, 2000));
        }
        if let Some(mut shm) = handle {
            if shm.is_attached() {
                self.detach(&mut shm);
            }
        }
        self.finish_code()
    }

    fn flicker(&mut self) -> i32 {
        let mut handle: Option<SharedMemory> = None;
        while !self.stopping() {
            let shm = handle.get_or_insert_with(|| self.a.key.handle());
            if !self.create_or_attach(shm) {
                continue;
            }
            let mut ok = true;
            if self.rng.chance(70) {
                let mut att = Attachment::default();
                ok = self.locked_op(shm, &mut att) == Done::Ok;
            }
            if ok && self.rng.chance(70) {
                if !self.detach(shm) {
                    self.drop_handle(handle.take());
                } else if self.rng.chance(50) {
                    handle = None;
                } else {
                    self.board.bump(self.record, rec::REUSES, 1);
                }
            } else {
                self.drop_handle(handle.take());
            }
        }
        if let Some(mut shm) = handle {
            if shm.is_attached() {
                self.detach(&mut shm);
            }
        }
        self.finish_code()
    }

    fn forker(&mut self) -> i32 {
        while !self.stopping() {
            let mut shm = self.a.key.handle();
            if !self.create_or_attach(&mut shm) {
                self.retry_pause();
                continue;
            }
            let mut att = Attachment::default();
            if self.locked_op(&shm, &mut att) == Done::Failed {
                self.drop_handle(Some(shm));
                continue;
            }
            let _ = std::io::stdout().flush();
            let _ = std::io::stderr().flush();
            // The worker never starts a thread, so the child is a full copy.
            match sys::fork_single_threaded() {
                Err(e) => {
                    self.log(&format!("ERROR fork Unknown fork failed: {e}"));
                    self.board.bump(self.record, rec::ERRORS, 1);
                    self.detach(&mut shm);
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(sys::Forked::Child) => self.fork_child(shm),
                Ok(sys::Forked::Parent(pid)) => {
                    self.board.register_pid(pid);
                    self.board.bump(self.record, rec::FORKS, 1);
                    if self.rng.chance(50) {
                        std::thread::sleep(self.rng.micros(0, 300));
                    }
                    self.detach(&mut shm);
                    drop(shm);
                    self.reap_fork_child(pid);
                }
            }
        }
        self.finish_code()
    }

    /// The forked child: a few increments through the inherited handle into
    /// its own slot, then a check by name that they are visible, then detach.
    fn fork_child(&mut self, mut shm: SharedMemory) -> ! {
        if let Err(e) = sys::set_alarm(Some(self.a.hang + ALARM_MARGIN)) {
            // The parent still bounds its wait for this child.
            self.log(&format!("WARNING fork child without its SIGALRM backstop: {e}"));
        }
        match holder_of_self() {
            Ok(me) => self.me = me,
            Err(e) => {
                self.log(&format!("ERROR fork-child Unknown /proc/self/stat: {e}"));
                sys::exit_now(EXIT_SETUP);
            }
        }
        self.board.register_pid(self.me.pid as u32);
        self.record = self.a.seat + FORK_CHILD_SLOT_BASE;
        self.slot = self.record;
        self.reported_maps.clear();
        let mut att = Attachment::default();
        if self.rng.chance(50) {
            std::thread::sleep(self.rng.micros(0, 300));
        }
        for _ in 0..self.rng.range(1, 3) {
            if self.locked_op_inner(&shm, &mut att, false) == Done::Failed {
                break;
            }
        }
        if let Some(expected) = att.expected_slot() {
            self.check_child_visible(expected);
        }
        self.detach_inner(&mut shm, false);
        let _ = std::io::stdout().flush();
        sys::exit_now(0)
    }

    /// While the child still maps the segment, a new handle that attaches
    /// by name must see the child's slot as the child left it.
    fn check_child_visible(&mut self, expected: u64) {
        let mut other = self.a.key.handle();
        match other.attach(AccessMode::ReadWrite) {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                self.fork_lost(&format!("attach by name: NotFound ({e}) while the child still maps the segment"));
                return;
            }
            Err(e) => {
                self.unexpected("attach/fork-child-check", &e);
                return;
            }
            Ok(()) => {}
        }
        match other.lock_timeout(self.a.hang) {
            Ok(Some(guard)) => {
                let mut word = [0u8; 8];
                match guard.read_at(board::SEG_SLOTS + 8 * self.slot, &mut word) {
                    Ok(()) => {
                        let seen = u64::from_ne_bytes(word);
                        if seen != expected {
                            self.fork_lost(&format!(
                                "slot {} by name is {seen}, the child wrote {expected} (another segment)",
                                self.slot
                            ));
                        }
                    }
                    Err(e) => self.unexpected("read/fork-child-check", &e),
                }
                if let Err(e) = guard.unlock() {
                    self.unexpected("unlock/fork-child-check", &e);
                }
            }
            Ok(None) => self.hang_detected(Op::Lock, "fork child check: lock by name"),
            Err(e) => self.unexpected("lock/fork-child-check", &e),
        }
        if let Err(e) = other.detach() {
            self.unexpected("detach/fork-child-check", &e);
        }
    }

    fn fork_lost(&mut self, what: &str) {
        self.board.bump(self.record, rec::FORK_LOST, 1);
        self.board.bump(self.record, rec::LOST, 1);
        self.event("fork-lost", what);
    }

    fn reap_fork_child(&mut self, pid: u32) {
        self.set_phase(Phase::InCall, Op::ForkWait);
        let limit = Instant::now() + self.a.hang + ALARM_MARGIN + Duration::from_secs(2);
        let ended = loop {
            match sys::waitpid(pid, false) {
                Ok(Some(e)) => break Some(e),
                Ok(None) if Instant::now() < limit => std::thread::sleep(Duration::from_micros(200)),
                Ok(None) => {
                    let _ = sys::kill(pid, libc::SIGKILL);
                    self.board.bump(self.record, rec::HANGS, 1);
                    self.event("hang", &format!("fork child {pid} did not finish; killed"));
                    break sys::waitpid(pid, true).ok().flatten().map(|_| sys::Ended::Signaled(libc::SIGKILL));
                }
                Err(e) => {
                    self.log(&format!("ERROR waitpid Unknown fork child {pid}: {e}"));
                    self.board.bump(self.record, rec::ERRORS, 1);
                    break None;
                }
            }
        };
        self.set_phase(Phase::Idle, Op::None);
        match ended {
            Some(sys::Ended::Exited(0)) | Some(sys::Ended::Exited(EXIT_HANG)) | None => {}
            Some(sys::Ended::Signaled(libc::SIGKILL)) => {} // our own kill above
            Some(sys::Ended::Exited(101)) => self.board.bump(self.record, rec::CHILD_PANICS, 1),
            Some(sys::Ended::Signaled(libc::SIGALRM)) => {
                self.board.bump(self.record, rec::HANGS, 1);
                self.event("hang", &format!("fork child {pid} stuck in a qipc call (SIGALRM)"));
            }
            Some(sys::Ended::Exited(code)) => {
                self.board.bump(self.record, rec::ERRORS, 1);
                self.log(&format!("ERROR fork-child Unknown fork child {pid} exited with status {code}"));
            }
            Some(sys::Ended::Signaled(sig)) => {
                self.board.bump(self.record, rec::CHILD_CRASHES, 1);
                self.event("crash", &format!("fork child {pid} died of signal {sig}"));
            }
        }
    }

    // ---- qipc calls, each bounded --------------------------------------

    /// Create, else attach (Qt's idiom). False on an expected race (the
    /// caller retries) or after an unexpected error (counted).
    fn create_or_attach(&mut self, shm: &mut SharedMemory) -> bool {
        let size = self.a.size;
        let created = self.call(Op::Create, true, || shm.create(size, AccessMode::ReadWrite));
        match created {
            Ok(()) => {
                self.board.bump(self.record, rec::CREATES, 1);
                return self.check_size(shm);
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => self.board.bump(self.record, rec::EXPECTED, 1),
            Err(e) => {
                self.unexpected("create", &e);
                return false;
            }
        }
        self.attach_only(shm)
    }

    fn attach_only(&mut self, shm: &mut SharedMemory) -> bool {
        let attached = self.call(Op::Attach, true, || shm.attach(AccessMode::ReadWrite));
        match attached {
            Ok(()) => {
                self.board.bump(self.record, rec::ATTACHES, 1);
                self.check_size(shm)
            }
            Err(e) if e.kind() == ErrorKind::NotFound && self.a.expect_not_found => {
                self.board.bump(self.record, rec::EXPECTED, 1);
                false
            }
            Err(e) => {
                self.unexpected("attach", &e);
                false
            }
        }
    }

    fn check_size(&mut self, shm: &mut SharedMemory) -> bool {
        let size = shm.size();
        if size >= SEG_LEN {
            return true;
        }
        self.board.bump(self.record, rec::ERRORS, 1);
        self.log(&format!("ERROR attach InvalidSize attached segment has {size} bytes, the layout needs {SEG_LEN}"));
        self.detach(shm);
        false
    }

    /// Detaches; false after an (unexpected) error, when the handle may
    /// still be attached and should be dropped.
    fn detach(&mut self, shm: &mut SharedMemory) -> bool {
        self.detach_inner(shm, true)
    }

    fn detach_inner(&mut self, shm: &mut SharedMemory, alarm: bool) -> bool {
        let r = self.call(Op::Detach, alarm, || shm.detach());
        match r {
            Ok(()) => {
                self.board.bump(self.record, rec::DETACHES, 1);
                true
            }
            Err(e) => {
                self.unexpected("detach", &e);
                false
            }
        }
    }

    fn drop_handle(&mut self, shm: Option<SharedMemory>) {
        let Some(shm) = shm else { return };
        if shm.is_attached() {
            self.board.bump(self.record, rec::DROPS, 1);
        }
        self.call(Op::Drop, true, move || drop(shm));
    }

    /// Runs one qipc call other than lock: marks it on the board, arms the
    /// SIGALRM backstop (unless the caller has one already), and counts a
    /// hang if it took longer than the hang limit even though it returned.
    fn call<T>(&mut self, op: Op, alarm: bool, f: impl FnOnce() -> T) -> T {
        self.set_phase(Phase::InCall, op);
        let started = Instant::now();
        let out = {
            let _alarm = alarm.then(|| Alarm::arm(self.a.hang + ALARM_MARGIN));
            f()
        };
        self.set_phase(Phase::Idle, Op::None);
        let took = started.elapsed();
        if took > self.a.hang {
            self.board.bump(self.record, rec::HANGS, 1);
            self.event("hang", &format!("{} took {:.1} s (returned)", op.name(), took.as_secs_f64()));
        }
        out
    }

    // ---- the locked increment ------------------------------------------

    fn locked_op(&mut self, shm: &SharedMemory, att: &mut Attachment) -> Done {
        self.locked_op_inner(shm, att, true)
    }

    fn locked_op_inner(&mut self, shm: &SharedMemory, att: &mut Attachment, alarm: bool) -> Done {
        self.beat();
        let _alarm = alarm.then(|| Alarm::arm(self.a.hang + ALARM_MARGIN));
        self.set_phase(Phase::Locking, Op::Lock);
        let started = Instant::now();
        let mut guard = match shm.lock_timeout(self.a.hang) {
            Ok(Some(g)) => g,
            Ok(None) => {
                self.hang_detected(Op::Lock, &format!("lock not acquired in {:.1} s", started.elapsed().as_secs_f64()))
            }
            Err(e) => {
                self.set_phase(Phase::Idle, Op::None);
                self.unexpected("lock", &e);
                return Done::Failed;
            }
        };
        self.set_phase(Phase::Holding, Op::Critical);

        let mut seg = [0u8; SEG_LEN];
        if let Err(e) = guard.read_at(0, &mut seg) {
            drop(guard);
            self.set_phase(Phase::Idle, Op::None);
            self.unexpected("read", &e);
            return Done::Failed;
        }
        let word = |seg: &[u8; SEG_LEN], off: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&seg[off..off + 8]);
            u64::from_ne_bytes(b)
        };
        let holder = Holder { pid: word(&seg, board::SEG_HOLDER_PID), start: word(&seg, board::SEG_HOLDER_START) };
        let counter = word(&seg, board::SEG_COUNTER);
        let slots: Vec<u64> = (0..SLOTS).map(|i| word(&seg, board::SEG_SLOTS + 8 * i)).collect();

        let mut violation: Option<String> = None;
        let mut dead_holder = false;
        if holder.pid != 0 {
            let pid = u32::try_from(holder.pid).unwrap_or(0);
            if procfs::alive(pid, holder.start) && !self.board.was_killed(pid, holder.start) && holder != self.me {
                violation = Some(format!("pid {pid} holds the lock too (its holder mark is set and it is alive)"));
            } else {
                dead_holder = true;
                self.board.bump(self.record, rec::DEAD_HOLDERS, 1);
            }
        }
        let mut mark = [0u8; 16];
        mark[..8].copy_from_slice(&self.me.pid.to_ne_bytes());
        mark[8..].copy_from_slice(&self.me.start.to_ne_bytes());
        let mut failed = guard.write_at(board::SEG_HOLDER_PID, &mark).err();

        let sum = slots.iter().fold(0u64, |a, b| a.wrapping_add(*b));
        let mut counter = counter;
        if counter != sum {
            if !dead_holder && violation.is_none() {
                self.board.bump(self.record, rec::LOST, 1);
                self.event("lost", &format!("counter {counter} != sum of slots {sum}, no dead holder"));
            }
            counter = sum; // resync, so that one fault counts once
        }
        let mine = slots[self.slot];
        match att.expected_slot() {
            None => att.base = Some(mine),
            Some(expected) if expected != mine => {
                if violation.is_none() {
                    self.board.bump(self.record, rec::LOST, 1);
                    self.event(
                        "lost",
                        &format!("own slot {} is {mine}, expected {expected} since this attach", self.slot),
                    );
                }
                att.base = Some(mine.wrapping_sub(att.ops));
            }
            Some(_) => {}
        }
        // Slot first, then counter: a holder killed in between leaves the
        // counter one behind, which the next holder repairs from the slots.
        failed = failed.or(guard.write_at(board::SEG_SLOTS + 8 * self.slot, &(mine + 1).to_ne_bytes()).err());
        failed = failed.or(guard.write_at(board::SEG_COUNTER, &(counter + 1).to_ne_bytes()).err());
        if failed.is_none() {
            att.ops += 1;
            self.board.bump(self.record, rec::OPS, 1);
        }
        self.in_lock_delay();
        self.check_mappings();

        let mut again = [0u8; 16];
        match guard.read_at(board::SEG_HOLDER_PID, &mut again) {
            Ok(()) if again != mark => {
                let pid = u64::from_ne_bytes(again[..8].try_into().unwrap_or([0; 8]));
                violation.get_or_insert(format!("the holder mark changed to pid {pid} while we held the lock"));
            }
            Ok(()) => {}
            Err(e) => failed = failed.or(Some(e)),
        }
        failed = failed.or(guard.write_at(board::SEG_HOLDER_PID, &[0u8; 16]).err());
        let unlocked = guard.unlock();
        self.set_phase(Phase::Idle, Op::None);
        if let Some(v) = violation {
            self.board.bump(self.record, rec::VIOLATIONS, 1);
            self.event("violation", &v);
        }
        if let Some(e) = failed {
            self.unexpected("read-write", &e);
            return Done::Failed;
        }
        if let Err(e) = unlocked {
            self.unexpected("unlock", &e);
            return Done::Failed;
        }
        Done::Ok
    }

    /// Are all our mappings of this key's objects reachable by name?
    fn check_mappings(&mut self) {
        let problems = match self.a.key.backend {
            Backend::SysV => self.sysv_mapping_problems(),
            Backend::Posix => self.posix_mapping_problems(),
        };
        for (id, what) in problems {
            if self.reported_maps.insert(id) {
                self.board.bump(self.record, rec::REMOVED_MAPS, 1);
                self.event("removed-map", &what);
            }
        }
    }

    fn sysv_mapping_problems(&self) -> Vec<(String, String)> {
        let maps = match procfs::self_mappings("/SYSV") {
            Ok(m) => m,
            Err(e) => return vec![("maps".into(), format!("cannot read /proc/self/maps: {e}"))],
        };
        let mut out = Vec::new();
        for m in maps {
            let Ok(id) = i32::try_from(m.inode) else { continue };
            let mapped_key = u32::from_str_radix(&m.path[5..m.path.len().min(13)], 16).unwrap_or(0) as i32;
            let problem = match sys::shm_stat(id) {
                Err(e) => Some(format!("System V segment {id} (key {mapped_key:#x}) is gone: {e}")),
                Ok(st) if st.mode & sys::SHM_DEST != 0 || st.key == 0 => {
                    Some(format!("System V segment {id} (key {mapped_key:#x}) is marked for destruction"))
                }
                Ok(st) => match sys::ftok(&self.key_file) {
                    Err(e) => {
                        Some(format!("System V segment {id}: its key file {} is gone ({e})", self.key_file.display()))
                    }
                    Ok(k) if k != st.key => {
                        Some(format!("System V segment {id} has key {:#x}, but the key file now gives {k:#x}", st.key))
                    }
                    Ok(_) => None,
                },
            };
            if let Some(p) = problem {
                out.push((format!("sysv:{id}"), p));
            }
        }
        out
    }

    fn posix_mapping_problems(&self) -> Vec<(String, String)> {
        let name = self.a.key.posix_name();
        let seg_path = format!("/dev/shm/{name}");
        let sem_path = format!("/dev/shm/sem.{name}");
        let maps = match procfs::self_mappings("/dev/shm/") {
            Ok(m) => m,
            Err(e) => return vec![("maps".into(), format!("cannot read /proc/self/maps: {e}"))],
        };
        let current = |p: &str| std::fs::metadata(p).ok().map(|m| std::os::unix::fs::MetadataExt::ino(&m));
        let mut out = Vec::new();
        let seg_ino = current(&seg_path);
        for m in maps.iter().filter(|m| m.path == seg_path) {
            if m.deleted || seg_ino != Some(m.inode) {
                out.push((
                    format!("posix:{}", m.inode),
                    format!("mapped {seg_path} (inode {}) is no longer the object of that name", m.inode),
                ));
            }
        }
        let sems: Vec<&procfs::Mapping> = maps.iter().filter(|m| m.path == sem_path).collect();
        let sem_ino = current(&sem_path);
        if !sems.is_empty() && !sems.iter().any(|m| !m.deleted && Some(m.inode) == sem_ino) {
            let inodes: Vec<String> = sems.iter().map(|m| m.inode.to_string()).collect();
            out.push((
                format!("posix-sem:{}", inodes.join(",")),
                format!(
                    "holding the lock, but no mapped {sem_path} (inodes {}) is the semaphore of that name",
                    inodes.join(",")
                ),
            ));
        }
        out
    }

    // ---- helpers -----------------------------------------------------------

    fn set_phase(&self, phase: Phase, op: Op) {
        self.board.set_seat(self.record, rec::OP, op as u64);
        self.board.set_seat(self.record, rec::PHASE, phase as u64);
    }

    fn beat(&self) {
        self.board.bump(self.record, rec::BEAT, 1);
    }

    fn past_deadline(&self) -> bool {
        SystemTime::now() >= self.deadline
    }

    fn stopping(&self) -> bool {
        self.board.word(board::B_STOP) != 0 || self.past_deadline()
    }

    /// 0 if told to stop, [`EXIT_DEADLINE`] if the deadline came first.
    fn finish_code(&self) -> i32 {
        if self.board.word(board::B_STOP) != 0 {
            0
        } else {
            self.log("DEADLINE the worker's deadline passed before the coordinator said stop");
            EXIT_DEADLINE
        }
    }

    /// A safe point: not inside any qipc call. If the coordinator asked,
    /// wait here to be killed.
    fn park_point(&self) {
        if self.board.seat(self.record, rec::PARK) == 0 {
            return;
        }
        self.set_phase(Phase::Parked, Op::None);
        while self.board.seat(self.record, rec::PARK) != 0 && !self.stopping() {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.set_phase(Phase::Idle, Op::None);
    }

    fn in_lock_delay(&mut self) {
        match self.rng.range(0, 99) {
            0..=59 => {}
            60..=84 => spin(self.rng.micros(1, 50)),
            _ => std::thread::sleep(self.rng.micros(10, 300)),
        }
    }

    fn outside_delay(&mut self) {
        if self.rng.chance(50) {
            std::thread::sleep(self.rng.micros(0, 500));
        }
    }

    fn retry_pause(&mut self) {
        std::thread::sleep(self.rng.micros(0, 200));
    }

    fn hang_detected(&mut self, op: Op, what: &str) -> ! {
        self.board.bump(self.record, rec::HANGS, 1);
        self.event("hang", &format!("{}: {what}", op.name()));
        let _ = std::io::stdout().flush();
        // Exit without destructors: dropping the handle would wait on the
        // same lock again.
        sys::exit_now(EXIT_HANG)
    }

    /// Counts and logs an unexpected qipc error (never called while holding
    /// the lock), then backs off a little so a persistent fault cannot spin.
    fn unexpected(&mut self, op: &str, e: &qipc::Error) {
        self.board.bump(self.record, rec::ERRORS, 1);
        if self.error_lines < MAX_ERROR_LINES {
            self.error_lines += 1;
            self.log(&format!("ERROR {op} {:?} {e}", e.kind()));
        }
        std::thread::sleep(Duration::from_millis(1));
    }

    fn event(&mut self, kind: &str, what: &str) {
        self.log(&format!("EVENT {kind} seat={} pid={} {what}", self.record, self.me.pid));
    }

    /// One line on stdout (a file), written whole.
    fn log(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(format!("{line}\n").as_bytes());
        let _ = out.flush();
    }
}

fn holder_of_self() -> std::io::Result<Holder> {
    let st = procfs::self_stat()?;
    Ok(Holder { pid: u64::from(std::process::id()), start: st.start })
}

fn spin(d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}
