//! # qipc-stress: does qipc's lock always exclude, and is nothing removed while in use?
//!
//! qipc's multi-process stress suite. Real processes (this binary re-executed as
//! workers, real Qt peers in Python, `qipc gc`) hammer one key per storm
//! while counting, under the lock, in a shared layout: mutual-exclusion
//! violations, lost or torn updates, dead holders, mappings of removed
//! objects; the coordinator adds kills, hangs, panics, crashes, unexpected
//! errors and the objects left after everything exited and `qipc gc` ran.
//! Every count except operations and kills must be 0; the exit status says
//! whether it was.
//!
//! Only qipc's public API is used (`SharedMemory`, its guard, `NativeKey`,
//! `Error::kind`), so the suite keeps working while the core is rewritten.
//! See `stress/README.md` for the storms, the modes, the counts and the rules
//! of the mixed Qt storm.
//!
//! ```text
//! qipc-stress [--ci | --long] [--backend sysv|posix|both] [--storms LIST] [--json] ...
//! qipc-stress clean            remove what killed runs of this suite left behind
//! qipc-stress worker ...       (internal: one worker process)
//! ```

#![deny(unsafe_code)]

mod board;
mod coord;
mod keys;
mod objects;
mod procfs;
mod report;
mod rng;
mod sys;
mod worker;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime},
};

use coord::{Durations, Env, KillPolicy, PlanOptions, StormKind, StormRun};
use keys::Backend;

/// Exit status when a failure count is not 0.
const EXIT_FAILED: i32 = 1;
/// Exit status for bad usage or a missing prerequisite.
const EXIT_USAGE: i32 = 2;
/// Exit status when interrupted (SIGINT/SIGTERM/SIGHUP).
const EXIT_INTERRUPTED: i32 = 130;

const HELP: &str = "\
qipc-stress: multi-process stress suite for qipc

usage: qipc-stress [OPTIONS]        run storms (default: --ci, both backends, all storms)
       qipc-stress clean            remove leftovers of runs whose coordinator was killed
       qipc-stress worker ...       internal: one worker process

modes:
  --ci                 every storm on both backends in about 2-3 minutes (default)
  --long               the report mode: >= 1,000 kills per backend, 10 minutes of creator storms
options:
  --backend B          sysv, posix or both (default both)
  --storms LIST        comma-separated: kill,creator,last-detach,fork,mixed (default all);
                       qipc gc loops beside kill, creator, last-detach and fork unless --no-gc
  --duration SECS      seconds per storm (the mixed storm splits them between its phases)
  --hang SECS          a lock wait or qipc call longer than this is a hang (ci 10, long 30)
  --kills K            kill and creator storms: anywhere (default) or safe (only between qipc calls)
  --kill-every A-B     SIGKILL interval in ms, uniform in A..B (default 10-150)
  --size BYTES         segment size (default 4096; at least 1088)
  --no-gc              no qipc gc loop and no final qipc gc
  --seed N             seed of the random choices (printed; timing is not reproducible)
  --json               one JSON object on stdout instead of the table
  --keep               keep the run directory's logs and boards (objects are removed anyway)
  --quiet              no progress on stderr
  --qipc PATH          the qipc CLI for gc (default: next to this binary)
  --python PATH        Python with PyQt5 + PySide6 (default: $QIPC_QT_VENV or <repo>/.qt-venv)
exit status: 0 all failure counts 0, 1 a failure count is not 0, 2 usage, 130 interrupted
";

