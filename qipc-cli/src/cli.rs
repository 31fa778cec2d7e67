//! The command line, declared with clap's derive API: one struct of
//! arguments per command, and the value parsers for keys, sizes and
//! durations (which never panic, whatever the input).

use std::{ffi::OsString, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

const ABOUT: &str = "See, share, read, write, lock and clean up Qt-style shared memory \
(QSharedMemory / QSystemSemaphore; Qt 5 and Qt 6; System V and POSIX)";

const AFTER_HELP: &str = "\
Keys: a bare KEY is a legacy key, as in QSharedMemory(KEY); on Linux it names System V objects
(`--type posix` derives the POSIX names instead). `--native` takes a QNativeIpcKey in text form:
posix:/name, posix:Name, systemv:/path/to/file.

Sizes: 1024, 4k, 1M, 0x400. Durations: 500ms, 10s, 2m, 1h (too large to represent: no limit).
Exit status: 0 success, 1 error, 2 usage error. Every command takes --json (JSON.md).

Run `qipc help COMMAND` (or `qipc COMMAND --help`) for a command's options and examples.";

/// `qipc`'s command line.
#[derive(Debug, Parser)]
#[command(name = "qipc", version, about = ABOUT, after_help = AFTER_HELP, max_term_width = 100)]
pub struct Cli {
    /// The command; none prints a short usage.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the segments, semaphores and key files on this machine, and who uses them
    #[command(after_help = "\
Examples:
  qipc ls
  qipc ls --wide --match SharedMemoryExample
  qipc ls --json | jq '.objects[] | select(.state == \"orphaned\")'")]
    Ls(LsArgs),

    /// Show one key's names, objects, users and lock state
    #[command(after_help = "\
Examples:
  qipc info SharedMemoryExample
  qipc info --native posix:/QSharedMemoryExample --json

Exits with status 1 if nothing exists for the key.")]
    Info(InfoArgs),

    /// Print the names, text forms and System V keys Qt derives from a key
    #[command(after_help = "\
Examples:
  qipc key SharedMemoryExample
  qipc key my_shared_memory --type posix --json")]
    Key(KeyCmdArgs),

    /// Create a segment, put data in it, stay attached until Ctrl-C or SIGTERM
    #[command(after_help = "\
Prints `READY <native key> size=N bytes=M pid=P` once the data is in place, and
`DETACHED (<why>)` when it lets go; the segment goes with the last process to detach.

Examples:
  qipc share SharedMemoryExample --qstring \"Hello from writer!\" --size 1024
  qipc share --native posix:/demo --file image.bin --for 10m
  echo hello | qipc share my_key --stdin --mode 0660")]
    Share(ShareArgs),

    /// Attach, lock, copy the segment (or part of it), detach; print or decode it
    #[command(after_help = "\
A segment nobody is attached to (orphaned) is read and left in place, not removed.

Examples:
  qipc read SharedMemoryExample --as qstring
  qipc read my_key --offset 16 --len 32 --as hex
  qipc read --native posix:/QSharedMemoryExample --as qimage --out image.png")]
    Read(ReadArgs),

    /// Write data into an existing segment, under its lock
    #[command(after_help = "\
Data that does not fit is an error, and then nothing is written.

Examples:
  qipc write SharedMemoryExample --qstring \"Hello again\"
  qipc write my_key --offset 100 --text abc --timeout 2s")]
    Write(WriteArgs),

    /// Hold a segment's lock (Qt's) while a command runs
    #[command(after_help = "\
Exits with COMMAND's exit status (128 + N if a signal N ended it). A Ctrl-C reaches COMMAND
too; qipc releases the lock once COMMAND has exited.

Examples:
  qipc lock SharedMemoryExample -- sleep 2
  qipc lock my_key --timeout 5s -- sh -c 'cp snapshot.bin backup.bin'")]
    Lock(LockArgs),

    /// Remove one key's segment, lock semaphore and key files (refused while in use)
    #[command(after_help = "\
Processes still attached keep their mapping when --force removes a segment; new ones no longer
find it. Files qipc did not create are never removed.

Examples:
  qipc rm SharedMemoryExample
  qipc rm --native posix:/QSharedMemoryExample --dry-run
  qipc rm my_key --force")]
    Rm(RmArgs),

    /// Remove what nobody uses (what `qipc ls` calls orphaned); never anything in use
    #[command(after_help = "\
Each key is cleaned up under its own lock, and only if its objects are still the ones listed and
still unused. A POSIX segment whose name is not Qt's (a Qt 6.6+ native key's segment after its
program exited, or another program's) is removed only when --match names it.

Examples:
  qipc gc --dry-run
  qipc gc
  qipc gc --match QSharedMemoryExample --json")]
    Gc(GcArgs),

    /// Run a writer and a reader as two processes, explaining each step
    #[command(after_help = "\
The key defaults to SharedMemoryExample-demo-PID, so that runs never collide; nothing is left
behind, even when the demo is interrupted.

Examples:
  qipc demo
  qipc demo --key MyKey --json")]
    Demo(DemoArgs),

    /// The demo's reader (internal).
    #[command(name = "__demo-reader", hide = true)]
    DemoReader(DemoReaderArgs),
}

impl Command {
    /// The command's name, as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Ls(_) => "ls",
            Command::Info(_) => "info",
            Command::Key(_) => "key",
            Command::Share(_) => "share",
            Command::Read(_) => "read",
            Command::Write(_) => "write",
            Command::Lock(_) => "lock",
            Command::Rm(_) => "rm",
            Command::Gc(_) => "gc",
            Command::Demo(_) => "demo",
            Command::DemoReader(_) => "__demo-reader",
        }
    }

    /// Whether `--json` was given.
    pub fn json(&self) -> bool {
        match self {
            Command::Ls(a) => a.out.json,
            Command::Info(a) => a.out.json,
            Command::Key(a) => a.out.json,
            Command::Share(a) => a.out.json,
            Command::Read(a) => a.output.json,
            Command::Write(a) => a.out.json,
            Command::Lock(a) => a.out.json,
            Command::Rm(a) => a.out.json,
            Command::Gc(a) => a.out.json,
            Command::Demo(a) => a.out.json,
            Command::DemoReader(_) => false,
        }
    }
}

