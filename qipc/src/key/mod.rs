//! Keys: [`NativeKey`], the counterpart of Qt 6.6's `QNativeIpcKey`, and Qt's
//! legacy key derivation.
//!
//! A Qt program names a segment with a *legacy key*, a free-form string
//! (`QSharedMemory("SharedMemoryExample")`), or, since Qt 6.6, with a
//! *native key*: the name the operating system sees plus a backend type.
//! This module turns one into the other exactly as Qt does (on Linux, and with
//! Qt's own rules on Windows and macOS), so that a
//! qipc process and a Qt process that use the same key meet on the same
//! objects.
//!
//! | Qt | qipc |
//! |---|---|
//! | `QSharedMemory::legacyNativeKey(key)` | [`NativeKey::legacy_shared_memory`] |
//! | `QSystemSemaphore::legacyNativeKey(key)` | [`NativeKey::legacy_semaphore`] |
//! | `QSharedMemory::platformSafeKey(key, type)` | [`NativeKey::platform_safe`] |
//! | `QNativeIpcKey(key, type)` | [`NativeKey::new`] |
//! | `QNativeIpcKey::toString()` / `fromString()` | [`Display`](std::fmt::Display) / [`NativeKey::from_string`] |
//!
//! # Example
//! ```
//! use qipc::{KeyType, NativeKey};
//! // What QSharedMemory("SharedMemoryExample") uses on Linux, in Qt 5 and Qt 6:
//! let legacy = NativeKey::legacy_shared_memory("SharedMemoryExample", KeyType::LEGACY_DEFAULT);
//! let file_name = legacy.native_key().rsplit('/').next().unwrap(); // in /tmp
//! assert_eq!(file_name, "qipc_sharedmemory_SharedMemoryExample239c304753a51ce3617c8aac22ef1d963b31c7c5");
//! // A Qt 6.6+ native key, from the text QNativeIpcKey::toString() gives:
//! let native: NativeKey = "posix:/SharedMemoryExample".parse()?;
//! assert_eq!(native, NativeKey::posix("/SharedMemoryExample"));
//! # Ok::<(), qipc::KeyParseError>(())
//! ```

#![forbid(unsafe_code)]

mod env;

use std::fmt;

use crate::sha1::sha1_hex;

/// The backend a [`NativeKey`] selects, the counterpart of `QNativeIpcKey::Type`.
///
/// Qt stores the type as a 16-bit number: 1 to 255 select System V with that
/// number as the `ftok` project id (0x51, `'Q'`, is Qt's default),
/// 0x100 is POSIX realtime and 0x101 is Windows.
///
/// # Example
/// ```
/// use qipc::KeyType;
/// assert_eq!(KeyType::SYSTEM_V, KeyType::SystemV { ftok_id: b'Q' });
/// assert_eq!(KeyType::SYSTEM_V.to_qt(), 0x51);
/// assert_eq!(KeyType::from_qt(0x100), Some(KeyType::PosixRealtime));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[doc(alias = "QNativeIpcKey::Type")]
pub enum KeyType {
    /// System V IPC (`shmget`, `semget`), keyed by `ftok(native_key, ftok_id)`.
    /// The native key is a file path; the file is created if needed.
    SystemV {
        /// The `ftok` project id; Qt's default is 0x51 (`'Q'`). Zero is invalid.
        ftok_id: u8,
    },
    /// POSIX realtime IPC (`shm_open`, `sem_open`). The native key is the
    /// object name, with or without a leading slash.
    PosixRealtime,
    /// Windows kernel objects: the native key is the name of a file mapping
    /// (and, for a [`SystemSemaphore`](crate::SystemSemaphore), of a
    /// semaphore), in the session namespace unless it starts with `Global\`.
    /// Opened on Windows only; elsewhere qipc parses and prints such keys,
    /// and every operation on them fails with
    /// [`ErrorKind::KeyError`](crate::ErrorKind::KeyError).
    Windows,
}

impl KeyType {
    /// System V with Qt's project id 0x51, what Qt calls `SystemV`.
    ///
    /// # Example
    /// ```
    /// use qipc::{KeyType, NativeKey};
    /// assert_eq!(KeyType::SYSTEM_V, KeyType::SystemV { ftok_id: b'Q' });
    /// assert_eq!(NativeKey::system_v("/tmp/my_key_file").key_type(), KeyType::SYSTEM_V);
    /// ```
    pub const SYSTEM_V: KeyType = KeyType::SystemV { ftok_id: 0x51 };

    /// The type Qt uses for a legacy (plain string) key on this platform:
    /// `QNativeIpcKey::legacyDefaultTypeForOs()`. System V on Linux and on
    /// macOS (Qt's choice for an application outside the App Sandbox; qipc
    /// does not follow Qt into the sandboxed case, where Qt picks POSIX),
    /// [`Windows`](KeyType::Windows) on Windows.
    ///
    /// # Example
    /// ```
    /// use qipc::{KeyType, SharedMemory};
    /// let shm = SharedMemory::new("SharedMemoryExample"); // a legacy key
    /// assert_eq!(shm.native_key().key_type(), KeyType::LEGACY_DEFAULT);
    /// # #[cfg(unix)]
    /// assert_eq!(KeyType::LEGACY_DEFAULT, KeyType::SYSTEM_V);
    /// ```
    #[cfg(not(windows))]
    pub const LEGACY_DEFAULT: KeyType = KeyType::SYSTEM_V;
    /// The type Qt uses for a legacy (plain string) key on Windows.
    #[cfg(windows)]
    pub const LEGACY_DEFAULT: KeyType = KeyType::Windows;