#[derive(Debug, Clone)]
struct Options {
    long: bool,
    backends: Vec<Backend>,
    storms: Vec<StormKind>,
    duration: Option<Duration>,
    hang: Option<Duration>,
    kills: KillPolicy,
    kill_every_ms: (u64, u64),
    size: usize,
    gc: bool,
    seed: Option<u64>,
    json: bool,
    keep: bool,
    quiet: bool,
    qipc: Option<PathBuf>,
    python: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        long: false,
        backends: vec![Backend::SysV, Backend::Posix],
        storms: StormKind::ALL.to_vec(),
        duration: None,
        hang: None,
        kills: KillPolicy::Anywhere,
        kill_every_ms: (10, 150),
        size: 4096,
        gc: true,
        seed: None,
        json: false,
        keep: false,
        quiet: false,
        qipc: None,
        python: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or_else(|| format!("{a} needs a value"));
        let secs = |s: String| {
            s.parse::<f64>()
                .ok()
                .filter(|v| *v > 0.0 && v.is_finite())
                .map(Duration::from_secs_f64)
                .ok_or_else(|| format!("{a}: not a positive number of seconds: {s}"))
        };
        match a.as_str() {
            "--ci" => o.long = false,
            "--long" => o.long = true,
            "--backend" => {
                o.backends = match val()?.as_str() {
                    "both" => vec![Backend::SysV, Backend::Posix],
                    b => vec![Backend::parse(b).ok_or_else(|| format!("unknown backend {b}"))?],
                }
            }
            "--storms" => {
                let v = val()?;
                o.storms = if v == "all" {
                    StormKind::ALL.to_vec()
                } else {
                    v.split(',')
                        .map(|s| StormKind::parse(s.trim()).ok_or_else(|| format!("unknown storm {s}")))
                        .collect::<Result<_, _>>()?
                };
            }
            "--duration" => o.duration = Some(secs(val()?)?),
            "--hang" => o.hang = Some(secs(val()?)?),
            "--kills" => {
                let v = val()?;
                o.kills = KillPolicy::parse(&v).ok_or_else(|| format!("--kills: anywhere or safe, not {v}"))?;
            }
            "--kill-every" => {
                let v = val()?;
                let (lo, hi) = v.split_once('-').ok_or("--kill-every: MIN-MAX in ms")?;
                let lo: u64 = lo.parse().map_err(|_| "--kill-every: MIN-MAX in ms")?;
                let hi: u64 = hi.parse().map_err(|_| "--kill-every: MIN-MAX in ms")?;
                if lo == 0 || hi < lo {
                    return Err("--kill-every: 0 < MIN <= MAX".into());
                }
                o.kill_every_ms = (lo, hi);
            }
            "--size" => {
                let v = val()?;
                o.size = v.parse().map_err(|_| format!("--size: not a number: {v}"))?;
                coord::check_size(o.size)?;
            }
            "--no-gc" => o.gc = false,
            "--seed" => {
                let v = val()?;
                o.seed = Some(parse_u64(&v).ok_or_else(|| format!("--seed: not a number: {v}"))?);
            }
            "--json" => o.json = true,
            "--keep" => o.keep = true,
            "--quiet" => o.quiet = true,
            "--qipc" => o.qipc = Some(PathBuf::from(val()?)),
            "--python" => o.python = Some(PathBuf::from(val()?)),
            other => return Err(format!("unknown option {other} (see --help)")),
        }
    }
    if o.storms.is_empty() {
        return Err("--storms: nothing to run".into());
    }
    Ok(o)
}

fn parse_u64(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn durations(o: &Options) -> Durations {
    let s = Duration::from_secs;
    let d = if o.long {
        // >= 1,000 kills per backend (kill + creator storms at 10-150 ms:
        // about 80 ms apart) and 2 x 300 s = 10 minutes of creator storms.
        Durations { kill: s(150), creator: s(300), last_detach: s(60), fork: s(60), mixed: s(180) }
    } else {
        Durations { kill: s(12), creator: s(15), last_detach: s(8), fork: s(8), mixed: s(21) }
    };
    match o.duration {
        Some(x) => Durations { kill: x, creator: x, last_detach: x, fork: x, mixed: x },
        None => d,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("worker") => worker::main(&args[1..]),
        Some("clean") => std::process::exit(clean()),
        Some("-h" | "--help") => print!("{HELP}"),
        _ => std::process::exit(run(&args)),
    }
}

fn run(args: &[String]) -> i32 {
    let o = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("qipc-stress: {e}");
            return EXIT_USAGE;
        }
    };
    match prepare(&o) {
        Ok(env) => run_storms(&o, args, env),
        Err(e) => {
            eprintln!("qipc-stress: {e}");
            EXIT_USAGE
        }
    }
}

/// Finds the binaries the run needs, fails loudly if one is missing, and
/// creates the run directory.
fn prepare(o: &Options) -> Result<Env, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let qipc = if o.gc {
        let p = o.qipc.clone().unwrap_or_else(|| exe.with_file_name("qipc"));
        if !p.is_file() {
            return Err(format!(
                "the qipc CLI is not at {} (build it: cargo build --release -p qipc-cli, or pass --qipc PATH or --no-gc)",
                p.display()
            ));
        }
        Some(p)
    } else {
        None
    };
    let qt = if o.storms.contains(&StormKind::Mixed) {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let python = o.python.clone().unwrap_or_else(|| {
            std::env::var_os("QIPC_QT_VENV").map_or_else(|| repo.join(".qt-venv"), PathBuf::from).join("bin/python")
        });
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("qt/storm_peer.py");
        if !python.is_file() {
            return Err(format!(
                "the Qt peers are missing: {} does not exist (run scripts/setup-qt.sh, or pass --python PATH, or leave out --storms mixed)",
                python.display()
            ));
        }
        if !script.is_file() {
            return Err(format!("the Qt peer script {} is missing", script.display()));
        }
        Some((python, script))
    } else {
        None
    };
    let stale = dead_run_dirs(&std::env::temp_dir()).len();
    if stale > 0 && !o.quiet {
        eprintln!(
            "qipc-stress: note: {stale} run directories of runs whose coordinator was killed are in {} (`qipc-stress clean` removes them and their objects)",
            std::env::temp_dir().display()
        );
    }
    sys::install_stop_handlers().map_err(|e| format!("sigaction: {e}"))?;
    sys::set_child_subreaper().map_err(|e| format!("prctl(PR_SET_CHILD_SUBREAPER): {e}"))?;
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let pid = std::process::id();
    let tag = keys::run_tag(pid, nanos);
    let run_dir = coord::run_dir_name(&std::env::temp_dir(), pid, nanos);
    std::fs::create_dir_all(&run_dir).map_err(|e| format!("cannot create {}: {e}", run_dir.display()))?;
    // For `qipc-stress clean`, should this coordinator be killed.
    std::fs::write(run_dir.join("tag"), &tag).map_err(|e| format!("cannot write {}: {e}", run_dir.display()))?;
    Ok(Env {
        exe,
        qipc,
        qt,
        run_dir,
        tag,
        hang: o.hang.unwrap_or(Duration::from_secs(if o.long { 30 } else { 10 })),
        size: o.size,
        keep: o.keep,
        verbose: !o.quiet,
    })
}

