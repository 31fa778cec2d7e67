//! [`SharedMemory`], the counterpart of `QSharedMemory`, and its lock guard.
//!
//! # Data access and soundness
//!
//! The bytes of a segment can change at any moment: another process (a Qt
//! program that skips `lock()`, say) may write them whether or not we hold
//! the lock. Rust references (`&[u8]`, `&mut [u8]`, `&T`) promise the
//! compiler that memory does not change behind them, so safe code here never
//! creates one into the segment. Instead:
//!
//! - the guard copies: [`SharedMemoryGuard::read_at`],
//!   [`to_vec`](SharedMemoryGuard::to_vec) and
//!   [`write_at`](SharedMemoryGuard::write_at) move bytes with
//!   `ptr::copy_nonoverlapping` through raw pointers;
//! - raw pointers are available ([`as_ptr`](SharedMemoryGuard::as_ptr),
//!   [`as_mut_ptr`](SharedMemoryGuard::as_mut_ptr)) for callers who manage
//!   the rules themselves;
//! - slices exist only through `unsafe fn`
//!   [`as_slice`](SharedMemoryGuard::as_slice) and
//!   [`as_mut_slice`](SharedMemoryGuard::as_mut_slice), whose contract is
//!   that every peer honours the lock while the slice lives.
//!
//! A copy made while a peer writes without the lock may be torn (part old,
//! part new), exactly as with `memcpy` in C++; it is never a reference the
//! optimiser could reason about wrongly.
//!
//! A segment attached [`AccessMode::ReadOnly`] is mapped read-only by the
//! kernel, and every write path of the API refuses with
//! [`ErrorKind::PermissionDenied`].
//!
//! # Example
//! ```
//! use qipc::{AccessMode, ErrorKind, SharedMemory};
//! # let key = format!("qipc-doc-shared-memory-module-{}", std::process::id());
//! let mut writer = SharedMemory::new(&key);
//! writer.create(16, AccessMode::ReadWrite)?;
//! writer.lock()?.write_at(0, b"copied in")?; // no `&mut [u8]` into the segment
//! let mut reader = SharedMemory::new(&key);
//! reader.attach(AccessMode::ReadOnly)?;
//! let mut guard = reader.lock()?;
//! assert_eq!(&guard.to_vec()[..9], b"copied in"); // a copy out
//! assert_eq!(guard.write_at(0, b"x").unwrap_err().kind(), ErrorKind::PermissionDenied);
//! # Ok::<(), qipc::Error>(())
//! ```

#![allow(unsafe_code)]

use std::{
    marker::PhantomData,
    os::fd::OwnedFd,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, OnceLock,
    },
    time::Duration,
};

use crate::{
    error::{Error, ErrorKind, Result},
    key::{KeyType, NativeKey},
    semaphore::{SemaphoreMode, SystemSemaphore},
    sys::{self, posix, sysv, sysv::Wait, Region},
};

/// How a segment is mapped, as `QSharedMemory::AccessMode`.
///
/// # Example
/// ```
/// assert_eq!(qipc::AccessMode::default(), qipc::AccessMode::ReadWrite);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[doc(alias = "QSharedMemory::AccessMode")]
pub enum AccessMode {
    /// Mapped read-only (`SHM_RDONLY`, `PROT_READ`); writes are refused.
    ReadOnly,
    /// Mapped for reading and writing.
    #[default]
    ReadWrite,
}

/// Options for [`SharedMemory::create_with`].
///
/// # Example
/// ```
/// let opts = qipc::CreateOptions::new().populate(true).reclaim_orphan(true);
/// assert!(opts.populate_requested());
/// ```
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    populate: bool,
    reclaim_orphan: bool,
    huge_pages: bool,
}

impl CreateOptions {
    /// The defaults: no pre-faulting; System V orphans are not reclaimed
    /// (POSIX orphans always are, see [`SharedMemory::create`]).
    ///
    /// # Example
    /// ```
    /// let options = qipc::CreateOptions::new();
    /// assert!(!options.populate_requested());
    /// ```
    pub fn new() -> CreateOptions {
        CreateOptions::default()
    }

    /// Pre-fault every page at create time (`MADV_POPULATE_WRITE`, or
    /// `MAP_POPULATE`), so that the first write into a large fresh segment
    /// runs at memory speed instead of taking one page fault per 4 KiB.
    ///
    /// # Example
    /// ```
    /// use qipc::{AccessMode, CreateOptions, SharedMemory};
    /// # let key = format!("qipc-doc-populate-{}", std::process::id());
    /// let mut shm = SharedMemory::new(&key);
    /// shm.create_with(1 << 20, AccessMode::ReadWrite, &CreateOptions::new().populate(true))?;
    /// shm.lock()?.fill(0, 1 << 20, 0xaa)?; // the pages are already there
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn populate(mut self, yes: bool) -> CreateOptions {
        self.populate = yes;
        self
    }

    /// Back the segment with huge pages where the kernel allows it. If the
    /// kernel refuses, the segment uses normal pages and
    /// [`SharedMemory::huge_pages`] tells why.
    ///
    /// - System V: `SHM_HUGETLB` first (needs pages reserved in
    ///   `vm.nr_hugepages`, and `CAP_IPC_LOCK` or `vm.hugetlb_shm_group`);
    ///   failing that, transparent huge pages (`MADV_HUGEPAGE`), which need
    ///   `/sys/kernel/mm/transparent_hugepage/shmem_enabled` set to
    ///   `advise`, `always` or `within_size`.
    /// - POSIX: transparent huge pages, which for `/dev/shm` depend on that
    ///   tmpfs mount's `huge=` option (`advise`, `always`, `within_size`),
    ///   not on the global shmem policy.
    ///
    /// Qt attaches such segments normally; huge pages only change how the
    /// kernel backs the memory.
    ///
    /// # Example
    /// ```
    /// use qipc::{AccessMode, CreateOptions, HugePages, SharedMemory};
    /// # let key = format!("qipc-doc-options-huge-pages-{}", std::process::id());
    /// let mut shm = SharedMemory::new(&key);
    /// shm.create_with(2 << 20, AccessMode::ReadWrite, &CreateOptions::new().huge_pages(true))?;
    /// assert_ne!(*shm.huge_pages(), HugePages::NotRequested); // Active, or Unavailable(why)
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn huge_pages(mut self, yes: bool) -> CreateOptions {
        self.huge_pages = yes;
        self
    }

    /// Whether [`populate`](CreateOptions::populate) was asked for.
    ///
    /// # Example
    /// ```
    /// use qipc::CreateOptions;
    /// assert!(!CreateOptions::new().populate_requested());
    /// assert!(CreateOptions::new().populate(true).populate_requested());
    /// ```
    pub fn populate_requested(&self) -> bool {
        self.populate
    }

    /// If a System V segment with this key exists but no process is
    /// attached to it (its creator crashed), remove it and create a new one
    /// instead of failing with `AlreadyExists`. This is the "attach, then
    /// detach" workaround Qt programs use, done in one step under the lock.
    ///
    /// # Example
    /// ```
    /// use qipc::{AccessMode, CreateOptions, ErrorKind, SharedMemory};
    /// # let key = format!("qipc-doc-reclaim-orphan-{}", std::process::id());
    /// let options = CreateOptions::new().reclaim_orphan(true);
    /// let mut shm = SharedMemory::new(&key);
    /// shm.create_with(64, AccessMode::ReadWrite, &options)?; // also replaces a crashed creator's segment
    /// // A segment someone is attached to is never reclaimed:
    /// let err = SharedMemory::new(&key).create_with(64, AccessMode::ReadWrite, &options).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn reclaim_orphan(mut self, yes: bool) -> CreateOptions {
        self.reclaim_orphan = yes;
        self
    }
}

