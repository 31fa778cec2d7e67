//! One file per command. Each takes its parsed arguments and returns the
//! exit status, or a [`CliError`] that `main` prints.

mod attach;
mod demo;
mod describe;
mod gc;
mod info;
mod key;
mod lock;
mod ls;
mod read;
mod rm;
mod share;
mod write;

use std::io::Read as _;

use qipc::datastream::DataStreamWriter;

use crate::{
    cli::{Command, Data},
    error::{CliError, CmdResult},
};

/// Runs a command.
pub fn run(command: Command) -> CmdResult {
    match command {
        Command::Ls(a) => ls::run(&a),
        Command::Info(a) => info::run(&a),
        Command::Key(a) => key::run(&a),
        Command::Share(a) => share::run(&a),
        Command::Read(a) => read::run(&a),
        Command::Write(a) => write::run(&a),
        Command::Lock(a) => lock::run(&a),
        Command::Rm(a) => rm::run(&a),
        Command::Gc(a) => gc::run(&a),
        Command::Demo(a) => demo::run(&a),
        Command::DemoReader(a) => demo::reader(&a),
    }
}

/// The bytes given by `--text`, `--qstring`, `--file` or `--stdin`.
fn payload(data: &Data) -> Result<Vec<u8>, CliError> {
    if let Some(text) = &data.text {
        return os_bytes(text);
    }
    if let Some(text) = &data.qstring {
        let mut w = DataStreamWriter::new();
        w.write_qstring(Some(text));
        return Ok(w.into_bytes());
    }
    if let Some(path) = &data.file {
        return std::fs::read(path).map_err(|e| CliError::io(format!("cannot read {}", path.display()), &e));
    }
    let mut buf = Vec::new();
    std::io::stdin().read_to_end(&mut buf).map_err(|e| CliError::io("cannot read standard input", &e))?;
    Ok(buf)
}

/// The bytes of a `--text` argument: as given on Unix (any bytes), UTF-8
/// elsewhere.
fn os_bytes(s: &std::ffi::OsStr) -> Result<Vec<u8>, CliError> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(s.as_bytes().to_vec())
    }
    #[cfg(not(unix))]
    {
        s.to_str()
            .map(|t| t.as_bytes().to_vec())
            .ok_or_else(|| CliError::usage(format!("--text is not valid UTF-8 ({s:?})")))
    }
}

/// A size from the command line as a `usize` (a 64-bit count on a 32-bit
/// system may not fit).
fn to_usize(n: u64, what: &str) -> Result<usize, CliError> {
    usize::try_from(n).map_err(|_| CliError::new("InvalidSize", format!("{what} {n} is too large for this system")))
}

/// An inspection command on a system without the inspector.
#[cfg(not(target_os = "linux"))]
fn not_here(what: &str) -> CliError {
    CliError::new("Unsupported", format!("{what} is available on Linux only (it reads /proc and /dev/shm)"))
}