    /// The type Qt 6.6+ uses for a `QNativeIpcKey` built without a type:
    /// `QNativeIpcKey::DefaultTypeForOs`, POSIX realtime on Linux and macOS,
    /// [`Windows`](KeyType::Windows) on Windows.
    ///
    /// # Example
    /// ```
    /// use qipc::{KeyType, NativeKey};
    /// let key = NativeKey::new("/QSharedMemoryExample", KeyType::DEFAULT);
    /// # #[cfg(unix)]
    /// assert_eq!(key, NativeKey::posix("/QSharedMemoryExample"));
    /// ```
    #[cfg(not(windows))]
    pub const DEFAULT: KeyType = KeyType::PosixRealtime;
    /// The type Qt 6.6+ uses for a `QNativeIpcKey` built without a type on Windows.
    #[cfg(windows)]
    pub const DEFAULT: KeyType = KeyType::Windows;

    /// The number Qt uses for this type (`quint16(QNativeIpcKey::Type)`).
    ///
    /// # Example
    /// ```
    /// use qipc::KeyType;
    /// assert_eq!(KeyType::PosixRealtime.to_qt(), 0x100);
    /// assert_eq!(KeyType::SystemV { ftok_id: 1 }.to_qt(), 1);
    /// ```
    pub fn to_qt(self) -> u16 {
        match self {
            KeyType::SystemV { ftok_id } => u16::from(ftok_id),
            KeyType::PosixRealtime => 0x100,
            KeyType::Windows => 0x101,
        }
    }

    /// The type for a Qt type number, or `None` for 0 (Qt's invalid type)
    /// and numbers Qt does not define.
    ///
    /// # Example
    /// ```
    /// use qipc::KeyType;
    /// assert_eq!(KeyType::from_qt(0x51), Some(KeyType::SYSTEM_V));
    /// assert_eq!(KeyType::from_qt(0x101), Some(KeyType::Windows));
    /// assert_eq!(KeyType::from_qt(0), None);
    /// ```
    pub fn from_qt(value: u16) -> Option<KeyType> {
        match value {
            1..=0xff => Some(KeyType::SystemV { ftok_id: value as u8 }),
            0x100 => Some(KeyType::PosixRealtime),
            0x101 => Some(KeyType::Windows),
            _ => None,
        }
    }

    /// The scheme of the text form: `systemv`, `systemv-<id>`, `posix` or
    /// `windows`.
    fn scheme(self) -> String {
        match self {
            KeyType::SystemV { ftok_id: 0x51 } => "systemv".into(),
            KeyType::SystemV { ftok_id } => format!("systemv-{ftok_id}"),
            KeyType::PosixRealtime => "posix".into(),
            KeyType::Windows => "windows".into(),
        }
    }

    fn from_scheme(scheme: &str) -> Option<KeyType> {
        let scheme = scheme.to_ascii_lowercase();
        match scheme.as_str() {
            "systemv" => Some(KeyType::SYSTEM_V),
            "posix" => Some(KeyType::PosixRealtime),
            "windows" => Some(KeyType::Windows),
            _ => {
                let digits = scheme.strip_prefix("systemv-")?;
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let n: u32 = digits.parse().ok()?;
                match n {
                    1..=0xff => Some(KeyType::SystemV { ftok_id: n as u8 }),
                    _ => None,
                }
            }
        }
    }
}

/// Which kind of object a legacy key is derived for: Qt uses a different
/// prefix for the segment and for its lock semaphore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    SharedMemory,
    Semaphore,
}

/// The operating system whose rules a derivation follows: Qt derives
/// different names on Apple platforms (whose POSIX names hold at most 31
/// bytes) and on Windows (whose names are not paths). Derivations take it
/// as a parameter, so that every platform's rules are tested everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)] // each build makes only its own system's value; the tests make all
pub(crate) enum Os {
    /// Linux and the other Unix systems.
    Unix,
    /// macOS and Apple's other systems; `sandboxed` if the process runs in
    /// the App Sandbox, where Qt uses legacy keys unchanged as POSIX names.
    Darwin { sandboxed: bool },
    /// Windows.
    Windows,
}

impl Os {
    /// The system this build runs on (for Apple, whether this process is
    /// sandboxed is read from its environment).
    pub(crate) fn current() -> Os {
        #[cfg(target_vendor = "apple")]
        {
            Os::Darwin { sandboxed: env::apple_sandboxed() }
        }
        #[cfg(windows)]
        {
            Os::Windows
        }
        #[cfg(not(any(target_vendor = "apple", windows)))]
        {
            Os::Unix
        }
    }
}

/// The usable length of a POSIX name on Apple systems, slash included:
/// Qt's `SHM_NAME_MAX` (XNU's `PSEMNAMLEN` is 31, of which 30 work).
pub(crate) const DARWIN_SHM_NAME_MAX: usize = 30;

impl Purpose {
    fn prefix(self) -> &'static str {
        match self {
            Purpose::SharedMemory => "qipc_sharedmemory_",
            Purpose::Semaphore => "qipc_systemsem_",
        }
    }
}

/// An operating-system name for a segment or semaphore, with its backend
/// type, and, when it was derived from one, the legacy key it came from.
///
/// This is the counterpart of Qt 6.6's `QNativeIpcKey`, and it also covers
/// the keys of Qt 5, which were always derived from a legacy key.
///
/// Two keys are equal when their type, native key and legacy key are equal,
/// as in Qt.
///
/// # Examples
/// A legacy key, as `QSharedMemory("my_shared_memory")` derives it on Linux:
/// ```
/// use qipc::{KeyType, NativeKey};
/// # std::env::remove_var("TMPDIR");
/// let key = NativeKey::legacy_shared_memory("my_shared_memory", KeyType::SYSTEM_V);
/// assert_eq!(
///     key.native_key(),
///     "/tmp/qipc_sharedmemory_mysharedmemoryd3faa70b96e6c94a96cbd5270f2f9f4a8f14fdcd"
/// );
/// assert_eq!(key.legacy_key(), Some("my_shared_memory"));
/// ```
///
/// The text form round-trips, and is the one Qt prints and parses:
/// ```
/// use qipc::{KeyType, NativeKey};
/// let key = NativeKey::new("QSharedMemoryExample", KeyType::PosixRealtime);
/// assert_eq!(key.to_string(), "posix:QSharedMemoryExample");
/// assert_eq!(NativeKey::from_string("posix:QSharedMemoryExample")?, key);
/// # Ok::<(), qipc::KeyParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[doc(alias = "QNativeIpcKey")]
pub struct NativeKey {
    key_type: KeyType,
    native: String,
    legacy: Option<String>,
}

