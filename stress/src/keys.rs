//! Keys of a run and the names the OS objects get from them.
//!
//! The machine's /tmp, /dev/shm and System V namespace are shared with other
//! sessions, so every key is unique (coordinator pid + time + a counter) and
//! carries the run's *tag*, a run of ASCII letters: Qt's System V key files
//! keep only the letters of a key (plus its SHA-1), so the letters are what
//! makes our objects recognisable (`qipc gc --match <tag>`, leak counts).

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

/// Which qipc backend a storm uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Legacy keys, `SharedMemory::new(key)`: System V segment + semaphore.
    SysV,
    /// Native POSIX keys, `NativeKey::posix("/name")`.
    Posix,
}

impl Backend {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Backend::SysV => "sysv",
            Backend::Posix => "posix",
        }
    }

    /// Parses [`Backend::name`].
    pub fn parse(s: &str) -> Option<Backend> {
        match s {
            "sysv" => Some(Backend::SysV),
            "posix" => Some(Backend::Posix),
            _ => None,
        }
    }
}

/// The key of one storm (or one phase of the mixed storm).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StormKey {
    /// The backend.
    pub backend: Backend,
    /// SysV: the legacy key (`QSharedMemory(key)`); POSIX: the native name
    /// with its leading slash.
    pub text: String,
}

impl StormKey {
    /// A new key: `QipcStress<tag><Storm>` followed by digits that make it
    /// unique (they are dropped from System V file names but change the SHA-1).
    pub fn new(backend: Backend, tag: &str, storm_word: &str, unique: &str) -> StormKey {
        let text = match backend {
            Backend::SysV => format!("QipcStress{tag}{storm_word}-{unique}"),
            Backend::Posix => format!("/QipcStress{tag}{storm_word}_{unique}"),
        };
        StormKey { backend, text }
    }

    /// Rebuilds a key from the worker's command line.
    pub fn from_parts(backend: Backend, text: &str) -> StormKey {
        StormKey { backend, text: text.to_string() }
    }

    /// A fresh qipc handle for this key (the storms' only way to name it).
    pub fn handle(&self) -> qipc::SharedMemory {
        match self.backend {
            Backend::SysV => qipc::SharedMemory::new(&self.text),
            Backend::Posix => qipc::SharedMemory::with_native_key(qipc::NativeKey::posix(self.text.clone())),
        }
    }

    /// SysV: the segment's key file in `key_dir` (the workers' TMPDIR), as Qt
    /// derives it: `qipc_sharedmemory_` + the key's ASCII
    /// letters + the SHA-1 of the whole key.
    pub fn sysv_key_file(&self, key_dir: &Path) -> PathBuf {
        key_dir.join(legacy_file_name("qipc_sharedmemory_", &self.text))
    }

    /// POSIX: the segment's name in /dev/shm (without the slash).
    pub fn posix_name(&self) -> &str {
        self.text.trim_start_matches('/')
    }
}

/// `prefix` + ASCII letters of `key` + hex SHA-1 of `key` (Qt's legacy rule).
pub fn legacy_file_name(prefix: &str, key: &str) -> String {
    let letters: String = key.chars().filter(char::is_ascii_alphabetic).collect();
    let digest: String = sha1(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{letters}{digest}")
}

/// A run tag: `n` ASCII letters from the coordinator's pid and the time.
pub fn run_tag(pid: u32, nanos: u128) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut v = (u128::from(pid) << 64) ^ nanos;
    let mut s = String::new();
    for _ in 0..10 {
        s.push(ALPHABET[(v % 52) as usize] as char);
        v /= 52;
    }
    s
}

/// SHA-1, only to derive Qt's file names (the harness derives them itself,
/// independently of qipc's own derivation).
pub fn sha1(data: &[u8]) -> [u8; 20] {
    sha1_smol::Sha1::from(data).digest().bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(d: [u8; 20]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn sha1_vectors() {
        assert_eq!(hex(sha1(b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(hex(sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        let long = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        assert_eq!(hex(sha1(long)), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    }

    #[test]
    fn qt_legacy_names() {
        // as printed by Qt 5.15 and 6.12
        assert_eq!(
            legacy_file_name("qipc_sharedmemory_", "my_shared_memory"),
            "qipc_sharedmemory_mysharedmemoryd3faa70b96e6c94a96cbd5270f2f9f4a8f14fdcd"
        );
    }

    #[test]
    fn tags_are_letters() {
        let t = run_tag(4_194_303, 1_234_567_890_123_456_789);
        assert_eq!(t.len(), 10);
        assert!(t.chars().all(|c| c.is_ascii_alphabetic()));
        assert_ne!(t, run_tag(4_194_303, 1_234_567_890_123_456_790));
    }
}
