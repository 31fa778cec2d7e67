//! The `SystemSemaphore` backends behind one type.

use super::unsupported;
use crate::{
    error::{Operation, Result},
    key::{KeyType, NativeKey},
    sys::Deadline,
};

/// A system semaphore of some backend.
#[derive(Debug)]
pub(crate) enum Semaphore {
    #[cfg(unix)]
    SysV(super::sysv::semaphore::Semaphore),
    #[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
    Posix(super::posix::semaphore::Semaphore),
    #[cfg(target_vendor = "apple")]
    PosixDarwin(super::posix_darwin::semaphore::Semaphore),
    #[cfg(windows)]
    Windows(super::windows::semaphore::Semaphore),
}

impl Semaphore {
    /// Opens (or, if `create` or missing, creates) the semaphore for `key`.
    pub(crate) fn open(key: &NativeKey, initial: u32, create: bool) -> Result<Semaphore> {
        super::check_key(Operation::OpenSemaphore, key)?;
        match key.key_type() {
            #[cfg(unix)]
            KeyType::SystemV { ftok_id } => {
                super::sysv::semaphore::Semaphore::open(key, ftok_id, initial, create).map(Semaphore::SysV)
            }
            #[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
            KeyType::PosixRealtime => {
                super::posix::semaphore::Semaphore::open(key, initial, create).map(Semaphore::Posix)
            }
            #[cfg(target_vendor = "apple")]
            KeyType::PosixRealtime => {
                super::posix_darwin::semaphore::Semaphore::open(key, initial, create).map(Semaphore::PosixDarwin)
            }
            #[cfg(windows)]
            KeyType::Windows => {
                super::windows::semaphore::Semaphore::open(key, initial, create).map(Semaphore::Windows)
            }
            #[allow(unreachable_patterns)]
            _ => Err(unsupported(Operation::OpenSemaphore, key)),
        }
    }

    pub(crate) fn acquire(&self, deadline: Deadline) -> Result<bool> {
        match self {
            #[cfg(unix)]
            Semaphore::SysV(s) => s.acquire(deadline),
            #[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
            Semaphore::Posix(s) => s.acquire(deadline),
            #[cfg(target_vendor = "apple")]
            Semaphore::PosixDarwin(s) => s.acquire(deadline),
            #[cfg(windows)]
            Semaphore::Windows(s) => s.acquire(deadline),
        }
    }

    pub(crate) fn release(&self, n: u32) -> Result<()> {
        match self {
            #[cfg(unix)]
            Semaphore::SysV(s) => s.release(n),
            #[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
            Semaphore::Posix(s) => s.release(n),
            #[cfg(target_vendor = "apple")]
            Semaphore::PosixDarwin(s) => s.release(n),
            #[cfg(windows)]
            Semaphore::Windows(s) => s.release(n),
        }
    }

    pub(crate) fn value(&self) -> Result<u32> {
        match self {
            #[cfg(unix)]
            Semaphore::SysV(s) => s.value(),
            #[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
            Semaphore::Posix(s) => Ok(s.value()),
            #[cfg(target_vendor = "apple")]
            Semaphore::PosixDarwin(s) => s.value(),
            #[cfg(windows)]
            Semaphore::Windows(s) => s.value(),
        }
    }

    pub(crate) fn set_undo(&self, undo: bool) {
        #[allow(irrefutable_let_patterns)]
        #[cfg(unix)]
        if let Semaphore::SysV(s) = self {
            s.set_undo(undo);
        }
        #[cfg(not(unix))]
        let _ = undo;
    }
}
