//! System V key files: the files whose inode `ftok` turns into a key.
//!
//! Qt creates them empty with `open(O_CREAT | O_EXCL, 0640)` and never reads
//! them. qipc creates them the same way; for a *native* key (a path the
//! user chose) it also writes a marker line, so that a later process can
//! tell that qipc made the file and may remove it with its segment. qipc
//! removes a key file only if it is a regular file and either follows Qt's
//! naming scheme (`qipc_sharedmemory_<letters><sha1>`,
//! `qipc_systemsem_<letters><sha1>`) or carries the marker.

use std::os::fd::{AsFd, OwnedFd};

use crate::{
    backend::LockMode,
    error::{Error, ErrorKind, Operation, Result},
    sys::{
        errno,
        unix::{self, Create, FileId, FileStat, FileType, OpenHow},
    },
};

/// The first line of a key file qipc created for a native key.
pub(crate) const MARKER: &[u8] = b"qipc System V key file: removed with its segment\n";

/// `stat` of a key file; a missing file is [`ErrorKind::NotFound`].
pub(crate) fn stat(op: Operation, path: &str) -> Result<FileStat> {
    unix::stat(path).map_err(|e| file_error(op, path, e))
}

fn file_error(op: Operation, path: &str, e: std::io::Error) -> Error {
    match e.raw_os_error() {
        Some(errno::ENOENT) => Error::os(op, "stat", e)
            .detail(format!("no segment exists for this key (its key file {path} does not exist)")),
        Some(errno::ENOTDIR) | Some(errno::ENAMETOOLONG) | Some(errno::ELOOP) | Some(errno::EINVAL) => {
            Error::os_as(ErrorKind::KeyError, op, "stat", e).detail(format!("{path:?} cannot be a key file"))
        }
        Some(errno::EACCES) => Error::os(op, "stat", e).detail(format!("permission denied for the key file {path}")),
        _ => Error::os_as(ErrorKind::KeyError, op, "stat", e).detail(format!("unable to use the key file {path}")),
    }
}

/// The key file's `stat`, creating the file first if it is missing (as
/// Qt: `O_CREAT | O_EXCL`, 0640). If this call created it, the file comes
/// back open too.
///
/// `perm` gives the permissions of the lock the file is for, if they are
/// not Qt's default: the file then gets their group, and is readable by
/// everybody who may take the lock (a process making the lock semaphore
/// opens the file to hold its `flock` meanwhile).
pub(crate) fn ensure(
    op: Operation,
    path: &str,
    marker: bool,
    perm: impl FnOnce() -> Option<LockMode>,
) -> Result<(FileStat, Option<OwnedFd>)> {
    let mut perm = Some(perm);
    loop {
        match unix::stat(path) {
            Ok(st) => return Ok((st, None)),
            Err(e) if e.raw_os_error() == Some(errno::ENOENT) => {}
            Err(e) => return Err(file_error(op, path, e)),
        }
        let how = OpenHow { write: true, create: Create::Exclusive, mode: 0o640, no_follow: true };
        let fd = match unix::open(path, how) {
            Ok(fd) => fd,
            // Somebody made it between our stat and our open: use theirs.
            Err(e) if e.raw_os_error() == Some(errno::EEXIST) => continue,
            Err(e) => {
                return Err(match e.raw_os_error() {
                    Some(errno::EACCES) => {
                        Error::os(op, "open", e).detail(format!("permission denied creating the key file {path}"))
                    }
                    _ => Error::os_as(ErrorKind::KeyError, op, "open", e)
                        .detail(format!("unable to make the key file {path}")),
                })
            }
        };
        if let Some(lock) = perm.take().and_then(|f| f()) {
            if let Err(e) = give_perm(fd.as_fd(), &lock) {
                let _ = unix::unlink(path);
                let what = format!("the key file {path}");
                return Err(match lock.group {
                    Some(gid) => crate::backend::group_error(op, "fchown", &what, gid, e),
                    None => Error::os(op, "fchmod", e).detail(format!("unable to set the permissions of {what}")),
                });
            }
        }
        if marker {
            // Best effort: without the marker the file is merely kept.
            let _ = unix::write_all(fd.as_fd(), MARKER);
        }
        let st = unix::fstat(fd.as_fd()).map_err(|e| Error::os(op, "fstat", e))?;
        return Ok((st, Some(fd)));
    }
}

