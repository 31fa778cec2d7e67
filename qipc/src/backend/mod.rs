//! The backends: each owns its platform's Qt protocol end to end (names and
//! key files, create/attach/detach, the lock semaphore, the last-detacher
//! rule, clean-up) behind the small interface of this module:
//! [`create`], [`attach`], [`open_or_create`], [`detach`], [`remove`], and a
//! [`Segment`] that gives its [`Mapping`](crate::sys::Mapping) and its lock.
//!
//! The public types dispatch here and never see a system call; the backends
//! call only the typed wrappers of [`crate::sys`].
//!
//! # The lifetime model
//!
//! Three kinds of objects exist for a key: the **segment**, its **lock
//! semaphore**, and (System V) **key files** whose inodes give the keys.
//! Among qipc processes these rules hold for every interleaving of create,
//! attach, detach, drop, fork, SIGKILL and `qipc gc`:
//!
//! 1. **A validated lock.** Create, attach, detach, remove and gc take the
//!    lock semaphore *by name* and, once they hold it, check that the name
//!    still designates the object they hold (POSIX: the same inode; System V:
//!    the key file still has the inode the key came from, while the
//!    semaphore is alive). A stale semaphore is given back at once (so that
//!    other waiters on it move on too) and the lock is taken again by name.
//!    A handle keeps its lock semaphore open only while it is attached and
//!    forgets it at detach, so a handle that is reused later starts afresh.
//! 2. **Removal only under the validated lock, by identity.** Nothing is
//!    removed by name without checking, under the lock, that the name still
//!    refers to the object (inode, id) that was found unused. Names go
//!    first, objects after (a System V lock semaphore is removed after its
//!    key file, so a process woken by the removal derives the key anew).
//! 3. **The last detacher.** A segment is removed by the process whose detach
//!    leaves nobody attached: System V `shm_nattch == 0` (which counts forked
//!    children); POSIX, a write-lease probe from a fresh open file
//!    description (which sees every other description, including one a
//!    forked child shares with its parent, and every mapping). Nobody owns a
//!    segment because it created it. A POSIX segment's descriptor is closed
//!    once it is mapped: a child that another thread spawns copies the
//!    descriptor table until it executes its program, and would otherwise
//!    hold the segment open past our detach. Only the few microseconds
//!    between `shm_open` and that close are exposed (a detach right after
//!    them leaves an orphan, which `create` replaces and gc removes); a
//!    forked child that has not executed a program counts as a user, as it
//!    shares the mapping.
//! 4. **The lock goes with the segment.** Whoever holds the lock and finds no
//!    segment left (the last detacher; an attach or create that failed)
//!    removes the lock semaphore, unless another process is waiting for it or
//!    (POSIX) has it open; that process then finds no segment in its turn
//!    and removes it. So after everyone has left, nothing remains.
//! 5. **Unlock posts only what it took.** An unlock releases exactly the
//!    semaphore its lock acquired; if that one was removed meanwhile (by a Qt
//!    process, or a forced removal), the unlock reports it and posts nothing
//!    anywhere else.
//! 6. **Crashes.** System V locks carry `SEM_UNDO`: the kernel releases a
//!    dead holder's lock. A System V lock semaphore is created and given its
//!    value under an `flock` of its key file, so a creator killed in between
//!    is recognised and the semaphore initialised by the next locker. POSIX
//!    locks on semaphores qipc created have a robust gate: the next locker
//!    gives back a token a killed holder took (see [`crate::sys::semfile`]).
//!    A segment left with nobody attached is an orphan: `create` replaces it
//!    (unless asked not to) and `qipc gc` removes it.
//! 7. **Files.** qipc removes a key file only if it is a regular file that
//!    Qt's naming scheme made (`qipc_sharedmemory_…`, `qipc_systemsem_…`) or
//!    that qipc itself created for a native key (it then carries a marker
//!    line); never a user's file named as a native key, never a directory.
//!
//! On **Windows** the kernel keeps the lifetime instead (see
//! [`windows`]): an object lives while any process has a handle to it and
//! goes with the last one, crash or not, so there are no key files, no
//! orphans and nothing to collect; removal by name is impossible (`remove`
//! only reports whether a segment exists); the last detacher's rule holds
//! by itself. What Windows does not do is give back a semaphore count
//! taken by a process that dies: a dead holder's lock stays taken, and the
//! deadlines that every wait takes are the way out.
//!
//! What a Qt peer does under its own rules is not changed by this: a Qt
//! `create()` resets (System V) or replaces (POSIX) the lock semaphore, and
//! a Qt object that created a System V lock semaphore removes it when it is
//! destroyed, even while others hold it. qipc then never makes it worse: it
//! never posts to a semaphore it did not acquire (so the lock never counts
//! above one), it re-derives a removed semaphore by name, and it never
//! removes anything a Qt process still has open or attached.

