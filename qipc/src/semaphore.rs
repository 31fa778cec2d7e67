//! [`SystemSemaphore`], the counterpart of `QSystemSemaphore`.

use std::{
    sync::atomic::{AtomicBool, AtomicI32, Ordering},
    time::Duration,
};

use crate::{
    error::{Error, ErrorKind, Result},
    key::{KeyType, NativeKey},
    sys::{
        posix::{self, NamedSem},
        sysv::{self, Wait},
    },
};

/// How a [`SystemSemaphore`] treats an existing semaphore, as
/// `QSystemSemaphore::AccessMode`.
///
/// # Example
/// ```
/// use qipc::SemaphoreMode;
/// assert_ne!(SemaphoreMode::Open, SemaphoreMode::Create);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(alias = "QSystemSemaphore::AccessMode")]
pub enum SemaphoreMode {
    /// Use the semaphore if it exists, keeping its count; create it with the
    /// initial value if it does not.
    Open,
    /// Take ownership: reset the count to the initial value (System V) or
    /// replace the semaphore with a new one (POSIX), as Qt does. The owner
    /// removes the semaphore when it is dropped. Use it to recover a
    /// semaphore left behind by a crash.
    Create,
}

/// A counting semaphore shared between processes by key, the counterpart of
/// `QSystemSemaphore`, and the lock behind [`SharedMemory::lock`](crate::SharedMemory::lock).
///
/// For a legacy key the semaphore is the one Qt uses for the same key, so a
/// Qt process and a qipc process can signal each other:
/// [`SystemSemaphore::new`] is `QSystemSemaphore(key, initial, mode)`.
///
/// - System V: `semget` on `ftok(<key file>, 'Q')`; every operation uses
///   `SEM_UNDO`, so a process that dies holding units gives them back.
/// - POSIX: a named semaphore (`sem_open`), in `/dev/shm/sem.<name>`. A
///   process that dies holding a unit does not give it back (there is no
///   undo); [`acquire_timeout`](SystemSemaphore::acquire_timeout) bounds the wait.
///
/// The owner (the process that created the semaphore, or opened it in
/// [`SemaphoreMode::Create`]) removes it when dropped; other processes that
/// still use it re-create it on their next System V operation, as in Qt.
///
/// Besides Qt's `acquire` and `release`, it offers
/// [`try_acquire`](SystemSemaphore::try_acquire) and
/// [`acquire_timeout`](SystemSemaphore::acquire_timeout).
///
/// # Example
/// ```
/// use qipc::{SemaphoreMode, SystemSemaphore};
/// # let key = format!("qipc-doc-sem-{}", std::process::id());
/// let sem = SystemSemaphore::new(&key, 1, SemaphoreMode::Create)?;
/// sem.acquire()?;                       // 1 -> 0
/// assert!(!sem.try_acquire()?);         // would block
/// sem.release(1)?;                      // 0 -> 1
/// assert!(sem.acquire_timeout(std::time::Duration::from_millis(10))?);
/// sem.release(1)?;
/// # Ok::<(), qipc::Error>(())
/// ```
#[derive(Debug)]
#[doc(alias = "QSystemSemaphore")]
pub struct SystemSemaphore {
    key: NativeKey,
    imp: Imp,
}

#[derive(Debug)]
enum Imp {
    SysV(SysvSem),
    Posix(PosixSem),
}

impl SystemSemaphore {
    /// Opens or creates the semaphore for a legacy key, as
    /// `QSystemSemaphore(key, initialValue, mode)` does on Linux: the native
    /// key is [`NativeKey::legacy_semaphore`]`(key, KeyType::SYSTEM_V)`.
    ///
    /// # Errors
    /// [`ErrorKind::KeyError`] for an empty or unusable key; the OS error
    /// mapped by Qt's table otherwise.
    ///
    /// # Example
    /// ```
    /// # let key = format!("qipc-doc-sem-new-{}", std::process::id());
    /// let sem = qipc::SystemSemaphore::new(&key, 0, qipc::SemaphoreMode::Create)?;
    /// assert_eq!(sem.native_key().legacy_key(), Some(key.as_str()));
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn new(key: &str, initial_value: i32, mode: SemaphoreMode) -> Result<SystemSemaphore> {
        SystemSemaphore::with_native_key(NativeKey::legacy_semaphore(key, KeyType::LEGACY_DEFAULT), initial_value, mode)
    }

