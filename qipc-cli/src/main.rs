//! `qipc`: see, share, read, write, lock and clean up Qt-style shared memory
//! (QSharedMemory / QSystemSemaphore) from the command line.
//!
//! Exit status: 0 success, 1 error, 2 usage error. An error is printed as
//! `qipc: COMMAND: MESSAGE` with hints below it, or, with `--json`, as the
//! error document of JSON.md on standard output.

mod cli;
mod cmd;
mod error;
mod json;
mod keys;
mod output;
mod signals;
// The tables are those of the inspection commands (Linux).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
mod table;

use std::{ffi::OsString, io::Write, process::ExitCode};

use clap::{
    error::{ContextKind, ContextValue, ErrorKind},
    CommandFactory, Parser,
};

use cli::Cli;
use error::CliError;

const COMMANDS: &str = "ls, info, key, share, read, write, lock, rm, gc, demo, help";

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => return clap_error(&e, &args),
    };
    let Some(command) = cli.command else {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "qipc: see, share, read, write, lock and clean up Qt-style shared memory\n\n\
             Usage: qipc COMMAND [OPTIONS]\n\
             Commands: {COMMANDS}\n\n\
             `qipc help` describes them; `qipc help COMMAND` shows a command's options and examples."
        );
        return ExitCode::from(2);
    };
    let (name, json) = (command.name(), command.json());
    match cmd::run(command) {
        Ok(status) => ExitCode::from(status),
        Err(e) => {
            report(name, json, &e);
            ExitCode::from(e.status)
        }
    }
}

/// Prints an error: `qipc: COMMAND: MESSAGE` and its hints on standard
/// error, or the JSON error document on standard output.
fn report(command: &str, json: bool, e: &CliError) {
    if e.quiet {
        return;
    }
    if json {
        let doc = json::ErrorDoc {
            error: json::ErrorJson { kind: e.kind, message: &e.message, hints: &e.hints, exit_code: e.status },
        };
        if json::print(command, &doc).is_ok() {
            return;
        }
    }
    let mut err = std::io::stderr().lock();
    let prefix = if command.is_empty() { "qipc".to_string() } else { format!("qipc: {command}") };
    let _ = writeln!(err, "{prefix}: {}", e.message);
    for hint in &e.hints {
        let _ = writeln!(err, "  {hint}");
    }
}

/// `--json` given before any `--`.
fn wants_json(args: &[OsString]) -> bool {
    args.iter().skip(1).take_while(|a| *a != "--").any(|a| a == "--json")
}

/// The first argument that is not an option.
fn first_word(args: &[OsString]) -> Option<&OsString> {
    args.iter().skip(1).find(|a| !a.to_string_lossy().starts_with('-'))
}

/// The subcommand named on the command line, if any.
fn command_named(args: &[OsString]) -> Option<String> {
    let names: Vec<String> = Cli::command().get_subcommands().map(|c| c.get_name().to_string()).collect();
    let first = first_word(args)?.to_str()?;
    names.iter().any(|n| n == first).then(|| first.to_string())
}

/// A clap error: help and version go to standard output (status 0); a
/// usage error becomes `qipc: COMMAND: MESSAGE` (status 2).
fn clap_error(e: &clap::Error, args: &[OsString]) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let command = command_named(args).unwrap_or_default();
    let context = |kind: ContextKind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => v.first().cloned(),
        _ => None,
    };
    let mut err = match e.kind() {
        ErrorKind::InvalidSubcommand => {
            let name = context(ContextKind::InvalidSubcommand).unwrap_or_default();
            let raw = args.iter().find(|a| a.to_str().is_none());
            let mut msg = match raw {
                Some(raw) if name.contains('\u{FFFD}') => format!("unknown command {raw:?} (not valid UTF-8)"),
                _ => format!("unknown command `{name}`"),
            };
            if let Some(s) = context(ContextKind::SuggestedSubcommand) {
                msg.push_str(&format!("; did you mean `{s}`?"));
            }
            CliError::usage(msg).hint(format!("the commands: {COMMANDS}; `qipc help` describes them"))
        }
        ErrorKind::UnknownArgument => {
            let arg = context(ContextKind::InvalidArg).unwrap_or_default();
            let mut msg = format!("unknown option `{arg}`");
            if let Some(s) = context(ContextKind::SuggestedArg) {
                msg.push_str(&format!("; did you mean `{s}`?"));
            }
            let mut err = CliError::usage(msg);
            if let Some(s) = context(ContextKind::SuggestedSubcommand) {
                err = err.hint(format!("`{s}` is a command: `qipc {s} ...`"));
            }
            if command.is_empty() && arg == "--json" {
                err = err.hint("--json goes after the command, as in `qipc ls --json`");
            } else if !command.is_empty() && arg.starts_with('-') && context(ContextKind::SuggestedArg).is_none() {
                err = err.hint(format!("a value that starts with `-` goes after `--`, as in `-- {arg}`"));
            }
            err
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => CliError::usage("a command is required"),
        _ => CliError::usage(clap_message(e)),
    };
    let help = if command.is_empty() { "`qipc --help`".to_string() } else { format!("`qipc {command} --help`") };
    if let Some(usage) = usage_of(&command) {
        err = err.hint(usage);
    }
    err = err.hint(format!("{help} shows every option, with examples"));
    report(&command, wants_json(args), &err);
    ExitCode::from(2)
}

/// Clap's message without its `error: ` prefix, its usage and its footer,
/// on one line.
fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let body = text.split("\n\nUsage:").next().unwrap_or(&text);
    let body = body.split("\n\nFor more information").next().unwrap_or(body);
    let body = body.strip_prefix("error: ").unwrap_or(body);
    let lines: Vec<&str> = body.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines.join(" ")
}

/// The `Usage: qipc COMMAND …` line of a command.
fn usage_of(command: &str) -> Option<String> {
    if command.is_empty() {
        return None;
    }
    let mut cli = Cli::command();
    cli.build();
    let usage = cli.find_subcommand_mut(command)?.render_usage().to_string();
    usage.lines().next().map(str::to_string)
}
