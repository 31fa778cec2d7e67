//! Every libc call of the harness, as small safe wrappers that return
//! `io::Result` (nothing here panics on a syscall failure).
//!
//! qipc itself is only used through its public API (see `worker.rs`); this
//! module is what the harness needs around it: a shared counter board,
//! signals and timers, fork/wait, and read-only System V queries used to
//! judge what qipc did.

#![allow(unsafe_code)]

use std::{
    ffi::CString,
    fs::OpenOptions,
    io,
    os::unix::{ffi::OsStrExt, io::AsRawFd},
    path::Path,
    ptr::NonNull,
    sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    time::Duration,
};

/// The `SHM_DEST` bit of `shm_perm.mode`: the segment was removed
/// (`IPC_RMID`) and is destroyed when its last process detaches.
/// (`<linux/shm.h>`; the libc crate does not export it.)
pub const SHM_DEST: u32 = 0o1000;

/// The ftok project id of every Qt (and qipc) System V key (`'Q'`).
pub const QT_FTOK_ID: i32 = 0x51;

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cstr(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
}

// ---- a file mapped MAP_SHARED: the board -------------------------------

/// A regular file mapped read-write and shared, used as the board through
/// which workers report their counts (it survives a SIGKILL of the writer).
/// Accesses go through atomics only, since other processes (including the
/// Python peers) write it concurrently.
#[derive(Debug)]
pub struct MappedFile {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is process-wide and only accessed through atomics.
unsafe impl Send for MappedFile {}
// SAFETY: as above; `&MappedFile` only hands out `&AtomicU64`/`&AtomicU32`.
unsafe impl Sync for MappedFile {}

impl MappedFile {
    /// Creates (or truncates) `path` with `len` zero bytes and maps it.
    pub fn create(path: &Path, len: usize) -> io::Result<MappedFile> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)?;
        file.set_len(len as u64)?;
        Self::map(&file, len)
    }

    /// Maps an existing board file of at least `len` bytes.
    pub fn open(path: &Path, len: usize) -> io::Result<MappedFile> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let actual = file.metadata()?.len();
        if actual < len as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {actual} bytes, expected {len}", path.display()),
            ));
        }
        Self::map(&file, len)
    }

    fn map(file: &std::fs::File, len: usize) -> io::Result<MappedFile> {
        // SAFETY: a fresh shared mapping of an open file descriptor; the
        // kernel chooses the address, so nothing existing is replaced. The
        // descriptor may be closed afterwards (the mapping keeps the file).
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(MappedFile { ptr, len })
    }

    /// The 64-bit word at byte offset `off` (8-aligned, in range).
    ///
    /// # Panics
    /// If `off` is misaligned or out of range: the board layout is a
    /// constant of this crate, so that is a bug in the harness.
    pub fn u64_at(&self, off: usize) -> &AtomicU64 {
        assert!(off % 8 == 0 && off + 8 <= self.len, "board offset {off} out of range");
        // SAFETY: in range and aligned (checked; the mapping is page
        // aligned); the memory lives as long as `self`, and AtomicU64 has the
        // size and alignment of u64. Other processes only change it with
        // plain aligned stores, which the atomic loads observe whole.
        unsafe { &*self.ptr.as_ptr().add(off).cast::<AtomicU64>() }
    }

    /// The 32-bit word at byte offset `off` (4-aligned, in range).
    ///
    /// # Panics
    /// As [`MappedFile::u64_at`].
    pub fn u32_at(&self, off: usize) -> &AtomicU32 {
        assert!(off % 4 == 0 && off + 4 <= self.len, "board offset {off} out of range");
        // SAFETY: as in u64_at, for a 4-byte aligned word.
        unsafe { &*self.ptr.as_ptr().add(off).cast::<AtomicU32>() }
    }
}

