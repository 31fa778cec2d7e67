//! The stress suite's CI mode as a test: every storm on both backends
//! (`qipc-stress --ci`), and every failure count of every storm must be 0.
//!
//! It needs the `qipc` CLI next to `qipc-stress` (for `qipc gc`; this test
//! builds it with the same profile) and the Qt peers of `scripts/setup-qt.sh`
//! (the run fails loudly without them). It takes about 3 minutes; run it
//! with `cargo test --release -p qipc-stress --test ci -- --nocapture` to see
//! the storms go by.

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// The whole run must end within this (the CI mode takes about 3 minutes;
/// hangs add at most one hang limit per storm).
const DEADLINE: Duration = Duration::from_secs(15 * 60);

const FAILURE_COUNTS: [&str; 8] =
    ["violations", "lost", "removed_maps", "hangs", "panics", "crashes", "errors", "leaks"];

/// Builds the `qipc` CLI into the same target directory and profile as
/// this test's `qipc-stress`, and returns its path.
fn qipc_cli(stress: &Path) -> PathBuf {
    let dir = stress.parent().expect("qipc-stress has a directory");
    let release = dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", "qipc-cli"]).current_dir(env!("CARGO_MANIFEST_DIR"));
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("cannot run cargo to build qipc-cli");
    assert!(status.success(), "building qipc-cli failed: {status}");
    let qipc = dir.join("qipc");
    assert!(qipc.is_file(), "{} was not built", qipc.display());
    qipc
}

/// The integer after `"name": ` in `text`.
fn number(text: &str, name: &str) -> Option<u64> {
    let pat = format!("\"{name}\": ");
    let at = text.find(&pat)? + pat.len();
    text[at..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// The string after `"name": ` in `text` (no escapes needed for our names).
fn string<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let pat = format!("\"{name}\": \"");
    let at = text.find(&pat)? + pat.len();
    text[at..].split('"').next()
}

#[test]
fn ci_mode_every_failure_count_is_zero() {
    let stress = PathBuf::from(env!("CARGO_BIN_EXE_qipc-stress"));
    let qipc = qipc_cli(&stress);
    let mut child = Command::new(&stress)
        .args(["--ci", "--json", "--qipc"])
        .arg(&qipc)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cannot start qipc-stress");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait().expect("wait for qipc-stress") {
            Some(status) => break status,
            None if started.elapsed() < DEADLINE => std::thread::sleep(Duration::from_millis(200)),
            None => {
                // SIGTERM lets the coordinator kill its workers and clean up.
                let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
                let grace = Instant::now();
                while child.try_wait().ok().flatten().is_none() && grace.elapsed() < Duration::from_secs(60) {
                    std::thread::sleep(Duration::from_millis(200));
                }
                let _ = child.kill();
                let _ = child.wait();
                panic!("qipc-stress --ci did not finish within {} s", DEADLINE.as_secs());
            }
        }
    };
    let json = reader.join().expect("stdout reader");
    let report = Path::new(env!("CARGO_TARGET_TMPDIR")).join("qipc-stress-ci.json");
    let saved =
        std::fs::write(&report, &json).map_or_else(|e| format!("(not saved: {e})"), |()| report.display().to_string());
    eprintln!("qipc-stress --ci: {status} after {:.0} s; report: {saved}", started.elapsed().as_secs_f64());

    let storms: Vec<&str> = json.split("{\"storm\": ").skip(1).collect();
    assert!(storms.len() >= 10, "expected every storm on both backends, got {} in:\n{json}", storms.len());
    let mut failures = Vec::new();
    for s in &storms {
        let name = s.split('"').nth(1).unwrap_or("?");
        let backend = string(s, "backend").unwrap_or("?");
        let counts = s.split("\"counts\": {").nth(1).and_then(|c| c.split('}').next()).unwrap_or("");
        assert!(number(counts, "ops").is_some_and(|n| n > 0), "{name} on {backend} did no operations");
        // The coordinator's own total (it also counts dead holders in storms without kills).
        if number(s, "failures") != Some(0) {
            failures.push(format!("{name} on {backend}: {} failures in all", number(s, "failures").unwrap_or(0)));
        }
        for count in FAILURE_COUNTS {
            match number(counts, count) {
                Some(0) => {}
                Some(n) => failures.push(format!("{name} on {backend}: {count} = {n}")),
                None => failures.push(format!("{name} on {backend}: no {count} count")),
            }
        }
    }
    assert!(
        failures.is_empty() && status.success(),
        "qipc-stress --ci ({status}) found:\n  {}\nfull report (JSON): {saved}\nreproduce (add --json for the report, drop it for a table): {}",
        failures.join("\n  "),
        string(&json, "command").unwrap_or("?")
    );
}