impl NativeKey {
    /// A native key taken verbatim, as `QNativeIpcKey(key, type)` does: no
    /// slash is added and nothing is hashed.
    ///
    /// # Example
    /// ```
    /// use qipc::{KeyType, NativeKey};
    /// let key = NativeKey::new("/my_segment", KeyType::PosixRealtime);
    /// assert_eq!(key.native_key(), "/my_segment");
    /// assert_eq!(key.legacy_key(), None);
    /// ```
    pub fn new(native_key: impl Into<String>, key_type: KeyType) -> NativeKey {
        NativeKey { key_type, native: native_key.into(), legacy: None }
    }

    /// A POSIX native key, `NativeKey::new(name, KeyType::PosixRealtime)`.
    ///
    /// # Example
    /// ```
    /// let key = qipc::NativeKey::posix("QSharedMemoryExample");
    /// assert_eq!(key.to_string(), "posix:QSharedMemoryExample");
    /// ```
    pub fn posix(name: impl Into<String>) -> NativeKey {
        NativeKey::new(name, KeyType::PosixRealtime)
    }

    /// A System V native key (a file path for `ftok`, project id 0x51).
    ///
    /// Qt warns against naming a file that something else uses: Qt removes
    /// the file when the segment goes away.
    ///
    /// # Example
    /// ```
    /// let key = qipc::NativeKey::system_v("/tmp/my_key_file");
    /// assert_eq!(key.to_string(), "systemv:/tmp/my_key_file");
    /// ```
    pub fn system_v(path: impl Into<String>) -> NativeKey {
        NativeKey::new(path, KeyType::SYSTEM_V)
    }

    /// The native key Qt derives from a legacy key for a **shared memory
    /// segment**: `QSharedMemory::legacyNativeKey(key, type)`, which is also
    /// what `QSharedMemory(QString)` uses (with [`KeyType::LEGACY_DEFAULT`]).
    ///
    /// The name is `qipc_sharedmemory_`, then the ASCII letters of `key`,
    /// then the SHA-1 of its UTF-8 bytes in hex. For System V it is placed in
    /// the temporary directory ([`temp_path`]); for POSIX it gets a leading
    /// slash. An empty key gives an empty native key, which every operation
    /// rejects with [`ErrorKind::KeyError`](crate::ErrorKind::KeyError).
    ///
    /// # Example
    /// ```
    /// use qipc::{KeyType, NativeKey};
    /// let key = NativeKey::legacy_shared_memory("Grüße 123", KeyType::PosixRealtime);
    /// assert_eq!(key.native_key(), "/qipc_sharedmemory_Gre2f2f9a16f09d24d0123ee6e6fbf928154a836916");
    /// ```
    pub fn legacy_shared_memory(key: &str, key_type: KeyType) -> NativeKey {
        legacy(key, key_type, Purpose::SharedMemory)
    }

    /// The native key Qt derives from a legacy key for a **system
    /// semaphore**: `QSystemSemaphore::legacyNativeKey(key, type)`. This is
    /// also the semaphore behind `QSharedMemory::lock()` for a legacy key.
    ///
    /// # Example
    /// ```
    /// use qipc::{KeyType, NativeKey};
    /// # std::env::remove_var("TMPDIR");
    /// let key = NativeKey::legacy_semaphore("MySharedMemory", KeyType::SYSTEM_V);
    /// assert_eq!(
    ///     key.native_key(),
    ///     "/tmp/qipc_systemsem_MySharedMemory359614dc2e9ec6b4d6d9e8847d0c47fef28f14df"
    /// );
    /// ```
    pub fn legacy_semaphore(key: &str, key_type: KeyType) -> NativeKey {
        legacy(key, key_type, Purpose::Semaphore)
    }

    /// Qt 6.6's `platformSafeKey(key, type)`: a native key made from `key`
    /// without hashing.
    ///
    /// - An empty `key` gives an empty native key, as in Qt 6.
    /// - POSIX: `/` + `key`.
    /// - System V: `key` if it starts with `/`, else the runtime directory
    ///   (`$XDG_RUNTIME_DIR`, or `<temp>/runtime-<user>` as Qt falls back to)
    ///   + `/` + `key`.
    /// - Windows: a leading `Local\` or `Global\` stays in front, then
    ///   `shm_` and the rest of the key, cut to 260 (`MAX_PATH`) UTF-16
    ///   units. (Where that cut falls inside a surrogate pair, Qt's name ends
    ///   in half a character, which a Rust string cannot hold: qipc drops
    ///   the half, so such a key names another object than Qt's.)
    /// - POSIX on Apple systems: `/` + the first 29 UTF-16 units of `key`.
    ///
    /// # Example
    /// ```
    /// use qipc::{KeyType, NativeKey};
    /// assert_eq!(NativeKey::platform_safe("my_shared_memory", KeyType::PosixRealtime).native_key(), "/my_shared_memory");
    /// ```
    pub fn platform_safe(key: &str, key_type: KeyType) -> NativeKey {
        let runtime = match key_type {
            KeyType::SystemV { .. } if !key.is_empty() && !key.starts_with('/') => env::runtime_dir(),
            _ => String::new(),
        };
        platform_safe_in(key, key_type, &runtime, Os::current())
    }

