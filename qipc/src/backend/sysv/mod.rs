//! The System V backend (Qt's default on Linux for `QSharedMemory(QString)`):
//! a segment whose key is `ftok(<key file>, 'Q')` and a lock semaphore whose
//! key comes from the `qipc_systemsem_…` key file (legacy keys) or from the
//! segment's own file (native keys).
//!
//! Qt's protocol: the lock is taken around create, attach and detach;
//! create makes the key file and `shmget(IPC_CREAT | IPC_EXCL)`s, attach
//! `shmget`s and `shmat`s, and the last detacher (`shm_nattch == 0` after
//! its `shmdt`) removes the segment and its key file. qipc follows it and
//! adds the rest of the lifetime model of [`crate::backend`]: the lock is
//! validated, it goes with the segment, and nobody owns anything because
//! it created it.

mod keyfile;
mod lock;
pub(crate) mod semaphore;

use lock::{Lock, LockPerm};

use super::{huge, lock_timeout, CreateParams, Created, Detached, HugeOutcome, LockAccess, LockInfo, Opened};
use crate::{
    error::{Error, ErrorKind, Operation, Result},
    key::NativeKey,
    sys::{
        errno::{self, EEXIST, EIDRM, EINVAL, ENOENT, ENOMEM, ENOSPC},
        sysv::{self as os, Key, ShmId},
        unix::{self, FileId},
        Deadline, Mapping,
    },
};

/// An attached System V segment.
#[derive(Debug)]
pub(crate) struct Segment {
    path: String,
    file: FileId,
    key: Key,
    id: ShmId,
    mapping: Mapping,
    lock: Lock,
    shares_lock_file: bool,
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

/// The paths behind a System V key.
struct Paths {
    segment: String,
    lock: String,
    /// A native key: one file for segment and lock, which qipc marks when it
    /// creates it and never removes otherwise.
    native: bool,
}

impl Paths {
    fn of(key: &NativeKey) -> Paths {
        Paths {
            segment: key.native_key().to_string(),
            lock: key.lock_key().native_key().to_string(),
            native: key.legacy_key().is_none(),
        }
    }

