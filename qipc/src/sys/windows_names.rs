//! The names Qt gives its Windows kernel objects, and how it reads Win32
//! error codes: plain functions with no system calls, compiled on every
//! platform so that their tests run on Linux too. `sys::windows` opens the
//! objects; docs/windows.md tells the whole story with the names observed
//! from real Qt 5.15.2 and 6.12.0 under Wine.
//!
//! Windows has one namespace for named kernel objects of every type (per
//! session: `Local\`, or machine-wide: `Global\`), so Qt keeps a segment's
//! file mapping and its lock semaphore apart by name:
//!
//! | Qt object | Qt 5.15 | Qt 6.6+ |
//! |---|---|---|
//! | `QSharedMemory("key")` mapping | `qipc_sharedmemory_<letters><sha1>` | same |
//! | its `lock()` semaphore | `qipc_systemsem_<letters><sha1>` | same |
//! | `QSystemSemaphore("key")` | `qipc_systemsem_<letters><sha1>` | same |
//! | native key `N` mapping (Qt 5: `setNativeKey(N)`) | `N` | `N` |
//! | its `lock()` semaphore | none: `lock()` fails | `N` cut to 255 units + `_sem` |
//! | `QSystemSemaphore(QNativeIpcKey(N))` | (no such API) | `N` |
//! | `platformSafeKey("K", Windows)` | (no such API) | `shm_K` / `sem_K`, see [`platform_safe_name`] |
//!
//! `<letters>` are the ASCII letters of the key, `<sha1>` the 40 lower-case hex
//! digits of the SHA-1 of its UTF-8 bytes. Names are UTF-16 and compared by
//! the kernel case-sensitively.

#![forbid(unsafe_code)]

use std::fmt;

use crate::error::ErrorKind;

/// The lowercase hex SHA-1 of a key, as Qt appends it to legacy names (on
/// every platform: the key derivation uses it too).
pub(crate) fn sha1_hex(key: &str) -> String {
    sha1_smol::Sha1::from(key.as_bytes()).digest().to_string()
}

/// `MAX_PATH` of the Windows SDK, the length (in UTF-16 units) to which Qt 6
/// cuts native names it makes up itself.
pub(crate) const MAX_PATH: usize = 260;

/// The suffix Qt 6 appends to a native key to name its lock semaphore.
const LOCK_SUFFIX: &str = "_sem";

/// What an object name is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Purpose {
    /// A file mapping (`QSharedMemory`).
    SharedMemory,
    /// A semaphore (`QSystemSemaphore`, or a `QSharedMemory`'s lock).
    Semaphore,
}

impl Purpose {
    /// The prefix of Qt's legacy names.
    fn legacy_prefix(self) -> &'static str {
        match self {
            Purpose::SharedMemory => "qipc_sharedmemory_",
            Purpose::Semaphore => "qipc_systemsem_",
        }
    }

    /// What `platformSafeKey` puts after a `Local\` / `Global\` prefix.
    fn platform_safe_infix(self) -> &'static str {
        match self {
            Purpose::SharedMemory => "shm_",
            Purpose::Semaphore => "sem_",
        }
    }
}

/// A kernel object name as Windows sees it: UTF-16 code units, without the
/// terminating NUL. Qt works in UTF-16 (`QString`), and its truncations to
/// `MAX_PATH` count UTF-16 units, so a cut can fall inside a surrogate pair;
/// this type keeps such a name exact, where a Rust `String` could not.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub(crate) struct WinName(Vec<u16>);

impl WinName {
    /// The name `s`, encoded as UTF-16.
    pub(crate) fn new(s: &str) -> WinName {
        WinName(s.encode_utf16().collect())
    }

    /// The name with these UTF-16 units.
    #[allow(dead_code)] // for tests and tools
    pub(crate) fn from_units(units: &[u16]) -> WinName {
        WinName(units.to_vec())
    }

    /// The UTF-16 units, without a terminating NUL.
    pub(crate) fn units(&self) -> &[u16] {
        &self.0
    }

    /// Whether the name is empty, which Qt treats as "no key".
    #[allow(dead_code)] // for tests and tools
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The length in UTF-16 units.
    #[allow(dead_code)] // for tests and tools
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The name as text; an unpaired surrogate becomes U+FFFD.
    pub(crate) fn to_string_lossy(&self) -> String {
        String::from_utf16_lossy(&self.0)
    }

