//! The POSIX backend (Qt's `PosixRealtime` keys): a shared memory object
//! `/dev/shm/<name>` and its lock semaphore `/dev/shm/sem.<lock name>`.
//!
//! Qt's protocol: the lock is taken around create, attach and detach;
//! create is `shm_open(O_CREAT | O_EXCL)` + size + `mmap`, attach is
//! `shm_open` + `fstat` + `mmap`. Qt never removes a POSIX object on Linux;
//! qipc's last detacher does (see the lifetime model in [`crate::backend`]).
//! qipc also reserves the memory at create (`posix_fallocate`), so a full
//! `/dev/shm` is an error there instead of a SIGBUS on a later write.

mod lock;
pub(crate) mod semaphore;

use std::os::fd::AsFd;

use self::lock::Lock;
use super::{huge, lock_timeout, CreateParams, Created, Detached, HugeOutcome, LockAccess, LockInfo, Opened};
use crate::{
    error::{Error, ErrorKind, Operation, Result},
    key::NativeKey,
    sys::{
        errno::{self, EEXIST, EFBIG, ENOENT, ENOSPC, EOPNOTSUPP},
        posix as os,
        semfile::{self, SHM_DIR},
        unix::{self, Create, FileId},
        Deadline, Mapping,
    },
};

pub(crate) use lock::sem_error;

/// An attached POSIX segment.
#[derive(Debug)]
pub(crate) struct Segment {
    name: String,
    path: String,
    id: FileId,
    /// The mapping alone keeps the object's open file description (which
    /// other processes' lease probes see): the descriptor is closed once
    /// mapped, so that a child spawned by another thread, which copies the
    /// descriptor table until it executes its program, never holds the
    /// object open after we have left.
    mapping: Mapping,
    lock: Lock,
}

impl Segment {
    pub(crate) fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    #[inline]
    pub(crate) fn lock(&self, deadline: Deadline) -> Result<Option<LockInfo>> {
        self.lock.lock(deadline)
    }

    #[inline]
    pub(crate) fn unlock(&self) -> Result<()> {
        self.lock.unlock()
    }
}

/// The names behind a POSIX key: the object's file and the lock's file.
struct Names {
    name: String,
    path: String,
    lock_path: String,
}

/// Checks a POSIX name as glibc will see it (leading slashes removed, no
/// other `/`, not empty, not `.` or `..`, short enough for the file name).
pub(crate) fn check_name(op: Operation, name: &str, sem_prefix: bool) -> Result<()> {
    let bare = name.trim_start_matches('/');
    let max = if sem_prefix { 251 } else { 255 };
    let bad = |why: String| Err(Error::new(ErrorKind::KeyError, op, format!("bad name {name:?}: {why}")));
    if bare.is_empty() {
        return bad("the name is empty".into());
    }
    if bare.contains('/') {
        return bad("it contains a '/' after the leading one".into());
    }
    if bare == "." || bare == ".." {
        return bad("'.' and '..' are not object names".into());
    }
    if bare.contains('\0') {
        return bad("it contains a NUL byte".into());
    }
    if bare.len() > max {
        return bad(format!("it is {} bytes, at most {max} fit in a file name", bare.len()));
    }
    Ok(())
}

fn names(op: Operation, key: &NativeKey) -> Result<Names> {
    let lock = key.lock_key();
    check_name(op, key.native_key(), false)?;
    check_name(op, lock.native_key(), true)?;
    Ok(Names {
        name: key.native_key().to_string(),
        path: format!("{SHM_DIR}/{}", key.native_key().trim_start_matches('/')),
        lock_path: semfile::path_of(lock.native_key()),
    })
}

fn object_error(op: Operation, call: &'static str, name: &str, e: std::io::Error) -> Error {
    let err = Error::os(op, call, e);
    let detail = match err.kind() {
        ErrorKind::NotFound => format!("no segment exists for this key ({SHM_DIR}/{})", name.trim_start_matches('/')),
        ErrorKind::AlreadyExists => "a segment already exists for this key (attach to it instead)".to_string(),
        ErrorKind::PermissionDenied => {
            "permission denied: the segment belongs to another user or does not allow this access".to_string()
        }
        ErrorKind::KeyError => format!("bad name {name:?}"),
        _ => return err,
    };
    err.detail(detail)
}

/// The lock semaphore's permissions for a segment created with `params`:
/// whoever may read the segment may also take its lock (taking a
/// semaphore needs write access to it).
fn lock_access(params: &CreateParams) -> LockAccess {
    let mode = params.exact_mode.then(|| super::readers_may_write(params.mode));
    LockAccess::Create { mode, group: params.group }
}

