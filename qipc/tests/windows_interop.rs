//! qipc's public API against real Windows Qt, both directions: PySide6
//! (Qt 6.12) and PyQt5 (Qt 5.15.2) under Windows CPython in the same Wine
//! prefix, driven through qipc/tests/qt/win_peer.py.
//!
//! Run through scripts/wine-run (the cargo runner set by
//! scripts/test-windows.sh), which gives the tests `QIPC_WIN_PYTHON` and
//! `QIPC_WIN_ROOT`; without them every test here fails: a missing peer is a
//! failure, never a skip.
//!
//! Each test prints one `INTEROP` line saying what ran against which Qt.

#![cfg(windows)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use qipc::{
    datastream::{DataStreamReader, DataStreamWriter, QImage},
    AccessMode, ErrorKind, KeyType, NativeKey, SemaphoreMode, SharedMemory, SystemSemaphore,
};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qt {
    Five,
    Six,
}

impl Qt {
    fn arg(self) -> &'static str {
        match self {
            Qt::Five => "5",
            Qt::Six => "6",
        }
    }
}

/// A unique suffix: Wine reuses small process ids, so add time and a counter.
fn uniq() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{}-{}-{}", std::process::id(), nanos % 1_000_000_000_000, NEXT.fetch_add(1, Ordering::Relaxed))
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run scripts/setup-wine.sh, then the tests through scripts/wine-run (the cargo runner)"
        )
    })
}

/// A key as the tests hand it to Qt and to qipc.
#[derive(Debug, Clone)]
enum Key {
    Legacy(String),
    Native(String),
}

impl Key {
    fn legacy(tag: &str) -> Key {
        Key::Legacy(format!("{tag}-{}", uniq()))
    }

    fn native(tag: &str) -> Key {
        Key::Native(format!("qipc-{tag}-{}", uniq()))
    }

    fn args(&self) -> [&str; 2] {
        match self {
            Key::Legacy(k) => ["--key", k],
            Key::Native(n) => ["--native", n],
        }
    }

    /// The segment qipc opens: `SharedMemory::new(k)` for a legacy key (a
    /// plain string means on Windows what Qt's QString constructor means),
    /// a `windows:` native key otherwise.
    fn shm(&self) -> SharedMemory {
        match self {
            Key::Legacy(k) => SharedMemory::new(k),
            Key::Native(n) => SharedMemory::with_native_key(NativeKey::new(n.as_str(), KeyType::Windows)),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Key::Legacy(_) => "legacy",
            Key::Native(_) => "windows: native",
        }
    }
}

/// A running peer: JSON lines on its stdout, go lines on its stdin.
struct Peer {
    what: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    stderr: Option<JoinHandle<String>>,
}

fn spawn(qt: Qt, args: &[&str]) -> Peer {
    let peer = format!("{}\\qipc\\tests\\qt\\win_peer.py", env("QIPC_WIN_ROOT"));
    let mut child = Command::new(env("QIPC_WIN_PYTHON"))
        .arg(peer)
        .args(["--qt", qt.arg()])
        .args(args)
        // Pipes for all three: Windows CPython cannot start on file handles under Wine 8.
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the Windows Python peer");
    let mut err = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    Peer {
        what: format!("Qt {} peer {args:?}", qt.arg()),
        stdin: child.stdin.take(),
        stdout: BufReader::new(child.stdout.take().unwrap()),
        child,
        stderr: Some(stderr),
    }
}

impl Peer {
    fn stderr(&mut self) -> String {
        let _ = self.child.kill();
        self.stderr.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default()
    }

    /// The next JSON line; the peer's stderr in the panic message if it ended.
    fn next(&mut self) -> Value {
        let mut line = String::new();
        if self.stdout.read_line(&mut line).unwrap() == 0 {
            let err = self.stderr();
            panic!("{} ended early; stderr:\n{err}", self.what);
        }
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{}: bad line {line:?}: {e}", self.what))
    }

    /// Lines up to the first {"event": "ready"}: those before it, and it.
    fn rows_until_ready(&mut self) -> (Vec<Value>, Value) {
        let mut rows = Vec::new();
        loop {
            let v = self.next();
            if v["event"] == "ready" {
                return (rows, v);
            }
            if v["event"] == "error" {
                let err = self.stderr();
                panic!("{}: {v}\n{err}", self.what);
            }
            rows.push(v);
        }
    }

    /// Lines up to and including the first {"event": "ready"}; returns that one.
    fn ready(&mut self) -> Value {
        self.rows_until_ready().1
    }