    fn shared(&self) -> bool {
        self.segment == self.lock
    }
}

/// The segment's permission bits: Qt's `shmget` passes 0600, which the
/// umask does not reduce (it applies to files, not to System V objects).
fn perm_bits(params: &CreateParams) -> u32 {
    params.mode & 0o777
}

/// The lock's permissions for a segment created with `params`: whoever may
/// read the segment may take its lock.
fn lock_perm(paths: &Paths, params: &CreateParams) -> LockPerm {
    let mode = params.exact_mode.then(|| super::readers_may_write(params.mode));
    LockPerm { access: LockAccess::Create { mode, group: params.group }, marker: paths.native }
}

/// The lock's permissions where it is made for an existing segment: like
/// the segment's.
fn like_segment(paths: &Paths) -> LockPerm {
    LockPerm { access: LockAccess::LikeSegment(paths.segment.clone()), marker: paths.native }
}

fn segment_error(op: Operation, call: &'static str, e: std::io::Error, size: usize) -> Error {
    if errno::is(&e, EINVAL) && op == Operation::Create {
        return Error::os_as(ErrorKind::InvalidSize, op, call, e).detail(format!(
            "{size} bytes is outside the system's limits for a segment (kernel.shmmax, kernel.shmmin)"
        ));
    }
    if errno::is(&e, ENOSPC) {
        return Error::os_as(ErrorKind::OutOfResources, op, call, e).detail(
            "out of resources: the system's limit of segments (kernel.shmmni) or of shared memory (kernel.shmall) is \
             reached",
        );
    }
    if errno::is(&e, ENOMEM) {
        return Error::os_as(ErrorKind::OutOfResources, op, call, e)
            .detail(format!("out of resources: not enough memory for {size} bytes"));
    }
    let err = Error::os(op, call, e);
    let detail = match err.kind() {
        ErrorKind::NotFound => "no segment exists for this key".to_string(),
        ErrorKind::AlreadyExists => "a segment already exists for this key (attach to it instead)".to_string(),
        ErrorKind::PermissionDenied => {
            "permission denied: the segment belongs to another user or does not allow this access".to_string()
        }
        _ => return err,
    };
    err.detail(detail)
}

/// The parts of a segment made or found under the lock.
struct Parts {
    file: FileId,
    key: Key,
    id: ShmId,
    mapping: Mapping,
}

fn create_segment(op: Operation, paths: &Paths, ftok_id: u8, params: &CreateParams) -> Result<(Parts, Created)> {
    let (st, made_file) =
        keyfile::ensure(op, &paths.segment, paths.native, || lock_perm(paths, params).access.resolve(|_| None).for_key_file())?;
    let created_file = made_file.is_some();
    let key = Key::of_file(&st, ftok_id);
    let undo_file = |err: Error| {
        // A key file this call made goes again, unless the segment behind it
        // exists (somebody else's) or it is the lock's file too.
        if created_file && err.kind() != ErrorKind::AlreadyExists && !paths.shared() {
            keyfile::remove_if_same(&paths.segment, st.id);
        }
        err
    };
    let perm = perm_bits(params);
    let mut created = Created::default();
    let mut hugetlb = params.huge_pages;
    let id = loop {
        if hugetlb {
            match os::shm_create(key, params.size, perm, true) {
                Ok(id) => {
                    created.huge = HugeOutcome::Active;
                    break id;
                }
                Err(e) if errno::is(&e, EEXIST) => {}
                Err(e) => {
                    hugetlb = false;
                    created.huge = HugeOutcome::Unavailable(huge::hugetlb_refusal(e.raw_os_error()));
                }
            }
        }
        match os::shm_create(key, params.size, perm, false) {
            Ok(id) => break id,
            Err(e) if errno::is(&e, EEXIST) => {
                if params.reclaim_orphan && !created.reclaimed_orphan && reclaim_orphan(key) {
                    created.reclaimed_orphan = true;
                    continue;
                }
                return Err(segment_error(op, "shmget", e, params.size));
            }
            Err(e) => return Err(undo_file(segment_error(op, "shmget", e, params.size))),
        }
    };
    let mapping = match os::shm_attach(id, params.size, params.writable) {
        Ok(m) => m,
        Err(e) => {
            // Do not leave a segment nobody can use.
            let _ = os::shm_remove(id);
            return Err(undo_file(segment_error(op, "shmat", e, params.size)));
        }
    };
    if let Some(gid) = params.group {
        if let Err(e) = os::shm_set_group(id, gid) {
            drop(mapping);
            let _ = os::shm_remove(id);
            let what = format!("the segment of {}", paths.segment);
            return Err(undo_file(super::group_error(op, "shmctl", &what, gid, e)));
        }
    }
    if let HugeOutcome::Unavailable(why) = &created.huge {
        // Second choice: transparent huge pages, which the kernel's shmem
        // policy governs for System V segments.
        let thp = match huge::shmem_thp_refusal() {
            Some(refusal) => Err(refusal),
            None => mapping.advise_huge_pages().map_err(|e| format!("madvise(MADV_HUGEPAGE) failed: {e}")),
        };
        created.huge = match thp {
            Ok(()) => HugeOutcome::Active,
            Err(thp) => HugeOutcome::Unavailable(format!("{why}; {thp}")),
        };
    }
    if params.populate && params.writable {
        // Best effort: the segment is usable without it.
        let _ = mapping.populate_write();
    }
    Ok((Parts { file: st.id, key, id, mapping }, created))
}

/// Under the lock: removes the segment of `key` if nobody is attached to it
/// (nobody can be attaching: that needs the lock we hold). Returns true if
/// it did.
fn reclaim_orphan(key: Key) -> bool {
    let Ok(id) = os::shm_open(key, 0) else {
        return false;
    };
    match os::shm_stat(id) {
        Ok(st) if st.nattch == 0 && st.key == key => os::shm_remove(id).is_ok(),
        _ => false,
    }
}

fn attach_segment(op: Operation, paths: &Paths, ftok_id: u8, writable: bool) -> Result<Parts> {
    let st = keyfile::stat(op, &paths.segment)?;
    let key = Key::of_file(&st, ftok_id);
    let perm = if writable { 0o600 } else { 0o400 };
    let id = os::shm_open(key, perm).map_err(|e| segment_error(op, "shmget", e, 0))?;
    let size = os::shm_stat(id).map_err(|e| segment_error(op, "shmctl", e, 0))?.size;
    let mapping = os::shm_attach(id, size, writable).map_err(|e| segment_error(op, "shmat", e, size))?;
    Ok(Parts { file: st.id, key, id, mapping })
}

/// True if a segment exists for the key the segment's key file gives now.
fn segment_exists(paths: &Paths, ftok_id: u8) -> bool {
    unix::stat(&paths.segment).is_ok_and(|st| os::shm_open(Key::of_file(&st, ftok_id), 0).is_ok())
}

/// After an operation that left no segment of ours: if no segment exists
/// for the key, removes a stale segment key file (legacy keys) and retires
/// the lock; otherwise just releases it.
fn finish_without_segment(lock: Lock, paths: &Paths, ftok_id: u8) {
    if segment_exists(paths, ftok_id) {
        let _ = lock.release();
        return;
    }
    if !paths.shared() {
        if let Ok(st) = unix::lstat(&paths.segment) {
            keyfile::remove_if_same(&paths.segment, st.id);
        }
    }
    let _ = lock.retire();
}

fn segment(paths: Paths, parts: Parts, lock: Lock) -> Segment {
    let shares_lock_file = paths.shared();
    Segment {
        path: paths.segment,
        file: parts.file,
        key: parts.key,
        id: parts.id,
        mapping: parts.mapping,
        lock,
        shares_lock_file,
    }
}

pub(crate) fn create(
    key: &NativeKey,
    ftok_id: u8,
    params: &CreateParams,
    deadline: Deadline,
) -> Result<(Segment, Created)> {
    const OP: Operation = Operation::Create;
    let paths = Paths::of(key);
    let lock = Lock::acquire(OP, &paths.lock, ftok_id, lock_perm(&paths, params), true, deadline)?
        .ok_or_else(|| lock_timeout(OP))?;
    match create_segment(OP, &paths, ftok_id, params) {
        Ok((parts, created)) => {
            lock.unlock()?;
            Ok((segment(paths, parts, lock), created))
        }
        Err(e) => {
            finish_without_segment(lock, &paths, ftok_id);
            Err(e)
        }
    }
}

pub(crate) fn attach(key: &NativeKey, ftok_id: u8, writable: bool, deadline: Deadline) -> Result<Segment> {
    const OP: Operation = Operation::Attach;
    let paths = Paths::of(key);
    // No key file, no segment: say so without creating a lock, as Qt 5
    // does, and retire a lock left behind for a legacy key if nobody uses it.
    if let Err(e) = keyfile::stat(OP, &paths.segment) {
        if e.kind() == ErrorKind::NotFound && !paths.shared() {
            if let Ok(Some(lock)) =
                Lock::acquire(OP, &paths.lock, ftok_id, like_segment(&paths), false, Deadline::Now)
            {
                finish_without_segment(lock, &paths, ftok_id);
            }
        }
        return Err(e);
    }
    let lock = Lock::acquire(OP, &paths.lock, ftok_id, like_segment(&paths), true, deadline)?
        .ok_or_else(|| lock_timeout(OP))?;
    match attach_segment(OP, &paths, ftok_id, writable) {
        Ok(parts) => {
            lock.unlock()?;
            Ok(segment(paths, parts, lock))
        }
        Err(e) => {
            finish_without_segment(lock, &paths, ftok_id);
            Err(e)
        }
    }
}

pub(crate) fn open_or_create(
    key: &NativeKey,
    ftok_id: u8,
    params: &CreateParams,
    deadline: Deadline,
) -> Result<(Segment, Opened)> {
    const OP: Operation = Operation::Create;
    let paths = Paths::of(key);
    let lock = Lock::acquire(OP, &paths.lock, ftok_id, lock_perm(&paths, params), true, deadline)?
        .ok_or_else(|| lock_timeout(OP))?;
    let result = match attach_segment(Operation::Attach, &paths, ftok_id, params.writable) {
        Ok(parts) => Ok((parts, Opened::Attached)),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            create_segment(OP, &paths, ftok_id, params).map(|(parts, created)| (parts, Opened::Created(created)))
        }
        Err(e) => Err(e),
    };
    match result {
        Ok((parts, opened)) => {
            lock.unlock()?;
            Ok((segment(paths, parts, lock), opened))
        }
        Err(e) => {
            finish_without_segment(lock, &paths, ftok_id);
            Err(e)
        }
    }
}