/// `--json`, shared by every command.
#[derive(Debug, Args)]
pub struct Output {
    /// Print JSON (schema in JSON.md), errors included
    #[arg(long)]
    pub json: bool,
}

/// The key a command works on: a legacy KEY or `--native`.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// Legacy key, as in QSharedMemory(KEY)
    #[arg(value_name = "KEY", required_unless_present = "native", conflicts_with = "native")]
    pub key: Option<OsString>,
    /// Native key in QNativeIpcKey's text form: posix:/name, posix:Name, systemv:/path
    #[arg(long, value_name = "NATIVE")]
    pub native: Option<OsString>,
    /// Backend of a legacy KEY [default: systemv, as Qt on Linux]
    #[arg(long = "type", value_name = "TYPE", value_enum, conflicts_with = "native")]
    pub key_type: Option<Backend>,
}

/// The backend of a legacy key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    // System V (`shmget`), Qt's default on Linux.
    #[value(alias = "sysv")]
    Systemv,
    // POSIX (`shm_open`).
    Posix,
}

/// The data `share` and `write` put in a segment: exactly one source.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Data {
    /// The bytes of TEXT, as given (`--text --help` shares the text "--help")
    #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
    pub text: Option<OsString>,
    /// TEXT as QDataStream writes a QString (`out << QString(TEXT)`)
    #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
    pub qstring: Option<String>,
    /// The bytes of FILE
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The bytes read from standard input
    #[arg(long)]
    pub stdin: bool,
}

