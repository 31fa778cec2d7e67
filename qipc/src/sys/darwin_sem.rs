//! Named POSIX semaphores on Apple systems: `sem_open` and friends, the
//! Darwin counterpart of [`semfile`](super) (which maps glibc's
//! `/dev/shm/sem.*` files itself).
//!
//! On Darwin a named semaphore is a kernel object with no file behind it,
//! so what the Linux layer gets from the file is not to be had here:
//!
//! - **no identity**: no device and inode, so "does this name still refer
//!   to the semaphore I hold?" cannot be answered, and a name can never be
//!   proven to designate an object found unused;
//! - **no lease probe**: nothing tells whether another process has the
//!   semaphore open;
//! - **no robust gate**: there is no room next to the counter for qipc's
//!   robust mutex, so a holder that dies keeps its count, as with Qt;
//! - **no value**: `sem_getvalue` is not implemented (it fails with
//!   `ENOSYS`), so [`NamedSem::value`] is an error;
//! - **no timed wait**: Darwin has no `sem_timedwait`; a wait with a
//!   deadline polls `sem_trywait` in sleeps of 1 to 10 ms.
//!
//! The backends draw the conservative conclusion: they never remove a
//! name they cannot prove unused (see `backend::posix_darwin`).

use std::{io, time::Duration};

use super::{
    poll_pause,
    unix::{cstring, cvt},
    Deadline,
};

/// An open named semaphore, closed (`sem_close`) when dropped.
#[derive(Debug)]
pub(crate) struct NamedSem {
    sem: *mut libc::sem_t,
}

// SAFETY: a `sem_t *` from sem_open is valid in every thread of the process,
// and the sem_* calls made through it are thread-safe.
unsafe impl Send for NamedSem {}
// SAFETY: as for Send; `&NamedSem` only waits and posts, which POSIX allows
// from many threads at once.
unsafe impl Sync for NamedSem {}

/// The largest value of a Darwin semaphore (`SEM_VALUE_MAX`).
pub(crate) const SEM_VALUE_MAX: u32 = i32::MAX as u32;

fn from_ptr(sem: *mut libc::sem_t) -> io::Result<NamedSem> {
    if sem == libc::SEM_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(NamedSem { sem })
    }
}

impl NamedSem {
    /// `sem_open(name, 0)`: an existing semaphore, or `ENOENT`.
    pub(crate) fn open(name: &str) -> io::Result<NamedSem> {
        let c = cstring(name)?;
        // SAFETY: `c` is a valid NUL-terminated name; without O_CREAT no
        // variadic arguments are read.
        from_ptr(unsafe { libc::sem_open(c.as_ptr(), 0) })
    }

    /// `sem_open(name, O_CREAT | O_EXCL, mode, value)`: a new semaphore, or
    /// `Ok(None)` if the name exists.
    pub(crate) fn create(name: &str, value: u32, mode: u32) -> io::Result<Option<NamedSem>> {
        let c = cstring(name)?;
        let value = value.min(SEM_VALUE_MAX) as libc::c_uint;
        // SAFETY: `c` is a valid NUL-terminated name; with O_CREAT sem_open
        // reads a mode and an unsigned value, passed as c_uint (the
        // promoted type of both) as its manual page says.
        let sem = unsafe { libc::sem_open(c.as_ptr(), libc::O_CREAT | libc::O_EXCL, mode as libc::c_uint, value) };
        match from_ptr(sem) {
            Ok(sem) => Ok(Some(sem)),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Takes one count, waiting until `deadline`; `Ok(false)` if it passed.
    pub(crate) fn wait(&self, deadline: Deadline) -> io::Result<bool> {
        if deadline == Deadline::Never {
            loop {
                // SAFETY: `self.sem` is an open semaphore.
                if unsafe { libc::sem_wait(self.sem) } == 0 {
                    return Ok(true);
                }
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINTR) {
                    return Err(e);
                }
            }
        }
        let mut slept = Duration::ZERO;
        loop {
            // SAFETY: `self.sem` is an open semaphore.
            if unsafe { libc::sem_trywait(self.sem) } == 0 {
                return Ok(true);
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) if deadline.passed() => return Ok(false),
                Some(libc::EAGAIN) => poll_pause(deadline, &mut slept),
                _ => return Err(e),
            }
        }
    }

    /// Gives one count back.
    pub(crate) fn post(&self) -> io::Result<()> {
        // SAFETY: `self.sem` is an open semaphore.
        cvt(unsafe { libc::sem_post(self.sem) }).map(drop)
    }

    /// The value: not available on Darwin (`sem_getvalue` fails with `ENOSYS`).
    pub(crate) fn value(&self) -> io::Result<u32> {
        Err(io::Error::from_raw_os_error(libc::ENOSYS))
    }
}

impl Drop for NamedSem {
    fn drop(&mut self) {
        // SAFETY: `self.sem` came from sem_open and is closed once, here.
        unsafe { libc::sem_close(self.sem) };
    }
}

/// `sem_unlink(name)`: removes the name (processes that have the semaphore
/// open keep it).
pub(crate) fn unlink(name: &str) -> io::Result<()> {
    let c = cstring(name)?;
    // SAFETY: `c` is a valid NUL-terminated name.
    cvt(unsafe { libc::sem_unlink(c.as_ptr()) }).map(drop)
}
