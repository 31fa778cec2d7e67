//! The operating-system boundary: the only module with `unsafe` code and
//! `libc` calls.
//!
//! Every wrapper here is thin and typed. It takes Rust values (paths as
//! `&str`, owned descriptors, identifier newtypes), returns `io::Result`,
//! retries only `EINTR` (and says so), never panics and decides no policy:
//! which call to make when, what an error means for the user and what may be
//! removed is the business of [`crate::backend`].
//!
//! - [`unix`]: descriptors, `stat`, `open`/`link`/`unlink`, `flock`, the
//!   write-lease probe, users and processes;
//! - [`mapping`]: [`Mapping`], which owns one attached mapping and unmaps it
//!   when dropped; the only place that reads or writes shared bytes;
//! - [`sysv`]: System V shared memory and semaphores;
//! - [`posix`]: POSIX shared memory objects (`shm_open`, `posix_fallocate`);
//! - [`semfile`]: named POSIX semaphores in glibc's `/dev/shm/sem.*` layout,
//!   mapped by qipc itself, with the robust gate that qipc's locks add;
//! - [`darwin_sem`]: its Darwin counterpart, `sem_open` semaphores (kernel
//!   objects without files: no identity, no gate), Apple systems only;
//! - [`fork`]: tells a forked child from its parent;
//! - [`proc`]: read-only scans of `/proc` for the inspector;
//! - [`windows`]: the Win32 calls behind Qt's Windows objects (file
//!   mappings, views, semaphores), Windows only;
//! - [`windows_names`]: Qt's Windows object names and error tables, pure
//!   and compiled everywhere so that their tests run on Linux too.

#[cfg(target_vendor = "apple")]
pub(crate) mod darwin_sem;
#[cfg(unix)]
pub(crate) mod errno;
pub(crate) mod fork;
pub(crate) mod mapping;
#[cfg(unix)]
pub(crate) mod posix;
#[cfg(target_os = "linux")]
pub(crate) mod proc;
#[cfg(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
pub(crate) mod semfile;
#[cfg(unix)]
pub(crate) mod sysv;
#[cfg(unix)]
pub(crate) mod unix;
#[cfg(windows)]
pub(crate) mod windows;
// Pure functions; on Unix only their tests use them.
#[cfg_attr(not(windows), allow(dead_code))]
pub(crate) mod windows_names;

pub(crate) use mapping::Mapping;

use std::time::{Duration, Instant};

/// How long a blocking call may wait, fixed once at the start of an
/// operation so that every step of it (a gate, a token, a retry) shares the
/// same limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deadline {
    /// Wait as long as it takes.
    Never,
    /// Do not wait at all.
    Now,
    /// Wait until this instant.
    At(Instant),
}

impl Deadline {
    /// A deadline `timeout` from now; a timeout too large to represent
    /// waits forever.
    pub(crate) fn after(timeout: Duration) -> Deadline {
        match Instant::now().checked_add(timeout) {
            Some(at) => Deadline::At(at),
            None => Deadline::Never,
        }
    }

    /// The time left: `None` for [`Deadline::Never`], zero once passed.
    pub(crate) fn remaining(self) -> Option<Duration> {
        match self {
            Deadline::Never => None,
            Deadline::Now => Some(Duration::ZERO),
            Deadline::At(at) => Some(at.saturating_duration_since(Instant::now())),
        }
    }

    /// True once no time is left.
    #[cfg_attr(windows, allow(dead_code))]
    pub(crate) fn passed(self) -> bool {
        self.remaining() == Some(Duration::ZERO)
    }

    /// The earlier of this deadline and `limit` from now.
    #[cfg_attr(windows, allow(dead_code))]
    pub(crate) fn capped(self, limit: Duration) -> Deadline {
        let cap = Deadline::after(limit);
        match (self, cap) {
            (Deadline::Now, _) => Deadline::Now,
            (Deadline::Never, c) => c,
            (Deadline::At(a), Deadline::At(b)) => Deadline::At(a.min(b)),
            (d, _) => d,
        }
    }
}

/// One pause of a polling wait (where the system has no timed wait): 1 ms
/// at first, growing to 10 ms, never past `deadline`. `slept` is the
/// total so far.
#[cfg(all(unix, not(target_os = "linux")))]
pub(crate) fn poll_pause(deadline: Deadline, slept: &mut Duration) {
    let slice = (*slept / 4).clamp(Duration::from_millis(1), Duration::from_millis(10));
    let slice = deadline.remaining().map_or(slice, |left| slice.min(left));
    std::thread::sleep(slice);
    *slept += slice;
}

/// Converts a duration to a `timespec`, saturating instead of overflowing.
#[cfg(target_os = "linux")]
pub(crate) fn timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        // Always below 10^9, so it fits every platform's c_long.
        tv_nsec: d.subsec_nanos() as libc::c_long,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines() {
        assert_eq!(Deadline::Never.remaining(), None);
        assert!(Deadline::Now.passed());
        assert!(!Deadline::after(Duration::from_secs(60)).passed());
        assert_eq!(Deadline::after(Duration::MAX), Deadline::Never);
        let capped = Deadline::Never.capped(Duration::from_millis(10));
        assert!(capped.remaining().unwrap() <= Duration::from_millis(10));
        assert_eq!(Deadline::Now.capped(Duration::from_secs(1)), Deadline::Now);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn timespec_saturates() {
        let ts = timespec(Duration::MAX);
        assert_eq!(ts.tv_sec, libc::time_t::MAX);
        assert_eq!(timespec(Duration::from_millis(1500)).tv_nsec, 500_000_000);
    }
}
