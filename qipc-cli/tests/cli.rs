//! Tests of the `qipc` command, driving the real binary. Every test uses its
//! own keys, has a deadline, and removes what it created even when it fails
//! (guards kill children and remove objects on drop). `gc` is always run
//! with `--match` on the test's own names, so tests running in parallel
//! (here or in other crates) are never disturbed.

use std::{
    io::{BufRead, BufReader, Write},
    path::PathBuf,
    process::{Child, ChildStdin, Command, Output, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use qipc::{KeyType, NativeKey};

const QIPC: &str = env!("CARGO_BIN_EXE_qipc");
const DEADLINE: Duration = Duration::from_secs(60);

fn unique(name: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("qipc_test_cli_{name}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// The part of a legacy key's System V file names that identifies it
/// (letters + SHA-1), for `--match`.
fn legacy_token(key: &str) -> String {
    let native = NativeKey::legacy_shared_memory(key, KeyType::SYSTEM_V);
    native.native_key().rsplit('/').next().unwrap().trim_start_matches("qipc_sharedmemory_").to_string()
}

/// Runs the binary with a deadline.
fn qipc(args: &[&str]) -> Output {
    qipc_stdin(args, None)
}

fn qipc_stdin(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(QIPC)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start qipc");
    if let Some(data) = stdin {
        let mut s = child.stdin.take().unwrap();
        s.write_all(data).unwrap();
    }
    wait_output(child, args)
}

fn wait_output(mut child: Child, what: &[&str]) -> Output {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("qipc {what:?} did not finish within {DEADLINE:?}: {out:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn ok(o: &Output) -> String {
    assert!(o.status.success(), "expected success, got {:?}\nstdout: {}\nstderr: {}", o.status, stdout(o), stderr(o));
    stdout(o)
}

#[track_caller]
fn fails(o: &Output, code: i32, kind: &str) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stdout: {}\nstderr: {err}", stdout(o));
    assert!(err.starts_with("qipc: "), "error format: {err}");
    assert!(err.contains(&format!(": {kind}: ")), "expected kind {kind}: {err}");
    err
}

/// Checks that `text` is valid JSON (with the system's python3).
#[track_caller]
fn assert_json(text: &str) {
    let mut child = Command::new("python3")
        .args(["-c", "import json,sys; d=json.load(sys.stdin); assert d['schema']=='qipc/1', d"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = wait_output(child, &["python3 json check"]);
    assert!(out.status.success(), "invalid JSON ({}):\n{text}", stderr(&out));
}

/// Removes a key's objects when dropped (the test's safety net).
struct Cleanup(Vec<Vec<String>>);

impl Cleanup {
    fn legacy(key: &str) -> Cleanup {
        Cleanup(vec![vec![key.to_string()]])
    }
    fn native(text: &str) -> Cleanup {
        Cleanup(vec![vec!["--native".into(), text.to_string()]])
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for key in &self.0 {
            let mut args: Vec<&str> = vec!["rm"];
            args.extend(key.iter().map(String::as_str));
            args.push("--force");
            let _ = Command::new(QIPC).args(&args).stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
    }
}

/// A long-running child (qipc share or a Qt peer), killed when dropped.
struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Peer {
    fn spawn(mut cmd: Command) -> Peer {
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let stdin = child.stdin.take();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Peer { child, stdin, lines }
    }

    /// Waits for a line starting with `prefix`.
    #[track_caller]
    fn expect_line(&self, prefix: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => continue,
                Err(e) => panic!("no `{prefix}` line from the peer: {e}"),
            }
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Waits for the child to exit; true if it succeeded.
    fn wait(&mut self) -> bool {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            assert!(Instant::now() < deadline, "peer did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL, as a crash: nothing is cleaned up by the peer.
    fn crash(&mut self) {
        self.signal(libc::SIGKILL);
        self.wait();
    }

    /// A clean stop: close stdin (Qt peers) and SIGTERM (qipc share).
    fn stop(&mut self) -> bool {
        self.stdin.take();
        self.signal(libc::SIGTERM);
        self.wait()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn share(args: &[&str]) -> Peer {
    let mut cmd = Command::new(QIPC);
    cmd.arg("share").args(args).args(["--for", "2m"]);
    let p = Peer::spawn(cmd);
    p.expect_line("READY");
    p
}

// ---- Qt peers -----------------------------------------------------------

fn qt_python() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".qt-venv/bin/python");
    assert!(
        python.exists(),
        "the Qt peers need {} (PyQt5 and PySide6-Essentials): run scripts/setup-qt.sh first",
        python.display()
    );
    python
}

fn qt_peer_cmd(qt: &str, args: &[&str]) -> Command {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cmd = Command::new(qt_python());
    cmd.arg(root.join("tests/qt/cli_peer.py")).args(["--qt", qt]).args(args).env("QT_QPA_PLATFORM", "offscreen");
    cmd
}

fn qt_create(qt: &str, key_args: &[&str]) -> Peer {
    let mut args = vec!["create"];
    args.extend_from_slice(key_args);
    args.extend_from_slice(&["--size", "4096", "--text", "qt"]);
    let p = Peer::spawn(qt_peer_cmd(qt, &args));
    p.expect_line("READY");
    p
}

fn qt_create_once(qt: &str, key_args: &[&str]) -> String {
    let mut args = vec!["create-once"];
    args.extend_from_slice(key_args);
    let mut cmd = qt_peer_cmd(qt, &args);
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let out = wait_output(child, &["qt create-once"]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().to_string()
}

fn info_json(args: &[&str]) -> String {
    let mut a = vec!["info"];
    a.extend_from_slice(args);
    a.push("--json");
    let out = ok(&qipc(&a));
    assert_json(&out);
    out
}

fn objects_in(info: &str) -> usize {
    info.matches("\"kind\":").count()
}

// ---- tests --------------------------------------------------------------

#[test]
fn key_prints_names_and_ftok() {
    let out = ok(&qipc(&["key", "SharedMemoryExample"]));
    assert!(out.contains("qipc_sharedmemory_SharedMemoryExample239c304753a51ce3617c8aac22ef1d963b31c7c5"), "{out}");
    assert!(out.contains("qipc_systemsem_SharedMemoryExample239c304753a51ce3617c8aac22ef1d963b31c7c5"), "{out}");
    assert!(out.contains("?legacyKey=SharedMemoryExample"), "{out}");
    assert!(out.contains("ftok"), "{out}");
    let out = ok(&qipc(&["key", "my_shared_memory", "--type", "posix"]));
    assert!(out.contains("/dev/shm/qipc_sharedmemory_mysharedmemoryd3faa70b96e6c94a96cbd5270f2f9f4a8f14fdcd"), "{out}");
    assert!(out.contains("/dev/shm/sem.qipc_systemsem_mysharedmemoryd3faa70b96e6c94a96cbd5270f2f9f4a8f14fdcd"));
    let json = ok(&qipc(&["key", "x", "--json"]));
    assert_json(&json);
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["bogus"],
        &["read"],
        &["read", "a", "--native", "posix:/b"],
        &["share", "k"],
        &["share", "k", "--text", "a", "--qstring", "b"],
        &["info", "k", "--type", "bogus"],
        &["info", "--native", "bogus:/x"],
        &["ls", "--bogus"],
        &["gc", "extra"],
        &["lock", "k"],
        &["read", "k", "--as", "pdf"],
        &["share", "k", "--text", "a", "--for", "soon"],
        &["help", "bogus"],
    ] {
        let out = qipc(args);
        let err = fails(&out, 2, "UsageError");
        assert!(err.contains("Try `qipc"), "{args:?}: {err}");
    }
}

#[test]
fn help_has_an_example_for_every_command() {
    let overview = ok(&qipc(&["--help"]));
    for cmd in ["ls", "info", "key", "share", "read", "write", "lock", "rm", "gc", "demo"] {
        assert!(overview.contains(cmd), "{overview}");
        let h = ok(&qipc(&["help", cmd]));
        assert!(h.contains("Usage: qipc") && h.contains("Example:\n  qipc"), "{cmd}: {h}");
        assert_eq!(ok(&qipc(&[cmd, "--help"])), h);
    }
}

#[test]
fn errors_name_operation_and_kind() {
    let key = unique("missing");
    let err = fails(&qipc(&["read", &key]), 1, "NotFound");
    assert!(err.starts_with("qipc: read: NotFound: "), "{err}");
    let err = fails(&qipc(&["rm", &key]), 1, "NotFound");
    assert!(err.starts_with("qipc: rm: NotFound: "), "{err}");
    let err = fails(&qipc(&["write", "--native", &format!("posix:/{key}"), "--text", "x"]), 1, "NotFound");
    assert!(err.starts_with("qipc: write: NotFound: "), "{err}");
}

#[test]
fn share_read_write_info_rm_systemv() {
    let key = unique("rw");
    let _cleanup = Cleanup::legacy(&key);
    let mut writer = share(&[&key, "--qstring", "Hello from writer!", "--size", "1024"]);

    assert_eq!(ok(&qipc(&["read", &key, "--as", "qstring"])), "Hello from writer!\n");
    let raw = qipc(&["read", &key, "--len", "8"]);
    assert_eq!(ok(&raw).as_bytes(), &[0, 0, 0, 0x24, 0, b'H', 0, b'e']);
    let hex = ok(&qipc(&["read", &key, "--as", "hex", "--len", "4"]));
    assert!(hex.starts_with("00000000  00 00 00 24"), "{hex}");

    ok(&qipc(&["write", &key, "--offset", "100", "--text", "abc"]));
    assert_eq!(ok(&qipc(&["read", &key, "--offset", "100", "--len", "3"])), "abc");
    ok(&qipc_stdin(&["write", &key, "--offset", "200", "--stdin"], Some(b"from stdin")));
    assert_eq!(ok(&qipc(&["read", &key, "--offset", "200", "--len", "10"])), "from stdin");
    // Does not fit: an error, and nothing is written.
    let err = fails(&qipc(&["write", &key, "--offset", "1022", "--text", "xyz"]), 1, "InvalidSize");
    assert!(err.contains("nothing written"), "{err}");
    assert_eq!(ok(&qipc(&["read", &key, "--offset", "1022", "--len", "2"])).as_bytes(), &[0, 0]);
    fails(&qipc(&["read", &key, "--offset", "1020", "--len", "8"]), 1, "InvalidSize");

    let info = ok(&qipc(&["info", &key]));
    assert!(info.contains("in-use (1 attached)"), "{info}");
    assert!(info.contains(&format!("{} (qipc)", writer.child.id())), "{info}");
    assert!(info.contains("unlocked (value 1)"), "{info}");
    let json = info_json(&[&key]);
    assert!(json.contains("\"state\": \"in-use\"") && json.contains("\"size\": 1024"), "{json}");

    // In use: rm refuses.
    let err = fails(&qipc(&["rm", &key]), 1, "PermissionDenied");
    assert!(err.contains("in use"), "{err}");
    assert!(qipc(&["read", &key, "--len", "1"]).status.success());

    // A clean stop: the last detacher removes everything.
    assert!(writer.stop());
    assert_eq!(objects_in(&info_json(&[&key])), 0);
}

#[test]
fn share_posix_native_and_legacy_posix() {
    let name = unique("posix");
    let native = format!("posix:/{name}");
    let _c1 = Cleanup::native(&native);
    let mut a = share(&["--native", &native, "--text", "posix bytes"]);
    assert_eq!(ok(&qipc(&["read", "--native", &native])), "posix bytes");
    let info = ok(&qipc(&["info", "--native", &native]));
    assert!(info.contains(&format!("/dev/shm/{name}")) && info.contains("in-use"), "{info}");

    let key = unique("lposix");
    let _c2 = Cleanup(vec![vec![key.clone(), "--type".into(), "posix".into()]]);
    let mut b = share(&[&key, "--type", "posix", "--qstring", "hi", "--size", "64"]);
    assert_eq!(ok(&qipc(&["read", &key, "--type", "posix", "--as", "qstring"])), "hi\n");
    let ls = ok(&qipc(&["ls", "--json", "--match", &name]));
    assert_json(&ls);
    assert!(ls.contains(&format!("\"location\": \"/dev/shm/{name}\"")), "{ls}");
    let ls = ok(&qipc(&["ls"]));
    assert!(ls.contains(&format!("posix:/{name}")), "{ls}");
    // The legacy key is recovered from the sharing process's command line.
    assert!(ls.contains(&format!("{key:?}")), "{ls}");

    assert!(a.stop());
    assert!(b.stop());
    assert_eq!(objects_in(&info_json(&["--native", &native])), 0);
    assert_eq!(objects_in(&info_json(&[&key, "--type", "posix"])), 0);
}

#[test]
fn lock_holds_the_qt_lock_while_a_command_runs() {
    let key = unique("lock");
    let _cleanup = Cleanup::legacy(&key);
    let mut writer = share(&[&key, "--text", "x"]);
    let out = qipc(&["lock", &key, "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));

    let holder = Command::new(QIPC).args(["lock", &key, "--", "sleep", "5"]).spawn().unwrap();
    let _holder = Peer { child: holder, stdin: None, lines: mpsc::channel().1 };
    // Wait until the holder has the lock.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let info = ok(&qipc(&["info", &key]));
        if info.contains("locked (value 0)") {
            break;
        }
        assert!(Instant::now() < deadline, "the lock was never taken: {info}");
        std::thread::sleep(Duration::from_millis(20));
    }
    fails(&qipc(&["lock", &key, "--timeout", "300ms", "--", "true"]), 1, "LockError");
    // read and write take the same lock, and honour --timeout too.
    fails(&qipc(&["read", &key, "--timeout", "200ms"]), 1, "LockError");
    fails(&qipc(&["write", &key, "--timeout", "200ms", "--text", "y"]), 1, "LockError");
    // Blocking lock: waits for the holder, then runs.
    ok(&qipc(&["lock", &key, "--timeout", "30s", "--", "true"]));
    assert!(writer.stop());
}

#[test]
fn gc_and_rm_leave_live_qipc_segments_alone_and_clean_orphans() {
    let live = unique("gclive");
    let dead = unique("gcdead");
    let _c = Cleanup(vec![vec![live.clone()], vec![dead.clone()]]);
    let mut a = share(&[&live, "--text", "alive"]);
    let mut b = share(&[&dead, "--text", "dead"]);
    b.crash(); // leaves segment, semaphore and key files

    let live_token = legacy_token(&live);
    let dead_token = legacy_token(&dead);
    assert_eq!(ok(&qipc(&["gc", "--match", &live_token])), "nothing to remove\n");
    fails(&qipc(&["rm", &live]), 1, "PermissionDenied");
    assert_eq!(ok(&qipc(&["read", &live])), "alive");

    let ls = ok(&qipc(&["ls", "--match", &dead_token]));
    assert!(ls.contains("orphaned") && ls.contains("(dead)"), "{ls}");
    // An orphan can still be read, and reading does not remove it.
    assert_eq!(ok(&qipc(&["read", &dead])), "dead");
    let dry = ok(&qipc(&["gc", "--dry-run", "--match", &dead_token]));
    assert!(dry.contains("would remove") && dry.contains("segment"), "{dry}");
    let json = ok(&qipc(&["gc", "--dry-run", "--json", "--match", &dead_token]));
    assert_json(&json);
    let out = ok(&qipc(&["gc", "--match", &dead_token]));
    assert!(out.contains("removed") && out.contains("segment") && out.contains("semaphore"), "{out}");
    assert_eq!(objects_in(&info_json(&[&dead])), 0, "{}", ok(&qipc(&["info", &dead])));
    // The live one is untouched.
    assert_eq!(ok(&qipc(&["read", &live])), "alive");
    assert!(a.stop());
}

#[test]
fn rm_force_removes_a_segment_in_use() {
    let key = unique("force");
    let _c = Cleanup::legacy(&key);
    let a = share(&[&key, "--text", "x"]);
    let out = ok(&qipc(&["rm", &key, "--force"]));
    assert!(out.contains("segment"), "{out}");
    fails(&qipc(&["read", &key]), 1, "NotFound");
    drop(a);
}

#[test]
fn read_qbytearray_and_qimage() {
    use qipc::datastream::{DataStreamWriter, QImage};
    let key = unique("img");
    let _c = Cleanup::legacy(&key);
    let dir = std::env::temp_dir().join(unique("imgdir"));
    std::fs::create_dir_all(&dir).unwrap();
    struct RmDir(PathBuf);
    impl Drop for RmDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _rmdir = RmDir(dir.clone());
    let image = QImage::from_rgba8(3, 2, vec![255; 3 * 2 * 4]).unwrap();
    let mut w = DataStreamWriter::new();
    w.write_qimage(&image);
    let mut w2 = DataStreamWriter::new();
    w2.write_qbytearray(Some(b"bytes!"));
    let file = dir.join("in.bin");
    std::fs::write(&file, w.into_bytes()).unwrap();
    let mut a = share(&[&key, "--file", file.to_str().unwrap(), "--size", "4096"]);
    let png = dir.join("out.png");
    let out = ok(&qipc(&["read", &key, "--as", "qimage", "--out", png.to_str().unwrap()]));
    assert!(out.contains("width=3 height=2"), "{out}");
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
    fails(&qipc(&["read", &key, "--as", "qimage"]), 2, "UsageError");
    ok(&qipc_stdin(&["write", &key, "--stdin"], Some(&w2.into_bytes())));
    assert_eq!(ok(&qipc(&["read", &key, "--as", "qbytearray"])), "bytes!");
    assert!(a.stop());
}

#[test]
fn ls_json_follows_the_schema() {
    let key = unique("ls");
    let _c = Cleanup::legacy(&key);
    let mut a = share(&[&key, "--text", "x", "--size", "10"]);
    let out = ok(&qipc(&["ls", "--json", "--match", &legacy_token(&key)]));
    assert_json(&out);
    for field in ["\"schema\": \"qipc/1\"", "\"objects\"", "\"state\": \"in-use\"", "\"attached\": 1", "\"processes\""]
    {
        assert!(out.contains(field), "{field}: {out}");
    }
    assert!(out.contains(&format!("\"legacy\": \"{key}\"")), "{out}");
    assert!(ok(&qipc(&["ls"])).starts_with("TYPE"));
    assert!(a.stop());
}

#[test]
fn demo_runs_end_to_end_and_leaves_nothing() {
    let out = qipc(&["demo"]);
    let text = ok(&out);
    assert!(text.contains("Data read from shared memory: \"Hello from writer!\""), "{text}");
    assert!(text.contains("nothing is left behind"), "{text}");
    // Its key is unique per run (SharedMemoryExample-demo-<pid>): nothing of it remains.
    let ls = ok(&qipc(&["ls", "--json", "--match", "SharedMemoryExampledemo"]));
    assert!(!ls.contains("\"kind\""), "{ls}");
}

// ---- Qt ----------------------------------------------------------------

#[test]
fn gc_after_qt5_sysv_crash_lets_qt_create_again() {
    qt_crash_then_gc("5", &unique("qt5crash"));
}

#[test]
fn gc_after_qt6_sysv_crash_lets_qt_create_again() {
    qt_crash_then_gc("6", &unique("qt6crash"));
}

fn qt_crash_then_gc(qt: &str, key: &str) {
    let _c = Cleanup::legacy(key);
    let mut peer = qt_create(qt, &["--key", key]);
    peer.crash();
    let token = legacy_token(key);
    let ls = ok(&qipc(&["ls", "--match", &token]));
    assert!(ls.contains("shm") && ls.contains("orphaned") && ls.contains("(dead)"), "{ls}");
    if qt == "5" {
        // Qt 5 keeps failing on the orphan. (Qt 6.6+ would remove it itself
        // in the destructor of the object whose create() failed, spec §7.3.)
        assert!(qt_create_once(qt, &["--key", key]).contains("already exists"));
    }
    let out = ok(&qipc(&["gc", "--match", &token]));
    assert!(out.contains("segment"), "{out}");
    if qt == "6" {
        // (Qt 5's failed create above took over the semaphore and removed it at exit.)
        assert!(out.contains("semaphore"), "{out}");
    }
    assert_eq!(objects_in(&info_json(&[key])), 0, "{}", ok(&qipc(&["info", key])));
    assert_eq!(qt_create_once(qt, &["--key", key]), "OK");
    assert_eq!(objects_in(&info_json(&[key])), 0, "{}", ok(&qipc(&["info", key])));
}

#[test]
fn gc_after_qt6_posix_crash_lets_qt_create_again() {
    let name = unique("qt6posix");
    let native = format!("posix:/{name}");
    let _c = Cleanup::native(&native);
    let mut peer = qt_create("6", &["--native", &name]);
    peer.crash();
    let info = ok(&qipc(&["info", "--native", &native]));
    assert!(info.contains("orphaned") && info.contains("sem.") && !info.contains("in-use"), "{info}");
    let out = ok(&qipc(&["gc", "--match", &name]));
    assert!(out.contains("segment") && out.contains("semaphore"), "{out}");
    assert_eq!(objects_in(&info_json(&["--native", &native])), 0);
    assert_eq!(qt_create_once("6", &["--native", &name]), "OK");
    // Qt never removes POSIX segments: the Cleanup guard does.
}

#[test]
fn gc_and_rm_leave_live_qt_segments_alone() {
    let key5 = unique("qt5live");
    let name6 = unique("qt6live");
    let native6 = format!("posix:/{name6}");
    let _c = Cleanup(vec![vec![key5.clone()], vec!["--native".into(), native6.clone()]]);
    let mut p5 = qt_create("5", &["--key", &key5]);
    let mut p6 = qt_create("6", &["--native", &name6]);
    let token5 = legacy_token(&key5);
    assert_eq!(ok(&qipc(&["gc", "--match", &token5])), "nothing to remove\n");
    assert_eq!(ok(&qipc(&["gc", "--match", &name6])), "nothing to remove\n");
    fails(&qipc(&["rm", &key5]), 1, "PermissionDenied");
    fails(&qipc(&["rm", "--native", &native6]), 1, "PermissionDenied");
    // Still there, with the Qt process attached, and readable under Qt's lock.
    let info = ok(&qipc(&["info", &key5]));
    assert!(info.contains("in-use") && info.contains(&p5.child.id().to_string()), "{info}");
    assert_eq!(ok(&qipc(&["read", &key5, "--len", "2"])), "qt");
    assert_eq!(ok(&qipc(&["read", "--native", &native6, "--len", "2"])), "qt");
    let ls = ok(&qipc(&["ls", "--match", &name6]));
    assert!(ls.contains("in-use") && ls.contains("python"), "{ls}");
    assert!(p5.stop());
    assert!(p6.stop());
}

#[test]
fn gc_removes_stale_key_files_but_not_fresh_ones() {
    let key = unique("stale");
    let _c = Cleanup::legacy(&key);
    let path = NativeKey::legacy_shared_memory(&key, KeyType::SYSTEM_V).native_key().to_string();
    let file = std::fs::File::create(&path).unwrap();
    let token = legacy_token(&key);
    // Fresh: a process may be creating the segment right now.
    let ls = ok(&qipc(&["ls", "--match", &token]));
    assert!(ls.contains("stale-key-file"), "{ls}");
    assert_eq!(ok(&qipc(&["gc", "--match", &token])), "nothing to remove\n");
    file.set_modified(std::time::SystemTime::now() - Duration::from_secs(60)).unwrap();
    let out = ok(&qipc(&["gc", "--match", &token]));
    assert!(out.contains("key file"), "{out}");
    assert!(!std::path::Path::new(&path).exists());
}
