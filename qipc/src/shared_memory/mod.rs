//! [`SharedMemory`], the counterpart of `QSharedMemory`, and its lock guard.
//!
//! # Walkthrough
//!
//! One process creates a segment (which also attaches to it), writes under
//! the lock and stays attached; another attaches, reads under the lock and
//! detaches. The last process to detach removes the segment.
//!
//! ```
//! use qipc::{AccessMode, ErrorKind, SharedMemory};
//! # let key = format!("qipc-doc-walkthrough-{}", std::process::id());
//! let mut writer = SharedMemory::new(&key);           // QSharedMemory writer(key)
//! writer.create(64, AccessMode::ReadWrite)?;          // writer.create(64)
//! writer.lock()?.write_at(0, b"Hello, world!")?;      // lock, memcpy, unlock
//!
//! // A second create on the same key fails; Qt's idiom is to attach then.
//! let mut reader = SharedMemory::new(&key);
//! assert_eq!(reader.create(64, AccessMode::ReadWrite).unwrap_err().kind(), ErrorKind::AlreadyExists);
//! reader.attach(AccessMode::ReadOnly)?;
//! let guard = reader.lock()?;
//! assert_eq!(&guard.to_vec()[..13], b"Hello, world!");
//! drop(guard);                                        // unlock
//! reader.detach()?;
//! writer.detach()?;                                   // the last one out removes it
//! # Ok::<(), qipc::Error>(())
//! ```
//!
//! [`SharedMemory::open_or_create`] does the create-or-attach in one step,
//! under one hold of the lock, and says which it did.
//!
//! # Data access and soundness
//!
//! The bytes of a segment can change at any moment: another process (a Qt
//! program that skips `lock()`, say) may write them whether or not we hold
//! the lock. Rust references (`&[u8]`, `&mut [u8]`) promise the compiler
//! that memory does not change behind them, so safe code here never creates
//! one into the segment. The guard copies instead
//! ([`read_at`](SharedMemoryGuard::read_at),
//! [`to_vec`](SharedMemoryGuard::to_vec),
//! [`write_at`](SharedMemoryGuard::write_at)); raw pointers are there for
//! callers who keep the rules themselves; slices exist only through the
//! `unsafe fn`s [`as_slice`](SharedMemoryGuard::as_slice) and
//! [`as_mut_slice`](SharedMemoryGuard::as_mut_slice), whose contract is
//! that every peer honours the lock while the slice lives. A segment
//! attached [`AccessMode::ReadOnly`] is mapped read-only, and every write
//! path refuses:
//!
//! ```
//! use qipc::{AccessMode, ErrorKind, SharedMemory};
//! # let key = format!("qipc-doc-read-only-{}", std::process::id());
//! let mut owner = SharedMemory::new(&key);
//! owner.create(16, AccessMode::ReadWrite)?;
//! let mut viewer = SharedMemory::new(&key);
//! viewer.attach(AccessMode::ReadOnly)?;
//! let err = viewer.lock()?.write_at(0, b"x").unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::PermissionDenied);
//! # Ok::<(), qipc::Error>(())
//! ```

#[allow(unsafe_code)] // forwards `unsafe fn as_slice` to the mapping; nothing else
mod guard;
mod options;

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

pub use guard::SharedMemoryGuard;
pub use options::{AccessMode, CreateOptions, HugePages, Opened};

use crate::{
    backend::{self, Segment},
    error::{Error, ErrorKind, Operation, Result},
    key::{KeyType, NativeKey},
    sys::{fork, Deadline},
};

