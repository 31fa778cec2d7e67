//! Thin typed wrappers over the Win32 calls behind Qt's Windows
//! `QSharedMemory` and `QSystemSemaphore`: named file mappings backed by the
//! paging file, views of them, and named semaphores.
//!
//! The calls and flags are Qt's (docs/windows.md has the details):
//!
//! | Qt | here |
//! |---|---|
//! | `create()`: `CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, size, name)`, then `ERROR_ALREADY_EXISTS` means failure | [`create_mapping`] → [`Created::Existing`] |
//! | `attach()`: `OpenFileMappingW(FILE_MAP_ALL_ACCESS, FALSE, name)` | [`open_mapping`] with [`Access::ReadWrite`] |
//! | `MapViewOfFile(h, FILE_MAP_READ` or `FILE_MAP_ALL_ACCESS, 0, 0, 0)` | [`FileMapping::map`] |
//! | `size()`: `VirtualQuery(view).RegionSize`, whole pages | [`View::len`], [`region_size`] |
//! | `detach()`: `UnmapViewOfFile`, `CloseHandle` | dropping [`View`] and [`FileMapping`] (or `unmap` / `close`) |
//! | `QSystemSemaphore`: `CreateSemaphoreW(NULL, initial, MAXLONG, name)`, open or create alike | [`create_semaphore`] with [`QT_SEMAPHORE_MAX`] |
//! | `acquire()`: `WaitForSingleObjectEx(h, INFINITE, FALSE)` | [`Semaphore::wait`] with `None` |
//! | `release(n)`: `ReleaseSemaphore(h, n, NULL)` | [`Semaphore::release`] |
//!
//! Errors are `std::io::Error`s made from `GetLastError()`;
//! `windows_names::shared_memory_error` and `system_semaphore_error` read
//! their codes the way Qt does. Nothing here retries or panics.
//!
//! Lifetime is the kernel's: an object lives while any process holds a
//! handle to it (a view counts for a mapping), and disappears with the last
//! one, crash or not. A semaphore count taken by a process that dies is
//! *not* given back, so a lock holder's death leaves the lock taken; waits
//! take a timeout for that reason.

use std::{
    io,
    marker::PhantomData,
    mem::{self, ManuallyDrop},
    ptr::{self, NonNull},
    time::Duration,
};

use windows_sys::Win32::{
    Foundation::{
        CloseHandle, GetLastError, SetLastError, ERROR_ABANDONED_WAIT_0, ERROR_ALREADY_EXISTS, ERROR_INVALID_NAME,
        HANDLE, INVALID_HANDLE_VALUE, WAIT_ABANDONED, WAIT_FAILED, WAIT_OBJECT_0, WAIT_TIMEOUT,
    },
    System::{
        Memory::{
            CreateFileMappingW, MapViewOfFile, OpenFileMappingW, UnmapViewOfFile, VirtualQuery, FILE_MAP_ALL_ACCESS,
            FILE_MAP_READ, MEMORY_BASIC_INFORMATION, MEMORY_MAPPED_VIEW_ADDRESS, PAGE_READWRITE,
        },
        Threading::{
            CreateSemaphoreW, OpenSemaphoreW, ReleaseSemaphore, WaitForSingleObject, INFINITE, SEMAPHORE_MODIFY_STATE,
            SYNCHRONIZATION_SYNCHRONIZE,
        },
    },
};

use super::windows_names::WinName;

/// The maximum count Qt gives every semaphore it creates (`MAXLONG`).
pub(crate) const QT_SEMAPHORE_MAX: i32 = i32::MAX;

/// The error `GetLastError()` reports for the calling thread.
pub(crate) fn last_error() -> io::Error {
    // SAFETY: GetLastError only reads the calling thread's last-error value.
    let code = unsafe { GetLastError() };
    io::Error::from_raw_os_error(code as i32)
}

