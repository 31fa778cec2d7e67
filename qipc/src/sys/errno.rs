//! The error numbers the backends look at, so that `libc` stays inside
//! `sys`, and Qt's classification of them.

use std::io;

#[cfg(target_os = "linux")]
pub(crate) use libc::ENOTRECOVERABLE;
// Some are used only by the Linux backends and the inspector.
#[cfg_attr(not(target_os = "linux"), allow(unused_imports))]
pub(crate) use libc::{
    EACCES, EDEADLK, EEXIST, EFBIG, EIDRM, EINVAL, ELOOP, EMFILE, ENAMETOOLONG, ENFILE, ENOENT, ENOMEM, ENOSPC,
    ENOTDIR, EOPNOTSUPP, EOVERFLOW, EPERM, ERANGE,
};

/// How Qt classifies an error number (its `setErrorString` tables for
/// shared memory and semaphores, merged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    PermissionDenied,
    AlreadyExists,
    NotFound,
    OutOfResources,
    NameTooLong,
    Other,
}

/// Qt's class of `errno`.
pub(crate) fn class(errno: i32) -> Class {
    match errno {
        EACCES | EPERM => Class::PermissionDenied,
        EEXIST => Class::AlreadyExists,
        ENOENT => Class::NotFound,
        EMFILE | ENFILE | ENOMEM | ENOSPC | ERANGE => Class::OutOfResources,
        ENAMETOOLONG => Class::NameTooLong,
        _ => Class::Other,
    }
}

/// True if `err` is the OS error `code`.
pub(crate) fn is(err: &io::Error, code: i32) -> bool {
    err.raw_os_error() == Some(code)
}
