//! The error type: Qt's error kinds, the operation that failed, a
//! description in plain words, and the operating-system error behind it.
//!
//! ```
//! use qipc::{AccessMode, ErrorKind, Operation, SharedMemory};
//! let mut shm = SharedMemory::new("qipc-doc-error-nobody-made-this");
//! let err = shm.attach(AccessMode::ReadOnly).unwrap_err();
//! assert_eq!((err.kind(), err.operation()), (ErrorKind::NotFound, Operation::Attach));
//! println!("{err}"); // attach: no segment exists for this key (...)
//! ```

#![forbid(unsafe_code)]

use std::{borrow::Cow, fmt, io};

/// What went wrong, as Qt's `QSharedMemory::SharedMemoryError` and
/// `QSystemSemaphore::SystemSemaphoreError` classify it (without
/// `NoError`: success is `Ok`).
///
/// | Qt | qipc |
/// |---|---|
/// | `PermissionDenied` | [`PermissionDenied`](ErrorKind::PermissionDenied) |
/// | `InvalidSize` | [`InvalidSize`](ErrorKind::InvalidSize) |
/// | `KeyError` | [`KeyError`](ErrorKind::KeyError) |
/// | `AlreadyExists` | [`AlreadyExists`](ErrorKind::AlreadyExists) |
/// | `NotFound` | [`NotFound`](ErrorKind::NotFound) |
/// | `LockError` | [`LockError`](ErrorKind::LockError) |
/// | `OutOfResources` | [`OutOfResources`](ErrorKind::OutOfResources) |
/// | `UnknownError` | [`Unknown`](ErrorKind::Unknown) |
///
/// System errors map as Qt maps them: `EACCES`/`EPERM` → PermissionDenied,
/// `EEXIST` → AlreadyExists, `ENOENT` → NotFound, `EMFILE`/`ENFILE`/
/// `ENOMEM`/`ENOSPC`/`ERANGE` → OutOfResources, `ENAMETOOLONG` → KeyError,
/// anything else → Unknown (an `EINVAL` is classified where it happens: a
/// bad size, a bad name). On Windows, with Qt's Windows table:
/// `ERROR_ALREADY_EXISTS` → AlreadyExists, `ERROR_FILE_NOT_FOUND` →
/// NotFound, `ERROR_COMMITMENT_LIMIT` → InvalidSize,
/// `ERROR_NO_SYSTEM_RESOURCES`/`ERROR_NOT_ENOUGH_MEMORY` → OutOfResources,
/// `ERROR_ACCESS_DENIED` → PermissionDenied, anything else → Unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[doc(alias = "SharedMemoryError")]
#[doc(alias = "SystemSemaphoreError")]
pub enum ErrorKind {
    /// The object belongs to another user, or does not allow the access asked for.
    PermissionDenied,
    /// A size of 0, above the system's limits, or a range outside the segment.
    InvalidSize,
    /// The key is empty, too long or not a valid name.
    KeyError,
    /// The object exists already (a `create` on an existing key).
    AlreadyExists,
    /// No object exists for the key.
    NotFound,
    /// The lock could not be taken or released.
    LockError,
    /// The system is out of memory, identifiers or space.
    OutOfResources,
    /// Anything else; the source error says what.
    Unknown,
    /// Bytes that are not a valid QDataStream (from the codec; Qt reports
    /// these through `QDataStream::status()` instead).
    InvalidData,
    /// A removal refused because a process still uses the object (qipc's
    /// inspector; Qt has no such operation).
    InUse,
}

