//! The one place that reads the environment for key derivation: the
//! temporary directory (`TMPDIR`), the runtime directory
//! (`XDG_RUNTIME_DIR`, `USER`), resolved as Qt resolves them, and on Apple
//! systems whether the process runs in the App Sandbox.

#![forbid(unsafe_code)]

use std::path::PathBuf;

/// `$TMPDIR` (or `/tmp`), canonical; empty if it does not exist or is `/`.
pub(crate) fn temp_dir() -> String {
    let dir = std::env::var_os("TMPDIR").filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| "/tmp".into());
    match std::fs::canonicalize(&dir) {
        Ok(p) => {
            let s = p.to_string_lossy().into_owned();
            if s == "/" {
                String::new()
            } else {
                s
            }
        }
        Err(_) => String::new(),
    }
}

/// The runtime directory Qt uses for System V `platformSafeKey`:
/// `$XDG_RUNTIME_DIR`, else `<temp>/runtime-<user>`.
pub(crate) fn runtime_dir() -> String {
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        return dir.to_string_lossy().into_owned();
    }
    let user = std::env::var("USER").ok().filter(|u| !u.is_empty()).unwrap_or_else(user_name);
    format!("{}/runtime-{user}", temp_dir())
}

/// The effective user's name (or number).
fn user_name() -> String {
    #[cfg(unix)]
    {
        let uid = crate::sys::unix::euid();
        crate::sys::unix::user_name_of(uid).unwrap_or_else(|| uid.to_string())
    }
    #[cfg(not(unix))]
    {
        std::env::var("USERNAME").unwrap_or_default()
    }
}

/// Whether this process runs in Apple's App Sandbox, where Qt derives POSIX
/// legacy keys differently: macOS gives every sandboxed process
/// `APP_SANDBOX_CONTAINER_ID` (Qt asks the code-signing entitlements
/// instead, which agree with it for applications started normally).
#[cfg(target_vendor = "apple")]
pub(crate) fn apple_sandboxed() -> bool {
    std::env::var_os("APP_SANDBOX_CONTAINER_ID").is_some_and(|v| !v.is_empty())
}
