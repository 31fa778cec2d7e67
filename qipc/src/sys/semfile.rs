//! Named POSIX semaphores as glibc lays them out, mapped by qipc itself.
//!
//! glibc keeps a named semaphore in the file `/dev/shm/sem.<name>`: 32
//! bytes holding a `sem_t`, which every process maps and operates on with
//! atomic instructions and futexes (`sem_open` creates the file under a
//! temporary name, initialises it and publishes it with `link`). A Qt
//! process uses exactly that. qipc opens and maps the same file itself
//! instead of calling `sem_open`, which gives it three things `sem_open`
//! hides:
//!
//! - the file's **identity** (device and inode), so that "is the name still
//!   this semaphore?" can be answered, and a name is only ever removed after
//!   checking that it still refers to the object found unused;
//! - a descriptor for the **write-lease probe** ("has anybody else got it
//!   open?");
//! - room for a **robust gate**: a semaphore file that qipc creates is 128
//!   bytes. The first 32 are the `sem_t`, byte for byte what `sem_open`
//!   writes, so Qt uses it unchanged (glibc maps only those 32 bytes); then a
//!   header and a process-shared, robust pthread mutex.
//!
//! # The lock protocol on a gated file
//!
//! qipc's lock is the gate, then the token:
//!
//! 1. lock the gate (the robust mutex): only one qipc thread on the machine
//!    is past this point; if the previous gate holder died, the kernel says
//!    so (`EOWNERDEAD`);
//! 2. take the token from the `sem_t`, in one atomic operation that also
//!    sets the **held** bit (bit 63 of the 64-bit `sem_t` word); while
//!    waiting for a token, the **waiting** bit (bit 62) stands in for glibc's
//!    waiter count, so that a Qt process's `sem_post` wakes us;
//! 3. unlock: give the token back and clear the held bit in one atomic
//!    operation, then unlock the gate.
//!
//! Qt processes take the token with `sem_wait`, which never looks at the
//! high bits (glibc keeps its waiter count there and only tests it for being
//! non-zero), so qipc and Qt exclude each other on the token while qipc
//! processes also exclude each other on the gate.
//!
//! When a qipc holder is killed, the gate's next locker learns it from
//! `EOWNERDEAD`; the held bit says whether the dead process had the token
//! (the token and the bit change together, so there is no moment at which
//! they disagree). If it had, the new gate holder gives the token back, so
//! the lock is free again, and reports that the previous holder died. A
//! killed waiter's waiting bit is cleared the same way. A Qt holder that dies
//! is not recovered (Qt's semaphore has no owner); nor is any holder of a
//! semaphore that Qt created (32 bytes, no gate).
//!
//! The layout assumptions hold for glibc on 64-bit targets (glibc's
//! `struct new_sem` with 64-bit atomics: the value in the low 32 bits of the
//! first word, the number of waiters in the high 32 bits, then `private`
//! set to 128 for a shared semaphore).

use std::{
    io,
    os::fd::{AsFd, BorrowedFd, OwnedFd},
    ptr::NonNull,
    sync::atomic::{AtomicU32, AtomicU64, Ordering},
    time::Duration,
};

use super::{
    unix::{self, cvt, Create, FileId, FileType, OpenHow},
    Deadline,
};

/// The directory glibc keeps named semaphores and shared memory objects in.
pub(crate) const SHM_DIR: &str = "/dev/shm";

/// `sizeof(sem_t)`: what glibc writes and maps.
const SEM_SIZE: usize = 32;
/// The size of a semaphore file qipc creates with a gate.
const GATED_SIZE: usize = 128;
const HEADER_OFFSET: usize = 32;
const GATE_OFFSET: usize = 64;
/// Marks a gated file: "qipc lock, glibc layout, version 1".
const MAGIC: [u8; 8] = *b"qipcLKg1";

const VALUE_MASK: u64 = 0xffff_ffff;
const ONE_WAITER: u64 = 1 << 32;
/// Set while a qipc gate holder has the token.
const HELD: u64 = 1 << 63;
/// Set while a qipc gate holder waits for the token.
const WAITING: u64 = 1 << 62;
/// glibc's `SEM_VALUE_MAX`.
const VALUE_MAX: u64 = i32::MAX as u64;