/// A keyed shared memory segment, the counterpart of `QSharedMemory`.
///
/// A `SharedMemory` names a segment by key. [`create`](SharedMemory::create)
/// makes the segment and attaches to it; [`attach`](SharedMemory::attach)
/// attaches to an existing one; [`detach`](SharedMemory::detach) (or drop)
/// lets go. Data is read and written under [`lock`](SharedMemory::lock),
/// through the returned guard.
///
/// It speaks Qt's protocol: the same names, the same lock semaphore taken
/// around create, attach and detach, the same permissions. A Qt process
/// (C++, PyQt or PySide) that uses the same key shares the segment and the
/// lock.
///
/// # Lifetime
/// - **System V**, exactly as Qt: the last process to detach removes the
///   segment and its key file. A process that dies without detaching leaves
///   the segment behind; the next attach + detach removes it.
/// - **POSIX**: Qt never removes these objects. qipc does: when it detaches
///   and no other process (qipc or Qt) has the object open or mapped, it
///   removes the object and its semaphore, under the lock. An object left
///   behind by a crash, or by a Qt process that detached last, is removed by
///   the next qipc [`create`](SharedMemory::create) on that key, or by
///   `qipc gc`.
///
/// # Living with Qt 6.6+ (spec §7.3)
/// - A Qt 6.6+ `QSharedMemory` whose `create()` failed removes a System V
///   segment that **no process is attached to** when it later calls
///   `attach()` or is destroyed. A qipc segment has a process attached for
///   as long as it is meant to exist (the creator stays attached; the last
///   detacher removes it anyway), so only segments left by a crash are at
///   risk, and those are garbage. Keep at least one attachment alive while
///   the data matters; do not create a segment and detach from it expecting
///   a Qt process to pick it up later.
/// - With a *native* System V key (a file path with no legacy key), Qt 6
///   uses the same key file for the segment and its lock, and the Qt process
///   that created the lock semaphore deletes that file when it exits, even
///   while the segment is in use; later attachers then get `NotFound`. qipc
///   never deletes the file from the semaphore side, but it cannot stop a Qt
///   process from doing so: to share with Qt 6, prefer a legacy key
///   ([`SharedMemory::new`]) or a POSIX key.
/// - Qt's POSIX lock semaphore is replaced by any Qt process that calls
///   `create()` on an existing key, after which Qt's and qipc's locks no
///   longer exclude each other. Qt programs that follow the documented
///   "create, else attach" idiom do this; qipc's own `create` only replaces
///   a semaphore whose segment is gone.
///
/// # Example
/// The writer from the seeds, and the reader in the same process:
/// ```
/// use qipc::{AccessMode, SharedMemory};
/// # let key = format!("qipc-doc-shm-{}", std::process::id());
/// let mut writer = SharedMemory::new(&key);
/// writer.create(1024, AccessMode::ReadWrite)?;
/// writer.lock()?.write_at(0, b"Hello, world!")?;
///
/// let mut reader = SharedMemory::new(&key);
/// reader.attach(AccessMode::ReadOnly)?;
/// let guard = reader.lock()?;
/// let mut buf = [0u8; 13];
/// guard.read_at(0, &mut buf)?;
/// assert_eq!(&buf, b"Hello, world!");
/// # Ok::<(), qipc::Error>(())
/// ```
#[derive(Debug)]
#[doc(alias = "QSharedMemory")]
pub struct SharedMemory {
    key: NativeKey,
    lock_sem: OnceLock<Arc<SystemSemaphore>>,
    segment: Option<Segment>,
    /// True while this object holds the lock.
    locked: AtomicBool,
    /// A hash of the thread that holds the lock, to refuse a second lock
    /// from the same thread instead of deadlocking.
    lock_owner: AtomicU64,
    huge: HugePages,
}

/// Whether a segment created by this object uses huge pages; see
/// [`CreateOptions::huge_pages`].
///
/// # Example
/// ```
/// use qipc::{AccessMode, CreateOptions, HugePages, SharedMemory};
/// # let key = format!("qipc-doc-huge-{}", std::process::id());
/// let mut shm = SharedMemory::new(&key);
/// shm.create_with(4 << 20, AccessMode::ReadWrite, &CreateOptions::new().huge_pages(true))?;
/// match shm.huge_pages() {
///     HugePages::Active => println!("huge pages"),
///     HugePages::Unavailable(why) => println!("normal pages: {why}"),
///     HugePages::NotRequested => unreachable!(),
/// }
/// # Ok::<(), qipc::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum HugePages {
    /// Huge pages were not asked for (or this object did not create the segment).
    #[default]
    NotRequested,
    /// The segment is backed by huge pages (System V hugetlb, or shmem THP
    /// advised for the mapping).
    Active,
    /// Asked for, but the kernel does not allow it; the reason.
    Unavailable(String),
}

#[derive(Debug)]
enum Segment {
    /// `key` is the ftok value computed at attach; detach reuses it, as Qt
    /// does, instead of stat-ing the key file again.
    SysV {
        path: String,
        key: libc::key_t,
        region: Region,
        mode: AccessMode,
    },
    Posix {
        name: String,
        fd: OwnedFd,
        region: Region,
        mode: AccessMode,
    },
}

impl Segment {
    fn region(&self) -> Region {
        match self {
            Segment::SysV { region, .. } | Segment::Posix { region, .. } => *region,
        }
    }

    fn mode(&self) -> AccessMode {
        match self {
            Segment::SysV { mode, .. } | Segment::Posix { mode, .. } => *mode,
        }
    }
}

// SAFETY: the raw pointer in `Region` refers to a process-wide mapping that
// is valid on every thread; it is only dereferenced through the guard, which
// holds the lock. Moving a SharedMemory to another thread moves only the
// address and the descriptor.
unsafe impl Send for SharedMemory {}
// SAFETY: shared access (`&SharedMemory`) only reads the region's address
// and takes the cross-process lock; the lock state is atomic. Bytes are moved
// with raw copies under the lock, never through references.
unsafe impl Sync for SharedMemory {}

/// A number unique to the calling thread for the life of the process (never
/// 0, never reused), without hashing the thread id on every lock.
#[inline]
fn thread_tag() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local!(static TAG: u64 = NEXT.fetch_add(1, Ordering::Relaxed));
    TAG.with(|t| *t)
}

impl SharedMemory {
    /// A segment named by a legacy key, as `QSharedMemory(key)` on Linux:
    /// the native key is [`NativeKey::legacy_shared_memory`]`(key,
    /// KeyType::SYSTEM_V)` and the lock is the `qipc_systemsem_` semaphore
    /// that Qt 5 and Qt 6 use for the same key.
    ///
    /// Nothing is created or opened yet.
    ///
    /// # Example
    /// ```
    /// let shm = qipc::SharedMemory::new("SharedMemoryExample");
    /// assert_eq!(shm.key(), Some("SharedMemoryExample"));
    /// assert!(!shm.is_attached());
    /// ```
    pub fn new(key: &str) -> SharedMemory {
        SharedMemory::with_native_key(NativeKey::legacy_shared_memory(key, KeyType::LEGACY_DEFAULT))
    }

    /// A segment named by a native key, as `QSharedMemory(QNativeIpcKey)`.
    /// A key without a legacy key is locked with a semaphore of the same
    /// native key, as in Qt 6.6+.
    ///
    /// # Example
    /// ```
    /// let shm = qipc::SharedMemory::with_native_key(qipc::NativeKey::posix("QSharedMemoryExample"));
    /// assert_eq!(shm.native_key().to_string(), "posix:QSharedMemoryExample");
    /// ```
    pub fn with_native_key(key: NativeKey) -> SharedMemory {
        SharedMemory {
            key,
            lock_sem: OnceLock::new(),
            segment: None,
            locked: AtomicBool::new(false),
            lock_owner: AtomicU64::new(0),
            huge: HugePages::NotRequested,
        }
    }

    /// The legacy key, if the segment was named by one (`QSharedMemory::key()`).
    ///
    /// # Example
    /// ```
    /// use qipc::{NativeKey, SharedMemory};
    /// assert_eq!(SharedMemory::new("SharedMemoryExample").key(), Some("SharedMemoryExample"));
    /// assert_eq!(SharedMemory::with_native_key(NativeKey::posix("/demo")).key(), None);
    /// ```
    pub fn key(&self) -> Option<&str> {
        self.key.legacy_key()
    }

    /// The native key (`QSharedMemory::nativeIpcKey()`).
    ///
    /// # Example
    /// ```
    /// use qipc::{KeyType, NativeKey, SharedMemory};
    /// let shm = SharedMemory::new("SharedMemoryExample");
    /// assert_eq!(shm.native_key(), &NativeKey::legacy_shared_memory("SharedMemoryExample", KeyType::SYSTEM_V));
    /// ```
    pub fn native_key(&self) -> &NativeKey {
        &self.key
    }

    /// True while attached.
    ///
    /// # Example
    /// ```
    /// use qipc::{AccessMode, SharedMemory};
    /// # let key = format!("qipc-doc-is-attached-{}", std::process::id());
    /// let mut shm = SharedMemory::new(&key);
    /// assert!(!shm.is_attached());
    /// shm.create(16, AccessMode::ReadWrite)?;
    /// assert!(shm.is_attached());
    /// shm.detach()?; // the last one out: the segment is removed
    /// assert!(!shm.is_attached());
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn is_attached(&self) -> bool {
        self.segment.is_some()
    }

