//! The POSIX backend on Apple systems (Qt's `PosixRealtime` keys on macOS):
//! a shared memory object from `shm_open` and a named semaphore from
//! `sem_open` as its lock, with Qt's Darwin rules.
//!
//! # Qt's protocol on Darwin
//!
//! The same calls as on Linux, with Darwin's limits: names of at most 31
//! bytes, slash included (Qt's legacy keys are `/` + 29 hex digits of the
//! SHA-1 there, for the segment and its lock alike: the two namespaces are
//! separate); no `sem_timedwait` (a wait with a deadline polls); no
//! `posix_fallocate` (the size is set with `ftruncate`, once, as Darwin
//! allows it only once per object).
//!
//! # What Darwin's kernel objects cost
//!
//! Neither a shared memory object nor a named semaphore has a file on
//! Darwin: no device and inode to prove that a name still designates the
//! object found unused, no lease probe to learn whether others have it
//! open, no room for the robust gate. So this backend is conservative:
//!
//! - **nothing is removed unless asked**: the last detacher leaves the
//!   segment and its lock in place (as Qt does on macOS), an orphan left by
//!   a crash is not replaced by `create` (which reports AlreadyExists, as
//!   Qt), and there is no clean-up of leftovers; only
//!   [`SharedMemory::remove`](crate::SharedMemory::remove), which removes by
//!   name whoever uses it, removes anything;
//! - **a holder that dies keeps the lock**, as with Qt's own POSIX locks;
//!   the `_timeout` variants and the bounded wait of `Drop` are the way out;
//! - **sizes are the kernel's**: Darwin rounds a shared memory object up to
//!   whole pages and `fstat` reports that, so every handle (the creator's
//!   too) reports the page-rounded size.
//!
//! This backend is type-checked for `aarch64-apple-darwin` and
//! `x86_64-apple-darwin`; it has not been run.

pub(crate) mod semaphore;

use std::os::fd::{AsFd, OwnedFd};

use super::{lock_timeout, CreateParams, Created, Detached, HugeOutcome, LockInfo, Opened};
use crate::{
    error::{Error, ErrorKind, Operation, Result},
    key::NativeKey,
    sys::{
        darwin_sem::{self, NamedSem},
        errno::{self, ENOENT},
        posix as os,
        unix::{self, Create},
        Deadline, Mapping,
    },
};

/// XNU's limit on POSIX names (`PSHMNAMLEN`, `PSEMNAMLEN`), slash included.
const NAME_MAX: usize = 31;

/// An attached segment.
#[derive(Debug)]
pub(crate) struct Segment {
    mapping: Mapping,
    // Kept open while attached, as Qt does.
    _fd: OwnedFd,
    lock: Lock,
}

impl Segment {
    pub(crate) fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    #[inline]
    pub(crate) fn lock(&self, deadline: Deadline) -> Result<Option<LockInfo>> {
        // Darwin semaphores have no gate: a dead holder is never detected.
        Ok(self.lock.take(Operation::Lock, deadline)?.then_some(LockInfo::default()))
    }

    #[inline]
    pub(crate) fn unlock(&self) -> Result<()> {
        self.lock.give(Operation::Unlock)
    }
}

/// Checks a name as Darwin will see it: not empty, no NUL, at most 31 bytes.
/// (Inner slashes are allowed: sandboxed applications must use
/// `<application group>/<name>`.)
pub(crate) fn check_name(op: Operation, name: &str) -> Result<()> {
    let bad = |why: String| Err(Error::new(ErrorKind::KeyError, op, format!("bad name {name:?}: {why}")));
    if name.trim_start_matches('/').is_empty() {
        return bad("the name is empty".into());
    }
    if name.contains('\0') {
        return bad("it contains a NUL byte".into());
    }
    if name.len() > NAME_MAX {
        return bad(format!("it is {} bytes, and macOS allows at most {NAME_MAX}", name.len()));
    }
    Ok(())
}

fn object_error(op: Operation, call: &'static str, name: &str, e: std::io::Error) -> Error {
    let err = Error::os(op, call, e);
    let detail = match err.kind() {
        ErrorKind::NotFound => format!("no segment exists for this key ({name})"),
        ErrorKind::AlreadyExists => format!(
            "a segment already exists for this key ({name}; attach to it instead, or remove it if a crash left it)"
        ),
        ErrorKind::PermissionDenied => {
            "permission denied: the segment belongs to another user or does not allow this access".to_string()
        }
        ErrorKind::KeyError => format!("bad name {name:?}"),
        _ => return err,
    };
    err.detail(detail)
}

