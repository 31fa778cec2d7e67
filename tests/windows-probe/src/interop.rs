//! qipc's Win32 wrappers against real Windows Qt, both directions: PySide6
//! (Qt 6.12) and PyQt5 (Qt 5.15.2) under Windows CPython in the same Wine
//! prefix, driven through qipc/tests/qt/win_peer.py.
//!
//! Run through scripts/wine-run, which sets QIPC_WIN_PYTHON and
//! QIPC_WIN_ROOT; without them every test here fails (a missing peer is a
//! failure, never a skip).

use std::{
    io::{BufRead, BufReader, Read, Write},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::sys::windows::{
    create_mapping, create_semaphore, open_mapping, open_semaphore, Access, FileMapping, Semaphore, View,
    QT_SEMAPHORE_MAX,
};
use crate::sys::windows_names::{codes, legacy_name, native_lock_name, platform_safe_name, Purpose, WinName, MAX_PATH};

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

    /// Lines up to and including the first {"event": "ready"}.
    fn ready(&mut self) -> (Vec<Value>, Value) {
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

/// Runs a peer to its end with no input and returns its lines.
fn run(qt: Qt, args: &[&str]) -> Vec<Value> {
    spawn(qt, args).finish()
}

fn units(v: &Value) -> WinName {
    let u: Vec<u16> = v["units"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u16).collect();
    WinName::from_units(&u)
}

/// A key as the tests hand it to Qt and to the wrappers.
#[derive(Debug, Clone)]
enum Key {
    Legacy(String),
    Native(String),
}

impl Key {
    fn args(&self) -> [&str; 2] {
        match self {
            Key::Legacy(k) => ["--key", k],
            Key::Native(n) => ["--native", n],
        }
    }

    fn mapping_name(&self) -> WinName {
        match self {
            Key::Legacy(k) => legacy_name(k, Purpose::SharedMemory),
            Key::Native(n) => WinName::new(n),
        }
    }

    /// The semaphore Qt 6 locks (Qt 5 locks the same for legacy keys, none for native ones).
    fn lock_name(&self) -> WinName {
        match self {
            Key::Legacy(k) => legacy_name(k, Purpose::Semaphore),
            Key::Native(n) => native_lock_name(&WinName::new(n)),
        }
    }
}

/// A segment held by this process, with Qt's lock.
struct Segment {
    _mapping: FileMapping,
    view: View,
    lock: Semaphore,
}

impl Segment {
    /// What QSharedMemory::create does: open-or-create the lock (count 1, maximum MAXLONG),
    /// lock, create the mapping (an existing one is a failure), map it, unlock.
    fn create(key: &Key, size: u64) -> Segment {
        let lock = create_semaphore(&key.lock_name(), 1, QT_SEMAPHORE_MAX).unwrap().into_inner();
        assert!(lock.wait(Some(Duration::from_secs(10))).unwrap());
        let created = create_mapping(&key.mapping_name(), size).unwrap();
        assert!(!created.existed(), "{key:?} exists already");
        let mapping = created.into_inner();
        let view = mapping.map(Access::ReadWrite).unwrap();
        lock.release(1).unwrap();
        Segment { _mapping: mapping, view, lock }
    }

    /// What QSharedMemory::attach does.
    fn attach(key: &Key) -> Segment {
        let lock = create_semaphore(&key.lock_name(), 1, QT_SEMAPHORE_MAX).unwrap().into_inner();
        assert!(lock.wait(Some(Duration::from_secs(10))).unwrap());
        let mapping = open_mapping(&key.mapping_name(), Access::ReadWrite).unwrap();
        let view = mapping.map(Access::ReadWrite).unwrap();
        lock.release(1).unwrap();
        Segment { _mapping: mapping, view, lock }
    }

    fn lock(&self) {
        assert!(self.lock.wait(Some(Duration::from_secs(30))).unwrap(), "lock not free within 30 s");
    }

    fn unlock(&self) {
        self.lock.release(1).unwrap();
    }

    fn read(&self, n: usize) -> Vec<u8> {
        assert!(n <= self.view.len());
        // SAFETY: the view is at least n bytes long; the bytes are copied out at once.
        unsafe { std::slice::from_raw_parts(self.view.as_ptr(), n).to_vec() }
    }

    fn write(&self, bytes: &[u8]) {
        assert!(bytes.len() <= self.view.len());
        // SAFETY: the view is at least that long, and does not overlap `bytes`.
        unsafe { self.view.as_ptr().copy_from_nonoverlapping(bytes.as_ptr(), bytes.len()) };
    }
}

/// `QDataStream << QString`: byte length as a big-endian quint32, then UTF-16BE.
fn qstring(s: &str) -> Vec<u8> {
    let u: Vec<u16> = s.encode_utf16().collect();
    let mut b = ((u.len() * 2) as u32).to_be_bytes().to_vec();
    for x in u {
        b.extend_from_slice(&x.to_be_bytes());
    }
    b
}

// ---- names ------------------------------------------------------------------------------------

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

fn short(s: &str) -> String {
    if s.chars().count() > 70 {
        format!("{}…({} units)", s.chars().take(60).collect::<String>(), s.encode_utf16().count())
    } else {
        s.to_string()
    }
}

/// PySide6 hands Python a QString that ends in an unpaired surrogate without that surrogate;
/// what the kernel sees is checked by `platform_safe_cut_inside_a_surrogate_pair_qt6`.
fn as_printed(n: &WinName) -> WinName {
    match n.units().split_last() {
        Some((&last, rest)) if (0xD800..0xDC00).contains(&last) => WinName::from_units(rest),
        _ => n.clone(),
    }
}

fn names_match(qt: Qt) {
    let keys = key_table();
    let args: Vec<&str> = std::iter::once("names").chain(keys.iter().map(String::as_str)).collect();
    let rows = run(qt, &args);
    assert_eq!(rows.len(), keys.len());
    for (k, row) in keys.iter().zip(&rows) {
        assert_eq!(units(&row["key"]), WinName::new(k), "the key reached Qt unchanged");
        let shm = legacy_name(k, Purpose::SharedMemory);
        assert_eq!(units(&row["shm"]), shm, "QSharedMemory({k:?}).nativeKey() on Qt {}", row["qt"]);
        eprintln!("NAMES qt={} key={:?} shm={}", row["qt"], short(k), short(&shm.to_string()));
        if qt == Qt::Six {
            let sem = legacy_name(k, Purpose::Semaphore);
            assert_eq!(units(&row["sem"]), sem, "QSystemSemaphore({k:?})");
            assert_eq!(units(&row["shm_legacy_native_key"]), shm);
            assert_eq!(units(&row["sem_legacy_native_key"]), sem);
            assert_eq!(row["legacy_type"], 0x101, "legacyDefaultTypeForOs() is Windows");
            let ps_shm = platform_safe_name(k, Purpose::SharedMemory);
            let ps_sem = platform_safe_name(k, Purpose::Semaphore);
            assert_eq!(units(&row["shm_platform_safe"]), as_printed(&ps_shm), "QSharedMemory::platformSafeKey({k:?})");
            assert_eq!(
                units(&row["sem_platform_safe"]),
                as_printed(&ps_sem),
                "QSystemSemaphore::platformSafeKey({k:?})"
            );
            eprintln!(
                "NAMES6 key={:?} sem={} platformSafe={} / {} lock(native)={} toString={} legacyToString={}",
                short(k),
                short(&sem.to_string()),
                short(&ps_shm.to_string()),
                short(&ps_sem.to_string()),
                short(&native_lock_name(&WinName::new(k)).to_string()),
                short(row["native_to_string"].as_str().unwrap()),
                short(row["shm_legacy_to_string"].as_str().unwrap()),
            );
        }
    }
}

#[test]
fn names_match_qt6() {
    names_match(Qt::Six);
}

#[test]
fn names_match_qt5() {
    names_match(Qt::Five);
}

/// Qt creates the objects; the wrappers open them by the names qipc derives.
fn objects_have_the_derived_names(qt: Qt) {
    let u = uniq();
    let legacy = [
        format!("SomeKey-{u}"),
        format!("Grüße {u}"),
        format!("/{u}"),
        format!("%{u}"),
        format!("Local\\x{u}"),
        format!("Global\\x{u}"),
        format!("{}{u}", "a".repeat(300)),
    ];
    let native = [
        format!("qipc-probe-native-{u}"),
        format!("Local\\qipc-probe-local-{u}"),
        format!("Global\\qipc-probe-global-{u}"),
        format!("Grüße-{u}"),
        format!("{}-{u}", "n".repeat(300)),
    ];
    let items: Vec<String> =
        legacy.iter().map(|k| format!("legacy:{k}")).chain(native.iter().map(|n| format!("native:{n}"))).collect();
    let args: Vec<&str> = std::iter::once("hold").chain(items.iter().map(String::as_str)).collect();
    let mut peer = spawn(qt, &args);
    let (rows, _) = peer.ready();
    for (k, row) in legacy.iter().zip(&rows) {
        assert_eq!(row["created"], true, "{row}");
        assert_eq!(row["lock"], true, "{row}");
        let shm = legacy_name(k, Purpose::SharedMemory);
        assert_eq!(units(&row["native"]), shm);
        let view = open_mapping(&shm, Access::ReadWrite).unwrap().map(Access::ReadOnly).unwrap();
        assert_eq!(view.len(), 4096, "create(64) is one page");
        open_semaphore(&legacy_name(k, Purpose::Semaphore)).unwrap_or_else(|e| panic!("lock of {k:?}: {e}"));
        eprintln!("HOLD qt={} legacy {:?}: mapping {} and semaphore found", qt.arg(), short(k), shm.len());
    }
    for (n, row) in native.iter().zip(&rows[legacy.len()..]) {
        let name = WinName::new(n);
        eprintln!(
            "HOLD qt={} native {:?} ({} units): created={} error={} {:?} lock={}",
            qt.arg(),
            short(n),
            name.len(),
            row["created"],
            row["error"],
            row["error_string"].as_str().unwrap_or(""),
            row["lock"]
        );
        assert_eq!(row["created"], true, "{row}");
        open_mapping(&name, Access::ReadWrite).unwrap();
        let lock = open_semaphore(&native_lock_name(&name));
        match qt {
            Qt::Six => {
                assert_eq!(row["lock"], true, "{row}");
                lock.unwrap_or_else(|e| panic!("Qt 6's lock of native {n:?}: {e}"));
            }
            Qt::Five => {
                assert_eq!(row["lock"], false, "Qt 5 has no lock for native keys: {row}");
                assert_eq!(row["lock_error"], 6, "LockError: {row}");
                assert_eq!(lock.unwrap_err().raw_os_error(), Some(codes::FILE_NOT_FOUND as i32));
            }
        }
    }
    // Without a namespace prefix a name is in the session's namespace: the same as Local\.
    open_mapping(&WinName::new(&format!("qipc-probe-local-{u}")), Access::ReadWrite).expect("Local\\ = no prefix");
    open_mapping(&WinName::new(&format!("Local\\qipc-probe-native-{u}")), Access::ReadWrite)
        .expect("no prefix = Local\\");
    peer.go();
    peer.finish();
    // Qt's handles are closed with its process: the objects are gone.
    let gone = open_mapping(&legacy_name(&legacy[0], Purpose::SharedMemory), Access::ReadWrite).unwrap_err();
    assert_eq!(gone.raw_os_error(), Some(codes::FILE_NOT_FOUND as i32));
}

#[test]
fn platform_safe_cut_inside_a_surrogate_pair_qt6() {
    // "shm_" + 255 units + U+1F600: Qt cuts at 260 units, between the two halves of the pair.
    let u = uniq();
    let key = format!("{u}{}\u{1F600}", "d".repeat(255 - u.len()));
    let short_key = format!("{u}{}", "d".repeat(100));
    let mut peer = spawn(Qt::Six, &["hold", &format!("safe:{key}"), &format!("safe:Local\\{short_key}")]);
    let (rows, _) = peer.ready();
    assert_eq!(rows[0]["created"], true, "{}", rows[0]);
    let name = platform_safe_name(&key, Purpose::SharedMemory);
    assert_eq!(name.len(), MAX_PATH);
    open_mapping(&name, Access::ReadOnly).expect("the 260-unit name, ending in a lone high surrogate");
    let without = as_printed(&name);
    assert!(open_mapping(&without, Access::ReadOnly).is_err(), "the surrogate is part of the kernel name");
    let local = platform_safe_name(&format!("Local\\{short_key}"), Purpose::SharedMemory);
    assert_eq!(local.to_string(), format!("Local\\shm_{short_key}"));
    open_mapping(&local, Access::ReadOnly).expect("Local\\shm_...");
    peer.go();
    peer.finish();
}

#[test]
fn objects_have_the_derived_names_qt6() {
    objects_have_the_derived_names(Qt::Six);
}

#[test]
fn objects_have_the_derived_names_qt5() {
    objects_have_the_derived_names(Qt::Five);
}

// ---- writer / reader ----------------------------------------------------------------------------

fn qt_writer_rust_reader(qt: Qt, key: Key) {
    let mut peer = spawn(qt, &["write", key.args()[0], key.args()[1]]);
    let (_, ready) = peer.ready();
    let expected = qstring("Hello from writer!");
    assert_eq!(ready["bytes"], expected.len());
    assert_eq!(ready["size"], 4096, "Qt's size() is page-rounded");
    let seg = Segment::attach(&key);
    seg.lock();
    assert_eq!(seg.read(expected.len()), expected);
    seg.write(&qstring("Hello from qipc!"));
    seg.unlock();
    peer.go();
    let rest = peer.finish();
    assert_eq!(rest[0]["text"], "Hello from qipc!", "{rest:?}");
    assert_eq!(rest[0]["status"], 0);
}

fn rust_writer_qt_reader(qt: Qt, key: Key) {
    let seg = Segment::create(&key, 1024);
    seg.lock();
    seg.write(&qstring("Hello from writer!"));
    seg.unlock();
    let rows = run(qt, &["read", key.args()[0], key.args()[1]]);
    assert_eq!(rows[0]["text"], "Hello from writer!", "{rows:?}");
    assert_eq!(rows[0]["size"], 4096);
    assert_eq!(rows[0]["locked"], !matches!((qt, &key), (Qt::Five, Key::Native(_))));
}

#[test]
fn writer_reader_qt6_legacy() {
    qt_writer_rust_reader(Qt::Six, Key::Legacy(format!("SharedMemoryExample-{}", uniq())));
    rust_writer_qt_reader(Qt::Six, Key::Legacy(format!("SharedMemoryExample-{}", uniq())));
}

#[test]
fn writer_reader_qt5_legacy() {
    qt_writer_rust_reader(Qt::Five, Key::Legacy(format!("SharedMemoryExample-{}", uniq())));
    rust_writer_qt_reader(Qt::Five, Key::Legacy(format!("SharedMemoryExample-{}", uniq())));
}

#[test]
fn writer_reader_qt6_native() {
    qt_writer_rust_reader(Qt::Six, Key::Native(format!("Local\\qipc-writer-{}", uniq())));
    rust_writer_qt_reader(Qt::Six, Key::Native(format!("qipc-writer-{}", uniq())));
}

#[test]
fn writer_reader_qt5_native_without_lock() {
    // Qt 5's writer cannot lock a native key (its lock() fails), so only Qt -> Rust -> Qt data.
    let key = Key::Native(format!("qipc-writer5-{}", uniq()));
    let mut peer = spawn(Qt::Five, &["write", key.args()[0], key.args()[1]]);
    let (_, ready) = peer.ready();
    assert_eq!(ready["locked"], false);
    let mapping = open_mapping(&key.mapping_name(), Access::ReadWrite).unwrap();
    let view = mapping.map(Access::ReadWrite).unwrap();
    let expected = qstring("Hello from writer!");
    // SAFETY: the view is a page long; the writer is done writing (it said ready).
    let got = unsafe { std::slice::from_raw_parts(view.as_ptr(), expected.len()).to_vec() };
    assert_eq!(got, expected);
    rust_writer_qt_reader(Qt::Five, Key::Native(format!("qipc-writer5r-{}", uniq())));
    peer.go();
    assert_eq!(peer.finish()[0]["text"], "Hello from writer!");
}

// ---- the image example ------------------------------------------------------------------------

/// Qt `from` streams a QImage into a segment; Rust copies the bytes into a segment of its own;
/// Qt `to` reads the image from there.
fn image_through_rust(from: Qt, to: Qt) {
    let key_a = Key::Legacy(format!("QSharedMemoryExample-{}", uniq()));
    let mut writer = spawn(from, &["image-write", key_a.args()[0], key_a.args()[1], "64", "48"]);
    let (_, ready) = writer.ready();
    let n = ready["bytes"].as_u64().unwrap() as usize;
    assert_eq!(ready["size"].as_u64().unwrap() as usize, n.div_ceil(4096) * 4096);
    let seg = Segment::attach(&key_a);
    seg.lock();
    let data = seg.read(n);
    seg.unlock();
    assert_eq!(&data[..8], b"\0\0\0\x01\x89PNG", "QImage in a QDataStream: qint32 1, then a PNG");
    writer.go();
    writer.finish();

    let key_b = Key::Legacy(format!("QSharedMemoryExample-{}", uniq()));
    let out = Segment::create(&key_b, n as u64);
    out.lock();
    out.write(&data);
    out.unlock();
    let rows = run(to, &["image-read", key_b.args()[0], key_b.args()[1]]);
    let img = &rows[0];
    assert_eq!((img["width"].as_u64(), img["height"].as_u64()), (Some(64), Some(48)), "{img}");
    assert_eq!(img["null"], false);
    assert_eq!(img["digest"], ready["digest"], "the pixels arrived unchanged");
    eprintln!("IMAGE Qt {} -> qipc -> Qt {}: {n} bytes, format {}", from.arg(), to.arg(), img["format"]);
}

#[test]
fn image_qt6_to_qt5_through_rust() {
    image_through_rust(Qt::Six, Qt::Five);
}

#[test]
fn image_qt5_to_qt6_through_rust() {
    image_through_rust(Qt::Five, Qt::Six);
}

// ---- the lock -----------------------------------------------------------------------------------

fn lock_excludes_both_ways(qt: Qt, key: Key) {
    let seg = Segment::create(&key, 64);
    // Qt holds the lock: Rust cannot take it until Qt lets go.
    let mut holder = spawn(qt, &["lock-hold", key.args()[0], key.args()[1]]);
    let (_, ready) = holder.ready();
    assert_eq!(ready["locked"], true, "{ready}");
    assert!(!seg.lock.wait(Some(Duration::from_millis(300))).unwrap(), "Rust got the lock Qt holds");
    holder.go();
    assert_eq!(holder.next()["ok"], true);
    assert!(seg.lock.wait(Some(Duration::from_secs(10))).unwrap(), "Rust did not get the lock Qt released");
    seg.unlock();
    holder.go();
    holder.finish();

    // Rust holds the lock: Qt's lock() waits until Rust lets go. (The peer's attach() takes
    // the lock too, so Rust locks only once the peer is attached.)
    let mut waiter = spawn(qt, &["lock-wait", key.args()[0], key.args()[1]]);
    waiter.ready();
    seg.lock();
    waiter.go();
    let held = Instant::now();
    std::thread::sleep(Duration::from_millis(600));
    seg.unlock();
    let locked = waiter.finish();
    let waited = locked[0]["waited"].as_f64().unwrap();
    assert_eq!(locked[0]["ok"], true);
    eprintln!("LOCK Qt {} {key:?}: Qt waited {waited:.3} s for qipc's {:?} hold", qt.arg(), held.elapsed());
    assert!(waited > 0.3, "Qt's lock() returned after {waited} s while Rust held the lock");
}

#[test]
fn lock_excludes_both_ways_qt6_legacy() {
    lock_excludes_both_ways(Qt::Six, Key::Legacy(format!("lock-{}", uniq())));
}

#[test]
fn lock_excludes_both_ways_qt5_legacy() {
    lock_excludes_both_ways(Qt::Five, Key::Legacy(format!("lock-{}", uniq())));
}

#[test]
fn lock_excludes_both_ways_qt6_native() {
    lock_excludes_both_ways(Qt::Six, Key::Native(format!("qipc-lock-{}", uniq())));
}

#[test]
fn qt5_native_keys_have_no_lock() {
    let key = Key::Native(format!("qipc-nolock5-{}", uniq()));
    let _seg = Segment::create(&key, 64);
    let mut holder = spawn(Qt::Five, &["lock-hold", key.args()[0], key.args()[1]]);
    let (_, ready) = holder.ready();
    assert_eq!(ready["locked"], false, "{ready}");
    assert_eq!(ready["error"], 6, "LockError");
    assert_eq!(ready["error_string"], "QSharedMemory::lock: unable to lock");
    holder.go();
    holder.go();
    holder.finish();
}

fn increments(qt: Qt, key: Key) {
    const N: u64 = 10_000;
    let seg = Segment::create(&key, 8);
    let mut peer = spawn(qt, &["increment", key.args()[0], key.args()[1], &N.to_string()]);
    peer.ready();
    let t = Instant::now();
    peer.go();
    for _ in 0..N {
        seg.lock();
        let v = u64::from_le_bytes(seg.read(8).try_into().unwrap());
        seg.write(&(v + 1).to_le_bytes());
        seg.unlock();
    }
    let rust_done = t.elapsed();
    let done = peer.finish();
    seg.lock();
    let total = u64::from_le_bytes(seg.read(8).try_into().unwrap());
    seg.unlock();
    eprintln!(
        "INCREMENTS Qt {} {key:?}: total {total}; qipc's {N} took {rust_done:?}, Qt's {:.2} s (wall {:?})",
        qt.arg(),
        done[0]["seconds"].as_f64().unwrap(),
        t.elapsed()
    );
    assert_eq!(done[0]["lock_failures"], 0);
    assert_eq!(total, 2 * N);
}

#[test]
fn increments_20000_qt6_legacy() {
    increments(Qt::Six, Key::Legacy(format!("counter-{}", uniq())));
}

#[test]
fn increments_20000_qt5_legacy() {
    increments(Qt::Five, Key::Legacy(format!("counter-{}", uniq())));
}

#[test]
fn increments_20000_qt6_native() {
    increments(Qt::Six, Key::Native(format!("Local\\qipc-counter-{}", uniq())));
}

/// A holder that dies keeps the count it took: Windows gives nothing back.
#[test]
fn a_dead_lock_holder_keeps_the_lock() {
    let key = Key::Legacy(format!("dead-holder-{}", uniq()));
    let seg = Segment::create(&key, 64);
    let mut holder = spawn(Qt::Six, &["lock-hold", key.args()[0], key.args()[1]]);
    let (_, ready) = holder.ready();
    assert_eq!(ready["locked"], true);
    holder.child.kill().unwrap(); // TerminateProcess
    holder.child.wait().unwrap();
    assert!(!seg.lock.wait(Some(Duration::from_millis(500))).unwrap(), "the dead holder's count came back");
    // Only an explicit release brings it back (what a recovery after a timeout would do).
    seg.unlock();
    assert!(seg.lock.try_wait().unwrap());
    seg.unlock();
}

// ---- sizes, errors, lifetime --------------------------------------------------------------------

fn sizes_errors_and_lifetime(qt: Qt) {
    let key = Key::Legacy(format!("sizes-{}", uniq()));
    let seg = Segment::create(&key, 100);
    let rows = run(qt, &["attach", key.args()[0], key.args()[1], "--readonly"]);
    assert_eq!(rows[0]["ok"], true, "{rows:?}");
    assert_eq!(rows[0]["size"], 4096);

    let rows = run(qt, &["create", key.args()[0], key.args()[1], "--size", "100"]);
    eprintln!("ERRORS Qt {} create existing: {} {}", qt.arg(), rows[0]["error"], rows[0]["error_string"]);
    assert_eq!(rows[0]["ok"], false);
    assert_eq!(rows[0]["error"], 4, "AlreadyExists");
    assert_eq!(rows[0]["error_string"], "QSharedMemory::create: already exists");
    drop(seg);

    let rows = run(qt, &["attach", key.args()[0], key.args()[1]]);
    eprintln!("ERRORS Qt {} attach missing: {} {}", qt.arg(), rows[0]["error"], rows[0]["error_string"]);
    assert_eq!(rows[0]["ok"], false, "the segment went with its last handle");
    assert_eq!(rows[0]["error"], 5, "NotFound");
    assert_eq!(rows[0]["error_string"], "QSharedMemory::handle: doesn't exist");

    // A name that a semaphore already has cannot name a mapping.
    let name = format!("qipc-clash-{}", uniq());
    let _sem = create_semaphore(&WinName::new(&name), 1, 1).unwrap();
    let rows = run(qt, &["create", "--native", &name, "--size", "100"]);
    eprintln!("ERRORS Qt {} create on a semaphore's name: {} {}", qt.arg(), rows[0]["error"], rows[0]["error_string"]);
    assert_eq!(rows[0]["ok"], false);
    assert_eq!(rows[0]["error"], 8, "UnknownError");

    // A backslash other than a namespace prefix is a path into a directory that does not exist.
    let rows = run(qt, &["create", "--native", &format!("qipc\\{}", uniq()), "--size", "100"]);
    eprintln!("ERRORS Qt {} create 'qipc\\…': {} {}", qt.arg(), rows[0]["error"], rows[0]["error_string"]);
    assert_eq!(rows[0]["ok"], false);

    // Qt creates 100 bytes: the view is one page.
    let key = Key::Native(format!("qipc-size-{}", uniq()));
    let mut peer = spawn(qt, &["lock-hold", key.args()[0], key.args()[1], "--create", "100"]);
    peer.ready();
    let view = open_mapping(&key.mapping_name(), Access::ReadOnly).unwrap().map(Access::ReadOnly).unwrap();
    assert_eq!(view.len(), 4096);
    peer.go();
    peer.go();
    peer.finish();
    // Our view keeps the memory after Qt exits, but the name is gone with Qt's handle.
    // SAFETY: the view is one page long.
    let _ = unsafe { view.as_ptr().read_volatile() };
    assert!(open_mapping(&key.mapping_name(), Access::ReadOnly).is_err());
}

#[test]
fn sizes_errors_and_lifetime_qt6() {
    sizes_errors_and_lifetime(Qt::Six);
}

#[test]
fn sizes_errors_and_lifetime_qt5() {
    sizes_errors_and_lifetime(Qt::Five);
}

/// QSharedMemory("") on Windows: create/attach fail with KeyError, and Qt 6 then locks a
/// semaphore called `_sem` (its lock name of an empty native key).
fn empty_key(qt: Qt) {
    let mut peer = spawn(qt, &["empty-key"]);
    let (_, ready) = peer.ready();
    eprintln!("EMPTY Qt {}: {ready}", qt.arg());
    assert_eq!(ready["created"], false);
    assert_eq!(ready["error"], 3, "KeyError");
    let sem = open_semaphore(&native_lock_name(&WinName::default()));
    match qt {
        Qt::Six => {
            assert_eq!(ready["locked"], true, "Qt 6 locks _sem");
            let sem = sem.expect("Qt 6 created _sem");
            assert!(!sem.try_wait().unwrap(), "and holds it");
        }
        Qt::Five => {
            assert_eq!(ready["locked"], false);
            assert_eq!(sem.unwrap_err().raw_os_error(), Some(codes::FILE_NOT_FOUND as i32));
        }
    }
    peer.go();
    peer.finish();
}

#[test]
fn empty_key_qt6() {
    empty_key(Qt::Six);
}

#[test]
fn empty_key_qt5() {
    empty_key(Qt::Five);
}

/// A QSystemSemaphore and the wrappers share counts, for a legacy key (both Qt versions) and a
/// native key (Qt 6).
#[test]
fn system_semaphores_interoperate() {
    for (qt, key, name) in [
        (Qt::Six, "--key", format!("sem-{}", uniq())),
        (Qt::Five, "--key", format!("sem-{}", uniq())),
        (Qt::Six, "--native", format!("qipc-sem-{}", uniq())),
    ] {
        let win = if key == "--key" { legacy_name(&name, Purpose::Semaphore) } else { WinName::new(&name) };
        let sem = create_semaphore(&win, 0, QT_SEMAPHORE_MAX).unwrap().into_inner();
        let mut peer = spawn(qt, &["sem-acquire", key, &name]);
        std::thread::sleep(Duration::from_millis(300));
        sem.release(1).unwrap(); // wakes Qt's acquire()
        let (_, ready) = peer.ready();
        assert_eq!(ready["acquired"], true, "{ready}");
        assert!(!sem.try_wait().unwrap(), "Qt took the count");
        peer.go();
        peer.finish();
        assert!(sem.try_wait().unwrap(), "Qt's release(1) gave it back");
    }
}

#[test]
fn max_path_is_not_a_limit_for_names_under_wine() {
    // Qt does not shorten legacy names; a 300-letter key's mapping is 358 units long. Wine
    // accepts such names (Windows' own limit is the object manager's, not MAX_PATH).
    let long = legacy_name(&"z".repeat(300), Purpose::SharedMemory);
    assert!(long.len() > MAX_PATH);
    let created = create_mapping(&long, 10).unwrap();
    assert!(!created.existed());
}
