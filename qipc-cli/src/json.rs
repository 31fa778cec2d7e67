//! The `--json` documents of JSON.md, as serde types. Every document has
//! `schema` and `command`; shared types (a key, an object, a clean-up
//! entry) have the same fields wherever they appear.

use qipc::NativeKey;
use serde::Serialize;

use crate::{error::CliError, keys::backend_name};

/// The schema version (JSON.md).
pub const SCHEMA: &str = "qipc/2";

/// A document: `schema`, `command`, then the command's fields.
#[derive(Debug, Serialize)]
struct Doc<'a, T: Serialize> {
    schema: &'static str,
    command: &'a str,
    #[serde(flatten)]
    body: &'a T,
}

/// Prints a document, pretty, on standard output.
pub fn print<T: Serialize>(command: &str, body: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(&Doc { schema: SCHEMA, command, body })
        .map_err(|e| CliError::new("IoError", format!("cannot write JSON: {e}")))?;
    out(&text)
}

/// Prints a document on one line (a JSON Lines event, for `share`).
pub fn print_line<T: Serialize>(command: &str, body: &T) -> Result<(), CliError> {
    let text = serde_json::to_string(&Doc { schema: SCHEMA, command, body })
        .map_err(|e| CliError::new("IoError", format!("cannot write JSON: {e}")))?;
    out(&text)
}

fn out(text: &str) -> Result<(), CliError> {
    crate::output::outln(text)
}

/// An error document's `error`.
#[derive(Debug, Serialize)]
pub struct ErrorJson<'a> {
    /// The kind (`NotFound`, `UsageError`...).
    pub kind: &'a str,
    /// What failed.
    pub message: &'a str,
    /// What to do about it.
    pub hints: &'a [String],
    /// The exit status.
    pub exit_code: u8,
}

/// `{ "error": ErrorJson }`.
#[derive(Debug, Serialize)]
pub struct ErrorDoc<'a> {
    /// The error.
    pub error: ErrorJson<'a>,
}

/// A key.
#[derive(Debug, Serialize)]
pub struct KeyJson {
    /// `systemv`, `systemv-<id>`, `posix` or `windows`.
    #[serde(rename = "type")]
    pub key_type: String,
    /// The name the system sees.
    pub native: String,
    /// The legacy key, if known.
    pub legacy: Option<String>,
    /// `QNativeIpcKey::toString()`.
    pub text: String,
}

impl KeyJson {
    /// The JSON of `key`.
    pub fn of(key: &NativeKey) -> KeyJson {
        KeyJson {
            key_type: backend_name(key.key_type()),
            native: key.native_key().to_string(),
            legacy: key.legacy_key().map(str::to_string),
            text: key.to_string(),
        }
    }
}

/// A derived name: the key, where its object lives, the System V key the
/// file gives now.
#[derive(Debug, Serialize)]
pub struct NameJson {
    /// The native key of the segment or of the lock.
    pub key: KeyJson,
    /// Its file: a key file (System V) or a `/dev/shm` path (POSIX).
    pub path: String,
    /// The System V key (`ftok`) of the key file, if it exists.
    pub sysv_key: Option<String>,
}

/// `0x5100c0e9`, as `ipcs` shows a System V key.
pub fn hex_key(k: i32) -> String {
    format!("0x{:08x}", k as u32)
}

#[cfg(target_os = "linux")]
pub use linux::*;

#[cfg(target_os = "linux")]
mod linux {
    use qipc::inspect::{GcEntry, GcOutcome, GcReport, KeyFileOf, Object, Snapshot, TemporaryOf, Usage};
    use serde::Serialize;

    use super::{hex_key, KeyJson};
    use crate::keys::backend_name;

    /// A process using an object.
    #[derive(Debug, Serialize)]
    pub struct ProcessJson {
        /// Its pid.
        pub pid: i32,
        /// Its command name.
        pub command: String,
    }

