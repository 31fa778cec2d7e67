//! System V IPC: `shmget`/`shmat`/`shmctl` and `semget`/`semop`/
//! `semtimedop`/`semctl`, with typed keys and identifiers.
//!
//! Neither rustix nor nix wraps these calls, so this file does, with `libc`
//! directly. `ftok` is computed from a `stat` result ([`Key::of_file`]), the
//! formula glibc uses, so that a caller who already has the key file's
//! identity does not stat it again.

use std::{io, mem::MaybeUninit, ptr::NonNull};

use super::{
    mapping::Mapping,
    unix::{cvt, FileStat},
    Deadline,
};

/// A System V IPC key (`key_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Key(pub(crate) libc::key_t);

impl Key {
    /// `ftok(path, project)` for the file `st` describes: the low 8 bits of
    /// the project id, of the device and 16 bits of the inode, as glibc
    /// computes it.
    pub(crate) fn of_file(st: &FileStat, project: u8) -> Key {
        let k = (u32::from(project) << 24) | ((st.id.dev as u32 & 0xff) << 16) | (st.id.ino as u32 & 0xffff);
        Key(k as libc::key_t)
    }
}

/// A shared memory segment identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ShmId(pub(crate) libc::c_int);

/// A semaphore set identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SemId(pub(crate) libc::c_int);

/// `shmget(key, 0, perm)`: an existing segment.
pub(crate) fn shm_open(key: Key, perm: u32) -> io::Result<ShmId> {
    // SAFETY: shmget takes plain values.
    cvt(unsafe { libc::shmget(key.0, 0, perm as libc::c_int) }).map(ShmId)
}

/// `shmget(key, size, IPC_CREAT | IPC_EXCL | perm [| SHM_HUGETLB])`.
pub(crate) fn shm_create(key: Key, size: usize, perm: u32, hugetlb: bool) -> io::Result<ShmId> {
    #[allow(unused_mut)]
    let mut flags = libc::IPC_CREAT | libc::IPC_EXCL | perm as libc::c_int;
    if hugetlb {
        #[cfg(target_os = "linux")]
        {
            flags |= libc::SHM_HUGETLB;
        }
        // Huge System V pages are a Linux feature.
        #[cfg(not(target_os = "linux"))]
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: shmget takes plain values.
    cvt(unsafe { libc::shmget(key.0, size, flags) }).map(ShmId)
}

/// `shmat(id, NULL, SHM_RDONLY or 0)`: an owning mapping of `len` bytes.
///
/// `len` must not exceed the segment's size (the caller takes it from
/// [`shm_stat`] or from the size it created the segment with).
pub(crate) fn shm_attach(id: ShmId, len: usize, writable: bool) -> io::Result<Mapping> {
    let flags = if writable { 0 } else { libc::SHM_RDONLY };
    // SAFETY: a null address lets the kernel choose where to map; the
    // segment is not accessed here.
    let p = unsafe { libc::shmat(id.0, std::ptr::null(), flags) };
    if p as isize == -1 {
        return Err(io::Error::last_os_error());
    }
    let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `ptr` is a fresh shmat attachment of a segment of at least
    // `len` bytes (caller's contract), writable iff `writable`; the Mapping
    // becomes its only owner.
    Ok(unsafe { Mapping::from_shmat(ptr, len, writable) })
}

/// The fields of `struct shmid_ds` that qipc reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ShmStat {
    pub(crate) key: Key,
    pub(crate) size: usize,
    pub(crate) nattch: u64,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// Permission bits (`0o777`).
    pub(crate) mode: u32,
    /// Marked for destruction (`IPC_RMID` while still attached).
    pub(crate) removed: bool,
    pub(crate) cpid: i32,
    pub(crate) lpid: i32,
    pub(crate) ctime: i64,
}

