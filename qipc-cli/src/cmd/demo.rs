//! `qipc demo`: Qt's shared memory example as two real processes, a writer
//! and a reader, with what exists after each step.

use qipc::{datastream::DataStreamReader, AccessMode, SharedMemory};

#[cfg(not(target_os = "linux"))]
use crate::cli::DemoArgs;
use crate::{
    cli::DemoReaderArgs,
    error::{qipc_error, CliError, CmdResult},
    output,
};

/// The reader (a hidden command the demo runs): attach, lock, copy,
/// unlock, detach, decode, as Qt's example reader does.
pub fn reader(a: &DemoReaderArgs) -> CmdResult {
    let mut shm = SharedMemory::new(&a.key);
    let key = shm.native_key().clone();
    shm.attach(AccessMode::ReadOnly).map_err(|e| qipc_error(&e, &key))?;
    let data = shm.lock().map_err(|e| qipc_error(&e, &key))?.to_vec();
    shm.detach().map_err(|e| qipc_error(&e, &key))?;
    let message = DataStreamReader::new(&data)
        .read_qstring()
        .map_err(|e| CliError::new("InvalidData", format!("no QString in the segment: {e}")))?
        .unwrap_or_default();
    output::outln(&format!("Data read from shared memory: {message:?}"))?;
    Ok(0)
}

#[cfg(not(target_os = "linux"))]
pub fn run(_a: &DemoArgs) -> CmdResult {
    Err(CliError::new("Unsupported", "`qipc demo` runs on Linux (it shows each step with `qipc ls`'s inspector)"))
}

#[cfg(target_os = "linux")]
pub use linux::run;

#[cfg(target_os = "linux")]
mod linux {
    use std::{
        io::{BufRead, BufReader, Lines},
        process::{Child, ChildStdout, Command, Stdio},
        time::{Duration, Instant},
    };

    use qipc::{inspect, KeyType, NativeKey, SharedMemory};
    use serde::Serialize;

    use crate::{
        cli::DemoArgs,
        cmd::describe::{object_table, Columns},
        error::{CliError, CmdResult},
        json::{self, KeyJson, ObjectJson},
        output,
        signals::StopRequests,
    };

    const MESSAGE: &str = "Hello from writer!";

    #[derive(Serialize)]
    struct Step {
        step: u32,
        title: String,
        run: Vec<String>,
        output: Vec<String>,
        objects: Vec<ObjectJson>,
    }

    #[derive(Serialize)]
    struct DemoDoc {
        key: KeyJson,
        steps: Vec<Step>,
        message: Option<String>,
        left_behind: usize,
    }

    /// Stops the writer and removes the demo key's objects, whatever
    /// happens (this run's unique key only).
    struct Cleanup {
        writer: Option<Child>,
        key: NativeKey,
    }

    impl Drop for Cleanup {
        fn drop(&mut self) {
            if let Some(mut child) = self.writer.take() {
                terminate(&child);
                if wait_for(&mut child, Duration::from_secs(3)).is_none() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
            let _ = SharedMemory::remove(&self.key);
        }
    }

