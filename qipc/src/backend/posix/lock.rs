//! The lock semaphore of a POSIX segment: `/dev/shm/sem.<name>`, taken by
//! name and validated (see the lifetime model in [`crate::backend`]).

use crate::{
    backend::{group_error, LockAccess, LockInfo, LockMode},
    error::{Error, ErrorKind, Operation, Result},
    sys::{
        errno::{self, EDEADLK, EINVAL, ENOENT, ENOTRECOVERABLE, EPERM},
        semfile::{Locked, SemFile},
        Deadline,
    },
};

/// How many times a lock taken by name may turn out stale in a row before
/// giving up (someone keeps replacing the semaphore).
const MAX_STALE: usize = 10_000;

/// A lock semaphore this process has open (and, while a protocol operation
/// runs, holds).
#[derive(Debug)]
pub(crate) struct Lock {
    sem: SemFile,
    path: String,
}

impl Lock {
    /// Opens the semaphore at `path` (creating it with value 1 and a gate if
    /// missing and `access` is given) and takes it; once taken, checks that
    /// `path` still names it, else gives it back and starts again. `Ok(None)`
    /// if the deadline passed.
    pub(crate) fn acquire(
        op: Operation,
        path: &str,
        access: Option<&LockAccess>,
        deadline: Deadline,
    ) -> Result<Option<(Lock, LockInfo)>> {
        let mut holder_died = false;
        for _ in 0..MAX_STALE {
            let sem = match SemFile::open(path) {
                Ok(sem) => sem,
                Err(e) if errno::is(&e, ENOENT) => match access {
                    None => return Err(Error::os(op, "open", e).detail(format!("no lock semaphore {path}"))),
                    Some(access) => {
                        let how = access.resolve(segment_perm);
                        match create(path, how) {
                            Ok(Some(sem)) => sem,
                            // Someone created it first: open theirs.
                            Ok(None) => continue,
                            Err(e) => {
                                return Err(match how.group {
                                    Some(gid) if errno::is(&e, EPERM) => {
                                        group_error(op, "fchown", &format!("the lock semaphore {path}"), gid, e)
                                    }
                                    _ => sem_error(op, "create", path, e),
                                })
                            }
                        }
                    }
                },
                Err(e) => return Err(sem_error(op, "open", path, e)),
            };
            match sem.lock(deadline).map_err(|e| sem_error(op, "lock", path, e))? {
                Locked::TimedOut => return Ok(None),
                Locked::Yes { holder_died: died } => {
                    holder_died |= died;
                    let current = sem.is_named(path).map_err(|e| sem_error(op, "stat", path, e))?;
                    let lock = Lock { sem, path: path.to_string() };
                    if current {
                        return Ok(Some((lock, LockInfo { holder_died })));
                    }
                    // Removed or replaced while we waited: give it back, so
                    // that everybody else waiting on it wakes up and moves on
                    // as well, and take the current one by name.
                    lock.release()?;
                }
            }
        }
        Err(Error::new(ErrorKind::LockError, op, format!("the lock semaphore {path} keeps being replaced")))
    }

    /// Takes the lock again (the data lock of an attached segment), without
    /// looking at the name.
    #[inline]
    pub(crate) fn lock(&self, deadline: Deadline) -> Result<Option<LockInfo>> {
        match self.sem.lock(deadline) {
            Ok(Locked::Yes { holder_died }) => Ok(Some(LockInfo { holder_died })),
            Ok(Locked::TimedOut) => Ok(None),
            Err(e) => Err(sem_error(Operation::Lock, "lock", &self.path, e)),
        }
    }

    /// Releases the lock; the semaphore stays open.
    #[inline]
    pub(crate) fn unlock(&self) -> Result<()> {
        self.sem.unlock().map_err(|e| sem_error(Operation::Unlock, "unlock", &self.path, e))
    }

    /// True if the path still names this semaphore.
    pub(crate) fn is_current(&self) -> bool {
        self.sem.is_named(&self.path).unwrap_or(false)
    }

    /// Releases the lock and closes the semaphore.
    pub(crate) fn release(self) -> Result<()> {
        self.unlock()
    }

    /// Called holding the lock when no segment is left: removes the
    /// semaphore's name unless another process has it open (it will find no
    /// segment and retire it in turn), then releases the lock, waking anyone
    /// who opened it in the meantime. Returns whether the name was removed.
    pub(crate) fn retire(self) -> Result<bool> {
        let removed = match self.sem.others_have_open() {
            Ok(false) => self.sem.unlink_if_named(&self.path).unwrap_or(false),
            // Others have it open, or we cannot tell (not ours): keep it.
            _ => false,
        };
        self.unlock()?;
        Ok(removed)
    }

    /// Removes the semaphore's name whoever has it open (a forced removal),
    /// then releases the lock.
    pub(crate) fn retire_forced(self) -> Result<bool> {
        let removed = self.sem.unlink_if_named(&self.path).unwrap_or(false);
        self.unlock()?;
        Ok(removed)
    }

    /// The semaphore's path.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }
}

/// Creates the lock semaphore (value 1, with a gate) with `how`'s
/// permissions; a group that is only the segment's is given if allowed.
fn create(path: &str, how: LockMode) -> std::io::Result<Option<SemFile>> {
    match SemFile::create(path, 1, how.mode, how.group, true) {
        Err(e) if how.group.is_some() && !how.group_required && errno::is(&e, EPERM) => {
            SemFile::create(path, 1, how.mode, None, true)
        }
        other => other,
    }
}

/// The mode bits and group of the segment at `location` (`/dev/shm/<name>`).
fn segment_perm(location: &str) -> Option<(u32, u32)> {
    crate::sys::unix::lstat(location).ok().map(|st| (st.mode & 0o777, st.gid))
}

/// An error from a semaphore operation, in users' words.
pub(crate) fn sem_error(op: Operation, call: &'static str, path: &str, e: std::io::Error) -> Error {
    let err = Error::os(op, call, e);
    let detail = match err.kind() {
        ErrorKind::PermissionDenied => format!("permission denied for the lock semaphore {path}"),
        ErrorKind::OutOfResources => format!("out of resources creating the lock semaphore {path}"),
        _ => match err.raw_os_error() {
            Some(EINVAL) => format!("{path} is not a semaphore"),
            Some(EPERM) => format!("the lock of {path} was taken by another thread"),
            Some(EDEADLK) => {
                "this thread already holds this lock through another handle (waiting would never end)".to_string()
            }
            Some(ENOTRECOVERABLE) => {
                format!("the lock semaphore {path} is unusable after its holder died; remove the segment")
            }
            _ => format!("{call} of the lock semaphore {path} failed"),
        },
    };
    let kind = if err.kind() == ErrorKind::Unknown { ErrorKind::LockError } else { err.kind() };
    err.detail(detail).with_kind(kind)
}