    /// The NUL-terminated wide string the `...W` functions take, cut at the
    /// first NUL inside the name if there is one: Qt hands Windows its
    /// `QString`'s NUL-terminated buffer, so Windows sees only the part
    /// before an embedded NUL, and so must we to meet Qt's objects.
    pub(crate) fn to_wide_nul(&self) -> Vec<u16> {
        let end = self.0.iter().position(|&u| u == 0).unwrap_or(self.0.len());
        let mut wide = Vec::with_capacity(end + 1);
        wide.extend_from_slice(&self.0[..end]);
        wide.push(0);
        wide
    }

    /// Cuts the name to at most `len` UTF-16 units, as `QString::truncate`.
    fn truncate(&mut self, len: usize) {
        self.0.truncate(len);
    }

    fn push_str(&mut self, s: &str) {
        self.0.extend(s.encode_utf16());
    }
}

impl fmt::Display for WinName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_lossy())
    }
}

impl fmt::Debug for WinName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WinName({:?})", self.to_string_lossy())
    }
}

/// Qt's name for a legacy key on Windows: `QSharedMemory(key).nativeKey()`
/// (mapping) or the name of `QSystemSemaphore(key)` (semaphore), the same in
/// Qt 4.4 to 6.x. An empty key gives an empty name, which Qt treats as "no
/// key". The name is not shortened, however long the key is.
pub(crate) fn legacy_name(key: &str, purpose: Purpose) -> WinName {
    if key.is_empty() {
        return WinName::default();
    }
    let letters: String = key.chars().filter(char::is_ascii_alphabetic).collect();
    WinName::new(&format!("{}{letters}{}", purpose.legacy_prefix(), sha1_hex(key)))
}

/// Qt 6.6+'s `QSharedMemory::platformSafeKey(key, Windows)` (mapping) or
/// `QSystemSemaphore::platformSafeKey(key, Windows)` (semaphore): a leading
/// `Local\` or `Global\` (exactly so, case-sensitive) stays in front, then
/// come `shm_` or `sem_` and the rest of the key, and the whole is cut to
/// [`MAX_PATH`] UTF-16 units. An empty key gives an empty name.
pub(crate) fn platform_safe_name(key: &str, purpose: Purpose) -> WinName {
    if key.is_empty() {
        return WinName::default();
    }
    let (namespace, rest) =
        ["Local\\", "Global\\"].iter().find_map(|ns| key.strip_prefix(ns).map(|rest| (*ns, rest))).unwrap_or(("", key));
    let mut name = WinName::new(namespace);
    name.push_str(purpose.platform_safe_infix());
    name.push_str(rest);
    name.truncate(MAX_PATH);
    name
}

/// The semaphore behind `QSharedMemory::lock()` in Qt 6.6+ for a segment
/// whose native key is `native` and that has no legacy key (a
/// `QNativeIpcKey(native, Windows)`): `native` cut to `MAX_PATH - 5` = 255
/// UTF-16 units, then `_sem`, so at most 259 units.
///
/// An empty `native` gives `_sem`: Qt 6 really opens a semaphore of that name
/// for a `QSharedMemory` with an empty key once `create()` or `attach()` has
/// run (both then fail with KeyError), and its `lock()` then succeeds.
///
/// Qt 5.15 has no lock for native keys: its `QSharedMemory::setNativeKey`
/// leaves the lock without a key, so `lock()` fails there. For a segment
/// with a legacy key, Qt 5 and 6 lock `legacy_name(key, Purpose::Semaphore)`.
pub(crate) fn native_lock_name(native: &WinName) -> WinName {
    let mut name = native.clone();
    name.truncate(MAX_PATH - LOCK_SUFFIX.len() - 1);
    name.push_str(LOCK_SUFFIX);
    name
}