    fn go(&mut self) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    /// Closes stdin, reads the remaining lines and checks the exit status.
    fn finish(mut self) -> Vec<Value> {
        drop(self.stdin.take());
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        let status = self.child.wait().unwrap();
        let err = self.stderr.take().unwrap().join().unwrap();
        assert!(status.success(), "{} failed ({status}); stdout:\n{rest}\nstderr:\n{err}", self.what);
        rest.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a peer to its end with no input and returns its lines.
fn run(qt: Qt, args: &[&str]) -> Vec<Value> {
    spawn(qt, args).finish()
}

/// A name the peer printed (its UTF-16 units, decoded; a lone surrogate,
/// which PySide6 drops anyway, becomes U+FFFD).
fn text(v: &Value) -> String {
    let u: Vec<u16> = v["units"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u16).collect();
    String::from_utf16_lossy(&u)
}

fn qstring_bytes(s: &str) -> Vec<u8> {
    let mut out = DataStreamWriter::new();
    out.write_qstring(Some(s));
    out.into_bytes()
}

fn read_qstring(shm: &SharedMemory) -> String {
    let bytes = shm.lock().unwrap().to_vec();
    DataStreamReader::new(&bytes).read_qstring().unwrap().unwrap_or_default()
}

const LOCK_WAIT: Duration = Duration::from_secs(30);

// ---- names --------------------------------------------------------------------------------------

fn key_table() -> Vec<String> {
    vec![
        "SomeKey".into(),
        "SharedMemoryExample".into(),
        "Grüße 123".into(),
        "a".repeat(300),
        String::new(),
        "/".into(),
        "%".into(),
        "Local\\x".into(),
        "Global\\x".into(),
        "my key/with\\slashes".into(),
        format!("{}\u{1F600}", "d".repeat(255)),
    ]
}

fn names_agree(qt: Qt) {
    let keys = key_table();
    let args: Vec<&str> = std::iter::once("names").chain(keys.iter().map(String::as_str)).collect();
    let rows = run(qt, &args);
    assert_eq!(rows.len(), keys.len());
    for (k, row) in keys.iter().zip(&rows) {
        assert_eq!(text(&row["key"]), *k, "the key reached Qt unchanged");
        let shm = SharedMemory::new(k);
        // QSharedMemory(k).nativeKey()
        assert_eq!(shm.native_key().native_key(), text(&row["shm"]), "nativeKey() of {k:?} on Qt {}", row["qt"]);
        assert_eq!(shm.key(), (!k.is_empty()).then_some(k.as_str()), "key()");
        if qt == Qt::Six {
            let sem = SystemSemaphore::new(k, 0, SemaphoreMode::Open);
            let sem_name = NativeKey::legacy_semaphore(k, KeyType::Windows);
            assert_eq!(sem_name.native_key(), text(&row["sem"]), "QSystemSemaphore({k:?})");
            assert_eq!(shm.native_key().lock_key().native_key(), text(&row["sem"]), "the lock of {k:?}");
            if k.is_empty() {
                assert_eq!(sem.unwrap_err().kind(), ErrorKind::KeyError);
            } else {
                assert_eq!(sem.unwrap().native_key(), &sem_name);
            }
            assert_eq!(row["legacy_type"], KeyType::LEGACY_DEFAULT.to_qt(), "legacyDefaultTypeForOs()");
            // toString() both ways.
            let qt_text = row["shm_legacy_to_string"].as_str().unwrap();
            assert_eq!(shm.native_key().to_string(), qt_text, "legacyNativeKey({k:?}).toString()");
            assert_eq!(&NativeKey::from_string(qt_text).unwrap(), shm.native_key());
            let native = NativeKey::new(k.as_str(), KeyType::Windows);
            let qt_native = row["native_to_string"].as_str().unwrap();
            assert_eq!(native.to_string(), qt_native, "QNativeIpcKey({k:?}, Windows).toString()");
            assert_eq!(NativeKey::from_string(qt_native).unwrap(), native);
            // platformSafeKey(k, Windows), as PySide6 prints it.
            let safe = NativeKey::platform_safe(k, KeyType::Windows);
            assert_eq!(safe.native_key(), text(&row["shm_platform_safe"]).trim_end_matches('\u{FFFD}'), "{k:?}");
        }
    }
    eprintln!(
        "INTEROP names: nativeKey()/lock/toString()/platformSafeKey agree with Qt {} for {} keys",
        qt.arg(),
        keys.len()
    );
}

#[test]
fn names_agree_qt6() {
    names_agree(Qt::Six);
}

#[test]
fn names_agree_qt5() {
    names_agree(Qt::Five);
}

// ---- Qt's objects, reached by the same keys -----------------------------------------------------

/// The value of the lock semaphore qipc uses for `key`, opened with an
/// initial value of 0: 1 means it existed and is free (as Qt leaves its
/// lock after create); 0 means it is taken, or that it did not exist (the
/// semaphore made here then goes again with its handle, on return).
fn lock_value(key: &NativeKey) -> u32 {
    let sem = SystemSemaphore::with_native_key(key.lock_key(), 0, SemaphoreMode::Open).unwrap();
    sem.value().unwrap()
}

/// qipc attaches to the segment Qt holds for `key` (Qt's `hold` row `row`)
/// and takes its lock: Qt's lock, which must exist before qipc opens it, if
/// `qt_lock`; qipc's own otherwise (Qt 5's native keys, for which Qt 5 has
/// no lock, see `qt5_native_keys_have_no_lock`).
fn attach_to_what_qt_holds(shm: &mut SharedMemory, row: &Value, qt_lock: bool) {
    let what = shm.native_key().to_string();
    assert_eq!(
        shm.native_key().native_key(),
        text(&row["native"]).trim_end_matches('\u{FFFD}'),
        "Qt's nativeKey() for {what}"
    );
    assert_eq!(lock_value(shm.native_key()), u32::from(qt_lock), "Qt's lock for {what} (free), if Qt has one");
    shm.attach_timeout(AccessMode::ReadWrite, LOCK_WAIT).unwrap_or_else(|e| panic!("attach {what}: {e}"));
    assert_eq!(shm.size(), 4096, "Qt's create(64) is one page: {what}");
    let guard = shm.lock_timeout(LOCK_WAIT).unwrap().unwrap_or_else(|| panic!("the lock of {what}"));
    assert_eq!(lock_value(shm.native_key()), 0, "qipc holds the lock it names for {what}");
    drop(guard);
    assert_eq!(lock_value(shm.native_key()), 1, "and gave it back: {what}");
}

/// Qt creates and holds segments for awkward legacy and native keys; qipc
/// attaches to each by the same key and takes its lock (Qt's lock, but for
/// Qt 5's native keys, which have none: there qipc's attach works and its
/// lock is its own, excluding nobody in Qt 5). A native key without a
/// namespace prefix and the same key after `Local\` are one object. Once
/// Qt has exited, nothing is left: attach is NotFound.
fn objects_qt_holds(qt: Qt) {
    let u = uniq();
    let legacy = [
        format!("SomeKey-{u}"),
        format!("Grüße {u}"),
        format!("/x{u}"),
        format!("%x{u}"),
        format!("Local\\x{u}"),
        format!("Global\\x{u}"),
        format!("{}{u}", "a".repeat(300)),
    ];
    let native = [
        format!("qipc-native-{u}"),
        format!("Local\\qipc-local-{u}"),
        format!("Global\\qipc-global-{u}"),
        format!("Grüße-{u}"),
        format!("{}-{u}", "n".repeat(300)),
    ];
    let keys: Vec<Key> =
        legacy.iter().cloned().map(Key::Legacy).chain(native.iter().cloned().map(Key::Native)).collect();
    let items: Vec<String> = keys
        .iter()
        .map(|key| match key {
            Key::Legacy(k) => format!("legacy:{k}"),
            Key::Native(n) => format!("native:{n}"),
        })
        .collect();
    let args: Vec<&str> = std::iter::once("hold").chain(items.iter().map(String::as_str)).collect();
    let mut peer = spawn(qt, &args);
    let (rows, _) = peer.rows_until_ready();
    assert_eq!(rows.len(), keys.len(), "{rows:?}");
    let mut attached = Vec::new();
    for (key, row) in keys.iter().zip(&rows) {
        assert_eq!(row["created"], true, "Qt {} created {key:?}: {row}", qt.arg());
        let qt_lock = !matches!((qt, key), (Qt::Five, Key::Native(_)));
        assert_eq!(row["lock"], qt_lock, "Qt's own lock() of {key:?}: {row}");
        if !qt_lock {
            assert_eq!(row["lock_error"], 6, "LockError: {row}");
        }
        let mut shm = key.shm();
        attach_to_what_qt_holds(&mut shm, row, qt_lock);
        if let Key::Legacy(k) = key {
            // Qt also holds QSystemSemaphore(k): on Windows the lock's semaphore.
            let sem = SystemSemaphore::new(k, 0, SemaphoreMode::Open).unwrap();
            assert_eq!(sem.native_key(), &shm.native_key().lock_key(), "QSystemSemaphore({k:?}) is the lock");
            assert_eq!(sem.value().unwrap(), 1, "Qt's QSystemSemaphore({k:?}, 1)");
        }
        attached.push(shm);
    }

    // No namespace prefix is the session's namespace, `Local\`: both spellings name Qt's objects.
    for (qt_has, other) in [
        (format!("qipc-native-{u}"), format!("Local\\qipc-native-{u}")),
        (format!("Local\\qipc-local-{u}"), format!("qipc-local-{u}")),
    ] {
        let mut by_qt = Key::Native(qt_has.clone()).shm();
        let mut by_other = Key::Native(other.clone()).shm();
        by_qt.attach_timeout(AccessMode::ReadWrite, LOCK_WAIT).unwrap();
        by_other.attach_timeout(AccessMode::ReadWrite, LOCK_WAIT).unwrap_or_else(|e| panic!("{other:?}: {e}"));
        by_other.lock_timeout(LOCK_WAIT).unwrap().unwrap().write_at(0, other.as_bytes()).unwrap();
        assert_eq!(&by_qt.lock_timeout(LOCK_WAIT).unwrap().unwrap().to_vec()[..other.len()], other.as_bytes());
        // Qt 6's lock, or (Qt 5) qipc's own: one semaphore under both spellings too.
        let guard = by_other.lock_timeout(LOCK_WAIT).unwrap().unwrap();
        assert_eq!(lock_value(by_qt.native_key()), 0, "{other:?}'s lock is {qt_has:?}'s");
        drop(guard);
        by_other.detach_timeout(LOCK_WAIT).unwrap();
        by_qt.detach_timeout(LOCK_WAIT).unwrap();
    }

    for shm in &mut attached {
        shm.detach_timeout(LOCK_WAIT).unwrap();
    }
    peer.go();
    peer.finish();
    // Qt's handles closed with its process, and qipc's with the detaches: the objects are gone.
    for key in &keys {
        let mut shm = key.shm();
        let err = shm.attach(AccessMode::ReadOnly).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{key:?} after Qt exited: {err}");
        if let Key::Legacy(k) = key {
            let sem = SystemSemaphore::new(k, 0, SemaphoreMode::Open).unwrap();
            assert_eq!(sem.value().unwrap(), 0, "Qt's QSystemSemaphore({k:?}) went with Qt");
        }
    }
    eprintln!(
        "INTEROP objects Qt {} holds: {} legacy and {} windows: native keys (non-ASCII, /, %, Local\\, Global\\, \
         300+ characters) attached and locked by the same keys{}; no prefix = Local\\; NotFound after Qt exits",
        qt.arg(),
        legacy.len(),
        native.len(),
        if qt == Qt::Five { " (native keys: qipc's own lock, Qt 5 has none)" } else { "" }
    );
}

#[test]
fn objects_qt_holds_are_reached_by_the_same_keys_qt6() {
    objects_qt_holds(Qt::Six);
}

#[test]
fn objects_qt_holds_are_reached_by_the_same_keys_qt5() {
    objects_qt_holds(Qt::Five);
}

/// `platformSafeKey(k, Windows)` where Qt's cut to 260 UTF-16 units falls
/// inside a surrogate pair ("shm_" + 255 letters + U+1F600): Qt's mapping
/// name ends in a lone high surrogate, which a Rust string cannot hold, so
/// `NativeKey::platform_safe` drops it (as documented there) and names
/// another mapping; the lock, cut to 255 units first, is Qt's all the
/// same. A `Local\` platform-safe key of ordinary length reaches Qt's
/// `Local\shm_…` segment and lock.
#[test]
fn platform_safe_cut_inside_a_surrogate_pair_qt6() {
    let u = uniq();
    let cut = format!("{u}{}\u{1F600}", "d".repeat(255 - u.len()));
    let local = format!("Local\\{u}{}", "d".repeat(100));
    let mut peer = spawn(Qt::Six, &["hold", &format!("safe:{cut}"), &format!("safe:{local}")]);
    let (rows, _) = peer.rows_until_ready();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert_eq!((row["created"].as_bool(), row["lock"].as_bool()), (Some(true), Some(true)), "{row}");
    }

    let key = NativeKey::platform_safe(&cut, KeyType::Windows);
    assert_eq!(key.native_key().encode_utf16().count(), 259, "shm_ + 255 letters, without the half character");
    assert_eq!(key.native_key(), text(&rows[0]["native"]).trim_end_matches('\u{FFFD}'), "as PySide6 prints it");
    let mut shm = SharedMemory::with_native_key(key.clone());
    let err = shm.attach(AccessMode::ReadOnly).unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::NotFound,
        "Qt's name keeps the lone surrogate, qipc's does not (if qipc now keeps it, assert the attach works): {err}"
    );
    assert_eq!(lock_value(&key), 1, "Qt's lock, <first 255 units>_sem, is the one qipc names");