/// The NUL-terminated UTF-16 form of a non-empty name. Windows would treat an
/// empty name as "unnamed object", which Qt never asks for, so it is an
/// `ERROR_INVALID_NAME` error here.
fn wide_name(name: &WinName) -> io::Result<Vec<u16>> {
    let wide = name.to_wide_nul();
    if wide.len() == 1 {
        return Err(io::Error::from_raw_os_error(ERROR_INVALID_NAME as i32));
    }
    Ok(wide)
}

/// An open kernel object handle, closed when dropped.
#[derive(Debug)]
pub(crate) struct Handle(HANDLE);

// SAFETY: a kernel handle is valid in every thread of the process that owns
// it; the calls made through it here are thread-safe in Win32.
unsafe impl Send for Handle {}
// SAFETY: as for Send; `&Handle` only allows waits, releases and mapping
// views, which Win32 allows from many threads at once.
unsafe impl Sync for Handle {}

impl Handle {
    /// Takes ownership of `raw`, the result of a call that returns NULL on
    /// failure and then sets the last error.
    fn from_result(raw: HANDLE) -> io::Result<Handle> {
        if raw.is_null() {
            Err(last_error())
        } else {
            Ok(Handle(raw))
        }
    }

    /// The raw handle, still owned by `self`.
    pub(crate) fn as_raw(&self) -> HANDLE {
        self.0
    }

    /// Closes the handle and reports whether `CloseHandle` succeeded (Qt's
    /// `detach()` returns false if it fails). Dropping closes it too, but
    /// silently.
    pub(crate) fn close(self) -> io::Result<()> {
        let this = ManuallyDrop::new(self);
        // SAFETY: `this.0` is an open handle owned by us; ManuallyDrop keeps
        // Drop from closing it a second time.
        if unsafe { CloseHandle(this.0) } == 0 {
            Err(last_error())
        } else {
            Ok(())
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: `self.0` is an open handle that we own and nobody else
        // closes. A failure leaves nothing to undo, so it is ignored.
        unsafe { CloseHandle(self.0) };
    }
}

/// The result of a `Create...W` call, which opens an existing object of the
/// same name instead of failing (and says so with `ERROR_ALREADY_EXISTS`).
#[derive(Debug)]
pub(crate) enum Created<T> {
    /// This call created the object.
    New(T),
    /// The object existed; the handle is to it. A mapping keeps its own
    /// size, a semaphore its own count: the arguments were ignored.
    Existing(T),
}

impl<T> Created<T> {
    /// The object, new or not.
    pub(crate) fn into_inner(self) -> T {
        match self {
            Created::New(t) | Created::Existing(t) => t,
        }
    }

    /// Whether the object existed before the call.
    pub(crate) fn existed(&self) -> bool {
        matches!(self, Created::Existing(_))
    }
}

/// Runs a `Create...W` call that returns a handle, telling a new object from
/// an existing one by the last error.
fn create_with(call: impl FnOnce() -> HANDLE) -> io::Result<Created<Handle>> {
    // Windows sets ERROR_ALREADY_EXISTS when the object existed; clear any
    // stale value first so that a new object is not mistaken for one.
    // SAFETY: SetLastError only writes the calling thread's last-error value.
    unsafe { SetLastError(0) };
    let handle = Handle::from_result(call())?;
    // SAFETY: GetLastError only reads the calling thread's last-error value.
    if unsafe { GetLastError() } == ERROR_ALREADY_EXISTS {
        Ok(Created::Existing(handle))
    } else {
        Ok(Created::New(handle))
    }
}

/// How a mapping is opened and viewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// `FILE_MAP_READ`: Qt's `QSharedMemory::ReadOnly` view.
    ReadOnly,
    /// `FILE_MAP_ALL_ACCESS`: Qt's `ReadWrite` view, and what Qt opens every
    /// mapping with, even for a read-only attach.
    ReadWrite,
}

impl Access {
    fn flags(self) -> u32 {
        match self {
            Access::ReadOnly => FILE_MAP_READ,
            Access::ReadWrite => FILE_MAP_ALL_ACCESS,
        }
    }
}