#[allow(clippy::result_large_err)] // the segment goes back to the caller, who keeps it
pub(crate) fn detach(seg: Segment, deadline: Deadline) -> std::result::Result<Detached, (Segment, Error)> {
    match seg.lock.lock(deadline) {
        Ok(Some(_)) => {}
        Ok(None) => return Err((seg, lock_timeout(Operation::Detach))),
        Err(e) => return Err((seg, e.during(Operation::Detach))),
    }
    let Segment { path, file, key, id, mapping, lock, shares_lock_file } = seg;
    drop(mapping); // shmdt
    // Qt's rule: whoever leaves nobody attached removes segment and key file.
    let (removed, gone) = match os::shm_stat(id) {
        Ok(st) if st.nattch == 0 && !st.removed && st.key == key => {
            let removed = os::shm_remove(id).is_ok();
            if !shares_lock_file {
                keyfile::remove_if_same(&path, file);
            }
            (removed, true)
        }
        Ok(st) => (false, st.nattch == 0),
        // Gone with our shmdt (it had been marked for removal).
        Err(e) if errno::is(&e, EINVAL) || errno::is(&e, EIDRM) || errno::is(&e, ENOENT) => (false, true),
        Err(_) => (false, false),
    };
    let _ = if gone { lock.retire().map(drop) } else { lock.release() };
    Ok(Detached { removed })
}