    /// Opens or creates the semaphore with this native key, as
    /// `QSystemSemaphore(QNativeIpcKey, initialValue, mode)`.
    ///
    /// # Errors
    /// As [`SystemSemaphore::new`]; a Windows key is a
    /// [`ErrorKind::KeyError`].
    ///
    /// # Example
    /// ```
    /// # let name = format!("/qipc-doc-sem-native-{}", std::process::id());
    /// let key = qipc::NativeKey::posix(name);
    /// let sem = qipc::SystemSemaphore::with_native_key(key, 1, qipc::SemaphoreMode::Create)?;
    /// sem.acquire()?;
    /// sem.release(1)?;
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn with_native_key(key: NativeKey, initial_value: i32, mode: SemaphoreMode) -> Result<SystemSemaphore> {
        let imp = open_imp(&key, initial_value, mode, "SystemSemaphore::handle")?;
        Ok(SystemSemaphore { key, imp })
    }

    /// The native key.
    ///
    /// # Example
    /// ```
    /// use qipc::{KeyType, SemaphoreMode, SystemSemaphore};
    /// # let key = format!("qipc-doc-sem-native-key-{}", std::process::id());
    /// let sem = SystemSemaphore::new(&key, 1, SemaphoreMode::Create)?;
    /// assert_eq!(sem.native_key().key_type(), KeyType::SYSTEM_V);
    /// assert!(sem.native_key().native_key().contains("/qipc_systemsem_"));
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn native_key(&self) -> &NativeKey {
        &self.key
    }

    /// Takes one unit, waiting as long as it takes (`QSystemSemaphore::acquire`).
    ///
    /// # Errors
    /// [`ErrorKind::OutOfResources`] when the System V undo counter would
    /// overflow (see [`set_undo`](SystemSemaphore::set_undo)); the OS error
    /// otherwise.
    ///
    /// # Example
    /// ```
    /// # let key = format!("qipc-doc-sem-acq-{}", std::process::id());
    /// let sem = qipc::SystemSemaphore::new(&key, 1, qipc::SemaphoreMode::Create)?;
    /// sem.acquire()?;
    /// sem.release(1)?;
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn acquire(&self) -> Result<()> {
        self.imp.acquire(Wait::Block, "SystemSemaphore::acquire").map(drop)
    }

    /// Takes one unit if one is free now; `Ok(false)` if none is.
    ///
    /// # Errors
    /// As [`acquire`](SystemSemaphore::acquire).
    ///
    /// # Example
    /// ```
    /// # let key = format!("qipc-doc-sem-try-{}", std::process::id());
    /// let sem = qipc::SystemSemaphore::new(&key, 0, qipc::SemaphoreMode::Create)?;
    /// assert!(!sem.try_acquire()?);
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn try_acquire(&self) -> Result<bool> {
        self.imp.acquire(Wait::Now, "SystemSemaphore::try_acquire")
    }