/// A named file mapping backed by the paging file.
#[derive(Debug)]
pub(crate) struct FileMapping {
    handle: Handle,
}

/// `CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, size, name)`,
/// as Qt's `create()`: a new mapping of `size` bytes (zero-filled, committed
/// page by page as it is touched), or [`Created::Existing`] with a handle to
/// the mapping already called `name`, whatever its size. Qt counts the
/// latter as `AlreadyExists` (and keeps the handle until the object is
/// destroyed or re-keyed).
///
/// A name taken by an object of another type (a semaphore, say) fails with
/// `ERROR_INVALID_HANDLE`; a size of 0 with `ERROR_INVALID_PARAMETER`.
pub(crate) fn create_mapping(name: &WinName, size: u64) -> io::Result<Created<FileMapping>> {
    let wide = wide_name(name)?;
    let (high, low) = ((size >> 32) as u32, size as u32);
    let created = create_with(|| {
        // SAFETY: `wide` is a NUL-terminated UTF-16 string that outlives the
        // call; a null SECURITY_ATTRIBUTES pointer asks for the defaults.
        unsafe { CreateFileMappingW(INVALID_HANDLE_VALUE, ptr::null(), PAGE_READWRITE, high, low, wide.as_ptr()) }
    })?;
    Ok(match created {
        Created::New(handle) => Created::New(FileMapping { handle }),
        Created::Existing(handle) => Created::Existing(FileMapping { handle }),
    })
}

/// `OpenFileMappingW(access, FALSE, name)`: an existing mapping, or
/// `ERROR_FILE_NOT_FOUND` (Qt: NotFound). Qt's `attach()` always asks for
/// [`Access::ReadWrite`] here (`FILE_MAP_ALL_ACCESS`), also when it will map
/// the view read-only.
pub(crate) fn open_mapping(name: &WinName, access: Access) -> io::Result<FileMapping> {
    let wide = wide_name(name)?;
    // SAFETY: `wide` is a NUL-terminated UTF-16 string that outlives the call.
    let raw = unsafe { OpenFileMappingW(access.flags(), 0, wide.as_ptr()) };
    Ok(FileMapping { handle: Handle::from_result(raw)? })
}

impl FileMapping {
    /// `MapViewOfFile(handle, access, 0, 0, 0)`: a view of the whole mapping,
    /// whose length `VirtualQuery` reports (the mapping's size rounded up to
    /// whole pages, as Qt's `size()`).
    ///
    /// The view stays valid after the mapping's handle is closed: the kernel
    /// keeps the mapping while any view of it exists.
    pub(crate) fn map(&self, access: Access) -> io::Result<View> {
        // SAFETY: the handle is an open file mapping handle owned by `self`;
        // offset 0 and length 0 map the whole object.
        let view = unsafe { MapViewOfFile(self.handle.as_raw(), access.flags(), 0, 0, 0) };
        let Some(addr) = NonNull::new(view.Value.cast::<u8>()) else {
            return Err(last_error());
        };
        // Owned from here on, so that a failing VirtualQuery unmaps it.
        let mut owned = View { addr, len: 0, _not_shared: PhantomData };
        owned.len = region_size(addr.as_ptr())?;
        Ok(owned)
    }

    /// The handle, for calls not wrapped here.
    #[allow(dead_code)] // for tools and tests
    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Closes the handle, reporting a `CloseHandle` failure.
    pub(crate) fn close(self) -> io::Result<()> {
        self.handle.close()
    }
}

/// `VirtualQuery(addr).RegionSize`: the length of the run of pages that
/// starts at `addr`'s page and shares its state; for the start of a mapped
/// view, the view's length in whole pages. A pointer that is not in the
/// address space at all gives `ERROR_INVALID_PARAMETER`.
pub(crate) fn region_size(addr: *const u8) -> io::Result<usize> {
    let mut info = mem::MaybeUninit::<MEMORY_BASIC_INFORMATION>::zeroed();
    let size = mem::size_of::<MEMORY_BASIC_INFORMATION>();
    // SAFETY: VirtualQuery reads no memory at `addr` (it only looks the
    // address up) and writes at most `size` bytes into `info`, which has room.
    let written = unsafe { VirtualQuery(addr.cast(), info.as_mut_ptr(), size) };
    if written == 0 {
        return Err(last_error());
    }
    // SAFETY: VirtualQuery returned non-zero, so it filled `info` (which was
    // zeroed before, so every byte is initialised either way).
    Ok(unsafe { info.assume_init() }.RegionSize)
}