    /// The size in bytes of the attached segment: exactly the size it was
    /// created with. Zero when not attached.
    ///
    /// # Example
    /// ```
    /// use qipc::{AccessMode, SharedMemory};
    /// # let key = format!("qipc-doc-size-{}", std::process::id());
    /// let mut shm = SharedMemory::new(&key);
    /// assert_eq!(shm.size(), 0);
    /// shm.create(100, AccessMode::ReadWrite)?;
    /// assert_eq!(shm.size(), 100); // not rounded up to a page
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn size(&self) -> usize {
        self.segment.as_ref().map_or(0, |s| s.region().len)
    }

    /// Whether the segment this object created uses huge pages.
    ///
    /// # Example
    /// ```
    /// use qipc::{AccessMode, HugePages, SharedMemory};
    /// # let key = format!("qipc-doc-huge-pages-{}", std::process::id());
    /// let mut shm = SharedMemory::new(&key);
    /// shm.create(4096, AccessMode::ReadWrite)?; // without CreateOptions::huge_pages
    /// assert_eq!(shm.huge_pages(), &HugePages::NotRequested);
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn huge_pages(&self) -> &HugePages {
        &self.huge
    }

    /// The access mode of the current attachment, if attached.
    ///
    /// # Example
    /// ```
    /// use qipc::{AccessMode, SharedMemory};
    /// # let key = format!("qipc-doc-access-mode-{}", std::process::id());
    /// let mut writer = SharedMemory::new(&key);
    /// assert_eq!(writer.access_mode(), None);
    /// writer.create(16, AccessMode::ReadWrite)?;
    /// let mut reader = SharedMemory::new(&key);
    /// reader.attach(AccessMode::ReadOnly)?;
    /// assert_eq!(reader.access_mode(), Some(AccessMode::ReadOnly));
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn access_mode(&self) -> Option<AccessMode> {
        self.segment.as_ref().map(Segment::mode)
    }

    /// Creates a segment of `size` bytes and attaches to it
    /// (`QSharedMemory::create`). The memory starts zeroed.
    ///
    /// For POSIX keys the memory is reserved now (`posix_fallocate`), so a
    /// full `/dev/shm` is an error here, not a SIGBUS later. A POSIX object
    /// that exists but that no process has open (left by a crash, or by a Qt
    /// process, which never removes them) is removed and created anew, and
    /// its lock semaphore with it: a process killed inside `lock()` leaves
    /// that semaphore at 0, and a POSIX semaphore has no owner to give it
    /// back, so waiting on it would never end.
    ///
    /// # Errors
    /// - [`ErrorKind::InvalidSize`]: `size` is 0 or above the kernel's limit;
    /// - [`ErrorKind::AlreadyExists`]: the segment exists (attach instead),
    ///   or this object is attached already;
    /// - [`ErrorKind::OutOfResources`]: not enough memory or identifiers;
    /// - [`ErrorKind::KeyError`]: empty or unusable key;
    /// - [`ErrorKind::LockError`]: the lock could not be taken.
    ///
    /// # Example
    /// ```
    /// use qipc::{AccessMode, ErrorKind, SharedMemory};
    /// # let key = format!("qipc-doc-create-{}", std::process::id());
    /// let mut a = SharedMemory::new(&key);
    /// a.create(4096, AccessMode::ReadWrite)?;
    /// assert_eq!(a.size(), 4096);
    /// let mut b = SharedMemory::new(&key);
    /// assert_eq!(b.create(4096, AccessMode::ReadWrite).unwrap_err().kind(), ErrorKind::AlreadyExists);
    /// b.attach(AccessMode::ReadWrite)?; // Qt's idiom
    /// # Ok::<(), qipc::Error>(())
    /// ```
    #[doc(alias = "shmget")]
    #[doc(alias = "shm_open")]
    pub fn create(&mut self, size: usize, mode: AccessMode) -> Result<()> {
        self.create_with(size, mode, &CreateOptions::default())
    }

    /// [`create`](SharedMemory::create) with [`CreateOptions`].
    ///
    /// # Errors
    /// As [`create`](SharedMemory::create).
    ///
    /// # Example
    /// ```
    /// use qipc::{AccessMode, CreateOptions, SharedMemory};
    /// # let key = format!("qipc-doc-create-with-{}", std::process::id());
    /// let mut shm = SharedMemory::new(&key);
    /// shm.create_with(1 << 20, AccessMode::ReadWrite, &CreateOptions::new().populate(true))?;
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn create_with(&mut self, size: usize, mode: AccessMode, options: &CreateOptions) -> Result<()> {
        const OP: &str = "SharedMemory::create";
        if self.segment.is_some() {
            return Err(Error::new(ErrorKind::AlreadyExists, OP, "already attached; detach first"));
        }
        self.check_key(OP)?;
        if size == 0 || size > isize::MAX as usize {
            return Err(Error::new(
                ErrorKind::InvalidSize,
                OP,
                format!("invalid size {size}: a segment must hold between 1 and {} bytes", isize::MAX),
            ));
        }
        let sem_mode = match self.key.key_type() {
            // A POSIX semaphore whose segment is gone, or whose segment no
            // process has open any more, was left by a crash, perhaps at 0
            // (a holder killed inside lock()): replace it, as Qt's Create
            // mode does, instead of waiting forever for a dead holder.
            // (Only decided when this object has not opened its lock yet.)
            KeyType::PosixRealtime if self.lock_sem.get().is_none() && posix_unused(self.key.native_key()) => {
                SemaphoreMode::Create
            }
            _ => SemaphoreMode::Open,
        };
        let _locker = self.locker(sem_mode, OP)?;
        let (segment, huge) = match self.key.key_type() {
            KeyType::SystemV { ftok_id } => sysv_create(self.key.native_key(), ftok_id, size, mode, options)?,
            KeyType::PosixRealtime => posix_create(self.key.native_key(), size, mode, options)?,
            KeyType::Windows => (unreachable_windows(OP)?, HugePages::NotRequested),
        };
        self.huge = huge;
        if options.populate && mode == AccessMode::ReadWrite {
            // Best effort: the segment is usable without it.
            let _ = sys::populate_write(segment.region());
        }
        self.segment = Some(segment);
        // As in Qt, the creator owns the lock semaphore and removes it when
        // it goes away.
        if let Some(sem) = self.lock_sem.get() {
            sem.take_ownership();
        }
        Ok(())
    }

    /// Attaches to an existing segment (`QSharedMemory::attach`).
    ///
    /// # Errors
    /// - [`ErrorKind::NotFound`]: no segment with this key;
    /// - [`ErrorKind::PermissionDenied`]: the segment belongs to another user
    ///   or does not allow `mode`;
    /// - [`ErrorKind::AlreadyExists`]: this object is attached already;
    /// - [`ErrorKind::KeyError`], [`ErrorKind::LockError`] as for create.
    ///
    /// # Example
    /// ```
    /// use qipc::{AccessMode, ErrorKind, SharedMemory};
    /// let mut shm = SharedMemory::new("qipc-doc-attach-nobody-made-this");
    /// assert_eq!(shm.attach(AccessMode::ReadOnly).unwrap_err().kind(), ErrorKind::NotFound);
    /// ```
    #[doc(alias = "shmat")]
    pub fn attach(&mut self, mode: AccessMode) -> Result<()> {
        self.attach_with(mode, Wait::Block, "SharedMemory::attach")
    }

    /// [`attach`](SharedMemory::attach), waiting at most `timeout` for the
    /// lock that attach takes (Qt's protocol). Qt waits without limit; this
    /// bounds the wait when a POSIX lock holder may have died (a POSIX
    /// semaphore is not given back when its holder dies).
    ///
    /// # Errors
    /// As [`attach`](SharedMemory::attach); a time-out is
    /// [`ErrorKind::LockError`].
    ///
    /// # Example
    /// ```
    /// use qipc::{AccessMode, ErrorKind, SharedMemory};
    /// use std::time::Duration;
    /// # let key = format!("qipc-doc-attach-timeout-{}", std::process::id());
    /// let mut a = SharedMemory::new(&key);
    /// a.create(64, AccessMode::ReadWrite)?;
    /// let mut b = SharedMemory::new(&key);
    /// b.attach_timeout(AccessMode::ReadOnly, Duration::from_secs(5))?;
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn attach_timeout(&mut self, mode: AccessMode, timeout: Duration) -> Result<()> {
        self.attach_with(mode, Wait::Timeout(timeout), "SharedMemory::attach_timeout")
    }