    /// Takes one unit, waiting at most `timeout`; `Ok(false)` on time-out.
    ///
    /// # Errors
    /// As [`acquire`](SystemSemaphore::acquire).
    ///
    /// # Example
    /// ```
    /// # let key = format!("qipc-doc-sem-to-{}", std::process::id());
    /// let sem = qipc::SystemSemaphore::new(&key, 0, qipc::SemaphoreMode::Create)?;
    /// assert!(!sem.acquire_timeout(std::time::Duration::from_millis(5))?);
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
        self.imp.acquire(Wait::Timeout(timeout), "SystemSemaphore::acquire_timeout")
    }

    /// Gives back `n` units (`QSystemSemaphore::release(n)`). `n == 0` does
    /// nothing.
    ///
    /// # Errors
    /// [`ErrorKind::Unknown`] for a negative `n` (Qt prints a warning and
    /// returns false); [`ErrorKind::OutOfResources`] if the count would
    /// exceed the kernel's maximum (32767 for System V).
    ///
    /// # Example
    /// ```
    /// # let key = format!("qipc-doc-sem-rel-{}", std::process::id());
    /// let sem = qipc::SystemSemaphore::new(&key, 0, qipc::SemaphoreMode::Create)?;
    /// sem.release(2)?;
    /// assert!(sem.try_acquire()? && sem.try_acquire()?);
    /// assert!(sem.release(-1).is_err());
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn release(&self, n: i32) -> Result<()> {
        const OP: &str = "SystemSemaphore::release";
        if n < 0 {
            return Err(Error::new(ErrorKind::Unknown, OP, format!("n is negative ({n})")));
        }
        if n == 0 {
            return Ok(());
        }
        self.imp.release(n, OP)
    }

    /// System V only: whether operations use `SEM_UNDO` (the default, as in
    /// Qt). With undo, the kernel gives back what a process holds when it
    /// dies, but a process that only releases (a producer) or only acquires
    /// fails with `OutOfResources` after 32767 operations, and its releases
    /// are undone when it exits. Turn undo off for signalling between a
    /// producer and a consumer. POSIX semaphores have no undo; this does
    /// nothing there.
    ///
    /// # Example
    /// ```
    /// # let key = format!("qipc-doc-sem-undo-{}", std::process::id());
    /// let mut sem = qipc::SystemSemaphore::new(&key, 0, qipc::SemaphoreMode::Create)?;
    /// sem.set_undo(false);
    /// for _ in 0..40_000 { sem.release(1)?; sem.acquire()?; }
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn set_undo(&mut self, undo: bool) {
        if let Imp::SysV(s) = &self.imp {
            s.undo.store(undo, Ordering::Relaxed);
        }
    }

    /// Internal: the semaphore for `SharedMemory`'s lock.
    pub(crate) fn for_lock(key: &NativeKey, mode: SemaphoreMode, op: &'static str) -> Result<SystemSemaphore> {
        let lock_key = key.lock_key();
        let imp = open_imp(&lock_key, 1, mode, op)?;
        if let Imp::SysV(s) = &imp {
            // A native System V key names one file for the segment and its
            // lock. Qt 6 lets the semaphore's owner delete that file while the
            // segment is in use (spec §7.3), which cuts off new attachers.
            // qipc leaves the file to the segment's last detacher.
            s.shares_key_file.store(lock_key == *key, Ordering::Relaxed);
        }
        Ok(SystemSemaphore { key: lock_key, imp })
    }

    #[inline]
    pub(crate) fn acquire_with(&self, wait: Wait, op: &'static str) -> Result<bool> {
        self.imp.acquire(wait, op)
    }

    #[inline]
    pub(crate) fn release_one(&self, op: &'static str) -> Result<()> {
        self.imp.release(1, op)
    }

    /// Marks this object as the owner, so that it removes the semaphore when
    /// dropped (what Qt's Create mode does once the segment is created).
    pub(crate) fn take_ownership(&self) {
        match &self.imp {
            Imp::SysV(s) => {
                s.created_sem.store(true, Ordering::Relaxed);
                s.created_file.store(true, Ordering::Relaxed);
            }
            Imp::Posix(p) => p.created.store(true, Ordering::Relaxed),
        }
    }

    /// Removes the semaphore now (POSIX: unlinks the name), whether or not
    /// this object owns it, and forgets ownership.
    pub(crate) fn remove_now(&self) {
        match &self.imp {
            Imp::SysV(s) => s.remove(),
            Imp::Posix(p) => {
                let _ = posix::sem_unlink(&p.name);
                p.created.store(false, Ordering::Relaxed);
            }
        }
    }

    /// The current count, for diagnostics.
    ///
    /// # Errors
    /// The OS error if the semaphore cannot be read.
    ///
    /// # Example
    /// ```
    /// # let key = format!("qipc-doc-sem-val-{}", std::process::id());
    /// let sem = qipc::SystemSemaphore::new(&key, 3, qipc::SemaphoreMode::Create)?;
    /// assert_eq!(sem.value()?, 3);
    /// # Ok::<(), qipc::Error>(())
    /// ```
    pub fn value(&self) -> Result<i32> {
        const OP: &str = "SystemSemaphore::value";
        match &self.imp {
            Imp::SysV(s) => sysv::sem_getval(s.id.load(Ordering::Relaxed)).map_err(|e| Error::from_io(OP, e)),
            Imp::Posix(p) => p.sem.value().map_err(|e| Error::from_io(OP, e)),
        }
    }
}

