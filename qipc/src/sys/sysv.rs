//! System V IPC: key files, `ftok`, `shmget`/`shmat`/`shmdt`/`shmctl`,
//! `semget`/`semop`/`semtimedop`/`semctl`.
//!
//! Neither rustix nor nix wraps these calls, so this file does, with
//! `libc` directly.

use std::{io, mem::MaybeUninit, time::Duration};

use super::{cstring, cvt, Region};

/// Creates an empty key file as Qt does (`open(O_RDWR|O_CREAT|O_EXCL|O_CLOEXEC,
/// 0640)`, then close). Returns `true` if this call created it and `false`
/// if it existed already.
pub(crate) fn create_key_file(path: &str) -> io::Result<bool> {
    let c = cstring(path)?;
    // SAFETY: `c` is a valid NUL-terminated path; open has no other
    // preconditions.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC, 0o640) };
    if fd == -1 {
        let err = io::Error::last_os_error();
        return if err.raw_os_error() == Some(libc::EEXIST) { Ok(false) } else { Err(err) };
    }
    // SAFETY: `fd` was just opened by this function and is closed once.
    unsafe { libc::close(fd) };
    Ok(true)
}

/// `unlink(path)`, ignoring a missing file.
pub(crate) fn remove_key_file(path: &str) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// `ftok(path, id)`.
pub(crate) fn ftok(path: &str, id: u8) -> io::Result<libc::key_t> {
    let c = cstring(path)?;
    // SAFETY: `c` is a valid NUL-terminated path.
    let key = unsafe { libc::ftok(c.as_ptr(), libc::c_int::from(id)) };
    if key == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(key)
    }
}

/// `shmget(key, size, flags)`.
pub(crate) fn shmget(key: libc::key_t, size: usize, flags: libc::c_int) -> io::Result<libc::c_int> {
    // SAFETY: shmget takes plain values and has no memory preconditions.
    cvt(unsafe { libc::shmget(key, size, flags) })
}

/// `shmat(id, NULL, SHM_RDONLY or 0)` followed by `IPC_STAT` for the size.
pub(crate) fn shmat(id: libc::c_int, read_only: bool) -> io::Result<*mut u8> {
    let flags = if read_only { libc::SHM_RDONLY } else { 0 };
    // SAFETY: a null address lets the kernel choose where to map; the
    // segment is not accessed here.
    let p = unsafe { libc::shmat(id, std::ptr::null(), flags) };
    if p as isize == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(p.cast())
    }
}

/// `shmdt(addr)`.
pub(crate) fn shmdt(region: Region) -> io::Result<()> {
    // SAFETY: `region.ptr` is an address returned by shmat that the caller
    // no longer uses; after this call nothing dereferences it.
    cvt(unsafe { libc::shmdt(region.ptr.cast()) }).map(drop)
}

/// The fields of `struct shmid_ds` that qipc reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ShmStat {
    pub(crate) size: usize,
    pub(crate) nattch: u64,
    pub(crate) uid: u32,
    pub(crate) mode: u32,
    pub(crate) cpid: i32,
    pub(crate) lpid: i32,
    pub(crate) ctime: i64,
}

/// `shmctl(id, IPC_STAT)`.
pub(crate) fn shm_stat(id: libc::c_int) -> io::Result<ShmStat> {
    let mut ds = MaybeUninit::<libc::shmid_ds>::zeroed();
    // SAFETY: `ds` points to writable memory the size of shmid_ds.
    cvt(unsafe { libc::shmctl(id, libc::IPC_STAT, ds.as_mut_ptr()) })?;
    // SAFETY: IPC_STAT succeeded, so the kernel filled `ds` (and it was
    // zeroed before, so every byte is initialised regardless).
    let ds = unsafe { ds.assume_init() };
    Ok(ShmStat {
        size: ds.shm_segsz,
        nattch: ds.shm_nattch,
        uid: ds.shm_perm.uid,
        mode: u32::from(ds.shm_perm.mode) & 0o777,
        cpid: ds.shm_cpid,
        lpid: ds.shm_lpid,
        ctime: ds.shm_ctime,
    })
}

/// `shmctl(id, IPC_RMID)`.
pub(crate) fn shm_remove(id: libc::c_int) -> io::Result<()> {
    // SAFETY: IPC_RMID takes no buffer; a null pointer is allowed.
    cvt(unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) }).map(drop)
}

/// `semget(key, 1, flags)`.
pub(crate) fn semget(key: libc::key_t, flags: libc::c_int) -> io::Result<libc::c_int> {
    // SAFETY: semget takes plain values.
    cvt(unsafe { libc::semget(key, 1, flags) })
}

/// `semctl(id, 0, SETVAL, value)`.
pub(crate) fn sem_setval(id: libc::c_int, value: i32) -> io::Result<()> {
    // SAFETY: SETVAL takes an int as its fourth (variadic) argument.
    cvt(unsafe { libc::semctl(id, 0, libc::SETVAL, value) }).map(drop)
}