    fn attach_with(&mut self, mode: AccessMode, wait: Wait, op: &'static str) -> Result<()> {
        const OP: &str = "SharedMemory::attach";
        if self.segment.is_some() {
            return Err(Error::new(ErrorKind::AlreadyExists, op, "already attached"));
        }
        self.check_key(op)?;
        let _locker = self.locker_with(SemaphoreMode::Open, op, wait)?;
        let segment = match self.key.key_type() {
            KeyType::SystemV { ftok_id } => sysv_attach(self.key.native_key(), ftok_id, mode)?,
            KeyType::PosixRealtime => posix_attach(self.key.native_key(), mode)?,
            KeyType::Windows => unreachable_windows(OP)?,
        };
        self.segment = Some(segment);
        Ok(())
    }

    /// Detaches (`QSharedMemory::detach`). If no other process is attached
    /// any more, the segment is removed (see [Lifetime](SharedMemory#lifetime)).
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] if not attached (detaching twice);
    /// [`ErrorKind::LockError`] if the lock cannot be taken. The mapping is
    /// gone either way once this returns `Ok`.
    ///
    /// Like Qt, detach takes the lock without a time limit. With a POSIX
    /// key whose lock holder died inside `lock()`, that wait never ends
    /// (POSIX semaphores have no undo). Dropping a `SharedMemory` waits at
    /// most 10 seconds for a POSIX lock and then unmaps without the
    /// last-detacher clean-up; the next `create` or `qipc gc` reclaims the
    /// object once nobody has it open.
    ///
    /// # Example
    /// ```
    /// use qipc::{AccessMode, ErrorKind, SharedMemory};
    /// # let key = format!("qipc-doc-detach-{}", std::process::id());
    /// let mut shm = SharedMemory::new(&key);
    /// shm.create(64, AccessMode::ReadWrite)?;
    /// shm.detach()?;
    /// assert_eq!(shm.detach().unwrap_err().kind(), ErrorKind::NotFound);
    /// # Ok::<(), qipc::Error>(())
    /// ```
    #[doc(alias = "shmdt")]
    pub fn detach(&mut self) -> Result<()> {
        self.detach_with(Wait::Block)
    }

    fn detach_with(&mut self, wait: Wait) -> Result<()> {
        const OP: &str = "SharedMemory::detach";
        if self.segment.is_none() {
            return Err(Error::new(ErrorKind::NotFound, OP, "not attached"));
        }
        let _locker = self.locker_with(SemaphoreMode::Open, OP, wait)?;
        let segment = self.segment.take();
        let removed = match segment {
            Some(Segment::SysV { path, key, region, .. }) => sysv_detach(&path, key, region)?,
            Some(Segment::Posix { name, fd, region, .. }) => posix_detach(&name, fd, region)?,
            None => false,
        };
        if removed && self.key.key_type() == KeyType::PosixRealtime && !self.locked.load(Ordering::Acquire) {
            // The POSIX semaphore goes with the object; a later create on
            // this object must open a fresh one, so this handle forgets it
            // (the locker above keeps its own reference for the release).
            if let Some(sem) = self.lock_sem.take() {
                sem.remove_now();
            }
        }
        Ok(())
    }

    /// Takes the lock, waiting as long as it takes (`QSharedMemory::lock`),
    /// and returns a guard that gives access to the data and releases the
    /// lock when dropped.
    ///
    /// The lock is Qt's: a Qt process locking the same key waits for it, and
    /// this waits for the Qt process. With a System V key, the kernel
    /// releases the lock of a process that dies holding it.
    ///
    /// # Errors
    /// [`ErrorKind::LockError`] if this thread already holds the lock through
    /// this object (the lock is not recursive), or the semaphore fails;
    /// [`ErrorKind::KeyError`] for an empty key.
    ///
    /// # Example
    /// ```
    /// # use qipc::{AccessMode, SharedMemory};
    /// # let key = format!("qipc-doc-lock-{}", std::process::id());
    /// let mut shm = SharedMemory::new(&key);
    /// shm.create(4, AccessMode::ReadWrite)?;
    /// {
    ///     let mut guard = shm.lock()?;
    ///     guard.write_at(0, &42u32.to_ne_bytes())?;
    /// } // unlocked here
    /// # Ok::<(), qipc::Error>(())
    /// ```
    #[doc(alias = "semop")]
    #[inline]
    pub fn lock(&self) -> Result<SharedMemoryGuard<'_>> {
        const OP: &str = "SharedMemory::lock";
        // A blocking wait only returns without the lock on an error, which
        // lock_with reports; `None` cannot happen, but is an error, not a panic.
        self.lock_with(Wait::Block, OP)?
            .ok_or_else(|| Error::new(ErrorKind::LockError, OP, "unable to lock: the wait ended without the lock"))
    }

    /// Takes the lock if it is free now; `Ok(None)` if another holder has it.
    ///
    /// # Errors
    /// As [`lock`](SharedMemory::lock).
    ///
    /// # Example
    /// ```
    /// # use qipc::{AccessMode, SharedMemory};
    /// # let key = format!("qipc-doc-trylock-{}", std::process::id());
    /// let mut shm = SharedMemory::new(&key);
    /// shm.create(4, AccessMode::ReadWrite)?;
    /// let guard = shm.try_lock()?.expect("nobody else holds it");
    /// # drop(guard);
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn try_lock(&self) -> Result<Option<SharedMemoryGuard<'_>>> {
        self.lock_with(Wait::Now, "SharedMemory::try_lock")
    }

    /// Takes the lock, waiting at most `timeout`; `Ok(None)` on time-out.
    /// Useful with POSIX keys, whose lock is not released when its holder
    /// dies.
    ///
    /// # Errors
    /// As [`lock`](SharedMemory::lock).
    ///
    /// # Example
    /// ```
    /// # use qipc::{AccessMode, SharedMemory};
    /// # use std::time::Duration;
    /// # let key = format!("qipc-doc-locktimeout-{}", std::process::id());
    /// let mut shm = SharedMemory::new(&key);
    /// shm.create(4, AccessMode::ReadWrite)?;
    /// let guard = shm.lock_timeout(Duration::from_secs(1))?;
    /// assert!(guard.is_some());
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Result<Option<SharedMemoryGuard<'_>>> {
        self.lock_with(Wait::Timeout(timeout), "SharedMemory::lock_timeout")
    }

    /// Releases a lock whose guard was forgotten (`mem::forget`), as
    /// `QSharedMemory::unlock`. Normally the guard's drop does this.
    ///
    /// # Errors
    /// [`ErrorKind::LockError`] if this object does not hold the lock.
    ///
    /// # Example
    /// ```
    /// # use qipc::{AccessMode, ErrorKind, SharedMemory};
    /// # let key = format!("qipc-doc-unlock-{}", std::process::id());
    /// let mut shm = SharedMemory::new(&key);
    /// shm.create(4, AccessMode::ReadWrite)?;
    /// assert_eq!(shm.unlock().unwrap_err().kind(), ErrorKind::LockError);
    /// std::mem::forget(shm.lock()?);
    /// shm.unlock()?;
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn unlock(&mut self) -> Result<()> {
        const OP: &str = "SharedMemory::unlock";
        if !self.locked.load(Ordering::Acquire) {
            return Err(Error::new(ErrorKind::LockError, OP, "unable to unlock: not locked by this object"));
        }
        self.release_lock(OP)
    }

    /// Removes every object behind `key` now, whoever is attached: the
    /// segment, its lock semaphore and their key files. This is the
    /// `remove()` the seeds describe, and what `ipcrm` plus `rm` would do.
    ///
    /// Processes still attached keep their mapping (a System V segment is
    /// destroyed when they detach; a POSIX object lives on unnamed), but new
    /// processes no longer find it. Use it to clear what a crash left
    /// behind. Returns true if anything was removed.
    ///
    /// # Errors
    /// [`ErrorKind::PermissionDenied`] if an object belongs to another user;
    /// [`ErrorKind::KeyError`] for an empty key.
    ///
    /// # Example
    /// ```
    /// use qipc::{AccessMode, SharedMemory};
    /// # let key = format!("qipc-doc-remove-{}", std::process::id());
    /// let mut shm = SharedMemory::new(&key);
    /// shm.create(64, AccessMode::ReadWrite)?;
    /// std::mem::forget(shm); // as if the process had crashed
    /// assert!(SharedMemory::remove(&qipc::NativeKey::legacy_shared_memory(&key, qipc::KeyType::SYSTEM_V))?);
    /// # Ok::<(), qipc::Error>(())
    /// ```
    #[doc(alias = "QSharedMemory::remove")]
    #[doc(alias = "ipcrm")]
    pub fn remove(key: &NativeKey) -> Result<bool> {
        const OP: &str = "SharedMemory::remove";
        if key.is_empty() {
            return Err(Error::new(ErrorKind::KeyError, OP, "key is empty"));
        }
        let mut removed = false;
        let lock_key = key.lock_key();
        match key.key_type() {
            KeyType::SystemV { ftok_id } => {
                if let Ok(k) = sysv::ftok(key.native_key(), ftok_id) {
                    if let Ok(id) = sysv::shmget(k, 0, 0) {
                        sysv::shm_remove(id).map_err(|e| Error::from_io(OP, e))?;
                        removed = true;
                    }
                }
                if let Ok(k) = sysv::ftok(lock_key.native_key(), ftok_id) {
                    if let Ok(id) = sysv::semget(k, 0) {
                        sysv::sem_remove(id).map_err(|e| Error::from_io(OP, e))?;
                        removed = true;
                    }
                }
                for path in [key.native_key(), lock_key.native_key()] {
                    if std::fs::metadata(path).is_ok() {
                        sysv::remove_key_file(path).map_err(|e| Error::from_io(OP, e))?;
                        removed = true;
                    }
                }
            }
            KeyType::PosixRealtime => {
                match posix::shm_unlink(key.native_key()) {
                    Ok(()) => removed = true,
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                    Err(e) => return Err(Error::from_io(OP, e)),
                }
                match posix::sem_unlink(lock_key.native_key()) {
                    Ok(()) => removed = true,
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                    Err(e) => return Err(Error::from_io(OP, e)),
                }
            }
            KeyType::Windows => {
                return Err(Error::new(ErrorKind::KeyError, OP, "unsupported key type (Windows keys need Windows)"))
            }
        }
        Ok(removed)
    }

    #[inline]
    fn lock_with(&self, wait: Wait, op: &'static str) -> Result<Option<SharedMemoryGuard<'_>>> {
        let me = thread_tag();
        if self.locked.load(Ordering::Acquire) && self.lock_owner.load(Ordering::Relaxed) == me {
            return Err(Error::new(
                ErrorKind::LockError,
                op,
                "already locked by this thread (the lock is not recursive)",
            ));
        }
        let sem = self.lock_semaphore(SemaphoreMode::Open, op)?;
        let got = sem.acquire_with(wait, op).map_err(|e| lock_error(op, e))?;
        if !got {
            return Ok(None);
        }
        self.lock_owner.store(me, Ordering::Relaxed);
        self.locked.store(true, Ordering::Release);
        Ok(Some(SharedMemoryGuard { shm: self, _not_send: PhantomData }))
    }

    #[inline]
    fn release_lock(&self, op: &'static str) -> Result<()> {
        self.locked.store(false, Ordering::Release);
        self.lock_owner.store(0, Ordering::Relaxed);
        match self.lock_semaphore(SemaphoreMode::Open, op) {
            Ok(sem) => sem.release_one(op).map_err(|e| lock_error(op, e).detail("unable to unlock")),
            Err(e) => Err(e),
        }
    }

    fn check_key(&self, op: &'static str) -> Result<()> {
        if self.key.is_empty() {
            return Err(Error::new(ErrorKind::KeyError, op, "key is empty"));
        }
        Ok(())
    }

    /// The lock semaphore, opened on first use.
    #[inline]
    fn lock_semaphore(&self, mode: SemaphoreMode, op: &'static str) -> Result<&Arc<SystemSemaphore>> {
        match self.lock_sem.get() {
            Some(sem) => Ok(sem),
            None => self.open_lock_semaphore(mode, op),
        }
    }

    /// The slow part of [`lock_semaphore`](SharedMemory::lock_semaphore),
    /// kept out of line so that the lock path stays small.
    #[cold]
    #[inline(never)]
    fn open_lock_semaphore(&self, mode: SemaphoreMode, op: &'static str) -> Result<&Arc<SystemSemaphore>> {
        self.check_key(op)?;
        let sem = SystemSemaphore::for_lock(&self.key, mode, op).map_err(|e| {
            let kind = e.kind();
            Error::new(kind, op, format!("unable to set key on lock ({e})"))
        })?;
        if let Err(extra) = self.lock_sem.set(Arc::new(sem)) {
            // Another thread opened it first; ours must not remove anything
            // (its drop would unlink a semaphore it created).
            std::mem::forget(extra);
        }
        self.lock_sem.get().ok_or_else(|| Error::new(ErrorKind::LockError, op, "lock semaphore not set"))
    }

    /// Takes the lock around create/attach/detach, unless this object holds
    /// it already.
    fn locker(&self, mode: SemaphoreMode, op: &'static str) -> Result<Locker> {
        self.locker_with(mode, op, Wait::Block)
    }

    /// As [`locker`](SharedMemory::locker), waiting as `wait` says; not
    /// getting the lock in time is a [`ErrorKind::LockError`].
    fn locker_with(&self, mode: SemaphoreMode, op: &'static str, wait: Wait) -> Result<Locker> {
        if mode == SemaphoreMode::Create {
            // A fresh object for a stale POSIX semaphore: replace it.
            if self.lock_sem.get().is_none() {
                self.lock_semaphore(SemaphoreMode::Create, op)?;
            }
        }
        if self.locked.load(Ordering::Acquire) {
            return Ok(Locker { sem: None, op });
        }
        let sem = Arc::clone(self.lock_semaphore(SemaphoreMode::Open, op)?);
        if !sem.acquire_with(wait, op).map_err(|e| lock_error(op, e))? {
            return Err(Error::new(
                ErrorKind::LockError,
                op,
                "unable to lock: timed out waiting for the lock (a POSIX lock whose holder died is never given back)",
            ));
        }
        Ok(Locker { sem: Some(sem), op })
    }
}

