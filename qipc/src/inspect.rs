//! Inspection of the Qt-style shared memory segments and semaphores on this
//! machine: what exists, who uses it, and what a crash left behind.
//!
//! This is the library behind the `qipc` command's `ls`, `info`, `gc` and
//! `rm`. It finds:
//!
//! - **System V** objects through their key files in the temporary
//!   directory ([`key::temp_path`](crate::key::temp_path)):
//!   `qipc_sharedmemory_*` and `qipc_systemsem_*`, matched by `ftok(file,
//!   'Q')` against `/proc/sysvipc/shm` and `/proc/sysvipc/sem`. Key files
//!   with no object behind them are reported as [`State::StaleKeyFile`];
//!   objects with Qt's `ftok` project id (`0x51` in the top byte of the key)
//!   but no key file are reported as [`State::Broken`].
//! - **POSIX** objects in `/dev/shm`: segments (`/dev/shm/NAME`) and named
//!   semaphores (`/dev/shm/sem.NAME`).
//!
//! For each object it reports the size, owner, mode, the processes attached
//! (System V `shm_nattch`, and `/proc/*/maps` and `/proc/*/fd` scans), the
//! creator and whether it is alive, the age, and for semaphores the value,
//! the number of waiters and the last process to use it.
//!
//! The legacy key (the string given to `QSharedMemory(QString)`) cannot be
//! computed back from a name, which keeps only its ASCII letters and a
//! SHA-1. It is recovered when a candidate is confirmed by recomputing the
//! name: the letters themselves, and every argument on the command line of
//! every process on the machine (a program usually names its key there).
//!
//! [`gc`] removes only what no process uses; [`remove`] removes the objects
//! of one key and refuses while a process is attached, unless forced.
//!
//! # Example
//! ```
//! use qipc::{inspect, AccessMode, SharedMemory};
//! # let key = format!("qipc-doc-inspect-module-{}", std::process::id());
//! let mut shm = SharedMemory::new(&key);
//! shm.create(64, AccessMode::ReadWrite)?;
//! let objects = inspect::list()?;
//! let ours = objects.iter().find(|o| o.location == shm.native_key().native_key()).unwrap();
//! assert_eq!((ours.kind, ours.state), (inspect::ObjectKind::SharedMemory, inspect::State::InUse));
//! for r in inspect::gc(true)? {
//!     println!("`qipc gc` would remove {} {}", r.what, r.location); // a dry run: nothing is removed
//! }
//! # Ok::<(), qipc::Error>(())
//! ```

#![forbid(unsafe_code)]

use std::{collections::HashSet, fmt, time::Duration};

use crate::{
    error::{Error, ErrorKind, Result},
    key::{temp_path, KeyType, NativeKey},
    semaphore::{SemaphoreMode, SystemSemaphore},
    shared_memory::SharedMemory,
    sys::{
        self,
        inspect::{self as os, ProcScan, SysvRow},
        posix, sysv,
    },
};

const SHM_PREFIX: &str = "qipc_sharedmemory_";
const SEM_PREFIX: &str = "qipc_systemsem_";
/// Qt's `ftok` project id, `'Q'`.
const QT_FTOK_ID: u8 = 0x51;
/// Key files younger than this are never removed by [`gc`]: a process may
/// be between creating the file and creating the object.
const STALE_FILE_MIN_AGE: i64 = 2;

/// What an object is: a shared memory segment or a semaphore.
///
/// # Example
/// ```
/// use qipc::inspect::ObjectKind;
/// assert_eq!(ObjectKind::SharedMemory.to_string(), "shm");
/// assert_eq!(ObjectKind::Semaphore.to_string(), "sem");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// A shared memory segment (`shmget`, `shm_open`).
    SharedMemory,
    /// A semaphore (`semget`, `sem_open`): a `QSystemSemaphore`, usually
    /// the lock of a segment.
    Semaphore,
}

impl ObjectKind {
    /// `"shm"` or `"sem"`.
    ///
    /// # Example
    /// ```
    /// assert_eq!(qipc::inspect::ObjectKind::Semaphore.as_str(), "sem");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::SharedMemory => "shm",
            ObjectKind::Semaphore => "sem",
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an object is used, left behind, or broken.
///
/// # Example
/// ```
/// use qipc::inspect::State;
/// assert_eq!(State::Orphaned.to_string(), "orphaned");
/// assert!(State::StaleKeyFile.is_garbage());
/// assert!(!State::InUse.is_garbage());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// At least one process is attached (a segment), or the segment it
    /// locks is in use, or a process uses or waits on it (a semaphore).
    InUse,
    /// The object exists but no process uses it: typically what a process
    /// killed while attached leaves behind. [`gc`] removes it.
    Orphaned,
    /// A System V key file with no object behind it. [`gc`] removes it.
    StaleKeyFile,
    /// The object cannot be used as it is (no key file, size 0, or
    /// unreadable); see [`ObjectInfo::note`]. Left alone by [`gc`].
    Broken,
}

impl State {
    /// `in-use`, `orphaned`, `stale-key-file` or `broken`.
    ///
    /// # Example
    /// ```
    /// assert_eq!(qipc::inspect::State::InUse.as_str(), "in-use");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            State::InUse => "in-use",
            State::Orphaned => "orphaned",
            State::StaleKeyFile => "stale-key-file",
            State::Broken => "broken",
        }
    }

    /// True for the states [`gc`] cleans up: orphaned objects and stale key
    /// files.
    ///
    /// # Example
    /// ```
    /// assert!(qipc::inspect::State::Orphaned.is_garbage());
    /// ```
    pub fn is_garbage(self) -> bool {
        matches!(self, State::Orphaned | State::StaleKeyFile)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A process that uses an object.
///
/// # Example
/// ```
/// let p = qipc::inspect::Process { pid: 42, command: "writer".into() };
/// assert_eq!(p.to_string(), "42 writer");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// The process id.
    pub pid: i32,
    /// Its command name (`/proc/PID/comm`), empty if unreadable.
    pub command: String,
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.pid, self.command)
    }
}

