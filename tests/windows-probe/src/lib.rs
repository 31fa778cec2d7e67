//! Scaffolding that builds qipc's Windows OS layer on its own, before the
//! backend layer uses it, and tests it:
//!
//! * on Linux, `cargo test` runs the unit tests of the name derivation
//!   (`qipc/src/sys/windows_names.rs`);
//! * under Wine, `cargo test --target x86_64-pc-windows-gnu` (see
//!   `scripts/test-windows.sh`) runs those, the Win32 wrappers' own tests
//!   (`qipc/src/sys/windows.rs`) and `interop`: the wrappers against real
//!   Windows Qt 5.15.2 and 6.12 (`qipc/tests/qt/win_peer.py`).
//!
//! The files are compiled by path with the crate layout they expect
//! (`crate::sha1`, `crate::error::ErrorKind`, `crate::sys::windows*`), so
//! they are the very files qipc will build.

#[allow(dead_code)]
#[path = "../../../qipc/src/sha1.rs"]
mod sha1;

/// Stands in for `qipc/src/error.rs`, of which the Windows files need only
/// `ErrorKind` (the real one is not included: its tests assume errno codes).
mod error {
    /// The variants of qipc's `ErrorKind`.
    #[allow(dead_code)]
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum ErrorKind {
        PermissionDenied,
        InvalidSize,
        KeyError,
        AlreadyExists,
        NotFound,
        LockError,
        OutOfResources,
        Unknown,
    }
}

// Both files live in qipc's `sys` module; `sys` re-exports them so that the
// paths they use (`super::windows_names`, `crate::sys::windows_names`) work.
#[allow(dead_code)]
#[path = "../../../qipc/src/sys/windows_names.rs"]
mod windows_names;

#[cfg(windows)]
#[allow(dead_code)]
#[path = "../../../qipc/src/sys/windows.rs"]
mod windows;

mod sys {
    #[cfg(windows)]
    #[allow(unused_imports)]
    pub(crate) use super::windows;
    #[allow(unused_imports)]
    pub(crate) use super::windows_names;
}

#[cfg(all(test, windows))]
mod interop;