    let mut shm = SharedMemory::with_native_key(NativeKey::platform_safe(&local, KeyType::Windows));
    assert_eq!(shm.native_key().native_key(), format!("Local\\shm_{}", &local["Local\\".len()..]));
    attach_to_what_qt_holds(&mut shm, &rows[1], true);
    shm.detach_timeout(LOCK_WAIT).unwrap();
    peer.go();
    peer.finish();
    eprintln!(
        "INTEROP platformSafeKey cut inside a surrogate pair (Qt 6): qipc's name lacks Qt's lone surrogate \
         (NotFound; the lock is shared); Local\\ platform-safe key: attached and locked"
    );
}

// ---- Qt's writer / reader example ------------------------------------------------------------

/// Qt's writer (QDataStream << QString into create(1024)); qipc reads it,
/// writes its own answer, and Qt reads that back.
fn qt_writer_qipc_reader(qt: Qt, key: Key) {
    let mut peer = spawn(qt, &["write", key.args()[0], key.args()[1]]);
    let ready = peer.ready();
    assert_eq!(ready["size"], 4096, "Qt's size() is page-rounded");
    let mut shm = key.shm();
    shm.attach(AccessMode::ReadWrite).unwrap();
    assert_eq!(shm.size(), 4096, "so is qipc's");
    assert_eq!(read_qstring(&shm), "Hello from writer!");
    let answer = qstring_bytes("Hello from qipc!");
    shm.lock().unwrap().write_at(0, &answer).unwrap();
    peer.go();
    let rest = peer.finish();
    assert_eq!(rest[0]["text"], "Hello from qipc!", "{rest:?}");
    assert_eq!(rest[0]["status"], 0);
    shm.detach().unwrap();
    eprintln!("INTEROP writer Qt {} -> reader qipc ({}): ok", qt.arg(), key.kind());
}