/// The state of a semaphore, usually a segment's lock.
///
/// # Example
/// ```
/// let s = qipc::inspect::SemaphoreState { value: 1, waiters: Some(0), last_pid: None, last_pid_alive: None };
/// assert!(s.is_unlocked());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SemaphoreState {
    /// The count: 1 means a lock is free, 0 that it is held.
    pub value: i32,
    /// Processes waiting to decrement it (System V `GETNCNT`; POSIX: glibc's
    /// waiter count), if known.
    pub waiters: Option<i32>,
    /// The last process that operated on it (System V `GETPID`).
    pub last_pid: Option<i32>,
    /// Whether [`last_pid`](SemaphoreState::last_pid) is still running.
    pub last_pid_alive: Option<bool>,
}

impl SemaphoreState {
    /// True if, used as a lock, it is free: value ≥ 1 and nobody waits.
    ///
    /// # Example
    /// ```
    /// let s = qipc::inspect::SemaphoreState { value: 0, waiters: Some(1), last_pid: Some(7), last_pid_alive: Some(true) };
    /// assert!(!s.is_unlocked());
    /// ```
    pub fn is_unlocked(&self) -> bool {
        self.value >= 1 && self.waiters.unwrap_or(0) == 0
    }
}

/// One shared memory segment, semaphore or stale key file found on the
/// machine.
///
/// # Example
/// ```
/// for object in qipc::inspect::list()? {
///     println!("{} {} {}", object.kind, object.location, object.state);
/// }
/// # Ok::<(), qipc::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ObjectInfo {
    /// Segment or semaphore (for a stale key file: what its name says).
    pub kind: ObjectKind,
    /// The native key, with its legacy key if one was recovered. `None` for
    /// a System V object without a key file.
    pub key: Option<NativeKey>,
    /// `systemv` or `posix`.
    pub backend: KeyType,
    /// The key file (System V) or the file in `/dev/shm` (POSIX); for a
    /// System V object without key file, `key 0x…`.
    pub location: String,
    /// The System V key (`ftok` value).
    pub sysv_key: Option<i32>,
    /// The System V identifier (shmid, semid).
    pub id: Option<i32>,
    /// The size in bytes (segment size; for a POSIX semaphore its file).
    pub size: Option<u64>,
    /// The memory the size occupies: whole pages.
    pub pages: Option<u64>,
    /// The owner's user id.
    pub uid: Option<u32>,
    /// The owner's user name.
    pub user: Option<String>,
    /// The permission bits.
    pub mode: Option<u32>,
    /// How many processes are attached (System V `shm_nattch`, or the
    /// processes found by the `/proc` scan).
    pub attached: Option<u64>,
    /// The attached processes that could be seen in `/proc`.
    pub processes: Vec<Process>,
    /// The creator (System V `cpid`).
    pub creator_pid: Option<i32>,
    /// Whether the creator is still running.
    pub creator_alive: Option<bool>,
    /// The last process that attached or detached (System V `lpid`).
    pub last_pid: Option<i32>,
    /// Creation (System V `ctime`) or last modification (POSIX file) time,
    /// in seconds since the epoch.
    pub created: Option<i64>,
    /// For a semaphore: its value, waiters and last user.
    pub semaphore: Option<SemaphoreState>,
    /// True if the name follows Qt's conventions (`qipc_…`, or a POSIX
    /// segment with a semaphore of the same name). [`gc`] only touches such
    /// objects.
    pub qt_named: bool,
    /// In use, orphaned, stale or broken.
    pub state: State,
    /// Why the state is what it is, when that is not obvious.
    pub note: Option<String>,
    /// Objects of one key share a group: the segment and its lock.
    group: String,
}

impl ObjectInfo {
    /// How long ago the object was created (or, for POSIX, last changed).
    ///
    /// # Example
    /// ```
    /// for object in qipc::inspect::list()? {
    ///     if let Some(age) = object.age() {
    ///         println!("{}: {} s", object.location, age.as_secs());
    ///     }
    /// }
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn age(&self) -> Option<Duration> {
        self.created.map(|t| Duration::from_secs(os::now().saturating_sub(t).max(0) as u64))
    }

    /// The legacy key, if it was recovered.
    ///
    /// # Example
    /// ```
    /// # let key = format!("qipc-doc-inspect-legacy-{}", std::process::id());
    /// let mut shm = qipc::SharedMemory::new(&key);
    /// shm.create(16, qipc::AccessMode::ReadWrite)?;
    /// let info = qipc::inspect::info(shm.native_key())?;
    /// assert_eq!(info.objects[0].legacy_key(), Some(key.as_str()));
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn legacy_key(&self) -> Option<&str> {
        self.key.as_ref().and_then(NativeKey::legacy_key)
    }
}

/// The names Qt derives for one object of a key.
///
/// # Example
/// ```
/// let info = qipc::inspect::info(&qipc::NativeKey::posix("/qipc-doc-derived"))?;
/// assert_eq!(info.segment.path, "/dev/shm/qipc-doc-derived");
/// assert_eq!(info.lock.path, "/dev/shm/sem.qipc-doc-derived");
/// # Ok::<(), qipc::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DerivedName {
    /// The native key.
    pub key: NativeKey,
    /// The key file (System V) or the file in `/dev/shm` (POSIX).
    pub path: String,
    /// The `ftok` value of the key file, if it exists (System V).
    pub ftok: Option<i32>,
}

/// Everything about one key: the names derived from it, the objects that
/// exist, and the state of its lock.
///
/// # Example
/// ```
/// use qipc::{inspect, KeyType, NativeKey};
/// let key = NativeKey::legacy_shared_memory("qipc-doc-nobody", KeyType::SYSTEM_V);
/// let info = inspect::info(&key)?;
/// assert!(info.objects.is_empty());
/// assert!(info.lock.path.contains("qipc_systemsem_qipcdocnobody"));
/// # Ok::<(), qipc::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KeyInfo {
    /// The key asked about.
    pub key: NativeKey,
    /// The segment's names.
    pub segment: DerivedName,
    /// The lock semaphore's names (see [`NativeKey::lock_key`]).
    pub lock: DerivedName,
    /// The objects of this key that exist: segment, lock, stale key files.
    pub objects: Vec<ObjectInfo>,
    /// The lock semaphore's state, if it exists.
    pub lock_state: Option<SemaphoreState>,
}

