//! `qipc lock`: hold a segment's lock (the one Qt's `lock()` takes) while
//! a command runs, then release it; exit with the command's status.

use std::{process::Command, time::Instant};

use qipc::AccessMode;
use serde::Serialize;

use super::attach::Session;
use crate::{
    cli::LockArgs,
    error::{CliError, CmdResult},
    json::{self, KeyJson},
    keys,
    signals::StopRequests,
};

#[derive(Serialize)]
struct LockDoc {
    key: KeyJson,
    run: Vec<String>,
    exit_code: Option<i32>,
    signal: Option<i32>,
    held_seconds: f64,
}

pub fn run(a: &LockArgs) -> CmdResult {
    let key = keys::resolve(&a.key)?;
    let Some((program, args)) = a.command.split_first() else {
        return Err(CliError::usage("a COMMAND to run is required after `--`"));
    };
    // A Ctrl-C reaches the command too; qipc outlives it, so that the lock
    // is released only once the command has exited.
    let _stops = StopRequests::install()?;
    let session = Session::open(&key, AccessMode::ReadOnly, a.timeout)?;
    let guard = session.lock()?;
    let started = Instant::now();
    let status = Command::new(program).args(args).status();
    let held = started.elapsed();
    drop(guard);
    session.close()?;
    let status = status.map_err(|e| {
        let mut err = CliError::io(format!("cannot run `{}`", program.to_string_lossy()), &e);
        err.status = if e.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 };
        err
    })?;
    let signal = signal_of(&status);
    let code = status.code().or_else(|| signal.map(|s| 128 + s)).unwrap_or(1);
    if a.out.json {
        let doc = LockDoc {
            key: KeyJson::of(&key),
            run: a.command.iter().map(|s| s.to_string_lossy().into_owned()).collect(),
            exit_code: status.code(),
            signal,
            held_seconds: held.as_secs_f64(),
        };
        json::print("lock", &doc)?;
    }
    Ok(u8::try_from(code.clamp(0, 255)).unwrap_or(1))
}

#[cfg(unix)]
fn signal_of(status: &std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

#[cfg(not(unix))]
fn signal_of(_status: &std::process::ExitStatus) -> Option<i32> {
    None
}