#[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
pub(crate) mod posix;
#[cfg(target_vendor = "apple")]
pub(crate) mod posix_darwin;
#[cfg(unix)]
pub(crate) mod sysv;
#[cfg(windows)]
pub(crate) mod windows;

mod huge;
pub(crate) mod semaphore;

use crate::{
    error::{Error, ErrorKind, Operation, Result},
    key::{KeyType, NativeKey},
    sys::{Deadline, Mapping},
};

pub(crate) use huge::HugeOutcome;

/// What a create asks for, in backend terms. (Windows uses only the size
/// and access: its objects get default security and normal pages.)
#[derive(Debug, Clone)]
#[cfg_attr(windows, allow(dead_code))]
pub(crate) struct CreateParams {
    pub(crate) size: usize,
    pub(crate) writable: bool,
    pub(crate) populate: bool,
    pub(crate) huge_pages: bool,
    /// Replace a segment nobody is attached to (checked under the lock).
    pub(crate) reclaim_orphan: bool,
    /// Permission bits for the segment and its lock.
    pub(crate) mode: u32,
    /// Permission bits given exactly: applied as they are. Otherwise `mode`
    /// is Qt's 0600, passed as Qt passes it (the system reduces it by the
    /// umask for files, that is POSIX objects and key files, and not for
    /// System V objects).
    pub(crate) exact_mode: bool,
    /// The group to give the objects, if any.
    pub(crate) group: Option<u32>,
}

/// What a create did besides creating.
#[derive(Debug, Clone, Default)]
#[cfg_attr(windows, allow(dead_code))]
pub(crate) struct Created {
    pub(crate) huge: HugeOutcome,
    /// An orphan (a segment nobody was attached to) was replaced.
    pub(crate) reclaimed_orphan: bool,
}

/// Which of the two [`open_or_create`] did.
#[derive(Debug, Clone)]
pub(crate) enum Opened {
    Created(Created),
    Attached,
}

/// The lock's report when it was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct LockInfo {
    /// The previous holder was killed while holding the lock; its lock was
    /// recovered.
    pub(crate) holder_died: bool,
}

/// What a detach did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Detached {
    /// This detach was the last and removed the segment.
    pub(crate) removed: bool,
}

/// An attached segment of some backend.
#[derive(Debug)]
pub(crate) enum Segment {
    #[cfg(unix)]
    SysV(sysv::Segment),
    #[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
    Posix(posix::Segment),
    #[cfg(target_vendor = "apple")]
    PosixDarwin(posix_darwin::Segment),
    #[cfg(windows)]
    Windows(windows::Segment),
}

impl Segment {
    /// The mapping.
    #[inline]
    pub(crate) fn mapping(&self) -> &Mapping {
        match self {
            #[cfg(unix)]
            Segment::SysV(s) => s.mapping(),
            #[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
            Segment::Posix(s) => s.mapping(),
            #[cfg(target_vendor = "apple")]
            Segment::PosixDarwin(s) => s.mapping(),
            #[cfg(windows)]
            Segment::Windows(s) => s.mapping(),
        }
    }

    /// Takes the segment's lock; `Ok(None)` if the deadline passed first.
    #[inline]
    pub(crate) fn lock(&self, deadline: Deadline) -> Result<Option<LockInfo>> {
        match self {
            #[cfg(unix)]
            Segment::SysV(s) => s.lock(deadline),
            #[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
            Segment::Posix(s) => s.lock(deadline),
            #[cfg(target_vendor = "apple")]
            Segment::PosixDarwin(s) => s.lock(deadline),
            #[cfg(windows)]
            Segment::Windows(s) => s.lock(deadline),
        }
    }