/// A keyed shared memory segment, the counterpart of `QSharedMemory`.
///
/// A `SharedMemory` names a segment by key. [`create`](SharedMemory::create)
/// makes the segment and attaches to it; [`attach`](SharedMemory::attach)
/// attaches to an existing one; [`detach`](SharedMemory::detach) (or drop)
/// lets go. Data is read and written under [`lock`](SharedMemory::lock),
/// through the guard it returns.
///
/// It speaks Qt's protocol: the same names, the same lock semaphore taken
/// around create, attach and detach, the same permissions. A Qt process
/// (C++, PyQt or PySide) that uses the same key shares the segment and the
/// lock.
///
/// # Lifetime
///
/// The last process to detach removes the segment and its lock: System V
/// segments (as Qt does) and POSIX objects (which Qt never removes). A
/// process that dies without detaching leaves the segment behind with
/// nobody attached; the next `create` on the key replaces it, `qipc gc`
/// removes it, and a System V attach + detach removes it as in Qt. Nothing
/// is ever removed while a process is attached, forked children included.
/// The rules in full, for every interleaving, are in the README.
///
/// On Windows the kernel keeps the lifetime: a segment lives while any
/// process (qipc or Qt) has a handle to it and goes with the last one, so a
/// crash leaves nothing behind, there is never an orphan to replace, and
/// [`remove`](SharedMemory::remove) cannot remove anything. A lock holder
/// that dies keeps the lock taken (Windows semaphores have no owner): use
/// the `_timeout` variants where that can happen.
///
/// # Example
/// ```no_run
/// use qipc::{AccessMode, Opened, SharedMemory};
/// let mut shm = SharedMemory::new("SharedMemoryExample");
/// match shm.open_or_create(1024, AccessMode::ReadWrite)? {
///     Opened::Created => println!("first: the segment is ours to fill"),
///     Opened::Attached => println!("joined an existing segment"),
/// }
/// let value = u32::from_le_bytes(shm.lock()?.to_vec()[..4].try_into().unwrap());
/// # let _ = value;
/// # Ok::<(), qipc::Error>(())
/// ```
#[derive(Debug)]
#[doc(alias = "QSharedMemory")]
pub struct SharedMemory {
    key: NativeKey,
    attached: Option<Attached>,
    huge: HugePages,
}

/// The state of an attached handle.
#[derive(Debug)]
struct Attached {
    segment: Segment,
    mode: AccessMode,
    /// The thread that holds the lock through this handle (0: none), to
    /// refuse a second `lock()` from the same thread instead of deadlocking.
    locked_by: AtomicU64,
    /// The fork generation the lock was taken in: a forked child's copy of
    /// the handle must not release its parent's lock.
    locked_in: AtomicU64,
}

impl Attached {
    fn new(segment: Segment, mode: AccessMode) -> Attached {
        Attached { segment, mode, locked_by: AtomicU64::new(0), locked_in: AtomicU64::new(0) }
    }

    /// Forgets a lock this handle holds, releasing it unless this process
    /// is a forked copy of the one that took it.
    fn release_held(&self) -> Result<()> {
        if self.locked_by.swap(0, Ordering::Relaxed) == 0 {
            return Ok(());
        }
        if self.locked_in.load(Ordering::Relaxed) != fork::generation() {
            return Ok(());
        }
        self.segment.unlock()
    }
}

/// A number unique to the calling thread for the life of the process
/// (never 0, never reused).
#[inline]
fn thread_tag() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local!(static TAG: u64 = NEXT.fetch_add(1, Ordering::Relaxed));
    TAG.with(|t| *t)
}

/// How long dropping a handle waits for a POSIX or Windows lock before
/// giving up the clean-up: a POSIX segment then stays for `create` or
/// `qipc gc` to reclaim; a Windows segment's handles are closed without the
/// lock, which only gives up this process's reference.
const DROP_LOCK_WAIT: Duration = Duration::from_secs(10);

impl SharedMemory {
    /// A segment named by a legacy key, as `QSharedMemory(key)`: the native
    /// key is [`NativeKey::legacy_shared_memory`]`(key,
    /// KeyType::LEGACY_DEFAULT)` and the lock is the `qipc_systemsem_`
    /// semaphore that Qt 5 and Qt 6 use for the same key (on Linux and
    /// macOS a System V key file in the temporary directory; on Windows the
    /// file mapping `qipc_sharedmemory_<letters><sha1>` and the semaphore
    /// `qipc_systemsem_<letters><sha1>`). Nothing is
    /// created or opened yet. An empty key is refused by every operation
    /// with [`ErrorKind::KeyError`], as in Qt.
    ///
    /// ```
    /// let shm = qipc::SharedMemory::new("SharedMemoryExample");
    /// assert_eq!(shm.key(), Some("SharedMemoryExample"));
    /// assert_eq!(qipc::SharedMemory::new("").key(), None);
    /// ```
    pub fn new(key: &str) -> SharedMemory {
        SharedMemory::with_native_key(NativeKey::legacy_shared_memory(key, KeyType::LEGACY_DEFAULT))
    }

    /// A segment named by a native key, as `QSharedMemory(QNativeIpcKey)`.
    /// A key without a legacy key is locked with a semaphore of the same
    /// native key, as in Qt 6.6+.
    pub fn with_native_key(key: NativeKey) -> SharedMemory {
        SharedMemory { key, attached: None, huge: HugePages::NotRequested }
    }

    /// The legacy key, if the segment was named by one (`QSharedMemory::key()`);
    /// `None` for a native key or an empty key.
    pub fn key(&self) -> Option<&str> {
        self.key.legacy_key()
    }