impl KeyInfo {
    /// The segment, if it exists.
    ///
    /// # Example
    /// ```
    /// # let key = format!("qipc-doc-keyinfo-{}", std::process::id());
    /// let mut shm = qipc::SharedMemory::new(&key);
    /// shm.create(100, qipc::AccessMode::ReadWrite)?;
    /// let info = qipc::inspect::info(shm.native_key())?;
    /// let segment = info.segment_object().expect("created above");
    /// assert_eq!(segment.size, Some(100));
    /// assert_eq!(segment.state, qipc::inspect::State::InUse);
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn segment_object(&self) -> Option<&ObjectInfo> {
        self.objects.iter().find(|o| o.kind == ObjectKind::SharedMemory && o.state != State::StaleKeyFile)
    }

    /// The processes attached to the segment (empty if none or no segment).
    ///
    /// # Example
    /// ```
    /// let info = qipc::inspect::info(&qipc::NativeKey::posix("/qipc-doc-none"))?;
    /// assert!(info.attached().is_empty());
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn attached(&self) -> Vec<Process> {
        self.segment_object().map(|o| o.processes.clone()).unwrap_or_default()
    }
}

/// One thing [`gc`] or [`remove`] removed (or, in a dry run, would remove).
///
/// # Example
/// ```
/// let removed = qipc::inspect::gc_matching(true, "qipc-doc-matches-nothing")?;
/// for r in &removed {
///     println!("{} {} ({})", r.what, r.location, r.reason);
/// }
/// # Ok::<(), qipc::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Removed {
    /// `segment`, `semaphore` or `key file`.
    pub what: &'static str,
    /// The key file or `/dev/shm` path, or `key 0x…`.
    pub location: String,
    /// The native key, if known.
    pub key: Option<NativeKey>,
    /// Why it was removed (its state).
    pub reason: String,
}

/// Lists every shared memory segment, semaphore and stale key file that
/// follows Qt's conventions, plus every object in `/dev/shm` (POSIX native
/// keys can have any name; [`ObjectInfo::qt_named`] tells which follow
/// Qt's).
///
/// # Errors
/// None in practice: unreadable entries are reported as
/// [`State::Broken`] or skipped.
///
/// # Example
/// ```
/// use qipc::inspect::{self, State};
/// let orphans = inspect::list()?.into_iter().filter(|o| o.state == State::Orphaned).count();
/// println!("{orphans} orphaned objects");
/// # Ok::<(), qipc::Error>(())
/// ```
pub fn list() -> Result<Vec<ObjectInfo>> {
    let ctx = Ctx::new(ProcScan::take());
    let mut out = Vec::new();
    let mut seen_shm = HashSet::new();
    let mut seen_sem = HashSet::new();
    let tmp = temp_path();
    let dir = if tmp.is_empty() { "/".to_string() } else { tmp.clone() };
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut names: Vec<String> =
            entries.flatten().filter_map(|e| e.file_name().to_str().map(str::to_string)).collect();
        names.sort();
        for name in names {
            if !(name.starts_with(SHM_PREFIX) || name.starts_with(SEM_PREFIX)) {
                continue;
            }
            let path = format!("{tmp}/{name}");
            if !std::fs::symlink_metadata(&path).map(|m| m.is_file()).unwrap_or(false) {
                continue;
            }
            let objects = ctx.sysv_objects(&path, QT_FTOK_ID);
            for o in &objects {
                if let Some(id) = o.id {
                    match o.kind {
                        ObjectKind::SharedMemory => seen_shm.insert(id),
                        ObjectKind::Semaphore => seen_sem.insert(id),
                    };
                }
            }
            out.extend(objects);
        }
    }
    // Objects with Qt's ftok id whose key file is gone.
    for row in ctx.shm_rows.iter().filter(|r| !seen_shm.contains(&r.id) && is_qt_sysv_key(r.key)) {
        out.push(ctx.sysv_unnamed(row, ObjectKind::SharedMemory));
    }
    for row in ctx.sem_rows.iter().filter(|r| !seen_sem.contains(&r.id) && is_qt_sysv_key(r.key)) {
        out.push(ctx.sysv_unnamed(row, ObjectKind::Semaphore));
    }
    if let Ok(entries) = std::fs::read_dir("/dev/shm") {
        let mut names: Vec<String> =
            entries.flatten().filter_map(|e| e.file_name().to_str().map(str::to_string)).collect();
        names.sort();
        for name in names {
            let path = format!("/dev/shm/{name}");
            if !std::fs::symlink_metadata(&path).map(|m| m.is_file()).unwrap_or(false) {
                continue;
            }
            out.push(ctx.posix_object(&name));
        }
    }
    resolve_groups(&mut out);
    fill_pages(&mut out);
    out.sort_by(|a, b| {
        let order = |o: &ObjectInfo| {
            (o.backend == KeyType::PosixRealtime, o.key.is_none(), o.group.clone(), o.kind == ObjectKind::Semaphore)
        };
        order(a).cmp(&order(b))
    });
    Ok(out)
}

