//! The Qt-style shared memory segments and semaphores on this machine:
//! what exists, who uses it, and what a crash left behind. This is the
//! library behind the `qipc` command's `ls`, `info`, `gc` and `rm`.
//!
//! A [`Snapshot`] is taken once per call: `/proc/sysvipc`, the key files in
//! the temporary directory, `/dev/shm`, and one scan of every process's
//! mappings and descriptors. Each object becomes one [`Object`] of its kind
//! ([`SysvSegment`], [`SysvSemaphore`], [`PosixSegment`],
//! [`PosixSemaphore`], [`KeyFile`], [`Temporary`]) with a [`Usage`]:
//! in use (and by whom), orphaned (and why), or unknown (and why not).
//!
//! [`gc`] removes orphans, each under its key's lock and only if it is still
//! the object the snapshot saw; [`remove`] removes one key's objects and
//! refuses while a process uses them, unless forced.
//!
//! ```
//! use qipc::{inspect, AccessMode, SharedMemory};
//! # let key = format!("qipc-doc-inspect-{}", std::process::id());
//! let mut shm = SharedMemory::new(&key);
//! shm.create(64, AccessMode::ReadWrite)?;
//! let snapshot = inspect::Snapshot::take()?;
//! let file = shm.native_key().native_key(); // its key file, /tmp/qipc_sharedmemory_…
//! let ours = snapshot.objects().iter().find(|o| o.location() == file).unwrap();
//! assert!(ours.usage().is_in_use());
//! let report = inspect::gc(&inspect::GcOptions { dry_run: true, ..Default::default() })?;
//! let entry = report.entries.iter().find(|e| e.object.location == file).unwrap();
//! assert!(matches!(entry.outcome, inspect::GcOutcome::Skipped(_)), "in use: left alone");
//! # Ok::<(), qipc::Error>(())
//! ```
//!
//! The legacy key (the string given to `QSharedMemory(QString)`) cannot be
//! computed back from a name, which keeps only its ASCII letters and a
//! SHA-1; it is recovered when a candidate is confirmed by deriving the name
//! again: the letters themselves, and every argument on the command line of
//! every process (a program usually names its key there).

#![forbid(unsafe_code)]

mod gc;
mod scan;

use std::{fmt, time::Duration};

pub use gc::{gc, remove, GcEntry, GcOptions, GcOutcome, GcReport, ObjectRef};

use crate::{
    error::Result,
    key::{KeyType, NativeKey},
};

/// Who owns an object, and its permission bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The owner's user id.
    pub uid: u32,
    /// The owner's name, if the user database knows it.
    pub user: Option<String>,
    /// Permission bits (`0o777`).
    pub mode: u32,
}

/// A process using an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// Its process id.
    pub pid: i32,
    /// Its command name.
    pub command: String,
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.pid, self.command)
    }
}

/// Whether anybody uses an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Usage {
    /// Processes use it. `processes` lists those this scan can see (other
    /// users' processes are invisible without privileges); `note` says how
    /// the use shows when the list is empty or needs a word.
    InUse {
        /// The processes seen using it.
        processes: Vec<Process>,
        /// How the use shows, when it needs saying.
        note: Option<String>,
    },
    /// Nobody uses it: what a crash (or a Qt process, which never removes
    /// POSIX objects) left behind. [`gc`] removes it.
    Orphaned {
        /// Why it counts as orphaned.
        why: String,
    },
    /// Whether anybody uses it cannot be told (for example another user's
    /// POSIX object: the probe needs to be its owner). [`gc`] keeps it.
    Unknown {
        /// Why it cannot be told.
        why: String,
    },
}

impl Usage {
    /// True for [`Usage::InUse`].
    pub fn is_in_use(&self) -> bool {
        matches!(self, Usage::InUse { .. })
    }

    /// True for [`Usage::Orphaned`].
    pub fn is_orphaned(&self) -> bool {
        matches!(self, Usage::Orphaned { .. })
    }

