//! Helpers of the `qipc` command's tests, which drive the real binary.
//! Every test uses keys of its own (`unique`), runs each command under a
//! deadline, and removes what it created even when it fails (guards kill
//! children and remove objects on drop). `gc` is always run with `--match`
//! on the test's own names, so that other tests and other programs on the
//! machine are never disturbed.

#![allow(dead_code)]

use std::{
    ffi::{OsStr, OsString},
    io::{BufRead, BufReader, Read, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, ExitStatus, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use qipc::{KeyType, NativeKey};

pub const QIPC: &str = env!("CARGO_BIN_EXE_qipc");
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A name no other test, run or process uses.
pub fn unique(name: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("qipc_test_cli_{name}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// The part of a legacy key's System V file names that identifies it
/// (letters + SHA-1), for `--match`.
pub fn legacy_token(key: &str) -> String {
    let native = NativeKey::legacy_shared_memory(key, KeyType::SYSTEM_V);
    native.native_key().rsplit('/').next().unwrap().trim_start_matches("qipc_sharedmemory_").to_string()
}

/// What a finished `qipc` printed.
#[derive(Debug)]
pub struct Out {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub args: Vec<OsString>,
}

impl Out {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Succeeded; returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert!(self.status.success(), "expected success: {self}");
        &self.stdout
    }

    /// Failed with `code`, and stderr is `qipc: COMMAND: …`; returns stderr.
    #[track_caller]
    pub fn fails(&self, code: i32) -> &str {
        assert_eq!(self.code(), Some(code), "{self}");
        assert!(self.stderr.starts_with("qipc"), "error format: {self}");
        &self.stderr
    }

    /// stdout as JSON, with the schema checked.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        let v: serde_json::Value =
            serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {self}"));
        assert_eq!(v["schema"], "qipc/2", "{self}");
        v
    }

    /// The error document of a failed `--json` command.
    #[track_caller]
    pub fn json_error(&self, code: i32) -> serde_json::Value {
        assert_eq!(self.code(), Some(code), "{self}");
        let v = self.json();
        assert_eq!(v["error"]["exit_code"], code, "{self}");
        assert!(v["error"]["kind"].is_string() && v["error"]["message"].is_string(), "{self}");
        v["error"].clone()
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "qipc {:?}: {}\n--- stdout:\n{}\n--- stderr:\n{}", self.args, self.status, self.stdout, self.stderr)
    }
}

/// A `qipc` command line.
pub struct Run {
    cmd: Command,
    args: Vec<OsString>,
    stdin: Option<Vec<u8>>,
    deadline: Duration,
}

impl Run {
    pub fn new<S: AsRef<OsStr>>(args: &[S]) -> Run {
        let mut cmd = Command::new(QIPC);
        cmd.args(args);
        Run { cmd, args: args.iter().map(|a| a.as_ref().to_owned()).collect(), stdin: None, deadline: DEADLINE }
    }

    pub fn env(mut self, k: &str, v: &str) -> Run {
        self.cmd.env(k, v);
        self
    }

    pub fn stdin(mut self, data: &[u8]) -> Run {
        self.stdin = Some(data.to_vec());
        self
    }

    pub fn deadline(mut self, d: Duration) -> Run {
        self.deadline = d;
        self
    }

    /// Runs it to the end (killed, and the test failed, past the deadline).
    pub fn go(mut self) -> Out {
        let mut child = self
            .cmd
            .stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start qipc");
        if let Some(data) = self.stdin.take() {
            let mut s = child.stdin.take().unwrap();
            std::thread::spawn(move || {
                let _ = s.write_all(&data);
            });
        }
        let out = drain(child.stdout.take().unwrap());
        let err = drain(child.stderr.take().unwrap());
        let status = wait_deadline(&mut child, self.deadline);
        let stdout = String::from_utf8_lossy(&out.recv().unwrap_or_default()).into_owned();
        let stderr = String::from_utf8_lossy(&err.recv().unwrap_or_default()).into_owned();
        match status {
            Some(status) => Out { status, stdout, stderr, args: self.args },
            None => panic!(
                "qipc {:?} did not finish within {:?}\nstdout: {stdout}\nstderr: {stderr}",
                self.args, self.deadline
            ),
        }
    }
}

fn drain(mut r: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

/// Waits for the child at most `limit`; kills it past that (`None`).
pub fn wait_deadline(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `qipc ARGS`, run to the end.
pub fn qipc<S: AsRef<OsStr>>(args: &[S]) -> Out {
    Run::new(args).go()
}

/// Removes keys' objects when dropped (the test's safety net).
pub struct Cleanup(pub Vec<Vec<String>>);

impl Cleanup {
    pub fn legacy(key: &str) -> Cleanup {
        Cleanup(vec![vec![key.to_string()]])
    }
    pub fn native(text: &str) -> Cleanup {
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

/// A long-running child (`qipc share`, `qipc lock`, a Qt peer), killed
/// when dropped.
pub struct Peer {
    pub child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Peer {
    pub fn spawn(mut cmd: Command) -> Peer {
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

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a line starting with `prefix`.
    #[track_caller]
    pub fn expect_line(&self, prefix: &str) -> String {
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

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill takes plain values; this signals our own child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Waits for the child to exit.
    #[track_caller]
    pub fn wait(&mut self) -> ExitStatus {
        wait_deadline(&mut self.child, DEADLINE).expect("the peer did not exit")
    }

    /// SIGKILL, as a crash: nothing is cleaned up by the peer.
    pub fn crash(&mut self) {
        self.signal(libc::SIGKILL);
        self.wait();
    }

    /// A clean stop: close stdin (Qt peers) and SIGTERM (qipc share).
    pub fn stop(&mut self) -> bool {
        self.stdin.take();
        self.signal(libc::SIGTERM);
        self.wait().success()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `qipc share ARGS --for 2m`, once it is READY.
pub fn share(args: &[&str]) -> Peer {
    let mut cmd = Command::new(QIPC);
    cmd.arg("share").args(args).args(["--for", "2m"]);
    let p = Peer::spawn(cmd);
    p.expect_line("READY");
    p
}

/// The objects `qipc info --json` lists for a key (0 if nothing exists).
pub fn objects_of(key_args: &[&str]) -> usize {
    let mut args = vec!["info"];
    args.extend_from_slice(key_args);
    args.push("--json");
    let out = qipc(&args);
    match out.code() {
        Some(0) => out.json()["objects"].as_array().map_or(0, Vec::len),
        Some(1) => {
            assert_eq!(out.json_error(1)["kind"], "NotFound", "{out}");
            0
        }
        _ => panic!("{out}"),
    }
}

/// `check` after `qipc lock KEY -- true` has (re)made the key's lock
/// semaphore, tried a few times: a `gc` of another program that runs with
/// another TMPDIR may remove a lock semaphore it cannot pair with its key
/// file (older qipc did), and the next lock makes it again.
#[track_caller]
pub fn with_lock_semaphore(key_args: &[&str], mut check: impl FnMut() -> bool) {
    let mut args = vec!["lock"];
    args.extend_from_slice(key_args);
    args.extend_from_slice(&["--", "true"]);
    for _ in 0..20 {
        qipc(&args).ok();
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the check never passed with the lock semaphore of {key_args:?} in place");
}

// ---- Qt peers -------------------------------------------------------------

/// How to get the Qt peers, for the failure message.
const INSTALL: &str = "run scripts/setup-qt.sh at the root of the qipc repository, or set QIPC_QT_PYTHON to a \
                       Python with the Qt peers (python3 -m venv .qt-venv && .qt-venv/bin/pip install \
                       'PyQt5>=5.15,<5.16' 'PySide6-Essentials>=6.12,<6.13')";

/// The Python with PyQt5 and PySide6: `$QIPC_QT_PYTHON`, else
/// `.qt-venv/bin/python` in the nearest directory above this package.
/// Panics if there is none: these tests never skip.
pub fn qt_python() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = match std::env::var_os("QIPC_QT_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => {
            manifest_dir.ancestors().map(|dir| dir.join(".qt-venv/bin/python")).find(|p| p.exists()).unwrap_or_else(
                || panic!("the Qt peers are not installed (no .qt-venv above {}): {INSTALL}", manifest_dir.display()),
            )
        }
    };
    assert!(python.exists(), "the Qt peers are not installed ({} is missing): {INSTALL}", python.display());
    python
}

/// `tests/qt/cli_peer.py --qt QT ARGS` (this package's copy).
pub fn qt_peer_cmd(qt: &str, args: &[&str]) -> Command {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/qt/cli_peer.py");
    let mut cmd = Command::new(qt_python());
    cmd.arg(script).args(["--qt", qt]).args(args).env("QT_QPA_PLATFORM", "offscreen");
    cmd
}

/// A Qt process that created a 4096-byte segment with "qt" in it and
/// stays attached (stdin EOF or SIGTERM: it detaches and exits).
pub fn qt_create(qt: &str, key_args: &[&str]) -> Peer {
    let mut args = vec!["create"];
    args.extend_from_slice(key_args);
    args.extend_from_slice(&["--size", "4096", "--text", "qt"]);
    let p = Peer::spawn(qt_peer_cmd(qt, &args));
    p.expect_line("READY");
    p
}

/// A Qt process's one `create()`: `OK` or `ERROR <errorString>`.
pub fn qt_create_once(qt: &str, key_args: &[&str]) -> String {
    let mut args = vec!["create-once"];
    args.extend_from_slice(key_args);
    let mut child = qt_peer_cmd(qt, &args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let status = wait_deadline(&mut child, DEADLINE).expect("qt create-once hung");
    let stdout = String::from_utf8_lossy(&out.recv().unwrap()).into_owned();
    assert!(status.success(), "{}", String::from_utf8_lossy(&err.recv().unwrap()));
    stdout.trim().to_string()
}
