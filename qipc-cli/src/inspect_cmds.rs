//! `ls`, `info`, `key`, `gc`, `rm`.

use qipc::{inspect, KeyType, NativeKey};

use crate::{
    args::Args,
    json::Json,
    output::{self, backend_name, hex_key, SCHEMA},
    CliError, CliResult,
};

pub fn ls(argv: &[String]) -> CliResult {
    let a = Args::parse("ls", argv, &["--match"], &["--json", "--qt-only"])?;
    a.max_positionals(0)?;
    let mut objects = inspect::list().map_err(|e| CliError::qipc("ls", e))?;
    if a.flag("--qt-only") {
        objects.retain(|o| o.qt_named);
    }
    if let Some(p) = a.value("--match") {
        objects.retain(|o| {
            o.location.contains(p)
                || o.key.as_ref().is_some_and(|k| k.to_string().contains(p))
                || o.legacy_key().is_some_and(|k| k.contains(p))
        });
    }
    if a.flag("--json") {
        let j = Json::obj()
            .with("schema", SCHEMA)
            .with("temp_dir", qipc::key::temp_path())
            .with("objects", Json::Arr(objects.iter().map(output::object_json).collect()));
        println!("{}", j.pretty());
    } else if objects.is_empty() {
        println!("no shared memory segments, semaphores or key files found");
    } else {
        print!("{}", output::objects_table(&objects));
    }
    Ok(())
}

pub fn info(argv: &[String]) -> CliResult {
    let a = Args::parse("info", argv, &["--native", "--type"], &["--json"])?;
    a.max_positionals(1)?;
    let key = crate::key_from_args(&a)?;
    let info = inspect::info(&key).map_err(|e| CliError::qipc("info", e))?;
    if a.flag("--json") {
        println!("{}", output::info_json(&info).pretty());
        return Ok(());
    }
    let ftok = |f: Option<i32>| f.map_or_else(|| "none (no key file)".to_string(), hex_key);
    let mut rows = vec![
        vec!["key".to_string(), info.key.legacy_key().map_or_else(|| "(native key)".into(), |k| format!("{k:?}"))],
        vec!["type".into(), backend_name(info.key.key_type())],
        vec!["text form".into(), info.key.to_string()],
        vec!["segment".into(), info.segment.path.clone()],
        vec!["lock".into(), info.lock.path.clone()],
    ];
    if matches!(info.key.key_type(), KeyType::SystemV { .. }) {
        rows.push(vec!["segment ftok".into(), ftok(info.segment.ftok)]);
        rows.push(vec!["lock ftok".into(), ftok(info.lock.ftok)]);
    }
    let state = match info.segment_object() {
        Some(o) => format!("{} ({} attached)", o.state, o.attached.unwrap_or(0)),
        None => "no segment".into(),
    };
    rows.push(vec!["state".into(), state]);
    let lock = match &info.lock_state {
        Some(s) => {
            let last = match (s.last_pid, s.last_pid_alive) {
                (Some(p), Some(true)) => format!(", last used by {p} (running)"),
                (Some(p), _) => format!(", last used by {p} (gone)"),
                _ => String::new(),
            };
            format!(
                "{} (value {}), {} waiting{last}",
                if s.value >= 1 { "unlocked" } else { "locked" },
                s.value,
                s.waiters.map_or_else(|| "?".into(), |w| w.to_string())
            )
        }
        None => "no semaphore".into(),
    };
    rows.push(vec!["lock state".into(), lock]);
    let procs = info.attached();
    if !procs.is_empty() {
        rows.push(vec![
            "attached".into(),
            procs.iter().map(|p| format!("{} ({})", p.pid, p.command)).collect::<Vec<_>>().join(", "),
        ]);
    }
    for row in &rows {
        println!("{:<14}{}", format!("{}:", row[0]), row[1]);
    }
    if !info.objects.is_empty() {
        println!();
        print!("{}", output::objects_table(&info.objects));
    }
    Ok(())
}

