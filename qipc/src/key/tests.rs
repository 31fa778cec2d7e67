//! Key derivation and text form, against values Qt printed.
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
    // Its text form reads back as the same key, for every type.
    for ty in [KeyType::PosixRealtime, KeyType::SYSTEM_V, KeyType::Windows] {
        let k = NativeKey::legacy_shared_memory("", ty);
        assert_eq!(NativeKey::from_string(&k.to_string()).as_ref(), Ok(&k), "{k}");
    }
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