/// Unmaps a segment without the lock and without removing anything.
fn sys_unmap(segment: Segment) -> std::io::Result<()> {
    match segment {
        Segment::SysV { region, .. } => sysv::shmdt(region),
        Segment::Posix { region, fd, .. } => {
            let res = posix::munmap(region);
            drop(fd);
            res
        }
    }
}

fn lock_error(op: &'static str, e: Error) -> Error {
    Error::new(ErrorKind::LockError, op, format!("unable to lock ({e})"))
}

fn unreachable_windows(op: &'static str) -> Result<Segment> {
    Err(Error::new(ErrorKind::KeyError, op, "unsupported key type (Windows keys need Windows)"))
}

/// Releases the lock taken by [`SharedMemory::locker`] when it goes out of
/// scope, like Qt's `QSharedMemoryLocker`.
struct Locker {
    sem: Option<Arc<SystemSemaphore>>,
    op: &'static str,
}

impl Drop for Locker {
    fn drop(&mut self) {
        if let Some(sem) = &self.sem {
            let _ = sem.release_one(self.op);
        }
    }
}

/// How long a drop waits for a POSIX lock before it gives up on the
/// last-detacher clean-up (System V locks are given back by the kernel when
/// their holder dies, so drop waits for them as Qt does).
const DROP_POSIX_LOCK_WAIT: Duration = Duration::from_secs(10);

impl Drop for SharedMemory {
    fn drop(&mut self) {
        if self.segment.is_some() {
            // Errors cannot be reported from drop; the segment is unmapped
            // by the kernel at exit in any case.
            let wait = match self.key.key_type() {
                KeyType::PosixRealtime if !self.locked.load(Ordering::Acquire) => Wait::Timeout(DROP_POSIX_LOCK_WAIT),
                _ => Wait::Block,
            };
            if self.detach_with(wait).is_err() {
                // A POSIX lock stuck by a dead holder: unmap without it and
                // without removing anything (the next create, or `qipc gc`,
                // reclaims the object once nobody has it open).
                if let Some(segment) = self.segment.take() {
                    let _ = sys_unmap(segment);
                }
            }
        }
        if self.locked.load(Ordering::Acquire) {
            let _ = self.release_lock("SharedMemory::drop");
        }
        // The lock semaphore's own drop removes it if this object owns it.
    }
}

