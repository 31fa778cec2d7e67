//! The lock semaphore of a System V segment: one System V semaphore whose
//! key comes from a key file (`qipc_systemsem_…` for a legacy key; the
//! segment's own file for a native key), taken with `SEM_UNDO` as Qt does,
//! by name and validated (see the lifetime model in [`crate::backend`]).

use std::{
    os::fd::{AsFd, OwnedFd},
    sync::{
        atomic::{AtomicI32, Ordering},
        Mutex,
    },
    time::Duration,
};

use super::keyfile;
use crate::{
    backend::{LockAccess, LockInfo, LockMode},
    error::{Error, ErrorKind, Operation, Result},
    sys::{
        errno::{self, EACCES, EIDRM, EINVAL, ENOENT, EPERM},
        sysv::{self as os, Key, SemId},
        unix::{self, FileId, OpenHow},
        Deadline,
    },
};

/// How many times in a row a lock taken by name may turn out stale before
/// giving up.
const MAX_STALE: usize = 10_000;
/// Protocol waits are sliced so that a semaphore whose creator was killed
/// before giving it its value can be recognised while waiting.
const WAIT_SLICE: Duration = Duration::from_millis(250);
/// A semaphore younger than this may still be initialised by a live creator.
const INIT_GRACE_SECS: i64 = 2;
/// The size of the semaphore sets qipc creates for locks. Qt opens a set of
/// any size and uses semaphore 0; the second one marks the set as qipc's.
/// A set Qt created (one semaphore) belongs to the Qt object that created
/// it: Qt removes it when that object goes, and a Qt 6 object whose
/// semaphore someone else removed fails its next create or attach. So qipc
/// removes only sets it made.
const QIPC_NSEMS: i32 = 2;

/// True if qipc made the set (see [`QIPC_NSEMS`]).
fn made_by_qipc(id: SemId) -> bool {
    os::sem_stat(id).is_ok_and(|st| st.nsems >= QIPC_NSEMS as u64)
}

/// How to create a missing lock semaphore.
#[derive(Debug, Clone)]
pub(crate) struct LockPerm {
    /// Its permissions.
    pub(crate) access: LockAccess,
    /// Write qipc's marker into a key file this creates (native keys).
    pub(crate) marker: bool,
}

impl LockPerm {
    fn resolve(&self, ftok_id: u8) -> LockMode {
        self.access.resolve(|segment| segment_perm(segment, ftok_id))
    }
}

/// A System V lock semaphore this process uses.
#[derive(Debug)]
pub(crate) struct Lock {
    path: String,
    ftok_id: u8,
    /// The current semaphore; changes if it is removed and re-derived.
    id: AtomicI32,
    /// The key file the current semaphore was derived from, and whether
    /// this process made it (then it is known to be qipc's).
    origin: Mutex<(FileId, bool)>,
    perm: LockPerm,
}

/// What a sliced wait for a semaphore ended with.
enum Waited {
    Taken,
    TimedOut,
    Removed,
}