/// The 32-bit word glibc's futex operations use: the value half of the
/// 64-bit word.
#[cfg(target_endian = "little")]
const VALUE_WORD: usize = 0;
#[cfg(target_endian = "big")]
const VALUE_WORD: usize = 1;

/// The number of processes waiting for a token, from the 64-bit word.
fn waiters(d: u64) -> u64 {
    ((d & !(HELD | WAITING)) >> 32) + u64::from(d & WAITING != 0)
}

/// The outcome of [`SemFile::lock`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Locked {
    /// The lock is held. `holder_died`: the previous holder was killed
    /// holding it, and its token was given back.
    Yes { holder_died: bool },
    /// The deadline passed first.
    TimedOut,
}

/// A mapped named semaphore file.
#[derive(Debug)]
pub(crate) struct SemFile {
    fd: OwnedFd,
    base: NonNull<u8>,
    map_len: usize,
    gated: bool,
    id: FileId,
}

// SAFETY: the mapping is shared memory designed for concurrent use by many
// processes; all access to it is atomic (the sem_t word) or through the
// process-shared pthread mutex, both of which are thread-safe.
unsafe impl Send for SemFile {}
// SAFETY: as above.
unsafe impl Sync for SemFile {}

/// The file glibc uses for semaphore `name`: `/dev/shm/sem.<name>` with
/// leading slashes removed.
pub(crate) fn path_of(name: &str) -> String {
    format!("{SHM_DIR}/sem.{}", name.trim_start_matches('/'))
}

impl SemFile {
    /// Opens and maps an existing semaphore file (`ENOENT` if missing,
    /// `EINVAL` if it is not one).
    pub(crate) fn open(path: &str) -> io::Result<SemFile> {
        let fd = unix::open(path, OpenHow { write: true, create: Create::No, mode: 0, no_follow: true })?;
        let st = unix::fstat(fd.as_fd())?;
        if st.file_type != FileType::Regular || st.size < SEM_SIZE as u64 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let map_len = if st.size >= GATED_SIZE as u64 { GATED_SIZE } else { SEM_SIZE };
        let base = map(fd.as_fd(), map_len)?;
        let mut sem = SemFile { fd, base, map_len, gated: false, id: st.id };
        sem.gated = map_len == GATED_SIZE && sem.header_ok();
        Ok(sem)
    }