/// Creates the object `names.name` under the lock; the caller holds it.
/// The descriptor is closed when this returns (see the `mapping` of [`Segment`]).
fn create_object(op: Operation, names: &Names, params: &CreateParams) -> Result<(Mapping, FileId, Created)> {
    let mut created = Created::default();
    let fd = match os::shm_open(&names.name, true, Create::Exclusive, params.mode) {
        Ok(fd) => fd,
        Err(e) if errno::is(&e, EEXIST) && params.reclaim_orphan && reclaim_orphan(names) => {
            created.reclaimed_orphan = true;
            os::shm_open(&names.name, true, Create::Exclusive, params.mode)
                .map_err(|e| object_error(op, "shm_open", &names.name, e))?
        }
        Err(e) => return Err(object_error(op, "shm_open", &names.name, e)),
    };
    let st = unix::fstat(fd.as_fd()).map_err(|e| Error::os(op, "fstat", e))?;
    let undo = |err: Error| {
        // Remove the object we just made, and only it.
        if unix::lstat(&names.path).map(|now| now.id == st.id).unwrap_or(false) {
            let _ = os::shm_unlink(&names.name);
        }
        err
    };
    if params.exact_mode {
        unix::fchmod(fd.as_fd(), params.mode).map_err(|e| undo(Error::os(op, "fchmod", e)))?;
    }
    if let Some(gid) = params.group {
        unix::fchgrp(fd.as_fd(), gid)
            .map_err(|e| undo(super::group_error(op, "fchown", &format!("the segment {}", names.path), gid, e)))?;
    }
    reserve(op, fd.as_fd(), params.size).map_err(undo)?;
    let mapping = os::map(fd.as_fd(), params.size, params.writable).map_err(|e| undo(Error::os(op, "mmap", e)))?;
    if params.huge_pages {
        created.huge = match huge::devshm_thp_refusal() {
            Some(why) => HugeOutcome::Unavailable(why),
            None => match mapping.advise_huge_pages() {
                Ok(()) => HugeOutcome::Active,
                Err(e) => HugeOutcome::Unavailable(format!("madvise(MADV_HUGEPAGE) failed: {e}")),
            },
        };
    }
    if params.populate && params.writable {
        // Best effort: the segment is usable without it.
        let _ = mapping.populate_write();
    }
    Ok((mapping, st.id, created))
}

/// Reserves `size` bytes for the object: `posix_fallocate`, or `ftruncate`
/// where the file system cannot reserve.
fn reserve(op: Operation, fd: std::os::fd::BorrowedFd<'_>, size: usize) -> Result<()> {
    match os::fallocate(fd, size as u64) {
        Ok(()) => Ok(()),
        Err(e) if errno::is(&e, EOPNOTSUPP) => {
            unix::ftruncate(fd, size as u64).map_err(|e| Error::os(op, "ftruncate", e))
        }
        Err(e) if errno::is(&e, ENOSPC) || errno::is(&e, EFBIG) => {
            let free = unix::free_bytes(SHM_DIR).map_or_else(String::new, |b| format!(" ({b} bytes free)"));
            Err(Error::os_as(ErrorKind::OutOfResources, op, "posix_fallocate", e)
                .detail(format!("out of resources: {size} bytes do not fit in {SHM_DIR}{free}")))
        }
        Err(e) => Err(Error::os(op, "posix_fallocate", e)),
    }
}

/// Under the lock: if the object `names.name` exists and no process has it
/// open or mapped, removes it (checking it is the same object) and returns
/// true.
fn reclaim_orphan(names: &Names) -> bool {
    let Ok(fd) = os::shm_open(&names.name, false, Create::No, 0) else {
        return false;
    };
    let Ok(st) = unix::fstat(fd.as_fd()) else {
        return false;
    };
    if unix::others_have_open(fd.as_fd()).unwrap_or(true) {
        return false;
    }
    unlink_if_same(names, st.id)
}

/// Removes the name if it still refers to the object `id`.
fn unlink_if_same(names: &Names, id: FileId) -> bool {
    match unix::lstat(&names.path) {
        Ok(now) if now.id == id => os::shm_unlink(&names.name).is_ok(),
        _ => false,
    }
}

/// Opens and maps the existing object under the lock (closing the
/// descriptor once mapped).
fn open_object(op: Operation, names: &Names, writable: bool) -> Result<(Mapping, FileId)> {
    let mode = if writable { 0o600 } else { 0o400 };
    let fd = os::shm_open(&names.name, writable, Create::No, mode)
        .map_err(|e| object_error(op, "shm_open", &names.name, e))?;
    let st = unix::fstat(fd.as_fd()).map_err(|e| Error::os(op, "fstat", e))?;
    let size = usize::try_from(st.size).unwrap_or(usize::MAX);
    if size == 0 {
        return Err(Error::new(
            ErrorKind::NotFound,
            op,
            "the segment has size 0: its creator was stopped before giving it a size (a create on this key replaces it)",
        ));
    }
    let mapping = os::map(fd.as_fd(), size, writable).map_err(|e| Error::os(op, "mmap", e))?;
    Ok((mapping, st.id))
}