fn open_imp(key: &NativeKey, initial: i32, mode: SemaphoreMode, op: &'static str) -> Result<Imp> {
    if key.is_empty() {
        return Err(Error::new(ErrorKind::KeyError, op, "key is empty"));
    }
    match key.key_type() {
        KeyType::SystemV { ftok_id } => {
            let s = SysvSem {
                path: key.native_key().to_string(),
                ftok_id,
                initial,
                id: AtomicI32::new(-1),
                created_file: AtomicBool::new(false),
                created_sem: AtomicBool::new(false),
                undo: AtomicBool::new(true),
                shares_key_file: AtomicBool::new(false),
            };
            s.handle(mode, op)?;
            Ok(Imp::SysV(s))
        }
        KeyType::PosixRealtime => PosixSem::open(key.native_key(), initial, mode, op).map(Imp::Posix),
        KeyType::Windows => {
            Err(Error::new(ErrorKind::KeyError, op, "unsupported key type (Windows keys need Windows)"))
        }
    }
}

impl Imp {
    #[inline]
    fn acquire(&self, wait: Wait, op: &'static str) -> Result<bool> {
        match self {
            Imp::SysV(s) => s.op(-1, wait, op),
            Imp::Posix(p) => p.sem.wait(wait).map_err(|e| Error::from_io(op, e)),
        }
    }

    #[inline]
    fn release(&self, n: i32, op: &'static str) -> Result<()> {
        match self {
            Imp::SysV(s) => {
                let delta = i16::try_from(n).map_err(|_| {
                    Error::new(
                        ErrorKind::OutOfResources,
                        op,
                        format!("cannot release {n} units at once (at most 32767)"),
                    )
                })?;
                s.op(delta, Wait::Block, op).map(drop)
            }
            Imp::Posix(p) if n == 1 => p.sem.post().map_err(|e| Error::from_io(op, e)),
            Imp::Posix(p) => {
                for done in 0..n {
                    if let Err(e) = p.sem.post() {
                        // Roll back, as Qt does, so a failed release changes nothing.
                        for _ in 0..done {
                            let _ = p.sem.wait(Wait::Now);
                        }
                        return Err(Error::from_io(op, e));
                    }
                }
                Ok(())
            }
        }
    }
}

impl Drop for SystemSemaphore {
    fn drop(&mut self) {
        match &self.imp {
            Imp::SysV(s) => s.cleanup(),
            Imp::Posix(p) => {
                if p.created.load(Ordering::Relaxed) {
                    let _ = posix::sem_unlink(&p.name);
                }
            }
        }
    }
}

/// The System V backend, following Qt's `QSystemSemaphorePrivate::handle`.
#[derive(Debug)]
struct SysvSem {
    path: String,
    ftok_id: u8,
    initial: i32,
    /// The semaphore id, or -1 when not open.
    id: AtomicI32,
    created_file: AtomicBool,
    created_sem: AtomicBool,
    undo: AtomicBool,
    /// The key file is also the segment's: never unlink it from here.
    shares_key_file: AtomicBool,
}

