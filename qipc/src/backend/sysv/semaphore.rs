//! `QSystemSemaphore` on System V: Qt's rules, including its ownership
//! (the process that created the semaphore, or opened it in Create mode,
//! removes it when its handle goes), which is that class's documented
//! contract. Values are checked before anything is created.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use super::{keyfile, lock::sem_error};
use crate::{
    error::{Error, ErrorKind, Operation, Result},
    key::NativeKey,
    sys::{
        errno::{self, EEXIST, EIDRM, EINVAL},
        sysv::{self as os, Key, SemId},
        unix::FileId,
        Deadline,
    },
};

/// The largest value of a System V semaphore (`SEMVMX`).
pub(crate) const MAX_VALUE: u32 = 32767;

/// A System V semaphore opened as `QSystemSemaphore` does.
#[derive(Debug)]
pub(crate) struct Semaphore {
    path: String,
    ftok_id: u8,
    initial: u32,
    marker: bool,
    id: AtomicI32,
    file: std::sync::Mutex<Option<FileId>>,
    created_file: AtomicBool,
    created_sem: AtomicBool,
    undo: AtomicBool,
}

impl Semaphore {
    pub(crate) fn open(key: &NativeKey, ftok_id: u8, initial: u32, create: bool) -> Result<Semaphore> {
        const OP: Operation = Operation::OpenSemaphore;
        if initial > MAX_VALUE {
            return Err(Error::new(
                ErrorKind::OutOfResources,
                OP,
                format!("initial value {initial} is above {MAX_VALUE}, the largest a System V semaphore holds"),
            ));
        }
        let sem = Semaphore {
            path: key.native_key().to_string(),
            ftok_id,
            initial,
            marker: key.legacy_key().is_none(),
            id: AtomicI32::new(-1),
            file: std::sync::Mutex::new(None),
            created_file: AtomicBool::new(false),
            created_sem: AtomicBool::new(false),
            undo: AtomicBool::new(true),
        };
        sem.handle(OP, create)?;
        Ok(sem)
    }

    /// Qt's `handle()`: key file, key, the semaphore (created with the
    /// initial value if missing, or taken over with it in Create mode).
    fn handle(&self, op: Operation, create: bool) -> Result<SemId> {
        let (st, made_file) = keyfile::ensure(op, &self.path, self.marker, || None)?;
        let created_file = made_file.is_some();
        if created_file {
            self.created_file.store(true, Ordering::Relaxed);
        }
        if let Ok(mut f) = self.file.lock() {
            *f = Some(st.id);
        }
        let key = Key::of_file(&st, self.ftok_id);
        let (id, created) = match os::sem_create(key, 1, 0o600) {
            Ok(id) => (id, true),
            Err(e) if errno::is(&e, EEXIST) => {
                (os::sem_open(key).map_err(|e| sem_error(op, "semget", &self.path, e))?, false)
            }
            Err(e) => {
                if created_file {
                    keyfile::remove_if_same(&self.path, st.id);
                }
                return Err(sem_error(op, "semget", &self.path, e));
            }
        };
        if created || create {
            // Ours now (made here, or taken over in Create mode), and so is
            // a key file left behind by a crash.
            self.created_sem.store(true, Ordering::Relaxed);
            self.created_file.store(true, Ordering::Relaxed);
            if let Err(e) = os::sem_setval(id, self.initial as i32) {
                if created {
                    let _ = os::sem_remove(id);
                }
                return Err(sem_error(op, "semctl", &self.path, e));
            }
        }
        self.id.store(id.0, Ordering::Relaxed);
        Ok(id)
    }

    fn op(&self, op: Operation, delta: i16, deadline: Deadline) -> Result<bool> {
        let undo = self.undo.load(Ordering::Relaxed);
        let mut id = SemId(self.id.load(Ordering::Relaxed));
        let mut retried = false;
        loop {
            match os::semop(id, delta, undo, deadline) {
                Ok(done) => return Ok(done),
                // Removed by its owner: open it again, as Qt does.
                Err(e) if !retried && (errno::is(&e, EIDRM) || errno::is(&e, EINVAL)) => {
                    retried = true;
                    id = self.handle(op, false)?;
                }
                Err(e) => return Err(sem_error(op, "semop", &self.path, e).with_kind(ErrorKind::Unknown)),
            }
        }
    }

    pub(crate) fn acquire(&self, deadline: Deadline) -> Result<bool> {
        self.op(Operation::Acquire, -1, deadline)
    }

    pub(crate) fn release(&self, n: u32) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let delta = i16::try_from(n).map_err(|_| {
            Error::new(
                ErrorKind::OutOfResources,
                Operation::Release,
                format!("cannot release {n} at once: a System V semaphore holds at most {MAX_VALUE}"),
            )
        })?;
        self.op(Operation::Release, delta, Deadline::Never).map(drop).map_err(|e| {
            if e.raw_os_error() == Some(errno::ERANGE) {
                e.with_kind(ErrorKind::OutOfResources)
                    .detail(format!("releasing {n} would take the value above {MAX_VALUE}"))
            } else {
                e
            }
        })
    }

    pub(crate) fn value(&self) -> Result<u32> {
        os::sem_getval(SemId(self.id.load(Ordering::Relaxed)))
            .map(|v| v.max(0) as u32)
            .map_err(|e| sem_error(Operation::Inspect, "semctl", &self.path, e))
    }

    pub(crate) fn set_undo(&self, undo: bool) {
        self.undo.store(undo, Ordering::Relaxed);
    }
}

impl Drop for Semaphore {
    fn drop(&mut self) {
        // Qt's cleanHandle: the key file if we made (or took over) it, then
        // the semaphore if we made (or took over) it.
        if self.created_file.load(Ordering::Relaxed) {
            if let Some(Some(file)) = self.file.lock().ok().map(|f| *f) {
                keyfile::remove_if_same(&self.path, file);
            }
        }
        if self.created_sem.load(Ordering::Relaxed) {
            let id = self.id.load(Ordering::Relaxed);
            if id >= 0 {
                let _ = os::sem_remove(SemId(id));
            }
        }
    }
}