    /// Releases the segment's lock.
    #[inline]
    pub(crate) fn unlock(&self) -> Result<()> {
        match self {
            #[cfg(unix)]
            Segment::SysV(s) => s.unlock(),
            #[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
            Segment::Posix(s) => s.unlock(),
            #[cfg(target_vendor = "apple")]
            Segment::PosixDarwin(s) => s.unlock(),
            #[cfg(windows)]
            Segment::Windows(s) => s.unlock(),
        }
    }
}

/// The error for a key type this platform has no backend for.
fn unsupported(op: Operation, key: &NativeKey) -> Error {
    let what = match key.key_type() {
        KeyType::SystemV { .. } => "System V keys are not supported on this platform",
        KeyType::PosixRealtime => "POSIX keys are not supported on this platform",
        KeyType::Windows => "Windows keys are only supported on Windows",
    };
    Error::new(ErrorKind::KeyError, op, format!("unsupported key type: {what}"))
}

fn check_key(op: Operation, key: &NativeKey) -> Result<()> {
    if key.is_empty() {
        return Err(Error::new(ErrorKind::KeyError, op, "the key is empty"));
    }
    Ok(())
}

/// Permission bits where every class that may read may also write (a lock
/// semaphore must be writable by whoever takes it).
#[cfg(unix)]
pub(crate) fn readers_may_write(mode: u32) -> u32 {
    let mut m = mode & 0o777;
    for (r, w) in [(0o400, 0o200), (0o040, 0o020), (0o004, 0o002)] {
        if m & r != 0 {
            m |= w;
        }
    }
    m
}

/// Where a lock semaphore that has to be made gets its permissions.
#[cfg(unix)]
#[derive(Debug, Clone)]
pub(crate) enum LockAccess {
    /// Made by a create: exactly `mode` if given (else Qt's default), and
    /// `group` if given.
    Create { mode: Option<u32>, group: Option<u32> },
    /// Made by an attacher, or by any user of an attached segment after a
    /// Qt process took the lock with it: like the segment at this location
    /// (the key file of a System V segment, or `/dev/shm/<name>`), so that
    /// whoever may read the segment may take the lock; Qt's default if the
    /// segment cannot be looked at.
    LikeSegment(String),
}

/// The permission bits and group for a lock that has to be made.
#[cfg(unix)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LockMode {
    /// Exact permission bits (given, or the segment's), or `None` for Qt's
    /// default: 0600 as Qt passes it, which the umask reduces where the
    /// system applies one (POSIX semaphores and key files are files; System
    /// V sets are not), so no call is needed to read the umask.
    pub(crate) mode: Option<u32>,
    pub(crate) group: Option<u32>,
    /// Whether failing to give `group` fails the operation (a group the
    /// caller asked for) or is passed over (the segment's group, which this
    /// process may not belong to: members then reach the lock through the
    /// bits for others, as they reach the segment).
    pub(crate) group_required: bool,
}

#[cfg(unix)]
impl LockAccess {
    /// Resolves the permissions, looking the segment up with `segment_perm`
    /// (its mode bits and group) where they follow it. Read only when a
    /// semaphore is made, so the common paths make no system call for it.
    pub(crate) fn resolve(&self, segment_perm: impl FnOnce(&str) -> Option<(u32, u32)>) -> LockMode {
        match self {
            LockAccess::Create { mode, group } => LockMode { mode: *mode, group: *group, group_required: true },
            LockAccess::LikeSegment(location) => match segment_perm(location) {
                // Our own group needs no change (and a group we are not in
                // may not be given: see `group_required`).
                Some((mode, gid)) => LockMode {
                    mode: Some(readers_may_write(mode)),
                    group: (gid != crate::sys::unix::egid()).then_some(gid),
                    group_required: false,
                },
                None => LockMode { mode: None, group: None, group_required: false },
            },
        }
    }
}

#[cfg(unix)]
impl LockMode {
    /// What a key file made for this lock needs besides Qt's defaults, if
    /// anything.
    pub(crate) fn for_key_file(self) -> Option<LockMode> {
        (self.mode.is_some() || self.group.is_some()).then_some(self)
    }
}

