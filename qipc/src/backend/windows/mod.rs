//! The Windows backend (Qt's `Windows` keys, and every legacy key on
//! Windows): a named file mapping backed by the paging file, and the named
//! semaphore Qt uses as its lock.
//!
//! # Qt's protocol
//!
//! - Names: a legacy key `k` names the mapping
//!   `qipc_sharedmemory_<letters><sha1>` and the lock
//!   `qipc_systemsem_<letters><sha1>`, as in Qt 4.4 to 6.x; a native key `n`
//!   names the mapping `n` and, as Qt 6.6+ does, the lock
//!   `n[..255 UTF-16 units] + "_sem"` (Windows has one namespace for
//!   mappings and semaphores, so the two need different names). Qt 5 has
//!   no lock for native keys: with a Qt 5 peer on a native key, neither
//!   side's lock excludes the other.
//! - The lock is `CreateSemaphoreW(name, 1, MAXLONG)`: opened if it exists,
//!   created with count 1 if not, whoever comes first. It is taken around
//!   create, attach and detach, as Qt does, and by
//!   [`lock`](crate::SharedMemory::lock).
//! - Create: `CreateFileMappingW(INVALID_HANDLE_VALUE, PAGE_READWRITE,
//!   size)`; an existing name is `AlreadyExists`. Attach:
//!   `OpenFileMappingW` + `MapViewOfFile` (`FILE_MAP_READ` for a read-only
//!   attach, whose handle also asks only for reading, where Qt asks for all
//!   access).
//!
//! # Lifetime on Windows
//!
//! Nobody owns anything: the kernel frees a mapping, and a semaphore, when
//! the last handle to it closes, whether by a detach, a drop or the end of
//! the process (crash included). So:
//!
//! - **nothing is left behind** by a crash; there are no orphans to
//!   replace (`reclaim_orphan` has nothing to do) and nothing to collect;
//! - **the last detacher** rule holds by itself: the segment goes when the
//!   last process (qipc or Qt) closes its handles; [`Detached::removed`]
//!   reports whether the name was gone after this detach;
//! - **`remove`** cannot destroy what other processes hold open: it removes
//!   nothing and reports whether a segment exists for the key (that is,
//!   some process still holds it);
//! - **open_or_create** is one `CreateFileMappingW`, which creates or opens
//!   atomically, under the lock as Qt's calls are;
//! - **a lock holder that dies keeps the lock**: Windows semaphores have no
//!   owner and no undo, so the count a dead process took is never given
//!   back while any process has the semaphore open. Every wait here takes a
//!   deadline ([`lock_timeout`](crate::SharedMemory::lock_timeout),
//!   [`attach_timeout`](crate::SharedMemory::attach_timeout),
//!   [`detach_timeout`](crate::SharedMemory::detach_timeout),
//!   [`CreateOptions::lock_timeout`](crate::CreateOptions::lock_timeout)),
//!   and dropping a handle waits a bounded time, then closes its handles
//!   without the lock (closing is harmless on Windows: it only gives up this
//!   process's reference).

pub(crate) mod semaphore;

use super::{lock_timeout, CreateParams, Created, Detached, HugeOutcome, LockInfo, Opened};
use crate::{
    error::{Error, ErrorKind, Operation, Result},
    key::NativeKey,
    sys::{
        windows::{self as os, Access, FileMapping, QT_SEMAPHORE_MAX},
        windows_names::{self as names, codes, Purpose, WinName},
        Deadline, Mapping,
    },
};

/// An attached Windows segment: the view, the mapping's handle (kept while
/// attached, as Qt does) and the lock semaphore's handle.
#[derive(Debug)]
pub(crate) struct Segment {
    name: WinName,
    mapping: Mapping,
    file: FileMapping,
    lock: Lock,
}

impl Segment {
    pub(crate) fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    #[inline]
    pub(crate) fn lock(&self, deadline: Deadline) -> Result<Option<LockInfo>> {
        // A dead holder is never detected on Windows: `holder_died` stays false.
        Ok(self.lock.take(Operation::Lock, deadline)?.then_some(LockInfo::default()))
    }

    #[inline]
    pub(crate) fn unlock(&self) -> Result<()> {
        self.lock.give(Operation::Unlock)
    }
}

/// The kernel names behind a key.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    pub(crate) mapping: WinName,
    pub(crate) lock: WinName,
}

/// Qt's names for `key`: the native key names the mapping; the lock is the
/// legacy semaphore of the legacy key if the key has one, else Qt 6's
/// `<native>_sem`.
pub(crate) fn names_of(key: &NativeKey) -> Names {
    let mapping = WinName::new(key.native_key());
    let lock = match key.legacy_key() {
        Some(legacy) => names::legacy_name(legacy, Purpose::Semaphore),
        None => names::native_lock_name(&mapping),
    };
    Names { mapping, lock }
}

