//! Shared helpers for the multi-process tests.
//!
//! - [`unique_key`]: keys no other test or process uses (`/tmp` and the SysV
//!   namespace may be shared with other processes on the machine).
//! - [`Cleanup`]: removes every object of a key when dropped, even when the
//!   test panics, and [`assert_clean`] checks that nothing is left.
//! - [`Proc`]: a child process with a deadline; it is killed when dropped.
//! - [`spawn_role`]: re-executes this test binary as a child that plays a
//!   role (the `child` test of each file dispatches on `QIPC_CHILD_ROLE`).
//! - [`qt_python`]: the Python that has PyQt5 and PySide6; panics with the
//!   command that installs it if it is missing (never skips).

#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader, Read},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use qipc::{KeyType, NativeKey, SharedMemory};

/// A key unique to this process, test and call.
pub fn unique_key(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("qipc_test_{tag}_{}_{n}_{nanos}", std::process::id())
}

/// A unique POSIX native key (`/qipc_test_…`).
pub fn unique_posix(tag: &str) -> NativeKey {
    NativeKey::posix(format!("/{}", unique_key(tag)))
}

/// Removes all objects of a key (segment, lock semaphore, key files) on drop.
pub struct Cleanup(pub Vec<NativeKey>);

impl Cleanup {
    /// Cleans up the segment and lock of `key`.
    pub fn new(key: &NativeKey) -> Cleanup {
        Cleanup(vec![key.clone()])
    }

    /// Cleans up the legacy System V key `key`.
    pub fn legacy(key: &str) -> Cleanup {
        Cleanup::new(&NativeKey::legacy_shared_memory(key, KeyType::SYSTEM_V))
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for key in &self.0 {
            let _ = SharedMemory::remove(key);
        }
    }
}

/// The paths a key's objects live at: key files (SysV) or /dev/shm entries.
pub fn object_paths(key: &NativeKey) -> Vec<String> {
    let lock = key.lock_key();
    match key.key_type() {
        KeyType::PosixRealtime => {
            let strip = |s: &str| s.trim_start_matches('/').to_string();
            vec![
                format!("/dev/shm/{}", strip(key.native_key())),
                format!("/dev/shm/sem.{}", strip(lock.native_key())),
            ]
        }
        _ => vec![key.native_key().to_string(), lock.native_key().to_string()],
    }
}

/// Asserts that nothing of `key` is left: no key file, no /dev/shm entry,
/// and (for System V) no segment or semaphore in `/proc/sysvipc` whose key
/// the key files would give (checked through the files' absence: Qt and
/// qipc remove the IPC object before its key file).
pub fn assert_clean(key: &NativeKey) {
    for path in object_paths(key) {
        assert!(std::fs::metadata(&path).is_err(), "left behind: {path}");
    }
}

/// True if a System V segment for `key` exists (key file present and shmget finds it).
pub fn sysv_segment_exists(key: &NativeKey) -> bool {
    let mut shm = SharedMemory::with_native_key(key.clone());
    let ok = shm.attach(qipc::AccessMode::ReadOnly).is_ok();
    if ok {
        // Detaching would remove an orphan: forget instead (the mapping goes
        // with the process).
        std::mem::forget(shm);
    }
    ok
}

/// A child process killed (SIGKILL) when dropped, with line-based stdout.
pub struct Proc {
    pub child: Child,
    pub name: String,
    out: Option<BufReader<std::process::ChildStdout>>,
    deadline: Instant,
}

impl Proc {
    /// Spawns `cmd` with piped stdout; it must finish within `deadline`.
    pub fn spawn(name: &str, mut cmd: Command, deadline: Duration) -> Proc {
        cmd.stdout(Stdio::piped()).stdin(Stdio::null());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let out = child.stdout.take().map(BufReader::new);
        Proc { child, name: name.to_string(), out, deadline: Instant::now() + deadline }
    }