/// `semctl(id, 0, GETVAL)`.
pub(crate) fn sem_getval(id: libc::c_int) -> io::Result<i32> {
    // SAFETY: GETVAL takes no fourth argument.
    cvt(unsafe { libc::semctl(id, 0, libc::GETVAL) })
}

/// `semctl(id, 0, GETNCNT)`: the number of processes waiting to decrement.
pub(crate) fn sem_getncnt(id: libc::c_int) -> io::Result<i32> {
    // SAFETY: GETNCNT takes no fourth argument.
    cvt(unsafe { libc::semctl(id, 0, libc::GETNCNT) })
}

/// `semctl(id, 0, GETPID)`: the pid of the last process to operate on it.
pub(crate) fn sem_getpid(id: libc::c_int) -> io::Result<i32> {
    // SAFETY: GETPID takes no fourth argument.
    cvt(unsafe { libc::semctl(id, 0, libc::GETPID) })
}

/// `semctl(id, 0, IPC_RMID)`.
pub(crate) fn sem_remove(id: libc::c_int) -> io::Result<()> {
    // SAFETY: IPC_RMID takes no fourth argument.
    cvt(unsafe { libc::semctl(id, 0, libc::IPC_RMID) }).map(drop)
}

/// How a semaphore operation waits.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wait {
    Block,
    Now,
    Timeout(Duration),
}

/// One `semop`/`semtimedop` on semaphore 0 with `SEM_UNDO`. `EINTR` is
/// retried (with the remaining time for a timeout). Returns `Ok(false)` if
/// the operation would block (`Now`) or timed out.
#[inline]
pub(crate) fn semop(id: libc::c_int, op: i16, wait: Wait) -> io::Result<bool> {
    semop_flags(id, op, wait, true)
}

/// As [`semop`], with `SEM_UNDO` only if `undo` is set.
///
/// The blocking case, which every lock and unlock takes, makes the call
/// inline; the retry loop and the time-outs live in a cold function, so
/// that the path to the system call is as short as Qt's.
#[inline]
pub(crate) fn semop_flags(id: libc::c_int, op: i16, wait: Wait, undo: bool) -> io::Result<bool> {
    if let Wait::Block = wait {
        let flags: libc::c_short = if undo { libc::SEM_UNDO as libc::c_short } else { 0 };
        let mut buf = libc::sembuf { sem_num: 0, sem_op: op, sem_flg: flags };
        // SAFETY: `buf` is valid for the duration of the call.
        if unsafe { libc::semop(id, &mut buf, 1) } == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
    semop_slow(id, op, wait, undo)
}

#[cold]
#[inline(never)]
fn semop_slow(id: libc::c_int, op: i16, wait: Wait, undo: bool) -> io::Result<bool> {
    let mut flags: libc::c_short = if undo { libc::SEM_UNDO as libc::c_short } else { 0 };
    if matches!(wait, Wait::Now) {
        flags |= libc::IPC_NOWAIT as libc::c_short;
    }
    let deadline = match wait {
        Wait::Timeout(d) => std::time::Instant::now().checked_add(d),
        _ => None,
    };
    loop {
        let mut buf = libc::sembuf { sem_num: 0, sem_op: op, sem_flg: flags };
        let ret = match (wait, deadline) {
            (Wait::Timeout(_), Some(deadline)) => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                let ts = libc::timespec {
                    tv_sec: left.as_secs().min(i64::MAX as u64) as libc::time_t,
                    tv_nsec: libc::c_long::from(left.subsec_nanos() as i32),
                };
                // SAFETY: `buf` and `ts` are valid for the duration of the
                // call; the libc crate has no semtimedop wrapper, so the
                // system call is made directly with its documented arguments.
                unsafe {
                    libc::syscall(
                        libc::SYS_semtimedop,
                        id,
                        &mut buf as *mut libc::sembuf,
                        1usize,
                        &ts as *const libc::timespec,
                    ) as libc::c_int
                }
            }
            // SAFETY: `buf` is valid for the duration of the call.
            _ => unsafe { libc::semop(id, &mut buf, 1) },
        };
        if ret == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => return Ok(false),
            _ => return Err(err),
        }
    }
}

/// One entry of `/proc/sysvipc/shm` or `/proc/sysvipc/sem`: the columns by
/// header name.
pub(crate) fn proc_sysvipc(table: &str) -> io::Result<Vec<std::collections::HashMap<String, String>>> {
    let text = std::fs::read_to_string(format!("/proc/sysvipc/{table}"))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    Ok(lines
        .map(|line| header.iter().map(|h| h.to_string()).zip(line.split_whitespace().map(str::to_string)).collect())
        .collect())
}