/// qipc's writer (the example's code path); Qt's reader.
fn qipc_writer_qt_reader(qt: Qt, key: Key) {
    let mut shm = key.shm();
    shm.create(1024, AccessMode::ReadWrite).unwrap();
    shm.lock().unwrap().write_at(0, &qstring_bytes("Hello from writer!")).unwrap();
    let rows = run(qt, &["read", key.args()[0], key.args()[1]]);
    assert_eq!(rows[0]["text"], "Hello from writer!", "{rows:?}");
    assert_eq!(rows[0]["size"], 4096);
    let qt_locks = !matches!((qt, &key), (Qt::Five, Key::Native(_)));
    assert_eq!(rows[0]["locked"], qt_locks);
    eprintln!("INTEROP writer qipc -> reader Qt {} ({}): ok", qt.arg(), key.kind());
}

#[test]
fn writer_reader_qt6_legacy() {
    qt_writer_qipc_reader(Qt::Six, Key::legacy("SharedMemoryExample"));
    qipc_writer_qt_reader(Qt::Six, Key::legacy("SharedMemoryExample"));
}

#[test]
fn writer_reader_qt5_legacy() {
    qt_writer_qipc_reader(Qt::Five, Key::legacy("SharedMemoryExample"));
    qipc_writer_qt_reader(Qt::Five, Key::legacy("SharedMemoryExample"));
}

#[test]
fn writer_reader_qt6_native() {
    qt_writer_qipc_reader(Qt::Six, Key::Native(format!("Local\\qipc-writer-{}", uniq())));
    qipc_writer_qt_reader(Qt::Six, Key::native("writer"));
}