    /// Reads lines until one contains `needle`; panics (and the drop kills
    /// the child) if the child exits or the deadline passes first.
    pub fn wait_for_line(&mut self, needle: &str) -> String {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut out = self.out.take().expect("stdout already consumed");
        let needle_owned = needle.to_string();
        let reader = std::thread::spawn(move || {
            let mut seen = String::new();
            loop {
                let mut line = String::new();
                match out.read_line(&mut line) {
                    Ok(0) | Err(_) => {
                        let _ = tx.send(Err(seen));
                        return None;
                    }
                    Ok(_) => {
                        seen.push_str(&line);
                        if line.contains(&needle_owned) {
                            let _ = tx.send(Ok(line));
                            return Some(out);
                        }
                    }
                }
            }
        });
        let left = self.deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Ok(line)) => {
                self.out = reader.join().ok().flatten();
                line
            }
            Ok(Err(seen)) => panic!("{} ended before printing {needle:?}; its output:\n{seen}", self.name),
            Err(_) => panic!("{}: deadline passed waiting for {needle:?}", self.name),
        }
    }

    /// Waits for exit within the deadline; returns (success, stdout rest).
    pub fn finish(mut self) -> (bool, String) {
        let mut rest = String::new();
        if let Some(mut out) = self.out.take() {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = out.read_to_string(&mut s);
                let _ = tx.send(s);
            });
            let left = self.deadline.saturating_duration_since(Instant::now());
            rest = rx.recv_timeout(left).unwrap_or_else(|_| panic!("{}: deadline passed", self.name));
        }
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return (status.success(), rest),
                Ok(None) if Instant::now() < self.deadline => std::thread::sleep(Duration::from_millis(10)),
                _ => panic!("{}: deadline passed waiting for exit; output so far:\n{rest}", self.name),
            }
        }
    }

    /// Waits for exit and panics unless it succeeded; returns stdout.
    pub fn expect_success(self) -> String {
        let name = self.name.clone();
        let (ok, out) = self.finish();
        assert!(ok, "{name} failed; output:\n{out}");
        out
    }

    /// SIGKILL now and reap.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait (within the deadline) for a clean exit.
    pub fn terminate(mut self) -> (bool, String) {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let name = self.name.clone();
        let _ = &mut self;
        let (ok, out) = self.finish();
        let _ = name;
        (ok, out)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Re-runs this test binary as a child playing `role` (see the `child` test
/// in each test file), with `args` in `QIPC_CHILD_ARGS` (separated by `\x1f`).
pub fn spawn_role(role: &str, args: &[&str], deadline: Duration) -> Proc {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", "child", "--nocapture", "--test-threads=1", "--quiet"])
        .env("QIPC_CHILD_ROLE", role)
        .env("QIPC_CHILD_ARGS", args.join("\x1f"));
    Proc::spawn(&format!("child {role}"), cmd, deadline)
}

/// In a child: the role and its arguments, if this process is one.
pub fn child_role() -> Option<(String, Vec<String>)> {
    let role = std::env::var("QIPC_CHILD_ROLE").ok()?;
    let args = std::env::var("QIPC_CHILD_ARGS").unwrap_or_default();
    let args = if args.is_empty() { vec![] } else { args.split('\x1f').map(str::to_string).collect() };
    Some((role, args))
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// The Python interpreter with PyQt5 and PySide6 installed by
/// `scripts/setup-qt.sh`. Panics if it is missing: interop tests never skip.
pub fn qt_python() -> PathBuf {
    let p = std::env::var_os("QIPC_QT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".qt-venv/bin/python"));
    assert!(
        p.exists(),
        "the Qt peers are not installed ({} is missing): run scripts/setup-qt.sh",
        p.display()
    );
    p
}

/// Runs a Python peer script from tests/qt with `args` under `QT_QPA_PLATFORM=offscreen`.
pub fn qt_peer(script: &str, args: &[&str], deadline: Duration) -> Proc {
    let mut cmd = Command::new(qt_python());
    cmd.arg(repo_root().join("tests/qt").join(script))
        .args(args)
        .env("QT_QPA_PLATFORM", "offscreen")
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    Proc::spawn(&format!("{script} {}", args.join(" ")), cmd, deadline)
}
