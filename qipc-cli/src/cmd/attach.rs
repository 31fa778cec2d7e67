//! A one-off attachment for `read` and `write`, and the lock errors that
//! name the holder.
//!
//! A segment nobody is attached to (a crash's leftover) would be removed
//! by our detach, Qt's last-detacher rule; a tool that looks at it must not
//! destroy it. Such an attachment is therefore let go without the detach
//! protocol (the mapping is dropped at exit, as a crash would), leaving the
//! segment as it was for `qipc gc` or its owner.

use std::time::{Duration, Instant};

use qipc::{AccessMode, NativeKey, SharedMemory, SharedMemoryGuard};

use crate::{
    error::{qipc_error, CliError},
    keys,
};

/// An attached segment.
pub struct Session {
    shm: Option<SharedMemory>,
    key: NativeKey,
    /// Orphaned when we attached: leave it as it is.
    preserve: bool,
    /// `--timeout`, and when it runs out: attach, lock and detach share it.
    timeout: Option<(Duration, Option<Instant>)>,
}

impl Session {
    /// Attaches, waiting at most `timeout` for the lock attach takes.
    pub fn open(key: &NativeKey, mode: AccessMode, timeout: Option<Duration>) -> Result<Session, CliError> {
        let preserve = orphaned(key);
        let timeout = timeout.map(|t| (t, Instant::now().checked_add(t)));
        let mut session = Session { shm: None, key: key.clone(), preserve, timeout };
        let mut shm = SharedMemory::with_native_key(key.clone());
        let attached = match session.left() {
            Some(t) => shm.attach_timeout(mode, t),
            None => shm.attach(mode),
        };
        attached.map_err(|e| error(&e, key, session.timeout.map(|t| t.0)))?;
        session.shm = Some(shm);
        Ok(session)
    }

    /// What is left of `--timeout` (`None`: no limit).
    fn left(&self) -> Option<Duration> {
        match self.timeout? {
            (_, Some(deadline)) => Some(deadline.saturating_duration_since(Instant::now())),
            (_, None) => None,
        }
    }

    fn shm(&self) -> Result<&SharedMemory, CliError> {
        self.shm.as_ref().ok_or_else(|| CliError::new("NotFound", "the segment was detached already"))
    }

    /// Takes the segment's lock, waiting at most `--timeout`.
    pub fn lock(&self) -> Result<SharedMemoryGuard<'_>, CliError> {
        let shm = self.shm()?;
        match (self.left(), self.timeout) {
            (Some(left), Some((t, _))) => {
                shm.lock_timeout(left).map_err(|e| error(&e, &self.key, None))?.ok_or_else(|| timed_out(&self.key, t))
            }
            _ => shm.lock().map_err(|e| error(&e, &self.key, None)),
        }
    }

    /// Detaches (or, for an orphan, lets go without removing it).
    pub fn close(mut self) -> Result<(), CliError> {
        let Some(mut shm) = self.shm.take() else { return Ok(()) };
        if self.preserve {
            std::mem::forget(shm);
            return Ok(());
        }
        // Detaching waits for the lock too; give it at least a moment.
        match self.left() {
            Some(left) => shm.detach_timeout(left.max(Duration::from_millis(500))),
            None => shm.detach(),
        }
        .map_err(|e| error(&e, &self.key, self.timeout.map(|t| t.0)))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(shm) = self.shm.take() {
            if self.preserve {
                std::mem::forget(shm);
            }
        }
    }
}

/// Whether the key's segment is orphaned (nobody attached).
#[cfg(target_os = "linux")]
fn orphaned(key: &NativeKey) -> bool {
    qipc::inspect::info(key).ok().and_then(|r| r.segment().map(|s| s.usage().is_orphaned())).unwrap_or(false)
}

/// Elsewhere nothing tells: detach as usual.
#[cfg(not(target_os = "linux"))]
fn orphaned(_key: &NativeKey) -> bool {
    false
}

/// A library error, or a time-out naming the lock's holder.
pub fn error(e: &qipc::Error, key: &NativeKey, timeout: Option<Duration>) -> CliError {
    match timeout {
        Some(t) if e.kind() == qipc::ErrorKind::LockError && e.description().starts_with("timed out") => {
            timed_out(key, t)
        }
        _ => qipc_error(e, key),
    }
}

/// The lock was not free within `t`: who holds it, as `qipc info` knows.
pub fn timed_out(key: &NativeKey, t: Duration) -> CliError {
    let mut message = format!("the lock of the key {} was not free within {}", keys::label(key), human_duration(t));
    if let Some(holder) = holder(key) {
        message.push_str(&format!(": it is {holder}"));
    }
    CliError::new("LockError", message)
        .hint(format!("`qipc info {}` shows the lock's state; --timeout waits longer", keys::as_args(key)))
}

#[cfg(target_os = "linux")]
fn holder(key: &NativeKey) -> Option<String> {
    super::describe::lock_holder(&qipc::inspect::info(key).ok()?)
}

#[cfg(not(target_os = "linux"))]
fn holder(_key: &NativeKey) -> Option<String> {
    None
}

/// `200ms`, `5s`, `1.5s`, `2m`.
pub fn human_duration(d: Duration) -> String {
    if d == Duration::MAX {
        return "no limit".into();
    }
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms % 60_000 == 0 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.3}s", d.as_secs_f64()).trim_end_matches('0').to_string()
    }
}