/// Qt 5 has no lock for native keys (its lock() fails), so data only; qipc
/// locks its own `<name>_sem`, which Qt 5 never looks at.
#[test]
fn writer_reader_qt5_native_without_a_shared_lock() {
    qt_writer_qipc_reader(Qt::Five, Key::native("writer5"));
    qipc_writer_qt_reader(Qt::Five, Key::native("writer5r"));
}

// ---- the image example --------------------------------------------------------------------------

/// Qt `from` streams a QImage into a segment; qipc decodes it with its own
/// codec, checks the pixels, encodes it again into a segment of its own, and
/// Qt `to` reads that image.
fn image_through_qipc(from: Qt, to: Qt) {
    let (w, h) = (64u32, 48u32);
    let key_a = Key::legacy("QSharedMemoryExample");
    let mut writer = spawn(from, &["image-write", key_a.args()[0], key_a.args()[1], "64", "48"]);
    let ready = writer.ready();
    let mut shm = key_a.shm();
    shm.attach(AccessMode::ReadOnly).unwrap();
    let bytes = shm.lock().unwrap().to_vec();
    let image = DataStreamReader::new(&bytes).read_qimage().unwrap();
    assert_eq!((image.width(), image.height()), (w, h));
    for (x, y) in [(0, 0), (63, 0), (0, 47), (63, 47), (10, 20)] {
        let want = 0xFF00_0000 | ((x * 255 / (w - 1)) << 16) | ((y * 255 / (h - 1)) << 8) | ((x * y) & 0xFF);
        assert_eq!(image.pixel(x, y), want, "pixel ({x}, {y})");
    }
    writer.go();
    writer.finish();
    shm.detach().unwrap();

    let mut out = DataStreamWriter::new();
    out.write_qimage(&image);
    let data = out.into_bytes();
    let key_b = Key::legacy("QSharedMemoryExample");
    let mut seg = key_b.shm();
    seg.create(data.len(), AccessMode::ReadWrite).unwrap();
    seg.lock().unwrap().write_at(0, &data).unwrap();
    let rows = run(to, &["image-read", key_b.args()[0], key_b.args()[1]]);
    let img = &rows[0];
    assert_eq!((img["width"].as_u64(), img["height"].as_u64()), (Some(64), Some(48)), "{img}");
    assert_eq!(img["null"], false);
    assert_eq!(img["status"], 0);
    assert_eq!(img["digest"], ready["digest"], "the pixels arrived unchanged");
    eprintln!(
        "INTEROP image Qt {} -> qipc (decode, encode {} bytes) -> Qt {} (legacy keys): format {}",
        from.arg(),
        data.len(),
        to.arg(),
        img["format"]
    );
}

#[test]
fn image_qt6_to_qipc_to_qt5() {
    image_through_qipc(Qt::Six, Qt::Five);
}

#[test]
fn image_qt5_to_qipc_to_qt6() {
    image_through_qipc(Qt::Five, Qt::Six);
}

/// qipc's own QImage (made from RGBA pixels, as the example does from a
/// file) read by both Qt versions.
#[test]
fn image_from_qipc_read_by_qt() {
    let (w, h) = (5u32, 3u32);
    let rgba: Vec<u8> = (0..w * h).flat_map(|i| [i as u8 * 10, 255 - i as u8, 7, 255]).collect();
    let image = QImage::from_rgba8(w, h, rgba).unwrap();
    let mut out = DataStreamWriter::new();
    out.write_qimage(&image);
    let data = out.into_bytes();
    for qt in [Qt::Six, Qt::Five] {
        let key = Key::legacy("QSharedMemoryExample");
        let mut seg = key.shm();
        seg.create(data.len(), AccessMode::ReadWrite).unwrap();
        seg.lock().unwrap().write_at(0, &data).unwrap();
        let rows = run(qt, &["image-read", key.args()[0], key.args()[1]]);
        assert_eq!((rows[0]["width"].as_u64(), rows[0]["height"].as_u64()), (Some(5), Some(3)), "{rows:?}");
        assert_eq!(rows[0]["locked"], true);
        eprintln!(
            "INTEROP image qipc -> Qt {} (legacy key): {} bytes, format {}",
            qt.arg(),
            data.len(),
            rows[0]["format"]
        );
    }
}

// ---- the lock -----------------------------------------------------------------------------------

fn lock_excludes_both_ways(qt: Qt, key: Key) {
    let mut shm = key.shm();
    shm.create(64, AccessMode::ReadWrite).unwrap();
    // Qt holds the lock: qipc cannot take it until Qt lets go.
    let mut holder = spawn(qt, &["lock-hold", key.args()[0], key.args()[1]]);
    assert_eq!(holder.ready()["locked"], true);
    assert!(shm.try_lock().unwrap().is_none(), "qipc got the lock Qt holds");
    assert!(shm.lock_timeout(Duration::from_millis(300)).unwrap().is_none());
    holder.go();
    assert_eq!(holder.next()["ok"], true);
    drop(shm.lock_timeout(LOCK_WAIT).unwrap().expect("qipc gets the lock Qt released"));
    holder.go();
    holder.finish();

    // qipc holds the lock: Qt's lock() waits until qipc lets go. (The peer's
    // attach() takes the lock too, so qipc locks once the peer is attached.)
    let mut waiter = spawn(qt, &["lock-wait", key.args()[0], key.args()[1]]);
    waiter.ready();
    let guard = shm.lock().unwrap();
    waiter.go();
    std::thread::sleep(Duration::from_millis(600));
    drop(guard);
    let locked = waiter.finish();
    let waited = locked[0]["waited"].as_f64().unwrap();
    assert_eq!(locked[0]["ok"], true);
    assert!(waited > 0.3, "Qt's lock() returned after {waited} s while qipc held the lock");
    eprintln!("INTEROP lock exclusion qipc <-> Qt {} ({}): both ways; Qt waited {waited:.2} s", qt.arg(), key.kind());
}