/// A mapped view of a file mapping, unmapped when dropped.
///
/// The memory is shared with other processes, which may write to it at any
/// time: read and write it through raw pointers or atomics, never through
/// long-lived Rust references.
#[derive(Debug)]
pub(crate) struct View {
    addr: NonNull<u8>,
    len: usize,
    _not_shared: PhantomData<*mut u8>,
}

// SAFETY: a view is an address range of the whole process; unmapping it from
// another thread is allowed, and moving the View moves only the address.
unsafe impl Send for View {}
// SAFETY: `&View` hands out only the address and length; what is done with
// the memory is the caller's business (and unsafe).
unsafe impl Sync for View {}

// The backend hands views to `Mapping` (`into_mapping`); these serve the
// tests and tools that use views directly.
#[allow(dead_code)]
impl View {
    /// The first byte of the view.
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.addr.as_ptr()
    }

    /// The view's length in bytes, whole pages (Qt's `size()`).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The base address and length, for a new owner that unmaps the view
    /// itself (`Mapping`); this `View` no longer unmaps it.
    pub(crate) fn into_raw(self) -> (NonNull<u8>, usize) {
        let this = ManuallyDrop::new(self);
        (this.addr, this.len)
    }

    /// Unmaps the view, reporting an `UnmapViewOfFile` failure (Qt's
    /// `detach()` fails then). Dropping unmaps too, but silently.
    pub(crate) fn unmap(self) -> io::Result<()> {
        let this = ManuallyDrop::new(self);
        // SAFETY: `this.addr` is the base of a view mapped by MapViewOfFile
        // and still mapped; ManuallyDrop keeps Drop from unmapping it again.
        let ok = unsafe { UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: this.addr.as_ptr().cast() }) };
        if ok == 0 {
            Err(last_error())
        } else {
            Ok(())
        }
    }
}

impl Drop for View {
    fn drop(&mut self) {
        // SAFETY: `self.addr` is the base of a view that we mapped and nobody
        // else unmaps. A failure leaves nothing to undo, so it is ignored.
        unsafe { UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: self.addr.as_ptr().cast() }) };
    }
}

/// A named semaphore.
#[derive(Debug)]
pub(crate) struct Semaphore {
    handle: Handle,
}

/// `CreateSemaphoreW(NULL, initial, maximum, name)`: a new semaphore with
/// count `initial`, or [`Created::Existing`] with the semaphore already
/// called `name`, whose count is left alone. Qt calls this for both access
/// modes (Open and Create mean the same on Windows) with maximum
/// [`QT_SEMAPHORE_MAX`]; a `QSharedMemory` lock is such a semaphore created
/// with count 1.
pub(crate) fn create_semaphore(name: &WinName, initial: i32, maximum: i32) -> io::Result<Created<Semaphore>> {
    let wide = wide_name(name)?;
    let created = create_with(|| {
        // SAFETY: `wide` is a NUL-terminated UTF-16 string that outlives the
        // call; a null SECURITY_ATTRIBUTES pointer asks for the defaults.
        unsafe { CreateSemaphoreW(ptr::null(), initial, maximum, wide.as_ptr()) }
    })?;
    Ok(match created {
        Created::New(handle) => Created::New(Semaphore { handle }),
        Created::Existing(handle) => Created::Existing(Semaphore { handle }),
    })
}