impl SysvSem {
    /// Qt's `handle(mode)`: key file, ftok, semget (exclusive first), and
    /// SETVAL when this object created the semaphore.
    fn handle(&self, mode: SemaphoreMode, op: &'static str) -> Result<libc::c_int> {
        let created = sysv::create_key_file(&self.path)
            .map_err(|e| Error::with_kind(ErrorKind::KeyError, op, e).detail("unable to make key"))?;
        if created {
            self.created_file.store(true, Ordering::Relaxed);
        }
        let key = sysv::ftok(&self.path, self.ftok_id)
            .map_err(|e| Error::with_kind(ErrorKind::KeyError, op, e).detail("ftok failed"))?;
        let mut created_sem = false;
        let id = match sysv::semget(key, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) {
            Ok(id) => {
                created_sem = true;
                id
            }
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                sysv::semget(key, libc::IPC_CREAT | 0o600).map_err(|e| Error::from_io(op, e))?
            }
            Err(e) => return Err(Error::from_io(op, e)),
        };
        if created_sem || mode == SemaphoreMode::Create {
            // Either we made it (so a key file left by a crash is ours to
            // remove too), or we were asked to take it over.
            self.created_sem.store(true, Ordering::Relaxed);
            self.created_file.store(true, Ordering::Relaxed);
            if self.initial >= 0 {
                sysv::sem_setval(id, self.initial).map_err(|e| Error::from_io(op, e))?;
            }
        }
        self.id.store(id, Ordering::Relaxed);
        Ok(id)
    }

    /// One semop; on EINVAL/EIDRM (the semaphore was removed) re-open it in
    /// Open mode and retry once, as Qt does.
    #[inline]
    fn op(&self, delta: i16, wait: Wait, op: &'static str) -> Result<bool> {
        let mut id = self.id.load(Ordering::Relaxed);
        let mut retried = false;
        loop {
            let res = if self.undo.load(Ordering::Relaxed) {
                sysv::semop(id, delta, wait)
            } else {
                semop_no_undo(id, delta, wait)
            };
            match res {
                Ok(done) => return Ok(done),
                Err(e) if !retried && matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::EIDRM)) => {
                    retried = true;
                    id = self.handle(SemaphoreMode::Open, op)?;
                }
                Err(e) => return Err(Error::from_io(op, e)),
            }
        }
    }

    fn remove(&self) {
        let id = self.id.swap(-1, Ordering::Relaxed);
        if id >= 0 {
            let _ = sysv::sem_remove(id);
        }
        if !self.shares_key_file.load(Ordering::Relaxed) {
            let _ = sysv::remove_key_file(&self.path);
        }
        self.created_sem.store(false, Ordering::Relaxed);
        self.created_file.store(false, Ordering::Relaxed);
    }

    /// Qt's `cleanHandle`: unlink the key file if we made it, remove the
    /// semaphore if we own it.
    fn cleanup(&self) {
        if self.created_file.load(Ordering::Relaxed) && !self.shares_key_file.load(Ordering::Relaxed) {
            let _ = sysv::remove_key_file(&self.path);
        }
        let id = self.id.load(Ordering::Relaxed);
        if self.created_sem.load(Ordering::Relaxed) && id >= 0 {
            let _ = sysv::sem_remove(id);
        }
    }
}

fn semop_no_undo(id: libc::c_int, delta: i16, wait: Wait) -> std::io::Result<bool> {
    // The same call without SEM_UNDO: a producer/consumer pair must not
    // accumulate undo adjustments.
    sysv::semop_flags(id, delta, wait, false)
}

/// The POSIX backend, following Qt's `qsystemsemaphore_posix.cpp`.
#[derive(Debug)]
struct PosixSem {
    name: String,
    sem: NamedSem,
    created: AtomicBool,
}

/// Why the kernel refuses a POSIX semaphore name: the file is
/// `/dev/shm/sem.<name without its slash>`, at most 255 bytes.
fn bad_posix_name(name: &str) -> String {
    let bare = name.strip_prefix('/').unwrap_or(name);
    if bare.len() > 251 {
        format!("bad name: {name:?} is {} bytes, at most 251 fit (the file is sem.<name>)", bare.len())
    } else if bare.contains('/') {
        format!("bad name: {name:?} contains a '/' after the first character")
    } else if bare.is_empty() {
        "bad name: the name is empty".to_string()
    } else {
        format!("bad name: {name:?}")
    }
}

impl PosixSem {
    fn open(name: &str, initial: i32, mode: SemaphoreMode, op: &'static str) -> Result<PosixSem> {
        let map = |e: std::io::Error| match e.raw_os_error() {
            Some(libc::EINVAL) | Some(libc::ENAMETOOLONG) => {
                Error::with_kind(ErrorKind::KeyError, op, e).detail(bad_posix_name(name))
            }
            _ => Error::from_io(op, e),
        };
        let value = u32::try_from(initial.max(0)).unwrap_or(0);
        let excl = libc::O_CREAT | libc::O_EXCL;
        let attempts = if mode == SemaphoreMode::Create { 3 } else { 2 };
        let mut last = None;
        for _ in 0..attempts {
            match posix::sem_open(name, excl, value) {
                Ok(sem) => return Ok(PosixSem { name: name.to_string(), sem, created: AtomicBool::new(true) }),
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    if mode == SemaphoreMode::Create {
                        // Qt's Create mode replaces an existing semaphore.
                        let _ = posix::sem_unlink(name);
                    } else {
                        match posix::sem_open(name, libc::O_CREAT, value) {
                            Ok(sem) => {
                                return Ok(PosixSem { name: name.to_string(), sem, created: AtomicBool::new(false) })
                            }
                            Err(e) => last = Some(e),
                        }
                    }
                }
                Err(e) => return Err(map(e)),
            }
        }
        Err(map(last.unwrap_or_else(|| std::io::Error::from_raw_os_error(libc::EEXIST))))
    }
}
