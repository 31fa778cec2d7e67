//! A failed command: what the user did that failed, in their words, with
//! hints; printed as `qipc: COMMAND: MESSAGE` (or, with `--json`, as the
//! error document of JSON.md). Exit status 1, or 2 for a usage error.

use std::{fmt, io};

/// A failed command.
#[derive(Debug, Clone)]
pub struct CliError {
    /// The kind: Qt's error kinds (`NotFound`, `LockError`...), qipc's
    /// (`InUse`, `InvalidData`), or the command's own (`UsageError`,
    /// `IoError`, `Interrupted`).
    pub kind: &'static str,
    /// What failed, in one sentence.
    pub message: String,
    /// What to do about it, a line each.
    pub hints: Vec<String>,
    /// The exit status: 1, or 2 for a usage error.
    pub status: u8,
    /// Nothing to print: standard output went away (`qipc ls | head -1`),
    /// as other commands in a pipeline, qipc just stops.
    pub quiet: bool,
}

impl CliError {
    /// An operation failed (exit status 1).
    pub fn new(kind: &'static str, message: impl Into<String>) -> CliError {
        CliError { kind, message: message.into(), hints: Vec::new(), status: 1, quiet: false }
    }

    /// The command line is wrong (exit status 2).
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError { kind: "UsageError", message: message.into(), hints: Vec::new(), status: 2, quiet: false }
    }

    /// A file, standard input or output, or a process could not be used.
    pub fn io(what: impl fmt::Display, err: &io::Error) -> CliError {
        CliError::new("IoError", format!("{what}: {}", io_reason(err)))
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> CliError {
        self.hints.push(hint.into());
        self
    }
}

/// An I/O error in plain words, without Rust's `(os error N)` suffix.
fn io_reason(err: &io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_lowercase(),
        None => text,
    }
}

/// The result of a command: the exit status on success (0, or the status
/// of the command `lock` ran).
pub type CmdResult = Result<u8, CliError>;

/// A library error on `key`, in the user's words. Commands that know more
/// (who holds a lock, who is attached) say it themselves.
pub fn qipc_error(err: &qipc::Error, key: &qipc::NativeKey) -> CliError {
    use qipc::{ErrorKind as K, Operation as Op};
    let k = crate::keys::label(key);
    let args = crate::keys::as_args(key);
    // The description is the library's own words unless a system call
    // failed, where it is only the kind's phrase (or "<call> failed").
    let desc = err.description();
    let os = std::error::Error::source(err).map(|s| {
        let s = s.to_string();
        s.find(" (os error").map_or(s.clone(), |i| s[..i].to_string())
    });
    let detail = match (err.system_call(), os) {
        (Some(call), Some(os)) => format!("{call}: {}", os.to_lowercase()),
        _ => desc.to_string(),
    };
    let kind = err.kind().as_str();
    let e = match (err.kind(), err.operation()) {
        (K::NotFound, Op::Attach | Op::Lock | Op::Read | Op::Write | Op::Detach) => {
            CliError::new(kind, format!("there is no segment for the key {k}"))
                .hint("`qipc ls` lists the segments that exist")
        }
        (K::NotFound, _) => CliError::new(kind, format!("nothing exists for the key {k}")),
        (K::AlreadyExists, Op::Create) => {
            CliError::new(kind, format!("a segment for the key {k} exists already, and a process is attached to it"))
                .hint(format!("`qipc info {args}` shows who; `qipc write {args} ...` changes its data"))
        }
        (K::PermissionDenied, _) => CliError::new(
            kind,
            format!(
                "permission denied for the key {k} ({detail}): its objects belong to another user or do not allow this"
            ),
        )
        .hint(format!("`qipc info {args}` shows their owner and mode")),
        (K::InvalidSize, _) => CliError::new(kind, desc.to_string()),
        (K::KeyError, _) => CliError::new(kind, format!("the key {k} cannot be used: {detail}")),
        (K::LockError, _) => CliError::new(kind, format!("the lock of the key {k} could not be taken: {detail}")),
        (K::OutOfResources, _) => {
            CliError::new(kind, format!("not enough memory or identifiers for the key {k}: {detail}"))
                .hint("the system's limits: /proc/sys/kernel/shm*, `df /dev/shm`")
        }
        (K::InUse, _) => CliError::new(kind, format!("the key {k} is in use: {detail}")),
        (K::InvalidData, _) => CliError::new(kind, detail),
        (_, op) => CliError::new(kind, format!("{op} of the key {k} failed: {detail}")),
    };
    e
}