/// `OpenSemaphoreW(SYNCHRONIZE | SEMAPHORE_MODIFY_STATE, FALSE, name)`: an
/// existing semaphore, or `ERROR_FILE_NOT_FOUND`. Qt never only opens (it
/// creates if missing), but a tool that must not create one can use this.
#[allow(dead_code)] // for tools and tests
pub(crate) fn open_semaphore(name: &WinName) -> io::Result<Semaphore> {
    let wide = wide_name(name)?;
    // SAFETY: `wide` is a NUL-terminated UTF-16 string that outlives the call.
    let raw = unsafe { OpenSemaphoreW(SYNCHRONIZATION_SYNCHRONIZE | SEMAPHORE_MODIFY_STATE, 0, wide.as_ptr()) };
    Ok(Semaphore { handle: Handle::from_result(raw)? })
}

/// A timeout in milliseconds for `WaitForSingleObject`: rounded up, so that
/// a positive timeout never becomes a mere poll, and kept below `INFINITE`
/// (about 49.7 days), so that a finite timeout never waits forever.
fn timeout_ms(timeout: Option<Duration>) -> u32 {
    match timeout {
        None => INFINITE,
        Some(d) => {
            let ms = d.as_nanos().div_ceil(1_000_000);
            u32::try_from(ms).unwrap_or(INFINITE - 1).min(INFINITE - 1)
        }
    }
}

impl Semaphore {
    /// `WaitForSingleObject(handle, timeout)`: takes one count, waiting for
    /// one at most `timeout` (`None`: as long as it takes, as Qt's
    /// `acquire()`). `Ok(true)` when a count was taken, `Ok(false)` when the
    /// time ran out.
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> io::Result<bool> {
        // SAFETY: the handle is an open semaphore handle owned by `self`.
        let rc = unsafe { WaitForSingleObject(self.handle.as_raw(), timeout_ms(timeout)) };
        match rc {
            WAIT_OBJECT_0 => Ok(true),
            WAIT_TIMEOUT => Ok(false),
            WAIT_FAILED => Err(last_error()),
            // Only mutexes are abandoned; a semaphore never is.
            WAIT_ABANDONED => Err(io::Error::from_raw_os_error(ERROR_ABANDONED_WAIT_0 as i32)),
            other => Err(io::Error::other(format!("WaitForSingleObject returned {other:#x}"))),
        }
    }

    /// Takes one count if one is free, without waiting.
    #[allow(dead_code)] // for tools and tests
    pub(crate) fn try_wait(&self) -> io::Result<bool> {
        self.wait(Some(Duration::ZERO))
    }

    /// `ReleaseSemaphore(handle, n, &previous)`: gives back `n` counts and
    /// returns the count before. Passing the maximum fails with
    /// `ERROR_TOO_MANY_POSTS` and changes nothing. Windows documents `n` < 1
    /// as `ERROR_INVALID_PARAMETER`, but Wine 8 accepts `n` = 0 as a no-op;
    /// Qt never passes it (its `release(0)` returns true at once), and
    /// callers should not either.
    pub(crate) fn release(&self, n: i32) -> io::Result<i32> {
        let mut previous = 0i32;
        // SAFETY: the handle is an open semaphore handle owned by `self`, and
        // `previous` is a valid place for the previous count.
        if unsafe { ReleaseSemaphore(self.handle.as_raw(), n, &mut previous) } == 0 {
            Err(last_error())
        } else {
            Ok(previous)
        }
    }

