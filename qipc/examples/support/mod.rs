//! Shared by the examples that stay attached until a stop request
//! (`writer`, `image_share load`, `single_instance`): waiting for Ctrl-C or
//! SIGTERM (on Windows Ctrl-C, Ctrl-Break or closing the console), and
//! printing that never fails. (Not an example itself: Cargo only builds
//! `examples/*.rs` and `examples/*/main.rs`.)
//!
//! Stop requests come through the `ctrlc` crate, the same way the `qipc`
//! command waits for them: its handler thread hands each one to a
//! channel, and waiting is a blocking receive. Once installed, a request no
//! longer ends the process, so the program detaches before it exits.

#![allow(dead_code)]

use std::{
    io::Write,
    sync::mpsc::{self, Receiver},
};

/// Prints a line, ignoring a closed stdout, so that a vanished terminal or
/// pipe never keeps a program from detaching.
pub fn say(args: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stdout(), "{args}");
}

/// The stop requests the programs wait for, as their messages name them.
#[cfg(unix)]
pub const STOP_SIGNALS: &str = "SIGINT/SIGTERM";
/// The stop requests the programs wait for, in a sentence.
#[cfg(unix)]
pub const STOP_WORDS: &str = "Ctrl-C or SIGTERM";
/// The stop requests the programs wait for, as their messages name them.
#[cfg(windows)]
pub const STOP_SIGNALS: &str = "Ctrl-C/Ctrl-Break";
/// The stop requests the programs wait for, in a sentence.
#[cfg(windows)]
pub const STOP_WORDS: &str = "Ctrl-C or Ctrl-Break";

/// Stop requests: SIGINT, SIGTERM and SIGHUP on Unix; Ctrl-C, Ctrl-Break
/// and closing the console on Windows. (A process killed outright, by
/// SIGKILL or `taskkill /f`, cannot detach: on Windows the kernel closes its
/// handles, elsewhere `qipc gc` or the next `create` reclaims what it left.)
pub struct StopRequests(Receiver<()>);

impl StopRequests {
    /// Installs the handler. Call it before creating anything, so that a
    /// request that arrives meanwhile is waited for, not fatal.
    pub fn install() -> Result<StopRequests, ctrlc::Error> {
        let (tx, rx) = mpsc::channel();
        ctrlc::set_handler(move || {
            let _ = tx.send(());
        })?;
        Ok(StopRequests(rx))
    }

    /// Waits until a request arrives.
    pub fn wait(&self) {
        let _ = self.0.recv();
    }
}
