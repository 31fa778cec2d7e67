//! Writing to standard output without panicking: a closed pipe (`qipc ls |
//! head -1`) or a full disk is an error like any other, never a panic.

use std::io::Write;

use crate::error::CliError;

/// Writes `text` to standard output and flushes.
pub fn out(text: &str) -> Result<(), CliError> {
    write_all(&mut std::io::stdout().lock(), text.as_bytes())
}

/// Writes `text` and a newline to standard output.
pub fn outln(text: &str) -> Result<(), CliError> {
    let mut s = String::with_capacity(text.len() + 1);
    s.push_str(text);
    s.push('\n');
    out(&s)
}

/// Writes bytes to standard output.
pub fn out_bytes(bytes: &[u8]) -> Result<(), CliError> {
    write_all(&mut std::io::stdout().lock(), bytes)
}

/// Writes `text` to standard error, ignoring failures (there is nowhere
/// left to report them).
pub fn note(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

fn write_all(w: &mut impl Write, bytes: &[u8]) -> Result<(), CliError> {
    w.write_all(bytes).and_then(|()| w.flush()).map_err(|e| {
        let mut err = CliError::io("standard output", &e);
        err.quiet = e.kind() == std::io::ErrorKind::BrokenPipe;
        err
    })
}
