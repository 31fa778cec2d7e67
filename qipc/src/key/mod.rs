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

mod derive;
mod env;
mod text;

#[cfg(target_os = "linux")] // the inspector recovers legacy keys with it
pub(crate) use derive::legacy_name;
#[cfg(test)]
use derive::legacy_in;
use derive::platform_safe_in;
use derive::legacy;
use text::{escape, percent_decode};

use std::fmt;


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
    /// as Qt chooses it:
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
            // The lock's name is the segment's with the semaphore prefix (the
            // letters and the hash are the key's), in the same directory:
            // no second derivation, which would read the environment again.
            Some(legacy_key) => match swap_prefix(&self.native) {
                Some(native) => NativeKey { key_type: self.key_type, native, legacy: Some(legacy_key.clone()) },
                None => NativeKey::legacy_semaphore(legacy_key, self.key_type),
            },
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

/// `…/qipc_sharedmemory_<rest>` → `…/qipc_systemsem_<rest>` (the file name
/// only), or `None` if the name does not start with the segment prefix.
fn swap_prefix(native: &str) -> Option<String> {
    let start = native.rfind(['/', '\\']).map_or(0, |i| i + 1);
    let rest = native[start..].strip_prefix(Purpose::SharedMemory.prefix())?;
    Some(format!("{}{}{rest}", &native[..start], Purpose::Semaphore.prefix()))
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
mod tests;
