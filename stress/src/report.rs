//! Counts per storm and backend, and their text and JSON forms.

#![forbid(unsafe_code)]

use std::{collections::BTreeMap, fmt::Write as _};

/// Examples kept per kind of event or error.
const EXAMPLES: usize = 3;

/// The counts of one storm on one backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Locked increments.
    pub ops: u64,
    /// SIGKILLs sent by the storm (not those sent for hangs).
    pub kills: u64,
    /// ... of which the victim's board said "holding the lock" (approximate).
    pub kills_in_lock: u64,
    /// ... of which it said "waiting for the lock" (approximate).
    pub kills_waiting: u64,
    /// ... of which it said "inside another qipc call" (create, attach, detach, drop).
    pub kills_in_call: u64,
    /// Mutual-exclusion violations (detections; one overlap may be seen by both holders).
    pub violations: u64,
    /// Lost or torn updates without a dead holder (incl. lost fork-child updates).
    pub lost: u64,
    /// Dead holders found and repaired (expected after kills inside the lock).
    pub dead_holders: u64,
    /// Mappings of objects no longer reachable by name.
    pub removed_maps: u64,
    /// Workers or operations that missed their deadline.
    pub hangs: u64,
    /// Panics (exit status 101, "panicked" or a Python traceback in the log).
    pub panics: u64,
    /// Deaths by a signal the storm did not send (SIGSEGV, SIGBUS, ...).
    pub crashes: u64,
    /// Unexpected errors (qipc errors the storm does not expect, failed gc runs).
    pub errors: u64,
    /// Objects left after every process exited and `qipc gc` ran.
    pub leaks: u64,
    /// Informational: expected errors (AlreadyExists from create, NotFound from attach).
    pub expected_errors: u64,
    /// Informational: successful creates.
    pub creates: u64,
    /// Informational: successful attaches.
    pub attaches: u64,
    /// Informational: explicit detaches.
    pub detaches: u64,
    /// Informational: handles dropped while attached.
    pub drops: u64,
    /// Informational: handles re-used after a detach.
    pub reuses: u64,
    /// Informational: forks.
    pub forks: u64,
    /// Informational: lost fork-child updates (included in `lost`).
    pub fork_lost: u64,
    /// Informational: processes started.
    pub spawns: u64,
    /// Informational: `qipc gc` runs beside the storm.
    pub gc_runs: u64,
}

impl Counts {
    /// Every count that must be 0, with its name.
    pub fn failures(&self) -> [(&'static str, u64); 9] {
        [
            ("violations", self.violations),
            ("lost", self.lost),
            ("removed_maps", self.removed_maps),
            ("hangs", self.hangs),
            ("panics", self.panics),
            ("crashes", self.crashes),
            ("errors", self.errors),
            ("leaks", self.leaks),
            // dead holders without kills would mean a holder died on its own
            ("dead_holders_without_kills", if self.kills == 0 { self.dead_holders } else { 0 }),
        ]
    }

    /// Sum of the failure counts.
    pub fn failure_total(&self) -> u64 {
        self.failures().iter().map(|(_, n)| n).sum()
    }

    fn fields(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("ops", self.ops),
            ("kills", self.kills),
            ("kills_in_lock", self.kills_in_lock),
            ("kills_waiting", self.kills_waiting),
            ("kills_in_call", self.kills_in_call),
            ("violations", self.violations),
            ("lost", self.lost),
            ("dead_holders", self.dead_holders),
            ("removed_maps", self.removed_maps),
            ("hangs", self.hangs),
            ("panics", self.panics),
            ("crashes", self.crashes),
            ("errors", self.errors),
            ("leaks", self.leaks),
            ("expected_errors", self.expected_errors),
            ("creates", self.creates),
            ("attaches", self.attaches),
            ("detaches", self.detaches),
            ("drops", self.drops),
            ("reuses", self.reuses),
            ("forks", self.forks),
            ("fork_lost", self.fork_lost),
            ("spawns", self.spawns),
            ("gc_runs", self.gc_runs),
        ]
    }
}

/// Count plus the first few texts of one kind of event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Examples {
    /// How many.
    pub count: u64,
    /// The first few.
    pub first: Vec<String>,
}

impl Examples {
    /// Adds one.
    pub fn add(&mut self, text: &str) {
        self.count += 1;
        if self.first.len() < EXAMPLES {
            self.first.push(text.to_string());
        }
    }
}

/// The result of one storm (or one phase of the mixed storm) on one backend.
#[derive(Debug, Clone, Default)]
pub struct StormResult {
    /// Storm name (`kill`, `mixed:a`, ...).
    pub storm: String,
    /// Backend name.
    pub backend: String,
    /// The key used.
    pub key: String,
    /// Wall-clock seconds, set-up to clean-up.
    pub seconds: f64,
    /// The counts.
    pub counts: Counts,
    /// Locked increments by kind of process (`qipc churn`, `Qt5 attacher`, ...).
    pub ops_by: BTreeMap<String, u64>,
    /// Events by kind (violation, lost, removed-map, hang, crash, panic, ...).
    pub events: BTreeMap<String, Examples>,
    /// Unexpected errors by "operation kind".
    pub errors: BTreeMap<String, Examples>,
    /// The leftovers, by name.
    pub leaks: Vec<String>,
    /// What `qipc gc` removed (beside the storm and at the end).
    pub gc_removed: Examples,
    /// Anything else worth knowing (aborts, clean-up problems).
    pub notes: Vec<String>,
    /// The command that repeats this storm alone (same seed).
    pub reproduce: String,
}