/// Gives a new key file the group of its lock and read access for all of
/// the lock's users (owner-writable as Qt's).
fn give_perm(fd: std::os::fd::BorrowedFd<'_>, lock: &LockMode) -> std::io::Result<()> {
    if let Some(mode) = lock.mode {
        let others = if mode & 0o006 != 0 { 0o004 } else { 0 };
        unix::fchmod(fd, 0o640 | others)?;
    }
    match lock.group.map(|gid| unix::fchgrp(fd, gid)) {
        Some(Err(e)) if lock.group_required || !errno::is(&e, errno::EPERM) => Err(e),
        _ => Ok(()),
    }
}

/// True if the file name follows Qt's legacy scheme.
pub(crate) fn is_qt_name(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or(path);
    let rest = match file.strip_prefix("qipc_sharedmemory_").or_else(|| file.strip_prefix("qipc_systemsem_")) {
        Some(rest) => rest,
        None => return false,
    };
    rest.len() >= 40
        && rest.is_char_boundary(rest.len() - 40)
        && rest[..rest.len() - 40].bytes().all(|b| b.is_ascii_alphabetic())
        && rest[rest.len() - 40..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// True if the file begins with qipc's marker.
fn has_marker(path: &str) -> bool {
    let mut buf = [0u8; MARKER.len()];
    unix::read_prefix(path, &mut buf).is_ok_and(|n| n == MARKER.len()) && buf[..] == *MARKER
}

/// True if qipc may remove the key file described by `st` at `path`.
pub(crate) fn removable(path: &str, st: &FileStat) -> bool {
    st.file_type == FileType::Regular && (is_qt_name(path) || has_marker(path))
}

/// Removes the key file at `path` if it is still the file `id` and qipc may
/// remove it; returns whether it did.
pub(crate) fn remove_if_same(path: &str, id: FileId) -> bool {
    match unix::lstat(path) {
        Ok(st) if st.id == id && removable(path, &st) => unix::unlink(path).is_ok(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qt_names() {
        assert!(is_qt_name("/tmp/qipc_sharedmemory_SharedMemoryExample239c304753a51ce3617c8aac22ef1d963b31c7c5"));
        assert!(is_qt_name("/tmp/qipc_systemsem_239c304753a51ce3617c8aac22ef1d963b31c7c5"));
        assert!(!is_qt_name("/tmp/qipc_systemsem_Example"));
        assert!(!is_qt_name("/etc/passwd"));
        assert!(!is_qt_name("/tmp/qipc_sharedmemory_ab1239c304753a51ce3617c8aac22ef1d963b31c7c5"));
    }

    #[test]
    fn only_qipc_made_native_key_files_are_removable() {
        let dir = std::env::temp_dir();
        let mine = format!("{}/qipc-unit-keyfile-mine-{}", dir.display(), std::process::id());
        let users = format!("{}/qipc-unit-keyfile-users-{}", dir.display(), std::process::id());
        let (st, created) = ensure(Operation::Create, &mine, true, || None).unwrap();
        let created = created.is_some();
        assert!(created);
        assert!(ensure(Operation::Create, &mine, true, || None).unwrap().1.is_none());
        std::fs::write(&users, b"").unwrap();
        let users_st = unix::stat(&users).unwrap();
        assert!(!remove_if_same(&users, users_st.id), "a file qipc did not make");
        assert!(!remove_if_same(&dir.display().to_string(), unix::stat(&dir.display().to_string()).unwrap().id));
        assert!(remove_if_same(&mine, st.id));
        std::fs::remove_file(&users).unwrap();
    }
}
