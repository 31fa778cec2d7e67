//! `qipc`: see, share, read, write, lock and clean up Qt-style shared memory
//! segments (QSharedMemory / QSystemSemaphore), from the command line.
//!
//! Exit status: 0 success, 1 error, 2 usage error. Errors are printed as
//! `qipc: <operation>: <kind>: <cause>`.

mod args;
mod data;
mod demo;
mod help;
mod inspect_cmds;
mod json;
mod output;
mod signals;

use std::{fmt, process::ExitCode};

use qipc::{KeyType, NativeKey};

use args::Args;

/// A failed command.
#[derive(Debug)]
pub(crate) enum CliError {
    /// The command line is wrong (exit status 2).
    Usage { cmd: String, msg: String },
    /// The operation failed (exit status 1).
    Failed { op: String, kind: String, cause: String },
    /// Exit with this status, nothing to print (e.g. `lock`'s command).
    Exit(u8),
}

impl CliError {
    pub(crate) fn failed(op: &str, kind: &str, cause: impl Into<String>) -> CliError {
        CliError::Failed { op: op.to_string(), kind: kind.to_string(), cause: cause.into() }
    }

    /// A library error, with its kind.
    pub(crate) fn qipc(op: &str, err: qipc::Error) -> CliError {
        CliError::failed(op, err.kind().as_str(), err.to_string())
    }

    /// An I/O error (files, stdin, processes).
    pub(crate) fn io(op: &str, what: &str, err: std::io::Error) -> CliError {
        CliError::failed(op, "IoError", format!("{what}: {err}"))
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage { cmd, msg } => {
                let help = if cmd.is_empty() { "qipc --help".to_string() } else { format!("qipc help {cmd}") };
                let op = if cmd.is_empty() { "qipc" } else { cmd };
                write!(f, "qipc: {op}: UsageError: {msg}\nTry `{help}`.")
            }
            CliError::Failed { op, kind, cause } => write!(f, "qipc: {op}: {kind}: {cause}"),
            CliError::Exit(code) => write!(f, "exit status {code}"),
        }
    }
}

pub(crate) type CliResult = Result<(), CliError>;

/// The key named by `KEY` or `--native TEXT` (and `--type` for a legacy key).
pub(crate) fn key_from_args(a: &Args) -> Result<NativeKey, CliError> {
    let key_type = legacy_type(a)?;
    match (a.positionals.first(), a.value("--native")) {
        (Some(_), Some(_)) => Err(a.usage("give either KEY or --native NATIVE, not both")),
        (None, None) => Err(a.usage("a KEY or --native NATIVE is required")),
        (Some(key), None) => {
            if key.is_empty() {
                return Err(a.usage("the key is empty"));
            }
            Ok(NativeKey::legacy_shared_memory(key, key_type))
        }
        (None, Some(text)) => {
            if a.value("--type").is_some() {
                return Err(a.usage("--type applies to a legacy KEY; a native key's text names its type"));
            }
            let key = NativeKey::from_string(text).map_err(|e| a.usage(e.to_string()))?;
            if key.is_empty() {
                return Err(a.usage("the native key is empty"));
            }
            if key.key_type() == KeyType::Windows {
                return Err(a.usage("Windows keys cannot be used on Linux"));
            }
            Ok(key)
        }
    }
}

/// `--type systemv|posix`, default System V (Qt's legacy default on Linux).
pub(crate) fn legacy_type(a: &Args) -> Result<KeyType, CliError> {
    match a.value("--type") {
        None | Some("systemv") | Some("sysv") => Ok(KeyType::SYSTEM_V),
        Some("posix") => Ok(KeyType::PosixRealtime),
        Some(other) => Err(a.usage(format!("--type: expected systemv or posix, not `{other}`"))),
    }
}

fn run(argv: &[String]) -> CliResult {
    let Some(cmd) = argv.first() else {
        print!("{}", help::overview());
        return Err(CliError::Usage { cmd: String::new(), msg: "no command given".into() });
    };
    let rest = &argv[1..];
    if rest.iter().take_while(|a| *a != "--").any(|a| a == "--help" || a == "-h") && cmd != "help" {
        return help::command(cmd);
    }
    match cmd.as_str() {
        "-h" | "--help" => {
            print!("{}", help::overview());
            Ok(())
        }
        "-V" | "--version" => {
            println!("qipc {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        "help" => match rest.first() {
            None => {
                print!("{}", help::overview());
                Ok(())
            }
            Some(c) => help::command(c),
        },
        "ls" => inspect_cmds::ls(rest),
        "info" => inspect_cmds::info(rest),
        "key" => inspect_cmds::key(rest),
        "gc" => inspect_cmds::gc(rest),
        "rm" => inspect_cmds::rm(rest),
        "share" => data::share(rest),
        "read" => data::read(rest),
        "write" => data::write(rest),
        "lock" => data::lock(rest),
        "demo" => demo::demo(rest),
        "__demo-reader" => demo::reader(rest),
        other => Err(CliError::Usage { cmd: String::new(), msg: format!("unknown command `{other}`") }),
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match run(&argv) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Exit(code)) => ExitCode::from(code),
        Err(e @ CliError::Usage { .. }) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}