impl ErrorKind {
    /// Qt's name for the kind (`"UnknownError"` for [`ErrorKind::Unknown`]).
    ///
    /// ```
    /// assert_eq!(qipc::ErrorKind::Unknown.as_str(), "UnknownError");
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
            ErrorKind::InvalidData => "InvalidData",
            ErrorKind::InUse => "InUse",
        }
    }

    /// Qt's table of system error codes (errno on Unix, `GetLastError` on
    /// Windows).
    pub(crate) fn from_errno(errno: i32) -> ErrorKind {
        #[cfg(unix)]
        {
            use crate::sys::errno::{class, Class};
            match class(errno) {
                Class::PermissionDenied => ErrorKind::PermissionDenied,
                Class::AlreadyExists => ErrorKind::AlreadyExists,
                Class::NotFound => ErrorKind::NotFound,
                Class::OutOfResources => ErrorKind::OutOfResources,
                Class::NameTooLong => ErrorKind::KeyError,
                Class::Other => ErrorKind::Unknown,
            }
        }
        #[cfg(windows)]
        {
            // On Windows the code is a `GetLastError` value, read with
            // QSharedMemory's table (QSystemSemaphore's is a subset that
            // the semaphore backend applies itself).
            crate::sys::windows_names::shared_memory_error(errno as u32).0
        }
    }

    /// The plain-words phrase for a system error of this kind.
    fn phrase(self) -> &'static str {
        match self {
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::NotFound => "does not exist",
            ErrorKind::OutOfResources => "out of resources",
            ErrorKind::KeyError => "bad key",
            ErrorKind::InvalidSize => "invalid size",
            ErrorKind::LockError => "unable to lock",
            ErrorKind::Unknown => "unexpected system error",
            ErrorKind::InvalidData => "invalid data",
            ErrorKind::InUse => "in use",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The operation that failed.
///
/// ```
/// assert_eq!(qipc::Operation::Attach.to_string(), "attach");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// [`SharedMemory::create`](crate::SharedMemory::create) and its variants.
    Create,
    /// [`SharedMemory::attach`](crate::SharedMemory::attach) and its variants.
    Attach,
    /// [`SharedMemory::detach`](crate::SharedMemory::detach).
    Detach,
    /// [`SharedMemory::lock`](crate::SharedMemory::lock) and its variants.
    Lock,
    /// Releasing the lock.
    Unlock,
    /// Copying bytes out of a segment.
    Read,
    /// Copying bytes into a segment.
    Write,
    /// Removing objects ([`SharedMemory::remove`](crate::SharedMemory::remove), the inspector's clean-up).
    Remove,
    /// Opening or creating a [`SystemSemaphore`](crate::SystemSemaphore).
    OpenSemaphore,
    /// [`SystemSemaphore::acquire`](crate::SystemSemaphore::acquire) and its variants.
    Acquire,
    /// [`SystemSemaphore::release`](crate::SystemSemaphore::release).
    Release,
    /// Reading a semaphore's value or an object's state.
    Inspect,
    /// Decoding QDataStream bytes.
    Decode,
}

impl Operation {
    /// The operation's name in the error text.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Attach => "attach",
            Operation::Detach => "detach",
            Operation::Lock => "lock",
            Operation::Unlock => "unlock",
            Operation::Read => "read",
            Operation::Write => "write",
            Operation::Remove => "remove",
            Operation::OpenSemaphore => "open semaphore",
            Operation::Acquire => "acquire",
            Operation::Release => "release",
            Operation::Inspect => "inspect",
            Operation::Decode => "decode",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from qipc: a [`kind`](Error::kind) (Qt's classification), the
/// [`operation`](Error::operation) that failed, a description in plain
/// words, and, when the system refused, the OS error as
/// [`source`](std::error::Error::source) (the description never repeats
/// it, so error reporters that print the chain print each part once).
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    op: Operation,
    detail: Cow<'static, str>,
    call: Option<&'static str>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    os_error: Option<i32>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, op: Operation, detail: impl Into<Cow<'static, str>>) -> Error {
        Error { kind, op, detail: detail.into(), call: None, source: None, os_error: None }
    }

    /// A failed system call, classified by Qt's errno table.
    pub(crate) fn os(op: Operation, call: &'static str, err: io::Error) -> Error {
        let kind = err.raw_os_error().map_or(ErrorKind::Unknown, ErrorKind::from_errno);
        Error::os_as(kind, op, call, err)
    }

    /// A failed system call with the kind chosen by the caller.
    pub(crate) fn os_as(kind: ErrorKind, op: Operation, call: &'static str, err: io::Error) -> Error {
        let detail = match kind {
            ErrorKind::Unknown => format!("{call} failed").into(),
            _ => kind.phrase().into(),
        };
        Error { kind, op, detail, call: Some(call), os_error: err.raw_os_error(), source: Some(Box::new(err)) }
    }

    /// Replaces the description.
    pub(crate) fn detail(mut self, detail: impl Into<Cow<'static, str>>) -> Error {
        self.detail = detail.into();
        self
    }

    /// Replaces the operation (an inner step reported as the outer one).
    #[cfg_attr(windows, allow(dead_code))]
    pub(crate) fn during(mut self, op: Operation) -> Error {
        self.op = op;
        self
    }

    /// Replaces the kind.
    pub(crate) fn with_kind(mut self, kind: ErrorKind) -> Error {
        self.kind = kind;
        self
    }

    /// Qt's classification of the error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The operation that failed.
    pub fn operation(&self) -> Operation {
        self.op
    }