    /// One object `ls` and `info` list.
    #[derive(Debug, Serialize)]
    pub struct ObjectJson {
        /// `segment`, `semaphore`, `key-file` or `temporary`.
        pub kind: &'static str,
        /// `systemv` or `posix`.
        pub backend: String,
        /// `in-use`, `orphaned` or `unknown`.
        pub state: &'static str,
        /// Why the state is what it is.
        pub why: Option<String>,
        /// The name is recognisably Qt's.
        pub qt_named: bool,
        /// Its key, if known.
        pub key: Option<KeyJson>,
        /// A file path, or `shmid N` / `semid N`.
        pub location: String,
        /// The System V shmid or semid.
        pub id: Option<i32>,
        /// The System V key.
        pub sysv_key: Option<String>,
        /// Segment size in bytes.
        pub size: Option<u64>,
        /// System V `shm_nattch`.
        pub attached: Option<u64>,
        /// Removed but still attached (System V).
        pub removed: bool,
        /// Semaphore value.
        pub value: Option<i32>,
        /// Processes waiting for the semaphore.
        pub waiters: Option<u64>,
        /// A POSIX semaphore with qipc's robust gate.
        pub robust: Option<bool>,
        /// Processes seen using it.
        pub processes: Vec<ProcessJson>,
        /// System V creator.
        pub creator_pid: Option<i32>,
        /// Whether the creator still runs.
        pub creator_alive: Option<bool>,
        /// System V semaphore: the last process to operate on it.
        pub last_pid: Option<i32>,
        /// Whether it still runs.
        pub last_pid_alive: Option<bool>,
        /// Owner.
        pub uid: u32,
        /// Owner's name.
        pub user: Option<String>,
        /// Permission bits, octal.
        pub mode: String,
        /// Creation or modification time, seconds since the epoch.
        pub created: i64,
        /// Age when listed.
        pub age_seconds: u64,
        /// A key file: what it names (`segment`, `semaphore`); a temporary:
        /// who makes such files (`glibc`, `qipc`).
        pub of: Option<&'static str>,
    }

