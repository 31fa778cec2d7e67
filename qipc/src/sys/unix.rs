//! Common Unix calls: C strings, `stat`, `open`, `link`/`unlink`,
//! `fchmod`/`fchown`, `ftruncate`, `flock`, the write-lease probe, users and
//! processes.

use std::{
    ffi::CString,
    io,
    mem::MaybeUninit,
    os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
};

/// Turns a C return value of -1 into the current `errno`.
pub(crate) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A path or name as a C string; an interior NUL is an `EINVAL` error.
pub(crate) fn cstring(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// The identity of a file: device and inode. Two paths, or a path and a
/// descriptor, name the same file exactly when their identities are equal
/// (while the file exists: inode numbers are reused after removal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FileId {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

/// The kind of file a `stat` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileType {
    Regular,
    Directory,
    Symlink,
    Other,
}

/// The fields of `struct stat` that qipc reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStat {
    pub(crate) id: FileId,
    pub(crate) file_type: FileType,
    pub(crate) size: u64,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// Permission bits only (`0o7777`).
    pub(crate) mode: u32,
    pub(crate) nlink: u64,
    pub(crate) mtime: i64,
}

impl From<libc::stat> for FileStat {
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)] // the field types differ between targets
    fn from(st: libc::stat) -> FileStat {
        let file_type = match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => FileType::Regular,
            libc::S_IFDIR => FileType::Directory,
            libc::S_IFLNK => FileType::Symlink,
            _ => FileType::Other,
        };
        FileStat {
            // Widening or same-size conversions on every supported target.
            #[allow(clippy::unnecessary_cast)] // dev_t and ino_t differ between platforms
            id: FileId { dev: st.st_dev as u64, ino: st.st_ino as u64 },
            file_type,
            size: u64::try_from(st.st_size).unwrap_or(0),
            uid: st.st_uid,
            gid: st.st_gid,
            mode: u32::from(st.st_mode) & 0o7777,
            nlink: st.st_nlink as u64,
            #[allow(clippy::unnecessary_cast)] // time_t differs between platforms
            mtime: st.st_mtime as i64,
        }
    }
}

/// `stat(path)`, following symbolic links.
pub(crate) fn stat(path: &str) -> io::Result<FileStat> {
    let c = cstring(path)?;
    let mut st = MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: `c` is a valid NUL-terminated path and `st` is writable memory
    // the size of `struct stat`.
    cvt(unsafe { libc::stat(c.as_ptr(), st.as_mut_ptr()) })?;
    // SAFETY: stat succeeded, so it filled `st` (zeroed before in any case).
    Ok(unsafe { st.assume_init() }.into())
}

/// `lstat(path)`: a symbolic link is reported as itself.
pub(crate) fn lstat(path: &str) -> io::Result<FileStat> {
    let c = cstring(path)?;
    let mut st = MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: as in `stat`.
    cvt(unsafe { libc::lstat(c.as_ptr(), st.as_mut_ptr()) })?;
    // SAFETY: lstat succeeded and filled `st`.
    Ok(unsafe { st.assume_init() }.into())
}

/// `fstat(fd)`.
pub(crate) fn fstat(fd: BorrowedFd<'_>) -> io::Result<FileStat> {
    let mut st = MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: `fd` is an open descriptor for the duration of the call and
    // `st` is writable memory the size of `struct stat`.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded and filled `st`.
    Ok(unsafe { st.assume_init() }.into())
}

/// Whether an `open` may create the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Create {
    /// The file must exist.
    No,
    /// The file must not exist (`O_CREAT | O_EXCL`).
    Exclusive,
}

/// What an [`open`] asks for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpenHow {
    pub(crate) write: bool,
    pub(crate) create: Create,
    /// Permission bits for a created file (before the umask).
    pub(crate) mode: u32,
    /// Refuse a symbolic link in the last component (`O_NOFOLLOW`).
    pub(crate) no_follow: bool,
}

impl OpenHow {
    /// Open an existing file for reading.
    pub(crate) const READ: OpenHow = OpenHow { write: false, create: Create::No, mode: 0, no_follow: false };
}