    /// `"in-use"`, `"orphaned"` or `"unknown"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Usage::InUse { .. } => "in-use",
            Usage::Orphaned { .. } => "orphaned",
            Usage::Unknown { .. } => "unknown",
        }
    }

    /// The note, reason or explanation, if any.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Usage::InUse { note, .. } => note.as_deref(),
            Usage::Orphaned { why } | Usage::Unknown { why } => Some(why),
        }
    }

    fn in_use(processes: Vec<Process>, note: Option<String>) -> Usage {
        Usage::InUse { processes, note }
    }
}

/// A System V shared memory segment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SysvSegment {
    /// The shmid (`ipcrm -m <shmid>`).
    pub shmid: i32,
    /// The System V key (`ftok` of the key file; 0 once removed).
    pub sysv_key: i32,
    /// The key file that names it, if one was found.
    pub key_file: Option<String>,
    /// Its key, with the legacy key when it could be recovered.
    pub key: Option<NativeKey>,
    /// Size in bytes.
    pub size: u64,
    /// Owner and mode.
    pub owner: Owner,
    /// Processes attached (`shm_nattch`).
    pub attached: u64,
    /// The creator's pid, and whether it still runs.
    pub creator: (i32, bool),
    /// Creation time (seconds since the epoch).
    pub created: i64,
    /// Removed (`IPC_RMID`) but still attached: it goes with its last user.
    pub removed: bool,
    /// Whether anybody uses it.
    pub usage: Usage,
}

/// A System V semaphore (a lock, or a `QSystemSemaphore`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SysvSemaphore {
    /// The semid (`ipcrm -s <semid>`).
    pub semid: i32,
    /// The System V key.
    pub sysv_key: i32,
    /// The key file that names it, if one was found.
    pub key_file: Option<String>,
    /// Its key, if known.
    pub key: Option<NativeKey>,
    /// Owner and mode.
    pub owner: Owner,
    /// The value (1: a lock that is free; 0: held).
    pub value: i32,
    /// Processes waiting for it.
    pub waiters: i32,
    /// The last process to operate on it, and whether it still runs.
    pub last_pid: Option<(i32, bool)>,
    /// Creation (or last reset) time.
    pub created: i64,
    /// Whether anybody uses it.
    pub usage: Usage,
}

/// A POSIX shared memory object (`/dev/shm/<name>`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PosixSegment {
    /// Its file, `/dev/shm/<name>`.
    pub path: String,
    /// Its key (`posix:/<name>`, with the legacy key when recovered).
    pub key: NativeKey,
    /// Its name is recognisably Qt's (or qipc's): a legacy key's
    /// `qipc_sharedmemory_…` name, or a lock semaphore of the same name
    /// beside it. False for any other `/dev/shm` file, which may belong to
    /// any program: among them the segment of a Qt 6.6+ native key whose
    /// program exited (Qt removes the lock semaphore then, never the
    /// segment). [`gc`] removes such a segment only when
    /// [`GcOptions::matching`] names it.
    pub qt_named: bool,
    /// Size in bytes.
    pub size: u64,
    /// Owner and mode.
    pub owner: Owner,
    /// Last modification time.
    pub created: i64,
    /// Whether anybody uses it.
    pub usage: Usage,
}

/// A POSIX named semaphore (`/dev/shm/sem.<name>`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PosixSemaphore {
    /// Its file, `/dev/shm/sem.<name>`.
    pub path: String,
    /// Its key (`posix:/<name>`).
    pub key: NativeKey,
    /// The value (1: a lock that is free; 0: held).
    pub value: i32,
    /// Processes waiting for it.
    pub waiters: u64,
    /// qipc created it with a robust gate: a killed qipc holder's lock is
    /// given back to the next locker.
    pub robust: bool,
    /// Owner and mode.
    pub owner: Owner,
    /// Last modification time.
    pub created: i64,
    /// Whether anybody uses it.
    pub usage: Usage,
}

/// What a key file names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyFileOf {
    /// A segment (`qipc_sharedmemory_…`).
    Segment,
    /// A semaphore (`qipc_systemsem_…`).
    Semaphore,
}