    /// The backend type.
    ///
    /// # Example
    /// ```
    /// use qipc::{KeyType, NativeKey};
    /// let key = NativeKey::from_string("systemv-7:/tmp/my_key_file")?;
    /// assert_eq!(key.key_type(), KeyType::SystemV { ftok_id: 7 });
    /// # Ok::<(), qipc::KeyParseError>(())
    /// ```
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The name the operating system sees (`QNativeIpcKey::nativeKey()`).
    ///
    /// # Example
    /// ```
    /// use qipc::{KeyType, NativeKey};
    /// let key = NativeKey::platform_safe("demo", KeyType::PosixRealtime);
    /// assert_eq!(key.native_key(), "/demo"); // the object is /dev/shm/demo
    /// ```
    pub fn native_key(&self) -> &str {
        &self.native
    }

    /// The legacy key this native key was derived from, if any.
    ///
    /// # Example
    /// ```
    /// use qipc::{KeyType, NativeKey};
    /// assert_eq!(NativeKey::legacy_semaphore("demo", KeyType::SYSTEM_V).legacy_key(), Some("demo"));
    /// assert_eq!(NativeKey::posix("/demo").legacy_key(), None);
    /// ```
    pub fn legacy_key(&self) -> Option<&str> {
        self.legacy.as_deref()
    }

    /// True if the native key is empty (`QNativeIpcKey::isEmpty()`).
    ///
    /// # Example
    /// ```
    /// use qipc::{KeyType, NativeKey};
    /// assert!(NativeKey::legacy_shared_memory("", KeyType::SYSTEM_V).is_empty());
    /// assert!(!NativeKey::posix("/demo").is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.native.is_empty()
    }

    /// The native key of the semaphore that guards a segment with this key,
    /// as Qt chooses it (spec §1.3):
    ///
    /// - a key derived from a legacy key uses the legacy semaphore key, the
    ///   same one Qt 5 uses, so Qt 5 and Qt 6 processes exclude each other;
    /// - any other key uses the same native key (for System V: the same key
    ///   file and `ftok` value, in the semaphore namespace).
    ///
    /// # Example
    /// ```
    /// use qipc::{KeyType, NativeKey};
    /// let shm = NativeKey::legacy_shared_memory("demo", KeyType::PosixRealtime);
    /// assert_eq!(shm.lock_key(), NativeKey::legacy_semaphore("demo", KeyType::PosixRealtime));
    /// let native = NativeKey::posix("/demo");
    /// assert_eq!(native.lock_key(), native);
    /// ```
    pub fn lock_key(&self) -> NativeKey {
        match &self.legacy {
            Some(legacy_key) => NativeKey::legacy_semaphore(legacy_key, self.key_type),
            // Windows has one namespace for mappings and semaphores, so Qt
            // names the lock `<native key cut to 255 UTF-16 units>_sem`.
            None if self.key_type == KeyType::Windows && !self.native.is_empty() => {
                let name =
                    crate::sys::windows_names::native_lock_name(&crate::sys::windows_names::WinName::new(&self.native));
                NativeKey::new(name.to_string_lossy(), KeyType::Windows)
            }
            None => self.clone(),
        }
    }

    /// Parses the text form that `QNativeIpcKey::toString()` writes, with
    /// the rules of `QNativeIpcKey::fromString()`:
    ///
    /// - `<scheme>:<path>` with an optional `?legacyKey=<key>`;
    /// - the scheme is `systemv`, `systemv-<1..255>`, `posix` or `windows`,
    ///   in any case;
    /// - the path and the legacy key are percent-decoded;
    /// - a user, host or port, or any query item other than `legacyKey`,
    ///   makes the text invalid; a fragment is ignored.
    ///
    /// # Errors
    /// [`KeyParseError`] names the rule the text breaks.
    ///
    /// # Example
    /// ```
    /// use qipc::{KeyType, NativeKey};
    /// let key = NativeKey::from_string("systemv-1:/tmp/a")?;
    /// assert_eq!(key.key_type(), KeyType::SystemV { ftok_id: 1 });
    /// assert!(NativeKey::from_string("posix://host/x").is_err());
    /// # Ok::<(), qipc::KeyParseError>(())
    /// ```
    pub fn from_string(text: &str) -> Result<NativeKey, KeyParseError> {
        let err = |reason: &'static str| KeyParseError { text: text.to_string(), reason };
        let colon = text.find(':').ok_or_else(|| err("no scheme (expected `posix:` or `systemv:`)"))?;
        let (scheme, rest) = (&text[..colon], &text[colon + 1..]);
        let valid_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        if !valid_scheme {
            return Err(err("no scheme (expected `posix:` or `systemv:`)"));
        }
        let key_type = KeyType::from_scheme(scheme).ok_or_else(|| err("unknown scheme"))?;
        // Drop the fragment, then split off the query.
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let (mut path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        if let Some(after) = path.strip_prefix("//") {
            // An authority: only an empty one is acceptable.
            let end = after.find('/').unwrap_or(after.len());
            if !after[..end].is_empty() {
                return Err(err("a key may not have a user, host or port"));
            }
            path = &after[end..];
        }
        let mut legacy = None;
        if let Some(query) = query {
            for item in query.split('&').filter(|item| !item.is_empty()) {
                let (name, value) = item.split_once('=').unwrap_or((item, ""));
                if percent_decode(name) != "legacyKey" {
                    return Err(err("the only query item allowed is `legacyKey`"));
                }
                legacy = Some(percent_decode(value));
            }
        }
        let mut key = NativeKey::new(percent_decode(path), key_type);
        key.legacy = legacy.filter(|k| !k.is_empty());
        Ok(key)
    }
}

