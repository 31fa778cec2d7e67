//! [`AccessMode`], [`CreateOptions`], [`HugePages`] and [`Opened`].

#![forbid(unsafe_code)]

use std::time::Duration;

use crate::{
    backend::{CreateParams, HugeOutcome},
    sys::Deadline,
};

/// How a segment is mapped, as `QSharedMemory::AccessMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[doc(alias = "QSharedMemory::AccessMode")]
pub enum AccessMode {
    /// Mapped read-only; every write through the lock guard is refused
    /// (and the kernel would fault a raw write).
    ReadOnly,
    /// Mapped for reading and writing.
    #[default]
    ReadWrite,
}

/// Options for [`SharedMemory::create_with`](crate::SharedMemory::create_with)
/// and [`open_or_create_with`](crate::SharedMemory::open_or_create_with).
///
/// The defaults behave as Qt does, except that a segment nobody is
/// attached to (left by a crashed creator) is replaced instead of failing
/// with `AlreadyExists`; [`strict_qt`](CreateOptions::strict_qt) turns
/// that off.
///
/// ```
/// use qipc::CreateOptions;
/// let service = CreateOptions::new().mode(0o660).group(1000).populate(true);
/// # let _ = service;
/// ```
#[derive(Debug, Clone)]
pub struct CreateOptions {
    populate: bool,
    huge_pages: bool,
    reclaim_orphan: bool,
    mode: Option<u32>,
    group: Option<u32>,
    lock_timeout: Option<Duration>,
}

impl Default for CreateOptions {
    fn default() -> CreateOptions {
        CreateOptions {
            populate: false,
            huge_pages: false,
            reclaim_orphan: true,
            mode: None,
            group: None,
            lock_timeout: None,
        }
    }
}

impl CreateOptions {
    /// The defaults: Qt's mode 0600, no pre-faulting, orphans
    /// replaced.
    pub fn new() -> CreateOptions {
        CreateOptions::default()
    }

    /// Qt's strict behaviour: a `create` on a key whose segment exists fails
    /// with [`AlreadyExists`](crate::ErrorKind::AlreadyExists) even if no
    /// process is attached to it.
    pub fn strict_qt(self) -> CreateOptions {
        self.reclaim_orphan(false)
    }

    /// Whether a segment nobody is attached to may be replaced (the default).
    /// The check is made under the lock, where no other process can be
    /// attaching; it is what Qt programs do by hand with attach-then-detach.
    ///
    /// Windows has no orphans (the kernel frees a segment with its last
    /// handle), so there it changes nothing.
    pub fn reclaim_orphan(mut self, yes: bool) -> CreateOptions {
        self.reclaim_orphan = yes;
        self
    }

    /// Permission bits for the segment and its lock, exactly as given (the
    /// umask does not apply). Those who may read the segment may also take
    /// its lock, and (System V) read its key files. Example: `0o660` for a
    /// service and the members of its group. A lock semaphore that has to
    /// be made again later (a Qt process that made it exited and took it
    /// along) gets the segment's permissions and group, whoever makes it.
    ///
    /// Without it, qipc does as Qt, which always asks for 0600: System V
    /// objects get exactly that (the umask does not apply to them), POSIX
    /// objects and key files 0600 (0640) less the umask, as files do.
    ///
    /// Unix only: ignored on Windows, whose objects get the default security
    /// of the creating process, as Qt's.
    pub fn mode(mut self, mode: u32) -> CreateOptions {
        self.mode = Some(mode & 0o777);
        self
    }

    /// The group (a gid) to give the segment, its lock and (System V) its
    /// key files, for use with [`mode`](CreateOptions::mode) `0o660`. The
    /// creating process must belong to it (or be privileged), else create
    /// fails with [`PermissionDenied`](crate::ErrorKind::PermissionDenied)
    /// and leaves nothing behind.
    ///
    /// Unix only: ignored on Windows.
    pub fn group(mut self, gid: u32) -> CreateOptions {
        self.group = Some(gid);
        self
    }

    /// Pre-fault every page at create time (`MADV_POPULATE_WRITE`), so the
    /// first write into a large fresh segment runs at memory speed instead
    /// of taking one page fault per 4 KiB.
    ///
    /// Linux only: ignored elsewhere.
    pub fn populate(mut self, yes: bool) -> CreateOptions {
        self.populate = yes;
        self
    }

    /// Back the segment with huge pages where the kernel allows it; if it
    /// does not, the segment uses normal pages and
    /// [`SharedMemory::huge_pages`](crate::SharedMemory::huge_pages) says
    /// why. System V: `SHM_HUGETLB` (pages reserved in `vm.nr_hugepages`
    /// and `CAP_IPC_LOCK` or `vm.hugetlb_shm_group`), else transparent huge
    /// pages if `/sys/kernel/mm/transparent_hugepage/shmem_enabled` allows;
    /// POSIX: transparent huge pages if `/dev/shm` is mounted with `huge=`
    /// `advise`, `always` or `within_size`. Qt attaches such segments
    /// normally.
    ///
    /// Linux only: elsewhere [`HugePages::Unavailable`] says so.
    pub fn huge_pages(mut self, yes: bool) -> CreateOptions {
        self.huge_pages = yes;
        self
    }

    /// Wait at most `timeout` for the lock that create takes (Qt waits
    /// without limit); a time-out is a
    /// [`LockError`](crate::ErrorKind::LockError). Useful where a lock
    /// holder may have died without giving the lock back (Windows, or a Qt
    /// process holding a POSIX lock).
    pub fn lock_timeout(mut self, timeout: Duration) -> CreateOptions {
        self.lock_timeout = Some(timeout);
        self
    }

    pub(crate) fn deadline(&self) -> Deadline {
        self.lock_timeout.map_or(Deadline::Never, Deadline::after)
    }

    pub(crate) fn params(&self, size: usize, mode: AccessMode) -> CreateParams {
        CreateParams {
            size,
            writable: mode == AccessMode::ReadWrite,
            populate: self.populate,
            huge_pages: self.huge_pages,
            reclaim_orphan: self.reclaim_orphan,
            mode: self.mode.unwrap_or(0o600),
            exact_mode: self.mode.is_some(),
            group: self.group,
        }
    }
}

/// Whether a segment created by this handle uses huge pages; see
/// [`CreateOptions::huge_pages`].
///
/// ```no_run
/// use qipc::{AccessMode, CreateOptions, HugePages, SharedMemory};
/// let mut shm = SharedMemory::new("big-buffer");
/// shm.create_with(64 << 20, AccessMode::ReadWrite, &CreateOptions::new().huge_pages(true))?;
/// if let HugePages::Unavailable(why) = shm.huge_pages() {
///     eprintln!("normal pages: {why}");
/// }
/// # Ok::<(), qipc::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum HugePages {
    /// Not asked for (or this handle did not create the segment).
    #[default]
    NotRequested,
    /// The segment is backed by huge pages.
    Active,
    /// Asked for, but the kernel does not allow it; the reason.
    Unavailable(String),
}

impl From<HugeOutcome> for HugePages {
    fn from(h: HugeOutcome) -> HugePages {
        match h {
            HugeOutcome::NotRequested => HugePages::NotRequested,
            HugeOutcome::Active => HugePages::Active,
            HugeOutcome::Unavailable(why) => HugePages::Unavailable(why),
        }
    }
}

/// Which of the two [`SharedMemory::open_or_create`](crate::SharedMemory::open_or_create) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opened {
    /// The segment did not exist; this call created it (zeroed).
    Created,
    /// The segment existed; this call attached to it.
    Attached,
}