/// The error for a group that could not be given to `what`.
#[cfg(unix)]
pub(crate) fn group_error(op: Operation, call: &'static str, what: &str, gid: u32, e: std::io::Error) -> Error {
    let why = if crate::sys::errno::is(&e, crate::sys::errno::EPERM) {
        ": this process is not a member of that group (nor privileged)"
    } else {
        ""
    };
    Error::os(op, call, e).detail(format!("unable to give {what} the group {gid}{why}"))
}

/// The error for a lock that could not be taken in time.
pub(crate) fn lock_timeout(op: Operation) -> Error {
    #[cfg(unix)]
    const WHY: &str = "timed out waiting for the lock (another process holds it; see `qipc info` for who)";
    #[cfg(windows)]
    const WHY: &str = "timed out waiting for the lock (another process holds it, or a holder died: \
         Windows does not give a dead holder's lock back while others have it open)";
    Error::new(ErrorKind::LockError, op, WHY)
}

/// Creates a segment and attaches to it.
pub(crate) fn create(key: &NativeKey, params: &CreateParams, deadline: Deadline) -> Result<(Segment, Created)> {
    check_key(Operation::Create, key)?;
    match key.key_type() {
        #[cfg(unix)]
        KeyType::SystemV { ftok_id } => {
            sysv::create(key, ftok_id, params, deadline).map(|(s, c)| (Segment::SysV(s), c))
        }
        #[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
        KeyType::PosixRealtime => posix::create(key, params, deadline).map(|(s, c)| (Segment::Posix(s), c)),
        #[cfg(target_vendor = "apple")]
        KeyType::PosixRealtime => {
            posix_darwin::create(key, params, deadline).map(|(s, c)| (Segment::PosixDarwin(s), c))
        }
        #[cfg(windows)]
        KeyType::Windows => windows::create(key, params, deadline).map(|(s, c)| (Segment::Windows(s), c)),
        #[allow(unreachable_patterns)]
        _ => Err(unsupported(Operation::Create, key)),
    }
}

/// Attaches to an existing segment.
pub(crate) fn attach(key: &NativeKey, writable: bool, deadline: Deadline) -> Result<Segment> {
    check_key(Operation::Attach, key)?;
    match key.key_type() {
        #[cfg(unix)]
        KeyType::SystemV { ftok_id } => sysv::attach(key, ftok_id, writable, deadline).map(Segment::SysV),
        #[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
        KeyType::PosixRealtime => posix::attach(key, writable, deadline).map(Segment::Posix),
        #[cfg(target_vendor = "apple")]
        KeyType::PosixRealtime => posix_darwin::attach(key, writable, deadline).map(Segment::PosixDarwin),
        #[cfg(windows)]
        KeyType::Windows => windows::attach(key, writable, deadline).map(Segment::Windows),
        #[allow(unreachable_patterns)]
        _ => Err(unsupported(Operation::Attach, key)),
    }
}

/// Attaches to the segment, or creates it if there is none, under one hold
/// of the lock (so no other process can create or remove it in between).
pub(crate) fn open_or_create(key: &NativeKey, params: &CreateParams, deadline: Deadline) -> Result<(Segment, Opened)> {
    check_key(Operation::Create, key)?;
    match key.key_type() {
        #[cfg(unix)]
        KeyType::SystemV { ftok_id } => {
            sysv::open_or_create(key, ftok_id, params, deadline).map(|(s, o)| (Segment::SysV(s), o))
        }
        #[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
        KeyType::PosixRealtime => posix::open_or_create(key, params, deadline).map(|(s, o)| (Segment::Posix(s), o)),
        #[cfg(target_vendor = "apple")]
        KeyType::PosixRealtime => {
            posix_darwin::open_or_create(key, params, deadline).map(|(s, o)| (Segment::PosixDarwin(s), o))
        }
        #[cfg(windows)]
        KeyType::Windows => windows::open_or_create(key, params, deadline).map(|(s, o)| (Segment::Windows(s), o)),
        #[allow(unreachable_patterns)]
        _ => Err(unsupported(Operation::Create, key)),
    }
}

