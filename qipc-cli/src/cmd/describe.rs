//! How keys, objects and states read as text: the names Qt derives for a
//! key, the object table of `ls`, `info` and `demo`, and who holds a lock.

use qipc::{KeyType, NativeKey};

use crate::{
    error::CliError,
    json::{hex_key, KeyJson, NameJson},
    output,
};

/// "System V", "POSIX" or "Windows".
pub fn backend_words(t: KeyType) -> &'static str {
    match t {
        KeyType::SystemV { .. } => "System V",
        KeyType::PosixRealtime => "POSIX",
        KeyType::Windows => "Windows",
    }
}

/// The names Qt derives for `key`: its segment's and its lock's.
pub fn names(key: &NativeKey) -> (NameJson, NameJson) {
    let lock = key.lock_key();
    (name(key, false), name(&lock, true))
}

fn name(key: &NativeKey, lock: bool) -> NameJson {
    let native = key.native_key();
    let (path, sysv_key) = match key.key_type() {
        KeyType::SystemV { ftok_id } => (native.to_string(), ftok(native, ftok_id)),
        KeyType::PosixRealtime if cfg!(target_os = "linux") => {
            let n = native.trim_start_matches('/');
            (if lock { format!("/dev/shm/sem.{n}") } else { format!("/dev/shm/{n}") }, None)
        }
        _ => (native.to_string(), None),
    };
    NameJson { key: KeyJson::of(key), path, sysv_key: sysv_key.map(hex_key) }
}

/// `ftok(path, id)` of an existing file, without creating it.
#[cfg(unix)]
fn ftok(path: &str, id: u8) -> Option<i32> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(((u32::from(id) << 24) | ((m.dev() as u32 & 0xff) << 16) | (m.ino() as u32 & 0xffff)) as i32)
}

#[cfg(not(unix))]
fn ftok(_path: &str, _id: u8) -> Option<i32> {
    None
}

/// `label:  value` lines, aligned.
pub fn print_rows(rows: &[(&str, String)]) -> Result<(), CliError> {
    let width = rows.iter().map(|(l, _)| l.chars().count()).max().unwrap_or(0) + 2;
    let mut text = String::new();
    for (label, value) in rows {
        let label = format!("{label}:");
        text.push_str(&format!("{label:<width$}{value}\n"));
    }
    output::out(&text)
}

#[cfg(target_os = "linux")]
pub use linux::*;

#[cfg(target_os = "linux")]
mod linux {
    use qipc::{
        inspect::{KeyReport, Object, Snapshot, Usage},
        KeyType,
    };

    use crate::{keys::backend_name, table::Table};

    /// `1024`, `4K`, `1M`: exact sizes, shortened when a unit divides them.
    pub fn human_size(n: u64) -> String {
        if n >= 1 << 30 && n % (1 << 30) == 0 {
            format!("{}G", n >> 30)
        } else if n >= 1 << 20 && n % (1 << 20) == 0 {
            format!("{}M", n >> 20)
        } else if n >= 1 << 10 && n % (1 << 10) == 0 {
            format!("{}K", n >> 10)
        } else {
            n.to_string()
        }
    }

    /// `5s`, `3m`, `2h`, `4d`.
    pub fn human_age(secs: u64) -> String {
        match secs {
            s if s < 120 => format!("{s}s"),
            s if s < 7200 => format!("{}m", s / 60),
            s if s < 2 * 86400 => format!("{}h", s / 3600),
            s => format!("{}d", s / 86400),
        }
    }

    /// The key column: the legacy key, the native key's text, or the
    /// file that names the object.
    pub fn key_cell(o: &Object) -> String {
        match o.key() {
            Some(k) => match k.legacy_key() {
                Some(l) => format!("{l:?}"),
                None => k.to_string(),
            },
            None => {
                let loc = o.location();
                if loc.starts_with("shmid ") || loc.starts_with("semid ") {
                    "-".into()
                } else {
                    loc
                }
            }
        }
    }

