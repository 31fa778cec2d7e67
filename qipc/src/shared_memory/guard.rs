//! [`SharedMemoryGuard`]: proof that the lock is held, and access to the
//! bytes of the attached segment it borrows.

use std::{
    marker::PhantomData,
    sync::atomic::{AtomicU64, Ordering},
};

use crate::{
    backend::Segment,
    error::{Error, ErrorKind, Operation, Result},
    sys::{fork, mapping::AccessError, Mapping},
};

/// The lock of a [`SharedMemory`](crate::SharedMemory), held; access to the
/// segment's bytes. Dropping it releases the lock
/// (`QSharedMemory::unlock`).
///
/// It borrows the attached segment, so its accessors cannot find the
/// segment gone; they copy bytes in and out (see the module docs for why
/// there is no safe `&[u8]`). It cannot be sent to another thread: the lock
/// belongs to the thread that took it.
///
/// ```no_run
/// # let shm = qipc::SharedMemory::new("k");
/// let mut guard = shm.lock()?;
/// let mut counter = [0u8; 8];
/// guard.read_at(0, &mut counter)?;
/// let next = u64::from_le_bytes(counter) + 1;
/// guard.write_at(0, &next.to_le_bytes())?;
/// # Ok::<(), qipc::Error>(())
/// ```
#[must_use = "if unused the shared memory is unlocked immediately"]
#[clippy::has_significant_drop]
pub struct SharedMemoryGuard<'a> {
    segment: &'a Segment,
    locked_by: &'a AtomicU64,
    holder_died: bool,
    fork_generation: u64,
    _not_send: PhantomData<*const ()>,
}

impl std::fmt::Debug for SharedMemoryGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedMemoryGuard").field("len", &self.len()).field("holder_died", &self.holder_died).finish()
    }
}

fn access_error(op: Operation, e: AccessError, offset: usize, len: usize, size: usize) -> Error {
    match e {
        AccessError::OutOfRange => Error::new(
            ErrorKind::InvalidSize,
            op,
            format!("{len} bytes at offset {offset} do not fit in a segment of {size} bytes"),
        ),
        AccessError::ReadOnly => Error::new(ErrorKind::PermissionDenied, op, "the segment is attached read-only"),
    }
}

impl<'a> SharedMemoryGuard<'a> {
    pub(crate) fn new(
        segment: &'a Segment,
        locked_by: &'a AtomicU64,
        holder_died: bool,
        fork_generation: u64,
    ) -> SharedMemoryGuard<'a> {
        SharedMemoryGuard { segment, locked_by, holder_died, fork_generation, _not_send: PhantomData }
    }

    fn mapping(&self) -> &Mapping {
        self.segment.mapping()
    }

    /// The segment's size in bytes.
    pub fn len(&self) -> usize {
        self.mapping().len()
    }

    /// True if the segment has no bytes (never, for a segment qipc or Qt made).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if the previous holder of the lock was killed while holding it
    /// and its lock was recovered for this one: the data may be half
    /// written. (Reported for POSIX locks on semaphores qipc created on
    /// Linux; the kernel releases a dead System V holder's lock without
    /// saying so; on Windows and for macOS POSIX keys a dead holder keeps
    /// the lock, so this is never true there.)
    pub fn previous_holder_died(&self) -> bool {
        self.holder_died
    }

    /// Copies `buf.len()` bytes at `offset` out of the segment.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidSize`] if the range does not fit.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        self.mapping().read(offset, buf).map_err(|e| access_error(Operation::Read, e, offset, buf.len(), self.len()))
    }

    /// Copies `data` into the segment at `offset`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidSize`] if it does not fit;
    /// [`ErrorKind::PermissionDenied`] if attached read-only.
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> Result<()> {
        self.mapping()
            .write(offset, data)
            .map_err(|e| access_error(Operation::Write, e, offset, data.len(), self.len()))
    }

    /// Sets `len` bytes at `offset` to `byte`.
    ///
    /// # Errors
    /// As [`write_at`](SharedMemoryGuard::write_at).
    pub fn fill(&mut self, offset: usize, len: usize, byte: u8) -> Result<()> {
        self.mapping().fill(offset, len, byte).map_err(|e| access_error(Operation::Write, e, offset, len, self.len()))
    }

    /// A copy of the whole segment (`QSharedMemory::constData()`, copied).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0u8; self.len()];
        // The range is the whole mapping, so the copy cannot fail.
        let _ = self.mapping().read(0, &mut v);
        v
    }

    /// The first byte of the segment (`constData()`). Reading through it is
    /// up to the caller's own rules.
    pub fn as_ptr(&self) -> *const u8 {
        self.mapping().as_ptr().cast_const()
    }

    /// The first byte of the segment, for writing (`data()`).
    ///
    /// # Errors
    /// [`ErrorKind::PermissionDenied`] if attached read-only.
    pub fn as_mut_ptr(&mut self) -> Result<*mut u8> {
        if !self.mapping().is_writable() {
            return Err(access_error(Operation::Write, AccessError::ReadOnly, 0, 0, self.len()));
        }
        Ok(self.mapping().as_ptr())
    }

    /// The segment as a slice.
    ///
    /// # Safety
    /// While the slice lives, no process may write the segment: every peer
    /// (Qt programs included) must honour the lock.
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: the caller promises every peer honours the lock we hold.
        unsafe { self.mapping().as_slice() }
    }

    /// The segment as a mutable slice.
    ///
    /// # Safety
    /// While the slice lives, no other process may read or write the
    /// segment: every peer must honour the lock.
    ///
    /// # Errors
    /// [`ErrorKind::PermissionDenied`] if attached read-only.
    pub unsafe fn as_mut_slice(&mut self) -> Result<&mut [u8]> {
        // SAFETY: `&mut self` is the only access path to the mapping in this
        // process while the slice lives; the caller promises the same for
        // other processes.
        match unsafe { self.mapping().as_mut_slice() } {
            Some(s) => Ok(s),
            None => Err(Error::new(ErrorKind::PermissionDenied, Operation::Write, "the segment is attached read-only")),
        }
    }

    /// Releases the lock now, reporting an error that drop would ignore
    /// (for example that a Qt process removed the lock semaphore while it
    /// was held).
    ///
    /// # Errors
    /// [`ErrorKind::LockError`] if the release fails.
    pub fn unlock(self) -> Result<()> {
        let result = self.release();
        std::mem::forget(self);
        result
    }

    fn release(&self) -> Result<()> {
        self.locked_by.store(0, Ordering::Relaxed);
        if fork::generation() != self.fork_generation {
            // A forked child's copy: the parent holds the lock, not us.
            return Ok(());
        }
        self.segment.unlock()
    }
}

impl Drop for SharedMemoryGuard<'_> {
    fn drop(&mut self) {
        // Errors cannot be reported here; `unlock` reports them.
        let _ = self.release();
    }
}
