//! The OS boundary. Every system call qipc makes lives below this module:
//! `sysv` (System V shared memory and semaphores, `ftok`, key files) and
//! `posix` (`shm_open`, `mmap`, named semaphores, leases). The public types
//! call only these wrappers, so another platform can be added here without
//! touching the public API.
//!
//! The wrappers are thin: they take Rust types, return `io::Result`, retry
//! nothing unless they say so, and never panic.

pub(crate) mod inspect;
pub(crate) mod posix;
pub(crate) mod sysv;

use std::{ffi::CString, io};

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

/// The name of the effective user, or its number if it has no name.
pub(crate) fn user_name() -> String {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    user_name_of(uid).unwrap_or_else(|| uid.to_string())
}

/// The name of user `uid`, if the user database knows it.
pub(crate) fn user_name_of(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    let mut pwd = std::mem::MaybeUninit::<libc::passwd>::uninit();
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

/// The system page size.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}

/// A mapping of shared memory: the address and length of a `shmat` or
/// `mmap` region owned by a segment object.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Region {
    pub(crate) ptr: *mut u8,
    pub(crate) len: usize,
}

/// Pre-faults `len` bytes at `ptr` for writing, so that the first write
/// into a fresh segment does not take one page fault per page.
/// Returns the error if the kernel refuses (older kernels lack
/// `MADV_POPULATE_WRITE`).
pub(crate) fn populate_write(region: Region) -> io::Result<()> {
    const MADV_POPULATE_WRITE: libc::c_int = 23;
    // SAFETY: the region is a live mapping owned by the caller; madvise with
    // MADV_POPULATE_WRITE only faults pages in and does not change contents.
    cvt(unsafe { libc::madvise(region.ptr.cast(), region.len, MADV_POPULATE_WRITE) }).map(drop)
}

/// Free bytes for an unprivileged user on the file system of `path`.
pub(crate) fn free_bytes(path: &str) -> Option<u64> {
    let c = cstring(path).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c` is a valid path and `st` is writable memory of the right size.
    if unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: statvfs succeeded and filled `st` (zeroed before).
    let st = unsafe { st.assume_init() };
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Asks for transparent huge pages on a shared memory mapping
/// (`MADV_HUGEPAGE`), if the kernel's shmem THP policy allows advice.
pub(crate) fn advise_huge_shmem(region: Region) -> crate::shared_memory::HugePages {
    use crate::shared_memory::HugePages;
    let policy = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/shmem_enabled").unwrap_or_default();
    let active = policy.split_whitespace().find(|w| w.starts_with('[')).unwrap_or("[unknown]").to_string();
    if !matches!(active.as_str(), "[advise]" | "[always]" | "[within_size]" | "[force]") {
        return HugePages::Unavailable(format!(
            "the kernel's shmem THP policy is {active} (/sys/kernel/mm/transparent_hugepage/shmem_enabled)"
        ));
    }
    // SAFETY: the region is a live mapping owned by the caller; MADV_HUGEPAGE
    // only changes how the kernel backs it, not its contents.
    match cvt(unsafe { libc::madvise(region.ptr.cast(), region.len, libc::MADV_HUGEPAGE) }) {
        Ok(_) => HugePages::Active,
        Err(e) => HugePages::Unavailable(format!("madvise(MADV_HUGEPAGE) failed: {e}")),
    }
}

/// Asks for transparent huge pages on a mapping of a `/dev/shm` object.
/// There the tmpfs mount's own `huge=` option decides, not the global shmem
/// THP policy, so the option is read from `/proc/self/mounts` first.
pub(crate) fn advise_huge_devshm(region: Region) -> crate::shared_memory::HugePages {
    use crate::shared_memory::HugePages;
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let options = mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() >= 4 && f[1] == "/dev/shm")
        .map(|f| f[3].to_string())
        .next_back();
    let Some(options) = options else {
        return HugePages::Unavailable("/dev/shm is not a mount point listed in /proc/self/mounts".into());
    };
    let huge = options.split(',').find_map(|o| o.strip_prefix("huge=")).unwrap_or("never");
    if !matches!(huge, "always" | "within_size" | "advise") {
        return HugePages::Unavailable(format!(
            "/dev/shm is mounted with huge={huge} (remount with huge=advise or huge=within_size to allow it)"
        ));
    }
    // SAFETY: the region is a live mapping owned by the caller; MADV_HUGEPAGE
    // only changes how the kernel backs it, not its contents.
    match cvt(unsafe { libc::madvise(region.ptr.cast(), region.len, libc::MADV_HUGEPAGE) }) {
        Ok(_) => HugePages::Active,
        Err(e) => HugePages::Unavailable(format!("madvise(MADV_HUGEPAGE) failed: {e}")),
    }
}
