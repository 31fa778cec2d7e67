//! [`Mapping`]: one attached shared memory mapping, owned.
//!
//! A mapping is created by the backend that attached it (`shmat`, `mmap`,
//! `MapViewOfFile`) and detached when the `Mapping` is dropped. It is the
//! only type that touches the shared bytes, and it never hands out a Rust
//! reference to them from safe code: another process (a Qt program that
//! skips the lock, say) may write them at any moment, and a `&[u8]` would
//! promise the compiler that they do not change. Bytes move in and out by
//! copies through raw pointers; slices exist only behind `unsafe fn`.

#[cfg(unix)]
use std::io;
use std::ptr::NonNull;

/// How the mapping was made, so that `Drop` undoes it the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `shmat`: undone with `shmdt`.
    #[cfg(unix)]
    Shmat,
    /// `mmap` of `map_len` bytes: undone with `munmap`.
    #[cfg(unix)]
    Mmap { map_len: usize },
    /// `MapViewOfFile`: undone with `UnmapViewOfFile`.
    #[cfg(windows)]
    View,
}

/// One attached mapping of a shared memory segment.
///
/// `len` is the size of the segment as the user sees it; the mapping may be
/// larger (whole pages). Dropping it detaches; errors are ignored there (a
/// failing `munmap` of an address we own cannot be acted on).
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    writable: bool,
    kind: Kind,
}

// SAFETY: the mapping is process-wide memory, valid on every thread; the
// type holds only its address and length, and all access goes through raw
// copies (or `unsafe fn`s whose callers promise exclusive use).
unsafe impl Send for Mapping {}
// SAFETY: shared access only reads `ptr`/`len` or copies bytes through raw
// pointers; concurrent raw copies are what shared memory is for (the lock is
// the user's protocol, not a Rust aliasing guarantee).
unsafe impl Sync for Mapping {}

/// Why a copy was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AccessError {
    /// The range does not fit in the segment.
    OutOfRange,
    /// The mapping is read-only.
    ReadOnly,
}

impl Mapping {
    /// Takes ownership of a `shmat` attachment.
    ///
    /// # Safety
    /// `ptr` must be the address `shmat` returned, not detached yet, for a
    /// segment of at least `len` bytes, mapped writable if `writable`. The
    /// returned value is its only owner: nothing else may `shmdt` it.
    #[cfg(unix)]
    pub(crate) unsafe fn from_shmat(ptr: NonNull<u8>, len: usize, writable: bool) -> Mapping {
        Mapping { ptr, len, writable, kind: Kind::Shmat }
    }

    /// Takes ownership of an `mmap` region of `map_len` bytes, of which the
    /// first `len` are the segment.
    ///
    /// # Safety
    /// `ptr` must be the address `mmap` returned for exactly `map_len`
    /// bytes (`len <= map_len`), not unmapped yet, with write permission if
    /// `writable`. The returned value is its only owner.
    #[cfg(unix)]
    pub(crate) unsafe fn from_mmap(ptr: NonNull<u8>, len: usize, map_len: usize, writable: bool) -> Mapping {
        Mapping { ptr, len, writable, kind: Kind::Mmap { map_len } }
    }

    /// Takes ownership of a `MapViewOfFile` view.
    ///
    /// # Safety
    /// `ptr` must be the base address `MapViewOfFile` returned, not unmapped
    /// yet, for a view of at least `len` bytes, writable if `writable`. The
    /// returned value is its only owner.
    #[cfg(windows)]
    pub(crate) unsafe fn from_view(ptr: NonNull<u8>, len: usize, writable: bool) -> Mapping {
        Mapping { ptr, len, writable, kind: Kind::View }
    }

    /// Takes ownership of a view from [`super::windows`]; its length is the
    /// view's, whole pages.
    #[cfg(windows)]
    pub(crate) fn from_windows_view(view: super::windows::View, writable: bool) -> Mapping {
        let (ptr, len) = view.into_raw();
        // SAFETY: `into_raw` hands over a live MapViewOfFile view of `len`
        // bytes that nothing else unmaps any more; the caller mapped it
        // writable exactly if `writable` (it passes the access it mapped with).
        unsafe { Mapping::from_view(ptr, len, writable) }
    }

    /// The segment's size in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// True if mapped for writing.
    pub(crate) fn is_writable(&self) -> bool {
        self.writable
    }