/// `shmctl(id, IPC_STAT)`.
#[allow(clippy::unnecessary_cast)] // the field types differ between targets
pub(crate) fn shm_stat(id: ShmId) -> io::Result<ShmStat> {
    /// `SHM_DEST` from <linux/shm.h>: the segment is marked for destruction.
    const SHM_DEST: u32 = 0o1000;
    let mut ds = MaybeUninit::<libc::shmid_ds>::zeroed();
    // SAFETY: `ds` points to writable memory the size of shmid_ds.
    cvt(unsafe { libc::shmctl(id.0, libc::IPC_STAT, ds.as_mut_ptr()) })?;
    // SAFETY: IPC_STAT succeeded, so the kernel filled `ds` (zeroed before).
    let ds = unsafe { ds.assume_init() };
    let mode = u32::from(ds.shm_perm.mode);
    Ok(ShmStat {
        key: Key(ipc_key(&ds.shm_perm)),
        size: ds.shm_segsz,
        nattch: ds.shm_nattch as u64,
        uid: ds.shm_perm.uid,
        gid: ds.shm_perm.gid,
        mode: mode & 0o777,
        removed: mode & SHM_DEST != 0,
        cpid: ds.shm_cpid,
        lpid: ds.shm_lpid,
        #[allow(clippy::unnecessary_cast)] // time_t differs between platforms
        ctime: ds.shm_ctime as i64,
    })
}

/// `shmctl(id, IPC_SET)` with a new group, keeping owner and mode.
pub(crate) fn shm_set_group(id: ShmId, gid: u32) -> io::Result<()> {
    let mut ds = MaybeUninit::<libc::shmid_ds>::zeroed();
    // SAFETY: as in shm_stat.
    cvt(unsafe { libc::shmctl(id.0, libc::IPC_STAT, ds.as_mut_ptr()) })?;
    // SAFETY: IPC_STAT filled `ds`.
    let mut ds = unsafe { ds.assume_init() };
    ds.shm_perm.gid = gid;
    // SAFETY: `ds` is a valid shmid_ds; IPC_SET reads uid, gid and mode.
    cvt(unsafe { libc::shmctl(id.0, libc::IPC_SET, &mut ds) }).map(drop)
}

/// `shmctl(id, IPC_RMID)`: destroyed now if nobody is attached, else when
/// the last process detaches.
pub(crate) fn shm_remove(id: ShmId) -> io::Result<()> {
    // SAFETY: IPC_RMID takes no buffer; a null pointer is allowed.
    cvt(unsafe { libc::shmctl(id.0, libc::IPC_RMID, std::ptr::null_mut()) }).map(drop)
}

/// `semget(key, 1, 0)`: an existing semaphore set.
pub(crate) fn sem_open(key: Key) -> io::Result<SemId> {
    // SAFETY: semget takes plain values.
    cvt(unsafe { libc::semget(key.0, 1, 0) }).map(SemId)
}

/// `semget(key, nsems, IPC_CREAT | IPC_EXCL | perm)`: a new set of `nsems`
/// semaphores, whose values are 0 until [`sem_setval`]. (`semget(key, 1,
/// …)`, what Qt calls, opens a set of any size; operations use semaphore 0.)
pub(crate) fn sem_create(key: Key, nsems: i32, perm: u32) -> io::Result<SemId> {
    // SAFETY: semget takes plain values.
    cvt(unsafe { libc::semget(key.0, nsems, libc::IPC_CREAT | libc::IPC_EXCL | perm as libc::c_int) }).map(SemId)
}

/// `semctl(id, 0, SETVAL, value)`.
pub(crate) fn sem_setval(id: SemId, value: i32) -> io::Result<()> {
    // SAFETY: SETVAL takes an int as its fourth (variadic) argument.
    cvt(unsafe { libc::semctl(id.0, 0, libc::SETVAL, value) }).map(drop)
}

/// `semctl(id, 0, GETVAL)`.
pub(crate) fn sem_getval(id: SemId) -> io::Result<i32> {
    // SAFETY: GETVAL takes no fourth argument.
    cvt(unsafe { libc::semctl(id.0, 0, libc::GETVAL) })
}

/// `semctl(id, 0, GETNCNT)`: processes waiting to decrement.
pub(crate) fn sem_getncnt(id: SemId) -> io::Result<i32> {
    // SAFETY: GETNCNT takes no fourth argument.
    cvt(unsafe { libc::semctl(id.0, 0, libc::GETNCNT) })
}

/// `semctl(id, 0, GETZCNT)`: processes waiting for zero.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // used by the inspector, which is Linux-only
pub(crate) fn sem_getzcnt(id: SemId) -> io::Result<i32> {
    // SAFETY: GETZCNT takes no fourth argument.
    cvt(unsafe { libc::semctl(id.0, 0, libc::GETZCNT) })
}