impl fmt::Display for NativeKey {
    /// Writes the text form of `QNativeIpcKey::toString()`, for example
    /// `systemv:/tmp/qipc_sharedmemory_…?legacyKey=my_shared_memory` or
    /// `posix:/%2Fweird%25path`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key_type.scheme())?;
        f.write_str(":")?;
        let mut path = escape(&self.native, b"%?#");
        if path.starts_with("//") {
            path.replace_range(0..2, "/%2F");
        }
        f.write_str(&path)?;
        if let Some(legacy) = self.legacy.as_deref().filter(|k| !k.is_empty()) {
            f.write_str("?legacyKey=")?;
            f.write_str(&escape(legacy, b"%&=#"))?;
        }
        Ok(())
    }
}

impl std::str::FromStr for NativeKey {
    type Err = KeyParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NativeKey::from_string(s)
    }
}

/// The text given to [`NativeKey::from_string`] is not a valid key.
///
/// # Example
/// ```
/// let err = qipc::NativeKey::from_string("bogus:/x").unwrap_err();
/// assert_eq!(err.to_string(), "invalid key `bogus:/x`: unknown scheme");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyParseError {
    text: String,
    reason: &'static str,
}

impl KeyParseError {
    /// Why the text was rejected.
    ///
    /// # Example
    /// ```
    /// let err = qipc::NativeKey::from_string("posix:/x?foo=1").unwrap_err();
    /// assert_eq!(err.reason(), "the only query item allowed is `legacyKey`");
    /// ```
    pub fn reason(&self) -> &str {
        self.reason
    }
}

impl fmt::Display for KeyParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid key `{}`: {}", self.text, self.reason)
    }
}

impl std::error::Error for KeyParseError {}

