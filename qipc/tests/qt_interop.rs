//! Interoperability with real Qt processes: PyQt5 (Qt 5.15) and PySide6
//! (Qt 6.12), driven through qipc/tests/qt/peer.py.
//!
//! Key types: legacy keys (`QSharedMemory(QString)`, System V on Linux) with
//! Qt 5 and Qt 6; POSIX native keys (`QNativeIpcKey(name, PosixRealtime)`)
//! with Qt 6 only (Qt 5 has no native POSIX keys).
//!
//! Each test starts one Qt process and checks several things with it. The
//! Qt peers must be installed (scripts/setup-qt.sh): a missing peer fails the
//! tests, it never skips them.

// These tests exercise Linux's objects and Qt peers (run by scripts/test.sh);
// Windows has its own in conformance.rs and windows_interop.rs.
#![cfg(unix)]

mod common;

use std::time::Duration;

use common::*;
use qipc::{AccessMode, KeyType, NativeKey, SharedMemory};

/// Longest a Qt peer may live in one test.
const DEADLINE: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// A legacy key: System V, `QSharedMemory(key)` in Qt 5 and Qt 6.
    Legacy,
    /// A POSIX native key: `QNativeIpcKey(name, PosixRealtime)`, Qt 6 only.
    Posix,
}

/// A unique key, as qipc and as the peer command that selects it.
struct Setup {
    native: NativeKey,
    legacy: Option<String>,
    qt_cmd: String,
}

impl Setup {
    fn new(kind: Kind, tag: &str) -> Setup {
        match kind {
            Kind::Legacy => {
                let key = unique_key(tag);
                Setup {
                    native: NativeKey::legacy_shared_memory(&key, KeyType::SYSTEM_V),
                    qt_cmd: format!("keyhex {}", to_hex(key.as_bytes())),
                    legacy: Some(key),
                }
            }
            Kind::Posix => {
                let native = unique_posix(tag);
                Setup { qt_cmd: format!("native {native}"), native, legacy: None }
            }
        }
    }

    fn shm(&self) -> SharedMemory {
        match &self.legacy {
            Some(key) => SharedMemory::new(key),
            None => SharedMemory::with_native_key(self.native.clone()),
        }
    }

    /// Starts the Qt peer and selects this key in it.
    fn peer(&self, qt: &str) -> Interactive {
        let mut peer = qt_peer_interactive(qt, DEADLINE);
        let line = peer.ask(&self.qt_cmd, "KEY ");
        assert_eq!(after(&line, "KEY "), self.native.native_key(), "Qt {qt} and qipc name the segment differently");
        peer
    }
}

fn value(line: &str) -> Vec<u8> {
    from_hex(after(line, "VALUE "))
}

fn read_all(shm: &SharedMemory) -> Vec<u8> {
    shm.lock().expect("lock").to_vec()
}

// ---- Qt creates and writes, qipc reads; qipc writes, Qt reads; qipc detaches last ----

/// Qt creates the segment and writes under its lock; qipc attaches and reads
/// the same bytes, writes its own, Qt reads them; Qt detaches and exits;
/// qipc, the last one attached, detaches and everything is gone (for POSIX:
/// Qt never removes the object, qipc does).
fn qt_creates(qt: &str, kind: Kind) {
    let s = Setup::new(kind, "qtcreates");
    let _cleanup = Cleanup::new(&s.native);
    let mut peer = s.peer(qt);
    // Nothing there yet: Qt and qipc both say NotFound (Qt's error() 5).
    let line = peer.ask("?attach", "ERROR attach");
    assert_eq!(after(&line, "ERROR attach").split(' ').next(), Some("5"), "Qt: {line}");
    let err = s.shm().attach(AccessMode::ReadWrite).unwrap_err();
    assert_eq!(err.kind(), qipc::ErrorKind::NotFound, "{err}");
    assert_eq!(after(&peer.ask("create 64", "CREATED"), "CREATED"), "64");
    // Now it exists: a second create fails with AlreadyExists on both sides.
    let err = s.shm().create(64, AccessMode::ReadWrite).unwrap_err();
    assert_eq!(err.kind(), qipc::ErrorKind::AlreadyExists, "{err}");
    let from_qt: &[u8] = b"Qt wrote this \x00\x01\x7f\x80\xfe\xff";
    peer.ask(&format!("write 0 {}", to_hex(from_qt)), "WROTE");

    let mut shm = s.shm();
    shm.attach(AccessMode::ReadWrite).expect("qipc attaches to the Qt segment");
    assert_eq!(shm.size(), 64, "size of the Qt segment");
    let all = read_all(&shm);
    assert_eq!(&all[..from_qt.len()], from_qt, "qipc reads what Qt wrote");
    assert!(all[from_qt.len()..].iter().all(|&b| b == 0), "the rest of a new segment is zero");

    let from_qipc: &[u8] = b"qipc wrote that\xff";
    shm.lock().unwrap().write_at(32, from_qipc).unwrap();
    assert_eq!(value(&peer.ask("read 32 16", "VALUE")), from_qipc, "Qt reads what qipc wrote");

    assert_eq!(peer.ask("detach", "DETACHED").trim(), "DETACHED True");
    peer.send("exit 0");
    peer.expect_success();
    assert!(segment_exists(&s.native), "the segment went away while qipc is still attached");
    if let Kind::Legacy = kind {
        assert_eq!(sysv_shm_nattch(&s.native), Some(1));
    }
    shm.detach().expect("qipc detaches last");
    assert!(!segment_exists(&s.native), "qipc detached last but the segment is still there");
    drop(shm);
    assert_clean(&s.native);
}