/// `qipc ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only objects whose name, key or location contains TEXT
    #[arg(long = "match", value_name = "TEXT")]
    pub matching: Option<String>,
    /// Every column (owner, mode, creator, age, location), not cut to the terminal's width
    #[arg(long, short = 'w')]
    pub wide: bool,
    /// Also POSIX segments of other programs that are in use
    #[arg(long, short = 'a')]
    pub all: bool,
    #[command(flatten)]
    pub out: Output,
}

/// `qipc info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(flatten)]
    pub out: Output,
}

/// `qipc key`.
#[derive(Debug, Args)]
pub struct KeyCmdArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(flatten)]
    pub out: Output,
}

/// `qipc share`.
#[derive(Debug, Args)]
pub struct ShareArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(flatten)]
    pub data: Data,
    /// Segment size [default: the data's size]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub size: Option<u64>,
    /// Detach and exit after DURATION [default: at Ctrl-C or SIGTERM]
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Permission bits of the segment, octal [default: 0600, as Qt]
    #[arg(long, value_name = "MODE", value_parser = parse_mode)]
    pub mode: Option<u32>,
    #[command(flatten)]
    pub out: Output,
}

/// How `read` prints what it copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    // The bytes as they are.
    Raw,
    // A hex dump.
    Hex,
    // A QString, as QDataStream wrote it.
    Qstring,
    // A QByteArray, as QDataStream wrote it.
    Qbytearray,
    // A QImage, as QDataStream wrote it (needs --out FILE.png).
    Qimage,
}

/// `qipc read`.
#[derive(Debug, Args)]
pub struct ReadArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    /// How to print the bytes: as they are, a hex dump, or decoded as QDataStream wrote them (qimage needs --out FILE.png)
    #[arg(long = "as", value_name = "FORMAT", value_enum, default_value_t = Format::Raw)]
    pub format: Format,
    /// Where to start, in bytes from the segment's start
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "0")]
    pub offset: u64,
    /// How many bytes [default: up to the segment's end]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub len: Option<u64>,
    /// Write to FILE instead of standard output
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Wait at most DURATION for the lock [default: as long as it takes, as Qt]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    #[command(flatten)]
    pub output: Output,
}

/// `qipc write`.
#[derive(Debug, Args)]
pub struct WriteArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(flatten)]
    pub data: Data,
    /// Where to write, in bytes from the segment's start
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "0")]
    pub offset: u64,
    /// Wait at most DURATION for the lock [default: as long as it takes, as Qt]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    #[command(flatten)]
    pub out: Output,
}

/// `qipc lock`.
#[derive(Debug, Args)]
pub struct LockArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    /// Wait at most DURATION for the lock [default: as long as it takes, as Qt]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// The command to run while the lock is held, after `--`
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
    #[command(flatten)]
    pub out: Output,
}

/// `qipc rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    /// Remove even while processes are attached (they keep their mapping)
    #[arg(long)]
    pub force: bool,
    /// Only say what would be removed
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub out: Output,
}

/// `qipc gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Only say what would be removed
    #[arg(long)]
    pub dry_run: bool,
    /// Only objects whose name, key or location contains TEXT
    #[arg(long = "match", value_name = "TEXT", value_parser = non_empty)]
    pub matching: Option<String>,
    #[command(flatten)]
    pub out: Output,
}

/// `qipc demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The legacy key to use [default: SharedMemoryExample-demo-PID]
    #[arg(long, value_name = "KEY", value_parser = non_empty)]
    pub key: Option<String>,
    #[command(flatten)]
    pub out: Output,
}

/// The demo's reader.
#[derive(Debug, Args)]
pub struct DemoReaderArgs {
    /// The legacy key.
    pub key: String,
}

fn non_empty(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("it must not be empty".into());
    }
    Ok(s.to_string())
}