    /// The native key (`QSharedMemory::nativeIpcKey()`).
    pub fn native_key(&self) -> &NativeKey {
        &self.key
    }

    /// True while attached.
    pub fn is_attached(&self) -> bool {
        self.attached.is_some()
    }

    /// The size in bytes of the attached segment. Zero when not attached.
    ///
    /// On Linux and macOS it is exactly the size the segment was created
    /// with. On Windows it is that size rounded up to whole pages (4096
    /// bytes), for the creator and every attacher alike, as Qt reports it:
    /// Windows keeps no exact size that another process could read, and a
    /// creator that reported more exactly than its peers would make two
    /// handles on one segment disagree. The extra bytes are real memory,
    /// zeroed at creation, and [`SharedMemoryGuard::len`] is the same size.
    pub fn size(&self) -> usize {
        self.attached.as_ref().map_or(0, |a| a.segment.mapping().len())
    }

    /// The access mode of the current attachment, if attached.
    pub fn access_mode(&self) -> Option<AccessMode> {
        self.attached.as_ref().map(|a| a.mode)
    }

    /// Whether the segment this handle created uses huge pages.
    pub fn huge_pages(&self) -> &HugePages {
        &self.huge
    }

    /// Creates a segment of `size` bytes and attaches to it
    /// (`QSharedMemory::create`). The memory starts zeroed.
    ///
    /// A segment left by a crash (nobody attached) is replaced; see
    /// [`CreateOptions::strict_qt`] for Qt's behaviour. For POSIX keys the
    /// memory is reserved now (`posix_fallocate`), so a full `/dev/shm` is
    /// an error here, not a SIGBUS later.
    ///
    /// # Errors
    /// - [`ErrorKind::AlreadyExists`]: a segment with this key exists and a
    ///   process is attached to it (attach instead), or this handle is
    ///   attached already;
    /// - [`ErrorKind::InvalidSize`]: `size` is 0 or above the system's limit;
    /// - [`ErrorKind::OutOfResources`]: not enough memory, space or identifiers;
    /// - [`ErrorKind::PermissionDenied`], [`ErrorKind::KeyError`];
    /// - [`ErrorKind::LockError`]: the lock could not be taken.
    #[doc(alias = "shmget")]
    #[doc(alias = "shm_open")]
    pub fn create(&mut self, size: usize, mode: AccessMode) -> Result<()> {
        self.create_with(size, mode, &CreateOptions::default())
    }

    /// [`create`](SharedMemory::create) with [`CreateOptions`].
    ///
    /// # Errors
    /// As [`create`](SharedMemory::create); a time-out of
    /// [`CreateOptions::lock_timeout`] is [`ErrorKind::LockError`].
    pub fn create_with(&mut self, size: usize, mode: AccessMode, options: &CreateOptions) -> Result<()> {
        self.check_detached(Operation::Create)?;
        check_size(size)?;
        let (segment, created) = backend::create(&self.key, &options.params(size, mode), options.deadline())?;
        self.huge = created.huge.into();
        self.attached = Some(Attached::new(segment, mode));
        Ok(())
    }

    /// Attaches to the segment if it exists, else creates it with `size`
    /// bytes, all under one hold of the lock, so that no other process can
    /// create or remove it in between (Qt's create-then-attach idiom has a
    /// window for both). Returns which of the two happened.
    ///
    /// # Errors
    /// As [`create`](SharedMemory::create) and [`attach`](SharedMemory::attach).
    pub fn open_or_create(&mut self, size: usize, mode: AccessMode) -> Result<Opened> {
        self.open_or_create_with(size, mode, &CreateOptions::default())
    }

    /// [`open_or_create`](SharedMemory::open_or_create) with [`CreateOptions`]
    /// (used only if it creates).
    ///
    /// # Errors
    /// As [`open_or_create`](SharedMemory::open_or_create).
    pub fn open_or_create_with(&mut self, size: usize, mode: AccessMode, options: &CreateOptions) -> Result<Opened> {
        self.check_detached(Operation::Create)?;
        check_size(size)?;
        let (segment, opened) = backend::open_or_create(&self.key, &options.params(size, mode), options.deadline())?;
        let opened = match opened {
            backend::Opened::Created(created) => {
                self.huge = created.huge.into();
                Opened::Created
            }
            backend::Opened::Attached => {
                self.huge = HugePages::NotRequested;
                Opened::Attached
            }
        };
        self.attached = Some(Attached::new(segment, mode));
        Ok(opened)
    }