/// `open(path, flags | O_CLOEXEC, mode)`.
pub(crate) fn open(path: &str, how: OpenHow) -> io::Result<OwnedFd> {
    let c = cstring(path)?;
    let mut flags = libc::O_CLOEXEC | if how.write { libc::O_RDWR } else { libc::O_RDONLY };
    if how.create == Create::Exclusive {
        flags |= libc::O_CREAT | libc::O_EXCL;
    }
    if how.no_follow {
        flags |= libc::O_NOFOLLOW;
    }
    loop {
        // SAFETY: `c` is a valid NUL-terminated path; the mode is passed as
        // the variadic argument open expects with O_CREAT.
        let fd = unsafe { libc::open(c.as_ptr(), flags, how.mode as libc::c_uint) };
        if fd >= 0 {
            // SAFETY: open returned a new descriptor that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// `unlink(path)`.
pub(crate) fn unlink(path: &str) -> io::Result<()> {
    let c = cstring(path)?;
    // SAFETY: `c` is a valid NUL-terminated path.
    cvt(unsafe { libc::unlink(c.as_ptr()) }).map(drop)
}

/// `link(existing, new)`: gives the file `existing` a second name; fails
/// with `EEXIST` if `new` exists. This is how a fully initialised file is
/// published under its final name in one step.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // used by the Linux backends and the inspector
pub(crate) fn link(existing: &str, new: &str) -> io::Result<()> {
    let (a, b) = (cstring(existing)?, cstring(new)?);
    // SAFETY: both are valid NUL-terminated paths.
    cvt(unsafe { libc::link(a.as_ptr(), b.as_ptr()) }).map(drop)
}

/// `fchmod(fd, mode)`: exact permission bits, whatever the umask.
pub(crate) fn fchmod(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    // SAFETY: `fd` is open; fchmod takes plain values.
    cvt(unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) }).map(drop)
}

/// `fchown(fd, -1, gid)`: changes the group only.
pub(crate) fn fchgrp(fd: BorrowedFd<'_>, gid: u32) -> io::Result<()> {
    // SAFETY: `fd` is open; an owner of (uid_t)-1 leaves the owner unchanged.
    cvt(unsafe { libc::fchown(fd.as_raw_fd(), libc::uid_t::MAX, gid) }).map(drop)
}

/// `ftruncate(fd, len)`.
pub(crate) fn ftruncate(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    loop {
        // SAFETY: `fd` is open; ftruncate takes plain values.
        match cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), len) }) {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            other => return other.map(drop),
        }
    }
}

/// `write(fd, data)` until all of it is written.
pub(crate) fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        // SAFETY: `data` is valid for reads of its length; `fd` is open.
        let n = unsafe { libc::write(fd.as_raw_fd(), data.as_ptr().cast(), data.len()) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(err);
        }
        // write returns at most data.len().
        data = &data[n as usize..];
    }
    Ok(())
}

/// Reads the first `buf.len()` bytes of the regular file `path` (not
/// following a symbolic link); returns how many it got.
pub(crate) fn read_prefix(path: &str, buf: &mut [u8]) -> io::Result<usize> {
    let fd = open(path, OpenHow { no_follow: true, ..OpenHow::READ })?;
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: the destination is the unfilled part of `buf`; `fd` is open.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        match n {
            0 => break,
            n if n > 0 => got += n as usize,
            _ => {
                let err = io::Error::last_os_error();
                if err.raw_os_error() != Some(libc::EINTR) {
                    return Err(err);
                }
            }
        }
    }
    Ok(got)
}

