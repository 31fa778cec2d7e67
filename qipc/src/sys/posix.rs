//! POSIX realtime IPC: `shm_open`, `ftruncate`, `posix_fallocate`, `mmap`,
//! `shm_unlink`, named semaphores (`sem_open` and friends), and the
//! file-lease probe that tells whether anybody else has an object open.

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    time::Duration,
};

use super::{cstring, cvt, Region};

/// `shm_open(name, flags | O_CLOEXEC, mode)`.
pub(crate) fn shm_open(name: &str, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    let c = cstring(name)?;
    // SAFETY: `c` is a valid NUL-terminated name.
    let fd = cvt(unsafe { libc::shm_open(c.as_ptr(), flags | libc::O_CLOEXEC, mode) })?;
    // SAFETY: shm_open returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `shm_unlink(name)`.
pub(crate) fn shm_unlink(name: &str) -> io::Result<()> {
    let c = cstring(name)?;
    // SAFETY: `c` is a valid NUL-terminated name.
    cvt(unsafe { libc::shm_unlink(c.as_ptr()) }).map(drop)
}

/// `ftruncate(fd, len)`.
pub(crate) fn ftruncate(fd: &OwnedFd, len: usize) -> io::Result<()> {
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    // SAFETY: `fd` is an open descriptor.
    cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), len) }).map(drop)
}

/// `posix_fallocate(fd, 0, len)`: reserves the pages now, so that a full
/// `/dev/shm` fails here with `ENOSPC` instead of raising SIGBUS on a later
/// write.
pub(crate) fn fallocate(fd: &OwnedFd, len: usize) -> io::Result<()> {
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    loop {
        // SAFETY: `fd` is an open descriptor.
        let rc = unsafe { libc::posix_fallocate(fd.as_raw_fd(), 0, len) };
        match rc {
            0 => return Ok(()),
            libc::EINTR => continue,
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

/// The fields of `struct stat` that qipc reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStat {
    pub(crate) size: u64,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) uid: u32,
    pub(crate) mode: u32,
    pub(crate) mtime: i64,
}

impl From<libc::stat> for FileStat {
    fn from(st: libc::stat) -> FileStat {
        FileStat {
            size: st.st_size as u64,
            dev: st.st_dev,
            ino: st.st_ino,
            uid: st.st_uid,
            mode: st.st_mode & 0o7777,
            mtime: st.st_mtime,
        }
    }
}

/// `fstat(fd)`.
pub(crate) fn fstat(fd: &OwnedFd) -> io::Result<FileStat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: `st` is writable memory the size of `struct stat`.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded and filled `st` (which was zeroed before).
    Ok(unsafe { st.assume_init() }.into())
}

/// `mmap(NULL, len, PROT_READ[|PROT_WRITE], MAP_SHARED[|MAP_POPULATE], fd, 0)`.
pub(crate) fn mmap(fd: &OwnedFd, len: usize, writable: bool, populate: bool) -> io::Result<Region> {
    let prot = if writable { libc::PROT_READ | libc::PROT_WRITE } else { libc::PROT_READ };
    let flags = libc::MAP_SHARED | if populate { libc::MAP_POPULATE } else { 0 };
    // SAFETY: a null address lets the kernel choose; `fd` is open and `len`
    // is the object's size, checked by the caller to be non-zero.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, fd.as_raw_fd(), 0) };
    if p == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(Region { ptr: p.cast(), len })
    }
}

/// `munmap(addr, len)`.
pub(crate) fn munmap(region: Region) -> io::Result<()> {
    // SAFETY: the region is a mapping returned by `mmap` that the caller no
    // longer uses.
    cvt(unsafe { libc::munmap(region.ptr.cast(), region.len) }).map(drop)
}

/// Tells whether any other open file description refers to the file behind
/// `fd`: another process's descriptor, or a mapping that holds the file
/// (an `mmap` keeps its file open after `close`).
///
/// It takes a write lease and drops it at once. The kernel grants a write
/// lease only when the caller's own descriptor is the file's only opener
/// (`check_conflicting_open` in fs/locks.c), so success means "nobody else".
/// The lease lives for two system calls; an `open` of the file by another
/// process inside that window waits for the lease to go.
///
/// Returns `Ok(true)` when others have the file open, `Ok(false)` when
/// nobody does, and an error if leases are not available (not the owner and
/// no CAP_LEASE, leases disabled).
pub(crate) fn others_have_open(fd: &OwnedFd) -> io::Result<bool> {
    /// `F_SETSIG` from <fcntl.h> (Linux), which the libc crate lacks.
    const F_SETSIG: libc::c_int = 10;
    // The lease-break signal: SIGIO by default, which would terminate us if an
    // opener raced in; SIGURG is ignored unless the program handles it.
    // SAFETY: F_SETSIG takes an int.
    let _ = unsafe { libc::fcntl(fd.as_raw_fd(), F_SETSIG, libc::SIGURG) };
    // SAFETY: F_SETLEASE takes an int.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETLEASE, libc::F_WRLCK) };
    if rc == -1 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EBUSY) => Ok(true),
            _ => Err(err),
        };
    }
    // SAFETY: F_SETLEASE takes an int.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETLEASE, libc::F_UNLCK) };
    Ok(false)
}

