//! `qipc gc`: remove what nobody uses, each key under its own lock; say
//! what was removed, and how many objects were left alone and why.

use crate::{cli::GcArgs, error::CmdResult};

#[cfg(not(target_os = "linux"))]
pub fn run(_a: &GcArgs) -> CmdResult {
    Err(super::not_here("`qipc gc`"))
}

#[cfg(target_os = "linux")]
pub fn run(a: &GcArgs) -> CmdResult {
    use qipc::inspect::{self, GcOptions};
    use serde::Serialize;

    use crate::{
        error::CliError,
        json::{self, entries, Counts, EntryJson},
    };

    #[derive(Serialize)]
    struct GcDoc<'a> {
        dry_run: bool,
        matching: Option<&'a str>,
        entries: &'a [EntryJson],
        #[serde(flatten)]
        counts: Counts,
    }

    let options = GcOptions { dry_run: a.dry_run, matching: a.matching.clone() };
    let report = inspect::gc(&options).map_err(|e| {
        CliError::new(e.kind().as_str(), format!("cannot look at this machine's shared memory: {}", e.description()))
    })?;
    let list = entries(&report);
    let counts = Counts::of(&list);
    if a.out.json {
        json::print("gc", &GcDoc { dry_run: a.dry_run, matching: a.matching.as_deref(), entries: &list, counts })?;
    } else {
        print_report(&list, a.dry_run, true)?;
    }
    Ok(if counts.failed > 0 { 1 } else { 0 })
}

/// The text report of `gc` and `rm`: a line per object acted on, then
/// what was left alone and why.
#[cfg(target_os = "linux")]
pub fn print_report(
    list: &[crate::json::EntryJson],
    dry_run: bool,
    summarize_skipped: bool,
) -> Result<(), crate::error::CliError> {
    use crate::{output, table::Table};

    let acted: Vec<&crate::json::EntryJson> = list.iter().filter(|e| e.outcome != "skipped").collect();
    let mut text = String::new();
    if !acted.is_empty() {
        let mut t = Table::new(vec!["ACTION", "KIND", "ID", "KEY", "WHY"], vec![3, 4]);
        for e in &acted {
            let action = match e.outcome {
                "would-remove" => "would remove",
                "removed" => "removed",
                "kept" => "kept",
                _ => "FAILED",
            };
            let why = match &e.detail {
                Some(d) => format!("{} ({d})", e.reason),
                None => e.reason.clone(),
            };
            t.row(vec![
                action.to_string(),
                short_kind(e.kind).to_string(),
                e.id.map_or_else(|| "-".into(), |i| i.to_string()),
                key_cell(e),
                why,
            ]);
        }
        text.push_str(&t.render(crate::table::terminal_width()).0);
    }
    let removed = acted.iter().filter(|e| matches!(e.outcome, "removed" | "would-remove")).count();
    let mut summary = match (removed, dry_run) {
        (0, _) => "nothing to remove".to_string(),
        (n, true) => format!("would remove {n} object{}", plural(n)),
        (n, false) => format!("removed {n} object{}", plural(n)),
    };
    let kept = acted.iter().filter(|e| e.outcome == "kept").count();
    if kept > 0 {
        summary.push_str(&format!("; kept {kept} that came into use or changed since they were listed"));
    }
    let failed = acted.iter().filter(|e| e.outcome == "failed").count();
    if failed > 0 {
        summary.push_str(&format!("; {failed} could not be removed"));
    }
    let skipped: Vec<&crate::json::EntryJson> = list.iter().filter(|e| e.outcome == "skipped").collect();
    let in_use = skipped.iter().filter(|e| category(e) == Skip::InUse).count();
    let unknown: Vec<_> = skipped.iter().filter(|e| category(e) == Skip::Unknown).collect();
    let foreign: Vec<_> = skipped.iter().filter(|e| category(e) == Skip::NotNamed).collect();
    if summarize_skipped && in_use > 0 {
        summary.push_str(&format!("; left {in_use} in use alone (`qipc ls` shows them)"));
    }
    text.push_str(&summary);
    text.push('\n');
    if summarize_skipped && !unknown.is_empty() {
        text.push_str(&format!(
            "skipped {} whose use cannot be told ({}); run as their owner or root to clean them up\n",
            unknown.len(),
            unknown[0].detail.as_deref().unwrap_or("unknown")
        ));
    }
    if summarize_skipped && !foreign.is_empty() {
        text.push_str(&format!(
            "skipped {} POSIX segment{} nobody uses whose name is not Qt's (another program's, or a Qt 6.6+ native key's after its program exited):\n",
            foreign.len(),
            plural(foreign.len())
        ));
        for e in &foreign {
            let name = e.location.trim_start_matches("/dev/shm/");
            text.push_str(&format!(
                "  {}: `qipc gc --match {}` or `qipc rm --native posix:/{}` removes it\n",
                e.location,
                crate::keys::shell_quote(name),
                name
            ));
        }
    }
    output::out(&text)
}

/// The key column: the legacy key, the native key's text, or the object's
/// location when its key is not known.
#[cfg(target_os = "linux")]
fn key_cell(e: &crate::json::EntryJson) -> String {
    match &e.key {
        Some(k) => match &k.legacy {
            Some(l) => format!("{l:?}"),
            None => k.text.clone(),
        },
        None => e.location.clone(),
    }
}

#[cfg(target_os = "linux")]
fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `segment` → `shm`, as in `qipc ls`.
#[cfg(target_os = "linux")]
fn short_kind(kind: &str) -> &'static str {
    match kind {
        "segment" => "shm",
        "semaphore" => "sem",
        "key-file" => "keyfile",
        _ => "temp",
    }
}

#[cfg(target_os = "linux")]
#[derive(PartialEq, Eq)]
enum Skip {
    InUse,
    Unknown,
    NotNamed,
}

/// Why gc left an object alone, from the words the inspector gives.
#[cfg(target_os = "linux")]
fn category(e: &crate::json::EntryJson) -> Skip {
    let d = e.detail.as_deref().unwrap_or_default();
    if d.starts_with("whether it is in use is unknown") {
        Skip::Unknown
    } else if d.starts_with("its name is not Qt's") {
        Skip::NotNamed
    } else {
        Skip::InUse
    }
}
