//! The error type: Qt's error kinds, the operation that failed, and the OS
//! error behind it.

#![forbid(unsafe_code)]

use std::{borrow::Cow, fmt, io};

/// What went wrong, in Qt's terms: `QSharedMemory::SharedMemoryError` without
/// `NoError`. `QSystemSemaphore::SystemSemaphoreError` uses a subset.
///
/// OS errors map to kinds with Qt's table:
///
/// | errno | kind |
/// |---|---|
/// | `EACCES`, `EPERM` | [`PermissionDenied`](ErrorKind::PermissionDenied) |
/// | `EEXIST` | [`AlreadyExists`](ErrorKind::AlreadyExists) |
/// | `ENOENT` | [`NotFound`](ErrorKind::NotFound) |
/// | `EMFILE`, `ENFILE`, `ENOMEM`, `ENOSPC`, `ERANGE` | [`OutOfResources`](ErrorKind::OutOfResources) |
/// | `ENAMETOOLONG` | [`KeyError`](ErrorKind::KeyError) |
/// | `EINVAL` from `shmget` when creating | [`InvalidSize`](ErrorKind::InvalidSize) |
/// | `EINVAL` from `shm_open` / `sem_open` | [`KeyError`](ErrorKind::KeyError) |
/// | anything else | [`Unknown`](ErrorKind::Unknown) |
///
/// # Example
/// ```
/// use qipc::{ErrorKind, SharedMemory};
/// let mut shm = SharedMemory::new("qipc-doc-error-kind-missing");
/// let err = shm.attach(qipc::AccessMode::ReadWrite).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::NotFound);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[doc(alias = "SharedMemoryError")]
#[doc(alias = "SystemSemaphoreError")]
pub enum ErrorKind {
    /// The caller lacks the permission the operation needs.
    PermissionDenied,
    /// The size is zero, too large for the kernel, or larger than the
    /// memory that backs the segment.
    InvalidSize,
    /// The key is empty, too long, malformed or of an unsupported type.
    KeyError,
    /// A segment with this key exists already.
    AlreadyExists,
    /// No segment with this key exists, or the object is not attached.
    NotFound,
    /// The lock could not be taken or released, or is not held.
    LockError,
    /// The kernel ran out of a resource (memory, identifiers, undo space).
    OutOfResources,
    /// Any other failure; the OS error is in [`Error::source`](std::error::Error::source).
    Unknown,
}

impl ErrorKind {
    /// The kind for an OS error number, by Qt's table.
    ///
    /// # Example
    /// ```
    /// use qipc::ErrorKind;
    /// assert_eq!(ErrorKind::from_errno(libc::EEXIST), ErrorKind::AlreadyExists);
    /// assert_eq!(ErrorKind::from_errno(libc::ENOSPC), ErrorKind::OutOfResources);
    /// assert_eq!(ErrorKind::from_errno(libc::EBADF), ErrorKind::Unknown);
    /// ```
    pub fn from_errno(errno: i32) -> ErrorKind {
        match errno {
            libc::EACCES | libc::EPERM => ErrorKind::PermissionDenied,
            libc::EEXIST => ErrorKind::AlreadyExists,
            libc::ENOENT => ErrorKind::NotFound,
            libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::ENOSPC | libc::ERANGE => ErrorKind::OutOfResources,
            libc::ENAMETOOLONG => ErrorKind::KeyError,
            _ => ErrorKind::Unknown,
        }
    }

