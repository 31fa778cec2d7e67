//! **Do not start twice** (the classic "avoid starting a second process" use): the first
//! instance creates a small shared memory segment as a marker and keeps it
//! until Ctrl-C or SIGTERM; a second instance finds it, says that one is
//! already running, and exits with status 1.
//!
//! ```text
//! cargo run -p qipc --example single_instance                           # legacy key "SingleInstanceExample" (System V)
//! cargo run -p qipc --example single_instance -- --key MyApp            # another legacy key
//! cargo run -p qipc --example single_instance -- --type posix           # the legacy key as a POSIX object
//! cargo run -p qipc --example single_instance -- --native posix:/MyApp  # a native key (QNativeIpcKey text form)
//! ```
//!
//! The classic Qt version (`if (!shm.create(1)) { already running; return; }`)
//! breaks after a crash: the marker outlives a process killed with SIGKILL,
//! and every later start believes another instance runs until somebody
//! removes it by hand or reboots. Here a later start recovers by itself.
//!
//! # How an orphan is told from a live instance
//!
//! A live instance stays attached to its marker for its whole life; a dead
//! one is detached by the kernel (System V: `shm_nattch` drops; POSIX: its
//! descriptor and mapping go). So "is anybody attached?" is the liveness test,
//! and it needs no pid, which could be reused after a crash:
//!
//! - System V: `CreateOptions::reclaim_orphan(true)`. When `create` meets an
//!   existing segment whose attach count is 0, it removes it and creates a
//!   fresh one. This is Qt programs' usual "attach, then detach" clean-up, done in
//!   one step.
//! - POSIX: `create` always removes an object that no process has open or
//!   mapped, then creates it anew (`reclaim_orphan(true)` is passed as well,
//!   to say so).
//!
//! The check and the create run under the key's lock semaphore, which every
//! qipc and Qt process takes around create, attach and detach. Two instances
//! starting at once are therefore serialised: the first reclaims and
//! attaches, the second then sees an attach count of 1 and backs off. A
//! second instance that briefly attaches to read the running one's pid (see
//! below) can never make a live marker look orphaned, because the first
//! instance's own attachment keeps the count at 1 or more.
//!
//! Two limits remain. A System V lock held by a killed process is released by
//! the kernel (`SEM_UNDO`), but a POSIX semaphore is not: an instance killed
//! in the microseconds while it writes its pid under the lock leaves the POSIX
//! lock taken, and the next start waits for it. And a marker that a *Qt*
//! program keeps is detected the same way, as Qt also stays attached.
//!
//! The marker holds the first instance's pid (a big-endian `quint32`, as
//! QDataStream writes it), which a second instance reports.

mod support;

use std::process::ExitCode;

use support::{say, StopRequests, STOP_SIGNALS, STOP_WORDS};

use qipc::{AccessMode, CreateOptions, ErrorKind, KeyType, NativeKey, SharedMemory};

