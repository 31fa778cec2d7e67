//! `qipc info`: one key's names, objects, users and lock state. Exits with
//! status 1 if nothing exists for the key.

use crate::{cli::InfoArgs, error::CmdResult, keys};

#[cfg(not(target_os = "linux"))]
pub fn run(a: &InfoArgs) -> CmdResult {
    keys::resolve(&a.key)?;
    Err(super::not_here("`qipc info`"))
}

#[cfg(target_os = "linux")]
pub fn run(a: &InfoArgs) -> CmdResult {
    use qipc::inspect::{self, Object};
    use serde::Serialize;

    use super::describe::{
        backend_words, lock_holder, lock_state, names, object_table, print_rows, segment_state, Columns,
    };
    use crate::{
        error::{qipc_error, CliError},
        json::{self, KeyJson, NameJson, ObjectJson},
        output,
        table::terminal_width,
    };

    #[derive(Serialize)]
    struct LockStateJson {
        value: i64,
        waiters: u64,
        held: bool,
        holder: Option<String>,
    }

    #[derive(Serialize)]
    struct InfoDoc {
        key: KeyJson,
        segment: NameJson,
        lock: NameJson,
        state: Option<&'static str>,
        lock_state: Option<LockStateJson>,
        objects: Vec<ObjectJson>,
    }

    let key = keys::resolve(&a.key)?;
    let snap = inspect::Snapshot::take().map_err(|e| qipc_error(&e, &key))?;
    let report = snap.key_report(&key);
    let (segment, lock) = names(&key);
    if report.is_empty() {
        return Err(CliError::new(
            "NotFound",
            format!("nothing exists for the key {}: no segment, lock semaphore or key file", keys::label(&key)),
        )
        .hint(format!("its segment would be {}", segment.path))
        .hint(format!("`qipc key {}` shows every name Qt derives; `qipc ls` lists what exists", keys::as_args(&key))));
    }
    let lock_json = report.lock().and_then(|l| {
        let (value, waiters) = match l {
            Object::SysvSemaphore(s) => (i64::from(s.value), u64::try_from(s.waiters).unwrap_or(0)),
            Object::PosixSemaphore(p) => (i64::from(p.value), p.waiters),
            _ => return None,
        };
        Some(LockStateJson { value, waiters, held: value == 0, holder: lock_holder(&report) })
    });
    if a.out.json {
        let doc = InfoDoc {
            key: KeyJson::of(&key),
            segment,
            lock,
            state: report.segment().map(|s| s.usage().as_str()),
            lock_state: lock_json,
            objects: report.objects.iter().map(|o| ObjectJson::of(o, &snap)).collect(),
        };
        json::print("info", &doc)?;
        return Ok(0);
    }
    let kind = if key.legacy_key().is_some() { "legacy key" } else { "native key" };
    let with_ids = |path: &str, sysv: &Option<String>, obj: Option<&Object>| {
        let mut extra = Vec::new();
        if let Some(k) = sysv {
            extra.push(format!("System V key {k}"));
        }
        match obj {
            Some(Object::SysvSegment(s)) => extra.push(format!("shmid {}", s.shmid)),
            Some(Object::SysvSemaphore(s)) => extra.push(format!("semid {}", s.semid)),
            _ => {}
        }
        if extra.is_empty() {
            path.to_string()
        } else {
            format!("{path} ({})", extra.join(", "))
        }
    };
    let rows = vec![
        ("key", format!("{} ({kind}, {})", keys::label(&key), backend_words(key.key_type()))),
        ("text form", key.to_string()),
        ("segment", with_ids(&segment.path, &segment.sysv_key, report.segment())),
        ("lock", with_ids(&lock.path, &lock.sysv_key, report.lock())),
        ("state", segment_state(&report)),
        ("lock state", lock_state(&report)),
    ];
    print_rows(&rows)?;
    let objects: Vec<&Object> = report.objects.iter().collect();
    let (text, _) = object_table(&objects, &snap, Columns::OneKey).render(terminal_width());
    output::out(&format!("\n{text}"))?;
    Ok(0)
}