/// `semctl(id, 0, GETPID)`: the last process to operate on it.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // used by the Linux backends and the inspector
pub(crate) fn sem_getpid(id: SemId) -> io::Result<i32> {
    // SAFETY: GETPID takes no fourth argument.
    cvt(unsafe { libc::semctl(id.0, 0, libc::GETPID) })
}

/// The fields of `struct semid_ds` that qipc reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SemStat {
    pub(crate) key: Key,
    pub(crate) uid: u32,
    pub(crate) mode: u32,
    /// Time of the last `semop`; 0 if there was none.
    pub(crate) otime: i64,
    /// Time of creation or of the last `SETVAL`/`IPC_SET`.
    pub(crate) ctime: i64,
    /// The number of semaphores in the set.
    pub(crate) nsems: u64,
}

/// `semctl(id, 0, IPC_STAT)`.
pub(crate) fn sem_stat(id: SemId) -> io::Result<SemStat> {
    let mut ds = MaybeUninit::<libc::semid_ds>::zeroed();
    // SAFETY: IPC_STAT takes a pointer to a semid_ds as its fourth
    // argument; `ds` is writable memory of that size.
    cvt(unsafe { libc::semctl(id.0, 0, libc::IPC_STAT, ds.as_mut_ptr()) })?;
    // SAFETY: IPC_STAT succeeded and filled `ds` (zeroed before).
    let ds = unsafe { ds.assume_init() };
    Ok(SemStat {
        key: Key(ipc_key(&ds.sem_perm)),
        uid: ds.sem_perm.uid,
        mode: u32::from(ds.sem_perm.mode) & 0o777,
        #[allow(clippy::unnecessary_cast)] // time_t differs between platforms
        otime: ds.sem_otime as i64,
        #[allow(clippy::unnecessary_cast)] // time_t differs between platforms
        ctime: ds.sem_ctime as i64,
        #[allow(clippy::unnecessary_cast)] // the field's type differs between platforms
        nsems: ds.sem_nsems as u64,
    })
}

/// `semctl(id, 0, IPC_SET)` with a new group, keeping owner and mode.
pub(crate) fn sem_set_group(id: SemId, gid: u32) -> io::Result<()> {
    let mut ds = MaybeUninit::<libc::semid_ds>::zeroed();
    // SAFETY: as in sem_stat.
    cvt(unsafe { libc::semctl(id.0, 0, libc::IPC_STAT, ds.as_mut_ptr()) })?;
    // SAFETY: IPC_STAT filled `ds`.
    let mut ds = unsafe { ds.assume_init() };
    ds.sem_perm.gid = gid;
    // SAFETY: IPC_SET takes a pointer to a valid semid_ds (it reads uid,
    // gid and mode) as its fourth argument.
    cvt(unsafe { libc::semctl(id.0, 0, libc::IPC_SET, &mut ds as *mut libc::semid_ds) }).map(drop)
}

/// `semctl(id, 0, IPC_RMID)`: waiters wake with `EIDRM`.
pub(crate) fn sem_remove(id: SemId) -> io::Result<()> {
    // SAFETY: IPC_RMID takes no fourth argument.
    cvt(unsafe { libc::semctl(id.0, 0, libc::IPC_RMID) }).map(drop)
}

/// The key an `ipc_perm` records (glibc calls the field `__key`, Apple `_key`).
fn ipc_key(perm: &libc::ipc_perm) -> libc::key_t {
    #[cfg(target_vendor = "apple")]
    {
        perm._key
    }
    #[cfg(not(target_vendor = "apple"))]
    {
        perm.__key
    }
}