/// Access to a locked segment. Dropping it releases the lock.
///
/// See the [module documentation](crate::shared_memory) for why it copies
/// instead of handing out slices.
///
/// # Example
/// ```
/// # use qipc::{AccessMode, SharedMemory};
/// # let key = format!("qipc-doc-guard-{}", std::process::id());
/// let mut shm = SharedMemory::new(&key);
/// shm.create(16, AccessMode::ReadWrite)?;
/// let mut guard = shm.lock()?;
/// guard.write_at(4, b"abcd")?;
/// assert_eq!(&guard.to_vec()[4..8], b"abcd");
/// guard.unlock()?;
/// # Ok::<(), qipc::Error>(())
/// ```
#[must_use = "if unused the shared memory is unlocked immediately"]
#[clippy::has_significant_drop]
pub struct SharedMemoryGuard<'a> {
    shm: &'a SharedMemory,
    /// The guard stays on its thread (parking_lot's GuardNoSend).
    _not_send: PhantomData<*const ()>,
}

impl std::fmt::Debug for SharedMemoryGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedMemoryGuard").field("key", &self.shm.key).field("len", &self.len()).finish()
    }
}

impl SharedMemoryGuard<'_> {
    fn region(&self, op: &'static str) -> Result<Region> {
        self.shm
            .segment
            .as_ref()
            .map(Segment::region)
            .ok_or_else(|| Error::new(ErrorKind::NotFound, op, "not attached"))
    }

    fn check_range(&self, op: &'static str, offset: usize, len: usize) -> Result<Region> {
        let region = self.region(op)?;
        match offset.checked_add(len) {
            Some(end) if end <= region.len => Ok(region),
            _ => Err(Error::new(
                ErrorKind::InvalidSize,
                op,
                format!("{len} bytes at offset {offset} do not fit in a segment of {} bytes", region.len),
            )),
        }
    }

    fn check_writable(&self, op: &'static str) -> Result<Region> {
        let region = self.region(op)?;
        if self.shm.access_mode() == Some(AccessMode::ReadOnly) {
            return Err(Error::new(ErrorKind::PermissionDenied, op, "the segment is attached read-only"));
        }
        Ok(region)
    }

    /// The segment's size in bytes (0 if not attached).
    ///
    /// # Example
    /// ```
    /// # use qipc::{AccessMode, SharedMemory};
    /// # let key = format!("qipc-doc-guard-len-{}", std::process::id());
    /// # let mut shm = SharedMemory::new(&key);
    /// shm.create(64, AccessMode::ReadWrite)?;
    /// let guard = shm.lock()?;
    /// assert_eq!(guard.len(), 64);
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.shm.size()
    }

    /// True if the segment is empty (not attached).
    ///
    /// # Example
    /// ```
    /// # use qipc::{AccessMode, SharedMemory};
    /// # let key = format!("qipc-doc-guard-is-empty-{}", std::process::id());
    /// # let mut shm = SharedMemory::new(&key);
    /// shm.create(64, AccessMode::ReadWrite)?;
    /// assert!(!shm.lock()?.is_empty());
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies `buf.len()` bytes from the segment, starting at `offset`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidSize`] if the range does not fit (nothing is
    /// copied); [`ErrorKind::NotFound`] if not attached.
    ///
    /// # Example
    /// ```
    /// # use qipc::{AccessMode, SharedMemory};
    /// # let key = format!("qipc-doc-readat-{}", std::process::id());
    /// # let mut shm = SharedMemory::new(&key);
    /// # shm.create(8, AccessMode::ReadWrite)?;
    /// let guard = shm.lock()?;
    /// let mut word = [0u8; 4];
    /// guard.read_at(4, &mut word)?;
    /// assert!(guard.read_at(6, &mut word).is_err());
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        let region = self.check_range("SharedMemory::read", offset, buf.len())?;
        // SAFETY: the range [offset, offset+len) lies inside the live mapping
        // (checked above); `buf` is a distinct Rust buffer, so they do not
        // overlap. No reference into the segment is created.
        unsafe { std::ptr::copy_nonoverlapping(region.ptr.add(offset), buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copies `data` into the segment at `offset`.
    ///
    /// # Errors
    /// [`ErrorKind::PermissionDenied`] if attached read-only;
    /// [`ErrorKind::InvalidSize`] if the data does not fit (nothing is
    /// written); [`ErrorKind::NotFound`] if not attached.
    ///
    /// # Example
    /// ```
    /// # use qipc::{AccessMode, SharedMemory};
    /// # let key = format!("qipc-doc-writeat-{}", std::process::id());
    /// # let mut shm = SharedMemory::new(&key);
    /// # shm.create(8, AccessMode::ReadWrite)?;
    /// let mut guard = shm.lock()?;
    /// guard.write_at(0, b"12345678")?;
    /// assert!(guard.write_at(1, b"12345678").is_err());
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> Result<()> {
        const OP: &str = "SharedMemory::write";
        self.check_writable(OP)?;
        let region = self.check_range(OP, offset, data.len())?;
        // SAFETY: the range lies inside the live, writable mapping (checked
        // above: in range, and not attached read-only, so mapped with write
        // permission); `data` is a distinct Rust buffer.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), region.ptr.add(offset), data.len()) };
        Ok(())
    }

    /// Fills `len` bytes at `offset` with `byte`.
    ///
    /// # Errors
    /// As [`write_at`](SharedMemoryGuard::write_at).
    ///
    /// # Example
    /// ```
    /// # use qipc::{AccessMode, SharedMemory};
    /// # let key = format!("qipc-doc-fill-{}", std::process::id());
    /// # let mut shm = SharedMemory::new(&key);
    /// # shm.create(8, AccessMode::ReadWrite)?;
    /// let mut guard = shm.lock()?;
    /// guard.fill(0, 8, 0xff)?;
    /// assert_eq!(guard.to_vec(), vec![0xff; 8]);
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn fill(&mut self, offset: usize, len: usize, byte: u8) -> Result<()> {
        const OP: &str = "SharedMemory::write";
        self.check_writable(OP)?;
        let region = self.check_range(OP, offset, len)?;
        // SAFETY: in range of the live writable mapping, as in write_at.
        unsafe { std::ptr::write_bytes(region.ptr.add(offset), byte, len) };
        Ok(())
    }

    /// Copies the whole segment into a new `Vec`.
    ///
    /// # Example
    /// ```
    /// # use qipc::{AccessMode, SharedMemory};
    /// # let key = format!("qipc-doc-tovec-{}", std::process::id());
    /// # let mut shm = SharedMemory::new(&key);
    /// # shm.create(3, AccessMode::ReadWrite)?;
    /// assert_eq!(shm.lock()?.to_vec(), vec![0, 0, 0]);
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.len()];
        let _ = self.read_at(0, &mut v);
        v
    }

    /// The address of the first byte (`QSharedMemory::constData()`), or null
    /// if not attached. Reading through it is subject to the rules in the
    /// [module documentation](crate::shared_memory).
    ///
    /// # Example
    /// ```
    /// # use qipc::{AccessMode, SharedMemory};
    /// # let key = format!("qipc-doc-as-ptr-{}", std::process::id());
    /// # let mut shm = SharedMemory::new(&key);
    /// # shm.create(4, AccessMode::ReadWrite)?;
    /// let mut guard = shm.lock()?;
    /// guard.write_at(0, &[1, 2, 3, 4])?;
    /// let p = guard.as_ptr();
    /// // SAFETY: offset 3 is inside the 4-byte segment, which stays mapped while the guard lives.
    /// assert_eq!(unsafe { p.add(3).read_volatile() }, 4);
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn as_ptr(&self) -> *const u8 {
        self.shm.segment.as_ref().map_or(std::ptr::null(), |s| s.region().ptr.cast_const())
    }

    /// The address of the first byte, for writing (`QSharedMemory::data()`).
    ///
    /// # Errors
    /// [`ErrorKind::PermissionDenied`] if attached read-only (writing through
    /// the address would crash); [`ErrorKind::NotFound`] if not attached.
    ///
    /// # Example
    /// ```
    /// # use qipc::{AccessMode, SharedMemory};
    /// # let key = format!("qipc-doc-as-mut-ptr-{}", std::process::id());
    /// # let mut shm = SharedMemory::new(&key);
    /// # shm.create(4, AccessMode::ReadWrite)?;
    /// let mut guard = shm.lock()?;
    /// let p = guard.as_mut_ptr()?;
    /// // SAFETY: offset 0 is inside the writable segment, and we hold the lock.
    /// unsafe { p.write_volatile(7) };
    /// assert_eq!(guard.to_vec(), [7, 0, 0, 0]);
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn as_mut_ptr(&mut self) -> Result<*mut u8> {
        self.check_writable("SharedMemory::data").map(|r| r.ptr)
    }

    /// The segment as a slice.
    ///
    /// # Safety
    /// While the slice lives, no process may write the segment: every peer
    /// must honour the lock (Qt programs that write without `lock()` break
    /// this). Returns an empty slice if not attached.
    ///
    /// # Example
    /// ```
    /// # use qipc::{AccessMode, SharedMemory};
    /// # let key = format!("qipc-doc-as-slice-{}", std::process::id());
    /// # let mut shm = SharedMemory::new(&key);
    /// # shm.create(3, AccessMode::ReadWrite)?;
    /// let mut guard = shm.lock()?;
    /// guard.write_at(0, b"abc")?;
    /// // SAFETY: every process that uses this segment writes it only under the lock.
    /// let bytes = unsafe { guard.as_slice() };
    /// assert_eq!(bytes, b"abc");
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub unsafe fn as_slice(&self) -> &[u8] {
        match self.shm.segment.as_ref() {
            // SAFETY: the mapping is live and `len` bytes long for the
            // guard's lifetime (detach needs `&mut SharedMemory`); the caller
            // promises nobody writes it meanwhile.
            Some(s) => unsafe { std::slice::from_raw_parts(s.region().ptr, s.region().len) },
            None => &[],
        }
    }

    /// The segment as a mutable slice.
    ///
    /// # Safety
    /// While the slice lives, no other process may read or write the
    /// segment: every peer must honour the lock.
    ///
    /// # Errors
    /// [`ErrorKind::PermissionDenied`] if attached read-only;
    /// [`ErrorKind::NotFound`] if not attached.
    ///
    /// # Example
    /// ```
    /// # use qipc::{AccessMode, SharedMemory};
    /// # let key = format!("qipc-doc-as-mut-slice-{}", std::process::id());
    /// # let mut shm = SharedMemory::new(&key);
    /// # shm.create(3, AccessMode::ReadWrite)?;
    /// let mut guard = shm.lock()?;
    /// // SAFETY: every process that uses this segment reads and writes it only under the lock.
    /// let bytes = unsafe { guard.as_mut_slice()? };
    /// bytes.copy_from_slice(b"xyz");
    /// assert_eq!(guard.to_vec(), b"xyz");
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub unsafe fn as_mut_slice(&mut self) -> Result<&mut [u8]> {
        let region = self.check_writable("SharedMemory::data")?;
        // SAFETY: the mapping is live, writable and `len` bytes long; this
        // guard is borrowed mutably for the slice's lifetime, so no other
        // access in this process goes through it; the caller promises other
        // processes keep away.
        Ok(unsafe { std::slice::from_raw_parts_mut(region.ptr, region.len) })
    }

    /// Releases the lock now, reporting an error that drop would ignore.
    ///
    /// # Errors
    /// [`ErrorKind::LockError`] if the semaphore operation fails.
    ///
    /// # Example
    /// ```
    /// # use qipc::{AccessMode, SharedMemory};
    /// # let key = format!("qipc-doc-guard-unlock-{}", std::process::id());
    /// # let mut shm = SharedMemory::new(&key);
    /// # shm.create(8, AccessMode::ReadWrite)?;
    /// let guard = shm.lock()?;
    /// guard.unlock()?; // an error here is reported; drop would ignore it
    /// assert!(shm.try_lock()?.is_some()); // free again
    /// # Ok::<(), qipc::Error>(())
    /// ```
    #[inline]
    pub fn unlock(self) -> Result<()> {
        let shm = self.shm;
        std::mem::forget(self);
        shm.release_lock("SharedMemory::unlock")
    }
}