/// `1024`, `4k`, `4K`, `4KiB`, `1M`, `2G`, `0x400`: a byte count. Too large
/// for 64 bits is an error, never a wrap-around.
pub fn parse_size(s: &str) -> Result<u64, String> {
    const EXPECTED: &str = "expected a size such as 1024, 4k, 1M or 0x400";
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(EXPECTED.into());
        }
        return u64::from_str_radix(hex, 16).map_err(|_| "too large (at most 2^64 - 1 bytes)".to_string());
    }
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(EXPECTED.into());
    }
    let (n, unit) = s.split_at(digits);
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(format!("unknown unit `{unit}`: {EXPECTED}")),
    };
    let too_large = || "too large (at most 2^64 - 1 bytes)".to_string();
    let n: u64 = n.parse().map_err(|_| too_large())?;
    n.checked_mul(1u64 << shift).ok_or_else(too_large)
}

/// `500ms`, `10s`, `2m`, `1h`, `1.5s`, `1d`; a bare number is seconds. A
/// duration too large to represent means no limit (`Duration::MAX`), as
/// the library treats a timeout that cannot be reached.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    const EXPECTED: &str = "expected a duration such as 500ms, 10s, 2m or 1h";
    let number = s.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
    let (n, unit) = s.split_at(number);
    let (whole, frac) = n.split_once('.').unwrap_or((n, ""));
    if whole.is_empty() && frac.is_empty() || frac.contains('.') {
        return Err(EXPECTED.into());
    }
    let nanos_per_unit: u128 = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "" | "s" | "sec" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        _ => return Err(format!("unknown unit `{unit}`: {EXPECTED}")),
    };
    // Whole part: saturate (a timeout beyond any clock is no limit).
    let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().unwrap_or(u128::MAX) };
    let mut nanos = whole.saturating_mul(nanos_per_unit);
    // Fraction: at most 9 significant digits of a second matter.
    let mut scale = nanos_per_unit;
    for d in frac.bytes().take(40) {
        scale /= 10;
        nanos = nanos.saturating_add(u128::from(d - b'0') * scale);
    }
    let secs = nanos / 1_000_000_000;
    Ok(match u64::try_from(secs) {
        Ok(secs) => Duration::new(secs, (nanos % 1_000_000_000) as u32),
        Err(_) => Duration::MAX,
    })
}

/// `0600`, `660`, `0o644`: permission bits.
fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    let mode = u32::from_str_radix(digits, 8).map_err(|_| "expected octal permission bits such as 0600 or 0660")?;
    if mode > 0o777 {
        return Err("expected permission bits between 0000 and 0777".into());
    }
    Ok(mode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("0x400"), Ok(1024));
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
        for bad in ["", "x", "-1", "1x", "0x", "0xg", "18446744073709551616", "99999999999999999999k", "16777216T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("99999999999999999999"), Ok(Duration::MAX));
        assert_eq!(parse_duration("99999999999999999999999999999999999999999d"), Ok(Duration::MAX));
        for bad in ["", ".", "x", "-1", "1x", "1.2.3", "nan", "inf", "1e9", "s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode("0660"), Ok(0o660));
        assert_eq!(parse_mode("0o600"), Ok(0o600));
        assert!(parse_mode("0999").is_err() && parse_mode("7777").is_err() && parse_mode("").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every visible command's help shows each of its options and an example.
    #[test]
    fn every_help_lists_its_options_and_examples() {
        let mut cli = Cli::command();
        cli.build();
        for sub in cli.get_subcommands_mut().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
            let name = sub.get_name().to_string();
            let help = sub.render_help().to_string();
            assert!(help.contains("Examples:\n  qipc "), "{name}: no example:\n{help}");
            for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
                let shown = match arg.get_long() {
                    Some(long) => format!("--{long}"),
                    None => arg.get_value_names().map_or(arg.get_id().to_string(), |v| v[0].to_string()),
                };
                assert!(help.contains(&shown), "{name}: `{shown}` missing from its help:\n{help}");
            }
        }
    }
}