    /// `NtQuerySemaphore(handle, SemaphoreBasicInformation)`: the current
    /// count and the maximum, read without changing the count (Win32 has no
    /// call for this; ntdll's is what Windows' own tools use, and Wine has
    /// it). The handle must have `SEMAPHORE_QUERY_STATE`, which
    /// `CreateSemaphoreW` handles have (all access) and
    /// [`open_semaphore`]'s do not.
    pub(crate) fn query(&self) -> io::Result<(i32, i32)> {
        let mut info = SemaphoreBasicInformation { current: 0, maximum: 0 };
        let mut written = 0u32;
        // SAFETY: the handle is an open semaphore handle owned by `self`;
        // `info` is a valid, writable SEMAPHORE_BASIC_INFORMATION of the
        // size passed, and `written` a valid out pointer.
        let status = unsafe {
            NtQuerySemaphore(
                self.handle.as_raw(),
                SEMAPHORE_BASIC_INFORMATION_CLASS,
                (&mut info as *mut SemaphoreBasicInformation).cast(),
                mem::size_of::<SemaphoreBasicInformation>() as u32,
                &mut written,
            )
        };
        if status < 0 {
            // SAFETY: RtlNtStatusToDosError only maps a number to a number.
            let code = unsafe { RtlNtStatusToDosError(status) };
            return Err(io::Error::from_raw_os_error(code as i32));
        }
        Ok((info.current, info.maximum))
    }

    /// The handle, for calls not wrapped here.
    #[allow(dead_code)] // for tools and tests
    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Closes the handle, reporting a `CloseHandle` failure.
    #[allow(dead_code)] // for tools and tests
    pub(crate) fn close(self) -> io::Result<()> {
        self.handle.close()
    }
}

/// `SEMAPHORE_BASIC_INFORMATION` of the NT API.
#[repr(C)]
struct SemaphoreBasicInformation {
    current: i32,
    maximum: i32,
}

/// `SemaphoreBasicInformation`, the information class of `NtQuerySemaphore`.
const SEMAPHORE_BASIC_INFORMATION_CLASS: u32 = 0;

