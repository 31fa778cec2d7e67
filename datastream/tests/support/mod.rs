//! Runs `tests/qt/datastream_peer.py` under the Python that has the Qt peers
//! (PyQt5 for Qt 5.15, PySide6 for Qt 6).
//!
//! The interpreter is `$QIPC_QT_PYTHON`, else `.qt-venv/bin/python` in the
//! nearest directory above this crate that has one (the workspace root of a
//! qipc checkout, where `scripts/setup-qt.sh` puts it). A missing
//! interpreter fails the test with the command that installs it: interop
//! tests never skip.

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

/// How to get the Qt peers, for the failure message.
const INSTALL: &str = "run scripts/setup-qt.sh at the root of the qipc repository, or set QIPC_QT_PYTHON to a \
                       Python with the Qt peers (python3 -m venv .qt-venv && .qt-venv/bin/pip install \
                       'PyQt5>=5.15,<5.16' 'PySide6-Essentials>=6.12,<6.13')";

/// The Python interpreter with PyQt5 and PySide6; panics if there is none.
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

/// What the peer printed, and whether it exited successfully.
pub struct PeerOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the peer with `args` (offscreen, unbuffered); it is killed, and the
/// test fails, if it has not exited within `deadline`.
pub fn run_peer(args: &[&str], deadline: Duration) -> PeerOutput {
    let python = qt_python();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/qt/datastream_peer.py");
    let command = format!("{} {} {}", python.display(), script.display(), args.join(" "));
    let mut child = Command::new(&python)
        .arg(&script)
        .args(args)
        .env("QT_QPA_PLATFORM", "offscreen")
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the Qt peer ({command}): {e}"));
    let stdout = read_all(child.stdout.take().expect("piped stdout"));
    let stderr = read_all(child.stderr.take().expect("piped stderr"));
    let end = Instant::now() + deadline;
    let status = loop {
        match child.try_wait().unwrap_or_else(|e| panic!("waiting for the Qt peer ({command}): {e}")) {
            Some(status) => break status,
            None if Instant::now() < end => thread::sleep(Duration::from_millis(10)),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the Qt peer did not finish within {deadline:?}: {command}");
            }
        }
    };
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    PeerOutput { success: status.success(), stdout, stderr }
}

/// Reads `pipe` to its end on a thread, so a full pipe never blocks the peer.
fn read_all(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s);
        s
    })
}

/// A file of peer commands in the temp dir, removed when dropped (also when
/// the test fails).
pub struct BatchFile(PathBuf);

impl BatchFile {
    /// Writes `contents` to `<temp dir>/<name>_<pid>.txt`.
    pub fn new(name: &str, contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{name}_{}.txt", std::process::id()));
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        BatchFile(path)
    }

    /// The file's path, for the peer's command line.
    pub fn path(&self) -> &str {
        self.0.to_str().expect("the temp dir is UTF-8")
    }
}

impl Drop for BatchFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
