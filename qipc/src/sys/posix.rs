//! POSIX shared memory objects: `shm_open`, `shm_unlink`,
//! `posix_fallocate`, `mmap`.

use std::{
    io,
    os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
    ptr::NonNull,
};

use super::{
    mapping::Mapping,
    unix::{cstring, cvt, Create},
};

/// `shm_open(name, O_RDONLY or O_RDWR [| O_CREAT | O_EXCL] | O_CLOEXEC, mode)`.
pub(crate) fn shm_open(name: &str, write: bool, create: Create, mode: u32) -> io::Result<OwnedFd> {
    let c = cstring(name)?;
    let mut flags = libc::O_CLOEXEC | if write { libc::O_RDWR } else { libc::O_RDONLY };
    if create == Create::Exclusive {
        flags |= libc::O_CREAT | libc::O_EXCL;
    }
    // SAFETY: `c` is a valid NUL-terminated name; the mode is passed as the
    // variadic argument shm_open expects with O_CREAT.
    let fd = cvt(unsafe { libc::shm_open(c.as_ptr(), flags, mode as libc::c_uint) })?;
    // SAFETY: shm_open returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `shm_unlink(name)`.
pub(crate) fn shm_unlink(name: &str) -> io::Result<()> {
    let c = cstring(name)?;
    // SAFETY: `c` is a valid NUL-terminated name.
    cvt(unsafe { libc::shm_unlink(c.as_ptr()) }).map(drop)
}

/// `posix_fallocate(fd, 0, len)`, retried on `EINTR`: reserves the pages now,
/// so that a full file system fails here with `ENOSPC` instead of raising
/// SIGBUS on a later write.
#[cfg(target_os = "linux")]
pub(crate) fn fallocate(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    loop {
        // SAFETY: `fd` is open; posix_fallocate takes plain values.
        match unsafe { libc::posix_fallocate(fd.as_raw_fd(), 0, len) } {
            0 => return Ok(()),
            libc::EINTR => continue,
            e => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

/// `mmap(NULL, len, PROT_READ [| PROT_WRITE], MAP_SHARED, fd, 0)` as an
/// owning [`Mapping`] whose segment is `len` bytes.
pub(crate) fn map(fd: BorrowedFd<'_>, len: usize, writable: bool) -> io::Result<Mapping> {
    if len == 0 {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let prot = if writable { libc::PROT_READ | libc::PROT_WRITE } else { libc::PROT_READ };
    // SAFETY: a null address lets the kernel choose; `fd` is open; a
    // failure is reported as MAP_FAILED and nothing is mapped.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED, fd.as_raw_fd(), 0) };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `ptr` is a fresh mapping of exactly `len` bytes with the
    // requested protection; the Mapping becomes its only owner.
    Ok(unsafe { Mapping::from_mmap(ptr, len, len, writable) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn create_reserve_map_unlink() {
        let name = format!("/qipc-unit-posix-{}", std::process::id());
        let fd = shm_open(&name, true, Create::Exclusive, 0o600).unwrap();
        assert_eq!(shm_open(&name, true, Create::Exclusive, 0o600).unwrap_err().raw_os_error(), Some(libc::EEXIST));
        #[cfg(target_os = "linux")]
        fallocate(fd.as_fd(), 8192).unwrap();
        #[cfg(not(target_os = "linux"))]
        crate::sys::unix::ftruncate(fd.as_fd(), 8192).unwrap();
        let m = map(fd.as_fd(), 8192, true).unwrap();
        m.write(8188, b"tail").unwrap();
        let ro = map(shm_open(&name, false, Create::No, 0).unwrap().as_fd(), 8192, false).unwrap();
        let mut buf = [0u8; 4];
        ro.read(8188, &mut buf).unwrap();
        assert_eq!(&buf, b"tail");
        assert!(ro.write(0, b"x").is_err());
        assert!(map(fd.as_fd(), 0, true).is_err());
        shm_unlink(&name).unwrap();
        assert_eq!(shm_unlink(&name).unwrap_err().raw_os_error(), Some(libc::ENOENT));
    }
}