/// A Win32 error classified by `QSharedMemory`'s table, in users' words.
fn object_error(op: Operation, call: &'static str, name: &WinName, e: std::io::Error) -> Error {
    let err = Error::os(op, call, e);
    let detail = match err.kind() {
        ErrorKind::NotFound => format!("no segment exists for this key (file mapping {name})"),
        ErrorKind::AlreadyExists => {
            format!("a segment already exists for this key (file mapping {name}; attach to it instead)")
        }
        ErrorKind::PermissionDenied => format!("permission denied for the file mapping {name}"),
        ErrorKind::InvalidSize => "invalid size: the paging file cannot back a mapping this large".to_string(),
        ErrorKind::OutOfResources => "out of resources: not enough memory for the mapping".to_string(),
        _ => match err.raw_os_error().map(|c| c as u32) {
            Some(codes::INVALID_HANDLE) => {
                format!("the name {name} belongs to another kind of object (a semaphore?)")
            }
            Some(3) => {
                format!("bad name {name}: a backslash other than after Local or Global names a missing directory")
            }
            _ => format!("{call} of the file mapping {name} failed"),
        },
    };
    err.detail(detail)
}

/// The lock semaphore of a segment, open (not necessarily held).
#[derive(Debug)]
pub(crate) struct Lock {
    sem: os::Semaphore,
    name: WinName,
}

impl Lock {
    /// Opens the lock semaphore `name`, creating it with count 1 if missing,
    /// as Qt's `initKey` does.
    pub(crate) fn open(op: Operation, name: &WinName) -> Result<Lock> {
        match os::create_semaphore(name, 1, QT_SEMAPHORE_MAX) {
            Ok(created) => Ok(Lock { sem: created.into_inner(), name: name.clone() }),
            Err(e) => Err(semaphore_error(op, "CreateSemaphoreW", name, e).with_lock_kind()),
        }
    }

    /// Takes one count; false if the deadline passed first.
    pub(crate) fn take(&self, op: Operation, deadline: Deadline) -> Result<bool> {
        self.sem
            .wait(deadline.remaining())
            .map_err(|e| semaphore_error(op, "WaitForSingleObject", &self.name, e).with_lock_kind())
    }

    /// Gives one count back.
    pub(crate) fn give(&self, op: Operation) -> Result<()> {
        self.sem
            .release(1)
            .map(drop)
            .map_err(|e| semaphore_error(op, "ReleaseSemaphore", &self.name, e).with_lock_kind())
    }

    /// Opens and takes the lock; a timed-out wait is a LockError.
    fn acquire(op: Operation, name: &WinName, deadline: Deadline) -> Result<Lock> {
        let lock = Lock::open(op, name)?;
        if lock.take(op, deadline)? {
            Ok(lock)
        } else {
            Err(lock_timeout(op))
        }
    }
}

/// How `QSystemSemaphore` classifies a Win32 error, in users' words.
pub(crate) fn semaphore_error(op: Operation, call: &'static str, name: &WinName, e: std::io::Error) -> Error {
    let code = e.raw_os_error().unwrap_or(0) as u32;
    let (kind, _) = names::system_semaphore_error(code);
    let err = Error::os_as(kind, op, call, e);
    let detail = match (kind, code) {
        (ErrorKind::PermissionDenied, _) => format!("permission denied for the semaphore {name}"),
        (ErrorKind::OutOfResources, _) => format!("out of resources for the semaphore {name}"),
        (_, codes::INVALID_HANDLE) => format!("the name {name} belongs to another kind of object (a file mapping?)"),
        (_, 3) => format!("bad name {name}: a backslash other than after Local or Global names a missing directory"),
        _ => format!("{call} of the semaphore {name} failed"),
    };
    err.detail(detail)
}

trait LockKind {
    fn with_lock_kind(self) -> Self;
}

impl LockKind for Error {
    /// A lock failure that Qt's table calls unknown is a LockError, as on
    /// Unix.
    fn with_lock_kind(self) -> Error {
        if self.kind() == ErrorKind::Unknown {
            self.with_kind(ErrorKind::LockError)
        } else {
            self
        }
    }
}

fn access(writable: bool) -> Access {
    if writable {
        Access::ReadWrite
    } else {
        Access::ReadOnly
    }
}

/// Maps a whole view of `file`.
fn map(op: Operation, name: &WinName, file: &FileMapping, writable: bool) -> Result<Mapping> {
    let view = file.map(access(writable)).map_err(|e| object_error(op, "MapViewOfFile", name, e))?;
    Ok(Mapping::from_windows_view(view, writable))
}

