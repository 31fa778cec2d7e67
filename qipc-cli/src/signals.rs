//! Stop requests: Ctrl-C, SIGTERM or SIGHUP (on Windows Ctrl-C, Ctrl-Break
//! or closing the console), through the `ctrlc` crate. Its handler thread
//! hands each request to a channel, so waiting for one is a blocking
//! receive, with or without a time limit, instead of a polling loop. The
//! examples of the `qipc` crate (`examples/support`) wait the same way.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc::{self, Receiver, RecvTimeoutError},
        Arc,
    },
    time::Duration,
};

use crate::error::CliError;

/// The requests, as they arrive.
#[derive(Debug)]
pub struct StopRequests {
    rx: Receiver<()>,
    seen: Arc<AtomicBool>,
}

/// The requests this waits for, as messages name them.
#[cfg(unix)]
pub const STOP_WORDS: &str = "Ctrl-C or SIGTERM";
/// The requests this waits for, as messages name them.
#[cfg(not(unix))]
pub const STOP_WORDS: &str = "Ctrl-C or Ctrl-Break";

impl StopRequests {
    /// Installs the handler (once per process). From then on a stop
    /// request no longer ends the process: it is waited for.
    pub fn install() -> Result<StopRequests, CliError> {
        let (tx, rx) = mpsc::channel();
        let seen = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&seen);
        ctrlc::set_handler(move || {
            flag.store(true, Ordering::SeqCst);
            let _ = tx.send(());
        })
        .map_err(|e| CliError::new("IoError", format!("cannot handle {STOP_WORDS}: {e}")))?;
        Ok(StopRequests { rx, seen })
    }

    /// Waits for a request, at most `limit` if given. True if one came.
    pub fn wait(&self, limit: Option<Duration>) -> bool {
        match limit {
            // A limit too far to represent is no limit (std's recv_timeout
            // handles the overflow).
            Some(limit) => match self.rx.recv_timeout(limit) {
                Ok(()) => true,
                Err(RecvTimeoutError::Timeout) => false,
                Err(RecvTimeoutError::Disconnected) => self.requested(),
            },
            None => self.rx.recv().is_ok(),
        }
    }

    /// True once a request has arrived.
    pub fn requested(&self) -> bool {
        self.seen.load(Ordering::SeqCst)
    }
}
