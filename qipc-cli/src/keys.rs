//! From the command line's KEY / `--native` / `--type` to a [`NativeKey`],
//! and back to words: how messages name a key, and how hints spell it on a
//! command line.

use std::ffi::OsStr;

use qipc::{KeyType, NativeKey};

use crate::{
    cli::{Backend, KeyArgs},
    error::CliError,
};

/// The key named by `KEY` or `--native` (and `--type` for a legacy key).
pub fn resolve(a: &KeyArgs) -> Result<NativeKey, CliError> {
    match (&a.key, &a.native) {
        (Some(key), None) => {
            let key = utf8(key, "KEY")?;
            if key.is_empty() {
                return Err(CliError::usage("the key is empty").hint("a Qt key is a non-empty string"));
            }
            Ok(NativeKey::legacy_shared_memory(key, legacy_type(a.key_type)?))
        }
        (None, Some(text)) => {
            let text = utf8(text, "--native")?;
            let key = NativeKey::from_string(text).map_err(|e| {
                CliError::usage(format!("--native: {e}"))
                    .hint("examples: posix:/name, posix:Name, systemv:/path/to/file")
            })?;
            if key.is_empty() {
                return Err(CliError::usage("--native: the key's name is empty"));
            }
            supported(key)
        }
        // clap makes sure one of the two is given; should it not, say so.
        _ => Err(CliError::usage("give either KEY or --native NATIVE")),
    }
}

/// The backend a legacy key names: `--type`, else Qt's default for the
/// platform.
pub fn legacy_type(t: Option<Backend>) -> Result<KeyType, CliError> {
    match t {
        None => Ok(KeyType::LEGACY_DEFAULT),
        #[cfg(unix)]
        Some(Backend::Systemv) => Ok(KeyType::SYSTEM_V),
        #[cfg(unix)]
        Some(Backend::Posix) => Ok(KeyType::PosixRealtime),
        #[cfg(not(unix))]
        Some(_) => Err(CliError::usage("--type applies on Linux and macOS; Windows has one kind of key")),
    }
}

fn supported(key: NativeKey) -> Result<NativeKey, CliError> {
    #[cfg(unix)]
    let ok = key.key_type() != KeyType::Windows;
    #[cfg(windows)]
    let ok = key.key_type() == KeyType::Windows;
    if ok {
        Ok(key)
    } else {
        Err(CliError::usage(format!("--native: {} keys cannot be used on this system", scheme(&key))))
    }
}

fn scheme(key: &NativeKey) -> String {
    let text = key.to_string();
    text.split(':').next().unwrap_or_default().to_string()
}

/// An argument that must be text.
pub fn utf8<'a>(s: &'a OsStr, what: &str) -> Result<&'a str, CliError> {
    s.to_str().ok_or_else(|| {
        CliError::usage(format!("{what} is not valid UTF-8 ({s:?})")).hint("Qt keys are text (QString): use UTF-8")
    })
}

/// How messages name a key: `"K"` for a legacy System V key, `"K"
/// (POSIX)`, or the native key's text form (`posix:/name`).
pub fn label(key: &NativeKey) -> String {
    match key.legacy_key() {
        Some(legacy) => match key.key_type() {
            KeyType::PosixRealtime => format!("{legacy:?} (POSIX)"),
            _ => format!("{legacy:?}"),
        },
        None => key.to_string(),
    }
}

/// The key as command-line arguments, for hints: `K`, `K --type posix` or
/// `--native posix:/name`, quoted for a POSIX shell.
pub fn as_args(key: &NativeKey) -> String {
    match key.legacy_key() {
        Some(legacy) => match key.key_type() {
            KeyType::PosixRealtime => format!("{} --type posix", shell_quote(legacy)),
            _ => shell_quote(legacy),
        },
        None => format!("--native {}", shell_quote(&key.to_string())),
    }
}

/// `s` quoted for a POSIX shell when it needs it.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && !s.starts_with('-')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "_./:=@%+-,".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The backend's name in JSON and tables.
pub fn backend_name(t: KeyType) -> String {
    match t {
        KeyType::SystemV { ftok_id: 0x51 } => "systemv".into(),
        KeyType::SystemV { ftok_id } => format!("systemv-{ftok_id}"),
        KeyType::PosixRealtime => "posix".into(),
        KeyType::Windows => "windows".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("SharedMemoryExample"), "SharedMemoryExample");
        assert_eq!(shell_quote("posix:/x"), "posix:/x");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("-x"), "'-x'");
        assert_eq!(shell_quote(""), "''");
    }

    #[cfg(unix)]
    #[test]
    fn labels() {
        let k = NativeKey::legacy_shared_memory("K", KeyType::SYSTEM_V);
        assert_eq!((label(&k), as_args(&k)), ("\"K\"".to_string(), "K".to_string()));
        let k = NativeKey::legacy_shared_memory("K", KeyType::PosixRealtime);
        assert_eq!((label(&k), as_args(&k)), ("\"K\" (POSIX)".to_string(), "K --type posix".to_string()));
        let k = NativeKey::posix("/n");
        assert_eq!((label(&k), as_args(&k)), ("posix:/n".to_string(), "--native posix:/n".to_string()));
    }
}
