//! `qipc share`: create a segment, put the data in it under the lock, and
//! stay attached until a stop request (or `--for` has passed); then detach,
//! which removes the segment if nobody else is attached.

use std::io::IsTerminal;

use qipc::{AccessMode, CreateOptions, SharedMemory};
use serde::Serialize;

use crate::{
    cli::ShareArgs,
    error::{qipc_error, CliError, CmdResult},
    json::{self, KeyJson},
    keys, output,
    signals::{StopRequests, STOP_WORDS},
};

#[derive(Serialize)]
struct Event {
    event: &'static str,
    key: KeyJson,
    size: usize,
    bytes: usize,
    pid: u32,
    why: Option<&'static str>,
}

pub fn run(a: &ShareArgs) -> CmdResult {
    let key = keys::resolve(&a.key)?;
    let data = super::payload(&a.data)?;
    let size = match a.size {
        Some(s) => super::to_usize(s, "--size")?,
        None => data.len().max(1),
    };
    if size == 0 {
        return Err(CliError::usage("--size must be at least 1"));
    }
    if data.len() > size {
        return Err(CliError::new(
            "InvalidSize",
            format!("{} bytes of data do not fit in a {size}-byte segment", data.len()),
        )
        .hint(format!("--size {} (or more) makes room for them", data.len())));
    }
    // Before create: a stop request from now on is waited for, and the
    // segment is always detached.
    let stops = StopRequests::install()?;
    let mut shm = SharedMemory::with_native_key(key.clone());
    let mut options = CreateOptions::new();
    if let Some(mode) = a.mode {
        options = options.mode(mode);
    }
    shm.create_with(size, AccessMode::ReadWrite, &options).map_err(|e| qipc_error(&e, &key))?;
    shm.lock().and_then(|mut guard| guard.write_at(0, &data)).map_err(|e| qipc_error(&e, &key))?;
    let (native, segment_size) = (shm.native_key().clone(), shm.size());
    let event = |event, why| Event {
        event,
        key: KeyJson::of(&native),
        size: segment_size,
        bytes: data.len(),
        pid: std::process::id(),
        why,
    };
    if a.out.json {
        json::print_line("share", &event("ready", None))?;
    } else {
        let line = format!("READY {native} size={segment_size} bytes={} pid={}", data.len(), std::process::id());
        output::outln(&line)?;
        if std::io::stderr().is_terminal() {
            output::note(&format!("sharing {}; {STOP_WORDS} detaches", keys::label(&key)));
        }
    }
    let why = if stops.wait(a.duration) { "stop requested" } else { "time is up" };
    shm.detach().map_err(|e| qipc_error(&e, &key))?;
    if a.out.json {
        json::print_line("share", &event("detached", Some(why)))?;
    } else {
        output::outln(&format!("DETACHED ({why})"))?;
    }
    Ok(0)
}