impl Lock {
    /// Takes the semaphore `path` names, creating key file and semaphore if
    /// `create` (with `perm`), and validates it once held. `Ok(None)` if the
    /// deadline passed.
    pub(crate) fn acquire(
        op: Operation,
        path: &str,
        ftok_id: u8,
        perm: LockPerm,
        create: bool,
        deadline: Deadline,
    ) -> Result<Option<Lock>> {
        for _ in 0..MAX_STALE {
            // The permissions, looked up at most once (for a lock made like
            // its segment, that takes a stat, shmget and shmctl).
            let mode = std::cell::OnceCell::new();
            let resolve = || *mode.get_or_init(|| perm.resolve(ftok_id));
            let (st, made_file) = if create {
                keyfile::ensure(op, path, perm.marker, || resolve().for_key_file())?
            } else {
                (keyfile::stat(op, path)?, None)
            };
            let key = Key::of_file(&st, ftok_id);
            // A key file just made has no semaphore yet (as a rule): go
            // straight to making it, under the flock of the file we hold.
            let found = match made_file {
                Some(_) => Err(std::io::Error::from_raw_os_error(ENOENT)),
                None => os::sem_open(key),
            };
            let (id, made_here) = match found {
                Ok(id) => (id, false),
                Err(e) if errno::is(&e, ENOENT) && create => {
                    match create_semaphore(op, path, key, resolve(), made_file)? {
                        Some(made) => made,
                        // The key file went meanwhile (its lock was retired):
                        // start again by name.
                        None => continue,
                    }
                }
                Err(e) => return Err(sem_error(op, "semget", path, e)),
            };
            match wait(op, path, id, deadline)? {
                Waited::TimedOut => return Ok(None),
                Waited::Removed => continue,
                Waited::Taken => {}
            }
            // Held: does the name still give this semaphore's key?
            if unix::stat(path).map(|now| Key::of_file(&now, ftok_id) == key).unwrap_or(false) {
                return Ok(Some(Lock {
                    path: path.to_string(),
                    ftok_id,
                    id: AtomicI32::new(id.0),
                    origin: Mutex::new((st.id, made_here)),
                    perm,
                }));
            }
            // Its key file was removed or replaced while we waited: this
            // semaphore has no name any more. Remove it if it is ours and
            // nobody else waits for it (they would find it stale too), else
            // pass it on.
            if os::sem_getncnt(id).unwrap_or(1) == 0 && made_by_qipc(id) {
                let _ = os::sem_remove(id);
            } else {
                let _ = os::semop(id, 1, true, Deadline::Never);
            }
        }
        Err(Error::new(ErrorKind::LockError, op, format!("the lock semaphore of {path} keeps being replaced")))
    }

    fn current(&self) -> SemId {
        SemId(self.id.load(Ordering::Relaxed))
    }

    /// The data lock of an attached segment: one `semop(-1, SEM_UNDO)` on
    /// the semaphore taken at attach. If it was removed meanwhile (a Qt
    /// process that created it exited), it is derived again by name, as Qt
    /// does.
    #[inline]
    pub(crate) fn lock(&self, deadline: Deadline) -> Result<Option<LockInfo>> {
        match os::semop(self.current(), -1, true, deadline) {
            Ok(true) => Ok(Some(LockInfo::default())),
            Ok(false) => Ok(None),
            Err(e) if errno::is(&e, EIDRM) || errno::is(&e, EINVAL) => self.relock(deadline),
            Err(e) => Err(sem_error(Operation::Lock, "semop", &self.path, e)),
        }
    }

    #[cold]
    fn relock(&self, deadline: Deadline) -> Result<Option<LockInfo>> {
        let Some(fresh) = Lock::acquire(Operation::Lock, &self.path, self.ftok_id, self.perm.clone(), true, deadline)? else {
            return Ok(None);
        };
        self.id.store(fresh.id.load(Ordering::Relaxed), Ordering::Relaxed);
        if let (Ok(mut mine), Ok(theirs)) = (self.origin.lock(), fresh.origin.lock()) {
            *mine = *theirs;
        }
        Ok(Some(LockInfo::default()))
    }

    /// Releases the semaphore this lock took. If it was removed while held,
    /// nothing is posted anywhere (posting to its successor would let two
    /// processes in) and the error says so.
    #[inline]
    pub(crate) fn unlock(&self) -> Result<()> {
        match os::semop(self.current(), 1, true, Deadline::Never) {
            Ok(_) => Ok(()),
            Err(e) if errno::is(&e, EIDRM) || errno::is(&e, EINVAL) => {
                Err(Error::os_as(ErrorKind::LockError, Operation::Unlock, "semop", e).detail(
                    "the lock semaphore was removed while this process held it (by a Qt process that created it, or a \
                 forced removal); nothing was released",
                ))
            }
            Err(e) => Err(sem_error(Operation::Unlock, "semop", &self.path, e)),
        }
    }

    /// Releases the lock; the semaphore stays.
    pub(crate) fn release(self) -> Result<()> {
        self.unlock()
    }