/// The `GetLastError` codes Qt tells apart.
pub(crate) mod codes {
    /// `ERROR_FILE_NOT_FOUND`: `OpenFileMappingW` found no object of that name.
    pub(crate) const FILE_NOT_FOUND: u32 = 2;
    /// `ERROR_ACCESS_DENIED`.
    pub(crate) const ACCESS_DENIED: u32 = 5;
    /// `ERROR_INVALID_HANDLE`: among others, the name belongs to an object of another type.
    pub(crate) const INVALID_HANDLE: u32 = 6;
    /// `ERROR_NOT_ENOUGH_MEMORY`.
    pub(crate) const NOT_ENOUGH_MEMORY: u32 = 8;
    /// `ERROR_ALREADY_EXISTS`: `CreateFileMappingW` / `CreateSemaphoreW` opened an existing object.
    pub(crate) const ALREADY_EXISTS: u32 = 183;
    /// `ERROR_TOO_MANY_POSTS`: `ReleaseSemaphore` would pass the maximum count.
    pub(crate) const TOO_MANY_POSTS: u32 = 298;
    /// `ERROR_COMMITMENT_LIMIT`: the paging file cannot back the mapping.
    pub(crate) const COMMITMENT_LIMIT: u32 = 1455;
    /// `ERROR_NO_SYSTEM_RESOURCES`.
    pub(crate) const NO_SYSTEM_RESOURCES: u32 = 1450;
}

/// How `QSharedMemory` classifies a `GetLastError` code on Windows, and the
/// phrase of its `errorString()` (`"<function>: <phrase>"`). For
/// [`ErrorKind::Unknown`] Qt 6 writes `unknown error: <system message>` and
/// Qt 5.15 `unknown error <code>`; the phrase returned is `unknown error`.
pub(crate) fn shared_memory_error(code: u32) -> (ErrorKind, &'static str) {
    match code {
        codes::ALREADY_EXISTS => (ErrorKind::AlreadyExists, "already exists"),
        codes::FILE_NOT_FOUND => (ErrorKind::NotFound, "doesn't exist"),
        codes::COMMITMENT_LIMIT => (ErrorKind::InvalidSize, "invalid size"),
        codes::NO_SYSTEM_RESOURCES | codes::NOT_ENOUGH_MEMORY => (ErrorKind::OutOfResources, "out of resources"),
        codes::ACCESS_DENIED => (ErrorKind::PermissionDenied, "permission denied"),
        _ => (ErrorKind::Unknown, "unknown error"),
    }
}

