//! `QSystemSemaphore` on POSIX: a named semaphore `/dev/shm/sem.<name>`,
//! with Qt's rules: Open mode opens it, or creates it with the initial
//! value; Create mode replaces an existing one (Qt's way of resetting a
//! semaphore a crash left behind); the handle that created it removes its
//! name when dropped (checking that the name still refers to it).

use super::{check_name, lock::sem_error};
use crate::{
    error::{Error, ErrorKind, Operation, Result},
    key::NativeKey,
    sys::{
        errno::{self, ENOENT, EOVERFLOW},
        semfile::{self, SemFile},
        unix, Deadline,
    },
};

/// The largest value of a POSIX semaphore (`SEM_VALUE_MAX`).
pub(crate) const MAX_VALUE: u32 = i32::MAX as u32;

/// A POSIX named semaphore opened as `QSystemSemaphore` does.
#[derive(Debug)]
pub(crate) struct Semaphore {
    path: String,
    sem: SemFile,
    created: bool,
}

impl Semaphore {
    pub(crate) fn open(key: &NativeKey, initial: u32, create: bool) -> Result<Semaphore> {
        const OP: Operation = Operation::OpenSemaphore;
        check_name(OP, key.native_key(), true)?;
        if initial > MAX_VALUE {
            return Err(Error::new(
                ErrorKind::OutOfResources,
                OP,
                format!("initial value {initial} is above {MAX_VALUE}, the largest a POSIX semaphore holds"),
            ));
        }
        let path = semfile::path_of(key.native_key());
        let attempts = if create { 3 } else { 2 };
        for _ in 0..attempts {
            if !create {
                match SemFile::open(&path) {
                    Ok(sem) => return Ok(Semaphore { path, sem, created: false }),
                    Err(e) if errno::is(&e, ENOENT) => {}
                    Err(e) => return Err(sem_error(OP, "open", &path, e)),
                }
            }
            match SemFile::create(&path, initial, None, None, false) {
                Ok(Some(sem)) => return Ok(Semaphore { path, sem, created: true }),
                Ok(None) if create => {
                    // Create mode replaces an existing semaphore, as Qt's does.
                    let _ = unix::unlink(&path);
                }
                Ok(None) => {}
                Err(e) => return Err(sem_error(OP, "create", &path, e)),
            }
        }
        Err(Error::new(ErrorKind::AlreadyExists, OP, format!("{path} keeps being replaced by another process")))
    }

    pub(crate) fn acquire(&self, deadline: Deadline) -> Result<bool> {
        self.sem.acquire(deadline).map_err(|e| sem_error(Operation::Acquire, "wait", &self.path, e))
    }

    pub(crate) fn release(&self, n: u32) -> Result<()> {
        self.sem.release(n).map_err(|e| {
            if errno::is(&e, EOVERFLOW) {
                Error::os_as(ErrorKind::OutOfResources, Operation::Release, "post", e)
                    .detail(format!("releasing {n} would take the value above {MAX_VALUE}; nothing was released"))
            } else {
                sem_error(Operation::Release, "post", &self.path, e)
            }
        })
    }

    pub(crate) fn value(&self) -> u32 {
        self.sem.value().max(0) as u32
    }
}

impl Drop for Semaphore {
    fn drop(&mut self) {
        if self.created {
            let _ = self.sem.unlink_if_named(&self.path);
        }
    }
}
