//! Shared by the examples that stay attached until Ctrl-C or SIGTERM
//! (`writer`, `image_share load`, `single_instance`): blocking the
//! termination signals, waiting for one, and printing that never fails.
//! (Not an example itself: Cargo only builds `examples/*.rs` and
//! `examples/*/main.rs`.)

#![allow(dead_code)]

use std::{io::Write, mem::MaybeUninit};

/// Prints a line, ignoring a closed stdout, so that a vanished terminal or
/// pipe never keeps a program from detaching.
pub fn say(args: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stdout(), "{args}");
}

/// SIGINT, SIGTERM and SIGHUP, blocked so that [`TerminationSignals::wait`]
/// can take them synchronously instead of having them kill the process.
pub struct TerminationSignals(libc::sigset_t);

impl TerminationSignals {
    /// Blocks the signals in the calling thread. Call it from `main` before
    /// any thread starts, so that every thread inherits the mask and the
    /// signals stay pending until [`wait`](TerminationSignals::wait).
    pub fn block() -> std::io::Result<TerminationSignals> {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the sigset_t it is given; the
        // pointer refers to a live local of the right type.
        unsafe { libc::sigemptyset(set.as_mut_ptr()) };
        // SAFETY: initialised by sigemptyset just above.
        let mut set = unsafe { set.assume_init() };
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: `set` is an initialised sigset_t and `signal` a valid
            // signal number, so sigaddset cannot fail or write out of bounds.
            unsafe { libc::sigaddset(&mut set, signal) };
        }
        // SAFETY: pthread_sigmask only reads `set` (initialised) and is given
        // no old-mask pointer; changing this thread's mask is always sound.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
        Ok(TerminationSignals(set))
    }

    /// Waits until one of the signals arrives and returns its number.
    pub fn wait(&self) -> libc::c_int {
        loop {
            let mut signal: libc::c_int = 0;
            // SAFETY: `self.0` is an initialised set of signals that `block`
            // blocked; `signal` is a live out-parameter.
            let rc = unsafe { libc::sigwait(&self.0, &mut signal) };
            if rc == 0 {
                return signal;
            }
        }
    }
}

pub fn signal_name(signal: libc::c_int) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}