/// A named POSIX semaphore handle (`sem_t *` from `sem_open`).
#[derive(Debug)]
pub(crate) struct NamedSem(*mut libc::sem_t);

// SAFETY: a `sem_t` from sem_open is a process-shared object designed to be
// used from any thread; the pointer is only passed to sem_* functions.
unsafe impl Send for NamedSem {}
// SAFETY: as above, all sem_* operations are thread-safe.
unsafe impl Sync for NamedSem {}

/// `sem_open(name, flags, 0600, value)`, retried on `EINTR`.
pub(crate) fn sem_open(name: &str, flags: libc::c_int, value: u32) -> io::Result<NamedSem> {
    let c = cstring(name)?;
    loop {
        // SAFETY: `c` is a valid name; with O_CREAT the variadic mode and
        // value arguments are passed with the types sem_open expects.
        let s = unsafe { libc::sem_open(c.as_ptr(), flags, 0o600 as libc::c_uint, value as libc::c_uint) };
        if s != libc::SEM_FAILED {
            return Ok(NamedSem(s));
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// `sem_unlink(name)`.
pub(crate) fn sem_unlink(name: &str) -> io::Result<()> {
    let c = cstring(name)?;
    // SAFETY: `c` is a valid NUL-terminated name.
    cvt(unsafe { libc::sem_unlink(c.as_ptr()) }).map(drop)
}

impl NamedSem {
    /// `sem_wait`, `sem_trywait` or `sem_timedwait`; `EINTR` is retried.
    /// Returns `Ok(false)` on `EAGAIN` or `ETIMEDOUT`.
    #[inline]
    pub(crate) fn wait(&self, wait: super::sysv::Wait) -> io::Result<bool> {
        use super::sysv::Wait;
        if let Wait::Block = wait {
            // The lock's path: one call, no deadline to compute.
            // SAFETY: self.0 is a live handle from sem_open (closed only in Drop).
            if unsafe { libc::sem_wait(self.0) } == 0 {
                return Ok(true);
            }
        }
        self.wait_slow(wait)
    }

    #[cold]
    #[inline(never)]
    fn wait_slow(&self, wait: super::sysv::Wait) -> io::Result<bool> {
        use super::sysv::Wait;
        let deadline = match wait {
            Wait::Timeout(d) => Some(realtime_deadline(d)),
            _ => None,
        };
        loop {
            // SAFETY: self.0 is a live handle from sem_open (closed only in Drop).
            let rc = unsafe {
                match (wait, &deadline) {
                    (Wait::Block, _) => libc::sem_wait(self.0),
                    (Wait::Now, _) => libc::sem_trywait(self.0),
                    (Wait::Timeout(_), Some(ts)) => libc::sem_timedwait(self.0, ts),
                    (Wait::Timeout(_), None) => libc::sem_wait(self.0),
                }
            };
            if rc == 0 {
                return Ok(true);
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) | Some(libc::ETIMEDOUT) => return Ok(false),
                _ => return Err(err),
            }
        }
    }

    /// `sem_post`.
    #[inline]
    pub(crate) fn post(&self) -> io::Result<()> {
        // SAFETY: self.0 is a live handle from sem_open.
        cvt(unsafe { libc::sem_post(self.0) }).map(drop)
    }

    /// `sem_getvalue`.
    pub(crate) fn value(&self) -> io::Result<i32> {
        let mut v = 0;
        // SAFETY: self.0 is a live handle and `v` is a valid out pointer.
        cvt(unsafe { libc::sem_getvalue(self.0, &mut v) })?;
        Ok(v)
    }
}

impl Drop for NamedSem {
    fn drop(&mut self) {
        // SAFETY: self.0 came from sem_open and is closed exactly once, here.
        unsafe { libc::sem_close(self.0) };
    }
}

fn realtime_deadline(d: Duration) -> libc::timespec {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
    let total_ns = now.tv_nsec as u64 + u64::from(d.subsec_nanos());
    let secs =
        (now.tv_sec as u64).saturating_add(d.as_secs()).saturating_add(total_ns / 1_000_000_000).min(i64::MAX as u64);
    libc::timespec { tv_sec: secs as libc::time_t, tv_nsec: (total_ns % 1_000_000_000) as libc::c_long }
}

/// The path glibc uses for a POSIX shm name: `/dev/shm/<name without its
/// leading slash>`.
pub(crate) fn shm_path(name: &str) -> String {
    format!("/dev/shm/{}", name.strip_prefix('/').unwrap_or(name))
}

/// The path glibc uses for a POSIX semaphore name: `/dev/shm/sem.<name>`.
pub(crate) fn sem_path(name: &str) -> String {
    format!("/dev/shm/sem.{}", name.strip_prefix('/').unwrap_or(name))
}

/// `stat(path)`.
pub(crate) fn stat_path(path: &str) -> io::Result<FileStat> {
    let c = cstring(path)?;
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: `c` is a valid path and `st` writable memory of the right size.
    cvt(unsafe { libc::stat(c.as_ptr(), st.as_mut_ptr()) })?;
    // SAFETY: stat succeeded and filled `st` (which was zeroed before).
    Ok(unsafe { st.assume_init() }.into())
}