/// Everything about one key: the names Qt derives from it, the `ftok`
/// values, the objects that exist (segment, lock semaphore, stale key
/// files) and the lock's state.
///
/// # Errors
/// [`ErrorKind::KeyError`] for an empty key or a Windows key.
///
/// # Example
/// ```
/// use qipc::{inspect, AccessMode, SharedMemory};
/// # let key = format!("qipc-doc-info-{}", std::process::id());
/// let mut shm = SharedMemory::new(&key);
/// shm.create(64, AccessMode::ReadWrite)?;
/// let info = inspect::info(shm.native_key())?;
/// assert_eq!(info.segment_object().unwrap().attached, Some(1));
/// assert!(info.lock_state.unwrap().is_unlocked());
/// # Ok::<(), qipc::Error>(())
/// ```
pub fn info(key: &NativeKey) -> Result<KeyInfo> {
    const OP: &str = "inspect::info";
    if key.is_empty() {
        return Err(Error::new(ErrorKind::KeyError, OP, "key is empty"));
    }
    let lock_key = key.lock_key();
    let ctx = Ctx::new(ProcScan::take());
    let mut objects = Vec::new();
    let (segment, lock) = match key.key_type() {
        KeyType::SystemV { ftok_id } => {
            let seg = DerivedName {
                key: key.clone(),
                path: key.native_key().to_string(),
                ftok: sysv::ftok(key.native_key(), ftok_id).ok(),
            };
            let lock = DerivedName {
                key: lock_key.clone(),
                path: lock_key.native_key().to_string(),
                ftok: sysv::ftok(lock_key.native_key(), ftok_id).ok(),
            };
            objects.extend(ctx.sysv_objects(&seg.path, ftok_id).into_iter().map(|mut o| {
                if o.kind == ObjectKind::SharedMemory || seg.path == lock.path {
                    o.key = Some(if o.kind == ObjectKind::SharedMemory { key.clone() } else { lock_key.clone() });
                }
                o
            }));
            if lock.path != seg.path {
                objects.extend(ctx.sysv_objects(&lock.path, ftok_id).into_iter().map(|mut o| {
                    if o.kind == ObjectKind::Semaphore {
                        o.key = Some(lock_key.clone());
                    }
                    o
                }));
            }
            // One key file may stand for both kinds; keep the segment from
            // the segment's file and the semaphore from the lock's file.
            objects.retain(|o| {
                o.state == State::StaleKeyFile
                    || (o.kind == ObjectKind::SharedMemory && o.location == seg.path)
                    || (o.kind == ObjectKind::Semaphore && o.location == lock.path)
            });
            (seg, lock)
        }
        KeyType::PosixRealtime => {
            let seg_name = strip_slash(key.native_key());
            let lock_name = strip_slash(lock_key.native_key());
            let seg = DerivedName { key: key.clone(), path: format!("/dev/shm/{seg_name}"), ftok: None };
            let lock = DerivedName { key: lock_key.clone(), path: posix::sem_path(lock_name), ftok: None };
            if std::fs::symlink_metadata(&seg.path).is_ok() {
                let mut o = ctx.posix_object(seg_name);
                o.key = Some(key.clone());
                o.group = "key".into();
                objects.push(o);
            }
            if std::fs::symlink_metadata(&lock.path).is_ok() {
                let mut o = ctx.posix_object(&format!("sem.{lock_name}"));
                o.key = Some(lock_key.clone());
                o.group = "key".into();
                objects.push(o);
            }
            (seg, lock)
        }
        KeyType::Windows => {
            return Err(Error::new(ErrorKind::KeyError, OP, "unsupported key type (Windows keys need Windows)"));
        }
    };
    for o in &mut objects {
        o.group = "key".into();
    }
    resolve_groups(&mut objects);
    fill_pages(&mut objects);
    let lock_state = objects
        .iter()
        .find(|o| o.kind == ObjectKind::Semaphore && o.state != State::StaleKeyFile)
        .and_then(|o| o.semaphore);
    Ok(KeyInfo { key: key.clone(), segment, lock, objects, lock_state })
}

/// Removes every orphaned object and stale key file with a Qt-style name
/// ([`ObjectInfo::qt_named`]), and nothing that a process uses.
///
/// - A System V segment is removed only if `shm_nattch` is 0, checked again
///   right before `IPC_RMID` while holding the key's Qt lock (if its
///   semaphore exists); its key file goes with it.
/// - A System V semaphore is removed only if its segment is gone, nobody
///   waits on it, its value says "unlocked" and its last user is dead.
/// - A POSIX segment is removed only if no process maps it or has it open
///   (a `/proc` scan and a file-lease probe, which also sees processes in
///   other PID namespaces), checked again under the lock.
/// - A POSIX semaphore is removed only if its segment is gone and no
///   process has it open.
/// - A key file is removed only if nothing stands behind it and it is at
///   least 2 seconds old (a process may be creating the object right now).
///
/// With `dry_run` nothing is removed; the result says what would be.
///
/// # Errors
/// None in practice: an object that cannot be removed is left out of the
/// result.
///
/// # Example
/// ```
/// for r in qipc::inspect::gc(true)? {
///     println!("would remove {} {}", r.what, r.location);
/// }
/// # Ok::<(), qipc::Error>(())
/// ```
pub fn gc(dry_run: bool) -> Result<Vec<Removed>> {
    gc_filtered(dry_run, |_| true, false)
}

/// [`gc`], restricted to objects whose location, native key text or legacy
/// key contains `pattern`. Because the caller names them, objects whose
/// names do not follow Qt's conventions are included too (a Qt 6 POSIX
/// native key leaves a segment of any name behind when its creator exits).
///
/// # Errors
/// As [`gc`].
///
/// # Example
/// ```
/// use qipc::{inspect, AccessMode, SharedMemory};
/// # let key = format!("qipc-doc-gc-{}", std::process::id());
/// let mut shm = SharedMemory::new(&key);
/// shm.create(64, AccessMode::ReadWrite)?;
/// let file = shm.native_key().native_key().rsplit('/').next().unwrap().to_string();
/// // In use: gc leaves it alone.
/// assert!(inspect::gc_matching(false, &file)?.is_empty());
/// assert!(inspect::info(shm.native_key())?.segment_object().is_some());
/// # Ok::<(), qipc::Error>(())
/// ```
pub fn gc_matching(dry_run: bool, pattern: &str) -> Result<Vec<Removed>> {
    gc_filtered(dry_run, |o| matches_pattern(o, pattern), true)
}

fn matches_pattern(o: &ObjectInfo, pattern: &str) -> bool {
    o.location.contains(pattern)
        || o.key.as_ref().is_some_and(|k| k.to_string().contains(pattern))
        || o.legacy_key().is_some_and(|k| k.contains(pattern))
}