    /// Attaches to an existing segment (`QSharedMemory::attach`).
    ///
    /// # Errors
    /// - [`ErrorKind::NotFound`]: no segment with this key;
    /// - [`ErrorKind::PermissionDenied`]: the segment belongs to another user
    ///   or does not allow `mode`;
    /// - [`ErrorKind::AlreadyExists`]: this handle is attached already;
    /// - [`ErrorKind::KeyError`], [`ErrorKind::LockError`].
    #[doc(alias = "shmat")]
    pub fn attach(&mut self, mode: AccessMode) -> Result<()> {
        self.attach_with(mode, Deadline::Never)
    }

    /// [`attach`](SharedMemory::attach), waiting at most `timeout` for the
    /// lock that attach takes (Qt waits without limit).
    ///
    /// # Errors
    /// As [`attach`](SharedMemory::attach); a time-out is [`ErrorKind::LockError`].
    pub fn attach_timeout(&mut self, mode: AccessMode, timeout: Duration) -> Result<()> {
        self.attach_with(mode, Deadline::after(timeout))
    }

    fn attach_with(&mut self, mode: AccessMode, deadline: Deadline) -> Result<()> {
        self.check_detached(Operation::Attach)?;
        let segment = backend::attach(&self.key, mode == AccessMode::ReadWrite, deadline)?;
        self.huge = HugePages::NotRequested;
        self.attached = Some(Attached::new(segment, mode));
        Ok(())
    }

    /// Detaches (`QSharedMemory::detach`). If no other process is attached
    /// any more, the segment and its lock are removed. A lock this handle
    /// still holds (a forgotten guard) is released first.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] if not attached; [`ErrorKind::LockError`] if
    /// the lock cannot be taken (the handle then stays attached).
    #[doc(alias = "shmdt")]
    pub fn detach(&mut self) -> Result<()> {
        self.detach_with(Deadline::Never).map(drop)
    }

    /// [`detach`](SharedMemory::detach), waiting at most `timeout` for the
    /// lock that detach takes (Qt waits without limit). On a time-out the
    /// handle stays attached; dropping it then lets go without the lock.
    ///
    /// # Errors
    /// As [`detach`](SharedMemory::detach); a time-out is [`ErrorKind::LockError`].
    pub fn detach_timeout(&mut self, timeout: Duration) -> Result<()> {
        self.detach_with(Deadline::after(timeout)).map(drop)
    }

    fn detach_with(&mut self, deadline: Deadline) -> Result<backend::Detached> {
        let Some(attached) = self.attached.take() else {
            return Err(Error::new(ErrorKind::NotFound, Operation::Detach, "this handle is not attached"));
        };
        // Qt's detach releases a lock the handle holds, too.
        let _ = attached.release_held();
        match backend::detach(attached.segment, deadline) {
            Ok(done) => Ok(done),
            Err((segment, e)) => {
                self.attached = Some(Attached::new(segment, attached.mode));
                Err(e)
            }
        }
    }