impl Drop for SharedMemoryGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // A guard always holds the lock; errors cannot be reported here.
        let _ = self.shm.release_lock("SharedMemory::unlock");
    }
}

// ---- System V ----------------------------------------------------------

fn sysv_create(
    path: &str,
    ftok_id: u8,
    size: usize,
    mode: AccessMode,
    options: &CreateOptions,
) -> Result<(Segment, HugePages)> {
    const OP: &str = "SharedMemory::create";
    let created_file = sysv::create_key_file(path)
        .map_err(|e| Error::with_kind(ErrorKind::KeyError, "SharedMemory::handle", e).detail("unable to make key"))?;
    let cleanup = |err: Error| {
        if created_file && err.kind() != ErrorKind::AlreadyExists {
            let _ = sysv::remove_key_file(path);
        }
        err
    };
    let key = sysv::ftok(path, ftok_id)
        .map_err(|e| cleanup(Error::with_kind(ErrorKind::KeyError, "SharedMemory::handle", e).detail("ftok failed")))?;
    let mut reclaimed = false;
    let mut huge = if options.huge_pages { HugePages::Active } else { HugePages::NotRequested };
    let id = loop {
        let flags = libc::IPC_CREAT | libc::IPC_EXCL | 0o600;
        if huge == HugePages::Active {
            match sysv::shmget(key, size, flags | libc::SHM_HUGETLB) {
                Ok(id) => break id,
                Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
                    huge = HugePages::Unavailable(hugetlb_refusal(&e));
                }
                Err(_) => {}
            }
        }
        match sysv::shmget(key, size, flags) {
            Ok(id) => break id,
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                if options.reclaim_orphan && !reclaimed {
                    reclaimed = true;
                    if let Ok(id) = sysv::shmget(key, 0, 0o400) {
                        if sysv::shm_stat(id).map(|s| s.nattch == 0).unwrap_or(false) {
                            let _ = sysv::shm_remove(id);
                            continue;
                        }
                    }
                }
                return Err(Error::with_kind(ErrorKind::AlreadyExists, OP, e));
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                return Err(cleanup(Error::with_kind(ErrorKind::InvalidSize, "SharedMemory::handle", e).detail(
                    format!(
                        "system-imposed size restrictions: {size} bytes is above the kernel's limit (kernel.shmmax)"
                    ),
                )));
            }
            Err(e) => return Err(cleanup(Error::from_io(OP, e))),
        }
    };
    // shmget returned the id and the size is the one asked for: attach by
    // id, without deriving the key again (Qt re-derives; that costs four
    // system calls per create).
    let ptr = sysv::shmat(id, mode == AccessMode::ReadOnly).map_err(|e| {
        // Do not leave a segment nobody can use.
        let _ = sysv::shm_remove(id);
        cleanup(Error::from_io("SharedMemory::attach (shmat)", e))
    })?;
    let region = Region { ptr, len: size };
    if let HugePages::Unavailable(why) = &huge {
        // Second choice: transparent huge pages for the shm mapping, which
        // the kernel's shmem THP policy governs for System V segments.
        huge = match sys::advise_huge_shmem(region) {
            HugePages::Active => HugePages::Active,
            HugePages::Unavailable(thp) => HugePages::Unavailable(format!("{why}; {thp}")),
            HugePages::NotRequested => HugePages::Unavailable(why.clone()),
        };
    }
    Ok((Segment::SysV { path: path.to_string(), key, region, mode }, huge))
}

/// Why `shmget(SHM_HUGETLB)` failed, in the kernel's terms.
fn hugetlb_refusal(e: &std::io::Error) -> String {
    let reserved = std::fs::read_to_string("/proc/sys/vm/nr_hugepages").unwrap_or_default();
    let cause = match e.raw_os_error() {
        Some(libc::ENOMEM) => format!("no free reserved huge pages (vm.nr_hugepages = {})", reserved.trim()),
        Some(libc::EPERM) => "needs CAP_IPC_LOCK or membership of vm.hugetlb_shm_group".to_string(),
        Some(libc::EINVAL) => "the size is not allowed for huge pages".to_string(),
        _ => format!("vm.nr_hugepages = {}", reserved.trim()),
    };
    format!("shmget(SHM_HUGETLB) failed: {e}: {cause}")
}