fn gc_filtered(dry_run: bool, keep: impl Fn(&ObjectInfo) -> bool, any_name: bool) -> Result<Vec<Removed>> {
    let objects: Vec<ObjectInfo> = list()?.into_iter().filter(|o| (any_name || o.qt_named) && keep(o)).collect();
    let mut removed = Vec::new();
    let mut gone_groups: HashSet<String> = HashSet::new();
    let busy_groups: HashSet<String> =
        objects.iter().filter(|o| o.state == State::InUse).map(|o| o.group.clone()).collect();
    // Segments first: their semaphores become removable once they are gone.
    for o in objects.iter().filter(|o| o.kind == ObjectKind::SharedMemory && o.state == State::Orphaned) {
        if remove_segment(o, dry_run) {
            gone_groups.insert(o.group.clone());
            removed.push(removal(o, "segment"));
        }
    }
    let live_segments: HashSet<String> = objects
        .iter()
        .filter(|o| o.kind == ObjectKind::SharedMemory && o.state != State::StaleKeyFile)
        .filter(|o| !gone_groups.contains(&o.group))
        .map(|o| o.group.clone())
        .collect();
    for o in objects.iter().filter(|o| o.kind == ObjectKind::Semaphore && o.state == State::Orphaned) {
        if live_segments.contains(&o.group) || busy_groups.contains(&o.group) {
            continue;
        }
        if remove_semaphore(o, dry_run) {
            removed.push(removal(o, "semaphore"));
        }
    }
    let now = os::now();
    for o in objects.iter().filter(|o| o.state == State::StaleKeyFile) {
        if o.created.is_some_and(|t| now - t < STALE_FILE_MIN_AGE) {
            continue;
        }
        // Still nothing behind it?
        let still_stale = match sysv::ftok(&o.location, QT_FTOK_ID).ok() {
            None => false,
            Some(k) => {
                let rows = |t| os::sysv_rows(t).unwrap_or_default();
                !rows("shm").iter().any(|r| r.key == k) && !rows("sem").iter().any(|r| r.key == k)
            }
        };
        if still_stale && (dry_run || std::fs::remove_file(&o.location).is_ok()) {
            removed.push(removal(o, "key file"));
        }
    }
    Ok(removed)
}

fn removal(o: &ObjectInfo, what: &'static str) -> Removed {
    Removed {
        what,
        location: o.location.clone(),
        key: o.key.clone(),
        reason: o.note.clone().map_or_else(|| o.state.to_string(), |n| format!("{}: {n}", o.state)),
    }
}

/// Removes the objects of one key: its segment, its lock semaphore and
/// their key files (what [`SharedMemory::remove`] does), after checking that
/// no process is attached to the segment. With `force` it removes them
/// anyway; processes still attached keep their mapping, but nobody new can
/// attach.
///
/// Returns what was removed.
///
/// # Errors
/// - [`ErrorKind::PermissionDenied`] if a process is attached and `force`
///   is false (the message lists the processes);
/// - [`ErrorKind::NotFound`] if the key names nothing;
/// - [`ErrorKind::KeyError`] for an empty or Windows key;
/// - the OS error of a removal that failed.
///
/// # Example
/// ```
/// use qipc::{inspect, AccessMode, ErrorKind, SharedMemory};
/// # let key = format!("qipc-doc-remove-{}", std::process::id());
/// let mut shm = SharedMemory::new(&key);
/// shm.create(64, AccessMode::ReadWrite)?;
/// let native = shm.native_key().clone();
/// // Attached (by this process): refused.
/// assert_eq!(inspect::remove(&native, false).unwrap_err().kind(), ErrorKind::PermissionDenied);
/// std::mem::forget(shm); // as if this process had crashed
/// # // (the forgotten mapping still counts as attached in this process)
/// let removed = inspect::remove(&native, true)?;
/// assert!(removed.iter().any(|r| r.what == "segment"));
/// # Ok::<(), qipc::Error>(())
/// ```
pub fn remove(key: &NativeKey, force: bool) -> Result<Vec<Removed>> {
    const OP: &str = "inspect::remove";
    let info = info(key)?;
    if info.objects.is_empty() {
        return Err(Error::new(ErrorKind::NotFound, OP, format!("nothing exists for key {key}")));
    }
    if !force {
        if let Some(seg) = info.segment_object().filter(|o| o.state == State::InUse) {
            let who = if seg.processes.is_empty() {
                format!("{} process(es)", seg.attached.unwrap_or(0))
            } else {
                seg.processes.iter().map(|p| format!("{} ({})", p.pid, p.command)).collect::<Vec<_>>().join(", ")
            };
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                OP,
                format!("in use: attached by {who}; not removed (force to remove anyway)"),
            ));
        }
    }
    SharedMemory::remove(key)?;
    // Qt's native System V lock shares the segment's file; a legacy lock has
    // its own. SharedMemory::remove handled both; report what existed.
    Ok(info
        .objects
        .iter()
        .map(|o| {
            let what = match (o.state, o.kind) {
                (State::StaleKeyFile, _) => "key file",
                (_, ObjectKind::SharedMemory) => "segment",
                (_, ObjectKind::Semaphore) => "semaphore",
            };
            removal(o, what)
        })
        .collect())
}

/// The letters and hash of a Qt legacy name: `qipc_sharedmemory_<letters><sha1>`.
fn split_legacy_name(name: &str) -> Option<(ObjectKind, &str)> {
    let (kind, rest) = if let Some(rest) = name.strip_prefix(SHM_PREFIX) {
        (ObjectKind::SharedMemory, rest)
    } else if let Some(rest) = name.strip_prefix(SEM_PREFIX) {
        (ObjectKind::Semaphore, rest)
    } else {
        return None;
    };
    if rest.len() < 40 || !rest.is_char_boundary(rest.len() - 40) {
        return None;
    }
    let (letters, hash) = rest.split_at(rest.len() - 40);
    let ok = letters.bytes().all(|b| b.is_ascii_alphabetic())
        && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then_some((kind, letters))
}

fn strip_slash(s: &str) -> &str {
    s.strip_prefix('/').unwrap_or(s)
}

fn is_qt_sysv_key(key: i32) -> bool {
    key != 0 && ((key as u32) >> 24) as u8 == QT_FTOK_ID
}