#[test]
fn lock_excludes_both_ways_qt6_legacy() {
    lock_excludes_both_ways(Qt::Six, Key::legacy("lock"));
}

#[test]
fn lock_excludes_both_ways_qt5_legacy() {
    lock_excludes_both_ways(Qt::Five, Key::legacy("lock"));
}

#[test]
fn lock_excludes_both_ways_qt6_native() {
    lock_excludes_both_ways(Qt::Six, Key::native("lock"));
}

/// The same exclusion while qipc's attach/detach wait for Qt's hold:
/// they take Qt's lock too, as Qt's own do.
#[test]
fn attach_and_detach_wait_for_a_qt_holder() {
    let key = Key::legacy("attach-wait");
    let mut holder = spawn(Qt::Six, &["lock-hold", key.args()[0], key.args()[1], "--create", "64"]);
    assert_eq!(holder.ready()["locked"], true);
    let mut shm = key.shm();
    assert_eq!(
        shm.attach_timeout(AccessMode::ReadOnly, Duration::from_millis(300)).unwrap_err().kind(),
        ErrorKind::LockError
    );
    holder.go();
    assert_eq!(holder.next()["ok"], true);
    shm.attach_timeout(AccessMode::ReadOnly, LOCK_WAIT).unwrap();
    holder.go();
    holder.finish();
    shm.detach_timeout(LOCK_WAIT).unwrap();
    eprintln!("INTEROP attach/detach take Qt 6's lock (legacy): ok");
}

#[test]
fn qt5_native_keys_have_no_lock() {
    let key = Key::native("nolock5");
    let mut shm = key.shm();
    shm.create(64, AccessMode::ReadWrite).unwrap();
    let mut holder = spawn(Qt::Five, &["lock-hold", key.args()[0], key.args()[1]]);
    let ready = holder.ready();
    assert_eq!(ready["locked"], false, "{ready}");
    assert_eq!(ready["error"], 6, "LockError");
    // qipc's lock is its own there: nothing excludes it.
    assert!(shm.try_lock().unwrap().is_some());
    holder.go();
    holder.go();
    holder.finish();
    eprintln!("INTEROP Qt 5 on a windows: native key: no lock (as Qt 5 has none), data shared");
}

fn increments(qt: Qt, key: Key) {
    const N: u64 = 10_000;
    let mut shm = key.shm();
    shm.create(8, AccessMode::ReadWrite).unwrap();
    let mut peer = spawn(qt, &["increment", key.args()[0], key.args()[1], &N.to_string()]);
    peer.ready();
    let t = Instant::now();
    peer.go();
    for _ in 0..N {
        let mut guard = shm.lock().unwrap();
        let mut b = [0u8; 8];
        guard.read_at(0, &mut b).unwrap();
        guard.write_at(0, &(u64::from_le_bytes(b) + 1).to_le_bytes()).unwrap();
    }
    let qipc_done = t.elapsed();
    let done = peer.finish();
    let mut b = [0u8; 8];
    shm.lock().unwrap().read_at(0, &mut b).unwrap();
    let total = u64::from_le_bytes(b);
    eprintln!(
        "INTEROP increments qipc {N} + Qt {} {N} ({}): total {total}; qipc took {qipc_done:?}, Qt {:.2} s, wall {:?}",
        qt.arg(),
        key.kind(),
        done[0]["seconds"].as_f64().unwrap(),
        t.elapsed()
    );
    assert_eq!(done[0]["lock_failures"], 0);
    assert_eq!(total, 2 * N);
}

#[test]
fn increments_20000_qt6_legacy() {
    increments(Qt::Six, Key::legacy("counter"));
}

#[test]
fn increments_20000_qt5_legacy() {
    increments(Qt::Five, Key::legacy("counter"));
}

#[test]
fn increments_20000_qt6_native() {
    increments(Qt::Six, Key::Native(format!("Local\\qipc-counter-{}", uniq())));
}

/// A Qt process killed while it holds the lock keeps it; qipc's timeouts
/// say so instead of hanging, and an explicit release recovers it.
#[test]
fn a_killed_qt_holder_keeps_the_lock() {
    let key = Key::legacy("dead-holder");
    let mut shm = key.shm();
    shm.create(64, AccessMode::ReadWrite).unwrap();
    let mut holder = spawn(Qt::Six, &["lock-hold", key.args()[0], key.args()[1]]);
    assert_eq!(holder.ready()["locked"], true);
    holder.child.kill().unwrap(); // TerminateProcess
    holder.child.wait().unwrap();
    assert!(shm.lock_timeout(Duration::from_millis(500)).unwrap().is_none(), "the dead holder's count came back");
    assert_eq!(shm.detach_timeout(Duration::from_millis(200)).unwrap_err().kind(), ErrorKind::LockError);
    let lock = SystemSemaphore::with_native_key(shm.native_key().lock_key(), 1, SemaphoreMode::Open).unwrap();
    lock.release(1).unwrap();
    assert!(shm.try_lock().unwrap().is_some());
    shm.detach().unwrap();
    eprintln!("INTEROP killed Qt 6 holder (legacy): lock stays taken, timeouts report it, a release recovers it");
}

