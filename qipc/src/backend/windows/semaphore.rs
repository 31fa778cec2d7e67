//! `QSystemSemaphore` on Windows: `CreateSemaphoreW(name, initial, MAXLONG)`,
//! as Qt. Open and Create modes are the same call there: an existing
//! semaphore is opened with its count left alone, a missing one created
//! with the initial value. The kernel frees the semaphore with its last
//! handle, so nobody removes it; a count taken by a process that dies is
//! not given back.

use super::semaphore_error;
use crate::{
    error::{Error, ErrorKind, Operation, Result},
    key::NativeKey,
    sys::{
        windows::{self as os, QT_SEMAPHORE_MAX},
        windows_names::{codes, WinName},
        Deadline,
    },
};

/// The largest value of a Windows semaphore as Qt creates it (`MAXLONG`).
pub(crate) const MAX_VALUE: u32 = QT_SEMAPHORE_MAX as u32;

/// A Windows semaphore opened as `QSystemSemaphore` does.
#[derive(Debug)]
pub(crate) struct Semaphore {
    name: WinName,
    sem: os::Semaphore,
}

impl Semaphore {
    pub(crate) fn open(key: &NativeKey, initial: u32, _create: bool) -> Result<Semaphore> {
        const OP: Operation = Operation::OpenSemaphore;
        if initial > MAX_VALUE {
            return Err(Error::new(
                ErrorKind::OutOfResources,
                OP,
                format!("initial value {initial} is above {MAX_VALUE}, the largest a Windows semaphore holds"),
            ));
        }
        let name = WinName::new(key.native_key());
        match os::create_semaphore(&name, initial as i32, QT_SEMAPHORE_MAX) {
            Ok(created) => Ok(Semaphore { sem: created.into_inner(), name }),
            Err(e) => Err(semaphore_error(OP, "CreateSemaphoreW", &name, e)),
        }
    }

    pub(crate) fn acquire(&self, deadline: Deadline) -> Result<bool> {
        self.sem
            .wait(deadline.remaining())
            .map_err(|e| semaphore_error(Operation::Acquire, "WaitForSingleObject", &self.name, e))
    }

    pub(crate) fn release(&self, n: u32) -> Result<()> {
        const OP: Operation = Operation::Release;
        if n == 0 {
            // As Qt: nothing to do (Windows documents a count of 0 as an error).
            return Ok(());
        }
        let too_many = || {
            Error::new(
                ErrorKind::OutOfResources,
                OP,
                format!("releasing {n} would take the value above {MAX_VALUE}; nothing was released"),
            )
        };
        let count = i32::try_from(n).map_err(|_| too_many())?;
        match self.sem.release(count) {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(codes::TOO_MANY_POSTS as i32) => {
                Err(Error::os_as(ErrorKind::OutOfResources, OP, "ReleaseSemaphore", e)
                    .detail(format!("releasing {n} would take the value above {MAX_VALUE}; nothing was released")))
            }
            Err(e) => Err(semaphore_error(OP, "ReleaseSemaphore", &self.name, e)),
        }
    }

    pub(crate) fn value(&self) -> Result<u32> {
        match self.sem.query() {
            Ok((current, _)) => Ok(current.max(0) as u32),
            Err(e) => Err(semaphore_error(Operation::Inspect, "NtQuerySemaphore", &self.name, e)),
        }
    }
}