/// An error from a semaphore call, in users' words.
pub(crate) fn sem_error(op: Operation, call: &'static str, name: &str, e: std::io::Error) -> Error {
    let err = Error::os(op, call, e);
    let detail = match err.kind() {
        ErrorKind::PermissionDenied => format!("permission denied for the semaphore {name}"),
        ErrorKind::OutOfResources => format!("out of resources for the semaphore {name}"),
        _ => format!("{call} of the semaphore {name} failed"),
    };
    let kind = if err.kind() == ErrorKind::Unknown && op != Operation::OpenSemaphore {
        ErrorKind::LockError
    } else {
        err.kind()
    };
    err.detail(detail).with_kind(kind)
}

/// The lock semaphore of a segment, open.
#[derive(Debug)]
pub(crate) struct Lock {
    sem: NamedSem,
    name: String,
}

impl Lock {
    /// Opens the lock `name`, creating it with value 1 (mode `mode`) if
    /// missing, as Qt's `initKey` does.
    fn open(op: Operation, name: &str, mode: u32) -> Result<Lock> {
        for _ in 0..100 {
            match NamedSem::open(name) {
                Ok(sem) => return Ok(Lock { sem, name: name.to_string() }),
                Err(e) if errno::is(&e, ENOENT) => {}
                Err(e) => return Err(sem_error(op, "sem_open", name, e)),
            }
            match NamedSem::create(name, 1, mode) {
                Ok(Some(sem)) => return Ok(Lock { sem, name: name.to_string() }),
                // Created by someone else in between: open theirs.
                Ok(None) => {}
                Err(e) => return Err(sem_error(op, "sem_open", name, e)),
            }
        }
        Err(Error::new(ErrorKind::LockError, op, format!("the lock semaphore {name} keeps appearing and vanishing")))
    }

    fn acquire(op: Operation, name: &str, mode: u32, deadline: Deadline) -> Result<Lock> {
        let lock = Lock::open(op, name, mode)?;
        if lock.take(op, deadline)? {
            Ok(lock)
        } else {
            Err(lock_timeout(op))
        }
    }

    fn take(&self, op: Operation, deadline: Deadline) -> Result<bool> {
        self.sem.wait(deadline).map_err(|e| sem_error(op, "sem_wait", &self.name, e))
    }

    fn give(&self, op: Operation) -> Result<()> {
        self.sem.post().map_err(|e| sem_error(op, "sem_post", &self.name, e))
    }
}

/// The segment's name and its lock's, checked.
fn names(op: Operation, key: &NativeKey) -> Result<(String, String)> {
    let lock = key.lock_key();
    check_name(op, key.native_key())?;
    check_name(op, lock.native_key())?;
    Ok((key.native_key().to_string(), lock.native_key().to_string()))
}

/// The lock's mode for `sem_open`, which reduces it by the umask (as for
/// Qt's; Darwin has no way to set a semaphore's mode afterwards).
fn lock_mode(params: &CreateParams) -> u32 {
    super::readers_may_write(params.mode)
}

fn default_lock_mode() -> u32 {
    0o600
}

/// The size the kernel gives the object (whole pages on Darwin).
fn kernel_size(op: Operation, fd: &OwnedFd) -> Result<usize> {
    let st = unix::fstat(fd.as_fd()).map_err(|e| Error::os(op, "fstat", e))?;
    Ok(usize::try_from(st.size).unwrap_or(usize::MAX))
}

/// Creates the object under the lock the caller holds.
fn create_object(op: Operation, name: &str, params: &CreateParams) -> Result<(OwnedFd, Mapping, Created)> {
    let fd =
        os::shm_open(name, true, Create::Exclusive, params.mode).map_err(|e| object_error(op, "shm_open", name, e))?;
    // Created just now with O_EXCL, under the lock: ours to remove if the
    // rest fails.
    let undo = |err: Error| {
        let _ = os::shm_unlink(name);
        err
    };
    if params.exact_mode {
        unix::fchmod(fd.as_fd(), params.mode).map_err(|e| undo(Error::os(op, "fchmod", e)))?;
    }
    if let Some(gid) = params.group {
        unix::fchgrp(fd.as_fd(), gid).map_err(|e| undo(Error::os(op, "fchown", e)))?;
    }
    unix::ftruncate(fd.as_fd(), params.size as u64).map_err(|e| undo(Error::os(op, "ftruncate", e)))?;
    let size = kernel_size(op, &fd).map_err(undo)?.max(params.size);
    let mapping = os::map(fd.as_fd(), size, params.writable).map_err(|e| undo(Error::os(op, "mmap", e)))?;
    let mut created = Created::default();
    if params.huge_pages {
        created.huge = HugeOutcome::Unavailable("huge pages are a Linux feature".into());
    }
    Ok((fd, mapping, created))
}