/// The group of an object: the segment and its lock share one.
fn group_of(backend: KeyType, location: &str) -> String {
    match backend {
        KeyType::PosixRealtime => {
            let name = location.strip_prefix("/dev/shm/").unwrap_or(location);
            let name = name.strip_prefix("sem.").unwrap_or(name);
            let name = name.strip_prefix(SHM_PREFIX).or_else(|| name.strip_prefix(SEM_PREFIX)).unwrap_or(name);
            format!("posix:{name}")
        }
        _ => {
            let (dir, file) = location.rsplit_once('/').unwrap_or(("", location));
            let file = file.strip_prefix(SHM_PREFIX).or_else(|| file.strip_prefix(SEM_PREFIX)).unwrap_or(file);
            format!("sysv:{dir}/{file}")
        }
    }
}

/// A semaphore is in use if the segment it locks is.
fn resolve_groups(objects: &mut [ObjectInfo]) {
    let busy: HashSet<String> = objects
        .iter()
        .filter(|o| o.kind == ObjectKind::SharedMemory && o.state == State::InUse)
        .map(|o| o.group.clone())
        .collect();
    let segments: HashSet<String> = objects
        .iter()
        .filter(|o| o.kind == ObjectKind::SharedMemory && o.state != State::StaleKeyFile)
        .map(|o| o.group.clone())
        .collect();
    for o in objects.iter_mut() {
        if o.kind == ObjectKind::Semaphore && o.state == State::Orphaned && busy.contains(&o.group) {
            o.state = State::InUse;
            o.note = Some("locks a segment in use".into());
        }
        if o.backend == KeyType::PosixRealtime && o.kind == ObjectKind::Semaphore && segments.contains(&o.group) {
            o.qt_named = true;
        }
    }
    // A POSIX segment with a semaphore of the same name follows Qt's scheme.
    let sems: HashSet<String> = objects
        .iter()
        .filter(|o| o.kind == ObjectKind::Semaphore && o.backend == KeyType::PosixRealtime)
        .map(|o| o.group.clone())
        .collect();
    for o in objects.iter_mut() {
        if o.backend == KeyType::PosixRealtime && o.kind == ObjectKind::SharedMemory && sems.contains(&o.group) {
            o.qt_named = true;
        }
    }
}

/// What one inspection knows about the machine.
struct Ctx {
    procs: ProcScan,
    shm_rows: Vec<SysvRow>,
    sem_rows: Vec<SysvRow>,
}

impl Ctx {
    fn new(procs: ProcScan) -> Ctx {
        Ctx {
            procs,
            shm_rows: os::sysv_rows("shm").unwrap_or_default(),
            sem_rows: os::sysv_rows("sem").unwrap_or_default(),
        }
    }

    fn base(&self, kind: ObjectKind, backend: KeyType, location: &str) -> ObjectInfo {
        ObjectInfo {
            kind,
            key: None,
            backend,
            location: location.to_string(),
            sysv_key: None,
            id: None,
            size: None,
            pages: None,
            uid: None,
            user: None,
            mode: None,
            attached: None,
            processes: Vec::new(),
            creator_pid: None,
            creator_alive: None,
            last_pid: None,
            created: None,
            semaphore: None,
            qt_named: false,
            state: State::Broken,
            note: None,
            group: group_of(backend, location),
        }
    }

    /// Recovers a legacy key for `name` (a file name), confirmed by
    /// recomputing the name from it.
    fn recover_legacy(&self, name: &str, key_type: KeyType) -> Option<String> {
        let (kind, letters) = split_legacy_name(name)?;
        let confirms = |candidate: &str| {
            if candidate.is_empty() {
                return false;
            }
            let filtered: String = candidate.chars().filter(char::is_ascii_alphabetic).collect();
            if filtered != letters {
                return false;
            }
            let derived = match kind {
                ObjectKind::SharedMemory => NativeKey::legacy_shared_memory(candidate, key_type),
                ObjectKind::Semaphore => NativeKey::legacy_semaphore(candidate, key_type),
            };
            derived.native_key().rsplit('/').next() == Some(name)
        };
        if confirms(letters) {
            return Some(letters.to_string());
        }
        for p in &self.procs.procs {
            for arg in &p.args {
                let mut candidates = vec![arg.as_str()];
                if let Some((_, v)) = arg.split_once('=') {
                    candidates.push(v);
                }
                if let Some(c) = candidates.into_iter().find(|c| confirms(c)) {
                    return Some(c.to_string());
                }
            }
        }
        None
    }

    fn with_owner(&self, o: &mut ObjectInfo, uid: u32, mode: u32) {
        o.uid = Some(uid);
        o.user = sys::user_name_of(uid);
        o.mode = Some(mode);
    }

    /// The objects behind a System V key file: segment and/or semaphore, or
    /// a stale key file.
    fn sysv_objects(&self, path: &str, ftok_id: u8) -> Vec<ObjectInfo> {
        let backend = KeyType::SystemV { ftok_id };
        let file = path.rsplit('/').next().unwrap_or(path);
        let qt_named = split_legacy_name(file).is_some();
        let hint = if file.starts_with(SEM_PREFIX) { ObjectKind::Semaphore } else { ObjectKind::SharedMemory };
        let legacy = self.recover_legacy(file, KeyType::SystemV { ftok_id });
        let native = |kind: ObjectKind| match (&legacy, kind) {
            (Some(l), ObjectKind::SharedMemory) if hint == ObjectKind::SharedMemory => {
                NativeKey::legacy_shared_memory(l, backend)
            }
            (Some(l), ObjectKind::Semaphore) if hint == ObjectKind::Semaphore => {
                NativeKey::legacy_semaphore(l, backend)
            }
            _ => NativeKey::new(path, backend),
        };
        let Ok(st) = posix::stat_path(path) else {
            return Vec::new();
        };
        let Some(k) = sysv::ftok(path, ftok_id).ok() else {
            let mut o = self.base(hint, backend, path);
            o.note = Some("ftok failed".into());
            return vec![o];
        };
        let mut out = Vec::new();
        if let Some(row) = self.shm_rows.iter().find(|r| r.key == k) {
            let mut o = self.sysv_shm(row, path, backend);
            o.key = Some(native(ObjectKind::SharedMemory));
            o.qt_named = qt_named;
            out.push(o);
        }
        if let Some(row) = self.sem_rows.iter().find(|r| r.key == k) {
            let mut o = self.sysv_sem(row, path, backend);
            o.key = Some(native(ObjectKind::Semaphore));
            o.qt_named = qt_named;
            out.push(o);
        }
        if out.is_empty() {
            let mut o = self.base(hint, backend, path);
            o.key = Some(native(hint));
            o.sysv_key = Some(k);
            o.size = Some(st.size);
            self.with_owner(&mut o, st.uid, st.mode & 0o777);
            o.created = Some(st.mtime);
            o.qt_named = qt_named;
            o.state = State::StaleKeyFile;
            o.note = Some(format!(
                "no {} with key {}",
                if hint == ObjectKind::Semaphore { "semaphore" } else { "segment" },
                hex_key(k)
            ));
            out.push(o);
        }
        out
    }