    /// The state column: `in-use`, `orphaned`, `unknown`, or `removed` for
    /// a System V segment removed while still attached; `*` marks a POSIX
    /// segment whose name is not Qt's.
    pub fn state_cell(o: &Object) -> String {
        let mut s = match o {
            Object::SysvSegment(s) if s.removed => "removed".to_string(),
            _ => o.usage().as_str().to_string(),
        };
        if is_foreign(o) {
            s.push('*');
        }
        s
    }

    /// A POSIX segment whose name is not Qt's.
    pub fn is_foreign(o: &Object) -> bool {
        matches!(o, Object::PosixSegment(p) if !p.qt_named)
    }

    /// The processes using it (`4242/qipc`), or how many are attached.
    pub fn users_cell(o: &Object) -> String {
        let procs = match o.usage() {
            Usage::InUse { processes, .. } => processes.iter().map(ToString::to_string).collect::<Vec<_>>(),
            _ => Vec::new(),
        };
        let attached = match o {
            Object::SysvSegment(s) => s.attached as usize,
            _ => 0,
        };
        let mut cell = procs.join(",");
        if attached > procs.len() {
            let more = attached - procs.len();
            if cell.is_empty() {
                cell = format!("{more} attached");
            } else {
                cell.push_str(&format!(" +{more}"));
            }
        }
        if cell.is_empty() {
            "-".into()
        } else {
            cell
        }
    }

    fn id_cell(o: &Object) -> String {
        match o {
            Object::SysvSegment(s) => s.shmid.to_string(),
            Object::SysvSemaphore(s) => s.semid.to_string(),
            _ => "-".into(),
        }
    }

    fn size_cell(o: &Object) -> String {
        match o {
            Object::SysvSegment(s) => human_size(s.size),
            Object::PosixSegment(p) => human_size(p.size),
            _ => "-".into(),
        }
    }

    fn value_cell(o: &Object) -> String {
        let v = match o {
            Object::SysvSemaphore(s) => s.value,
            Object::PosixSemaphore(p) => p.value,
            _ => return "-".into(),
        };
        if v < 0 {
            "?".into()
        } else {
            v.to_string()
        }
    }

    fn creator_cell(o: &Object) -> String {
        let (pid, alive) = match o {
            Object::SysvSegment(s) => (s.creator.0, s.creator.1),
            Object::SysvSemaphore(s) => match s.last_pid {
                Some(p) => p,
                None => return "-".into(),
            },
            Object::Temporary(t) => match t.creator {
                Some(p) => (p, false),
                None => return "-".into(),
            },
            _ => return "-".into(),
        };
        if pid <= 0 {
            "-".into()
        } else if alive {
            pid.to_string()
        } else {
            format!("{pid}(gone)")
        }
    }

    fn backend_cell(o: &Object) -> String {
        match o.backend() {
            KeyType::SystemV { .. } => "sysv".into(),
            other => backend_name(other),
        }
    }

