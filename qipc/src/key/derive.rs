//! Qt's derivations, pure: a legacy key or a platform-safe key to a native
//! key, given the directories and the operating system's flavour (the
//! callers read the environment, in one place: `env`).

#![forbid(unsafe_code)]

use super::{env, KeyType, NativeKey, Os, Purpose, DARWIN_SHM_NAME_MAX};
use crate::sys::windows_names::sha1_hex;

/// Qt's legacy name for `key`: the prefix, the ASCII letters of `key`, and
/// the SHA-1 of its UTF-8 bytes in hex (pure: no directory, no decoration).
pub(crate) fn legacy_name(key: &str, purpose: Purpose) -> String {
    let letters: String = key.chars().filter(char::is_ascii_alphabetic).collect();
    format!("{}{letters}{}", purpose.prefix(), sha1_hex(key))
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
            let hex = sha1_hex(key);
            format!("/{}", &hex[..DARWIN_SHM_NAME_MAX - 1])
        }
        (KeyType::SystemV { .. }, _) => format!("{temp_dir}/{}", legacy_name(key, purpose)),
        (KeyType::PosixRealtime, _) => format!("/{}", legacy_name(key, purpose)),
        (KeyType::Windows, _) => legacy_name(key, purpose),
    };
    NativeKey { key_type, native, legacy: Some(key.to_string()) }
}

pub(super) fn legacy(key: &str, key_type: KeyType, purpose: Purpose) -> NativeKey {
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