    /// Creates the semaphore file at `path` with `value`, fully initialised
    /// before it gets its name, with a gate if `gated`. Returns `Ok(None)` if
    /// the name exists already (open it instead).
    ///
    /// The file is written under a temporary name in the same directory
    /// (`.qipc-tmp.<pid>.<n>`, which `qipc gc` removes if its creator was
    /// killed before finishing) and published with `link`, as glibc does,
    /// so nobody ever sees a half-made semaphore. Its mode is `mode` exactly,
    /// or by default 0600 less the umask, as `sem_open(…, 0600)` gives.
    pub(crate) fn create(
        path: &str,
        value: u32,
        mode: Option<u32>,
        gid: Option<u32>,
        gated: bool,
    ) -> io::Result<Option<SemFile>> {
        if u64::from(value) > VALUE_MAX {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let dir = path.rsplit_once('/').map_or(SHM_DIR, |(d, _)| d);
        let temp = temp_name(dir);
        let fd = unix::open(&temp, OpenHow { write: true, create: Create::Exclusive, mode: 0o600, no_follow: true })?;
        let result = SemFile::init_new(fd, value, mode, gid, gated);
        let published = result.and_then(|sem| match unix::link(&temp, path) {
            Ok(()) => Ok(Some(sem)),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(None),
            Err(e) => Err(e),
        });
        // The temporary name goes in every case; the file lives on under
        // its final name if the link succeeded.
        let _ = unix::unlink(&temp);
        published
    }

    /// Sizes, maps and initialises a freshly created (still unnamed) file.
    fn init_new(fd: OwnedFd, value: u32, mode: Option<u32>, gid: Option<u32>, gated: bool) -> io::Result<SemFile> {
        if let Some(mode) = mode {
            unix::fchmod(fd.as_fd(), mode)?;
        }
        if let Some(gid) = gid {
            unix::fchgrp(fd.as_fd(), gid)?;
        }
        let map_len = if gated { GATED_SIZE } else { SEM_SIZE };
        unix::ftruncate(fd.as_fd(), map_len as u64)?;
        let st = unix::fstat(fd.as_fd())?;
        let base = map(fd.as_fd(), map_len)?;
        let sem = SemFile { fd, base, map_len, gated, id: st.id };
        sem.init(value)?;
        Ok(sem)
    }

    /// Writes the initial `sem_t` (and the gate) into a fresh file.
    fn init(&self, value: u32) -> io::Result<()> {
        // SAFETY: `base` is a live, writable mapping of at least 32 bytes,
        // suitably aligned (page-aligned) for a sem_t, and nobody else can
        // see the file yet (it only has its temporary name, opened
        // O_EXCL by us). sem_init with pshared=1 writes exactly the bytes
        // glibc's sem_open writes.
        cvt(unsafe { libc::sem_init(self.base.as_ptr().cast(), 1, value) })?;
        if !self.gated {
            return Ok(());
        }
        // SAFETY: the header lies inside the mapping (32..48 < 128) and the
        // file is still private to us.
        unsafe {
            let header = self.base.as_ptr().add(HEADER_OFFSET);
            std::ptr::copy_nonoverlapping(MAGIC.as_ptr(), header, MAGIC.len());
            header.add(8).cast::<u32>().write(std::mem::size_of::<libc::pthread_mutex_t>() as u32);
        }
        let mut attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: `attr` is initialised by pthread_mutexattr_init before any
        // use and destroyed once; the mutex lies inside the mapping at a
        // 64-byte aligned offset, with room for pthread_mutex_t (checked by
        // the size assertion below), and is initialised before anyone can
        // see the file.
        unsafe {
            cvt_pthread(libc::pthread_mutexattr_init(attr.as_mut_ptr()))?;
            let a = attr.as_mut_ptr();
            let set = cvt_pthread(libc::pthread_mutexattr_setpshared(a, libc::PTHREAD_PROCESS_SHARED))
                .and_then(|_| cvt_pthread(libc::pthread_mutexattr_setrobust(a, libc::PTHREAD_MUTEX_ROBUST)))
                .and_then(|_| cvt_pthread(libc::pthread_mutexattr_settype(a, libc::PTHREAD_MUTEX_ERRORCHECK)))
                .and_then(|_| cvt_pthread(libc::pthread_mutex_init(self.gate(), a)));
            libc::pthread_mutexattr_destroy(a);
            set
        }
    }

    fn header_ok(&self) -> bool {
        let mut magic = [0u8; 8];
        // SAFETY: the header (32..44) lies inside the 128-byte mapping;
        // reading bytes another process wrote once, before publishing.
        let size = unsafe {
            let header = self.base.as_ptr().add(HEADER_OFFSET);
            std::ptr::copy_nonoverlapping(header, magic.as_mut_ptr(), 8);
            header.add(8).cast::<u32>().read()
        };
        magic == MAGIC && size as usize == std::mem::size_of::<libc::pthread_mutex_t>()
    }

    /// The file's identity.
    #[cfg(test)]
    pub(crate) fn id(&self) -> FileId {
        self.id
    }

    /// True if the semaphore has qipc's robust gate.
    #[cfg(test)]
    pub(crate) fn is_gated(&self) -> bool {
        self.gated
    }

    /// True if `path` still names this semaphore.
    pub(crate) fn is_named(&self, path: &str) -> io::Result<bool> {
        match unix::lstat(path) {
            Ok(st) => Ok(st.id == self.id),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes the name `path` if it still names this semaphore; returns
    /// whether it did. Processes that have the semaphore open keep it.
    pub(crate) fn unlink_if_named(&self, path: &str) -> io::Result<bool> {
        if !self.is_named(path)? {
            return Ok(false);
        }
        match unix::unlink(path) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether another open file description (another process, or a Qt
    /// object that has it `sem_open`ed) refers to this semaphore.
    pub(crate) fn others_have_open(&self) -> io::Result<bool> {
        unix::others_have_open(self.fd.as_fd())
    }

    fn word(&self) -> &AtomicU64 {
        // SAFETY: the first 8 bytes of the mapping are the sem_t's 64-bit
        // word, page-aligned, live as long as `self`; every process accesses
        // it only with atomic operations.
        unsafe { &*self.base.as_ptr().cast::<AtomicU64>() }
    }

    fn futex(&self) -> *const AtomicU32 {
        // SAFETY: the value half of the word lies inside the mapping.
        unsafe { self.base.as_ptr().cast::<AtomicU32>().add(VALUE_WORD) }
    }

    fn gate(&self) -> *mut libc::pthread_mutex_t {
        // SAFETY: only called on gated files, whose mapping is 128 bytes;
        // the mutex starts at byte 64.
        unsafe { self.base.as_ptr().add(GATE_OFFSET).cast() }
    }

    /// The semaphore's value.
    pub(crate) fn value(&self) -> i32 {
        (self.word().load(Ordering::Relaxed) & VALUE_MASK) as i32
    }

    /// The number of processes waiting for a token.
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> u64 {
        waiters(self.word().load(Ordering::Relaxed))
    }

    /// True if a qipc holder has the token (gated files only).
    #[cfg(test)]
    pub(crate) fn held_by_qipc(&self) -> bool {
        self.word().load(Ordering::Relaxed) & HELD != 0
    }

    /// Takes the lock: the gate, then the token (see the module docs); on a
    /// file without a gate, only the token.
    #[inline]
    pub(crate) fn lock(&self, deadline: Deadline) -> io::Result<Locked> {
        if !self.gated {
            return Ok(if self.take(false, deadline)? { Locked::Yes { holder_died: false } } else { Locked::TimedOut });
        }
        let holder_died = match self.lock_gate(deadline)? {
            Some(died) => died,
            None => return Ok(Locked::TimedOut),
        };
        match self.take(true, deadline) {
            Ok(true) => Ok(Locked::Yes { holder_died }),
            Ok(false) => {
                self.unlock_gate()?;
                Ok(Locked::TimedOut)
            }
            Err(e) => {
                let _ = self.unlock_gate();
                Err(e)
            }
        }
    }

    /// Releases what [`lock`](SemFile::lock) took, on the thread that took
    /// it.
    #[inline]
    pub(crate) fn unlock(&self) -> io::Result<()> {
        if !self.gated {
            return self.give(1, false);
        }
        let given = self.give(1, true);
        let unlocked = self.unlock_gate();
        given.and(unlocked)
    }

    /// Takes one token (`sem_wait`), without the gate.
    pub(crate) fn acquire(&self, deadline: Deadline) -> io::Result<bool> {
        self.take(false, deadline)
    }

    /// Adds `n` tokens at once (`sem_post` n times, atomically): `EOVERFLOW`
    /// if the value would pass `i32::MAX`, in which case nothing changes.
    pub(crate) fn release(&self, n: u32) -> io::Result<()> {
        self.give(u64::from(n), false)
    }

    /// Locks the gate; `Some(holder_died)` when held, `None` on time-out.
    fn lock_gate(&self, deadline: Deadline) -> io::Result<Option<bool>> {
        let rc = match deadline {
            // SAFETY: the gate is an initialised process-shared mutex inside
            // our live mapping.
            Deadline::Never => unsafe { libc::pthread_mutex_lock(self.gate()) },
            // SAFETY: as above.
            Deadline::Now => unsafe { libc::pthread_mutex_trylock(self.gate()) },
            Deadline::At(_) => {
                let ts = realtime_after(deadline.remaining().unwrap_or_default());
                // SAFETY: as above; `ts` is valid for the call.
                unsafe { libc::pthread_mutex_timedlock(self.gate(), &ts) }
            }
        };
        match rc {
            0 => Ok(Some(false)),
            libc::EOWNERDEAD => {
                let holder_died = self.recover();
                // SAFETY: we hold the gate after EOWNERDEAD; marking it
                // consistent makes it usable again.
                cvt_pthread(unsafe { libc::pthread_mutex_consistent(self.gate()) })?;
                Ok(Some(holder_died))
            }
            libc::EBUSY | libc::ETIMEDOUT => Ok(None),
            // This thread holds the gate through another handle: busy for a
            // bounded wait; for an unbounded one, waiting would never end.
            libc::EDEADLK if deadline != Deadline::Never => Ok(None),
            e => Err(io::Error::from_raw_os_error(e)),
        }
    }

    fn unlock_gate(&self) -> io::Result<()> {
        // SAFETY: the gate is an initialised mutex in our mapping; unlocking
        // a mutex this thread does not hold fails with EPERM (error-checking
        // robust mutex) instead of misbehaving.
        cvt_pthread(unsafe { libc::pthread_mutex_unlock(self.gate()) })
    }

    /// After `EOWNERDEAD`: undoes what the dead gate holder left in the
    /// `sem_t` word. Returns true if it held the token.
    #[cold]
    fn recover(&self) -> bool {
        let word = self.word();
        let d = word.load(Ordering::Acquire);
        if d & WAITING != 0 {
            word.fetch_and(!WAITING, Ordering::Relaxed);
        }
        if d & HELD != 0 {
            // Only the gate holder (now us) sets or clears HELD, so this
            // gives back exactly the token the dead holder took.
            let _ = self.give(1, true);
            return true;
        }
        false
    }

    /// Takes one token, setting HELD if `gated`; waits until `deadline`.
    #[inline]
    fn take(&self, gated: bool, deadline: Deadline) -> io::Result<bool> {
        let held = if gated { HELD } else { 0 };
        let word = self.word();
        let mut d = word.load(Ordering::Relaxed);
        while d & VALUE_MASK > 0 {
            match word.compare_exchange_weak(d, d - 1 + held, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return Ok(true),
                Err(now) => d = now,
            }
        }
        if deadline == Deadline::Now {
            return Ok(false);
        }
        self.take_slow(gated, deadline)
    }

    #[cold]
    #[inline(never)]
    fn take_slow(&self, gated: bool, deadline: Deadline) -> io::Result<bool> {
        let word = self.word();
        let (held, registration) = if gated { (HELD, WAITING) } else { (0, ONE_WAITER) };
        if gated {
            word.fetch_or(WAITING, Ordering::Relaxed);
        } else {
            word.fetch_add(ONE_WAITER, Ordering::Relaxed);
        }
        let unregister = || {
            if gated {
                word.fetch_and(!WAITING, Ordering::Relaxed);
            } else {
                word.fetch_sub(ONE_WAITER, Ordering::Relaxed);
            }
        };
        loop {
            let d = word.load(Ordering::Relaxed);
            if d & VALUE_MASK == 0 {
                let left = deadline.remaining();
                if left == Some(Duration::ZERO) {
                    unregister();
                    return Ok(false);
                }
                if let Err(e) = futex_wait(self.futex(), left) {
                    match e.raw_os_error() {
                        Some(libc::EAGAIN) | Some(libc::EINTR) | Some(libc::ETIMEDOUT) => continue,
                        _ => {
                            unregister();
                            return Err(e);
                        }
                    }
                }
                continue;
            }
            // Take a token and stop being a waiter in one step.
            let next = d - 1 - registration + held;
            if word.compare_exchange_weak(d, next, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                return Ok(true);
            }
        }
    }

    /// Adds `n` tokens, clearing HELD if `clear_held`, and wakes waiters.
    #[inline]
    fn give(&self, n: u64, clear_held: bool) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        let word = self.word();
        let mut d = word.load(Ordering::Relaxed);
        loop {
            if (d & VALUE_MASK) + n > VALUE_MAX {
                return Err(io::Error::from_raw_os_error(libc::EOVERFLOW));
            }
            let mut next = d + n;
            if clear_held {
                next &= !HELD;
            }
            match word.compare_exchange_weak(d, next, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => d = now,
            }
        }
        if waiters(d) > 0 {
            futex_wake(self.futex(), n.min(i32::MAX as u64) as i32);
        }
        Ok(())
    }
}

impl Drop for SemFile {
    fn drop(&mut self) {
        // SAFETY: `base`/`map_len` are the mapping made in open/create,
        // unmapped exactly once, here; the descriptor closes with `fd`.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.map_len) };
    }
}

fn map(fd: BorrowedFd<'_>, len: usize) -> io::Result<NonNull<u8>> {
    use std::os::fd::AsRawFd;
    // SAFETY: a null address lets the kernel choose; `fd` is open.
    let p = unsafe {
        libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd.as_raw_fd(), 0)
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(p.cast()).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
}

fn temp_name(dir: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{dir}/{TEMP_PREFIX}{}.{n}.{nanos}", std::process::id())
}

/// The prefix of the temporary names [`SemFile::create`] uses, followed by
/// `<pid>.`; `qipc gc` removes such files whose process is gone.
pub(crate) const TEMP_PREFIX: &str = ".qipc-tmp.";

fn cvt_pthread(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// `futex(FUTEX_WAIT)` on a shared (not process-private) futex, as glibc
/// uses for process-shared semaphores; `timeout` is relative.
fn futex_wait(addr: *const AtomicU32, timeout: Option<Duration>) -> io::Result<()> {
    let ts = timeout.map(super::timespec);
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `addr` points to a live 32-bit word of our mapping; `ts_ptr`
    // is null or valid for the call. FUTEX_WAIT only reads the word.
    let rc = unsafe { libc::syscall(libc::SYS_futex, addr, libc::FUTEX_WAIT, 0u32, ts_ptr, 0usize, 0u32) };
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `futex(FUTEX_WAKE, n)` on a shared futex.
fn futex_wake(addr: *const AtomicU32, n: i32) {
    // SAFETY: `addr` points to a live 32-bit word of our mapping.
    unsafe { libc::syscall(libc::SYS_futex, addr, libc::FUTEX_WAKE, n, 0usize, 0usize, 0u32) };
}

/// `CLOCK_REALTIME` now plus `d`, for `pthread_mutex_timedlock`.
fn realtime_after(d: Duration) -> libc::timespec {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
    let nanos = now.tv_nsec as u64 + u64::from(d.subsec_nanos());
    let secs = (now.tv_sec as u64).saturating_add(d.as_secs()).saturating_add(nanos / 1_000_000_000);
    libc::timespec {
        tv_sec: libc::time_t::try_from(secs).unwrap_or(libc::time_t::MAX),
        tv_nsec: (nanos % 1_000_000_000) as libc::c_long,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(tag: &str) -> String {
        path_of(&format!("/qipc-unit-semfile-{tag}-{}", std::process::id()))
    }

    #[test]
    fn created_bytes_are_glibcs() {
        let p = path("bytes");
        let sem = SemFile::create(&p, 1, None, None, false).unwrap().unwrap();
        assert!(!sem.is_gated());
        let bytes = std::fs::read(&p).unwrap();
        let mut expected = [0u8; 32];
        expected[0] = 1;
        expected[8] = 0x80;
        assert_eq!(bytes, expected);
        assert!(SemFile::create(&p, 1, None, None, false).unwrap().is_none(), "the name exists");
        assert!(sem.unlink_if_named(&p).unwrap());
        assert!(!sem.unlink_if_named(&p).unwrap());
    }

    #[test]
    fn glibc_sem_open_and_qipc_exclude_each_other() {
        let name = format!("/qipc-unit-semfile-glibc-{}", std::process::id());
        let p = path_of(&name);
        let sem = SemFile::create(&p, 1, None, None, true).unwrap().unwrap();
        assert!(sem.is_gated());
        let c = std::ffi::CString::new(name).unwrap();
        // SAFETY: `c` is a valid name; the semaphore exists, so no variadic
        // arguments are read.
        let raw = unsafe { libc::sem_open(c.as_ptr(), 0) };
        assert_ne!(raw, libc::SEM_FAILED);
        assert_eq!(sem.lock(Deadline::Now).unwrap(), Locked::Yes { holder_died: false });
        assert!(sem.held_by_qipc());
        // SAFETY: `raw` is a live semaphore handle.
        assert_eq!(unsafe { libc::sem_trywait(raw) }, -1, "glibc got the token qipc holds");
        sem.unlock().unwrap();
        // SAFETY: as above.
        assert_eq!(unsafe { libc::sem_trywait(raw) }, 0);
        assert_eq!(sem.lock(Deadline::after(Duration::from_millis(30))).unwrap(), Locked::TimedOut);
        // SAFETY: as above.
        assert_eq!(unsafe { libc::sem_post(raw) }, 0);
        assert!(matches!(sem.lock(Deadline::Never).unwrap(), Locked::Yes { .. }));
        sem.unlock().unwrap();
        assert_eq!(sem.value(), 1);
        // SAFETY: `raw` came from sem_open and is closed once.
        unsafe { libc::sem_close(raw) };
        assert!(sem.unlink_if_named(&p).unwrap());
    }

    #[test]
    fn release_is_atomic_and_bounded() {
        let p = path("release");
        let sem = SemFile::create(&p, 0, None, None, false).unwrap().unwrap();
        sem.release(5).unwrap();
        assert_eq!(sem.value(), 5);
        assert_eq!(sem.release(u32::MAX).unwrap_err().raw_os_error(), Some(libc::EOVERFLOW));
        assert_eq!(sem.value(), 5);
        assert!(sem.acquire(Deadline::Now).unwrap());
        assert_eq!(sem.value(), 4);
        sem.unlink_if_named(&p).unwrap();
    }

    #[test]
    fn waiting_bit_is_cleared_on_time_out() {
        let p = path("wait");
        let sem = SemFile::create(&p, 1, None, None, true).unwrap().unwrap();
        let other = SemFile::open(&p).unwrap();
        assert_eq!(other.id(), sem.id());
        assert!(matches!(sem.lock(Deadline::Never).unwrap(), Locked::Yes { .. }));
        // Another thread's gate attempt times out (the gate is held).
        let waited = std::thread::scope(|s| {
            s.spawn(|| other.lock(Deadline::after(Duration::from_millis(30))).unwrap()).join().unwrap()
        });
        assert_eq!(waited, Locked::TimedOut);
        sem.unlock().unwrap();
        assert_eq!(sem.waiting(), 0);
        sem.unlink_if_named(&p).unwrap();
    }
}

/// What the bytes of a semaphore file say, for the inspector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SemState {
    pub(crate) value: i32,
    pub(crate) waiters: u64,
    /// A qipc holder has the token (gated files).
    pub(crate) held_by_qipc: bool,
    /// The file has qipc's robust gate.
    pub(crate) gated: bool,
}

/// Decodes the first bytes of a semaphore file (at least the 32 of a
/// `sem_t`; 128 to see the gate); `None` if it is too short.
pub(crate) fn decode(bytes: &[u8]) -> Option<SemState> {
    let word = u64::from_ne_bytes(bytes.get(..8)?.try_into().ok()?);
    if bytes.len() < SEM_SIZE {
        return None;
    }
    let gated = bytes.len() >= GATED_SIZE
        && bytes[HEADER_OFFSET..HEADER_OFFSET + 8] == MAGIC
        && u32::from_ne_bytes(bytes[HEADER_OFFSET + 8..HEADER_OFFSET + 12].try_into().ok()?) as usize
            == std::mem::size_of::<libc::pthread_mutex_t>();
    Some(SemState {
        value: (word & VALUE_MASK) as i32,
        waiters: waiters(word),
        held_by_qipc: gated && word & HELD != 0,
        gated,
    })
}
