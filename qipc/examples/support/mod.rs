//! Shared by the examples that stay attached until Ctrl-C or SIGTERM (on
//! Windows: Ctrl-C, Ctrl-Break or closing the console)
//! (`writer`, `image_share load`, `single_instance`): blocking the
//! termination signals, waiting for one, and printing that never fails.
//! (Not an example itself: Cargo only builds `examples/*.rs` and
//! `examples/*/main.rs`.)

#![allow(dead_code)]

use std::io::Write;
#[cfg(unix)]
use std::mem::MaybeUninit;

/// Prints a line, ignoring a closed stdout, so that a vanished terminal or
/// pipe never keeps a program from detaching.
pub fn say(args: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stdout(), "{args}");
}

/// The termination requests the programs wait for, as their messages name them.
#[cfg(unix)]
pub const STOP_SIGNALS: &str = "SIGINT/SIGTERM";
/// The termination requests the programs wait for, in a sentence.
#[cfg(unix)]
pub const STOP_WORDS: &str = "Ctrl-C or SIGTERM";
/// The termination requests the programs wait for, as their messages name them.
#[cfg(windows)]
pub const STOP_SIGNALS: &str = "Ctrl-C/Ctrl-Break";
/// The termination requests the programs wait for, in a sentence.
#[cfg(windows)]
pub const STOP_WORDS: &str = "Ctrl-C or Ctrl-Break";

/// The number of a termination request: a signal number on Unix, a console
/// control event (`CTRL_C_EVENT`...) on Windows.
#[cfg(unix)]
pub type Signal = libc::c_int;
/// The number of a termination request: a signal number on Unix, a console
/// control event (`CTRL_C_EVENT`...) on Windows.
#[cfg(windows)]
pub type Signal = u32;

/// SIGINT, SIGTERM and SIGHUP, blocked so that [`TerminationSignals::wait`]
/// can take them synchronously instead of having them kill the process.
/// On Windows: Ctrl-C, Ctrl-Break and closing the console, taken by a
/// console control handler. (A process killed outright, by `taskkill /f` or
/// `TerminateProcess`, detaches too there: the kernel closes its handles.)
#[cfg(unix)]
pub struct TerminationSignals(libc::sigset_t);

#[cfg(unix)]
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
    pub fn wait(&self) -> Signal {
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

#[cfg(unix)]
pub fn signal_name(signal: Signal) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// The console events caught on Windows, handed from the handler thread
/// that Windows starts for them to [`TerminationSignals::wait`].
#[cfg(windows)]
static EVENT: (std::sync::Mutex<Option<Signal>>, std::sync::Condvar) =
    (std::sync::Mutex::new(None), std::sync::Condvar::new());

#[cfg(windows)]
unsafe extern "system" fn on_console_event(event: u32) -> windows_sys::core::BOOL {
    let (slot, ready) = &EVENT;
    if let Ok(mut slot) = slot.lock() {
        slot.get_or_insert(event);
        ready.notify_all();
    }
    1 // handled: do not run the default handler, which ends the process
}

/// Ctrl-C, Ctrl-Break and closing the console, caught (see the Unix type).
#[cfg(windows)]
pub struct TerminationSignals(());

#[cfg(windows)]
impl TerminationSignals {
    /// Installs the console control handler.
    pub fn block() -> std::io::Result<TerminationSignals> {
        // SAFETY: `on_console_event` is a valid handler for the whole
        // program's life and only touches a static mutex and condvar.
        if unsafe { windows_sys::Win32::System::Console::SetConsoleCtrlHandler(Some(on_console_event), 1) } == 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(TerminationSignals(()))
    }

    /// Waits until one of the events arrives and returns it.
    pub fn wait(&self) -> Signal {
        let (slot, ready) = &EVENT;
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(event) = *slot {
                return event;
            }
            slot = ready.wait(slot).unwrap_or_else(|e| e.into_inner());
        }
    }
}

#[cfg(windows)]
pub fn signal_name(signal: Signal) -> &'static str {
    use windows_sys::Win32::System::Console::{CTRL_BREAK_EVENT, CTRL_CLOSE_EVENT, CTRL_C_EVENT};
    match signal {
        CTRL_C_EVENT => "Ctrl-C",
        CTRL_BREAK_EVENT => "Ctrl-Break",
        CTRL_CLOSE_EVENT => "the console closing",
        _ => "a console event",
    }
}
