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
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use qipc::{KeyType, NativeKey, SharedMemory};

/// A key unique to this process, test and call.
pub fn unique_key(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
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
            vec![format!("/dev/shm/{}", strip(key.native_key())), format!("/dev/shm/sem.{}", strip(lock.native_key()))]
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

/// A copy of this test binary that any user may run (the original may sit
/// in a directory only root can enter), removed on drop.
#[cfg(unix)]
pub struct ExeCopy {
    dir: PathBuf,
    exe: PathBuf,
}

#[cfg(unix)]
impl ExeCopy {
    pub fn new(tag: &str) -> ExeCopy {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("qipc-{tag}-exe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let exe = dir.join(tag);
        std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        ExeCopy { dir, exe }
    }

    /// The copy run as `uid`/`gid` (no supplementary groups), running the
    /// test `test` (`child` for a role, see [`spawn_role`]).
    pub fn command_as(&self, uid: u32, gid: u32, test: &str) -> Command {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(&self.exe);
        cmd.args(["--exact", test, "--nocapture", "--test-threads=1", "--quiet"])
            .current_dir(&self.dir)
            .uid(uid)
            .gid(gid);
        cmd
    }

    /// [`spawn_role`] as `uid`/`gid`.
    pub fn role_as(&self, uid: u32, gid: u32, role: &str, args: &[&str], deadline: Duration) -> Proc {
        let mut cmd = self.command_as(uid, gid, "child");
        cmd.env("QIPC_CHILD_ROLE", role).env("QIPC_CHILD_ARGS", args.join("\x1f"));
        Proc::spawn(&format!("child {role} as {uid}:{gid}"), cmd, deadline)
    }
}

#[cfg(unix)]
impl Drop for ExeCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Panics unless this process runs as root (tests that act as other users).
#[cfg(unix)]
pub fn require_root(why: &str) {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "this test needs root ({why}); run the suite as root");
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
    #[cfg(unix)]
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

/// The Qt peers (Python scripts) of these tests: `qipc/tests/qt`.
pub fn peers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/qt")
}

/// The Python interpreter with PyQt5 and PySide6 installed by
/// `scripts/setup-qt.sh`. Panics if it is missing: interop tests never skip.
pub fn qt_python() -> PathBuf {
    let p = std::env::var_os("QIPC_QT_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            // `.qt-venv` at the workspace root, or in any directory above this package.
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .ancestors()
                .map(|d| d.join(".qt-venv/bin/python"))
                .find(|p| p.exists())
        })
        .unwrap_or_else(|| PathBuf::from(".qt-venv/bin/python"));
    assert!(p.exists(), "the Qt peers are not installed ({} is missing): run scripts/setup-qt.sh", p.display());
    p
}

/// Runs a Python peer script from tests/qt with `args` under `QT_QPA_PLATFORM=offscreen`.
pub fn qt_peer(script: &str, args: &[&str], deadline: Duration) -> Proc {
    let mut cmd = Command::new(qt_python());
    cmd.arg(peers_dir().join(script))
        .args(args)
        .env("QT_QPA_PLATFORM", "offscreen")
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    Proc::spawn(&format!("{script} {}", args.join(" ")), cmd, deadline)
}

// ---- Helpers added for qt_interop.rs, multiprocess.rs and errors.rs ----

/// A child process whose stdin is a pipe: lines sent with [`Interactive::send`]
/// drive it (qipc/tests/qt/peer.py commands, or a `wait` step of a child role).
/// Dropping it kills the child, then closes stdin (fields drop in order).
pub struct Interactive {
    pub proc: Proc,
    stdin: Option<std::process::ChildStdin>,
}