/// How `QSystemSemaphore` classifies a `GetLastError` code on Windows: only
/// resource shortage and access are told apart (a semaphore is always
/// created if missing, so "not found" and "exists" do not arise).
pub(crate) fn system_semaphore_error(code: u32) -> (ErrorKind, &'static str) {
    match code {
        codes::NO_SYSTEM_RESOURCES | codes::NOT_ENOUGH_MEMORY => (ErrorKind::OutOfResources, "out of resources"),
        codes::ACCESS_DENIED => (ErrorKind::PermissionDenied, "permission denied"),
        _ => (ErrorKind::Unknown, "unknown error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legacy(key: &str) -> (String, String) {
        (legacy_name(key, Purpose::SharedMemory).to_string(), legacy_name(key, Purpose::Semaphore).to_string())
    }

    #[test]
    fn legacy_names_as_qt_printed_them_under_wine() {
        // Printed by QSharedMemory(key).nativeKey() and QSystemSemaphore(key).nativeIpcKey()
        // in Qt 6.12.0 and, for the mapping, by Qt 5.15.2 (docs/windows.md has the table).
        assert_eq!(
            legacy("SomeKey"),
            (
                "qipc_sharedmemory_SomeKeybf5cd77691581e6a59f8e3306703cfeccb6e3849".into(),
                "qipc_systemsem_SomeKeybf5cd77691581e6a59f8e3306703cfeccb6e3849".into()
            )
        );
        assert_eq!(
            legacy("SharedMemoryExample").0,
            "qipc_sharedmemory_SharedMemoryExample239c304753a51ce3617c8aac22ef1d963b31c7c5"
        );
        // Only ASCII letters are kept; the hash covers the whole UTF-8 key.
        assert_eq!(legacy("Grüße 123").0, "qipc_sharedmemory_Gre2f2f9a16f09d24d0123ee6e6fbf928154a836916");
        assert_eq!(legacy("/").0, format!("qipc_sharedmemory_{}", sha1_hex("/")));
        assert_eq!(legacy("Local\\x").1, format!("qipc_systemsem_Localx{}", sha1_hex("Local\\x")));
        assert_eq!(legacy(""), (String::new(), String::new()));
    }

    #[test]
    fn legacy_names_are_not_shortened() {
        let key = "a".repeat(300);
        let name = legacy_name(&key, Purpose::SharedMemory);
        assert_eq!(name.len(), 18 + 300 + 40);
        assert_eq!(legacy_name(&key, Purpose::Semaphore).len(), 15 + 300 + 40);
    }

    #[test]
    fn platform_safe_names() {
        let shm = |k: &str| platform_safe_name(k, Purpose::SharedMemory).to_string();
        let sem = |k: &str| platform_safe_name(k, Purpose::Semaphore).to_string();
        assert_eq!(shm("my_key"), "shm_my_key");
        assert_eq!(sem("my_key"), "sem_my_key");
        assert_eq!(shm("Local\\x"), "Local\\shm_x");
        assert_eq!(sem("Global\\x"), "Global\\sem_x");
        // Only the exact spellings count as a namespace.
        assert_eq!(shm("local\\x"), "shm_local\\x");
        assert_eq!(shm("Session\\1\\x"), "shm_Session\\1\\x");
        assert_eq!(shm("Local\\"), "Local\\shm_");
        assert_eq!(shm("/"), "shm_/");
        assert_eq!(shm("%"), "shm_%");
        assert_eq!(shm("Grüße"), "shm_Grüße");
        assert_eq!(shm(""), "");
    }

    #[test]
    fn platform_safe_names_stop_at_max_path() {
        let name = platform_safe_name(&"b".repeat(300), Purpose::SharedMemory);
        assert_eq!(name.len(), MAX_PATH);
        assert_eq!(name.to_string(), format!("shm_{}", "b".repeat(256)));
        // The prefix counts too.
        let name = platform_safe_name(&format!("Global\\{}", "c".repeat(300)), Purpose::Semaphore);
        assert_eq!(name.to_string(), format!("Global\\sem_{}", "c".repeat(MAX_PATH - 11)));
    }

    #[test]
    fn truncation_counts_utf16_units() {
        // 255 letters then a character outside the BMP: the cut falls inside its surrogate pair.
        let key = format!("{}\u{1F600}", "d".repeat(255));
        let name = platform_safe_name(&key, Purpose::SharedMemory);
        assert_eq!(name.len(), MAX_PATH);
        assert_eq!(name.units()[MAX_PATH - 1], 0xD83D); // the high surrogate alone
        assert!(name.to_string().ends_with('\u{FFFD}'));
    }

    #[test]
    fn native_lock_names() {
        assert_eq!(native_lock_name(&WinName::new("MyNativeKey")).to_string(), "MyNativeKey_sem");
        assert_eq!(native_lock_name(&WinName::new("Local\\x")).to_string(), "Local\\x_sem");
        assert_eq!(native_lock_name(&WinName::default()).to_string(), "_sem");
        let long = native_lock_name(&WinName::new(&"e".repeat(300)));
        assert_eq!(long.len(), 259);
        assert_eq!(long.to_string(), format!("{}_sem", "e".repeat(255)));
        let exact = native_lock_name(&WinName::new(&"f".repeat(255)));
        assert_eq!(exact.to_string(), format!("{}_sem", "f".repeat(255)));
    }

    #[test]
    fn wide_strings_end_at_the_first_nul() {
        assert_eq!(WinName::new("ab").to_wide_nul(), vec![u16::from(b'a'), u16::from(b'b'), 0]);
        assert_eq!(WinName::new("ab\0cd").to_wide_nul(), vec![u16::from(b'a'), u16::from(b'b'), 0]);
        assert_eq!(WinName::default().to_wide_nul(), vec![0]);
        assert_eq!(WinName::from_units(&[0x41, 0xD800]).units(), &[0x41, 0xD800]);
    }

    #[test]
    fn error_tables() {
        assert_eq!(shared_memory_error(183), (ErrorKind::AlreadyExists, "already exists"));
        assert_eq!(shared_memory_error(2), (ErrorKind::NotFound, "doesn't exist"));
        assert_eq!(shared_memory_error(1455), (ErrorKind::InvalidSize, "invalid size"));
        assert_eq!(shared_memory_error(8).0, ErrorKind::OutOfResources);
        assert_eq!(shared_memory_error(1450).0, ErrorKind::OutOfResources);
        assert_eq!(shared_memory_error(5), (ErrorKind::PermissionDenied, "permission denied"));
        assert_eq!(shared_memory_error(6), (ErrorKind::Unknown, "unknown error"));
        assert_eq!(system_semaphore_error(183).0, ErrorKind::Unknown);
        assert_eq!(system_semaphore_error(2).0, ErrorKind::Unknown);
        assert_eq!(system_semaphore_error(5).0, ErrorKind::PermissionDenied);
        assert_eq!(system_semaphore_error(1450).0, ErrorKind::OutOfResources);
    }
}