const DEFAULT_KEY: &str = "SingleInstanceExample";
const USAGE: &str = "usage: single_instance [--key KEY] [--type systemv|posix] | [--native NATIVE]
Runs until SIGINT/SIGTERM unless another instance with the same key runs (then exits 1).
  --key KEY        legacy key, as QSharedMemory(KEY); default \"SingleInstanceExample\"
  --type TYPE      the kind of object the legacy key names: systemv (default, as Qt on Linux),
                   posix (as a Qt built with QT_POSIX_IPC, or Qt 6's legacyNativeKey(KEY, PosixRealtime))
                   or, on Windows, windows (the default there)
  --native NATIVE  a native key in QNativeIpcKey text form (posix:/NAME, systemv:/path/to/file,
                   windows:NAME); a bare NAME means what QNativeIpcKey(NAME) means in Qt 6
                   (posix:NAME; windows:NAME on Windows)";

/// Exit status of a second instance.
const ALREADY_RUNNING: u8 = 1;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let key = match parse_key(&args) {
        Ok(Some(key)) => key,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("single_instance: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let described = match key.legacy_key() {
        Some(legacy) => format!("legacy key {legacy:?}, {}", kind_of(&key)),
        None => format!("native key {key}"),
    };

    // Handle stop requests before creating the marker, so that one
    // arriving early is taken by the wait below and we detach.
    let stops = match StopRequests::install() {
        Ok(stops) => stops,
        Err(err) => {
            eprintln!("single_instance: cannot handle {STOP_SIGNALS}: {err}");
            return ExitCode::FAILURE;
        }
    };

    let mut marker = SharedMemory::with_native_key(key.clone());
    let options = CreateOptions::new().reclaim_orphan(true);
    match marker.create_with(4, AccessMode::ReadWrite, &options) {
        Ok(()) => {}
        Err(err) if err.kind() == ErrorKind::AlreadyExists => {
            let pid = running_pid(&key).map_or_else(String::new, |pid| format!(" (pid {pid})"));
            eprintln!(
                "single_instance: another instance is already running{pid} ({described}); not starting a second one."
            );
            return ExitCode::from(ALREADY_RUNNING);
        }
        Err(err) => {
            eprintln!("single_instance: cannot create the instance marker ({described}): {err}");
            return ExitCode::FAILURE;
        }
    }
    let pid = std::process::id();
    if let Err(err) = marker.lock().and_then(|mut guard| guard.write_at(0, &pid.to_be_bytes())) {
        eprintln!("single_instance: cannot write the instance marker ({described}): {err}");
        return ExitCode::FAILURE;
    }

    say(format_args!("running (pid {pid}) with {described}; stop with {STOP_WORDS}"));
    stops.wait();
    say(format_args!("single_instance: stop requested ({STOP_SIGNALS}), exiting"));
    match marker.detach() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("single_instance: detach failed: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `Ok(None)` for `--help`.
fn parse_key(args: &[String]) -> Result<Option<NativeKey>, String> {
    let (mut legacy, mut key_type, mut native) = (None, None, None);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().cloned().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--key" if legacy.is_none() => legacy = Some(value("--key")?),
            "--type" if key_type.is_none() => {
                key_type = Some(match value("--type")?.as_str() {
                    "systemv" | "sysv" => KeyType::SYSTEM_V,
                    "posix" => KeyType::PosixRealtime,
                    "windows" if cfg!(windows) => KeyType::Windows,
                    other if cfg!(windows) => {
                        return Err(format!("unknown key type {other:?} (expected windows, systemv or posix)"))
                    }
                    other => return Err(format!("unknown key type {other:?} (expected systemv or posix)")),
                })
            }
            "--native" if native.is_none() => native = Some(parse_native(&value("--native")?)?),
            "--key" | "--type" | "--native" => return Err(format!("{arg} given twice")),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    match native {
        Some(_) if legacy.is_some() || key_type.is_some() => {
            Err("--native names the key by itself; do not combine it with --key or --type".to_string())
        }
        Some(native) => Ok(Some(native)),
        None => Ok(Some(NativeKey::legacy_shared_memory(
            legacy.as_deref().unwrap_or(DEFAULT_KEY),
            key_type.unwrap_or(KeyType::LEGACY_DEFAULT),
        ))),
    }
}

/// `posix:NAME`, `systemv:/path`, `windows:NAME` (QNativeIpcKey text form), or
/// a bare name of Qt's default type (POSIX; on Windows, a Windows name).
fn parse_native(text: &str) -> Result<NativeKey, String> {
    if text.contains(':') {
        NativeKey::from_string(text).map_err(|err| err.to_string())
    } else if text.is_empty() {
        Err("--native needs a non-empty name".to_string())
    } else {
        Ok(NativeKey::new(text, KeyType::DEFAULT))
    }
}

/// "System V" or "POSIX", and where the object lives.
fn kind_of(key: &NativeKey) -> String {
    match key.key_type() {
        KeyType::PosixRealtime => format!("POSIX /dev/shm/{}", key.native_key().trim_start_matches('/')),
        KeyType::Windows => format!("Windows file mapping {}", key.native_key()),
        _ => format!("System V, key file {}", key.native_key()),
    }
}

/// The pid the running instance wrote into its marker, if it can be read.
fn running_pid(key: &NativeKey) -> Option<u32> {
    let mut marker = SharedMemory::with_native_key(key.clone());
    marker.attach(AccessMode::ReadOnly).ok()?;
    let mut pid = [0u8; 4];
    let read = marker.lock().and_then(|guard| guard.read_at(0, &mut pid));
    let _ = marker.detach();
    read.ok()?;
    Some(u32::from_be_bytes(pid)).filter(|&pid| pid != 0)
}