#[test]
fn qt5_legacy_qt_creates_qipc_reads_and_detaches_last() {
    qt_creates("5", Kind::Legacy);
}

#[test]
fn qt6_legacy_qt_creates_qipc_reads_and_detaches_last() {
    qt_creates("6", Kind::Legacy);
}

#[test]
fn qt6_posix_qt_creates_qipc_reads_and_detaches_last() {
    qt_creates("6", Kind::Posix);
}

// ---- qipc creates and writes, Qt reads; lock exclusion; Qt detaches last ----

/// qipc creates and writes, Qt attaches and reads the bytes; while qipc holds
/// the lock Qt's lock() waits (checked by content: Qt sees what qipc wrote
/// just before unlocking); Qt writes under the lock and qipc reads it. Then
/// qipc detaches while Qt is still attached: nothing is removed and Qt can
/// still read. System V: Qt detaches last and the segment is gone. POSIX: Qt
/// detaches (and never removes anything), then a qipc process attaches and
/// detaches last, which removes everything.
fn qipc_creates(qt: &str, kind: Kind) {
    let s = Setup::new(kind, "qipccreates");
    let _cleanup = Cleanup::new(&s.native);
    let mut owner = s.shm();
    owner.create(64, AccessMode::ReadWrite).expect("qipc creates");
    let from_qipc: &[u8] = b"from qipc \x00\xc3\xa9\xff";
    owner.lock().unwrap().write_at(0, from_qipc).unwrap();

    let mut peer = s.peer(qt);
    if let Kind::Legacy = kind {
        // Qt's create on the existing segment: AlreadyExists (Qt's error() 4),
        // as qipc's. (Not with POSIX: Qt's create replaces the POSIX lock
        // semaphore even when it fails, and Qt's and qipc's locks would no
        // longer exclude each other.)
        let line = peer.ask("?create 64", "ERROR create");
        assert_eq!(after(&line, "ERROR create").split(' ').next(), Some("4"), "Qt: {line}");
    }
    assert_eq!(after(&peer.ask("attach", "ATTACHED"), "ATTACHED"), "64", "size Qt sees");
    let status = peer.ask("status", "STATUS");
    assert!(status.contains("attached=1 size=64 error=0"), "{status}");
    assert_eq!(value(&peer.ask(&format!("read 0 {}", from_qipc.len()), "VALUE")), from_qipc);

    // Lock exclusion: Qt's lock() must wait for qipc's guard.
    {
        let mut guard = owner.lock().unwrap();
        guard.write_at(16, b"BEFORE").unwrap();
        peer.send("echo TRYING");
        peer.send("read 16 6"); // takes Qt's lock, prints VALUE once it has it
        peer.wait_for_line("TRYING");
        // Give Qt every chance to (wrongly) get through; the check below is
        // on content, not on time.
        std::thread::sleep(Duration::from_millis(300));
        guard.write_at(16, b"AFTER!").unwrap();
    }
    assert_eq!(value(&peer.wait_for_line("VALUE")), b"AFTER!", "Qt's lock() did not wait for qipc's lock");
    // And the other way round: Qt writes under its lock, qipc reads.
    peer.ask("write 24 5174207772697465", "WROTE");
    let mut buf = [0u8; 8];
    owner.lock().unwrap().read_at(24, &mut buf).unwrap();
    assert_eq!(&buf, b"Qt write");

    // qipc detaches while Qt is attached: nothing is removed.
    owner.detach().expect("qipc detaches first");
    assert!(segment_exists(&s.native), "qipc removed the segment while Qt was attached");
    assert_eq!(value(&peer.ask("read 24 8", "VALUE")), b"Qt write", "Qt can still read");
    assert_eq!(peer.ask("detach", "DETACHED").trim(), "DETACHED True");
    match kind {
        Kind::Legacy => {
            // Qt was the last detacher: it removed the segment and its key file.
            assert!(!segment_exists(&s.native), "Qt detached last but the segment is still there");
            assert!(!std::path::Path::new(s.native.native_key()).exists(), "shm key file left");
        }
        Kind::Posix => {
            // Qt never removes POSIX objects; a later qipc last detacher does.
            assert!(segment_exists(&s.native), "Qt removed a POSIX object (it never does)");
            let mut late = s.shm();
            late.attach(AccessMode::ReadOnly).expect("attach to the object Qt left");
            let mut buf = [0u8; 8];
            late.lock().unwrap().read_at(24, &mut buf).unwrap();
            assert_eq!(&buf, b"Qt write");
            late.detach().unwrap();
            assert!(!segment_exists(&s.native), "qipc detached last but the object is still in /dev/shm");
        }
    }
    peer.send("exit 0");
    peer.expect_success();
    drop(owner);
    if let Kind::Posix = kind {
        // Qt still had the lock semaphore open when qipc's last detacher
        // left, so it was kept (a Qt 6 object would otherwise re-attach on
        // a stale one); the next qipc touch of the key retires it.
        assert_eq!(s.shm().attach(AccessMode::ReadOnly).unwrap_err().kind(), qipc::ErrorKind::NotFound);
    }
    assert_clean(&s.native);
}