    /// Takes the lock, waiting as long as it takes (`QSharedMemory::lock`),
    /// and returns a guard that gives access to the data and releases the
    /// lock when dropped.
    ///
    /// The lock is Qt's: a Qt process locking the same key waits for it, and
    /// this waits for the Qt process. The kernel releases a System V lock
    /// whose holder dies; a POSIX lock on a semaphore qipc created is given
    /// back by the next locker (the guard's
    /// [`previous_holder_died`](SharedMemoryGuard::previous_holder_died)
    /// says so).
    ///
    /// # Errors
    /// [`ErrorKind::LockError`] if the handle is not attached (as Qt), if
    /// this thread already holds the lock through this handle (Qt would
    /// return `true` and warn; a guard cannot be handed out twice), or if
    /// the semaphore fails.
    #[doc(alias = "semop")]
    #[inline]
    pub fn lock(&self) -> Result<SharedMemoryGuard<'_>> {
        match self.lock_with(Deadline::Never, Operation::Lock)? {
            Some(guard) => Ok(guard),
            None => Err(Error::new(ErrorKind::LockError, Operation::Lock, "the wait ended without the lock")),
        }
    }

    /// Takes the lock if it is free now; `Ok(None)` if another holder has it.
    ///
    /// # Errors
    /// As [`lock`](SharedMemory::lock).
    pub fn try_lock(&self) -> Result<Option<SharedMemoryGuard<'_>>> {
        self.lock_with(Deadline::Now, Operation::Lock)
    }

    /// Takes the lock, waiting at most `timeout`; `Ok(None)` on time-out.
    ///
    /// # Errors
    /// As [`lock`](SharedMemory::lock).
    pub fn lock_timeout(&self, timeout: Duration) -> Result<Option<SharedMemoryGuard<'_>>> {
        self.lock_with(Deadline::after(timeout), Operation::Lock)
    }

    #[inline]
    fn lock_with(&self, deadline: Deadline, op: Operation) -> Result<Option<SharedMemoryGuard<'_>>> {
        let Some(attached) = &self.attached else {
            return Err(Error::new(
                ErrorKind::LockError,
                op,
                "unable to lock: the handle is not attached (create or attach first)",
            ));
        };
        let me = thread_tag();
        if attached.locked_by.load(Ordering::Relaxed) == me {
            return Err(Error::new(ErrorKind::LockError, op, "this thread already holds the lock through this handle"));
        }
        let fork_generation = fork::generation();
        let Some(info) = attached.segment.lock(deadline)? else {
            return Ok(None);
        };
        attached.locked_by.store(me, Ordering::Relaxed);
        attached.locked_in.store(fork_generation, Ordering::Relaxed);
        Ok(Some(SharedMemoryGuard::new(&attached.segment, &attached.locked_by, info.holder_died, fork_generation)))
    }

    /// Releases a lock whose guard was forgotten (`mem::forget`), as
    /// `QSharedMemory::unlock`. Normally the guard's drop does this. It must
    /// be called on the thread that took the lock.
    ///
    /// # Errors
    /// [`ErrorKind::LockError`] if this handle does not hold the lock, or
    /// another thread took it.
    pub fn unlock(&mut self) -> Result<()> {
        const OP: Operation = Operation::Unlock;
        let Some(attached) = &self.attached else {
            return Err(Error::new(ErrorKind::LockError, OP, "unable to unlock: the handle is not attached"));
        };
        match attached.locked_by.load(Ordering::Relaxed) {
            0 => Err(Error::new(ErrorKind::LockError, OP, "unable to unlock: this handle does not hold the lock")),
            t if t != thread_tag() => Err(Error::new(
                ErrorKind::LockError,
                OP,
                "unable to unlock: another thread took the lock; unlock it there",
            )),
            _ => attached.release_held(),
        }
    }

    /// Removes the segment of `key`, its lock semaphore and the key files
    /// qipc may remove (never a file it did not create), whoever is
    /// attached. Processes still attached keep their mapping; new processes
    /// no longer find it. It waits up to 5 seconds for the lock, then
    /// removes without it. Returns true if anything existed.
    ///
    /// For clearing what a crash left behind, `create` (which replaces a
    /// segment nobody is attached to) or `qipc gc` (which removes only what
    /// nobody uses) are safer.
    ///
    /// On Windows nothing can be removed by name: the kernel frees a segment
    /// and its lock when the last process holding them closes its handles
    /// (or ends), and a crash leaves nothing behind. There `remove` removes
    /// nothing and returns whether a segment exists for the key, that is,
    /// whether some process still holds it.
    ///
    /// # Errors
    /// [`ErrorKind::PermissionDenied`] if an object belongs to another user;
    /// [`ErrorKind::KeyError`] for an empty or bad key.
    #[doc(alias = "QSharedMemory::remove")]
    #[doc(alias = "ipcrm")]
    pub fn remove(key: &NativeKey) -> Result<bool> {
        backend::remove(key, Deadline::after(Duration::from_secs(5)))
    }

    fn check_detached(&self, op: Operation) -> Result<()> {
        if self.attached.is_some() {
            return Err(Error::new(ErrorKind::AlreadyExists, op, "this handle is attached already; detach first"));
        }
        Ok(())
    }
}

fn check_size(size: usize) -> Result<()> {
    if size == 0 || size > isize::MAX as usize {
        return Err(Error::new(
            ErrorKind::InvalidSize,
            Operation::Create,
            format!("invalid size {size}: a segment holds between 1 and {} bytes", isize::MAX),
        ));
    }
    Ok(())
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        if self.attached.is_none() {
            return;
        }
        // Errors cannot be reported from drop. A POSIX or Windows lock
        // could be held forever (by a Qt process, or a dead holder on
        // Windows): wait a bounded time, then unmap without the clean-up
        // (POSIX: the segment is reclaimed later, as after a crash; Windows:
        // closing the handles is all a detach does anyway).
        let deadline = match self.key.key_type() {
            KeyType::PosixRealtime | KeyType::Windows => Deadline::after(DROP_LOCK_WAIT),
            KeyType::SystemV { .. } => Deadline::Never,
        };
        if self.detach_with(deadline).is_err() {
            self.attached = None;
        }
    }
}