/// A System V key file with no object behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyFile {
    /// The file.
    pub path: String,
    /// What it would name.
    pub of: KeyFileOf,
    /// Its key, if known.
    pub key: Option<NativeKey>,
    /// The key it gives.
    pub sysv_key: i32,
    /// Owner and mode.
    pub owner: Owner,
    /// Last modification time.
    pub created: i64,
    /// Whether anybody uses it.
    pub usage: Usage,
}

/// Who leaves a temporary file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemporaryOf {
    /// glibc's `sem_open` (`/dev/shm/sem.XXXXXX`), for example from a Qt
    /// process killed while creating a semaphore.
    Glibc,
    /// qipc's own semaphore creation (`/dev/shm/.qipc-tmp.<pid>.…`).
    Qipc,
}

/// A temporary file a process killed while creating a semaphore left.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Temporary {
    /// The file.
    pub path: String,
    /// Who makes such files.
    pub of: TemporaryOf,
    /// The creating process, when the name says.
    pub creator: Option<i32>,
    /// Owner and mode.
    pub owner: Owner,
    /// Last modification time.
    pub created: i64,
    /// Whether anybody uses it.
    pub usage: Usage,
}

/// One object the snapshot found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Object {
    /// A System V segment.
    SysvSegment(SysvSegment),
    /// A System V semaphore.
    SysvSemaphore(SysvSemaphore),
    /// A POSIX shared memory object.
    PosixSegment(PosixSegment),
    /// A POSIX named semaphore.
    PosixSemaphore(PosixSemaphore),
    /// A System V key file with nothing behind it.
    KeyFile(KeyFile),
    /// A temporary file of an interrupted semaphore creation.
    Temporary(Temporary),
}

impl Object {
    /// Where it lives: a file path, or `shmid N` / `semid N` for System V
    /// objects no key file names.
    pub fn location(&self) -> String {
        match self {
            Object::SysvSegment(o) => o.key_file.clone().unwrap_or_else(|| format!("shmid {}", o.shmid)),
            Object::SysvSemaphore(o) => o.key_file.clone().unwrap_or_else(|| format!("semid {}", o.semid)),
            Object::PosixSegment(o) => o.path.clone(),
            Object::PosixSemaphore(o) => o.path.clone(),
            Object::KeyFile(o) => o.path.clone(),
            Object::Temporary(o) => o.path.clone(),
        }
    }

    /// Its backend: `systemv` or `posix`.
    pub fn backend(&self) -> KeyType {
        match self {
            Object::SysvSegment(_) | Object::SysvSemaphore(_) | Object::KeyFile(_) => KeyType::SYSTEM_V,
            _ => KeyType::PosixRealtime,
        }
    }

    /// A short name of its kind: `shm`, `sem`, `keyfile` or `temp`.
    pub fn kind(&self) -> &'static str {
        match self {
            Object::SysvSegment(_) | Object::PosixSegment(_) => "shm",
            Object::SysvSemaphore(_) | Object::PosixSemaphore(_) => "sem",
            Object::KeyFile(_) => "keyfile",
            Object::Temporary(_) => "temp",
        }
    }

    /// Its key, if known.
    pub fn key(&self) -> Option<&NativeKey> {
        match self {
            Object::SysvSegment(o) => o.key.as_ref(),
            Object::SysvSemaphore(o) => o.key.as_ref(),
            Object::PosixSegment(o) => Some(&o.key),
            Object::PosixSemaphore(o) => Some(&o.key),
            Object::KeyFile(o) => o.key.as_ref(),
            Object::Temporary(_) => None,
        }
    }

    /// Whether anybody uses it.
    pub fn usage(&self) -> &Usage {
        match self {
            Object::SysvSegment(o) => &o.usage,
            Object::SysvSemaphore(o) => &o.usage,
            Object::PosixSegment(o) => &o.usage,
            Object::PosixSemaphore(o) => &o.usage,
            Object::KeyFile(o) => &o.usage,
            Object::Temporary(o) => &o.usage,
        }
    }

    /// Owner and mode.
    pub fn owner(&self) -> &Owner {
        match self {
            Object::SysvSegment(o) => &o.owner,
            Object::SysvSemaphore(o) => &o.owner,
            Object::PosixSegment(o) => &o.owner,
            Object::PosixSemaphore(o) => &o.owner,
            Object::KeyFile(o) => &o.owner,
            Object::Temporary(o) => &o.owner,
        }
    }

    /// When it was created (or last modified), seconds since the epoch.
    pub fn created(&self) -> i64 {
        match self {
            Object::SysvSegment(o) => o.created,
            Object::SysvSemaphore(o) => o.created,
            Object::PosixSegment(o) => o.created,
            Object::PosixSemaphore(o) => o.created,
            Object::KeyFile(o) => o.created,
            Object::Temporary(o) => o.created,
        }
    }

    /// Its age at the time of `snapshot`.
    pub fn age(&self, snapshot: &Snapshot) -> Duration {
        Duration::from_secs(snapshot.taken_at.saturating_sub(self.created()).max(0) as u64)
    }
}