impl Interactive {
    /// Spawns `cmd` with piped stdin and stdout; it must finish within `deadline`.
    pub fn spawn(name: &str, mut cmd: Command, deadline: Duration) -> Interactive {
        cmd.stdout(Stdio::piped()).stdin(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let out = child.stdout.take().map(BufReader::new);
        let stdin = child.stdin.take();
        let proc = Proc { child, name: name.to_string(), out, deadline: Instant::now() + deadline };
        Interactive { proc, stdin }
    }

    /// Writes one line to the child's stdin.
    pub fn send(&mut self, line: &str) {
        use std::io::Write;
        let name = &self.proc.name;
        let stdin = self.stdin.as_mut().unwrap_or_else(|| panic!("{name}: stdin closed"));
        writeln!(stdin, "{line}").and_then(|()| stdin.flush()).unwrap_or_else(|e| panic!("{name}: write: {e}"));
    }

    /// Sends `line`, then waits for a line containing `needle` and returns it.
    pub fn ask(&mut self, line: &str, needle: &str) -> String {
        self.send(line);
        self.wait_for_line(needle)
    }

    /// See [`Proc::wait_for_line`].
    pub fn wait_for_line(&mut self, needle: &str) -> String {
        self.proc.wait_for_line(needle)
    }

    /// Closes stdin (EOF), then waits for a successful exit; returns the rest of stdout.
    pub fn expect_success(mut self) -> String {
        self.stdin.take();
        let Interactive { proc, .. } = self;
        proc.expect_success()
    }

    /// SIGKILL now and reap. Stdin is closed only afterwards: an EOF first
    /// would let the child exit cleanly (detaching) before the signal lands.
    pub fn kill(mut self) {
        let _ = self.proc.child.kill();
        let _ = self.proc.child.wait();
    }
}

/// Starts qipc/tests/qt/peer.py for Qt `qt` ("5" or "6") in command mode: commands
/// are sent one per line with [`Interactive::send`]/[`Interactive::ask`].
/// Waits for its `QT <version>` line, so a broken Qt install fails here, loudly.
pub fn qt_peer_interactive(qt: &str, deadline: Duration) -> Interactive {
    let mut cmd = Command::new(qt_python());
    cmd.arg(peers_dir().join("peer.py"))
        .args(["--qt", qt, "--timeout", &deadline.as_secs().to_string()])
        .env("QT_QPA_PLATFORM", "offscreen")
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let mut peer = Interactive::spawn(&format!("peer.py --qt {qt}"), cmd, deadline);
    peer.wait_for_line("QT ");
    peer
}

/// The command line [`spawn_role`] uses, for callers that adjust it (stdin, uid).
pub fn role_command(role: &str, args: &[&str]) -> Command {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", "child", "--nocapture", "--test-threads=1", "--quiet"])
        .env("QIPC_CHILD_ROLE", role)
        .env("QIPC_CHILD_ARGS", args.join("\x1f"));
    cmd
}

/// [`spawn_role`] with stdin piped (the child reads lines with [`read_stdin_line`]).
pub fn spawn_role_interactive(role: &str, args: &[&str], deadline: Duration) -> Interactive {
    Interactive::spawn(&format!("child {role}"), role_command(role, args), deadline)
}

/// In a child: one line from stdin (None at EOF).
pub fn read_stdin_line() -> Option<String> {
    let mut line = String::new();
    match std::io::stdin().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end().to_string()),
    }
}

/// The System V key `ftok` gives for a key file, if the file exists.
#[cfg(unix)]
pub fn sysv_ipc_key(path: &str, ftok_id: u8) -> Option<i32> {
    let c = std::ffi::CString::new(path).ok()?;
    // SAFETY: ftok reads a NUL-terminated path.
    let key = unsafe { libc::ftok(c.as_ptr(), i32::from(ftok_id)) };
    (key != -1).then_some(key)
}

#[cfg(unix)]
fn sysv_table_rows(table: &str, ipc_key: i32) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/sysvipc/{table}")).unwrap_or_default();
    text.lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|cols| cols.first().and_then(|k| k.parse::<i32>().ok()) == Some(ipc_key))
        .collect()
}

#[cfg(unix)]
/// The `nattch` of the System V segment of `key`, read from
/// `/proc/sysvipc/shm` without attaching (so it changes nothing); None if
/// there is no key file or no segment.
pub fn sysv_shm_nattch(key: &NativeKey) -> Option<u64> {
    let KeyType::SystemV { ftok_id } = key.key_type() else { return None };
    let ipc_key = sysv_ipc_key(key.native_key(), ftok_id)?;
    // Columns: key shmid perms size cpid lpid nattch ...
    sysv_table_rows("shm", ipc_key).first().and_then(|cols| cols.get(6)).and_then(|n| n.parse().ok())
}

#[cfg(unix)]
/// True if the lock semaphore of `key` exists (System V: key file and
/// semaphore set; POSIX: `/dev/shm/sem.<name>`).
pub fn lock_semaphore_exists(key: &NativeKey) -> bool {
    let lock = key.lock_key();
    match lock.key_type() {
        KeyType::SystemV { ftok_id } => {
            sysv_ipc_key(lock.native_key(), ftok_id).map(|k| !sysv_table_rows("sem", k).is_empty()).unwrap_or(false)
        }
        KeyType::PosixRealtime => {
            std::path::Path::new(&format!("/dev/shm/sem.{}", lock.native_key().trim_start_matches('/'))).exists()
        }
        _ => false,
    }
}

#[cfg(unix)]
/// True if the segment of `key` exists, without attaching: System V via
/// `/proc/sysvipc/shm`, POSIX via `/dev/shm`.
pub fn segment_exists(key: &NativeKey) -> bool {
    match key.key_type() {
        KeyType::SystemV { .. } => sysv_shm_nattch(key).is_some(),
        KeyType::PosixRealtime => {
            std::path::Path::new(&format!("/dev/shm/{}", key.native_key().trim_start_matches('/'))).exists()
        }
        _ => false,
    }
}

/// Hex of bytes, lowercase (the peer's format).
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from lowercase/uppercase hex; panics on bad input.
pub fn from_hex(hex: &str) -> Vec<u8> {
    let hex = hex.trim();
    assert!(hex.len() % 2 == 0, "odd hex {hex:?}");
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")).collect()
}

/// The text after `prefix` in a line the peer printed (`VALUE abcd` -> `abcd`).
pub fn after<'a>(line: &'a str, prefix: &str) -> &'a str {
    let i = line.find(prefix).unwrap_or_else(|| panic!("no {prefix:?} in {line:?}"));
    line[i + prefix.len()..].trim()
}