/// `CreateFileMappingW`, under the lock the caller holds: a new mapping, or
/// a handle to the existing one of that name (which `create` closes again
/// at once, so that a failed create does not keep it alive as Qt's does).
fn create_mapping(op: Operation, name: &WinName, size: usize) -> Result<os::Created<FileMapping>> {
    os::create_mapping(name, size as u64).map_err(|e| object_error(op, "CreateFileMappingW", name, e))
}

pub(crate) fn create(key: &NativeKey, params: &CreateParams, deadline: Deadline) -> Result<(Segment, Created)> {
    const OP: Operation = Operation::Create;
    let names = names_of(key);
    let lock = Lock::acquire(OP, &names.lock, deadline)?;
    let result = match create_mapping(OP, &names.mapping, params.size) {
        Ok(os::Created::New(file)) => map(OP, &names.mapping, &file, params.writable).map(|m| (file, m)),
        Ok(os::Created::Existing(file)) => {
            drop(file);
            Err(object_error(
                OP,
                "CreateFileMappingW",
                &names.mapping,
                std::io::Error::from_raw_os_error(codes::ALREADY_EXISTS as i32),
            ))
        }
        Err(e) => Err(e),
    };
    let released = lock.give(OP);
    let (file, mapping) = result?;
    released?;
    let mut created = Created::default();
    if params.huge_pages {
        created.huge = HugeOutcome::Unavailable("qipc does not use large pages on Windows".into());
    }
    Ok((Segment { name: names.mapping, mapping, file, lock }, created))
}

pub(crate) fn attach(key: &NativeKey, writable: bool, deadline: Deadline) -> Result<Segment> {
    const OP: Operation = Operation::Attach;
    let names = names_of(key);
    let lock = Lock::acquire(OP, &names.lock, deadline)?;
    let result = os::open_mapping(&names.mapping, access(writable))
        .map_err(|e| object_error(OP, "OpenFileMappingW", &names.mapping, e))
        .and_then(|file| map(OP, &names.mapping, &file, writable).map(|m| (file, m)));
    let released = lock.give(OP);
    let (file, mapping) = result?;
    released?;
    Ok(Segment { name: names.mapping, mapping, file, lock })
}

pub(crate) fn open_or_create(key: &NativeKey, params: &CreateParams, deadline: Deadline) -> Result<(Segment, Opened)> {
    const OP: Operation = Operation::Create;
    let names = names_of(key);
    let lock = Lock::acquire(OP, &names.lock, deadline)?;
    let result = create_mapping(OP, &names.mapping, params.size).and_then(|created| {
        let opened = if created.existed() { Opened::Attached } else { Opened::Created(Created::default()) };
        let file = created.into_inner();
        map(OP, &names.mapping, &file, params.writable).map(|m| (file, m, opened))
    });
    let released = lock.give(OP);
    let (file, mapping, opened) = result?;
    released?;
    Ok((Segment { name: names.mapping, mapping, file, lock }, opened))
}

/// Detaches under the lock, as Qt: unmap, close the mapping, give the lock
/// back, close it. On a time-out the segment is given back still attached
/// (dropping it then closes everything without the lock).
#[allow(clippy::result_large_err)] // the segment goes back to the caller, who keeps it
pub(crate) fn detach(seg: Segment, deadline: Deadline) -> std::result::Result<Detached, (Segment, Error)> {
    const OP: Operation = Operation::Detach;
    match seg.lock.take(OP, deadline) {
        Ok(true) => {}
        Ok(false) => return Err((seg, lock_timeout(OP))),
        Err(e) => return Err((seg, e)),
    }
    let Segment { name, mapping, file, lock } = seg;
    drop(mapping);
    let _ = file.close();
    // Whether this was the last handle: the name is gone with it.
    let removed = matches!(
        os::open_mapping(&name, Access::ReadOnly),
        Err(e) if e.raw_os_error() == Some(codes::FILE_NOT_FOUND as i32)
    );
    let _ = lock.give(OP);
    Ok(Detached { removed })
}

/// Nothing can be removed by name on Windows (see the module docs): reports
/// whether a segment exists for the key, removing nothing.
pub(crate) fn remove(key: &NativeKey, _deadline: Deadline) -> Result<bool> {
    let names = names_of(key);
    match os::open_mapping(&names.mapping, Access::ReadOnly) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(codes::FILE_NOT_FOUND as i32) => Ok(false),
        Err(e) => Err(object_error(Operation::Remove, "OpenFileMappingW", &names.mapping, e)),
    }
}