    fn sysv_shm(&self, row: &SysvRow, location: &str, backend: KeyType) -> ObjectInfo {
        let exact = os::shm_row_by_stat(row);
        let row = exact.as_ref().unwrap_or(row);
        let mut o = self.base(ObjectKind::SharedMemory, backend, location);
        o.sysv_key = Some(row.key);
        o.id = Some(row.id);
        o.size = Some(row.size);
        self.with_owner(&mut o, row.uid, row.perms);
        o.attached = Some(row.nattch);
        o.processes = self
            .procs
            .sysv_users(i64::from(row.id))
            .into_iter()
            .map(|p| Process { pid: p.pid, command: p.comm.clone() })
            .collect();
        o.creator_pid = Some(row.cpid);
        o.creator_alive = Some(os::pid_alive(row.cpid));
        o.last_pid = Some(row.lpid).filter(|p| *p > 0);
        o.created = Some(row.ctime);
        o.state = if row.nattch > 0 { State::InUse } else { State::Orphaned };
        if o.state == State::Orphaned {
            o.note = Some(if o.creator_alive == Some(true) {
                "no process attached (creator still running)".into()
            } else {
                "no process attached".into()
            });
        }
        o
    }

    fn sysv_sem(&self, row: &SysvRow, location: &str, backend: KeyType) -> ObjectInfo {
        let mut o = self.base(ObjectKind::Semaphore, backend, location);
        o.sysv_key = Some(row.key);
        o.id = Some(row.id);
        self.with_owner(&mut o, row.uid, row.perms);
        o.created = Some(row.ctime);
        match os::sysv_sem_state(row.id) {
            Ok(s) => {
                let alive = (s.last_pid > 0).then(|| os::pid_alive(s.last_pid));
                o.semaphore = Some(SemaphoreState {
                    value: s.value,
                    waiters: Some(s.waiters),
                    last_pid: Some(s.last_pid).filter(|p| *p > 0),
                    last_pid_alive: alive,
                });
                if s.last_pid > 0 && alive == Some(true) {
                    o.processes.push(Process {
                        pid: s.last_pid,
                        command: self.procs.comm(s.last_pid).unwrap_or_default().to_string(),
                    });
                }
                if s.waiters > 0 {
                    o.state = State::InUse;
                    o.note = Some(format!("{} process(es) waiting", s.waiters));
                } else if alive == Some(true) {
                    o.state = State::InUse;
                    o.note = Some(format!("last used by running process {}", s.last_pid));
                } else {
                    o.state = State::Orphaned;
                }
            }
            Err(e) => {
                o.state = State::Broken;
                o.note = Some(format!("cannot read the semaphore: {e}"));
            }
        }
        o
    }

    /// A System V object whose key has Qt's ftok id but no key file.
    fn sysv_unnamed(&self, row: &SysvRow, kind: ObjectKind) -> ObjectInfo {
        let location = format!("key {}", hex_key(row.key));
        let mut o = match kind {
            ObjectKind::SharedMemory => self.sysv_shm(row, &location, KeyType::SYSTEM_V),
            ObjectKind::Semaphore => self.sysv_sem(row, &location, KeyType::SYSTEM_V),
        };
        o.group = location;
        o.state = State::Broken;
        o.note =
            Some("Qt-style key (ftok id 0x51) but no key file: Qt cannot attach any more (or it is not Qt's)".into());
        o
    }

    /// An object in `/dev/shm` (`name` is the file name there).
    fn posix_object(&self, name: &str) -> ObjectInfo {
        let path = format!("/dev/shm/{name}");
        let (kind, native) = match name.strip_prefix("sem.") {
            Some(sem) => (ObjectKind::Semaphore, sem),
            None => (ObjectKind::SharedMemory, name),
        };
        let backend = KeyType::PosixRealtime;
        let mut o = self.base(kind, backend, &path);
        o.qt_named = split_legacy_name(native).is_some();
        let legacy = self.recover_legacy(native, backend);
        o.key = Some(match (legacy, kind) {
            (Some(l), ObjectKind::SharedMemory) => NativeKey::legacy_shared_memory(&l, backend),
            (Some(l), ObjectKind::Semaphore) => NativeKey::legacy_semaphore(&l, backend),
            (None, _) => NativeKey::posix(format!("/{native}")),
        });
        let st = match posix::stat_path(&path) {
            Ok(st) => st,
            Err(e) => {
                o.note = Some(format!("cannot stat: {e}"));
                return o;
            }
        };
        o.size = Some(st.size);
        self.with_owner(&mut o, st.uid, st.mode & 0o777);
        o.created = Some(st.mtime);
        o.processes = self
            .procs
            .dev_shm_users(&path)
            .into_iter()
            .map(|p| Process { pid: p.pid, command: p.comm.clone() })
            .collect();
        o.attached = Some(o.processes.len() as u64);
        if kind == ObjectKind::Semaphore {
            if let Some((value, waiters)) = os::posix_sem_state(&path) {
                o.semaphore =
                    Some(SemaphoreState { value, waiters: Some(waiters), last_pid: None, last_pid_alive: None });
            }
        }
        let in_use = !o.processes.is_empty()
            || (kind == ObjectKind::SharedMemory && os::posix_others_have_open(native) == Some(true));
        o.state = if in_use {
            if o.processes.is_empty() {
                o.note = Some("open by a process this scan cannot see (lease probe)".into());
            }
            State::InUse
        } else if kind == ObjectKind::SharedMemory && st.size == 0 {
            o.note = Some("size 0: created but never sized".into());
            State::Broken
        } else {
            if kind == ObjectKind::Semaphore && o.semaphore.is_some_and(|s| s.value == 0) {
                o.note = Some("held by a process that is gone: lockers would wait forever".into());
            }
            State::Orphaned
        };
        o
    }
}