/// Everything the inspector found, at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    objects: Vec<Object>,
    groups: Vec<scan::Group>,
    taken_at: i64,
    temp_dir: String,
    hidden_processes: usize,
    other_names: usize,
}

impl Snapshot {
    /// Looks at the machine once.
    ///
    /// # Errors
    /// [`ErrorKind::Unknown`](crate::ErrorKind::Unknown) if `/proc` cannot be read.
    pub fn take() -> Result<Snapshot> {
        scan::take()
    }

    /// The Qt-style objects, in a stable order: System V first, then
    /// POSIX, grouped by key, segment before semaphore.
    pub fn objects(&self) -> &[Object] {
        &self.objects
    }

    /// When the snapshot was taken (seconds since the epoch).
    pub fn taken_at(&self) -> i64 {
        self.taken_at
    }

    /// The temporary directory searched for key files.
    pub fn temp_dir(&self) -> &str {
        &self.temp_dir
    }

    /// How many processes could not be inspected (other users' processes,
    /// without privileges). Objects are called orphaned only on evidence that
    /// holds for every process (System V attach counts, the lease probe), so
    /// this only means that some users of in-use objects are not listed.
    pub fn hidden_processes(&self) -> usize {
        self.hidden_processes
    }

    /// How many `/dev/shm` semaphores were left out because their names do
    /// not follow Qt's schemes and no segment goes with them (they belong to
    /// other software). Other programs' POSIX segments are listed, with
    /// [`PosixSegment::qt_named`] false.
    pub fn other_names(&self) -> usize {
        self.other_names
    }

    /// The objects of one key, and the names Qt derives for it.
    pub fn key_report(&self, key: &NativeKey) -> KeyReport {
        scan::key_report(self, key)
    }
}

/// The names Qt derives for a key, and the objects found for it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KeyReport {
    /// The key.
    pub key: NativeKey,
    /// Where the segment lives (key file or `/dev/shm` path).
    pub segment_path: String,
    /// Where the lock lives.
    pub lock_path: String,
    /// The System V keys the key files give now (segment, lock), if they exist.
    pub sysv_keys: (Option<i32>, Option<i32>),
    /// The objects found.
    pub objects: Vec<Object>,
}

impl KeyReport {
    /// True if nothing exists for the key.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The segment, if one exists.
    pub fn segment(&self) -> Option<&Object> {
        self.objects.iter().find(|o| matches!(o, Object::SysvSegment(_) | Object::PosixSegment(_)))
    }

    /// The lock semaphore, if one exists.
    pub fn lock(&self) -> Option<&Object> {
        self.objects.iter().find(|o| matches!(o, Object::SysvSemaphore(_) | Object::PosixSemaphore(_)))
    }
}

/// The objects of one key ([`Snapshot::key_report`] of a fresh snapshot).
///
/// # Errors
/// [`ErrorKind::KeyError`](crate::ErrorKind::KeyError) for an empty key.
pub fn info(key: &NativeKey) -> Result<KeyReport> {
    if key.is_empty() {
        return Err(crate::error::Error::new(
            crate::error::ErrorKind::KeyError,
            crate::error::Operation::Inspect,
            "the key is empty",
        ));
    }
    Ok(Snapshot::take()?.key_report(key))
}