#[test]
fn qt5_legacy_qipc_creates_qt_reads_lock_excludes_qt_detaches_last() {
    qipc_creates("5", Kind::Legacy);
}

#[test]
fn qt6_legacy_qipc_creates_qt_reads_lock_excludes_qt_detaches_last() {
    qipc_creates("6", Kind::Legacy);
}

#[test]
fn qt6_posix_qipc_creates_qt_reads_lock_excludes_qipc_detaches_last() {
    qipc_creates("6", Kind::Posix);
}

// ---- concurrent locked increments ----

/// Qt and qipc (this process) each do 10,000 locked read-increment-write
/// cycles on one u32 at offset 0, at the same time: the result is 20,000.
fn counter(qt: &str, kind: Kind) {
    const N: u32 = 10_000;
    let s = Setup::new(kind, "counter");
    let _cleanup = Cleanup::new(&s.native);
    let mut shm = s.shm();
    shm.create(8, AccessMode::ReadWrite).unwrap();
    let mut peer = s.peer(qt);
    peer.ask("attach", "ATTACHED");
    // Both start now: Qt on its command, qipc right away.
    peer.send(&format!("incr {N} u32"));
    for _ in 0..N {
        let mut guard = shm.lock().unwrap();
        let mut word = [0u8; 4];
        guard.read_at(0, &mut word).unwrap();
        guard.write_at(0, &(u32::from_ne_bytes(word) + 1).to_ne_bytes()).unwrap();
    }
    peer.wait_for_line("COUNTED");
    let mut word = [0u8; 4];
    shm.lock().unwrap().read_at(0, &mut word).unwrap();
    assert_eq!(u32::from_ne_bytes(word), 2 * N, "lost updates: Qt's and qipc's locks do not exclude each other");
    assert_eq!(value(&peer.ask("read 0 4", "VALUE")), (2 * N).to_ne_bytes());
    peer.ask("detach", "DETACHED");
    peer.send("exit 0");
    peer.expect_success();
    shm.detach().unwrap();
    drop(shm);
    assert_clean(&s.native);
}

#[test]
fn qt5_legacy_concurrent_locked_increments() {
    counter("5", Kind::Legacy);
}

#[test]
fn qt6_legacy_concurrent_locked_increments() {
    counter("6", Kind::Legacy);
}

#[test]
fn qt6_posix_concurrent_locked_increments() {
    counter("6", Kind::Posix);
}

// ---- crash ----