fn object_exists(names: &Names) -> bool {
    unix::lstat(&names.path).is_ok()
}

pub(crate) fn create(key: &NativeKey, params: &CreateParams, deadline: Deadline) -> Result<(Segment, Created)> {
    const OP: Operation = Operation::Create;
    let names = names(OP, key)?;
    let (lock, _) =
        Lock::acquire(OP, &names.lock_path, Some(&lock_access(params)), deadline)?.ok_or_else(|| lock_timeout(OP))?;
    match create_object(OP, &names, params) {
        Ok((mapping, id, created)) => {
            lock.unlock()?;
            Ok((Segment { name: names.name, path: names.path, id, mapping, lock }, created))
        }
        Err(e) => {
            finish_without_segment(lock, &names);
            Err(e)
        }
    }
}

pub(crate) fn attach(key: &NativeKey, writable: bool, deadline: Deadline) -> Result<Segment> {
    const OP: Operation = Operation::Attach;
    let names = names(OP, key)?;
    // Nothing to attach to: say so without creating a lock semaphore, and
    // retire one that was left behind (a Qt process had it open when the
    // last detacher left) if nobody uses it now.
    if !object_exists(&names) {
        if let Ok(Some((lock, _))) = Lock::acquire(OP, &names.lock_path, None, Deadline::Now) {
            finish_without_segment(lock, &names);
        }
        return Err(object_error(OP, "shm_open", &names.name, std::io::Error::from_raw_os_error(ENOENT)));
    }
    let (lock, _) =
        Lock::acquire(OP, &names.lock_path, Some(&LockAccess::LikeSegment(names.path.clone())), deadline)?
            .ok_or_else(|| lock_timeout(OP))?;
    match open_object(OP, &names, writable) {
        Ok((mapping, id)) => {
            lock.unlock()?;
            Ok(Segment { name: names.name, path: names.path, id, mapping, lock })
        }
        Err(e) => {
            finish_without_segment(lock, &names);
            Err(e)
        }
    }
}

pub(crate) fn open_or_create(key: &NativeKey, params: &CreateParams, deadline: Deadline) -> Result<(Segment, Opened)> {
    const OP: Operation = Operation::Create;
    let names = names(OP, key)?;
    let (lock, _) =
        Lock::acquire(OP, &names.lock_path, Some(&lock_access(params)), deadline)?.ok_or_else(|| lock_timeout(OP))?;
    let attached = match open_object(Operation::Attach, &names, params.writable) {
        Ok(parts) => Some(parts),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => {
            lock.release()?;
            return Err(e);
        }
    };
    let (mapping, id, opened) = match attached {
        Some((mapping, id)) => (mapping, id, Opened::Attached),
        None => match create_object(OP, &names, params) {
            Ok((mapping, id, created)) => (mapping, id, Opened::Created(created)),
            Err(e) => {
                finish_without_segment(lock, &names);
                return Err(e);
            }
        },
    };
    lock.unlock()?;
    Ok((Segment { name: names.name, path: names.path, id, mapping, lock }, opened))
}

/// Releases or retires the lock after an operation that left this process
/// without a segment: retired if no object exists for the key.
fn finish_without_segment(lock: Lock, names: &Names) {
    let _ = if object_exists(names) { lock.release() } else { lock.retire().map(drop) };
}

#[allow(clippy::result_large_err)] // the attached segment comes back on failure (a cold path)
pub(crate) fn detach(seg: Segment, deadline: Deadline) -> std::result::Result<Detached, (Segment, Error)> {
    const OP: Operation = Operation::Detach;
    // Our lock semaphore, validated: if it was replaced while we were
    // attached (by a Qt create, say), take the current one by name.
    let lock = match seg.lock.lock(deadline) {
        Ok(Some(_)) if seg.lock.is_current() => None,
        Ok(Some(_)) => {
            if let Err(e) = seg.lock.unlock() {
                return Err((seg, e));
            }
            match Lock::acquire(OP, seg.lock.path(), Some(&LockAccess::LikeSegment(seg.path.clone())), deadline) {
                Ok(Some((lock, _))) => Some(lock),
                Ok(None) => return Err((seg, lock_timeout(OP))),
                Err(e) => return Err((seg, e)),
            }
        }
        Ok(None) => return Err((seg, lock_timeout(OP))),
        Err(e) => return Err((seg, e)),
    };
    let Segment { name, path, id, mapping, lock: own } = seg;
    let lock = lock.unwrap_or(own);
    // Our mapping goes first, so that the probe below sees only other
    // processes (and forked children, which share our old description).
    drop(mapping);
    let names = Names { name, path, lock_path: String::new() };
    let removed = match os::shm_open(&names.name, false, Create::No, 0) {
        Ok(probe) => {
            let same = unix::fstat(probe.as_fd()).map(|st| st.id == id).unwrap_or(false);
            let unused = same && !unix::others_have_open(probe.as_fd()).unwrap_or(true);
            drop(probe);
            unused && unlink_if_same(&names, id)
        }
        Err(_) => false,
    };
    let gone = removed || !object_exists(&names);
    // The mapping is gone whatever the lock's release reports.
    let _ = if gone { lock.retire().map(drop) } else { lock.release() };
    Ok(Detached { removed })
}