    /// SIGTERM, as a user stopping the writer would send.
    fn terminate(child: &Child) {
        let Ok(pid) = libc::pid_t::try_from(child.id()) else { return };
        // SAFETY: kill takes plain values; signalling our own child has no
        // memory-safety implications.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }

    /// Waits at most `limit` for the child to exit (std has no timed wait).
    fn wait_for(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Prints (text) or records (JSON) the demo.
    struct Narrator {
        json: bool,
        steps: Vec<Step>,
        key: NativeKey,
    }

    impl Narrator {
        fn say(&self, text: &str) -> Result<(), CliError> {
            if self.json {
                Ok(())
            } else {
                output::outln(text)
            }
        }

        fn step(&mut self, n: u32, title: &str) -> Result<(), CliError> {
            self.steps.push(Step {
                step: n,
                title: title.into(),
                run: Vec::new(),
                output: Vec::new(),
                objects: Vec::new(),
            });
            self.say(&format!("\n[{n}] {title}"))
        }

        fn run(&mut self, shown: &str) -> Result<(), CliError> {
            if let Some(s) = self.steps.last_mut() {
                s.run.push(shown.to_string());
            }
            self.say(&format!("    $ {shown}"))
        }

        fn output(&mut self, who: &str, line: &str) -> Result<(), CliError> {
            if let Some(s) = self.steps.last_mut() {
                s.output.push(line.to_string());
            }
            self.say(&format!("    {who}: {line}"))
        }

        /// What exists for the key now, as `qipc info` shows it.
        fn state(&mut self, intro: &str) -> Result<usize, CliError> {
            self.say(&format!("    {intro}"))?;
            let snap = inspect::Snapshot::take().map_err(|e| CliError::new("UnknownError", e.to_string()))?;
            let report = snap.key_report(&self.key);
            if let Some(s) = self.steps.last_mut() {
                s.objects = report.objects.iter().map(|o| ObjectJson::of(o, &snap)).collect();
            }
            if report.is_empty() {
                self.say("    (nothing exists for this key)")?;
            } else {
                let objects: Vec<&inspect::Object> = report.objects.iter().collect();
                let (table, _) = object_table(&objects, &snap, Columns::Short).render(None);
                for line in table.lines() {
                    self.say(&format!("    {line}"))?;
                }
            }
            Ok(report.objects.len())
        }
    }

    fn interrupted(stops: &StopRequests) -> Result<(), CliError> {
        if stops.requested() {
            return Err(CliError::new("Interrupted", "stopped; the demo's writer and segment were cleaned up"));
        }
        Ok(())
    }

    fn first_line(lines: &mut Lines<BufReader<ChildStdout>>) -> Option<String> {
        lines.next().and_then(Result::ok)
    }

    pub fn run(a: &DemoArgs) -> CmdResult {
        let stops = StopRequests::install()?;
        let key_text = a.key.clone().unwrap_or_else(|| format!("SharedMemoryExample-demo-{}", std::process::id()));
        let key = NativeKey::legacy_shared_memory(&key_text, KeyType::SYSTEM_V);
        let exe = std::env::current_exe().map_err(|e| CliError::io("cannot find the qipc program", &e))?;
        let mut cleanup = Cleanup { writer: None, key: key.clone() };
        let mut n = Narrator { json: a.out.json, steps: Vec::new(), key: key.clone() };

        n.say("qipc demo: Qt's shared memory example (a Writer and a Reader) as two real processes.")?;
        n.say(&format!("key: {key_text:?}, a legacy key, as QSharedMemory({key_text:?}) on Linux (System V)."))?;
        n.say(&format!("    segment key file: {}", key.native_key()))?;
        n.say(&format!("    lock key file:    {}", key.lock_key().native_key()))?;

        n.step(
            1,
            "Writer: create a 1024-byte segment, write QString(\"Hello from writer!\") with QDataStream under the lock, stay attached.",
        )?;
        let mut writer = Command::new(&exe)
            .args(["share", &key_text, "--qstring", MESSAGE, "--size", "1024", "--for", "2m"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| CliError::io("cannot start the writer", &e))?;
        let pid = writer.id();
        let stdout = writer.stdout.take();
        cleanup.writer = Some(writer);
        n.run(&format!("qipc share {key_text:?} --qstring {MESSAGE:?} --size 1024    (pid {pid})"))?;
        let Some(stdout) = stdout else {
            return Err(CliError::new("IoError", "the writer's output is not connected"));
        };
        let mut lines = BufReader::new(stdout).lines();
        match first_line(&mut lines) {
            Some(line) if line.starts_with("READY") => n.output("writer", &line)?,
            other => {
                let got = other.unwrap_or_else(|| "nothing (it exited)".into());
                return Err(CliError::new("WriterFailed", format!("the writer did not start: {got}")));
            }
        }
        interrupted(&stops)?;
        n.state("The segment exists now, with the writer attached (as `qipc ls` shows it):")?;

        n.step(2, "Reader: attach, lock, copy the bytes, unlock, detach, decode the QString.")?;
        n.run(&format!("qipc __demo-reader {key_text:?}"))?;
        let reader = Command::new(&exe)
            .args(["__demo-reader", &key_text])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| CliError::io("cannot run the reader", &e))?;
        let text = String::from_utf8_lossy(&reader.stdout).into_owned();
        for line in text.lines() {
            n.output("reader", line)?;
        }
        if !reader.status.success() {
            let err = String::from_utf8_lossy(&reader.stderr).trim().to_string();
            return Err(CliError::new("ReaderFailed", format!("the reader failed: {err}")));
        }
        let message = text
            .lines()
            .find_map(|l| l.strip_prefix("Data read from shared memory: "))
            .map(|m| m.trim_matches('"').to_string());
        interrupted(&stops)?;
        n.state("The reader has detached; the writer is still attached, so the segment stays:")?;

        n.step(
            3,
            "Writer exits (SIGTERM): it detaches; as the last process attached it removes the segment, its key file and its lock.",
        )?;
        let Some(mut child) = cleanup.writer.take() else {
            return Err(CliError::new("WriterFailed", "the writer is gone"));
        };
        n.run(&format!("kill -TERM {pid}"))?;
        terminate(&child);
        let Some(status) = wait_for(&mut child, Duration::from_secs(10)) else {
            cleanup.writer = Some(child);
            return Err(CliError::new("WriterFailed", "the writer did not exit within 10 s"));
        };
        for line in lines.map_while(Result::ok) {
            n.output("writer", &line)?;
        }
        if !status.success() {
            return Err(CliError::new("WriterFailed", format!("the writer exited with {status}")));
        }
        let left = n.state("After the writer exited:")?;
        if n.json {
            let doc =
                DemoDoc { key: KeyJson::of(&key), steps: std::mem::take(&mut n.steps), message, left_behind: left };
            json::print("demo", &doc)?;
        }
        if left != 0 {
            return Err(CliError::new("LeftBehind", format!("{left} object(s) were left for the demo key; removed")));
        }
        n.say("\nDone: the data went from one process to another through shared memory, and nothing is left behind.")?;
        Ok(0)
    }
}