fn fill_pages(objects: &mut [ObjectInfo]) {
    let page = sys::page_size() as u64;
    for o in objects.iter_mut().filter(|o| o.kind == ObjectKind::SharedMemory && o.state != State::StaleKeyFile) {
        o.pages = o.size.map(|s| s.div_ceil(page));
    }
}

fn hex_key(k: i32) -> String {
    format!("0x{:08x}", k as u32)
}

/// Removes an orphaned segment under its lock; true if it was removed (or,
/// in a dry run, would be).
fn remove_segment(o: &ObjectInfo, dry_run: bool) -> bool {
    match o.backend {
        KeyType::SystemV { ftok_id } => {
            let Some(k) = o.sysv_key else { return false };
            // The lock: the legacy semaphore file, or the same file (native key).
            let (dir, file) = o.location.rsplit_once('/').unwrap_or(("", &o.location));
            let mut locks = Vec::new();
            if let Some(rest) = file.strip_prefix(SHM_PREFIX) {
                locks.push(format!("{dir}/{SEM_PREFIX}{rest}"));
            }
            locks.push(o.location.clone());
            let sem_rows = os::sysv_rows("sem").unwrap_or_default();
            let lock_path = locks
                .into_iter()
                .find(|p| sysv::ftok(p, ftok_id).ok().is_some_and(|sk| sem_rows.iter().any(|r| r.key == sk)));
            let sem = lock_path.and_then(|p| {
                SystemSemaphore::with_native_key(NativeKey::new(p, o.backend), 1, SemaphoreMode::Open).ok()
            });
            if let Some(sem) = &sem {
                if !sem.acquire_timeout(Duration::from_secs(2)).unwrap_or(false) {
                    return false; // somebody holds the lock: not ours to touch now
                }
            }
            let done = if dry_run {
                os::shm_nattch_is_zero(k)
            } else {
                match os::sysv_remove_segment_if_unused(k) {
                    Ok(true) => {
                        if sysv::ftok(&o.location, ftok_id).ok() == Some(k) {
                            let _ = std::fs::remove_file(&o.location);
                        }
                        true
                    }
                    _ => false,
                }
            };
            if let Some(sem) = &sem {
                let _ = sem.release(1);
            }
            done
        }
        KeyType::PosixRealtime => {
            let name = o.location.strip_prefix("/dev/shm/").unwrap_or(&o.location).to_string();
            let lock_name = match name.strip_prefix(SHM_PREFIX) {
                Some(rest) => format!("{SEM_PREFIX}{rest}"),
                None => name.clone(),
            };
            let lock_path = format!("/dev/shm/sem.{lock_name}");
            let me = std::process::id() as i32;
            let sem_users = |scan: &ProcScan| scan.dev_shm_users(&lock_path).iter().any(|p| p.pid != me);
            let sem = if std::fs::symlink_metadata(&lock_path).is_ok() {
                SystemSemaphore::with_native_key(NativeKey::posix(format!("/{lock_name}")), 1, SemaphoreMode::Open).ok()
            } else {
                None
            };
            let mut locked = false;
            if let Some(sem) = &sem {
                locked = sem.acquire_timeout(Duration::from_secs(1)).unwrap_or(false);
                // A POSIX lock held by a process that died stays held; if no
                // process has the semaphore open, nobody can be excluded.
                if !locked && sem_users(&ProcScan::take()) {
                    return false;
                }
            }
            let scan = ProcScan::take();
            let users = scan.dev_shm_users(&o.location).iter().any(|p| p.pid != me);
            let leased = os::posix_others_have_open(&name) != Some(false);
            let done = if users || leased {
                false
            } else if dry_run {
                true
            } else {
                posix::shm_unlink(&name).is_ok()
            };
            if let (Some(sem), true) = (&sem, locked) {
                let _ = sem.release(1);
            }
            done
        }
        KeyType::Windows => false,
    }
}

/// Removes an orphaned semaphore whose segment is gone.
fn remove_semaphore(o: &ObjectInfo, dry_run: bool) -> bool {
    match o.backend {
        KeyType::SystemV { ftok_id } => {
            let Some(k) = o.sysv_key else { return false };
            // Re-check: unlocked, nobody waiting, last user gone.
            let Some(row) = os::sysv_rows("sem").unwrap_or_default().into_iter().find(|r| r.key == k) else {
                return false;
            };
            let Ok(s) = os::sysv_sem_state(row.id) else { return false };
            // The last user may be this process: gc takes the lock to remove the segment.
            let me = std::process::id() as i32;
            if s.value < 1 || s.waiters > 0 || (s.last_pid > 0 && s.last_pid != me && os::pid_alive(s.last_pid)) {
                return false;
            }
            if dry_run {
                return true;
            }
            if os::sysv_remove_semaphore(k).is_err() {
                return false;
            }
            // The key file goes too, unless a segment still uses it.
            let segment_uses_file = os::sysv_rows("shm").unwrap_or_default().iter().any(|r| r.key == k);
            if !segment_uses_file && sysv::ftok(&o.location, ftok_id).ok() == Some(k) {
                let _ = std::fs::remove_file(&o.location);
            }
            true
        }
        KeyType::PosixRealtime => {
            let name = o.location.strip_prefix("/dev/shm/sem.").unwrap_or(&o.location).to_string();
            let me = std::process::id() as i32;
            if ProcScan::take().dev_shm_users(&o.location).iter().any(|p| p.pid != me) {
                return false;
            }
            dry_run || posix::sem_unlink(&format!("/{name}")).is_ok()
        }
        KeyType::Windows => false,
    }
}