    /// A short name of the kind, as Qt spells the enumerator.
    ///
    /// # Example
    /// ```
    /// use qipc::ErrorKind;
    /// assert_eq!(ErrorKind::NotFound.as_str(), "NotFound");
    /// assert_eq!(ErrorKind::Unknown.as_str(), "UnknownError"); // Qt's QSharedMemory::UnknownError
    /// assert_eq!(ErrorKind::LockError.to_string(), "LockError");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::PermissionDenied => "PermissionDenied",
            ErrorKind::InvalidSize => "InvalidSize",
            ErrorKind::KeyError => "KeyError",
            ErrorKind::AlreadyExists => "AlreadyExists",
            ErrorKind::NotFound => "NotFound",
            ErrorKind::LockError => "LockError",
            ErrorKind::OutOfResources => "OutOfResources",
            ErrorKind::Unknown => "UnknownError",
        }
    }

    /// The phrase Qt's errorString uses for an OS error of this kind.
    fn phrase(self) -> &'static str {
        match self {
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::NotFound => "doesn't exist",
            ErrorKind::OutOfResources => "out of resources",
            ErrorKind::KeyError => "key error",
            ErrorKind::InvalidSize => "invalid size",
            ErrorKind::LockError => "unable to lock",
            ErrorKind::Unknown => "unknown error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from a shared memory or semaphore operation.
///
/// It carries the [`ErrorKind`], the operation that failed (for example
/// `SharedMemory::attach (shmget)`), a description, and the OS error, if
/// any, as [`source()`](std::error::Error::source). Its `Display` reads like
/// Qt's `errorString()`: `SharedMemory::create: already exists`.
///
/// # Example
/// ```
/// use qipc::{AccessMode, ErrorKind, SharedMemory};
/// let mut shm = SharedMemory::new("qipc-doc-error");
/// let err = shm.create(0, AccessMode::ReadWrite).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidSize);
/// assert_eq!(err.operation(), "SharedMemory::create");
/// println!("{err}"); // SharedMemory::create: invalid size 0: ...
/// ```
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    op: Cow<'static, str>,
    detail: Cow<'static, str>,
    source: Option<io::Error>,
}

impl Error {
    /// An error with an explicit description and no OS error.
    ///
    /// # Example
    /// ```
    /// use qipc::{Error, ErrorKind};
    /// let err = Error::new(ErrorKind::LockError, "Writer::publish", "the segment is busy");
    /// assert_eq!(err.to_string(), "Writer::publish: the segment is busy");
    /// assert_eq!(err.raw_os_error(), None);
    /// ```
    pub fn new(kind: ErrorKind, op: impl Into<Cow<'static, str>>, detail: impl Into<Cow<'static, str>>) -> Error {
        Error { kind, op: op.into(), detail: detail.into(), source: None }
    }

    /// An error from an OS error, mapped with Qt's table (see [`ErrorKind`]).
    ///
    /// # Example
    /// ```
    /// use qipc::{Error, ErrorKind};
    /// let err = Error::from_io("SharedMemory::create", std::io::Error::from_raw_os_error(libc::EEXIST));
    /// assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    /// assert_eq!(err.to_string(), "SharedMemory::create: already exists");
    /// ```
    pub fn from_io(op: impl Into<Cow<'static, str>>, err: io::Error) -> Error {
        let kind = err.raw_os_error().map_or(ErrorKind::Unknown, ErrorKind::from_errno);
        Error::with_kind(kind, op, err)
    }

    /// An error from an OS error, with the kind chosen by the caller.
    ///
    /// # Example
    /// ```
    /// use qipc::{Error, ErrorKind};
    /// let os = std::io::Error::from_raw_os_error(libc::EINVAL);
    /// let err = Error::with_kind(ErrorKind::KeyError, "shm_open", os);
    /// assert_eq!(err.kind(), ErrorKind::KeyError); // from_io would say Unknown
    /// assert_eq!(err.description(), "key error: Invalid argument");
    /// ```
    pub fn with_kind(kind: ErrorKind, op: impl Into<Cow<'static, str>>, err: io::Error) -> Error {
        let detail: Cow<'static, str> = match kind {
            ErrorKind::Unknown | ErrorKind::KeyError | ErrorKind::InvalidSize => {
                format!("{}: {}", kind.phrase(), strerror(&err)).into()
            }
            _ => kind.phrase().into(),
        };
        Error { kind, op: op.into(), detail, source: Some(err) }
    }

    /// Replaces the description.
    pub(crate) fn detail(mut self, detail: impl Into<Cow<'static, str>>) -> Error {
        self.detail = detail.into();
        self
    }

    /// The kind of error.
    ///
    /// # Example
    /// ```
    /// use qipc::{AccessMode, ErrorKind, SharedMemory};
    /// let err = SharedMemory::new("").attach(AccessMode::ReadWrite).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::KeyError);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The operation that failed, such as `SharedMemory::attach (shmget)`.
    ///
    /// # Example
    /// ```
    /// use qipc::{AccessMode, NativeKey, SharedMemory};
    /// let mut shm = SharedMemory::with_native_key(NativeKey::posix("/qipc-doc-operation-nobody-made-this"));
    /// let err = shm.attach(AccessMode::ReadWrite).unwrap_err();
    /// assert_eq!(err.operation(), "SharedMemory::attach (shm_open)");
    /// ```
    pub fn operation(&self) -> &str {
        &self.op
    }

    /// The description, without the operation: `already exists`.
    ///
    /// # Example
    /// ```
    /// use qipc::{AccessMode, NativeKey, SharedMemory};
    /// let mut shm = SharedMemory::with_native_key(NativeKey::posix("/qipc-doc-description-nobody-made-this"));
    /// let err = shm.attach(AccessMode::ReadWrite).unwrap_err();
    /// assert_eq!(err.description(), "doesn't exist");
    /// ```
    pub fn description(&self) -> &str {
        &self.detail
    }

    /// The OS error number, if an OS call failed.
    ///
    /// # Example
    /// ```
    /// use qipc::{AccessMode, NativeKey, SharedMemory};
    /// let mut shm = SharedMemory::with_native_key(NativeKey::posix("/qipc-doc-raw-os-error-nobody-made-this"));
    /// let err = shm.attach(AccessMode::ReadWrite).unwrap_err();
    /// assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    /// ```
    pub fn raw_os_error(&self) -> Option<i32> {
        self.source.as_ref().and_then(io::Error::raw_os_error)
    }
}

