//! Human output (aligned tables) and the JSON form of inspection results.

use qipc::{
    inspect::{DerivedName, KeyInfo, ObjectInfo, Removed, SemaphoreState},
    KeyType, NativeKey,
};

use crate::json::Json;

/// The JSON schema version (see JSON.md).
pub const SCHEMA: &str = "qipc/1";

/// An aligned table: the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let n = cells.len();
        let mut s = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            s.push_str(cell);
            if i + 1 < n {
                s.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

pub fn backend_name(t: KeyType) -> String {
    match t {
        KeyType::SystemV { ftok_id: 0x51 } => "systemv".into(),
        KeyType::SystemV { ftok_id } => format!("systemv-{ftok_id}"),
        KeyType::PosixRealtime => "posix".into(),
        KeyType::Windows => "windows".into(),
    }
}

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

pub fn human_age(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

pub fn hex_key(k: i32) -> String {
    format!("0x{:08x}", k as u32)
}

/// The `ls` table.
pub fn objects_table(objects: &[ObjectInfo]) -> String {
    let header =
        ["TYPE", "KIND", "STATE", "SIZE", "OWNER", "MODE", "ATT", "PROCESSES", "CREATOR", "AGE", "KEY", "NATIVE"];
    let rows: Vec<Vec<String>> = objects
        .iter()
        .map(|o| {
            let procs = if o.processes.is_empty() {
                "-".to_string()
            } else {
                o.processes.iter().map(|p| format!("{}/{}", p.pid, p.command)).collect::<Vec<_>>().join(",")
            };
            let creator = match (o.creator_pid, o.creator_alive) {
                (Some(p), Some(true)) if p > 0 => format!("{p}"),
                (Some(p), _) if p > 0 => format!("{p}(dead)"),
                _ => "-".into(),
            };
            let native = match &o.key {
                Some(k) => match k.key_type() {
                    KeyType::PosixRealtime => format!("posix:{}", k.native_key()),
                    _ => o.location.clone(),
                },
                None => o.location.clone(),
            };
            let size = match (o.kind, &o.semaphore) {
                (qipc::inspect::ObjectKind::Semaphore, Some(s)) => format!("val={}", s.value),
                _ => dash(o.size.map(human_size)),
            };
            vec![
                backend_name(o.backend),
                o.kind.to_string(),
                o.state.to_string(),
                size,
                dash(o.user.clone().or_else(|| o.uid.map(|u| u.to_string()))),
                dash(o.mode.map(|m| format!("{m:04o}"))),
                dash(o.attached),
                procs,
                creator,
                dash(o.age().map(|a| human_age(a.as_secs()))),
                o.legacy_key().map_or_else(|| "-".to_string(), |k| format!("{k:?}")),
                native,
            ]
        })
        .collect();
    table(&header, &rows)
}

fn key_json(k: &NativeKey) -> Json {
    Json::obj()
        .with("type", backend_name(k.key_type()))
        .with("native", k.native_key())
        .with("legacy", k.legacy_key())
        .with("text", k.to_string())
}

fn sem_json(s: &SemaphoreState) -> Json {
    Json::obj()
        .with("value", s.value)
        .with("waiters", s.waiters)
        .with("last_pid", s.last_pid)
        .with("last_pid_alive", s.last_pid_alive)
        .with("locked", !s.is_unlocked() && s.value < 1)
}

pub fn object_json(o: &ObjectInfo) -> Json {
    Json::obj()
        .with("kind", if o.kind == qipc::inspect::ObjectKind::SharedMemory { "segment" } else { "semaphore" })
        .with("backend", backend_name(o.backend))
        .with("state", o.state.as_str())
        .with("note", o.note.clone())
        .with("key", o.key.as_ref().map_or(Json::Null, key_json))
        .with("location", o.location.as_str())
        .with("qt_named", o.qt_named)
        .with("sysv_key", o.sysv_key.map(hex_key))
        .with("id", o.id)
        .with("size", o.size)
        .with("pages", o.pages)
        .with("uid", o.uid)
        .with("user", o.user.clone())
        .with("mode", o.mode.map(|m| format!("{m:04o}")))
        .with("attached", o.attached)
        .with(
            "processes",
            Json::Arr(
                o.processes
                    .iter()
                    .map(|p| Json::obj().with("pid", p.pid).with("command", p.command.as_str()))
                    .collect(),
            ),
        )
        .with("creator_pid", o.creator_pid.filter(|p| *p > 0))
        .with("creator_alive", o.creator_alive)
        .with("last_pid", o.last_pid)
        .with("created", o.created)
        .with("age_seconds", o.age().map(|a| a.as_secs()))
        .with("semaphore", o.semaphore.as_ref().map_or(Json::Null, sem_json))
}

fn derived_json(d: &DerivedName) -> Json {
    Json::obj().with("key", key_json(&d.key)).with("path", d.path.as_str()).with("ftok", d.ftok.map(hex_key))
}

pub fn info_json(info: &KeyInfo) -> Json {
    Json::obj()
        .with("schema", SCHEMA)
        .with("key", key_json(&info.key))
        .with("segment", derived_json(&info.segment))
        .with("lock", derived_json(&info.lock))
        .with("lock_state", info.lock_state.as_ref().map_or(Json::Null, sem_json))
        .with("objects", Json::Arr(info.objects.iter().map(object_json).collect()))
}

pub fn removed_json(r: &Removed) -> Json {
    Json::obj()
        .with("what", r.what)
        .with("location", r.location.as_str())
        .with("key", r.key.as_ref().map_or(Json::Null, key_json))
        .with("reason", r.reason.as_str())
}

/// `what location (reason)` lines.
pub fn removed_table(removed: &[Removed], verb: &str) -> String {
    let rows: Vec<Vec<String>> = removed
        .iter()
        .map(|r| vec![verb.to_string(), r.what.to_string(), r.location.clone(), format!("({})", r.reason)])
        .collect();
    table(&["ACTION", "WHAT", "LOCATION", "REASON"], &rows)
}