/// Qt creates a legacy (System V) segment and is SIGKILLed while attached:
/// the segment stays (nattch 0); qipc attach + detach removes it.
fn qt_crash(qt: &str) {
    let s = Setup::new(Kind::Legacy, "qtcrash");
    let _cleanup = Cleanup::new(&s.native);
    let mut peer = s.peer(qt);
    peer.ask("create 100", "CREATED");
    peer.ask("write 0 637261736820746573740a", "WROTE");
    peer.kill();
    assert_eq!(
        sysv_shm_nattch(&s.native),
        Some(0),
        "the killed Qt process's segment should be left, unattached; key file exists: {}, ftok {:?}, /proc/sysvipc/shm:\n{}",
        std::path::Path::new(s.native.native_key()).exists(),
        sysv_ipc_key(s.native.native_key(), 0x51),
        std::fs::read_to_string("/proc/sysvipc/shm").unwrap_or_default()
    );

    let mut shm = s.shm();
    shm.attach(AccessMode::ReadWrite).expect("attach to the segment the crash left");
    assert_eq!(shm.size(), 100);
    let mut buf = [0u8; 11];
    shm.lock().unwrap().read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"crash test\n");
    shm.detach().unwrap();
    assert!(!segment_exists(&s.native), "attach + detach did not remove the orphaned segment");
    assert!(!std::path::Path::new(s.native.native_key()).exists(), "shm key file left");
    drop(shm);
    // The lock semaphore belongs to the dead Qt process; as in Qt, an
    // attacher does not remove it. Clear it explicitly.
    SharedMemory::remove(&s.native).unwrap();
    assert_clean(&s.native);
}

#[test]
fn qt5_legacy_qt_killed_qipc_attach_detach_clears() {
    qt_crash("5");
}

#[test]
fn qt6_legacy_qt_killed_qipc_attach_detach_clears() {
    qt_crash("6");
}

// ---- key derivation ----