impl Drop for MappedFile {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`; no reference into
        // it outlives `self` (they borrow `self`).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

// ---- processes -----------------------------------------------------------

/// Sends `sig` to `pid`.
pub fn kill(pid: u32, sig: libc::c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid"))?;
    // SAFETY: kill(2) has no memory effects.
    cvt(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// Makes the calling process a child subreaper: orphaned descendants (the
/// children of a killed fork worker) are re-parented to it, so the
/// coordinator can find, kill and reap them.
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    cvt(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) }).map(drop)
}

/// Asks for SIGKILL when the parent dies. Called between fork and exec
/// (async-signal-safe: a single prctl), so children never outlive a
/// coordinator that was itself killed.
pub fn set_parent_death_kill() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    cvt(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) }).map(drop)
}

/// The parent's pid.
pub fn getppid() -> u32 {
    // SAFETY: getppid cannot fail.
    let p = unsafe { libc::getppid() };
    u32::try_from(p).unwrap_or(0)
}

/// The result of [`fork_single_threaded`].
#[derive(Debug)]
pub enum Forked {
    /// In the child.
    Child,
    /// In the parent, with the child's pid.
    Parent(u32),
}

/// fork(2), for a single-threaded process only: the child is then a full
/// copy that may keep using std (no lock can be held by a thread that does
/// not exist in the child). Fails with an error if the process has more
/// than one thread.
pub fn fork_single_threaded() -> io::Result<Forked> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let threads = status.lines().find_map(|l| l.strip_prefix("Threads:")).map(str::trim);
    if threads != Some("1") {
        return Err(io::Error::other(format!("fork needs a single-threaded process (Threads: {threads:?})")));
    }
    // SAFETY: the process has one thread (checked above, and nothing in the
    // worker starts threads), so the child inherits no lock held by another
    // thread and may run arbitrary code.
    let pid = cvt(unsafe { libc::fork() })?;
    Ok(if pid == 0 { Forked::Child } else { Forked::Parent(pid as u32) })
}

/// How a process ended, from waitpid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// exit(code)
    Exited(i32),
    /// killed by a signal
    Signaled(i32),
}

/// waitpid(pid) for a child that is not a `std::process::Child` (a forked
/// grandchild, or an orphan re-parented to us). `None` if it is still
/// running and `block` is false.
pub fn waitpid(pid: u32, block: bool) -> io::Result<Option<Ended>> {
    let mut status = 0;
    let flags = if block { 0 } else { libc::WNOHANG };
    loop {
        // SAFETY: waitpid writes the status into our local.
        let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, flags) };
        if r == -1 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if r == 0 {
            return Ok(None);
        }
        return Ok(Some(if libc::WIFSIGNALED(status) {
            Ended::Signaled(libc::WTERMSIG(status))
        } else {
            Ended::Exited(libc::WEXITSTATUS(status))
        }));
    }
}

/// Arms (or, with `None`, disarms) the real-time interval timer. SIGALRM's
/// default action ends the process, which is how a worker stuck inside a
/// qipc call that has no time-out (create, attach, detach, drop) ends: the
/// coordinator sees "killed by SIGALRM" and counts a hang.
pub fn set_alarm(after: Option<Duration>) -> io::Result<()> {
    let d = after.unwrap_or(Duration::ZERO);
    let value = libc::timeval {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_usec: libc::suseconds_t::from(d.subsec_micros() as i32),
    };
    let timer = libc::itimerval { it_interval: libc::timeval { tv_sec: 0, tv_usec: 0 }, it_value: value };
    // SAFETY: setitimer reads our local struct; the old value is not wanted.
    cvt(unsafe { libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()) }).map(drop)
}

/// Ends the process now, without unwinding, destructors or atexit handlers
/// (a forked child must not run the parent's clean-ups).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and has no preconditions.
    unsafe { libc::_exit(code) }
}

// ---- signals in the coordinator ------------------------------------------

static STOP_SIGNAL: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_sig: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP_SIGNAL.store(true, Ordering::SeqCst);
}

/// Installs handlers for SIGINT, SIGTERM and SIGHUP that only set a flag
/// ([`stop_requested`]), so the coordinator can kill its children and clean
/// up before it exits.
pub fn install_stop_handlers() -> io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction is valid (empty mask, no flags).
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: installs a handler that only stores to an atomic.
        cvt(unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) })?;
    }
    Ok(())
}

/// True once SIGINT, SIGTERM or SIGHUP arrived.
pub fn stop_requested() -> bool {
    STOP_SIGNAL.load(Ordering::SeqCst)
}

// ---- System V queries (read-only, plus removal of our own leftovers) -----

/// What IPC_STAT says about a System V segment.
#[derive(Debug, Clone, Copy)]
pub struct ShmStat {
    /// The key (0 = IPC_PRIVATE, which is also what a removed segment shows).
    pub key: i32,
    /// `shm_perm.mode`, including [`SHM_DEST`].
    pub mode: u32,
}

/// shmctl(id, IPC_STAT). EINVAL/EIDRM mean the segment is gone.
pub fn shm_stat(id: i32) -> io::Result<ShmStat> {
    let mut ds = std::mem::MaybeUninit::<libc::shmid_ds>::uninit();
    // SAFETY: IPC_STAT fills the shmid_ds we pass.
    cvt(unsafe { libc::shmctl(id, libc::IPC_STAT, ds.as_mut_ptr()) })?;
    // SAFETY: initialized by the successful IPC_STAT.
    let ds = unsafe { ds.assume_init() };
    Ok(ShmStat { key: ds.shm_perm.__key, mode: u32::from(ds.shm_perm.mode) })
}

/// shmctl(id, IPC_RMID).
pub fn shm_remove(id: i32) -> io::Result<()> {
    // SAFETY: IPC_RMID takes no buffer.
    cvt(unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) }).map(drop)
}

/// semctl(id, 0, IPC_RMID).
pub fn sem_remove(id: i32) -> io::Result<()> {
    // SAFETY: IPC_RMID takes no further argument.
    cvt(unsafe { libc::semctl(id, 0, libc::IPC_RMID) }).map(drop)
}

/// semctl(id, 0, GETPID): the pid of the last process that changed
/// semaphore 0 (semop, SETVAL, or the kernel's undo at its exit).
pub fn sem_last_pid(id: i32) -> io::Result<u32> {
    // SAFETY: GETPID takes no further argument.
    let pid = cvt(unsafe { libc::semctl(id, 0, libc::GETPID) })?;
    Ok(pid as u32)
}

/// ftok(path, QT_FTOK_ID), as Qt and qipc compute System V keys.
pub fn ftok(path: &Path) -> io::Result<i32> {
    let c = cstr(path)?;
    // SAFETY: a valid NUL-terminated path.
    let k = unsafe { libc::ftok(c.as_ptr(), QT_FTOK_ID) };
    if k == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(k)
    }
}

/// Makes a child started by `cmd` receive SIGKILL when the coordinator dies
/// (PR_SET_PDEATHSIG, set between fork and exec), so no storm process can
/// outlive a coordinator that was itself killed.
pub fn kill_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec; it makes one prctl
    // call, which is async-signal-safe, and allocates nothing (a failure is
    // an `io::Error` of the OS variant).
    unsafe {
        cmd.pre_exec(set_parent_death_kill);
    }
}