pub fn key(argv: &[String]) -> CliResult {
    let a = Args::parse("key", argv, &["--type"], &["--json"])?;
    a.max_positionals(1)?;
    let Some(k) = a.positionals.first() else {
        return Err(a.usage("a KEY is required"));
    };
    if k.is_empty() {
        return Err(a.usage("the key is empty"));
    }
    let t = crate::legacy_type(&a)?;
    let shm = NativeKey::legacy_shared_memory(k, t);
    let sem = NativeKey::legacy_semaphore(k, t);
    let ftok = |key: &NativeKey| match key.key_type() {
        KeyType::SystemV { ftok_id } => ftok_of(key.native_key(), ftok_id),
        _ => None,
    };
    let files = |key: &NativeKey| match key.key_type() {
        KeyType::PosixRealtime => {
            let n = key.native_key().trim_start_matches('/');
            (format!("/dev/shm/{n}"), format!("/dev/shm/sem.{n}"))
        }
        _ => (key.native_key().to_string(), key.native_key().to_string()),
    };
    if a.flag("--json") {
        let part = |key: &NativeKey, file: String| {
            Json::obj()
                .with("native", key.native_key())
                .with("text", key.to_string())
                .with("file", file)
                .with("ftok", ftok(key).map(hex_key))
        };
        let j = Json::obj()
            .with("schema", SCHEMA)
            .with("legacy_key", k.as_str())
            .with("type", backend_name(t))
            .with("segment", part(&shm, files(&shm).0))
            .with("lock", part(&sem, files(&sem).1));
        println!("{}", j.pretty());
        return Ok(());
    }
    let ftok_text = |key: &NativeKey| match key.key_type() {
        KeyType::SystemV { .. } => ftok(key).map_or_else(|| "none yet (the key file does not exist)".into(), hex_key),
        _ => "n/a (POSIX)".into(),
    };
    let rows = [
        ("legacy key", format!("{k:?}")),
        ("type", backend_name(t)),
        ("segment", shm.native_key().to_string()),
        ("segment text", shm.to_string()),
        ("segment file", files(&shm).0),
        ("segment ftok", ftok_text(&shm)),
        ("lock", sem.native_key().to_string()),
        ("lock text", sem.to_string()),
        ("lock file", files(&sem).1),
        ("lock ftok", ftok_text(&sem)),
    ];
    for (name, value) in rows {
        println!("{:<14}{value}", format!("{name}:"));
    }
    Ok(())
}

/// `ftok` of an existing file, without creating it.
fn ftok_of(path: &str, id: u8) -> Option<i32> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((((u32::from(id)) << 24) | ((m.dev() as u32 & 0xff) << 16) | (m.ino() as u32 & 0xffff)) as i32)
}

pub fn gc(argv: &[String]) -> CliResult {
    let a = Args::parse("gc", argv, &["--match"], &["--dry-run", "--json"])?;
    a.max_positionals(0)?;
    let dry = a.flag("--dry-run");
    let removed = match a.value("--match") {
        Some("") => return Err(a.usage("--match needs a non-empty pattern")),
        Some(p) => inspect::gc_matching(dry, p),
        None => inspect::gc(dry),
    }
    .map_err(|e| CliError::qipc("gc", e))?;
    if a.flag("--json") {
        let j = Json::obj()
            .with("schema", SCHEMA)
            .with("dry_run", dry)
            .with("removed", Json::Arr(removed.iter().map(output::removed_json).collect()));
        println!("{}", j.pretty());
    } else if removed.is_empty() {
        println!("nothing to remove");
    } else {
        print!("{}", output::removed_table(&removed, if dry { "would remove" } else { "removed" }));
    }
    Ok(())
}

pub fn rm(argv: &[String]) -> CliResult {
    let a = Args::parse("rm", argv, &["--native", "--type"], &["--force", "--json"])?;
    a.max_positionals(1)?;
    let key = crate::key_from_args(&a)?;
    let removed = inspect::remove(&key, a.flag("--force")).map_err(|e| CliError::qipc("rm", e))?;
    if a.flag("--json") {
        let j = Json::obj()
            .with("schema", SCHEMA)
            .with("removed", Json::Arr(removed.iter().map(output::removed_json).collect()));
        println!("{}", j.pretty());
    } else {
        print!("{}", output::removed_table(&removed, "removed"));
    }
    Ok(())
}