    /// The first byte of the segment.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    fn check(&self, offset: usize, len: usize) -> Result<(), AccessError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(AccessError::OutOfRange),
        }
    }

    /// Copies `buf.len()` bytes at `offset` into `buf`.
    pub(crate) fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), AccessError> {
        self.check(offset, buf.len())?;
        // SAFETY: [offset, offset + len) lies inside the live mapping
        // (checked above); `buf` is ordinary Rust memory, so the two do not
        // overlap. No reference into the segment is created.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(offset), buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copies `data` into the segment at `offset`.
    pub(crate) fn write(&self, offset: usize, data: &[u8]) -> Result<(), AccessError> {
        if !self.writable {
            return Err(AccessError::ReadOnly);
        }
        self.check(offset, data.len())?;
        // SAFETY: the range lies inside the live mapping, which is mapped
        // with write permission (checked above); `data` is ordinary Rust
        // memory and does not overlap it.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().add(offset), data.len()) };
        Ok(())
    }

    /// Sets `len` bytes at `offset` to `byte`.
    pub(crate) fn fill(&self, offset: usize, len: usize, byte: u8) -> Result<(), AccessError> {
        if !self.writable {
            return Err(AccessError::ReadOnly);
        }
        self.check(offset, len)?;
        // SAFETY: in range of the live, writable mapping, as in `write`.
        unsafe { std::ptr::write_bytes(self.ptr.as_ptr().add(offset), byte, len) };
        Ok(())
    }

    /// The segment as a slice.
    ///
    /// # Safety
    /// While the slice lives, no process (this one included) may write the
    /// segment: every peer must honour the lock the caller holds.
    pub(crate) unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: the mapping is live and `len` bytes long for as long as
        // `self` is borrowed; the caller promises nobody writes it meanwhile.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The segment as a mutable slice; `None` if it is mapped read-only.
    ///
    /// # Safety
    /// While the slice lives, nobody else (no other process, no other
    /// reference in this one) may read or write the segment, and the caller
    /// must hold the only access path to this `Mapping` (a `&mut` guard).
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn as_mut_slice(&self) -> Option<&mut [u8]> {
        if !self.writable {
            return None;
        }
        // SAFETY: live, writable, `len` bytes; exclusivity is the caller's
        // promise.
        Some(unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) })
    }

    /// Pre-faults every page for writing (`MADV_POPULATE_WRITE`, Linux 5.14+),
    /// so that the first write into a fresh segment runs at memory speed.
    #[cfg(target_os = "linux")]
    pub(crate) fn populate_write(&self) -> io::Result<()> {
        const MADV_POPULATE_WRITE: libc::c_int = 23;
        if !self.writable {
            return Err(io::Error::from_raw_os_error(libc::EACCES));
        }
        // SAFETY: the range is this live mapping; MADV_POPULATE_WRITE only
        // faults pages in and does not change their contents.
        super::unix::cvt(unsafe { libc::madvise(self.ptr.as_ptr().cast(), self.len, MADV_POPULATE_WRITE) }).map(drop)
    }

    /// Asks for transparent huge pages (`MADV_HUGEPAGE`).
    #[cfg(target_os = "linux")]
    pub(crate) fn advise_huge_pages(&self) -> io::Result<()> {
        // SAFETY: the range is this live mapping; MADV_HUGEPAGE only changes
        // how the kernel backs it, not its contents.
        super::unix::cvt(unsafe { libc::madvise(self.ptr.as_ptr().cast(), self.len, libc::MADV_HUGEPAGE) }).map(drop)
    }

    /// Pre-faulting is a Linux feature.
    #[cfg(all(unix, not(target_os = "linux")))]
    pub(crate) fn populate_write(&self) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    /// Transparent huge pages are a Linux feature.
    #[cfg(all(unix, not(target_os = "linux")))]
    pub(crate) fn advise_huge_pages(&self) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        match self.kind {
            #[cfg(unix)]
            Kind::Shmat => {
                // SAFETY: `ptr` came from shmat (constructor contract) and is
                // detached exactly once, here; nothing uses it afterwards.
                unsafe { libc::shmdt(self.ptr.as_ptr().cast()) };
            }
            #[cfg(unix)]
            Kind::Mmap { map_len } => {
                // SAFETY: `ptr`/`map_len` are the region mmap returned
                // (constructor contract), unmapped exactly once, here.
                unsafe { libc::munmap(self.ptr.as_ptr().cast(), map_len) };
            }
            #[cfg(windows)]
            Kind::View => {
                // SAFETY: `ptr` is the base address MapViewOfFile returned
                // (constructor contract), unmapped exactly once, here.
                unsafe {
                    windows_sys::Win32::System::Memory::UnmapViewOfFile(
                        windows_sys::Win32::System::Memory::MEMORY_MAPPED_VIEW_ADDRESS {
                            Value: self.ptr.as_ptr().cast(),
                        },
                    )
                };
            }
        }
    }
}