pub(crate) fn remove(key: &NativeKey, ftok_id: u8, deadline: Deadline) -> Result<bool> {
    const OP: Operation = Operation::Remove;
    let paths = Paths::of(key);
    let lock = match Lock::acquire(OP, &paths.lock, ftok_id, like_segment(&paths), false, deadline) {
        Ok(lock) => lock,
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let mut removed = false;
    if let Ok(st) = unix::lstat(&paths.segment) {
        if let Ok(id) = os::shm_open(Key::of_file(&st, ftok_id), 0) {
            os::shm_remove(id).map_err(|e| segment_error(OP, "shmctl", e, 0))?;
            removed = true;
        }
        if !paths.shared() {
            removed |= keyfile::remove_if_same(&paths.segment, st.id);
        }
    }
    match lock {
        Some(lock) => removed |= lock.retire_forced()?,
        None => {
            if let Ok(st) = unix::lstat(&paths.lock) {
                if let Ok(id) = os::sem_open(Key::of_file(&st, ftok_id)) {
                    removed |= os::sem_remove(id).is_ok();
                }
                removed |= keyfile::remove_if_same(&paths.lock, st.id);
            }
        }
    }
    Ok(removed)
}

/// See [`crate::backend::collect`].
#[cfg(target_os = "linux")] // for the inspector, which is Linux-only
pub(crate) fn collect(
    target: &super::Target,
    ftok_id: u8,
    expect: Option<super::SegmentId>,
    deadline: Deadline,
) -> Result<super::Collected> {
    const OP: Operation = Operation::Remove;
    let paths = Paths { segment: target.segment.clone(), lock: target.lock.clone(), native: target.native };
    let mut done = super::Collected::default();
    // The lock, by name, as any participant takes it (made if missing):
    // never act without it, since a creator may be between making the key
    // file and its semaphore.
    let lock = match Lock::acquire(OP, &paths.lock, ftok_id, like_segment(&paths), true, deadline)? {
        Some(lock) => lock,
        None => {
            done.kept = Some("its lock is held by a running process".into());
            return Ok(done);
        }
    };
    // The segment the listing saw, if it is still the one the key gives
    // and nobody is attached (nobody can be attaching: that takes the lock).
    if let Some(super::SegmentId::SysV(expected)) = expect {
        if let Ok(st) = unix::stat(&paths.segment) {
            let key = Key::of_file(&st, ftok_id);
            match os::shm_open(key, 0) {
                Ok(id) if id.0 == expected => match os::shm_stat(id) {
                    Ok(s) if s.nattch == 0 => {
                        done.segment_removed = os::shm_remove(id).is_ok();
                        if done.segment_removed && !paths.shared() && keyfile::remove_if_same(&paths.segment, st.id) {
                            done.files_removed.push(paths.segment.clone());
                        }
                    }
                    Ok(s) => done.kept = Some(format!("{} process(es) attached", s.nattch)),
                    Err(_) => {}
                },
                Ok(_) => done.kept = Some("it was replaced since it was listed".into()),
                Err(_) => {}
            }
        }
    }
    if segment_exists(&paths, ftok_id) {
        lock.release()?;
        if done.kept.is_none() && expect.is_none() {
            done.kept = Some("its segment exists".into());
        }
        return Ok(done);
    }
    // No segment: its leftovers go (a stale segment key file, the lock).
    if !paths.shared() {
        if let Ok(st) = unix::lstat(&paths.segment) {
            if keyfile::remove_if_same(&paths.segment, st.id) {
                done.files_removed.push(paths.segment.clone());
            }
        }
    }
    let file = unix::lstat(&paths.lock).ok();
    done.lock_removed = lock.retire_abandoned()?;
    if done.lock_removed && file.is_some() && unix::lstat(&paths.lock).is_err() {
        done.files_removed.push(paths.lock.clone());
    }
    if !done.lock_removed && expect.is_none() {
        done.kept = Some("a process waits for the lock".into());
    }
    Ok(done)
}

/// Removes a System V segment that no key file names any more, if nobody
/// is attached. Returns whether it did.
#[cfg(target_os = "linux")] // for the inspector, which is Linux-only
pub(crate) fn collect_nameless_segment(shmid: i32) -> bool {
    let id = ShmId(shmid);
    os::shm_stat(id).is_ok_and(|s| s.nattch == 0) && os::shm_remove(id).is_ok()
}

/// Removes a System V semaphore that no key file names any more, if it can
/// be taken now (nobody holds it) and nobody waits for it. Returns whether
/// it did.
#[cfg(target_os = "linux")] // for the inspector, which is Linux-only
pub(crate) fn collect_nameless_semaphore(semid: i32) -> bool {
    let id = crate::sys::sysv::SemId(semid);
    if !os::semop(id, -1, true, Deadline::Now).unwrap_or(false) {
        return false;
    }
    if os::sem_getncnt(id).unwrap_or(1) > 0 {
        let _ = os::semop(id, 1, true, Deadline::Never);
        return false;
    }
    os::sem_remove(id).is_ok()
}