    /// The description, without the operation.
    pub fn description(&self) -> &str {
        &self.detail
    }

    /// The system call that failed, if a system call did (`"shmget"`,
    /// `"shm_open"`, `"semop"`...).
    pub fn system_call(&self) -> Option<&'static str> {
        self.call
    }

    /// The OS error code, if the system refused.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.os_error
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.op, self.detail)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        let kind = match err.kind {
            ErrorKind::PermissionDenied => io::ErrorKind::PermissionDenied,
            ErrorKind::AlreadyExists => io::ErrorKind::AlreadyExists,
            ErrorKind::NotFound => io::ErrorKind::NotFound,
            ErrorKind::InvalidSize | ErrorKind::KeyError => io::ErrorKind::InvalidInput,
            ErrorKind::InvalidData => io::ErrorKind::InvalidData,
            ErrorKind::OutOfResources => io::ErrorKind::OutOfMemory,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, err)
    }
}

/// A QDataStream decoding error as a qipc error ([`ErrorKind::InvalidData`],
/// [`Operation::Decode`]), so that `?` works in code that reads a segment
/// and decodes it.
///
/// ```
/// fn message(bytes: &[u8]) -> qipc::Result<Option<String>> {
///     Ok(qipc::datastream::DataStreamReader::new(bytes).read_qstring()?)
/// }
/// assert_eq!(message(&[0, 0, 0, 1]).unwrap_err().kind(), qipc::ErrorKind::InvalidData);
/// ```
#[cfg(feature = "datastream")]
impl From<qipc_datastream::DecodeError> for Error {
    fn from(err: qipc_datastream::DecodeError) -> Error {
        Error {
            kind: ErrorKind::InvalidData,
            op: Operation::Decode,
            detail: "the bytes are not a valid QDataStream".into(),
            call: None,
            source: Some(Box::new(err)),
            os_error: None,
        }
    }
}

/// `Result<T, qipc::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(windows)]
    #[test]
    fn windows_table() {
        let cases = [
            (183, ErrorKind::AlreadyExists),
            (2, ErrorKind::NotFound),
            (1455, ErrorKind::InvalidSize),
            (1450, ErrorKind::OutOfResources),
            (8, ErrorKind::OutOfResources),
            (5, ErrorKind::PermissionDenied),
            (6, ErrorKind::Unknown),
            (17, ErrorKind::Unknown), // EEXIST's number is ERROR_NOT_SAME_DEVICE here
        ];
        for (code, kind) in cases {
            assert_eq!(ErrorKind::from_errno(code), kind, "error {code}");
        }
        let e = Error::os(Operation::Attach, "OpenFileMappingW", io::Error::from_raw_os_error(2));
        assert_eq!((e.kind(), e.to_string()), (ErrorKind::NotFound, "attach: does not exist".to_string()));
    }

    #[cfg(unix)]
    #[test]
    fn errno_table() {
        use crate::sys::errno::*;
        let cases = [
            (EACCES, ErrorKind::PermissionDenied),
            (EEXIST, ErrorKind::AlreadyExists),
            (ENOENT, ErrorKind::NotFound),
            (ENOSPC, ErrorKind::OutOfResources),
            (EMFILE, ErrorKind::OutOfResources),
            (ENOMEM, ErrorKind::OutOfResources),
            (ENAMETOOLONG, ErrorKind::KeyError),
            (ELOOP, ErrorKind::Unknown),
        ];
        for (errno, kind) in cases {
            assert_eq!(ErrorKind::from_errno(errno), kind, "errno {errno}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn display_names_the_operation_once_and_never_the_source() {
        use crate::sys::errno::{EEXIST, ELOOP};
        let e = Error::os(Operation::Create, "shmget", io::Error::from_raw_os_error(EEXIST));
        assert_eq!(e.to_string(), "create: already exists");
        assert_eq!(
            (e.kind(), e.system_call(), e.raw_os_error()),
            (ErrorKind::AlreadyExists, Some("shmget"), Some(EEXIST))
        );
        let e = Error::os(Operation::Attach, "shmat", io::Error::from_raw_os_error(ELOOP));
        assert_eq!(e.to_string(), "attach: shmat failed");
        let source = std::error::Error::source(&e).unwrap().to_string();
        assert!(source.contains("symbolic links"), "{source}");
        assert!(!e.to_string().contains("symbolic links"));
        let io: io::Error = Error::new(ErrorKind::NotFound, Operation::Attach, "no segment").into();
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
    }
}