    /// Which columns an object table has.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Columns {
        /// `ls`: fits 80 columns for common keys.
        Short,
        /// `ls --wide`: also owner, mode, creator, age, location and why.
        Wide,
        /// `info`, whose lines above name the key and its files: no key or
        /// location, but owner, mode, creator, age and why.
        OneKey,
    }

    /// The object table.
    pub fn object_table(objects: &[&Object], snap: &Snapshot, columns: Columns) -> Table {
        let mut header = vec!["KIND", "BACKEND", "ID", "SIZE", "VALUE", "STATE", "USERS"];
        // Cut first what is least needed to recognise an object.
        let cuttable = match columns {
            Columns::Short => {
                header.push("KEY");
                vec![6, 7]
            }
            Columns::Wide => {
                header.extend(["KEY", "OWNER", "MODE", "CREATOR", "AGE", "LOCATION", "WHY"]);
                vec![13, 12, 6, 7]
            }
            Columns::OneKey => {
                header.extend(["OWNER", "MODE", "CREATOR", "AGE", "WHY"]);
                vec![11, 6]
            }
        };
        let mut t = Table::new(header, cuttable);
        for o in objects {
            let mut row = vec![
                o.kind().to_string(),
                backend_cell(o),
                id_cell(o),
                size_cell(o),
                value_cell(o),
                state_cell(o),
                users_cell(o),
            ];
            if columns != Columns::OneKey {
                row.push(key_cell(o));
            }
            if columns != Columns::Short {
                let owner = o.owner();
                row.extend([
                    owner.user.clone().unwrap_or_else(|| owner.uid.to_string()),
                    format!("{:04o}", owner.mode),
                    creator_cell(o),
                    human_age(o.age(snap).as_secs()),
                ]);
                if columns == Columns::Wide {
                    row.push(o.location());
                }
                row.push(o.usage().detail().unwrap_or("-").to_string());
            }
            t.row(row);
        }
        t
    }

    /// Who holds the lock of `report`'s key, as far as the system tells:
    /// `None` if the lock is free or does not exist.
    pub fn lock_holder(report: &KeyReport) -> Option<String> {
        match report.lock()? {
            Object::SysvSemaphore(s) if s.value == 0 => Some(match (&s.usage, s.last_pid) {
                (Usage::InUse { processes, .. }, _) if !processes.is_empty() => {
                    let who = processes.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
                    format!("held by {who} (the last process to take it)")
                }
                (_, Some((pid, true))) => format!("held by process {pid} (the last process to take it)"),
                (_, Some((pid, false))) => format!("held; the last process to take it, {pid}, has exited"),
                _ => "held".into(),
            }),
            Object::PosixSemaphore(p) if p.value == 0 => {
                let open: Vec<String> = match &p.usage {
                    Usage::InUse { processes, .. } => processes.iter().map(ToString::to_string).collect(),
                    _ => Vec::new(),
                };
                let mut s = "held (a POSIX semaphore does not record its holder".to_string();
                if !open.is_empty() {
                    s.push_str(&format!("; open in {}", open.join(", ")));
                }
                if !p.robust {
                    s.push_str("; Qt made it, so a holder that died never gives it back");
                }
                s.push(')');
                Some(s)
            }
            _ => None,
        }
    }

    /// Who uses the key's segment, in words.
    pub fn segment_state(report: &KeyReport) -> String {
        let Some(seg) = report.segment() else {
            return "no segment".into();
        };
        let attached = match seg {
            Object::SysvSegment(s) => format!(" ({} attached)", s.attached),
            _ => String::new(),
        };
        let removed = matches!(seg, Object::SysvSegment(s) if s.removed);
        match seg.usage() {
            Usage::InUse { processes, note } => {
                let who = processes.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
                let mut s = if who.is_empty() { "in use".to_string() } else { format!("in use by {who}") };
                s.push_str(&attached);
                if let Some(note) = note {
                    s.push_str(&format!("; {note}"));
                } else if removed {
                    s.push_str("; removed, it goes with its last process");
                }
                s
            }
            Usage::Orphaned { why } => format!("orphaned: {why}{attached}; `qipc gc` removes it"),
            Usage::Unknown { why } => format!("unknown: {why}"),
        }
    }

    /// The lock's state, in words.
    pub fn lock_state(report: &KeyReport) -> String {
        let Some(lock) = report.lock() else {
            return "no lock semaphore".into();
        };
        let (value, waiters) = match lock {
            Object::SysvSemaphore(s) => (s.value, u64::try_from(s.waiters).unwrap_or(0)),
            Object::PosixSemaphore(p) => (p.value, p.waiters),
            _ => return "-".into(),
        };
        let mut s = match lock_holder(report) {
            Some(holder) => format!("{holder} (value {value})"),
            None if value < 0 => "unreadable".into(),
            None => format!("free (value {value})"),
        };
        if waiters > 0 {
            s.push_str(&format!(", {waiters} waiting"));
        }
        s
    }
}
