//! The coordinator: runs each storm as real processes, kills, restarts,
//! collects the counts, and leaves nothing behind.
//!
//! One storm (or one phase of the mixed storm) is a [`Plan`]: an optional
//! anchor, groups of worker processes on seats, a kill policy per group and
//! a duration. [`StormRun`] executes it in a single-threaded event loop
//! (poll children, kill, restart, run `qipc gc`, enforce deadlines), then
//! tears it down: stop flag, grace period, SIGKILL for stragglers (counted
//! as hangs), final `qipc gc`, leak count, removal of every object of the
//! storm. Its `Drop` does the same clean-up if anything went wrong on the
//! way.

#![forbid(unsafe_code)]

use std::{
    collections::HashSet,
    fs::{self, File},
    io,
    os::unix::process::ExitStatusExt,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant, SystemTime},
};

use crate::{
    board::{self, rec, Board, Op, Phase, FORK_CHILD_SLOT_BASE, SEG_LEN},
    keys::{Backend, StormKey},
    objects::{self, Pids, Snapshot},
    procfs,
    report::{Counts, StormResult},
    rng::Rng,
    sys,
    worker::{Role, WorkerArgs, EXIT_DEADLINE, EXIT_HANG, EXIT_SETUP},
};

/// Which storm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StormKind {
    /// Kill storm: an anchor, counters killed and restarted.
    Kill,
    /// Creator storm: create-or-attach/detach/drop/reuse/exit/kill, no anchor.
    Creator,
    /// Last-detacher race.
    LastDetach,
    /// Fork.
    Fork,
    /// qipc and Qt processes on one key.
    Mixed,
}

impl StormKind {
    /// All storms, in the order they run.
    pub const ALL: [StormKind; 5] =
        [StormKind::Kill, StormKind::Creator, StormKind::LastDetach, StormKind::Fork, StormKind::Mixed];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            StormKind::Kill => "kill",
            StormKind::Creator => "creator",
            StormKind::LastDetach => "last-detach",
            StormKind::Fork => "fork",
            StormKind::Mixed => "mixed",
        }
    }

    /// Parses [`StormKind::name`].
    pub fn parse(s: &str) -> Option<StormKind> {
        StormKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// When the storm may SIGKILL a process of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillPolicy {
    /// Never.
    Never,
    /// At any moment, inside or outside the lock.
    Anywhere,
    /// Only at a safe point: the worker parks between qipc calls when asked
    /// and is killed there (never inside the lock or any qipc call).
    SafePoint,
}

impl KillPolicy {
    /// Parses `anywhere` / `safe`.
    pub fn parse(s: &str) -> Option<KillPolicy> {
        match s {
            "anywhere" => Some(KillPolicy::Anywhere),
            "safe" => Some(KillPolicy::SafePoint),
            _ => None,
        }
    }
}

/// What a process of a group runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcKind {
    /// This binary as a worker.
    Rust(Role),
    /// The Python Qt peer: Qt major version (5 = PyQt5, 6 = PySide6) and role.
    Qt(u8, QtRole),
}

/// The Qt peer's roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QtRole {
    /// Creates once and stays attached to the end.
    Anchor,
    /// Loops: a fresh QSharedMemory, attach, a few increments, detach, destroy.
    Attacher,
}

impl ProcKind {
    fn label(self) -> String {
        match self {
            ProcKind::Rust(r) => format!("qipc {}", r.name()),
            ProcKind::Qt(v, QtRole::Anchor) => format!("Qt{v} anchor"),
            ProcKind::Qt(v, QtRole::Attacher) => format!("Qt{v} attacher"),
        }
    }
}

/// A group of processes on consecutive seats.
#[derive(Debug, Clone)]
pub struct Group {
    /// What they run.
    pub kind: ProcKind,
    /// How many.
    pub seats: usize,
    /// When they may be killed.
    pub kill: KillPolicy,
}

/// One storm on one backend (the mixed storm has several phases).
#[derive(Debug, Clone)]
pub struct Plan {
    /// Name in reports (`kill`, `mixed:b-qt5`, ...).
    pub storm: String,
    /// Letters for the key (only ASCII letters: they appear in System V file names).
    pub word: String,
    /// Backend.
    pub backend: Backend,
    /// How long the storm runs.
    pub duration: Duration,
    /// The anchor, on seat 0.
    pub anchor: Option<ProcKind>,
    /// The groups, on seats 1...
    pub groups: Vec<Group>,
    /// SIGKILL interval range in milliseconds (`None`: no kills).
    pub kill_every_ms: Option<(u64, u64)>,
    /// Run `qipc gc` / `qipc gc --dry-run` in a loop beside the storm.
    pub gc_loop: bool,
    /// Is NotFound from attach expected (no anchor)?
    pub expect_not_found: bool,
}

/// What every storm of a run shares.
#[derive(Debug, Clone)]
pub struct Env {
    /// This binary (workers are re-executions of it).
    pub exe: PathBuf,
    /// The `qipc` CLI (for `qipc gc`), if gc runs.
    pub qipc: Option<PathBuf>,
    /// Python of the Qt venv and the peer script (for the mixed storm).
    pub qt: Option<(PathBuf, PathBuf)>,
    /// The run's directory (removed at the end).
    pub run_dir: PathBuf,
    /// The run's letters.
    pub tag: String,
    /// A lock wait longer than this is a hang.
    pub hang: Duration,
    /// Segment size.
    pub size: usize,
    /// Keep logs and boards (objects are removed anyway).
    pub keep: bool,
    /// Print progress to stderr.
    pub verbose: bool,
}