/// Opens the existing object under the lock.
fn open_object(op: Operation, name: &str, writable: bool) -> Result<(OwnedFd, Mapping)> {
    let fd = os::shm_open(name, writable, Create::No, 0).map_err(|e| object_error(op, "shm_open", name, e))?;
    let size = kernel_size(op, &fd)?;
    if size == 0 {
        return Err(Error::new(
            ErrorKind::NotFound,
            op,
            "the segment has size 0: its creator was stopped before giving it a size (remove it, then create)",
        ));
    }
    let mapping = os::map(fd.as_fd(), size, writable).map_err(|e| Error::os(op, "mmap", e))?;
    Ok((fd, mapping))
}

/// Releases the lock after an operation, reporting the operation's error
/// first.
fn finish<T>(lock: &Lock, op: Operation, result: Result<T>) -> Result<T> {
    let released = lock.give(op);
    let value = result?;
    released?;
    Ok(value)
}

pub(crate) fn create(key: &NativeKey, params: &CreateParams, deadline: Deadline) -> Result<(Segment, Created)> {
    const OP: Operation = Operation::Create;
    let (name, lock_name) = names(OP, key)?;
    let lock = Lock::acquire(OP, &lock_name, lock_mode(params), deadline)?;
    let (fd, mapping, created) = finish(&lock, OP, create_object(OP, &name, params))?;
    Ok((Segment { mapping, _fd: fd, lock }, created))
}

pub(crate) fn attach(key: &NativeKey, writable: bool, deadline: Deadline) -> Result<Segment> {
    const OP: Operation = Operation::Attach;
    let (name, lock_name) = names(OP, key)?;
    let lock = Lock::acquire(OP, &lock_name, default_lock_mode(), deadline)?;
    let (fd, mapping) = finish(&lock, OP, open_object(OP, &name, writable))?;
    Ok(Segment { mapping, _fd: fd, lock })
}

pub(crate) fn open_or_create(key: &NativeKey, params: &CreateParams, deadline: Deadline) -> Result<(Segment, Opened)> {
    const OP: Operation = Operation::Create;
    let (name, lock_name) = names(OP, key)?;
    let lock = Lock::acquire(OP, &lock_name, lock_mode(params), deadline)?;
    let result = match open_object(Operation::Attach, &name, params.writable) {
        Ok((fd, mapping)) => Ok((fd, mapping, Opened::Attached)),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            create_object(OP, &name, params).map(|(fd, mapping, created)| (fd, mapping, Opened::Created(created)))
        }
        Err(e) => Err(e),
    };
    let (fd, mapping, opened) = finish(&lock, OP, result)?;
    Ok((Segment { mapping, _fd: fd, lock }, opened))
}

/// Detaches under the lock, as Qt. Nothing is removed: Darwin cannot tell
/// this process whether it was the last (see the module docs).
#[allow(clippy::result_large_err)] // the segment goes back to the caller, who keeps it
pub(crate) fn detach(seg: Segment, deadline: Deadline) -> std::result::Result<Detached, (Segment, Error)> {
    const OP: Operation = Operation::Detach;
    match seg.lock.take(OP, deadline) {
        Ok(true) => {}
        Ok(false) => return Err((seg, lock_timeout(OP))),
        Err(e) => return Err((seg, e)),
    }
    let Segment { mapping, _fd, lock } = seg;
    drop(mapping);
    drop(_fd);
    let _ = lock.give(OP);
    Ok(Detached { removed: false })
}

/// Removes the segment's name and its lock's, whoever uses them (the one
/// removal this backend makes). Returns whether either existed.
pub(crate) fn remove(key: &NativeKey, deadline: Deadline) -> Result<bool> {
    const OP: Operation = Operation::Remove;
    let (name, lock_name) = names(OP, key)?;
    // Under the lock if it can be had in time (a dead holder may keep it).
    let lock = match NamedSem::open(&lock_name) {
        Ok(sem) => {
            let lock = Lock { sem, name: lock_name.clone() };
            let held = lock.take(OP, deadline).unwrap_or(false);
            Some((lock, held))
        }
        Err(_) => None,
    };
    let mut removed = match os::shm_unlink(&name) {
        Ok(()) => true,
        Err(e) if errno::is(&e, ENOENT) => false,
        Err(e) => return Err(object_error(OP, "shm_unlink", &name, e)),
    };
    match darwin_sem::unlink(&lock_name) {
        Ok(()) => removed = true,
        Err(e) if errno::is(&e, ENOENT) => {}
        Err(e) => return Err(sem_error(OP, "sem_unlink", &lock_name, e)),
    }
    if let Some((lock, true)) = lock {
        // Wake whoever opened it before the unlink; they find no segment.
        let _ = lock.give(OP);
    }
    Ok(removed)
}