fn sysv_attach(path: &str, ftok_id: u8, mode: AccessMode) -> Result<Segment> {
    // ftok stats the key file; a missing file is Qt's "UNIX key file
    // doesn't exist" (one stat, where Qt makes two).
    let key = sysv::ftok(path, ftok_id).map_err(|e| {
        if e.raw_os_error() == Some(libc::ENOENT) {
            Error::with_kind(ErrorKind::NotFound, "SharedMemory::handle", e).detail("UNIX key file doesn't exist")
        } else {
            Error::with_kind(ErrorKind::KeyError, "SharedMemory::handle", e).detail("ftok failed")
        }
    })?;
    let perm = if mode == AccessMode::ReadOnly { 0o400 } else { 0o600 };
    let id = sysv::shmget(key, 0, perm).map_err(|e| Error::from_io("SharedMemory::attach (shmget)", e))?;
    let ptr =
        sysv::shmat(id, mode == AccessMode::ReadOnly).map_err(|e| Error::from_io("SharedMemory::attach (shmat)", e))?;
    match sysv::shm_stat(id) {
        Ok(st) => Ok(Segment::SysV { path: path.to_string(), key, region: Region { ptr, len: st.size }, mode }),
        Err(e) => {
            let _ = sysv::shmdt(Region { ptr, len: 0 });
            Err(Error::from_io("SharedMemory::attach (shmctl)", e))
        }
    }
}

/// Returns true if this detach removed the segment.
fn sysv_detach(path: &str, key: libc::key_t, region: Region) -> Result<bool> {
    sysv::shmdt(region).map_err(|e| Error::from_io("SharedMemory::detach", e).detail("not attached"))?;
    let Ok(id) = sysv::shmget(key, 0, 0o400) else {
        return Ok(false);
    };
    match sysv::shm_stat(id) {
        Ok(st) if st.nattch == 0 => {
            match sysv::shm_remove(id) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
                Err(e) => return Err(Error::from_io("SharedMemory::remove", e)),
            }
            sysv::remove_key_file(path).map_err(|e| Error::from_io("SharedMemory::detach (unlink)", e))?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

// ---- POSIX -------------------------------------------------------------

fn posix_error(op: &'static str, e: std::io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENAMETOOLONG) => {
            Error::with_kind(ErrorKind::KeyError, op, e).detail("bad name")
        }
        _ => Error::from_io(op, e),
    }
}

fn posix_create(name: &str, size: usize, mode: AccessMode, options: &CreateOptions) -> Result<(Segment, HugePages)> {
    const OP: &str = "SharedMemory::create";
    let excl = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL;
    let fd = match posix::shm_open(name, excl, 0o600) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            if posix_reclaim_orphan(name) {
                posix::shm_open(name, excl, 0o600).map_err(|e| posix_error("SharedMemory::create (shm_open)", e))?
            } else {
                return Err(Error::with_kind(ErrorKind::AlreadyExists, OP, e));
            }
        }
        Err(e) => return Err(posix_error("SharedMemory::create (shm_open)", e)),
    };
    let undo = |err: Error| {
        let _ = posix::shm_unlink(name);
        err
    };
    match posix::fallocate(&fd, size) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
            posix::ftruncate(&fd, size).map_err(|e| undo(Error::from_io("SharedMemory::create (ftruncate)", e)))?
        }
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EFBIG)) => {
            let free = sys::free_bytes("/dev/shm").map_or_else(String::new, |b| format!(" ({b} bytes free)"));
            return Err(undo(
                Error::with_kind(ErrorKind::OutOfResources, "SharedMemory::create (posix_fallocate)", e)
                    .detail(format!("out of resources: {size} bytes do not fit in /dev/shm{free}")),
            ));
        }
        Err(e) => return Err(undo(Error::from_io("SharedMemory::create (posix_fallocate)", e))),
    }
    let writable = mode == AccessMode::ReadWrite;
    let region =
        posix::mmap(&fd, size, writable, false).map_err(|e| undo(Error::from_io("SharedMemory::attach (mmap)", e)))?;
    let huge = if options.huge_pages { sys::advise_huge_devshm(region) } else { HugePages::NotRequested };
    Ok((Segment::Posix { name: name.to_string(), fd, region, mode }, huge))
}

/// If the POSIX object `name` exists but no process has it open or mapped,
/// removes it and returns true. Called under the lock.
pub(crate) fn posix_reclaim_orphan(name: &str) -> bool {
    let fd = match posix::shm_open(name, libc::O_RDWR, 0).or_else(|_| posix::shm_open(name, libc::O_RDONLY, 0)) {
        Ok(fd) => fd,
        Err(_) => return false,
    };
    if posix::others_have_open(&fd).unwrap_or(true) {
        return false;
    }
    posix_unlink_if_same(name, &fd)
}

/// True if the POSIX object `name` does not exist, or exists but no process
/// has it open or mapped (the lease probe). Nothing is removed.
fn posix_unused(name: &str) -> bool {
    match posix::shm_open(name, libc::O_RDONLY, 0) {
        Ok(fd) => !posix::others_have_open(&fd).unwrap_or(true),
        Err(e) => e.raw_os_error() == Some(libc::ENOENT),
    }
}

/// Unlinks `name` only if it still refers to the file open as `fd` (it may
/// have been removed and created again by someone else).
fn posix_unlink_if_same(name: &str, fd: &OwnedFd) -> bool {
    let (Ok(mine), Ok(now)) = (posix::fstat(fd), posix::stat_path(&posix::shm_path(name))) else {
        return false;
    };
    (mine.dev, mine.ino) == (now.dev, now.ino) && posix::shm_unlink(name).is_ok()
}

fn posix_attach(name: &str, mode: AccessMode) -> Result<Segment> {
    const OP: &str = "SharedMemory::attach (shm_open)";
    let (flags, perm) = match mode {
        AccessMode::ReadOnly => (libc::O_RDONLY, 0o400),
        AccessMode::ReadWrite => (libc::O_RDWR, 0o600),
    };
    let fd = posix::shm_open(name, flags, perm).map_err(|e| posix_error(OP, e))?;
    let st = posix::fstat(&fd).map_err(|e| Error::from_io("SharedMemory::attach (fstat)", e))?;
    let size = usize::try_from(st.size).unwrap_or(usize::MAX);
    if size == 0 {
        return Err(Error::new(ErrorKind::InvalidSize, "SharedMemory::attach", "the segment has size 0"));
    }
    let region = posix::mmap(&fd, size, mode == AccessMode::ReadWrite, false)
        .map_err(|e| Error::from_io("SharedMemory::attach (mmap)", e))?;
    Ok(Segment::Posix { name: name.to_string(), fd, region, mode })
}

/// Returns true if this detach removed the object.
fn posix_detach(name: &str, fd: OwnedFd, region: Region) -> Result<bool> {
    posix::munmap(region).map_err(|e| Error::from_io("SharedMemory::detach (munmap)", e))?;
    // Our mapping is gone and our descriptor is the only one we hold: if the
    // lease probe says nobody else has the file, we were the last user. The
    // kernel refuses a lease only for *other* openers, so the probe uses the
    // descriptor we hold instead of opening the object again.
    if posix::others_have_open(&fd).unwrap_or(true) {
        return Ok(false);
    }
    Ok(posix_unlink_if_same(name, &fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn posix_key(tag: &str) -> NativeKey {
        NativeKey::posix(format!("/qipc-unit-{tag}-{}", std::process::id()))
    }

    /// A create after a detach that removed a POSIX object must lock the
    /// semaphore that other handles open, not the unlinked one.
    #[test]
    fn posix_recreate_keeps_a_shared_lock() {
        let key = posix_key("recreate");
        let mut a = SharedMemory::with_native_key(key.clone());
        a.create(64, AccessMode::ReadWrite).unwrap();
        a.detach().unwrap();
        a.create(64, AccessMode::ReadWrite).unwrap();
        let mut b = SharedMemory::with_native_key(key.clone());
        b.attach(AccessMode::ReadWrite).unwrap();
        {
            let _held = a.lock().unwrap();
            assert!(b.try_lock().unwrap().is_none(), "b got the lock while a held it");
        }
        assert!(b.try_lock().unwrap().is_some());
        b.detach().unwrap();
        a.detach().unwrap();
        drop((a, b));
        assert!(posix::stat_path(&posix::shm_path(key.native_key())).is_err(), "object left behind");
        assert!(posix::stat_path(&posix::sem_path(key.lock_key().native_key())).is_err(), "semaphore left behind");
    }

    #[test]
    fn thread_tags_differ_and_are_never_zero() {
        let here = thread_tag();
        let there = std::thread::spawn(thread_tag).join().unwrap();
        assert_ne!(here, 0);
        assert_ne!(here, there);
        assert_eq!(here, thread_tag());
    }
}
