//! `qipc key`: the names Qt derives from a key, without touching anything.

use serde::Serialize;

use super::describe::{names, print_rows};
use crate::{
    cli::KeyCmdArgs,
    error::CmdResult,
    json::{self, KeyJson, NameJson},
    keys,
};

#[derive(Serialize)]
struct KeyDoc {
    key: KeyJson,
    segment: NameJson,
    lock: NameJson,
}

pub fn run(a: &KeyCmdArgs) -> CmdResult {
    let key = keys::resolve(&a.key)?;
    let (segment, lock) = names(&key);
    if a.out.json {
        json::print("key", &KeyDoc { key: KeyJson::of(&key), segment, lock })?;
        return Ok(0);
    }
    let sysv = |n: &NameJson| match &n.sysv_key {
        Some(k) => k.clone(),
        None if key.key_type() == qipc::KeyType::PosixRealtime => "none (POSIX)".into(),
        None => "none yet (the key file does not exist)".into(),
    };
    let kind = match key.legacy_key() {
        Some(_) => format!("legacy key, {}", super::describe::backend_words(key.key_type())),
        None => format!("native key, {}", super::describe::backend_words(key.key_type())),
    };
    let mut rows = vec![("key", format!("{} ({kind})", keys::label(&key)))];
    for (what, n) in [("segment", &segment), ("lock", &lock)] {
        rows.push((what, n.key.native.clone()));
        rows.push(("  text form", n.key.text.clone()));
        rows.push(("  file", n.path.clone()));
        if key.key_type() != qipc::KeyType::PosixRealtime {
            rows.push(("  System V key", sysv(n)));
        }
    }
    print_rows(&rows)?;
    Ok(0)
}