impl StormResult {
    /// True if every failure count is 0.
    pub fn ok(&self) -> bool {
        self.counts.failure_total() == 0
    }
}

/// Header of the text table.
pub fn table_header() -> String {
    format!(
        "{:<14} {:<6} {:>6} {:>9} {:>13} {:>5} {:>5} {:>6} {:>5} {:>5} {:>5} {:>5} {:>6} {:>5}  {}",
        "storm",
        "backend",
        "secs",
        "ops",
        "kills(inlock)",
        "viol",
        "lost",
        "dead-h",
        "rmmap",
        "hangs",
        "panic",
        "crash",
        "errors",
        "leaks",
        "verdict"
    )
}

/// One row of the text table.
pub fn table_row(r: &StormResult) -> String {
    let c = &r.counts;
    format!(
        "{:<14} {:<6} {:>6.1} {:>9} {:>13} {:>5} {:>5} {:>6} {:>5} {:>5} {:>5} {:>5} {:>6} {:>5}  {}",
        r.storm,
        r.backend,
        r.seconds,
        c.ops,
        format!("{}({})", c.kills, c.kills_in_lock),
        c.violations,
        c.lost,
        c.dead_holders,
        c.removed_maps,
        c.hangs,
        c.panics,
        c.crashes,
        c.errors,
        c.leaks,
        if r.ok() { "ok" } else { "FAIL" }
    )
}

/// The details of one storm: events, errors, leaks, notes.
pub fn details(r: &StormResult) -> String {
    let mut s = String::new();
    let c = &r.counts;
    let _ = writeln!(
        s,
        "-- {} on {} (key {}): {} creates, {} attaches, {} detaches, {} drops, {} reuses, {} forks, {} expected errors, {} processes, {} gc runs, kills: {} holding the lock, {} waiting for it, {} in create/attach/detach/drop",
        r.storm,
        r.backend,
        r.key,
        c.creates,
        c.attaches,
        c.detaches,
        c.drops,
        c.reuses,
        c.forks,
        c.expected_errors,
        c.spawns,
        c.gc_runs,
        c.kills_in_lock,
        c.kills_waiting,
        c.kills_in_call
    );
    if !r.ops_by.is_empty() {
        let by: Vec<String> = r.ops_by.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(s, "   operations by process kind: {}", by.join(", "));
    }
    for (kind, ex) in &r.events {
        let _ = writeln!(s, "   {kind}: {}", ex.count);
        for t in &ex.first {
            let _ = writeln!(s, "      {t}");
        }
    }
    for (kind, ex) in &r.errors {
        let _ = writeln!(s, "   unexpected error {kind}: {}", ex.count);
        for t in &ex.first {
            let _ = writeln!(s, "      {t}");
        }
    }
    if !r.leaks.is_empty() {
        let _ = writeln!(s, "   left behind ({}):", r.leaks.len());
        for l in &r.leaks {
            let _ = writeln!(s, "      {l}");
        }
    }
    if r.gc_removed.count > 0 {
        let _ = writeln!(s, "   qipc gc removed something {} times, e.g.:", r.gc_removed.count);
        for t in &r.gc_removed.first {
            for line in t.lines() {
                let _ = writeln!(s, "      {line}");
            }
        }
    }
    for n in &r.notes {
        let _ = writeln!(s, "   note: {n}");
    }
    if !r.reproduce.is_empty() {
        let _ = writeln!(s, "   reproduce: {}", r.reproduce);
    }
    s
}

// ---- JSON ------------------------------------------------------------------

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_examples(map: &BTreeMap<String, Examples>) -> String {
    let items: Vec<String> = map
        .iter()
        .map(|(k, ex)| {
            let first: Vec<String> = ex.first.iter().map(|t| json_str(t)).collect();
            format!("{}: {{\"count\": {}, \"first\": [{}]}}", json_str(k), ex.count, first.join(", "))
        })
        .collect();
    format!("{{{}}}", items.join(", "))
}

/// One storm as a JSON object.
pub fn storm_json(r: &StormResult) -> String {
    let counts: Vec<String> = r.counts.fields().iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
    let strings = |v: &[String]| v.iter().map(|t| json_str(t)).collect::<Vec<_>>().join(", ");
    format!(
        "{{\"storm\": {}, \"backend\": {}, \"key\": {}, \"seconds\": {:.1}, \"ok\": {}, \"failures\": {}, \"counts\": {{{}}}, \"ops_by\": {{{}}}, \"events\": {}, \"errors\": {}, \"leaks\": [{}], \"gc_removed\": {{\"count\": {}, \"first\": [{}]}}, \"notes\": [{}], \"reproduce\": {}}}",
        json_str(&r.storm),
        json_str(&r.backend),
        json_str(&r.key),
        r.seconds,
        r.ok(),
        r.counts.failure_total(),
        counts.join(", "),
        r.ops_by.iter().map(|(k, v)| format!("{}: {v}", json_str(k))).collect::<Vec<_>>().join(", "),
        json_examples(&r.events),
        json_examples(&r.errors),
        strings(&r.leaks),
        r.gc_removed.count,
        strings(&r.gc_removed.first),
        strings(&r.notes),
        json_str(&r.reproduce),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes() {
        assert_eq!(json_str("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }

    #[test]
    fn kills_make_dead_holders_expected() {
        let mut c = Counts { dead_holders: 3, ..Counts::default() };
        assert_eq!(c.failure_total(), 3);
        c.kills = 5;
        assert_eq!(c.failure_total(), 0);
    }
}