// ntdll's semaphore query, which windows-sys does not declare.
#[link(name = "ntdll")]
extern "system" {
    fn NtQuerySemaphore(handle: HANDLE, class: u32, info: *mut std::ffi::c_void, len: u32, written: *mut u32) -> i32;
    fn RtlNtStatusToDosError(status: i32) -> u32;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::windows_names::codes;

    fn unique(tag: &str) -> WinName {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        WinName::new(&format!("qipc_test_{tag}_{}_{nanos}_{n}", std::process::id()))
    }

    fn code(e: &io::Error) -> u32 {
        e.raw_os_error().unwrap() as u32
    }

    #[test]
    fn create_open_map_and_share_bytes() {
        let name = unique("map");
        let created = create_mapping(&name, 100).unwrap();
        assert!(!created.existed());
        let mapping = created.into_inner();
        let view = mapping.map(Access::ReadWrite).unwrap();
        assert_eq!(view.len(), 4096, "a 100-byte mapping is one page long");
        // SAFETY: the view is at least 100 bytes long and nobody else writes to it.
        unsafe { view.as_ptr().copy_from_nonoverlapping(b"hello".as_ptr(), 5) };

        let other = open_mapping(&name, Access::ReadWrite).unwrap().map(Access::ReadOnly).unwrap();
        assert_ne!(other.as_ptr(), view.as_ptr());
        // SAFETY: the view is at least 5 bytes long.
        assert_eq!(unsafe { std::slice::from_raw_parts(other.as_ptr(), 5) }, b"hello");
        other.unmap().unwrap();
        view.unmap().unwrap();
        mapping.close().unwrap();
    }

    #[test]
    fn create_again_opens_the_existing_mapping_with_its_size() {
        let name = unique("again");
        let first = create_mapping(&name, 3 * 4096 + 1).unwrap().into_inner();
        let second = create_mapping(&name, 10).unwrap();
        assert!(second.existed());
        assert_eq!(second.into_inner().map(Access::ReadWrite).unwrap().len(), 4 * 4096);
        drop(first);
    }

    #[test]
    fn the_last_handle_takes_the_mapping_with_it() {
        let name = unique("gone");
        let mapping = create_mapping(&name, 10).unwrap().into_inner();
        let view = mapping.map(Access::ReadWrite).unwrap();
        mapping.close().unwrap();
        // The view alone keeps the mapping's memory, but not its name.
        assert_eq!(code(&open_mapping(&name, Access::ReadOnly).unwrap_err()), codes::FILE_NOT_FOUND);
        // SAFETY: the view is mapped and one page long.
        unsafe { view.as_ptr().write(7) };
        drop(view);
        assert_eq!(code(&open_mapping(&name, Access::ReadWrite).unwrap_err()), codes::FILE_NOT_FOUND);
        assert!(!create_mapping(&name, 10).unwrap().existed());
    }

    #[test]
    fn read_only_views_refuse_writes_and_names_are_checked() {
        let name = unique("ro");
        let mapping = create_mapping(&name, 10).unwrap().into_inner();
        let ro = open_mapping(&name, Access::ReadOnly).unwrap();
        // A handle opened for reading cannot make a writable view.
        assert_eq!(code(&ro.map(Access::ReadWrite).unwrap_err()), codes::ACCESS_DENIED);
        assert!(ro.map(Access::ReadOnly).is_ok());
        assert_eq!(code(&create_mapping(&WinName::default(), 10).unwrap_err()), ERROR_INVALID_NAME);
        assert_eq!(code(&create_mapping(&unique("zero"), 0).unwrap_err()), 87); // ERROR_INVALID_PARAMETER
        drop(mapping);
    }

    #[test]
    fn mappings_and_semaphores_share_one_namespace() {
        let name = unique("clash");
        let sem = create_semaphore(&name, 1, QT_SEMAPHORE_MAX).unwrap().into_inner();
        assert_eq!(code(&create_mapping(&name, 10).unwrap_err()), codes::INVALID_HANDLE);
        drop(sem);
        assert!(!create_mapping(&name, 10).unwrap().existed());
    }

    #[test]
    fn semaphore_counts_timeouts_and_the_maximum() {
        let name = unique("sem");
        let sem = create_semaphore(&name, 1, 2).unwrap();
        assert!(!sem.existed());
        let sem = sem.into_inner();
        let again = create_semaphore(&name, 0, 5).unwrap();
        assert!(again.existed(), "an existing semaphore keeps its count and maximum");
        let again = again.into_inner();
        assert!(again.try_wait().unwrap());
        assert!(!sem.try_wait().unwrap());
        let t = std::time::Instant::now();
        assert!(!sem.wait(Some(Duration::from_millis(50))).unwrap());
        assert!(t.elapsed() >= Duration::from_millis(40), "{:?}", t.elapsed());
        assert_eq!(sem.release(2).unwrap(), 0);
        assert_eq!(code(&sem.release(1).unwrap_err()), codes::TOO_MANY_POSTS);
        assert!(sem.wait(None).unwrap());
        assert_eq!(sem.query().unwrap(), (1, 2));
        let opened = open_semaphore(&name).unwrap();
        assert!(opened.try_wait().unwrap());
        assert!(!opened.try_wait().unwrap());
        assert_eq!(opened.release(1).unwrap(), 0);
        drop((sem, again, opened));
        assert_eq!(code(&open_semaphore(&name).unwrap_err()), codes::FILE_NOT_FOUND);
    }

    #[test]
    fn a_wait_is_woken_by_a_release_in_another_thread() {
        let name = unique("wake");
        let sem = create_semaphore(&name, 0, QT_SEMAPHORE_MAX).unwrap().into_inner();
        let other = create_semaphore(&name, 0, QT_SEMAPHORE_MAX).unwrap().into_inner();
        let t = std::time::Instant::now();
        let waiter = std::thread::spawn(move || other.wait(Some(Duration::from_secs(10))).unwrap());
        std::thread::sleep(Duration::from_millis(100));
        sem.release(1).unwrap();
        assert!(waiter.join().unwrap());
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn timeouts_round_up_and_stay_finite() {
        assert_eq!(timeout_ms(None), INFINITE);
        assert_eq!(timeout_ms(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_ms(Some(Duration::from_nanos(1))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_micros(1500))), 2);
        assert_eq!(timeout_ms(Some(Duration::from_secs(u64::MAX))), INFINITE - 1);
    }

    #[test]
    fn region_size_of_nothing_is_an_error() {
        assert!(region_size(usize::MAX as *const u8).is_err());
    }
}
