//! `QSystemSemaphore` on Darwin: a named semaphore from `sem_open`, with
//! Qt's rules: Open mode opens it, or creates it with the initial value;
//! Create mode replaces an existing one; the handle that created it removes
//! its name when dropped (Qt's documented ownership of `QSystemSemaphore`,
//! not an inference about who else uses it).
//!
//! Darwin cannot read a named semaphore's value (`value` is an error), and
//! `release(n)` posts `n` times: an overflow part-way cannot be undone, so
//! only a count above the maximum by itself is refused up front.

use super::{check_name, sem_error};
use crate::{
    error::{Error, ErrorKind, Operation, Result},
    key::NativeKey,
    sys::{
        darwin_sem::{self, NamedSem, SEM_VALUE_MAX},
        errno::{self, ENOENT},
        Deadline,
    },
};

/// The largest value of a Darwin semaphore.
pub(crate) const MAX_VALUE: u32 = SEM_VALUE_MAX;

/// A named semaphore opened as `QSystemSemaphore` does.
#[derive(Debug)]
pub(crate) struct Semaphore {
    name: String,
    sem: NamedSem,
    created: bool,
}

impl Semaphore {
    pub(crate) fn open(key: &NativeKey, initial: u32, create: bool) -> Result<Semaphore> {
        const OP: Operation = Operation::OpenSemaphore;
        check_name(OP, key.native_key())?;
        if initial > MAX_VALUE {
            return Err(Error::new(
                ErrorKind::OutOfResources,
                OP,
                format!("initial value {initial} is above {MAX_VALUE}, the largest a POSIX semaphore holds"),
            ));
        }
        let name = key.native_key().to_string();
        // sem_open applies the umask to it, as to Qt's.
        let mode = 0o600;
        for _ in 0..3 {
            if !create {
                match NamedSem::open(&name) {
                    Ok(sem) => return Ok(Semaphore { name, sem, created: false }),
                    Err(e) if errno::is(&e, ENOENT) => {}
                    Err(e) => return Err(sem_error(OP, "sem_open", &name, e)),
                }
            }
            match NamedSem::create(&name, initial, mode) {
                Ok(Some(sem)) => return Ok(Semaphore { name, sem, created: true }),
                // Create mode replaces an existing semaphore, as Qt's does.
                Ok(None) if create => {
                    let _ = darwin_sem::unlink(&name);
                }
                Ok(None) => {}
                Err(e) => return Err(sem_error(OP, "sem_open", &name, e)),
            }
        }
        Err(Error::new(ErrorKind::AlreadyExists, OP, format!("{name} keeps being replaced by another process")))
    }

    pub(crate) fn acquire(&self, deadline: Deadline) -> Result<bool> {
        self.sem.wait(deadline).map_err(|e| sem_error(Operation::Acquire, "sem_wait", &self.name, e))
    }

    pub(crate) fn release(&self, n: u32) -> Result<()> {
        const OP: Operation = Operation::Release;
        if n > MAX_VALUE {
            return Err(Error::new(
                ErrorKind::OutOfResources,
                OP,
                format!("releasing {n} would take the value above {MAX_VALUE}; nothing was released"),
            ));
        }
        for done in 0..n {
            self.sem.post().map_err(|e| {
                sem_error(OP, "sem_post", &self.name, e).detail(format!("sem_post failed after {done} of {n} posts"))
            })?;
        }
        Ok(())
    }

    pub(crate) fn value(&self) -> Result<u32> {
        self.sem.value().map_err(|e| {
            Error::os(Operation::Inspect, "sem_getvalue", e).detail("macOS cannot read a named semaphore's value")
        })
    }
}

impl Drop for Semaphore {
    fn drop(&mut self) {
        if self.created {
            let _ = darwin_sem::unlink(&self.name);
        }
    }
}