/// Removes the run directory when the run ends, however it ends.
struct RunDir(PathBuf, bool);

impl Drop for RunDir {
    fn drop(&mut self) {
        if !self.1 {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn run_storms(o: &Options, args: &[String], env: Env) -> i32 {
    let _dir = RunDir(env.run_dir.clone(), env.keep);
    let seed = o.seed.unwrap_or_else(rng::fresh_seed);
    let command = reproduce(&env.exe, args, seed);
    let popts = PlanOptions { durations: durations(o), kills: o.kills, kill_every_ms: o.kill_every_ms, gc: o.gc };
    let plans = coord::all_plans(&o.storms, &o.backends, &popts);
    let started = Instant::now();
    if !o.json {
        println!(
            "qipc-stress: {} storms, seed {seed:#x}, hang limit {} s, run tag {}",
            plans.len(),
            env.hang.as_secs_f64(),
            env.tag
        );
        println!("reproduce: {command}");
        println!("{}", report::table_header());
    }
    let mut results = Vec::new();
    for (i, plan) in plans.into_iter().enumerate() {
        if sys::stop_requested() {
            break;
        }
        let seed_i = coord::storm_seed(seed, &plan);
        let unique = format!("{}-{}-{i}", std::process::id(), started.elapsed().as_nanos());
        let r = match StormRun::new(&env, plan.clone(), seed_i, &unique) {
            Ok(run) => run.run(),
            Err(e) => {
                let mut r = report::StormResult {
                    storm: plan.storm.clone(),
                    backend: plan.backend.name().into(),
                    ..Default::default()
                };
                r.counts.errors += 1;
                r.errors.entry("setup".into()).or_default().add(&format!("cannot set up the storm: {e}"));
                r
            }
        };
        let mut r = r;
        r.reproduce = reproduce_storm(&env.exe, args, seed, &r.backend, &r.storm);
        if !o.json {
            println!("{}", report::table_row(&r));
        }
        results.push(r);
    }
    let interrupted = sys::stop_requested();
    let ok = results.iter().all(report::StormResult::ok) && !interrupted;
    let secs = started.elapsed().as_secs_f64();
    if o.json {
        let storms: Vec<String> = results.iter().map(report::storm_json).collect();
        println!(
            "{{\"schema\": \"qipc-stress/1\", \"command\": {}, \"seed\": \"{seed:#x}\", \"mode\": {}, \"seconds\": {secs:.1}, \"hang_limit_s\": {}, \"interrupted\": {interrupted}, \"ok\": {ok}, \"storms\": [{}]}}",
            report::json_str(&command),
            report::json_str(if o.long { "long" } else { "ci" }),
            env.hang.as_secs_f64(),
            storms.join(", ")
        );
    } else {
        for b in &o.backends {
            let rs: Vec<report::StormResult> = results.iter().filter(|r| r.backend == b.name()).cloned().collect();
            if !rs.is_empty() {
                let t = coord::total(&rs);
                let total = report::StormResult {
                    storm: "TOTAL".into(),
                    backend: b.name().into(),
                    seconds: rs.iter().map(|r| r.seconds).sum(),
                    counts: t,
                    ..Default::default()
                };
                println!("{}", report::table_row(&total));
            }
        }
        println!();
        for r in &results {
            print!("{}", report::details(r));
        }
        println!();
        println!("{} in {secs:.0} s", if ok { "PASS: every failure count is 0" } else { "FAIL" });
        if interrupted {
            println!("interrupted: the run is incomplete");
        }
        println!("reproduce: {command}");
    }
    if interrupted {
        EXIT_INTERRUPTED
    } else if ok {
        0
    } else {
        EXIT_FAILED
    }
}

/// The command line that repeats this run (with its seed).
fn reproduce(exe: &Path, args: &[String], seed: u64) -> String {
    command_without(exe, args, &["--seed"], &[("--seed", format!("{seed:#x}"))])
}

/// The command line that repeats one storm of this run: same options and
/// seed, one backend, one storm (the storm's seed depends only on these).
fn reproduce_storm(exe: &Path, args: &[String], seed: u64, backend: &str, storm: &str) -> String {
    let storm = storm.split(':').next().unwrap_or(storm);
    command_without(
        exe,
        args,
        &["--seed", "--backend", "--storms"],
        &[("--backend", backend.to_string()), ("--storms", storm.to_string()), ("--seed", format!("{seed:#x}"))],
    )
}

/// `exe args`, minus the options in `drop` (and their values), plus `add`.
fn command_without(exe: &Path, args: &[String], drop: &[&str], add: &[(&str, String)]) -> String {
    let mut parts = vec![exe.display().to_string()];
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if drop.contains(&a.as_str()) {
            it.next();
            continue;
        }
        parts.push(shell_quote(a));
    }
    for (k, v) in add {
        parts.push((*k).to_string());
        parts.push(shell_quote(v));
    }
    parts.join(" ")
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// `qipc-stress clean`: for run directories whose coordinator is gone (it
/// was SIGKILLed), remove the run's /dev/shm entries (by its letters), the
/// System V objects its remaining key files name, and the System V objects
/// its processes created or last changed since the run started (pids from
/// the run's `pids` file and its boards), then the directory.
fn clean() -> i32 {
    let mut removed = 0;
    for (dir, started_s) in dead_run_dirs(&std::env::temp_dir()) {
        let tag = std::fs::read_to_string(dir.join("tag")).unwrap_or_default();
        let mut files = Vec::new();
        collect_files(&dir, &mut files);
        let keys: std::collections::HashSet<i32> = files
            .iter()
            .filter(|f| f.file_name().is_some_and(|n| n.to_string_lossy().starts_with("qipc_")))
            .filter_map(|f| sys::ftok(f).ok())
            .collect();
        let mut pids: std::collections::HashSet<u32> = std::fs::read_to_string(dir.join("pids"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        for f in files.iter().filter(|f| f.file_name().is_some_and(|n| n == "board")) {
            if let Ok(b) = board::Board::open(f) {
                pids.extend(b.registered_pids());
            }
        }
        let ours = |r: &procfs::SysvRow, last_pid: u32| {
            keys.contains(&r.key) || (r.ctime + 1 >= started_s && (pids.contains(&r.cpid) || pids.contains(&last_pid)))
        };
        for row in procfs::sysv_rows(procfs::SysvTable::Shm) {
            if ours(&row, 0) && sys::shm_remove(row.id).is_ok() {
                println!("removed System V segment {}", row.id);
                removed += 1;
            }
        }
        for row in procfs::sysv_rows(procfs::SysvTable::Sem) {
            let last = sys::sem_last_pid(row.id).unwrap_or(0);
            if ours(&row, last) && sys::sem_remove(row.id).is_ok() {
                println!("removed System V semaphore {}", row.id);
                removed += 1;
            }
        }
        if tag.len() >= 8 && tag.chars().all(|c| c.is_ascii_alphabetic()) {
            let pattern = format!("QipcStress{tag}");
            if let Ok(shm) = std::fs::read_dir("/dev/shm") {
                for f in shm.flatten() {
                    if f.file_name().to_string_lossy().contains(&pattern) && std::fs::remove_file(f.path()).is_ok() {
                        println!("removed {}", f.path().display());
                        removed += 1;
                    }
                }
            }
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => println!("removed {}", dir.display()),
            Err(err) => eprintln!("cannot remove {}: {err}", dir.display()),
        }
    }
    println!("{removed} objects removed");
    0
}

/// Run directories (`qipc-stress-<pid>-<nanos>`) under `base` whose
/// coordinator is no longer running, with their start time in seconds.
fn dead_run_dirs(base: &Path) -> Vec<(PathBuf, u64)> {
    let Ok(entries) = std::fs::read_dir(base) else { return Vec::new() };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("qipc-stress-") else { continue };
        let mut fields = rest.split('-');
        let Some(pid) = fields.next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        let Some(nanos) = fields.next().and_then(|n| n.parse::<u128>().ok()) else { continue };
        let running = procfs::stat(pid).is_some_and(|s| s.state != 'Z');
        if !running && e.file_type().is_ok_and(|t| t.is_dir()) {
            out.push((e.path(), (nanos / 1_000_000_000) as u64));
        }
    }
    out
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => collect_files(&p, out),
            Ok(t) if t.is_file() => out.push(p),
            _ => {}
        }
    }
}
