//! `qipc ls`: every Qt-style segment, semaphore and key file, and who uses
//! it, in a table that fits the terminal.

use crate::{cli::LsArgs, error::CmdResult};

#[cfg(not(target_os = "linux"))]
pub fn run(_a: &LsArgs) -> CmdResult {
    Err(super::not_here("`qipc ls`"))
}

#[cfg(target_os = "linux")]
pub fn run(a: &LsArgs) -> CmdResult {
    use qipc::inspect::{Object, Snapshot};
    use serde::Serialize;

    use super::describe::{is_foreign, object_table, Columns};
    use crate::{
        error::CliError,
        json::{self, ObjectJson},
        output::{self, note},
        table::terminal_width,
    };

    #[derive(Serialize)]
    struct LsDoc {
        temp_dir: String,
        objects: Vec<ObjectJson>,
        hidden: usize,
        hidden_processes: usize,
    }

    let snap = Snapshot::take().map_err(|e| {
        CliError::new(e.kind().as_str(), format!("cannot look at this machine's shared memory: {}", e.description()))
    })?;
    let mut hidden = 0;
    let shown: Vec<&Object> = snap
        .objects()
        .iter()
        .filter(|o| a.matching.as_deref().is_none_or(|m| matches(o, m)))
        .filter(|o| {
            let keep = a.all || !is_foreign(o) || o.usage().is_orphaned();
            hidden += usize::from(!keep);
            keep
        })
        .collect();
    if a.out.json {
        let doc = LsDoc {
            temp_dir: snap.temp_dir().to_string(),
            objects: shown.iter().map(|o| ObjectJson::of(o, &snap)).collect(),
            hidden,
            hidden_processes: snap.hidden_processes(),
        };
        json::print("ls", &doc)?;
        return Ok(0);
    }
    if shown.is_empty() {
        let what = match &a.matching {
            Some(m) => format!("nothing matches `{m}`"),
            None => "no Qt-style shared memory segments, semaphores or key files".into(),
        };
        output::outln(&what)?;
    } else {
        let width = if a.wide { None } else { terminal_width() };
        let (text, cut) =
            object_table(&shown, &snap, if a.wide { Columns::Wide } else { Columns::Short }).render(width);
        output::out(&text)?;
        if cut {
            note(&format!(
                "(cut to fit {} columns: `qipc ls --wide` shows every column in full, `qipc ls --json` everything)",
                width.unwrap_or(0)
            ));
        }
    }
    let orphans = shown.iter().filter(|o| o.usage().is_orphaned() && !is_foreign(o)).count();
    if orphans > 0 {
        note(&format!(
            "{orphans} orphaned: nobody uses {}; `qipc gc` removes {} (`qipc gc --dry-run` shows what it would do)",
            if orphans == 1 { "it" } else { "them" },
            if orphans == 1 { "it" } else { "them" }
        ));
    }
    if shown.iter().any(|o| is_foreign(o)) {
        note(
            "*: a POSIX segment whose name is not Qt's (a Qt 6.6+ native key's segment after its program exited, \
             or another program's): `qipc gc --match NAME` or `qipc rm --native posix:/NAME` removes it",
        );
    }
    if shown.iter().any(|o| matches!(o, Object::SysvSegment(s) if s.removed)) {
        note("removed: a segment removed already (qipc rm --force, ipcrm) that goes when its last process detaches");
    }
    if hidden > 0 {
        note(&format!("{hidden} POSIX segment(s) in use by other programs not shown (`qipc ls --all` shows them)"));
    }
    if a.wide && snap.hidden_processes() > 0 {
        note(&format!(
            "{} process(es) could not be inspected (no permission): the USERS column may miss them",
            snap.hidden_processes()
        ));
    }
    Ok(0)
}

/// `--match`: the text is in the object's location, key or legacy key.
#[cfg(target_os = "linux")]
pub fn matches(o: &qipc::inspect::Object, text: &str) -> bool {
    o.location().contains(text)
        || o.key().is_some_and(|k| k.to_string().contains(text) || k.legacy_key().is_some_and(|l| l.contains(text)))
}