impl Env {
    /// How long workers get after the stop flag before they count as hung.
    fn stop_grace(&self) -> Duration {
        self.hang + Duration::from_secs(8)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KidRole {
    Anchor,
    Seat { group: usize },
    Gc { dry: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Killed {
    /// By the storm (a kill that is part of the test).
    Storm,
    /// Because it missed its deadline (a hang), with what it was doing.
    Hang(String),
}

#[derive(Debug)]
struct Kid {
    child: Child,
    pid: u32,
    /// Its start time (`/proc/<pid>/stat` field 22), for the killed ring.
    start: u64,
    role: KidRole,
    seat: Option<usize>,
    kind: Option<ProcKind>,
    log: PathBuf,
    hard_deadline: Instant,
    killed: Option<Killed>,
    park_since: Option<Instant>,
    spawned: Instant,
}

/// One storm being run; see the module documentation.
#[derive(Debug)]
pub struct StormRun<'e> {
    env: &'e Env,
    plan: Plan,
    key: StormKey,
    pattern: String,
    dir: PathBuf,
    key_dir: PathBuf,
    board: Board,
    before: Snapshot,
    rng: Rng,
    seed: u64,
    kids: Vec<Kid>,
    pids: Pids,
    start_s: u64,
    spawn_no: u64,
    respawn: Vec<(usize, usize, Instant)>,
    next_kill: Option<Instant>,
    next_gc: Instant,
    gc_dry_next: bool,
    running: bool,
    torn_down: bool,
    started: Instant,
    /// What the final `qipc gc` printed.
    final_gc_said: String,
    result: StormResult,
}

impl<'e> StormRun<'e> {
    /// Sets up the storm's directories, key and board.
    pub fn new(env: &'e Env, plan: Plan, seed: u64, unique: &str) -> io::Result<StormRun<'e>> {
        let key = StormKey::new(plan.backend, &env.tag, &plan.word, unique);
        let pattern = format!("QipcStress{}{}", env.tag, plan.word);
        let dir = env.run_dir.join(format!("{}-{}", plan.storm.replace(':', "-"), plan.backend.name()));
        fs::create_dir_all(dir.join("logs"))?;
        fs::create_dir_all(dir.join("keys"))?;
        // Qt 5 canonicalises TMPDIR; give everyone the canonical path.
        let key_dir = fs::canonicalize(dir.join("keys"))?;
        let board = Board::create(&dir.join("board"))?;
        let result = StormResult {
            storm: plan.storm.clone(),
            backend: plan.backend.name().to_string(),
            key: key.text.clone(),
            ..StormResult::default()
        };
        Ok(StormRun {
            env,
            key,
            pattern,
            dir,
            key_dir,
            board,
            before: Snapshot::take(),
            rng: Rng::new(seed),
            seed,
            kids: Vec::new(),
            pids: Pids::default(),
            start_s: objects::now_s(),
            spawn_no: 0,
            respawn: Vec::new(),
            next_kill: None,
            next_gc: Instant::now(),
            gc_dry_next: false,
            running: false,
            torn_down: false,
            started: Instant::now(),
            final_gc_said: String::new(),
            result,
            plan,
        })
    }

    /// Runs the storm to its end and cleans up; returns its result.
    pub fn run(mut self) -> StormResult {
        self.started = Instant::now();
        self.progress(&format!(
            "{} on {}: {} s, key {}",
            self.plan.storm,
            self.plan.backend.name(),
            self.plan.duration.as_secs_f64(),
            self.key.text
        ));
        if self.start() {
            self.event_loop();
        }
        self.teardown();
        self.result.seconds = self.started.elapsed().as_secs_f64();
        std::mem::take(&mut self.result)
    }

    fn progress(&self, msg: &str) {
        if self.env.verbose {
            eprintln!("[qipc-stress] {msg}");
        }
    }

    fn end_time(&self) -> Instant {
        self.started + self.plan.duration
    }

    /// Starts the anchor (and waits until it is ready), then every seat.
    fn start(&mut self) -> bool {
        self.running = true;
        if let Some(kind) = self.plan.anchor {
            if let Err(e) = self.spawn(KidRole::Anchor, 0, kind) {
                self.error("setup", &format!("cannot start the anchor: {e}"));
                return false;
            }
            let limit = Instant::now() + Duration::from_secs(30);
            loop {
                if Phase::from_word(self.board.seat(0, rec::PHASE)) == Phase::Ready {
                    break;
                }
                self.poll_kids();
                if !self.kids.iter().any(|k| k.role == KidRole::Anchor) {
                    self.error("setup", "the anchor ended before it was ready; storm not run");
                    return false;
                }
                if Instant::now() > limit || sys::stop_requested() {
                    self.error("setup", "the anchor was not ready within 30 s");
                    return false;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            // The storm's time starts once the anchor is ready.
            self.started = Instant::now();
        }
        let mut seat = 1;
        for g in 0..self.plan.groups.len() {
            let (kind, n) = (self.plan.groups[g].kind, self.plan.groups[g].seats);
            for _ in 0..n {
                if let Err(e) = self.spawn(KidRole::Seat { group: g }, seat, kind) {
                    self.error("setup", &format!("cannot start {}: {e}", kind.label()));
                    return false;
                }
                seat += 1;
            }
        }
        if let Some((lo, hi)) = self.plan.kill_every_ms {
            self.next_kill = Some(Instant::now() + Duration::from_millis(self.rng.range(lo, hi)));
        }
        self.next_gc = Instant::now() + Duration::from_millis(self.rng.range(0, 300));
        true
    }

    fn event_loop(&mut self) {
        let mut last_sweep = Instant::now();
        let abort_after = self.plan.groups.iter().map(|g| g.seats as u64).sum::<u64>().max(3);
        let (mut last_ops, mut last_progress) = (0, Instant::now());
        loop {
            let now = Instant::now();
            if sys::stop_requested() {
                self.note("interrupted by a signal");
                break;
            }
            if now >= self.end_time() {
                break;
            }
            if self.result.counts.hangs + self.live_hangs() >= abort_after {
                self.note(&format!(
                    "storm ended early after {} s: {} hangs (the lock looks stuck for good)",
                    self.started.elapsed().as_secs(),
                    self.result.counts.hangs + self.live_hangs()
                ));
                break;
            }
            // Nobody incremented for a whole hang limit: the lock is stuck
            // (kills can keep every single waiter from timing out itself).
            let ops = self.ops_so_far();
            if ops != last_ops {
                (last_ops, last_progress) = (ops, now);
            } else if now.duration_since(last_progress) > self.env.hang {
                self.hang(&format!(
                    "no locked increment by any process for {} s, after {ops} (the lock is stuck)",
                    self.env.hang.as_secs()
                ));
                self.note(&format!("storm ended early after {} s: no progress", self.started.elapsed().as_secs()));
                break;
            }
            self.poll_kids();
            self.respawn_due();
            self.kills(now);
            self.parked_kills();
            self.gc_loop(now);
            self.deadlines(now);
            if now.duration_since(last_sweep) > Duration::from_millis(250) {
                self.sweep_orphans(false);
                last_sweep = now;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        self.running = false;
    }

    /// Locked increments so far: harvested, plus those on the board of
    /// processes still running.
    fn ops_so_far(&self) -> u64 {
        let live: u64 = self.kids.iter().filter_map(|k| k.seat).map(|s| self.board.seat(s, rec::OPS)).sum();
        let children: u64 = (FORK_CHILD_SLOT_BASE..board::SEATS).map(|s| self.board.seat(s, rec::OPS)).sum();
        self.result.counts.ops + live + children
    }

    /// Hangs already on the board of seats whose process still runs (a
    /// worker counts its hang just before it exits).
    fn live_hangs(&self) -> u64 {
        self.kids.iter().filter_map(|k| k.seat).map(|s| self.board.seat(s, rec::HANGS)).sum()
    }

    // ---- spawning ----------------------------------------------------------

    fn spawn(&mut self, role: KidRole, seat: usize, kind: ProcKind) -> io::Result<()> {
        self.spawn_no += 1;
        let log = self.dir.join("logs").join(format!("{:06}-seat{seat}.log", self.spawn_no));
        let out = File::create(&log)?;
        let err = out.try_clone()?;
        let grace = self.env.stop_grace();
        let remaining = self.end_time().saturating_duration_since(Instant::now()) + grace;
        let deadline_ms = (SystemTime::now() + remaining)
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let wargs = WorkerArgs {
            role: match kind {
                ProcKind::Rust(r) => r,
                ProcKind::Qt(..) => Role::Churn,
            },
            key: self.key.clone(),
            key_dir: self.key_dir.clone(),
            board: self.dir.join("board"),
            seat,
            seed: self.seed ^ self.spawn_no.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            deadline_ms,
            hang: self.env.hang,
            size: self.env.size,
            expect_not_found: self.plan.expect_not_found,
        };
        let mut cmd = match kind {
            ProcKind::Rust(_) => {
                let mut c = Command::new(&self.env.exe);
                c.arg("worker").args(wargs.to_args());
                c
            }
            ProcKind::Qt(major, qrole) => {
                let Some((python, script)) = &self.env.qt else {
                    return Err(io::Error::other("the Qt peer is not configured"));
                };
                let mut c = Command::new(python);
                c.arg(script).arg("--qt").arg(major.to_string()).arg("--role").arg(match qrole {
                    QtRole::Anchor => "anchor",
                    QtRole::Attacher => "attacher",
                });
                // The Rust worker's options, minus its role.
                c.args(wargs.to_args().into_iter().skip(2));
                c.env("QT_QPA_PLATFORM", "offscreen").env("PYTHONDONTWRITEBYTECODE", "1");
                c
            }
        };
        cmd.env("TMPDIR", &self.key_dir).stdin(Stdio::null()).stdout(out).stderr(err);
        sys::kill_with_parent(&mut cmd);
        self.board.clear_seat(seat);
        let child = cmd.spawn()?;
        let pid = child.id();
        self.record_pid(pid);
        self.result.counts.spawns += 1;
        self.kids.push(Kid {
            child,
            pid,
            start: procfs::stat(pid).map_or(0, |s| s.start),
            role,
            seat: Some(seat),
            kind: Some(kind),
            log,
            hard_deadline: Instant::now() + remaining + Duration::from_secs(3),
            killed: None,
            park_since: None,
            spawned: Instant::now(),
        });
        Ok(())
    }

    fn spawn_gc(&mut self, dry: bool) -> io::Result<()> {
        let Some(qipc) = self.env.qipc.clone() else { return Ok(()) };
        self.spawn_no += 1;
        let log = self.dir.join("logs").join(format!("{:06}-gc.log", self.spawn_no));
        let out = File::create(&log)?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(qipc);
        cmd.arg("gc").arg("--match").arg(&self.pattern);
        if dry {
            cmd.arg("--dry-run");
        }
        cmd.env("TMPDIR", &self.key_dir).stdin(Stdio::null()).stdout(out).stderr(err);
        sys::kill_with_parent(&mut cmd);
        let child = cmd.spawn()?;
        let pid = child.id();
        self.record_pid(pid);
        self.kids.push(Kid {
            child,
            pid,
            start: procfs::stat(pid).map_or(0, |s| s.start),
            role: KidRole::Gc { dry },
            seat: None,
            kind: None,
            log,
            hard_deadline: Instant::now() + self.env.hang + Duration::from_secs(10),
            killed: None,
            park_since: None,
            spawned: Instant::now(),
        });
        Ok(())
    }

    /// Remembers a pid of this storm, also in the run directory's `pids`
    /// file, for `qipc-stress clean` should the coordinator be killed.
    fn record_pid(&mut self, pid: u32) {
        self.pids.started(pid);
        let line = format!("{pid}\n");
        let appended = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.env.run_dir.join("pids"))
            .and_then(|mut f| io::Write::write_all(&mut f, line.as_bytes()));
        if let Err(e) = appended {
            if self.result.notes.iter().all(|n| !n.starts_with("cannot record pids")) {
                self.note(&format!("cannot record pids for `qipc-stress clean`: {e}"));
            }
        }
    }

    fn respawn_due(&mut self) {
        let now = Instant::now();
        let due: Vec<(usize, usize, Instant)> = self.respawn.iter().copied().filter(|r| r.2 <= now).collect();
        self.respawn.retain(|r| r.2 > now);
        for (group, seat, _) in due {
            let kind = self.plan.groups[group].kind;
            if let Err(e) = self.spawn(KidRole::Seat { group }, seat, kind) {
                self.error("spawn", &format!("cannot restart {}: {e}", kind.label()));
            }
        }
    }

    // ---- kills, parks, gc, deadlines ---------------------------------------

    fn kills(&mut self, now: Instant) {
        let (Some(at), Some((lo, hi))) = (self.next_kill, self.plan.kill_every_ms) else { return };
        if now < at {
            return;
        }
        self.next_kill = Some(now + Duration::from_millis(self.rng.range(lo, hi)));
        let candidates: Vec<usize> = (0..self.kids.len())
            .filter(|&i| {
                let k = &self.kids[i];
                let policy = match k.role {
                    KidRole::Seat { group } => self.plan.groups[group].kill,
                    _ => KillPolicy::Never,
                };
                policy != KillPolicy::Never && k.killed.is_none() && k.park_since.is_none()
            })
            .collect();
        if candidates.is_empty() {
            return;
        }
        let i = candidates[self.rng.below(candidates.len())];
        let KidRole::Seat { group } = self.kids[i].role else { return };
        match self.plan.groups[group].kill {
            KillPolicy::Anywhere => self.kill_kid(i, Killed::Storm),
            KillPolicy::SafePoint => {
                if let Some(seat) = self.kids[i].seat {
                    self.board.set_seat(seat, rec::PARK, 1);
                    self.kids[i].park_since = Some(now);
                }
            }
            KillPolicy::Never => {}
        }
    }

    fn parked_kills(&mut self) {
        for i in 0..self.kids.len() {
            let (Some(since), Some(seat)) = (self.kids[i].park_since, self.kids[i].seat) else { continue };
            if self.kids[i].killed.is_some() {
                continue;
            }
            if Phase::from_word(self.board.seat(seat, rec::PHASE)) == Phase::Parked {
                self.kill_kid(i, Killed::Storm);
            } else if since.elapsed() > Duration::from_secs(5) {
                // Busy for 5 s without reaching a safe point: leave it.
                self.board.set_seat(seat, rec::PARK, 0);
                self.kids[i].park_since = None;
            }
        }
    }

    fn kill_kid(&mut self, i: usize, why: Killed) {
        let kid = &mut self.kids[i];
        if kid.killed.is_some() {
            return;
        }
        if why == Killed::Storm {
            let c = &mut self.result.counts;
            c.kills += 1;
            if let Some(seat) = kid.seat {
                match Phase::from_word(self.board.seat(seat, rec::PHASE)) {
                    Phase::Holding => c.kills_in_lock += 1,
                    Phase::Locking => c.kills_waiting += 1,
                    Phase::InCall => c.kills_in_call += 1,
                    _ => {}
                }
            }
        }
        // Workers read the killed ring before they call a live holder a
        // violation: write it before the signal.
        self.board.note_killed(kid.pid, kid.start);
        if let Err(e) = kid.child.kill() {
            if e.kind() != io::ErrorKind::InvalidInput {
                self.result.notes.push(format!("kill {}: {e}", kid.pid));
            }
        }
        kid.killed = Some(why);
    }

    fn gc_loop(&mut self, now: Instant) {
        if !self.plan.gc_loop || self.env.qipc.is_none() || now < self.next_gc {
            return;
        }
        if self.kids.iter().any(|k| matches!(k.role, KidRole::Gc { .. })) {
            return;
        }
        let dry = self.gc_dry_next;
        self.gc_dry_next = !dry;
        if let Err(e) = self.spawn_gc(dry) {
            self.error("qipc gc", &format!("cannot start: {e}"));
        }
        self.next_gc = now + Duration::from_millis(self.rng.range(0, 200));
    }

    fn deadlines(&mut self, now: Instant) {
        for i in 0..self.kids.len() {
            if self.kids[i].killed.is_none() && now > self.kids[i].hard_deadline {
                let what = self.doing(i);
                self.kill_kid(i, Killed::Hang(format!("missed its deadline; it was {what}")));
            }
        }
    }

    fn doing(&self, i: usize) -> String {
        let k = &self.kids[i];
        let label = match (k.role, k.kind) {
            (KidRole::Gc { dry }, _) => if dry { "qipc gc --dry-run" } else { "qipc gc" }.to_string(),
            (_, Some(kind)) => kind.label(),
            _ => "?".into(),
        };
        match k.seat {
            Some(seat) => {
                let op = Op::from_word(self.board.seat(seat, rec::OP));
                format!("{label} pid {} seat {seat} in {}", k.pid, op.name())
            }
            None => format!("{label} pid {}", k.pid),
        }
    }

    // ---- exits ---------------------------------------------------------------

    fn poll_kids(&mut self) {
        let mut i = 0;
        while i < self.kids.len() {
            match self.kids[i].child.try_wait() {
                Ok(Some(status)) => {
                    let kid = self.kids.swap_remove(i);
                    self.on_exit(kid, status);
                }
                Ok(None) => i += 1,
                Err(e) => {
                    let kid = self.kids.swap_remove(i);
                    self.error("wait", &format!("pid {}: {e}", kid.pid));
                }
            }
        }
    }

    fn on_exit(&mut self, kid: Kid, status: ExitStatus) {
        self.pids.ended(kid.pid);
        let log = fs::read(&kid.log).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        if !self.env.keep {
            let _ = fs::remove_file(&kid.log);
        }
        let name = self.kid_name(&kid);
        if let KidRole::Gc { dry } = kid.role {
            self.result.counts.gc_runs += 1;
            match (&kid.killed, status.code()) {
                (Some(Killed::Hang(what)), _) => self.hang(&format!("{name} {what}")),
                (_, Some(0)) => {
                    let out = log.trim();
                    if !dry && !out.is_empty() && !out.contains("nothing to remove") {
                        self.result.gc_removed.add(out);
                    }
                }
                _ => self.error("qipc gc", &format!("{name} ended with {status}: {}", tail(&log, 6))),
            }
            return;
        }
        let seat = kid.seat.unwrap_or(0);
        let record_errors = self.board.seat(seat, rec::ERRORS);
        let record_hangs = self.board.seat(seat, rec::HANGS);
        let op = Op::from_word(self.board.seat(seat, rec::OP));
        let label = kid.kind.map_or_else(|| "?".to_string(), ProcKind::label);
        self.harvest_log(&log);
        self.harvest_record(seat, &label);

        let panicked = log.lines().find(|l| l.contains("panicked") || l.starts_with("Traceback"));
        match (&kid.killed, status.code(), status.signal()) {
            (Some(Killed::Storm), ..) => {}
            (Some(Killed::Hang(what)), ..) => self.hang(&format!("{name} {what}")),
            (None, Some(0), _) => {}
            (None, Some(101), _) => {}
            (None, Some(EXIT_HANG), _) if record_hangs > 0 => {}
            (None, Some(EXIT_DEADLINE), _) => self.hang(&format!("{name}: its own deadline passed in {}", op.name())),
            (None, Some(EXIT_SETUP), _) if record_errors > 0 => {}
            (None, Some(code), _) => {
                self.error("exit", &format!("{name} exited with status {code}: {}", tail(&log, 4)))
            }
            (None, None, Some(libc::SIGALRM)) => {
                self.hang(&format!("{name} stuck in {} (ended by its SIGALRM backstop)", op.name()))
            }
            (None, None, sig) => {
                self.result.counts.crashes += 1;
                self.result.events.entry("crash".into()).or_default().add(&format!(
                    "{name} died of signal {} in {}",
                    sig.unwrap_or(0),
                    op.name()
                ));
            }
        }
        if status.code() == Some(101) || panicked.is_some() {
            self.result.counts.panics += 1;
            let line = panicked.unwrap_or("exit status 101");
            self.result.events.entry("panic".into()).or_default().add(&format!("{name}: {line}"));
        }

        // Restart a seat whose process ended while the storm runs.
        if let (true, KidRole::Seat { group }) = (self.running, kid.role) {
            let quick_failure =
                kid.killed.is_none() && status.code() != Some(0) && kid.spawned.elapsed() < Duration::from_millis(300);
            let at = Instant::now() + if quick_failure { Duration::from_millis(500) } else { Duration::ZERO };
            self.respawn.push((group, seat, at));
        }
    }

    fn kid_name(&self, kid: &Kid) -> String {
        let label = match (kid.role, kid.kind) {
            (KidRole::Gc { dry: true }, _) => "qipc gc --dry-run".to_string(),
            (KidRole::Gc { dry: false }, _) => "qipc gc".to_string(),
            (_, Some(k)) => k.label(),
            _ => "?".into(),
        };
        match kid.seat {
            Some(s) => format!("{label} (pid {}, seat {s})", kid.pid),
            None => format!("{label} (pid {})", kid.pid),
        }
    }

    fn harvest_log(&mut self, log: &str) {
        for line in log.lines() {
            if let Some(rest) = line.strip_prefix("EVENT ") {
                let (kind, text) = rest.split_once(' ').unwrap_or((rest, ""));
                self.result.events.entry(kind.to_string()).or_default().add(text);
            } else if let Some(rest) = line.strip_prefix("ERROR ") {
                let mut parts = rest.splitn(3, ' ');
                let op = parts.next().unwrap_or("?");
                let kind = parts.next().unwrap_or("?");
                let text = parts.next().unwrap_or("");
                self.result.errors.entry(format!("{op} {kind}")).or_default().add(text);
            }
        }
    }

    fn harvest_record(&mut self, seat: usize, label: &str) {
        let b = &self.board;
        let get = |w| b.seat(seat, w);
        if get(rec::OPS) > 0 {
            *self.result.ops_by.entry(label.to_string()).or_default() += get(rec::OPS);
        }
        let c = &mut self.result.counts;
        c.ops += get(rec::OPS);
        c.violations += get(rec::VIOLATIONS);
        c.lost += get(rec::LOST);
        c.dead_holders += get(rec::DEAD_HOLDERS);
        c.removed_maps += get(rec::REMOVED_MAPS);
        c.hangs += get(rec::HANGS);
        c.errors += get(rec::ERRORS);
        c.expected_errors += get(rec::EXPECTED);
        c.creates += get(rec::CREATES);
        c.attaches += get(rec::ATTACHES);
        c.detaches += get(rec::DETACHES);
        c.drops += get(rec::DROPS);
        c.reuses += get(rec::REUSES);
        c.forks += get(rec::FORKS);
        c.fork_lost += get(rec::FORK_LOST);
        c.panics += get(rec::CHILD_PANICS);
        c.crashes += get(rec::CHILD_CRASHES);
        b.clear_seat(seat);
    }

    fn hang(&mut self, what: &str) {
        self.result.counts.hangs += 1;
        self.result.events.entry("hang".into()).or_default().add(what);
    }

    fn error(&mut self, what: &str, text: &str) {
        self.result.counts.errors += 1;
        self.result.errors.entry(what.to_string()).or_default().add(text);
    }

    fn note(&mut self, text: &str) {
        self.result.notes.push(text.to_string());
    }

    // ---- orphans ---------------------------------------------------------------

    /// Children we did not start (fork children re-parented to us): reap the
    /// finished ones; with `kill_all`, kill and reap the rest.
    fn sweep_orphans(&mut self, kill_all: bool) {
        let known: HashSet<u32> = self.kids.iter().map(|k| k.pid).collect();
        for pid in procfs::self_children() {
            if known.contains(&pid) {
                continue;
            }
            self.pids.during(pid, self.start_s, objects::now_s());
            if kill_all {
                let _ = sys::kill(pid, libc::SIGKILL);
                let _ = sys::waitpid(pid, true);
            } else {
                let _ = sys::waitpid(pid, false);
            }
        }
    }

    // ---- teardown ------------------------------------------------------------

    /// Stops everything, counts what is left, removes it. Idempotent.
    fn teardown(&mut self) {
        if self.torn_down {
            return;
        }
        self.running = false;
        self.respawn.clear();
        self.board.set_word(board::B_STOP, 1);
        for s in 0..board::SEATS {
            self.board.set_seat(s, rec::PARK, 0);
        }
        let grace = self.env.stop_grace();
        // Churners and gc first, then the anchor.
        self.wait_kids(|k| k.role != KidRole::Anchor, grace, "did not stop");
        self.board.set_word(board::B_ANCHOR_STOP, 1);
        self.wait_kids(|_| true, grace, "did not stop (anchor)");
        self.sweep_orphans(true);
        for seat in FORK_CHILD_SLOT_BASE..board::SEATS {
            self.harvest_record(seat, "qipc fork child");
        }
        let now = objects::now_s();
        for pid in self.board.registered_pids() {
            self.pids.during(pid, self.start_s, now);
        }
        // Once more if something is left: another session's process (its own
        // gc, say) may have had one of our objects open for a moment, and gc
        // rightly leaves what is in use.
        for attempt in 0..3 {
            if self.env.qipc.is_none() {
                self.note("no final qipc gc (--no-gc)");
                break;
            }
            if attempt > 0 {
                if objects::find(&self.key_dir, &self.pattern, &self.pids, &self.before, self.qt_on_posix()).is_empty()
                {
                    break;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            self.final_gc();
        }
        self.count_leaks();
        self.torn_down = true;
        self.remove_dir();
    }

    /// Waits for the kids matching `which` to exit; SIGKILLs those still
    /// running after `grace` (a hang each).
    fn wait_kids(&mut self, which: impl Fn(&Kid) -> bool, grace: Duration, why: &str) {
        let limit = Instant::now() + grace;
        loop {
            self.poll_kids();
            if !self.kids.iter().any(&which) {
                return;
            }
            if Instant::now() > limit {
                for i in 0..self.kids.len() {
                    if which(&self.kids[i]) && self.kids[i].killed.is_none() {
                        let what = self.doing(i);
                        self.kill_kid(i, Killed::Hang(format!("{why} within {} s; it was {what}", grace.as_secs())));
                    }
                }
                // SIGKILLed: reaping is immediate unless the kernel is stuck.
                let reap_limit = Instant::now() + Duration::from_secs(10);
                while self.kids.iter().any(&which) && Instant::now() < reap_limit {
                    self.poll_kids();
                    std::thread::sleep(Duration::from_millis(5));
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Qt processes on POSIX keys (the only source of glibc `sem_open`
    /// temporaries: qipc maps its semaphores itself).
    fn qt_on_posix(&self) -> bool {
        self.plan.backend == Backend::Posix && self.plan.storm.starts_with("mixed")
    }

    /// `qipc gc --match <storm letters>` once more, after every process of
    /// the storm is gone and the key files are old enough for gc (2 s).
    fn final_gc(&mut self) {
        let Some(qipc) = self.env.qipc.clone() else { return };
        let newest = fs::read_dir(&self.key_dir)
            .map(|d| d.flatten().filter_map(|e| e.metadata().ok()?.modified().ok()).max())
            .ok()
            .flatten();
        let dev_shm_left = fs::read_dir("/dev/shm")
            .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().contains(&self.pattern)))
            .unwrap_or(false);
        if newest.is_none() && !dev_shm_left && self.plan.backend == Backend::Posix {
            return; // nothing for gc to look at
        }
        if let Some(t) = newest {
            let age = SystemTime::now().duration_since(t).unwrap_or(Duration::ZERO);
            let wait = Duration::from_millis(2300).saturating_sub(age);
            std::thread::sleep(wait);
        }
        // qipc's own temporaries of a worker killed while making a semaphore
        // carry its pid, not our letters: collect them by name once gc's
        // grace for temporaries (10 s) has passed.
        for name in objects::qipc_temporaries(&self.pids) {
            let age = fs::metadata(format!("/dev/shm/{name}"))
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .unwrap_or(Duration::ZERO);
            std::thread::sleep(Duration::from_millis(11_000).saturating_sub(age));
            let mut cmd = Command::new(&qipc);
            cmd.arg("gc").arg("--match").arg(&name);
            let limit = self.env.hang + Duration::from_secs(10);
            if let Ok(Some((status, text))) = self.run_bounded(cmd, limit, "final-gc") {
                if status.success() && !text.trim().is_empty() {
                    self.result.gc_removed.add(&format!("(final gc) {}", text.trim()));
                }
            }
        }
        let mut cmd = Command::new(qipc);
        cmd.arg("gc").arg("--match").arg(&self.pattern);
        let limit = self.env.hang + Duration::from_secs(10);
        match self.run_bounded(cmd, limit, "final-gc") {
            Ok(Some((status, text))) if status.success() => {
                let text = text.trim().to_string();
                if !text.contains("nothing to remove") && !text.is_empty() {
                    self.result.gc_removed.add(&format!("(final gc) {text}"));
                }
                self.final_gc_said = text;
            }
            Ok(Some((status, text))) => {
                self.error("qipc gc", &format!("final gc ended with {status}: {}", tail(&text, 6)));
            }
            Ok(None) => self.hang(&format!("the final qipc gc did not finish within {} s; killed", limit.as_secs())),
            Err(e) => self.error("qipc gc", &format!("final gc could not start: {e}")),
        }
    }

    /// Runs a helper command (with the storm's TMPDIR) to its end, at most
    /// `limit`: its status and output, or `None` if it had to be killed.
    fn run_bounded(
        &mut self,
        mut cmd: Command,
        limit: Duration,
        name: &str,
    ) -> io::Result<Option<(ExitStatus, String)>> {
        self.spawn_no += 1;
        let log = self.dir.join("logs").join(format!("{:06}-{name}.log", self.spawn_no));
        let out = File::create(&log)?;
        let err = out.try_clone()?;
        cmd.env("TMPDIR", &self.key_dir).stdin(Stdio::null()).stdout(out).stderr(err);
        sys::kill_with_parent(&mut cmd);
        let mut child = cmd.spawn()?;
        self.record_pid(child.id());
        let until = Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break Some(status);
            }
            if Instant::now() > until {
                // Killing a child we have not reaped cannot fail; reap it.
                let _ = child.kill();
                child.wait()?;
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        self.pids.ended(child.id());
        let text = fs::read(&log).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        if !self.env.keep {
            let _ = fs::remove_file(&log);
        }
        Ok(status.map(|s| (s, text)))
    }

    fn count_leaks(&mut self) {
        let left = objects::find(&self.key_dir, &self.pattern, &self.pids, &self.before, self.qt_on_posix());
        if !left.is_empty() && !self.final_gc_said.is_empty() {
            let said = self.final_gc_said.replace('\n', " | ");
            self.note(&format!("the final `qipc gc --match {}` said: {said}", self.pattern));
            if let Some(qipc) = self.env.qipc.clone() {
                // What qipc itself thinks of the leftovers (read-only).
                let mut cmd = Command::new(qipc);
                cmd.args(["ls", "--match", &self.pattern]);
                if let Ok(Some((_, text))) = self.run_bounded(cmd, Duration::from_secs(20), "ls") {
                    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
                    if !lines.is_empty() {
                        self.note(&format!("`qipc ls` shows: {}", lines.join(" | ")));
                    }
                }
            }
        }
        self.result.counts.leaks += left.len() as u64;
        self.result.leaks.extend(left.iter().map(ToString::to_string));
        for problem in objects::remove(&left) {
            self.note(&format!("could not remove a leftover: {problem}"));
        }
    }

    fn remove_dir(&mut self) {
        let target = if self.env.keep { self.key_dir.clone() } else { self.dir.clone() };
        if let Err(e) = fs::remove_dir_all(&target) {
            if e.kind() != io::ErrorKind::NotFound {
                self.note(&format!("could not remove {}: {e}", target.display()));
            }
        }
    }
}

impl Drop for StormRun<'_> {
    /// If the storm did not finish normally (an early return, a panic),
    /// still kill every process and remove every object it can attribute.
    fn drop(&mut self) {
        if self.torn_down {
            return;
        }
        // Errors cannot be returned from here; they go to stderr.
        for k in &mut self.kids {
            if let Err(e) = k.child.kill().and_then(|()| k.child.wait().map(drop)) {
                eprintln!("qipc-stress: clean-up: cannot kill pid {}: {e}", k.pid);
            }
        }
        self.kids.clear();
        self.sweep_orphans(true);
        let now = objects::now_s();
        for pid in self.board.registered_pids() {
            self.pids.during(pid, self.start_s, now);
        }
        let left = objects::find(&self.key_dir, &self.pattern, &self.pids, &self.before, self.qt_on_posix());
        for problem in objects::remove(&left) {
            eprintln!("qipc-stress: clean-up: could not remove a leftover: {problem}");
        }
        self.torn_down = true;
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            eprintln!("qipc-stress: clean-up: cannot remove {}: {e}", self.dir.display());
        }
    }
}

/// The last `n` lines of a log, joined with " | ".
fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

// ---- the plans -----------------------------------------------------------------

/// Durations of each storm in a mode.
#[derive(Debug, Clone, Copy)]
pub struct Durations {
    /// Kill storm.
    pub kill: Duration,
    /// Creator storm.
    pub creator: Duration,
    /// Last-detacher race.
    pub last_detach: Duration,
    /// Fork.
    pub fork: Duration,
    /// Mixed Qt storm (split between its phases).
    pub mixed: Duration,
}

/// Options that shape the plans.
#[derive(Debug, Clone, Copy)]
pub struct PlanOptions {
    /// Durations.
    pub durations: Durations,
    /// Kill policy of the kill and creator storms.
    pub kills: KillPolicy,
    /// Kill interval of the kill and creator storms (ms).
    pub kill_every_ms: (u64, u64),
    /// `qipc gc` beside storms 1-4.
    pub gc: bool,
}

/// The plans of one storm kind on one backend.
pub fn plans(kind: StormKind, backend: Backend, o: &PlanOptions) -> Vec<Plan> {
    let d = &o.durations;
    let plan = |storm: &str, word: &str, duration: Duration| Plan {
        storm: storm.into(),
        word: word.into(),
        backend,
        duration,
        anchor: None,
        groups: Vec::new(),
        kill_every_ms: None,
        gc_loop: o.gc,
        expect_not_found: true,
    };
    let group = |kind, seats, kill| Group { kind, seats, kill };
    match kind {
        StormKind::Kill => vec![Plan {
            anchor: Some(ProcKind::Rust(Role::Anchor)),
            groups: vec![group(ProcKind::Rust(Role::Counter), 6, o.kills)],
            kill_every_ms: Some(o.kill_every_ms),
            expect_not_found: false,
            ..plan("kill", "Kill", d.kill)
        }],
        StormKind::Creator => vec![Plan {
            groups: vec![group(ProcKind::Rust(Role::Churn), 6, o.kills)],
            kill_every_ms: Some(o.kill_every_ms),
            ..plan("creator", "Creator", d.creator)
        }],
        StormKind::LastDetach => vec![Plan {
            groups: vec![group(ProcKind::Rust(Role::Flicker), 8, KillPolicy::Never)],
            ..plan("last-detach", "LastDetach", d.last_detach)
        }],
        StormKind::Fork => vec![Plan {
            groups: vec![group(ProcKind::Rust(Role::Fork), 4, KillPolicy::Never)],
            ..plan("fork", "Fork", d.fork)
        }],
        StormKind::Mixed => mixed_plans(backend, d.mixed, o),
    }
}

/// The mixed storm in the shapes Qt survives (README, "mixed storm rules").
fn mixed_plans(backend: Backend, total: Duration, o: &PlanOptions) -> Vec<Plan> {
    use KillPolicy::{Anywhere, Never, SafePoint};
    let qt = |v, role| ProcKind::Qt(v, role);
    let churners = |kill| Group { kind: ProcKind::Rust(Role::Churn), seats: 3, kill };
    let attacher = |v, kill| Group { kind: qt(v, QtRole::Attacher), seats: 1, kill };
    // Qt peers start slowly (about a second): kill less often than in the
    // kill storm, or they would hardly run.
    let every = Some((o.kill_every_ms.0.max(100), o.kill_every_ms.1.max(600)));
    let phase = |storm: &str, word: &str, anchor, groups, d| Plan {
        storm: storm.into(),
        word: word.into(),
        backend,
        duration: d,
        anchor: Some(anchor),
        groups,
        kill_every_ms: every,
        gc_loop: false,
        expect_not_found: false,
    };
    match backend {
        // System V: SEM_UNDO gives back the lock of a killed Qt or qipc
        // process, so every non-anchor process may be killed anywhere.
        Backend::SysV => {
            let d = total / 3;
            let groups = || vec![churners(Anywhere), attacher(5, Anywhere), attacher(6, Anywhere)];
            vec![
                phase("mixed:a", "MixedA", ProcKind::Rust(Role::Anchor), groups(), d),
                phase("mixed:b-qt5", "MixedBqtfive", qt(5, QtRole::Anchor), groups(), d),
                phase("mixed:b-qt6", "MixedBqtsix", qt(6, QtRole::Anchor), groups(), d),
            ]
        }
        // POSIX (PySide6 only): Qt processes are never killed (Qt never
        // recovers a POSIX lock whose holder died); where a Qt process
        // created the lock, qipc processes are killed only at safe points.
        Backend::Posix => {
            let d = total / 2;
            vec![
                phase(
                    "mixed:a",
                    "MixedA",
                    ProcKind::Rust(Role::Anchor),
                    vec![churners(Anywhere), attacher(6, Never), attacher(6, Never)],
                    d,
                ),
                phase(
                    "mixed:b-qt6",
                    "MixedBqtsix",
                    qt(6, QtRole::Anchor),
                    vec![churners(SafePoint), attacher(6, Never), attacher(6, Never)],
                    d,
                ),
            ]
        }
    }
}

/// Every storm kind's plans for the given backends, in order.
pub fn all_plans(kinds: &[StormKind], backends: &[Backend], o: &PlanOptions) -> Vec<Plan> {
    let mut v = Vec::new();
    for &b in backends {
        for &k in kinds {
            v.extend(plans(k, b, o));
        }
    }
    v
}

/// A per-storm seed that depends only on the run seed and the storm, so
/// that `--storms X --backend Y --seed S` repeats the choices of storm X.
pub fn storm_seed(run_seed: u64, plan: &Plan) -> u64 {
    let mut h = run_seed ^ 0xCBF2_9CE4_8422_2325;
    for b in plan.storm.bytes().chain(plan.backend.name().bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3);
    }
    h
}

/// Sums of counts (for totals lines).
pub fn total(results: &[StormResult]) -> Counts {
    let mut t = Counts::default();
    for r in results {
        let c = &r.counts;
        t.ops += c.ops;
        t.kills += c.kills;
        t.kills_in_lock += c.kills_in_lock;
        t.kills_waiting += c.kills_waiting;
        t.kills_in_call += c.kills_in_call;
        t.violations += c.violations;
        t.lost += c.lost;
        t.dead_holders += c.dead_holders;
        t.removed_maps += c.removed_maps;
        t.hangs += c.hangs;
        t.panics += c.panics;
        t.crashes += c.crashes;
        t.errors += c.errors;
        t.leaks += c.leaks;
    }
    t
}

/// Checks that a segment size fits the layout.
pub fn check_size(size: usize) -> Result<(), String> {
    if size < SEG_LEN {
        Err(format!("--size {size}: the counting layout needs at least {SEG_LEN} bytes"))
    } else {
        Ok(())
    }
}

/// The path of a run directory for `pid` under `base`.
pub fn run_dir_name(base: &Path, pid: u32, nanos: u128) -> PathBuf {
    base.join(format!("qipc-stress-{pid}-{nanos}"))
}