// ---- sizes, errors, lifetime --------------------------------------------------------------------

fn sizes_errors_and_lifetime(qt: Qt) {
    // qipc creates 100 bytes: Qt sees a page, and cannot create it again.
    let key = Key::legacy("sizes");
    let mut shm = key.shm();
    shm.create(100, AccessMode::ReadWrite).unwrap();
    assert_eq!(shm.size(), 4096);
    let rows = run(qt, &["attach", key.args()[0], key.args()[1], "--readonly"]);
    assert_eq!((rows[0]["ok"].as_bool(), rows[0]["size"].as_u64()), (Some(true), Some(4096)), "{rows:?}");
    let rows = run(qt, &["create", key.args()[0], key.args()[1], "--size", "100"]);
    assert_eq!(rows[0]["error"], 4, "AlreadyExists");
    drop(shm);
    let rows = run(qt, &["attach", key.args()[0], key.args()[1]]);
    assert_eq!(rows[0]["error"], 5, "NotFound: the segment went with qipc's last handle");

    // Qt creates: qipc's create is AlreadyExists, its attach sees a page;
    // once Qt has gone, the segment has too.
    let key = Key::native("size");
    let mut peer = spawn(qt, &["lock-hold", key.args()[0], key.args()[1], "--create", "100"]);
    peer.ready();
    // Qt 6 holds the lock until the first go (Qt 5 has none on a native key).
    peer.go();
    assert_eq!(peer.next()["event"], "unlocked");
    let mut shm = key.shm();
    assert_eq!(shm.create(100, AccessMode::ReadWrite).unwrap_err().kind(), ErrorKind::AlreadyExists);
    shm.attach(AccessMode::ReadOnly).unwrap();
    assert_eq!(shm.size(), 4096);
    peer.go();
    peer.finish();
    assert!(shm.is_attached(), "our handle keeps the segment alive");
    assert!(SharedMemory::remove(shm.native_key()).unwrap(), "remove reports it, and removes nothing");
    assert_eq!(shm.lock().unwrap().len(), 4096);
    shm.detach().unwrap();
    assert!(!SharedMemory::remove(shm.native_key()).unwrap());
    eprintln!(
        "INTEROP sizes/errors/lifetime with Qt {}: page-rounded sizes agree, AlreadyExists/NotFound both ways",
        qt.arg()
    );
}

#[test]
fn sizes_errors_and_lifetime_qt6() {
    sizes_errors_and_lifetime(Qt::Six);
}

#[test]
fn sizes_errors_and_lifetime_qt5() {
    sizes_errors_and_lifetime(Qt::Five);
}

/// QSystemSemaphore and qipc's SystemSemaphore share counts: legacy keys
/// with both Qt versions, a native key with Qt 6.
#[test]
fn system_semaphores_interoperate() {
    for (qt, key) in [(Qt::Six, Key::legacy("sem")), (Qt::Five, Key::legacy("sem")), (Qt::Six, Key::native("sem"))] {
        let sem = match &key {
            Key::Legacy(k) => SystemSemaphore::new(k, 0, SemaphoreMode::Create).unwrap(),
            Key::Native(n) => {
                SystemSemaphore::with_native_key(NativeKey::new(n.as_str(), KeyType::Windows), 0, SemaphoreMode::Create)
                    .unwrap()
            }
        };
        let mut peer = spawn(qt, &["sem-acquire", key.args()[0], key.args()[1]]);
        std::thread::sleep(Duration::from_millis(300));
        sem.release(1).unwrap(); // wakes Qt's acquire()
        assert_eq!(peer.ready()["acquired"], true);
        assert!(!sem.try_acquire().unwrap(), "Qt took the count");
        peer.go();
        peer.finish();
        assert!(sem.acquire_timeout(Duration::from_secs(10)).unwrap(), "Qt's release(1) gave it back");
        eprintln!("INTEROP SystemSemaphore <-> QSystemSemaphore Qt {} ({}): counts shared", qt.arg(), key.kind());
    }
}

/// Qt's empty key: KeyError in qipc as in Qt's create/attach.
#[test]
fn empty_key_is_a_key_error_as_in_qt() {
    for qt in [Qt::Six, Qt::Five] {
        let mut peer = spawn(qt, &["empty-key"]);
        let ready = peer.ready();
        assert_eq!(ready["error"], 3, "KeyError in Qt {}", qt.arg());
        let mut shm = SharedMemory::new("");
        assert_eq!(shm.create(8, AccessMode::ReadWrite).unwrap_err().kind(), ErrorKind::KeyError);
        assert_eq!(shm.attach(AccessMode::ReadOnly).unwrap_err().kind(), ErrorKind::KeyError);
        peer.go();
        peer.finish();
    }
    eprintln!("INTEROP empty key: KeyError in qipc and in Qt 5/6");
}

// ---- the example programs on Windows --------------------------------------------------------