    /// Called holding the lock when no segment is left: removes the key
    /// file (if qipc may) and then the semaphore, unless another process
    /// waits for it (it will find no segment and retire it in turn) or a Qt
    /// process made it (its creator removes it, as in Qt).
    pub(crate) fn retire(self) -> Result<bool> {
        let id = self.current();
        // Waiters decrement (Qt and qipc never wait for zero).
        let waiting = os::sem_getncnt(id).unwrap_or(1);
        let made_here = self.origin.lock().is_ok_and(|o| o.1);
        if waiting > 0 || !(made_here || made_by_qipc(id)) {
            self.unlock()?;
            return Ok(false);
        }
        self.retire_forced()
    }

    /// For `qipc gc`, holding the lock with no segment left: as
    /// [`retire`](Lock::retire), and a set a Qt process made goes too if
    /// the last process that used it is gone (its creator most likely was
    /// that process, or went before it).
    #[cfg(target_os = "linux")] // for the inspector, which is Linux-only
    pub(crate) fn retire_abandoned(self) -> Result<bool> {
        let id = self.current();
        if made_by_qipc(id) {
            return self.retire();
        }
        let waiting = os::sem_getncnt(id).unwrap_or(1) + os::sem_getzcnt(id).unwrap_or(0);
        let last = os::sem_getpid(id).unwrap_or(0);
        let me = std::process::id() as i32;
        // The last user still runs, unless its pid now belongs to a process
        // that started after the last operation on the set.
        let used_at = os::sem_stat(id).map_or(i64::MAX, |st| st.otime.max(st.ctime));
        let last_alive = last > 0 && unix::pid_alive(last) && !crate::sys::proc::started_after(last, used_at);
        if waiting > 0 || (last != me && last_alive) {
            self.unlock()?;
            return Ok(false);
        }
        self.retire_forced()
    }

    /// Removes the key file (if qipc may) and the semaphore whoever waits.
    pub(crate) fn retire_forced(self) -> Result<bool> {
        let id = self.current();
        let file = self.origin.lock().map(|o| o.0).ok();
        // The name first: a process woken by the removal derives the key
        // from the file again and must not find the old one.
        if let Some(file) = file {
            keyfile::remove_if_same(&self.path, file);
        }
        match os::sem_remove(id) {
            Ok(()) => Ok(true),
            Err(e) if errno::is(&e, EIDRM) || errno::is(&e, EINVAL) => Ok(false),
            Err(e) => Err(sem_error(Operation::Remove, "semctl", &self.path, e)),
        }
    }
}

/// Creates the semaphore for `key` and gives it the value 1, holding an
/// `flock` of its key file meanwhile, so that a locker that finds a
/// semaphore still at 0 with no operation ever made on it can tell a
/// creator at work (the flock is taken) from one that was killed.
/// Returns the semaphore and whether this call made it (else another
/// process made it first), or `Ok(None)` if the key file is gone (a retire
/// removed it since it was found): the caller starts again by name.
/// `made_file` is the key file if this process has just made it.
fn create_semaphore(
    op: Operation,
    path: &str,
    key: Key,
    how: LockMode,
    made_file: Option<OwnedFd>,
) -> Result<Option<(SemId, bool)>> {
    // The key file this process just made, or the one the name gives now
    // (which must still be the file the key came from).
    let ours = made_file.is_some();
    let opened = match made_file {
        Some(file) => Ok(file),
        None => unix::open(path, OpenHow::READ),
    };
    let file = match opened {
        Ok(file) => Some(file),
        Err(e) if errno::is(&e, ENOENT) => return Ok(None),
        // A key file we may not read (Qt makes them 0640): make the
        // semaphore without the flock. Only a creator stopped for longer
        // than the grace period between semget and SETVAL could then be
        // taken for a dead one.
        Err(e) if errno::is(&e, EACCES) => None,
        Err(e) => return Err(Error::os(op, "open", e).detail(format!("unable to open the key file {path}"))),
    };
    if let Some(file) = &file {
        unix::flock_exclusive(file.as_fd(), true).map_err(|e| Error::os(op, "flock", e))?;
        // Still the file the key came from? If it was replaced, start again.
        if !ours && !unix::fstat(file.as_fd()).is_ok_and(|st| Key::of_file(&st, key_project(key)) == key) {
            return Ok(None);
        }
    }
    // Qt's semget passes 0600; the umask does not apply to System V sets.
    match os::sem_create(key, QIPC_NSEMS, how.mode.unwrap_or(0o600)) {
        Ok(id) => {
            if let Some(gid) = how.group {
                match os::sem_set_group(id, gid) {
                    Ok(()) => {}
                    // Not a member of the segment's group: the bits for
                    // others serve (see `LockMode::group_required`).
                    Err(e) if errno::is(&e, EPERM) && !how.group_required => {}
                    Err(e) => {
                        let _ = os::sem_remove(id);
                        let what = format!("the lock semaphore of {path}");
                        return Err(crate::backend::group_error(op, "semctl", &what, gid, e));
                    }
                }
            }
            if let Err(e) = os::sem_setval(id, 1) {
                let _ = os::sem_remove(id);
                return Err(sem_error(op, "semctl", path, e));
            }
            Ok(Some((id, true)))
        }
        Err(e) if errno::is(&e, errno::EEXIST) => match os::sem_open(key) {
            Ok(id) => Ok(Some((id, false))),
            Err(e) if errno::is(&e, ENOENT) => Ok(None),
            Err(e) => Err(sem_error(op, "semget", path, e)),
        },
        Err(e) => Err(sem_error(op, "semget", path, e)),
    }
}

