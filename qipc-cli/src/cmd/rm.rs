//! `qipc rm`: remove one key's segment, lock semaphore and key files;
//! refused while a process uses the segment, unless `--force`.

use crate::{cli::RmArgs, error::CmdResult, keys};

#[cfg(not(target_os = "linux"))]
pub fn run(a: &RmArgs) -> CmdResult {
    keys::resolve(&a.key)?;
    Err(super::not_here("`qipc rm`"))
}

#[cfg(target_os = "linux")]
pub fn run(a: &RmArgs) -> CmdResult {
    use qipc::{
        inspect::{self, Object, Usage},
        ErrorKind,
    };
    use serde::Serialize;

    use crate::{
        error::{qipc_error, CliError},
        json::{self, entries, Counts, EntryJson, KeyJson},
    };

    #[derive(Serialize)]
    struct RmDoc<'a> {
        dry_run: bool,
        key: KeyJson,
        entries: &'a [EntryJson],
        #[serde(flatten)]
        counts: Counts,
    }

    let key = keys::resolve(&a.key)?;
    let (label, args) = (keys::label(&key), keys::as_args(&key));
    let report = inspect::info(&key).map_err(|e| qipc_error(&e, &key))?;
    if report.is_empty() {
        return Err(CliError::new("NotFound", format!("nothing exists for the key {label}; nothing was removed"))
            .hint("`qipc ls` lists what exists"));
    }
    let in_use = report
        .objects
        .iter()
        .find(|o| matches!(o, Object::SysvSegment(_) | Object::PosixSegment(_)) && !o.usage().is_orphaned());
    if let (Some(segment), false) = (in_use, a.force) {
        let who = match segment.usage() {
            Usage::InUse { processes, .. } if !processes.is_empty() => {
                format!("is in use by {}", processes.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
            }
            Usage::Unknown { why } => format!("may be in use ({why})"),
            _ => "is in use".into(),
        };
        return Err(CliError::new("InUse", format!("the segment of the key {label} {who}; nothing was removed"))
            .hint(format!(
                "`qipc rm {args} --force` removes it anyway (processes attached keep their mapping; new ones no longer find it)"
            )));
    }
    let list: Vec<EntryJson> = if a.dry_run {
        report.objects.iter().map(EntryJson::would_remove).collect()
    } else {
        let done = inspect::remove(&key, a.force).map_err(|e| match e.kind() {
            ErrorKind::InUse => {
                CliError::new("InUse", format!("the segment of the key {label} came into use; nothing was removed"))
                    .hint(format!("`qipc rm {args} --force` removes it anyway"))
            }
            _ => qipc_error(&e, &key),
        })?;
        entries(&done)
    };
    let counts = Counts::of(&list);
    if a.out.json {
        json::print("rm", &RmDoc { dry_run: a.dry_run, key: KeyJson::of(&key), entries: &list, counts })?;
    } else {
        super::gc::print_report(&list, a.dry_run, false)?;
    }
    Ok(0)
}