fn strerror(err: &io::Error) -> String {
    // io::Error's Display is "<text> (os error N)"; Qt prints only the text.
    let s = err.to_string();
    match s.rfind(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.op, self.detail)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        let kind = match err.kind {
            ErrorKind::PermissionDenied => io::ErrorKind::PermissionDenied,
            ErrorKind::AlreadyExists => io::ErrorKind::AlreadyExists,
            ErrorKind::NotFound => io::ErrorKind::NotFound,
            ErrorKind::InvalidSize | ErrorKind::KeyError => io::ErrorKind::InvalidInput,
            ErrorKind::OutOfResources => io::ErrorKind::OutOfMemory,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, err)
    }
}

/// `Result<T, qipc::Error>`.
///
/// # Example
/// ```
/// fn make_segment(key: &str) -> qipc::Result<qipc::SharedMemory> {
///     let mut shm = qipc::SharedMemory::new(key);
///     shm.create(64, qipc::AccessMode::ReadWrite)?;
///     Ok(shm)
/// }
/// # let key = format!("qipc-doc-result-{}", std::process::id());
/// assert_eq!(make_segment(&key)?.size(), 64);
/// # Ok::<(), qipc::Error>(())
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_table() {
        assert_eq!(ErrorKind::from_errno(libc::EACCES), ErrorKind::PermissionDenied);
        assert_eq!(ErrorKind::from_errno(libc::EEXIST), ErrorKind::AlreadyExists);
        assert_eq!(ErrorKind::from_errno(libc::ENOENT), ErrorKind::NotFound);
        assert_eq!(ErrorKind::from_errno(libc::ENOSPC), ErrorKind::OutOfResources);
        assert_eq!(ErrorKind::from_errno(libc::EMFILE), ErrorKind::OutOfResources);
        assert_eq!(ErrorKind::from_errno(libc::ENOMEM), ErrorKind::OutOfResources);
        assert_eq!(ErrorKind::from_errno(libc::EBADF), ErrorKind::Unknown);
    }

    #[test]
    fn display_like_qt() {
        let e = Error::from_io("SharedMemory::create", io::Error::from_raw_os_error(libc::EEXIST));
        assert_eq!(e.to_string(), "SharedMemory::create: already exists");
        let e = Error::from_io("SharedMemory::attach (shmget)", io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!(e.to_string(), "SharedMemory::attach (shmget): doesn't exist");
        let e = Error::from_io("x", io::Error::from_raw_os_error(libc::EBADF));
        assert_eq!(e.to_string(), "x: unknown error: Bad file descriptor");
        assert_eq!(e.raw_os_error(), Some(libc::EBADF));
        assert!(std::error::Error::source(&e).is_some());
    }
}