/// The example binaries, built for this target before the tests run
/// (scripts/test-windows.sh builds them; Wine cannot run the Linux cargo).
fn example(name: &str) -> Command {
    // This binary is <target>/<triple>/<profile>/deps/windows_interop-<hash>.exe.
    let exe = std::env::current_exe().expect("current_exe");
    let path = exe.parent().and_then(|d| d.parent()).expect("<profile>").join("examples").join(format!("{name}.exe"));
    assert!(
        path.exists(),
        "{} is missing: build the examples first (cargo build --target x86_64-pc-windows-gnu -p qipc --examples --features qimage)",
        path.display()
    );
    let mut cmd = Command::new(path);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// Runs an example to its end; (success, stdout, stderr).
fn run_example(name: &str, args: &[&str]) -> (bool, String, String) {
    let out = example(name).args(args).stdin(Stdio::null()).output().expect("run the example");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// A long-running example, killed (TerminateProcess) when dropped.
struct Running {
    child: Child,
    // Kept open, so that the program's writes never fail on a closed pipe.
    _out: BufReader<ChildStdout>,
}

impl Running {
    #[allow(clippy::zombie_processes)] // the child is waited for in Drop
    fn start(name: &str, args: &[&str], until: &str) -> Running {
        let mut child = example(name).args(args).spawn().expect("start the example");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap() == 0 {
                let mut err = String::new();
                let _ = child.stderr.take().unwrap().read_to_string(&mut err);
                let _ = child.kill();
                let _ = child.wait();
                panic!("{name} ended before printing {until:?}:\n{seen}\n{err}");
            }
            seen.push_str(&line);
            if line.contains(until) {
                return Running { child, _out: out };
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_writer_and_reader_programs_with_qt() {
    let key = format!("SharedMemoryExample-{}", uniq());
    let writer = Running::start("writer", &[&key], "waiting for Ctrl-C or Ctrl-Break");
    for qt in [Qt::Six, Qt::Five] {
        let rows = run(qt, &["read", "--key", &key]);
        assert_eq!(rows[0]["text"], "Hello from writer!", "Qt {} reads the writer program: {rows:?}", qt.arg());
    }
    let (ok, out, _) = run_example("writer", &[&key]);
    assert!(!ok && out.is_empty(), "a second writer is refused");
    drop(writer); // TerminateProcess: the kernel closes its handles
    let rows = run(Qt::Six, &["attach", "--key", &key]);
    assert_eq!(rows[0]["error"], 5, "the killed writer's segment went with it");
    let (ok, out, _) = run_example("writer", &["--remove", &key]);
    assert!(ok && out.contains("nothing to remove"), "{out}");

    for qt in [Qt::Six, Qt::Five] {
        let key = format!("SharedMemoryExample-{}", uniq());
        let mut peer = spawn(qt, &["write", "--key", &key]);
        peer.ready();
        let (ok, out, err) = run_example("reader", &[&key]);
        assert!(ok, "{out}{err}");
        assert!(out.contains("Data read from shared memory: \"Hello from writer!\""), "{out}");
        peer.go();
        peer.finish();
    }
    eprintln!("INTEROP programs: writer -> Qt 6/Qt 5 readers, Qt 6/Qt 5 writers -> reader (legacy keys): ok");
}

#[test]
fn the_image_share_program_with_qt() {
    let dir = std::env::temp_dir().join(format!("qipc-image-{}", uniq()));
    std::fs::create_dir_all(&dir).unwrap();
    // A 9 x 4 RGBA PNG, loaded by the program into a legacy segment; Qt reads it.
    let png_path = dir.join("in.png");
    let rgba: Vec<u8> = (0..36u32).flat_map(|i| [(i * 7) as u8, (255 - i * 5) as u8, 40, 255]).collect();
    let png = QImage::from_rgba8(9, 4, rgba).unwrap().to_png();
    std::fs::write(&png_path, png).unwrap();
    let key = format!("QSharedMemoryExample-{}", uniq());
    let png_arg = png_path.to_str().unwrap();
    let loaded = Running::start("image_share", &["load", png_arg, "--key", &key], "waiting for");
    for qt in [Qt::Six, Qt::Five] {
        let rows = run(qt, &["image-read", "--key", &key]);
        assert_eq!((rows[0]["width"].as_u64(), rows[0]["height"].as_u64()), (Some(9), Some(4)), "{rows:?}");
        assert_eq!(rows[0]["format"], "Format_ARGB32", "an RGBA PNG, as Qt's loader gives it");
    }
    drop(loaded);
    // Qt's example (load side) on Qt 6's native key; the program displays it.
    let native = format!("qipc-image-{}", uniq());
    let mut peer = spawn(Qt::Six, &["image-write", "--native", &native, "20", "10"]);
    peer.ready();
    let out_path = dir.join("out.png");
    let (ok, out, err) = run_example(
        "image_share",
        &["display", "--native", &format!("windows:{native}"), "--out", out_path.to_str().unwrap()],
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("20") && out.contains("10"), "{out}");
    let back = QImage::from_png(&std::fs::read(&out_path).unwrap()).unwrap();
    assert_eq!((back.width(), back.height()), (20, 10));
    peer.go();
    peer.finish();
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "INTEROP programs: image_share load -> Qt 6/Qt 5 (legacy), Qt 6 (windows: native) -> image_share display: ok"
    );
}

#[test]
fn the_single_instance_program() {
    let key = format!("SingleInstanceExample-{}", uniq());
    let first = Running::start("single_instance", &["--key", &key], "running");
    let (ok, _, err) = run_example("single_instance", &["--key", &key]);
    assert!(!ok && err.contains("already running"), "{err}");
    drop(first); // killed: Windows frees its marker with it
    let again = Running::start("single_instance", &["--key", &key], "running");
    drop(again);
    eprintln!("INTEROP programs: single_instance refuses a second instance and starts after a kill");
}
