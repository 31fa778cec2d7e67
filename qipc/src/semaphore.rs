//! [`SystemSemaphore`], the counterpart of `QSystemSemaphore`: a counting
//! semaphore shared by key between processes.
//!
//! ```
//! use qipc::{SemaphoreMode, SystemSemaphore};
//! # let key = format!("qipc-doc-semaphore-{}", std::process::id());
//! let producer = SystemSemaphore::new(&key, 0, SemaphoreMode::Create)?; // QSystemSemaphore(key, 0, Create)
//! let consumer = SystemSemaphore::new(&key, 0, SemaphoreMode::Open)?;
//! producer.release(2)?;
//! consumer.acquire()?;
//! assert!(consumer.try_acquire()?);
//! assert!(!consumer.try_acquire()?); // empty now
//! # Ok::<(), qipc::Error>(())
//! ```
//!
//! Ownership follows Qt: the handle that created the semaphore (or opened
//! it in [`SemaphoreMode::Create`]) removes it when dropped. A System V
//! semaphore acquired by a process that dies is given back by the kernel
//! (`SEM_UNDO`, as Qt); a POSIX one is not.
//!
//! On Windows the kernel owns the lifetime: the semaphore lives while any
//! process has it open and goes with the last handle; Open and Create mean
//! the same (an existing semaphore keeps its count), and the maximum is
//! Qt's `MAXLONG` (2³¹ − 1). A unit acquired by a process that dies is not
//! given back there either: use [`acquire_timeout`](SystemSemaphore::acquire_timeout)
//! where that can happen.

#![forbid(unsafe_code)]

use std::time::Duration;

use crate::{
    backend::semaphore::Semaphore,
    error::Result,
    key::{KeyType, NativeKey},
    sys::Deadline,
};

/// How a [`SystemSemaphore`] opens its semaphore, as
/// `QSystemSemaphore::AccessMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[doc(alias = "QSystemSemaphore::AccessMode")]
pub enum SemaphoreMode {
    /// Open the semaphore, creating it with the initial value if it does
    /// not exist.
    Open,
    /// Take it over: reset it to the initial value (System V) or replace it
    /// (POSIX), and remove it when this handle goes. This is how Qt
    /// recovers a semaphore a crash left behind. On Windows it is the same
    /// as [`Open`](SemaphoreMode::Open), as in Qt.
    Create,
}

/// A semaphore shared by key between processes, the counterpart of
/// `QSystemSemaphore`.
///
/// ```no_run
/// use qipc::{SemaphoreMode, SystemSemaphore};
/// use std::time::Duration;
/// let slots = SystemSemaphore::new("print-slots", 3, SemaphoreMode::Open)?;
/// if slots.acquire_timeout(Duration::from_secs(5))? {
///     // ... use one of three slots ...
///     slots.release(1)?;
/// }
/// # Ok::<(), qipc::Error>(())
/// ```
#[derive(Debug)]
#[doc(alias = "QSystemSemaphore")]
pub struct SystemSemaphore {
    key: NativeKey,
    imp: Semaphore,
}

impl SystemSemaphore {
    /// A semaphore named by a legacy key, as `QSystemSemaphore(key,
    /// initialValue, mode)` on Linux (System V, key file
    /// `qipc_systemsem_<letters><sha1>` in the temporary directory).
    ///
    /// # Errors
    /// [`ErrorKind::KeyError`](crate::ErrorKind::KeyError) for an empty or
    /// bad key; [`ErrorKind::OutOfResources`](crate::ErrorKind::OutOfResources)
    /// if `initial_value` is above what the backend holds (32767 for System
    /// V, 2³¹ − 1 for POSIX and Windows), in which case nothing is created;
    /// [`ErrorKind::PermissionDenied`](crate::ErrorKind::PermissionDenied).
    pub fn new(key: &str, initial_value: u32, mode: SemaphoreMode) -> Result<SystemSemaphore> {
        SystemSemaphore::with_native_key(NativeKey::legacy_semaphore(key, KeyType::LEGACY_DEFAULT), initial_value, mode)
    }

    /// A semaphore named by a native key (`QSystemSemaphore(QNativeIpcKey, …)`).
    ///
    /// # Errors
    /// As [`new`](SystemSemaphore::new).
    pub fn with_native_key(key: NativeKey, initial_value: u32, mode: SemaphoreMode) -> Result<SystemSemaphore> {
        let imp = Semaphore::open(&key, initial_value, mode == SemaphoreMode::Create)?;
        Ok(SystemSemaphore { key, imp })
    }

    /// The native key.
    pub fn native_key(&self) -> &NativeKey {
        &self.key
    }

    /// Takes one unit, waiting as long as it takes (`acquire()`).
    ///
    /// # Errors
    /// [`ErrorKind::Unknown`](crate::ErrorKind::Unknown) if the system call fails.
    pub fn acquire(&self) -> Result<()> {
        self.imp.acquire(Deadline::Never).map(drop)
    }

    /// Takes one unit if one is available now.
    ///
    /// # Errors
    /// As [`acquire`](SystemSemaphore::acquire).
    pub fn try_acquire(&self) -> Result<bool> {
        self.imp.acquire(Deadline::Now)
    }

    /// Takes one unit, waiting at most `timeout`; `Ok(false)` on time-out.
    ///
    /// # Errors
    /// As [`acquire`](SystemSemaphore::acquire).
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
        self.imp.acquire(Deadline::after(timeout))
    }

    /// Gives back `n` units at once (`release(n)`); `release(0)` does
    /// nothing.
    ///
    /// # Errors
    /// [`ErrorKind::OutOfResources`](crate::ErrorKind::OutOfResources) if the
    /// value would pass the backend's maximum; nothing is released then.
    pub fn release(&self, n: u32) -> Result<()> {
        self.imp.release(n)
    }

    /// The current value.
    ///
    /// # Errors
    /// [`ErrorKind::Unknown`](crate::ErrorKind::Unknown) if it cannot be read.
    pub fn value(&self) -> Result<u32> {
        self.imp.value()
    }

    /// System V only: whether operations carry `SEM_UNDO` (the default, as
    /// Qt), which makes the kernel undo a process's operations when it
    /// exits, and limits a process's unbalanced operations to 32767. A
    /// producer that only releases (or a consumer that only acquires)
    /// should turn it off.
    pub fn set_undo(&mut self, undo: bool) {
        self.imp.set_undo(undo);
    }
}