/// Percent-encodes the bytes in `set` and every control character, as QUrl
/// does for the components of a key's text form.
fn escape(s: &str, set: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if (c.is_ascii() && set.contains(&(c as u8))) || c.is_ascii_control() {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Decodes `%XX` escapes; a `%` that does not start a valid escape is kept.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Qt's legacy name for `key`: the prefix, the ASCII letters of `key`, and
/// the SHA-1 of its UTF-8 bytes in hex (pure: no directory, no decoration).
pub(crate) fn legacy_name(key: &str, purpose: Purpose) -> String {
    let letters: String = key.chars().filter(char::is_ascii_alphabetic).collect();
    format!("{}{letters}{}", purpose.prefix(), sha1_hex(key.as_bytes()))
}

/// The legacy native key, given the temporary directory System V key files
/// live in and the system whose rules apply (pure).
///
/// On Apple systems a POSIX legacy key is `/` + the first 29 hex digits of
/// the SHA-1, for the segment and its lock alike (the two live in separate
/// namespaces there), because the prefix, letters and whole hash do not fit
/// in Apple's 30 usable bytes; a sandboxed process uses the key unchanged.
pub(crate) fn legacy_in(key: &str, key_type: KeyType, purpose: Purpose, temp_dir: &str, os: Os) -> NativeKey {
    if key.is_empty() {
        // As Qt: an empty key is a null key; every operation refuses it.
        return NativeKey { key_type, native: String::new(), legacy: None };
    }
    let native = match (key_type, os) {
        (KeyType::PosixRealtime, Os::Darwin { sandboxed: true }) => key.to_string(),
        (KeyType::PosixRealtime, Os::Darwin { sandboxed: false }) => {
            let hex = sha1_hex(key.as_bytes());
            format!("/{}", &hex[..DARWIN_SHM_NAME_MAX - 1])
        }
        (KeyType::SystemV { .. }, _) => format!("{temp_dir}/{}", legacy_name(key, purpose)),
        (KeyType::PosixRealtime, _) => format!("/{}", legacy_name(key, purpose)),
        (KeyType::Windows, _) => legacy_name(key, purpose),
    };
    NativeKey { key_type, native, legacy: Some(key.to_string()) }
}

fn legacy(key: &str, key_type: KeyType, purpose: Purpose) -> NativeKey {
    let dir = match key_type {
        KeyType::SystemV { .. } if !key.is_empty() => env::temp_dir(),
        _ => String::new(),
    };
    legacy_in(key, key_type, purpose, &dir, Os::current())
}

/// Qt's `platformSafeKey` for a shared memory segment, given the runtime
/// directory and the system whose rules apply (pure).
pub(crate) fn platform_safe_in(key: &str, key_type: KeyType, runtime_dir: &str, os: Os) -> NativeKey {
    if key.is_empty() {
        // As Qt 6: an empty key stays empty (and every operation then
        // refuses it with KeyError) rather than naming `/` or a directory.
        return NativeKey::new(String::new(), key_type);
    }
    let native = match key_type {
        KeyType::PosixRealtime => match os {
            // QStringView::left(SHM_NAME_MAX - 1): UTF-16 units.
            Os::Darwin { .. } => format!("/{}", utf16_prefix(key, DARWIN_SHM_NAME_MAX - 1)),
            _ => format!("/{key}"),
        },
        KeyType::SystemV { .. } if key.starts_with('/') => key.to_string(),
        KeyType::SystemV { .. } => format!("{runtime_dir}/{key}"),
        KeyType::Windows => {
            use crate::sys::windows_names::{platform_safe_name, Purpose as WinPurpose};
            // Cut to MAX_PATH UTF-16 units; half a surrogate pair at the end
            // cannot live in a `String` and is dropped.
            let name = platform_safe_name(key, WinPurpose::SharedMemory);
            char::decode_utf16(name.units().iter().copied()).filter_map(|c| c.ok()).collect()
        }
    };
    NativeKey::new(native, key_type)
}

/// The longest prefix of `s` of at most `units` UTF-16 code units that ends
/// on a character boundary (a character cut in half is dropped).
fn utf16_prefix(s: &str, units: usize) -> String {
    let mut n = 0;
    s.chars()
        .take_while(|c| {
            n += c.len_utf16();
            n <= units
        })
        .collect()
}

/// The temporary directory Qt 5.15 to 6.8 put System V key files in:
/// `$TMPDIR` if it is set and not empty, else `/tmp`, made canonical
/// (symbolic links resolved, no trailing slash).
///
/// If the directory does not exist the result is the empty string, and key
/// files land at the root of the file system, as in Qt 5.15 and 6.4 (Qt 6.12
/// keeps the non-existent path instead).
///
/// # Example
/// ```
/// # std::env::remove_var("TMPDIR");
/// assert_eq!(qipc::key::temp_path(), "/tmp");
/// ```
pub fn temp_path() -> String {
    env::temp_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn with_tmpdir<R>(value: Option<&str>, f: impl FnOnce() -> R) -> R {
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let old = std::env::var_os("TMPDIR");
        match value {
            Some(v) => std::env::set_var("TMPDIR", v),
            None => std::env::remove_var("TMPDIR"),
        }
        let r = f();
        match old {
            Some(v) => std::env::set_var("TMPDIR", v),
            None => std::env::remove_var("TMPDIR"),
        }
        r
    }

    const VECTORS: &[(&str, &str)] = &[
        ("my_shared_memory", "mysharedmemoryd3faa70b96e6c94a96cbd5270f2f9f4a8f14fdcd"),
        ("SharedMemoryExample", "SharedMemoryExample239c304753a51ce3617c8aac22ef1d963b31c7c5"),
        ("MySharedMemory", "MySharedMemory359614dc2e9ec6b4d6d9e8847d0c47fef28f14df"),
        ("QSharedMemoryExample", "QSharedMemoryExampleff77196351dd7c1c8f79461ad32f21726fe31f5b"),
        ("Grüße 123", "Gre2f2f9a16f09d24d0123ee6e6fbf928154a836916"),
    ];

    #[cfg(unix)] // System V key files in /tmp
    #[test]
    fn legacy_vectors_system_v() {
        with_tmpdir(None, || {
            for (key, tail) in VECTORS {
                let shm = NativeKey::legacy_shared_memory(key, KeyType::SYSTEM_V);
                assert_eq!(shm.native_key(), format!("/tmp/qipc_sharedmemory_{tail}"));
                let sem = NativeKey::legacy_semaphore(key, KeyType::SYSTEM_V);
                assert_eq!(sem.native_key(), format!("/tmp/qipc_systemsem_{tail}"));
                assert_eq!(shm.lock_key(), sem);
            }
        });
    }

    #[test]
    fn legacy_vectors_posix() {
        for (key, tail) in VECTORS {
            let shm = NativeKey::legacy_shared_memory(key, KeyType::PosixRealtime);
            assert_eq!(shm.native_key(), format!("/qipc_sharedmemory_{tail}"));
            let sem = NativeKey::legacy_semaphore(key, KeyType::PosixRealtime);
            assert_eq!(sem.native_key(), format!("/qipc_systemsem_{tail}"));
        }
    }

    #[cfg(unix)]
    #[test]
    fn tmpdir_rules() {
        let tail = "mysharedmemoryd3faa70b96e6c94a96cbd5270f2f9f4a8f14fdcd";
        let derive = || NativeKey::legacy_shared_memory("my_shared_memory", KeyType::SYSTEM_V);
        // An empty TMPDIR means /tmp.
        with_tmpdir(Some(""), || assert_eq!(derive().native_key(), format!("/tmp/qipc_sharedmemory_{tail}")));
        // A trailing slash and `.`/`..` are cleaned.
        with_tmpdir(Some("/tmp/./"), || assert_eq!(derive().native_key(), format!("/tmp/qipc_sharedmemory_{tail}")));
        // A missing directory gives the empty string: the file lands in /.
        with_tmpdir(Some("/nonexistent-qipc-dir"), || {
            assert_eq!(derive().native_key(), format!("/qipc_sharedmemory_{tail}"))
        });
        // Symbolic links are resolved.
        let base = std::env::temp_dir().join(format!("qipc_keytest_{}", std::process::id()));
        let real = base.join("real");
        std::fs::create_dir_all(&real).unwrap();
        let link = base.join("link");
        let _ = std::os::unix::fs::symlink(&real, &link);
        let real_s = std::fs::canonicalize(&real).unwrap().to_string_lossy().into_owned();
        with_tmpdir(Some(link.to_str().unwrap()), || {
            assert_eq!(derive().native_key(), format!("{real_s}/qipc_sharedmemory_{tail}"))
        });
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn empty_legacy_key_is_empty() {
        let k = NativeKey::legacy_shared_memory("", KeyType::PosixRealtime);
        assert!(k.is_empty());
        assert_eq!(k.to_string(), "posix:");
    }

    #[cfg(unix)] // System V key files in /tmp
    #[test]
    fn text_form_vectors() {
        with_tmpdir(None, || {
            let k = NativeKey::legacy_shared_memory("my_shared_memory", KeyType::SYSTEM_V);
            assert_eq!(
                k.to_string(),
                "systemv:/tmp/qipc_sharedmemory_mysharedmemoryd3faa70b96e6c94a96cbd5270f2f9f4a8f14fdcd?legacyKey=my_shared_memory"
            );
            assert_eq!(NativeKey::from_string(&k.to_string()).unwrap(), k);
        });
        assert_eq!(NativeKey::posix("/x").to_string(), "posix:/x");
        assert_eq!(NativeKey::posix("QSharedMemoryExample").to_string(), "posix:QSharedMemoryExample");
        assert_eq!(NativeKey::posix("//weird%path").to_string(), "posix:/%2Fweird%25path");
        assert_eq!(
            NativeKey::platform_safe("my_shared_memory", KeyType::PosixRealtime).to_string(),
            "posix:/my_shared_memory"
        );
        // Observed on Qt 6.12: `?`, `#` and controls are escaped, the rest is kept.
        let cases = [
            ("/a b", "posix:/a b"),
            ("/q?x", "posix:/q%3Fx"),
            ("/h#x", "posix:/h%23x"),
            ("/p+q", "posix:/p+q"),
            ("/é", "posix:/é"),
            ("/a&b=c", "posix:/a&b=c"),
            ("x//y", "posix:x//y"),
            ("/tab\tx", "posix:/tab%09x"),
            ("", "posix:"),
            ("/ü€𝄞", "posix:/ü€𝄞"),
        ];
        for (native, text) in cases {
            let k = NativeKey::posix(native);
            assert_eq!(k.to_string(), text, "{native:?}");
            assert_eq!(NativeKey::from_string(text).unwrap(), k, "{text:?}");
        }
        let legacy_cases = [
            ("a b", "legacyKey=a b"),
            ("a&b", "legacyKey=a%26b"),
            ("a=b", "legacyKey=a%3Db"),
            ("a+b", "legacyKey=a+b"),
            ("a#b", "legacyKey=a%23b"),
            ("a%b", "legacyKey=a%25b"),
            ("x?y", "legacyKey=x?y"),
        ];
        for (legacy_key, query) in legacy_cases {
            let k = NativeKey::legacy_shared_memory(legacy_key, KeyType::PosixRealtime);
            let text = k.to_string();
            assert!(text.ends_with(&format!("?{query}")), "{text}");
            assert_eq!(NativeKey::from_string(&text).unwrap(), k, "{text}");
        }
    }

    #[test]
    fn parse_vectors() {
        let ok = |s: &str| NativeKey::from_string(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        let k = ok("systemv:/tmp/x?legacyKey=my_shared_memory");
        assert_eq!(
            (k.key_type(), k.native_key(), k.legacy_key()),
            (KeyType::SYSTEM_V, "/tmp/x", Some("my_shared_memory"))
        );
        assert_eq!(ok("posix:/foo"), NativeKey::posix("/foo"));
        assert_eq!(ok("systemv-81:/tmp/a"), NativeKey::system_v("/tmp/a"));
        assert_eq!(ok("systemv-81:/tmp/a").to_string(), "systemv:/tmp/a");
        assert_eq!(ok("systemv-1:/tmp/a").key_type(), KeyType::SystemV { ftok_id: 1 });
        assert_eq!(ok("systemv-1:/tmp/a").to_string(), "systemv-1:/tmp/a");
        assert_eq!(ok("systemv-01:/x").to_string(), "systemv-1:/x");
        assert_eq!(ok("systemv-255:/x").key_type(), KeyType::SystemV { ftok_id: 255 });
        assert_eq!(ok("windows:x").key_type(), KeyType::Windows);
        assert_eq!(ok("POSIX:/x"), NativeKey::posix("/x"));
        assert_eq!(ok("posix:"), NativeKey::posix(""));
        assert_eq!(ok("posix:/x#frag"), NativeKey::posix("/x"));
        assert_eq!(ok("posix:///x"), NativeKey::posix("/x"));
        assert_eq!(ok("posix:/x?"), NativeKey::posix("/x"));
        assert_eq!(ok("posix:/x?legacyKey"), NativeKey::posix("/x"));
        assert_eq!(ok("posix:/x?legacyKey="), NativeKey::posix("/x"));
        assert_eq!(ok("posix:/x%2"), NativeKey::posix("/x%2"));
        assert_eq!(ok("posix:/a%20b"), NativeKey::posix("/a b"));
        assert_eq!(ok("posix:/%2Fweird%25path"), NativeKey::posix("//weird%path"));
        assert_eq!(ok("systemv:relative"), NativeKey::system_v("relative"));
        assert_eq!(ok("posix:/x?legacyKey=a%26b").legacy_key(), Some("a&b"));
        assert_eq!(ok("posix:/x?legacyKey=a&legacyKey=b").legacy_key(), Some("b"));
        for bad in [
            "posix:/x?foo=1",
            "systemv-0:/x",
            "systemv-256:/x",
            "systemv-+1:/x",
            "bogus:/x",
            "posix://x/y",
            "posix://user@/x",
            "posix",
            "",
            ":/x",
        ] {
            assert!(NativeKey::from_string(bad).is_err(), "{bad:?} should be invalid");
        }
    }

    #[test]
    fn darwin_legacy_posix_keys_are_29_hex_digits() {
        // Qt on Apple, outside the sandbox: `/` + the first 29 hex digits of
        // the SHA-1, no prefix, no letters; the segment and its lock alike.
        let darwin = Os::Darwin { sandboxed: false };
        for (key, tail) in VECTORS {
            let hex = &tail[tail.len() - 40..];
            for purpose in [Purpose::SharedMemory, Purpose::Semaphore] {
                let k = legacy_in(key, KeyType::PosixRealtime, purpose, "/tmp", darwin);
                assert_eq!(k.native_key(), format!("/{}", &hex[..29]), "{key}");
                assert_eq!(k.native_key().len(), DARWIN_SHM_NAME_MAX);
                assert_eq!(k.legacy_key(), Some(*key));
            }
        }
        let k = legacy_in("SharedMemoryExample", KeyType::PosixRealtime, Purpose::SharedMemory, "", darwin);
        assert_eq!(k.native_key(), "/239c304753a51ce3617c8aac22ef1");
        assert_eq!(k.to_string(), "posix:/239c304753a51ce3617c8aac22ef1?legacyKey=SharedMemoryExample");
        assert_eq!(NativeKey::from_string(&k.to_string()).unwrap(), k);
        // Sandboxed: the key itself.
        let k = legacy_in("group.id/x", KeyType::PosixRealtime, Purpose::Semaphore, "", Os::Darwin { sandboxed: true });
        assert_eq!((k.native_key(), k.legacy_key()), ("group.id/x", Some("group.id/x")));
        // System V keys are derived as on Linux (key files in the temp dir).
        let k = legacy_in("SharedMemoryExample", KeyType::SYSTEM_V, Purpose::SharedMemory, "/private/tmp", darwin);
        assert_eq!(
            k.native_key(),
            "/private/tmp/qipc_sharedmemory_SharedMemoryExample239c304753a51ce3617c8aac22ef1d963b31c7c5"
        );
        // Empty stays empty.
        assert!(legacy_in("", KeyType::PosixRealtime, Purpose::SharedMemory, "", darwin).is_empty());
        // And Linux is unchanged.
        let k = legacy_in("SharedMemoryExample", KeyType::PosixRealtime, Purpose::SharedMemory, "", Os::Unix);
        assert_eq!(k.native_key(), "/qipc_sharedmemory_SharedMemoryExample239c304753a51ce3617c8aac22ef1d963b31c7c5");
    }

    #[test]
    fn darwin_platform_safe_posix_keys_are_cut_to_29_units() {
        let darwin = Os::Darwin { sandboxed: false };
        let k = |key: &str| platform_safe_in(key, KeyType::PosixRealtime, "", darwin).native_key().to_string();
        assert_eq!(k("short"), "/short");
        assert_eq!(k(&"a".repeat(40)), format!("/{}", "a".repeat(29)));
        assert_eq!(k(&"a".repeat(29)).len(), 30);
        // Units, not bytes: 29 'ü' stay whole (58 bytes).
        assert_eq!(k(&"ü".repeat(40)), format!("/{}", "ü".repeat(29)));
        // A character outside the BMP that the cut would halve is dropped.
        assert_eq!(k(&format!("{}\u{1F600}", "b".repeat(28))), format!("/{}", "b".repeat(28)));
        assert_eq!(k(""), "");
        assert_eq!(platform_safe_in("x", KeyType::PosixRealtime, "", Os::Unix).native_key(), "/x");
    }

    #[test]
    fn windows_keys() {
        // Legacy: no directory, no slash; Qt 5 and 6 print these names.
        let shm = legacy_in("SomeKey", KeyType::Windows, Purpose::SharedMemory, "", Os::Windows);
        assert_eq!(shm.native_key(), "qipc_sharedmemory_SomeKeybf5cd77691581e6a59f8e3306703cfeccb6e3849");
        assert_eq!(shm.to_string(), format!("windows:{}?legacyKey=SomeKey", shm.native_key()));
        assert_eq!(shm.lock_key().native_key(), "qipc_systemsem_SomeKeybf5cd77691581e6a59f8e3306703cfeccb6e3849");
        // Qt 6.12 printed `?legacyKey=%25` and `?legacyKey=Local\x` (backslash kept).
        for key in ["%", "Local\\x", "Grüße 123", "/", "a&b=c"] {
            let k = legacy_in(key, KeyType::Windows, Purpose::SharedMemory, "", Os::Windows);
            assert_eq!(NativeKey::from_string(&k.to_string()).unwrap(), k, "{key}");
        }
        assert!(legacy_in("%", KeyType::Windows, Purpose::SharedMemory, "", Os::Windows)
            .to_string()
            .ends_with("?legacyKey=%25"));
        assert!(legacy_in("Local\\x", KeyType::Windows, Purpose::SharedMemory, "", Os::Windows)
            .to_string()
            .ends_with("?legacyKey=Local\\x"));
        // Native keys print as `windows:<name>` and parse back.
        for (native, text) in [("SomeKey", "windows:SomeKey"), ("%", "windows:%25"), ("Local\\x", "windows:Local\\x")] {
            let k = NativeKey::new(native, KeyType::Windows);
            assert_eq!(k.to_string(), text);
            assert_eq!(NativeKey::from_string(text).unwrap(), k);
        }
        assert_eq!(NativeKey::new("", KeyType::Windows).to_string(), "windows:");
        // Qt 6's lock of a native key: cut to 255 units, then `_sem`.
        assert_eq!(NativeKey::new("MyKey", KeyType::Windows).lock_key().native_key(), "MyKey_sem");
        let long = NativeKey::new("e".repeat(300), KeyType::Windows).lock_key();
        assert_eq!(long.native_key(), format!("{}_sem", "e".repeat(255)));
        // platformSafeKey on Windows.
        let ps = |k: &str| platform_safe_in(k, KeyType::Windows, "", Os::Windows).native_key().to_string();
        assert_eq!(ps("SomeKey"), "shm_SomeKey");
        assert_eq!(ps("Local\\x"), "Local\\shm_x");
        assert_eq!(ps("Global\\x"), "Global\\shm_x");
        assert_eq!(ps(&"a".repeat(300)), format!("shm_{}", "a".repeat(256)));
        assert_eq!(ps(&format!("{}\u{1F600}", "d".repeat(255))), format!("shm_{}", "d".repeat(255)));
        assert_eq!(ps(""), "");
    }

    #[test]
    fn key_type_numbers() {
        assert_eq!(KeyType::from_qt(0), None);
        assert_eq!(KeyType::from_qt(0x51), Some(KeyType::SYSTEM_V));
        assert_eq!(KeyType::from_qt(0x102), None);
        for v in [1u16, 0x51, 0xff, 0x100, 0x101] {
            assert_eq!(KeyType::from_qt(v).unwrap().to_qt(), v);
        }
    }
}