    /// The JSON name of an object's kind.
    pub fn kind_name(short: &str) -> &'static str {
        match short {
            "shm" => "segment",
            "sem" => "semaphore",
            "keyfile" => "key-file",
            _ => "temporary",
        }
    }

    impl ObjectJson {
        /// The JSON of `o`, as seen in `snap`.
        pub fn of(o: &Object, snap: &Snapshot) -> ObjectJson {
            let usage = o.usage();
            let processes = match usage {
                Usage::InUse { processes, .. } => {
                    processes.iter().map(|p| ProcessJson { pid: p.pid, command: p.command.clone() }).collect()
                }
                _ => Vec::new(),
            };
            let owner = o.owner();
            let mut j = ObjectJson {
                kind: kind_name(o.kind()),
                backend: backend_name(o.backend()),
                state: usage.as_str(),
                why: usage.detail().map(str::to_string),
                qt_named: true,
                key: o.key().map(KeyJson::of),
                location: o.location(),
                id: None,
                sysv_key: None,
                size: None,
                attached: None,
                removed: false,
                value: None,
                waiters: None,
                robust: None,
                processes,
                creator_pid: None,
                creator_alive: None,
                last_pid: None,
                last_pid_alive: None,
                uid: owner.uid,
                user: owner.user.clone(),
                mode: format!("{:04o}", owner.mode),
                created: o.created(),
                age_seconds: o.age(snap).as_secs(),
                of: None,
            };
            match o {
                Object::SysvSegment(s) => {
                    j.id = Some(s.shmid);
                    j.sysv_key = (s.sysv_key != 0).then(|| hex_key(s.sysv_key));
                    j.size = Some(s.size);
                    j.attached = Some(s.attached);
                    j.removed = s.removed;
                    j.creator_pid = Some(s.creator.0).filter(|p| *p > 0);
                    j.creator_alive = j.creator_pid.map(|_| s.creator.1);
                }
                Object::SysvSemaphore(s) => {
                    j.id = Some(s.semid);
                    j.sysv_key = Some(hex_key(s.sysv_key));
                    j.value = Some(s.value);
                    j.waiters = Some(u64::try_from(s.waiters).unwrap_or(0));
                    j.last_pid = s.last_pid.map(|p| p.0);
                    j.last_pid_alive = s.last_pid.map(|p| p.1);
                }
                Object::PosixSegment(p) => {
                    j.size = Some(p.size);
                    j.qt_named = p.qt_named;
                }
                Object::PosixSemaphore(p) => {
                    j.value = Some(p.value);
                    j.waiters = Some(p.waiters);
                    j.robust = Some(p.robust);
                }
                Object::KeyFile(k) => {
                    j.sysv_key = Some(hex_key(k.sysv_key));
                    j.of = Some(match k.of {
                        KeyFileOf::Segment => "segment",
                        KeyFileOf::Semaphore => "semaphore",
                    });
                }
                Object::Temporary(t) => {
                    j.creator_pid = t.creator;
                    j.of = Some(match t.of {
                        TemporaryOf::Glibc => "glibc",
                        TemporaryOf::Qipc => "qipc",
                    });
                }
                _ => {}
            }
            j
        }
    }

    /// One object a clean-up looked at.
    #[derive(Debug, Serialize)]
    pub struct EntryJson {
        /// As in an object.
        pub kind: &'static str,
        /// As in an object.
        pub backend: String,
        /// The System V shmid or semid (for `ipcrm`).
        pub id: Option<i32>,
        /// As in an object.
        pub location: String,
        /// As in an object.
        pub key: Option<KeyJson>,
        /// `removed`, `would-remove`, `kept`, `failed` or `skipped`.
        pub outcome: &'static str,
        /// Its state when listed (why it is garbage, or who uses it).
        pub reason: String,
        /// Why it was kept, failed or skipped.
        pub detail: Option<String>,
    }

    impl EntryJson {
        /// The JSON of `e`.
        pub fn of(e: &GcEntry) -> EntryJson {
            EntryJson {
                kind: kind_name(e.object.kind),
                backend: backend_name(e.object.backend),
                id: e.object.id,
                location: e.object.location.clone(),
                key: e.object.key.as_ref().map(KeyJson::of),
                outcome: e.outcome.as_str(),
                reason: e.reason.clone(),
                detail: e.outcome.detail().map(str::to_string),
            }
        }
    }

    impl EntryJson {
        /// An object `rm --dry-run` would remove.
        pub fn would_remove(o: &Object) -> EntryJson {
            let id = match o {
                Object::SysvSegment(s) => Some(s.shmid),
                Object::SysvSemaphore(s) => Some(s.semid),
                _ => None,
            };
            EntryJson {
                kind: kind_name(o.kind()),
                backend: backend_name(o.backend()),
                id,
                location: o.location(),
                key: o.key().map(KeyJson::of),
                outcome: GcOutcome::WouldRemove.as_str(),
                reason: o.usage().detail().unwrap_or(o.usage().as_str()).to_string(),
                detail: None,
            }
        }
    }

    /// Counts of a clean-up's outcomes.
    #[derive(Debug, Default, Clone, Copy, Serialize)]
    pub struct Counts {
        /// Removed, or in a dry run would be.
        pub removed: usize,
        /// Came into use (or changed) since listed, and kept.
        pub kept: usize,
        /// Removing failed.
        pub failed: usize,
        /// Left alone: in use, of unknown use, or not named.
        pub skipped: usize,
    }

    impl Counts {
        /// The counts of `entries`.
        pub fn of(entries: &[EntryJson]) -> Counts {
            let mut c = Counts::default();
            for e in entries {
                match e.outcome {
                    "removed" | "would-remove" => c.removed += 1,
                    "kept" => c.kept += 1,
                    "failed" => c.failed += 1,
                    _ => c.skipped += 1,
                }
            }
            c
        }
    }

    /// The entries of a report.
    pub fn entries(report: &GcReport) -> Vec<EntryJson> {
        report.entries.iter().map(EntryJson::of).collect()
    }
}