/// `flock(fd, LOCK_EX)`, or `LOCK_EX | LOCK_NB` when `wait` is false.
/// Returns `Ok(false)` if the lock is busy and `wait` is false. `EINTR` is
/// retried. The lock goes with the open file description, and so with the
/// process if it dies.
pub(crate) fn flock_exclusive(fd: BorrowedFd<'_>, wait: bool) -> io::Result<bool> {
    let op = if wait { libc::LOCK_EX } else { libc::LOCK_EX | libc::LOCK_NB };
    loop {
        // SAFETY: `fd` is open; flock takes plain values.
        match cvt(unsafe { libc::flock(fd.as_raw_fd(), op) }) {
            Ok(_) => return Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

/// Whether any open file description other than `fd`'s refers to the file
/// behind `fd`. A mapping holds its file's description open, so a process
/// that mapped the file and closed its descriptor still counts; a forked
/// child that inherited `fd` shares `fd`'s description and does **not**
/// count (probe from a description of your own to see those).
///
/// It takes a write lease and drops it at once. The kernel grants a write
/// lease only when the caller's description is the file's only one (Linux:
/// `check_conflicting_open`). The lease lives for two system calls; an
/// `open` of the file by another process inside that window waits for it.
///
/// Returns `Ok(true)` when others have the file open, `Ok(false)` when
/// nobody does, and an error when leases are unavailable (the caller does
/// not own the file and lacks `CAP_LEASE`, or leases are disabled): then
/// nothing can be concluded.
#[cfg(target_os = "linux")]
pub(crate) fn others_have_open(fd: BorrowedFd<'_>) -> io::Result<bool> {
    /// `F_SETSIG` from <fcntl.h> (Linux), which the libc crate lacks.
    const F_SETSIG: libc::c_int = 10;
    // The lease-break signal would be SIGIO, which terminates a process that
    // does not handle it, if an opener raced in; SIGURG is ignored by
    // default.
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

/// Leases exist only on Linux: elsewhere nothing can be concluded.
#[cfg(not(target_os = "linux"))]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // used by the Linux backends and the inspector
pub(crate) fn others_have_open(_fd: BorrowedFd<'_>) -> io::Result<bool> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

/// True if a process with this pid exists (perhaps owned by another user).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // used by the Linux backends and the inspector
pub(crate) fn pid_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 sends nothing; it only checks that the
    // process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The effective user id.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The name of user `uid`, if the user database knows it.
pub(crate) fn user_name_of(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    let mut pwd = MaybeUninit::<libc::passwd>::uninit();
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the size given; getpwuid_r writes
    // only into `pwd` and `buf`, and sets `result` to null or to `pwd`.
    let rc = unsafe { libc::getpwuid_r(uid, pwd.as_mut_ptr(), buf.as_mut_ptr().cast(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: `result` is non-null, so getpwuid_r initialised `pwd`, whose
    // `pw_name` points to a NUL-terminated string inside `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.assume_init_ref().pw_name) };
    Some(name.to_string_lossy().into_owned())
}

/// The effective group id.
pub(crate) fn egid() -> u32 {
    // SAFETY: getegid has no preconditions and cannot fail.
    unsafe { libc::getegid() }
}

/// Free bytes for an unprivileged user on the file system of `path`.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // used by the Linux backends and the inspector
pub(crate) fn free_bytes(path: &str) -> Option<u64> {
    let c = cstring(path).ok()?;
    let mut st = MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c` is a valid path and `st` is writable memory of the right size.
    if unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: statvfs succeeded and filled `st` (zeroed before).
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast)] // the statvfs fields differ between platforms
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn temp_path(tag: &str) -> String {
        format!("{}/qipc-unit-unix-{tag}-{}", std::env::temp_dir().display(), std::process::id())
    }

    #[test]
    fn exclusive_create_link_unlink() {
        let a = temp_path("a");
        let b = temp_path("b");
        let how = OpenHow { write: true, create: Create::Exclusive, mode: 0o600, no_follow: true };
        let fd = open(&a, how).unwrap();
        assert_eq!(open(&a, how).unwrap_err().raw_os_error(), Some(libc::EEXIST));
        write_all(fd.as_fd(), b"hello").unwrap();
        fchmod(fd.as_fd(), 0o640).unwrap();
        let st = fstat(fd.as_fd()).unwrap();
        assert_eq!((st.size, st.mode, st.file_type), (5, 0o640, FileType::Regular));
        link(&a, &b).unwrap();
        assert_eq!(stat(&b).unwrap().id, st.id);
        assert_eq!(link(&a, &b).unwrap_err().raw_os_error(), Some(libc::EEXIST));
        unlink(&a).unwrap();
        unlink(&b).unwrap();
        assert!(stat(&b).is_err());
    }

    #[test]
    fn flock_excludes_other_descriptions() {
        let p = temp_path("flock");
        let how = OpenHow { write: true, create: Create::Exclusive, mode: 0o600, no_follow: true };
        let a = open(&p, how).unwrap();
        let b = open(&p, OpenHow::READ).unwrap();
        assert!(flock_exclusive(a.as_fd(), false).unwrap());
        assert!(!flock_exclusive(b.as_fd(), false).unwrap());
        drop(a);
        assert!(flock_exclusive(b.as_fd(), false).unwrap());
        unlink(&p).unwrap();
    }

    #[test]
    fn lease_probe_sees_other_descriptions() {
        let p = temp_path("lease");
        let how = OpenHow { write: true, create: Create::Exclusive, mode: 0o600, no_follow: true };
        let a = open(&p, how).unwrap();
        assert!(!others_have_open(a.as_fd()).unwrap());
        let b = open(&p, OpenHow::READ).unwrap();
        assert!(others_have_open(a.as_fd()).unwrap());
        drop(b);
        assert!(!others_have_open(a.as_fd()).unwrap());
        unlink(&p).unwrap();
    }

    #[test]
    fn processes_and_users() {
        assert!(pid_alive(std::process::id() as i32));
        assert!(!pid_alive(0));
        assert!(user_name_of(0).is_some());
    }
}