pub(crate) fn remove(key: &NativeKey, deadline: Deadline) -> Result<bool> {
    const OP: Operation = Operation::Remove;
    let names = names(OP, key)?;
    let lock = match Lock::acquire(OP, &names.lock_path, None, deadline) {
        Ok(Some((lock, _))) => Some(lock),
        // No lock semaphore, or it cannot be taken in time (a dead holder of
        // a semaphore without a gate): remove without it.
        Ok(None) => None,
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let mut removed = false;
    match unix::lstat(&names.path) {
        Ok(st) => {
            removed |= unlink_if_same(&names, st.id);
        }
        Err(e) if errno::is(&e, ENOENT) => {}
        Err(e) => return Err(Error::os(OP, "stat", e)),
    }
    match lock {
        Some(lock) => removed |= lock.retire_forced()?,
        None => match semfile::SemFile::open(&names.lock_path) {
            Ok(sem) => removed |= sem.unlink_if_named(&names.lock_path).map_err(|e| Error::os(OP, "unlink", e))?,
            Err(e) if errno::is(&e, ENOENT) => {}
            Err(e) => return Err(sem_error(OP, "open", &names.lock_path, e)),
        },
    }
    Ok(removed)
}

/// See [`crate::backend::collect`].
pub(crate) fn collect(
    target: &super::Target,
    expect: Option<super::SegmentId>,
    deadline: Deadline,
) -> Result<super::Collected> {
    const OP: Operation = Operation::Remove;
    check_name(OP, &target.segment, false)?;
    check_name(OP, &target.lock, true)?;
    let names = Names {
        name: target.segment.clone(),
        path: format!("{SHM_DIR}/{}", target.segment.trim_start_matches('/')),
        lock_path: semfile::path_of(&target.lock),
    };
    let mut done = super::Collected::default();
    // The lock, by name, as any participant takes it (made if missing).
    let lock = match Lock::acquire(OP, &names.lock_path, Some(&LockAccess::LikeSegment(names.path.clone())), deadline) {
        Ok(Some((lock, _))) => Some(lock),
        Ok(None) => {
            // Held. If nobody else has the semaphore open, its holder is
            // dead (a semaphore without a gate keeps a dead holder's token)
            // and nobody can be excluded: go on without it.
            let unused = semfile::SemFile::open(&names.lock_path).is_ok_and(|s| !s.others_have_open().unwrap_or(true));
            if !unused {
                done.kept = Some("its lock is held by a running process".into());
                return Ok(done);
            }
            None
        }
        Err(e) => return Err(e),
    };
    if let Some(super::SegmentId::Posix { dev, ino }) = expect {
        let expected = FileId { dev, ino };
        if let Ok(probe) = os::shm_open(&names.name, false, Create::No, 0) {
            let same = unix::fstat(probe.as_fd()).is_ok_and(|st| st.id == expected);
            let unused = !unix::others_have_open(probe.as_fd()).unwrap_or(true);
            drop(probe);
            if !same {
                done.kept = Some("it was replaced since it was listed".into());
            } else if !unused {
                done.kept = Some("a process has it open".into());
            } else {
                done.segment_removed = unlink_if_same(&names, expected);
            }
        }
    }
    if object_exists(&names) {
        if let Some(lock) = lock {
            lock.release()?;
        }
        if done.kept.is_none() && expect.is_none() {
            done.kept = Some("its segment exists".into());
        }
        return Ok(done);
    }
    match lock {
        Some(lock) => {
            done.lock_removed = lock.retire()?;
            if !done.lock_removed && expect.is_none() {
                done.kept = Some("a process has the lock semaphore open".into());
            }
        }
        None => {
            if let Ok(sem) = semfile::SemFile::open(&names.lock_path) {
                if !sem.others_have_open().unwrap_or(true) {
                    done.lock_removed = sem.unlink_if_named(&names.lock_path).unwrap_or(false);
                }
            }
        }
    }
    Ok(done)
}