/// Keys: ASCII, non-ASCII, empty and empty-ish, long, with `/`, `%`,
/// spaces, URL-special characters.
fn key_table() -> Vec<String> {
    let mut keys: Vec<String> = [
        "my_shared_memory",
        "SharedMemoryExample",
        "QSharedMemoryExample",
        "Grüße 123",
        "日本語キー",
        "",
        " ",
        "_",
        "0123456789",
        "with spaces and digits 42",
        "path/with/slashes",
        "/leading/slash",
        "//double",
        "100%_pure%25",
        "a?b#c&d=e",
        "tab\there",
        "emoji 🎉 key",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    keys.push("L".repeat(150));
    keys.push(format!("{}-{}", "abc".repeat(40), "é".repeat(30)));
    keys
}

fn keys_command(keys: &[String]) -> String {
    let mut cmd = String::from("keys");
    for k in keys {
        cmd.push_str(&format!(" '{}'", to_hex(k.as_bytes())));
    }
    cmd
}

/// Parses `KEYINFO <hexkey> name=<hex> ...` into (key, [(name, value)]).
fn parse_keyinfo(line: &str) -> (String, Vec<(String, String)>) {
    // Not trimmed: an empty key is an empty first word.
    let rest = &line[line.find("KEYINFO ").expect("KEYINFO line") + "KEYINFO ".len()..];
    let mut words = rest.trim_end_matches('\n').split(' ');
    let key = String::from_utf8(from_hex(words.next().unwrap())).unwrap();
    let fields = words
        .map(|w| {
            let (name, hex) = w.split_once('=').unwrap();
            (name.to_string(), String::from_utf8(from_hex(hex)).unwrap())
        })
        .collect();
    (key, fields)
}

/// What qipc computes for the field names peer.py prints.
fn qipc_field(key: &str, name: &str) -> String {
    let (base, as_string) = match name.strip_suffix("_str") {
        Some(b) => (b, true),
        None => (name, false),
    };
    let nk = match base {
        "ctor" => SharedMemory::new(key).native_key().clone(),
        "shm_sysv" => NativeKey::legacy_shared_memory(key, KeyType::SYSTEM_V),
        "sem_sysv" => NativeKey::legacy_semaphore(key, KeyType::SYSTEM_V),
        "shm_posix" => NativeKey::legacy_shared_memory(key, KeyType::PosixRealtime),
        "sem_posix" => NativeKey::legacy_semaphore(key, KeyType::PosixRealtime),
        "safe_posix" => NativeKey::platform_safe(key, KeyType::PosixRealtime),
        "safe_sysv" => NativeKey::platform_safe(key, KeyType::SYSTEM_V),
        other => panic!("unknown field {other}"),
    };
    if as_string {
        // The text form must also parse back to the same key.
        let text = nk.to_string();
        if !nk.is_empty() {
            assert_eq!(NativeKey::from_string(&text).as_ref(), Ok(&nk), "{text} does not round-trip");
        }
        text
    } else {
        nk.native_key().to_string()
    }
}

fn compare_keys(qt: &str, peer: &mut Interactive, keys: &[String]) -> Vec<String> {
    peer.send(&keys_command(keys));
    let mut mismatches = Vec::new();
    for expected_key in keys {
        let (key, fields) = parse_keyinfo(&peer.wait_for_line("KEYINFO"));
        assert_eq!(&key, expected_key);
        for (name, qt_value) in fields {
            if key.is_empty() && name.starts_with("safe_") {
                continue; // see qt6_platform_safe_key_of_empty_key_is_empty
            }
            let ours = qipc_field(&key, &name);
            if ours != qt_value {
                mismatches.push(format!("Qt {qt} key {key:?} {name}: Qt {qt_value:?}, qipc {ours:?}"));
            }
        }
    }
    mismatches
}

/// The key file Qt's QSystemSemaphore(key) really creates (observed in the
/// temp dir) is qipc's legacy semaphore key.
fn compare_semfiles(qt: &str, peer: &mut Interactive) -> Vec<String> {
    let mut mismatches = Vec::new();
    for suffix in ["", " Grüße/%x", "  /"] {
        let key = format!("{}{suffix}", unique_key("semfile"));
        let expected = NativeKey::legacy_semaphore(&key, KeyType::SYSTEM_V);
        let _cleanup = Cleanup(vec![expected.clone()]);
        let line = peer.ask(&format!("semfile '{}'", to_hex(key.as_bytes())), "SEMFILE");
        let files: Vec<String> =
            after(&line, "SEMFILE").split_whitespace().map(|h| String::from_utf8(from_hex(h)).unwrap()).collect();
        if !files.iter().any(|f| f == expected.native_key()) {
            mismatches.push(format!("Qt {qt} semaphore key file for {key:?}: Qt {files:?}, qipc {expected:?}"));
        }
    }
    mismatches
}

#[test]
fn qt5_legacy_native_keys_match() {
    let mut peer = qt_peer_interactive("5", DEADLINE);
    let mut bad = compare_keys("5", &mut peer, &key_table());
    bad.extend(compare_semfiles("5", &mut peer));
    peer.send("exit 0");
    peer.expect_success();
    assert!(bad.is_empty(), "native keys differ from Qt 5:\n{}", bad.join("\n"));
}

#[test]
fn qt6_native_keys_and_text_forms_match() {
    let mut peer = qt_peer_interactive("6", DEADLINE);
    let mut bad = compare_keys("6", &mut peer, &key_table());
    bad.extend(compare_semfiles("6", &mut peer));

    // fromString on texts Qt writes and on malformed ones.
    let texts = [
        "posix:/x",
        "posix:QSharedMemoryExample",
        "systemv:/tmp/a?legacyKey=b",
        "systemv-1:/tmp/a",
        "systemv-81:/tmp/a",
        "systemv-255:/tmp/a",
        "posix:/%2Fweird%25path",
        "posix:/a%20b",
        "posix:/a?legacyKey=x%26y%3Dz",
        "POSIX:/upper",
        "posix://host/x",
        "posix://user@/x",
        "bogus:/x",
        "posix:/a?foo=1",
        "systemv-256:/x",
        "systemv-0:/x",
        "no-colon",
        "posix:/x#frag",
    ];
    let mut cmd = String::from("parse");
    for t in texts {
        cmd.push_str(&format!(" '{}'", to_hex(t.as_bytes())));
    }
    peer.send(&cmd);
    for text in texts {
        let line = peer.wait_for_line("PARSED");
        let rest = &line[line.find("PARSED ").expect("PARSED line") + "PARSED ".len()..];
        let mut words = rest.trim_end_matches('\n').split(' ');
        assert_eq!(String::from_utf8(from_hex(words.next().unwrap())).unwrap(), text);
        let f: Vec<(String, String)> =
            words.map(|w| w.split_once('=').map(|(a, b)| (a.to_string(), b.to_string())).unwrap()).collect();
        let get = |n: &str| f.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap();
        let qt_valid = get("valid") == "1";
        let ours = NativeKey::from_string(text);
        if qt_valid != ours.is_ok() {
            bad.push(format!("fromString({text:?}): Qt valid={qt_valid}, qipc {ours:?}"));
            continue;
        }
        if let Ok(key) = ours {
            let qt_type: u16 = get("type").parse().unwrap();
            let qt_native = String::from_utf8(from_hex(&get("native"))).unwrap();
            let qt_str = String::from_utf8(from_hex(&get("str"))).unwrap();
            if key.key_type().to_qt() != qt_type || key.native_key() != qt_native || key.to_string() != qt_str {
                bad.push(format!(
                    "fromString({text:?}): Qt type {qt_type} native {qt_native:?} text {qt_str:?}; \
                     qipc type {} native {:?} text {:?}",
                    key.key_type().to_qt(),
                    key.native_key(),
                    key.to_string()
                ));
            }
        }
    }
    peer.send("exit 0");
    peer.expect_success();
    assert!(bad.is_empty(), "keys differ from Qt 6:\n{}", bad.join("\n"));
}

/// `platformSafeKey("")` is empty in Qt 6 (an invalid, empty key), for both
/// types; qipc gives `/` (POSIX) and `<runtime dir>/` (System V).
#[test]
fn qt6_platform_safe_key_of_empty_key_is_empty() {
    let mut peer = qt_peer_interactive("6", DEADLINE);
    peer.send("keys ''");
    let (key, fields) = parse_keyinfo(&peer.wait_for_line("KEYINFO"));
    assert_eq!(key, "");
    peer.send("exit 0");
    peer.expect_success();
    let bad: Vec<String> = fields
        .iter()
        .filter(|(name, _)| name.starts_with("safe_"))
        .filter(|(name, qt_value)| qipc_field("", name) != *qt_value)
        .map(|(name, qt_value)| format!("{name}: Qt {qt_value:?}, qipc {:?}", qipc_field("", name)))
        .collect();
    assert!(bad.is_empty(), "platformSafeKey(\"\") differs from Qt 6:\n{}", bad.join("\n"));
}

// ---- Qt's ownership of the lock it created ----

/// A Qt process that created a segment owns its System V lock semaphore:
/// Qt removes it when that object goes, and a Qt 6 object whose semaphore
/// someone else removed fails its next create or attach ("unable to set key
/// on lock"). So when qipc detaches last, it removes the segment but leaves
/// Qt's semaphore; the Qt object can create again, and exclusion holds.
fn qt_owned_lock_survives_qipc_last_detach(qt: &str, kind: Kind) {
    let s = Setup::new(kind, "qtownslock");
    let _cleanup = Cleanup::new(&s.native);
    let mut peer = s.peer(qt);
    assert_eq!(after(&peer.ask("create 64", "CREATED"), "CREATED"), "64");
    let mut shm = s.shm();
    shm.attach(AccessMode::ReadWrite).unwrap();
    assert_eq!(peer.ask("detach", "DETACHED").trim(), "DETACHED True");
    shm.detach().expect("qipc detaches last");
    assert!(!segment_exists(&s.native), "the last detacher left the segment");
    // The same Qt object creates again: its lock must still be usable.
    assert_eq!(after(&peer.ask("create 64", "CREATED"), "CREATED"), "64", "Qt cannot create again");
    let mut shm = s.shm();
    shm.attach(AccessMode::ReadWrite).unwrap();
    peer.ask("lock", "LOCKED");
    assert!(shm.try_lock().unwrap().is_none(), "qipc got the lock Qt holds");
    peer.ask("unlock", "UNLOCKED");
    assert!(shm.try_lock().unwrap().is_some());
    // qipc leaves last (a Qt last detacher never removes a POSIX object).
    assert_eq!(peer.ask("detach", "DETACHED").trim(), "DETACHED True");
    shm.detach().unwrap();
    peer.send("exit 0");
    peer.expect_success();
    // Qt's object is gone and took its semaphore with it.
    assert_clean(&s.native);
}

#[test]
fn qt5_legacy_qt_owned_lock_survives_qipc_last_detach() {
    qt_owned_lock_survives_qipc_last_detach("5", Kind::Legacy);
}

#[test]
fn qt6_legacy_qt_owned_lock_survives_qipc_last_detach() {
    qt_owned_lock_survives_qipc_last_detach("6", Kind::Legacy);
}

#[test]
fn qt6_posix_qt_owned_lock_survives_qipc_last_detach() {
    qt_owned_lock_survives_qipc_last_detach("6", Kind::Posix);
}