/// Detaches; the last detacher removes the segment and its lock. On an
/// error the segment is given back, still attached.
#[allow(clippy::result_large_err)] // the segment goes back to the caller, who keeps it
pub(crate) fn detach(segment: Segment, deadline: Deadline) -> std::result::Result<Detached, (Segment, Error)> {
    match segment {
        #[cfg(unix)]
        Segment::SysV(s) => sysv::detach(s, deadline).map_err(|(s, e)| (Segment::SysV(s), e)),
        #[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
        Segment::Posix(s) => posix::detach(s, deadline).map_err(|(s, e)| (Segment::Posix(s), e)),
        #[cfg(target_vendor = "apple")]
        Segment::PosixDarwin(s) => posix_darwin::detach(s, deadline).map_err(|(s, e)| (Segment::PosixDarwin(s), e)),
        #[cfg(windows)]
        Segment::Windows(s) => windows::detach(s, deadline).map_err(|(s, e)| (Segment::Windows(s), e)),
    }
}

/// Removes the segment, its lock and the key files qipc may remove, whoever
/// is attached; returns whether anything existed. On Windows nothing can be
/// removed by name: it reports whether a segment exists, removing nothing.
pub(crate) fn remove(key: &NativeKey, deadline: Deadline) -> Result<bool> {
    check_key(Operation::Remove, key)?;
    match key.key_type() {
        #[cfg(unix)]
        KeyType::SystemV { ftok_id } => sysv::remove(key, ftok_id, deadline),
        #[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
        KeyType::PosixRealtime => posix::remove(key, deadline),
        #[cfg(target_vendor = "apple")]
        KeyType::PosixRealtime => posix_darwin::remove(key, deadline),
        #[cfg(windows)]
        KeyType::Windows => windows::remove(key, deadline),
        #[allow(unreachable_patterns)]
        _ => Err(unsupported(Operation::Remove, key)),
    }
}

/// The identity a listing saw for a segment, so that a later clean-up
/// removes that object and no other. (Linux only, for the inspector: on
/// Windows a crash leaves nothing to collect, and on macOS nothing can be
/// proven unused.)
#[cfg(target_os = "linux")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SegmentId {
    /// A System V shmid.
    SysV(i32),
    /// A POSIX object's device and inode.
    Posix { dev: u64, ino: u64 },
}

/// What [`collect`] did for a key.
#[cfg(target_os = "linux")]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Collected {
    pub(crate) segment_removed: bool,
    pub(crate) lock_removed: bool,
    pub(crate) files_removed: Vec<String>,
    /// Why the segment (or, with no segment expected, the lock) was kept.
    pub(crate) kept: Option<String>,
}

#[cfg(target_os = "linux")]
/// The objects a clean-up works on: the segment's name and its lock's
/// name, as Qt derives them (the inspector knows them from the files it
/// found even when it cannot recover the legacy key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) key_type: KeyType,
    pub(crate) segment: String,
    pub(crate) lock: String,
    /// A native key: key files are removed only if qipc marked them.
    pub(crate) native: bool,
}

#[cfg(target_os = "linux")]
impl Target {
    pub(crate) fn of(key: &NativeKey) -> Target {
        Target {
            key_type: key.key_type(),
            segment: key.native_key().to_string(),
            lock: key.lock_key().native_key().to_string(),
            native: key.legacy_key().is_none(),
        }
    }
}

/// Removes what a crash left for `target`, under its lock: the segment the
/// listing saw (`expect`), if it is still that object and nobody uses it;
/// then the lock semaphore and key files, if no segment remains and nobody
/// uses them. Nothing in use is touched.
#[cfg(target_os = "linux")]
pub(crate) fn collect(target: &Target, expect: Option<SegmentId>, deadline: Deadline) -> Result<Collected> {
    if target.segment.is_empty() {
        return Err(Error::new(ErrorKind::KeyError, Operation::Remove, "the key is empty"));
    }
    match target.key_type {
        #[cfg(unix)]
        KeyType::SystemV { ftok_id } => sysv::collect(target, ftok_id, expect, deadline),
        #[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
        KeyType::PosixRealtime => posix::collect(target, expect, deadline),
        #[allow(unreachable_patterns)]
        _ => Err(Error::new(ErrorKind::KeyError, Operation::Remove, "unsupported key type on this platform")),
    }
}