/// The mode bits and group of the segment whose key file is `key_file`.
fn segment_perm(key_file: &str, ftok_id: u8) -> Option<(u32, u32)> {
    let st = unix::stat(key_file).ok()?;
    let id = os::shm_open(Key::of_file(&st, ftok_id), 0).ok()?;
    os::shm_stat(id).ok().map(|st| (st.mode, st.gid))
}

/// The project id in a key's top byte.
fn key_project(key: Key) -> u8 {
    (key.0 as u32 >> 24) as u8
}

/// Waits for the semaphore in slices until `deadline`; between slices,
/// initialises a semaphore whose creator was killed before doing so.
fn wait(op: Operation, path: &str, id: SemId, deadline: Deadline) -> Result<Waited> {
    loop {
        let slice = deadline.capped(WAIT_SLICE);
        match os::semop(id, -1, true, slice) {
            Ok(true) => return Ok(Waited::Taken),
            Ok(false) => {
                if initialise_abandoned(path, id) {
                    continue;
                }
                if deadline.passed() {
                    return Ok(Waited::TimedOut);
                }
            }
            Err(e) if errno::is(&e, EIDRM) || errno::is(&e, EINVAL) => return Ok(Waited::Removed),
            Err(e) => return Err(sem_error(op, "semop", path, e)),
        }
    }
}

/// If the semaphore is at 0, no operation was ever made on it, it is old
/// enough and its key file's flock is free, its creator died between
/// `semget` and `SETVAL`: give it the value 1 now. Returns whether it did.
#[cold]
fn initialise_abandoned(path: &str, id: SemId) -> bool {
    let never_used = |id| {
        os::sem_getval(id).ok() == Some(0)
            && os::sem_stat(id).is_ok_and(|st| st.otime == 0 && now() - st.ctime >= INIT_GRACE_SECS)
    };
    if !never_used(id) {
        return false;
    }
    let Ok(file) = unix::open(path, OpenHow::READ) else {
        return false;
    };
    if !unix::flock_exclusive(file.as_fd(), false).unwrap_or(false) {
        return false; // a creator is at work
    }
    never_used(id) && os::sem_setval(id, 1).is_ok()
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// An error from a semaphore call, in users' words.
pub(crate) fn sem_error(op: Operation, call: &'static str, path: &str, e: std::io::Error) -> Error {
    let err = Error::os(op, call, e);
    let detail = match err.kind() {
        ErrorKind::PermissionDenied => format!("permission denied for the lock semaphore of {path}"),
        ErrorKind::OutOfResources => {
            "out of resources: the system's limit of semaphore sets (kernel.sem) is reached".to_string()
        }
        _ => format!("{call} on the lock semaphore of {path} failed"),
    };
    let kind = if err.kind() == ErrorKind::Unknown { ErrorKind::LockError } else { err.kind() };
    err.detail(detail).with_kind(kind)
}