/// One `semop` on semaphore 0, adding `delta`, with `SEM_UNDO` if `undo`.
/// Waits until `deadline` (with `semtimedop` on Linux; elsewhere, which has
/// no `semtimedop`, by polling with `IPC_NOWAIT` in sleeps of 1 to 10 ms),
/// retrying `EINTR` with the time left. Returns `Ok(false)` if the deadline
/// passed first.
///
/// The uncontended case, which every lock and unlock takes, is one inline
/// `semop`, as short as Qt's; waiting and time-outs live in a cold function.
#[inline]
pub(crate) fn semop(id: SemId, delta: i16, undo: bool, deadline: Deadline) -> io::Result<bool> {
    if deadline == Deadline::Never {
        let flags = if undo { libc::SEM_UNDO as libc::c_short } else { 0 };
        let mut op = libc::sembuf { sem_num: 0, sem_op: delta, sem_flg: flags };
        // SAFETY: `op` is valid for the duration of the call.
        if unsafe { libc::semop(id.0, &mut op, 1) } == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
    semop_slow(id, delta, undo, deadline)
}

#[cold]
#[inline(never)]
fn semop_slow(id: SemId, delta: i16, undo: bool, deadline: Deadline) -> io::Result<bool> {
    let mut flags = if undo { libc::SEM_UNDO as libc::c_short } else { 0 };
    if deadline == Deadline::Now {
        flags |= libc::IPC_NOWAIT as libc::c_short;
    }
    #[cfg(not(target_os = "linux"))]
    let mut slept = std::time::Duration::ZERO;
    loop {
        let mut op = libc::sembuf { sem_num: 0, sem_op: delta, sem_flg: flags };
        let rc = match deadline.remaining() {
            #[cfg(target_os = "linux")]
            Some(left) if deadline != Deadline::Now => {
                let ts = super::timespec(left);
                // SAFETY: `op` and `ts` are valid for the duration of the
                // call; the libc crate has no semtimedop wrapper, so the
                // system call is made directly with its documented arguments.
                unsafe {
                    libc::syscall(libc::SYS_semtimedop, id.0, &mut op as *mut libc::sembuf, 1usize, &ts) as libc::c_int
                }
            }
            #[cfg(not(target_os = "linux"))]
            Some(_) if deadline != Deadline::Now => {
                op.sem_flg |= libc::IPC_NOWAIT as libc::c_short;
                // SAFETY: `op` is valid for the duration of the call.
                match unsafe { libc::semop(id.0, &mut op, 1) } {
                    0 => 0,
                    _ if io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN) => {
                        if deadline.passed() {
                            return Ok(false);
                        }
                        super::poll_pause(deadline, &mut slept);
                        continue;
                    }
                    rc => rc,
                }
            }
            // SAFETY: `op` is valid for the duration of the call.
            _ => unsafe { libc::semop(id.0, &mut op, 1) },
        };
        if rc == 0 {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::unix::{FileId, FileType};

    #[test]
    fn key_of_file_matches_libc_ftok() {
        let path = std::env::temp_dir().join(format!("qipc-unit-ftok-{}", std::process::id()));
        std::fs::write(&path, b"").unwrap();
        let p = path.to_str().unwrap();
        let st = crate::sys::unix::stat(p).unwrap();
        let c = std::ffi::CString::new(p).unwrap();
        for project in [0x51u8, 1, 0xff] {
            // SAFETY: `c` is a valid path.
            let expected = unsafe { libc::ftok(c.as_ptr(), libc::c_int::from(project)) };
            assert_eq!(Key::of_file(&st, project), Key(expected));
        }
        std::fs::remove_file(&path).unwrap();
        let synthetic = FileStat {
            id: FileId { dev: 0xfe00, ino: 10_013_765 },
            file_type: FileType::Regular,
            size: 0,
            uid: 0,
            gid: 0,
            mode: 0o640,
            nlink: 1,
            mtime: 0,
        };
        // The example Qt's documentation gives: inode 10013765 on 0xfe00.
        assert_eq!(Key::of_file(&synthetic, 0x51), Key(0x5100_cc45));
    }

    #[test]
    fn semaphore_round_trip() {
        let key = Key(libc::IPC_PRIVATE);
        let id = sem_create(key, 1, 0o600).unwrap();
        assert_eq!(sem_getval(id).unwrap(), 0);
        assert!(!semop(id, -1, true, Deadline::Now).unwrap());
        sem_setval(id, 1).unwrap();
        assert!(semop(id, -1, true, Deadline::Never).unwrap());
        assert!(!semop(id, -1, true, Deadline::after(std::time::Duration::from_millis(20))).unwrap());
        assert!(semop(id, 1, true, Deadline::Never).unwrap());
        assert_ne!(sem_stat(id).unwrap().otime, 0);
        sem_remove(id).unwrap();
        assert_eq!(semop(id, -1, true, Deadline::Now).unwrap_err().raw_os_error(), Some(libc::EINVAL));
    }
}
