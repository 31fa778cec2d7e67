//! `qipc demo`: the seeds' writer and reader, as real processes, narrated.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use qipc::{
    datastream::DataStreamReader,
    inspect::{self, ObjectInfo},
    AccessMode, KeyType, NativeKey, SharedMemory,
};

use crate::{args::Args, output, signals, CliError, CliResult};

const OP: &str = "demo";
const MESSAGE: &str = "Hello from writer!";

/// Kills the writer and removes the demo key's objects, whatever happens.
struct Cleanup {
    writer: Option<Child>,
    key: NativeKey,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(mut child) = self.writer.take() {
            signals::kill(child.id(), libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // Only this run's unique key: nothing else is touched.
        let _ = SharedMemory::remove(&self.key);
    }
}

fn step(n: u32, text: &str) {
    println!("\n[{n}] {text}");
}

fn show_state(key: &NativeKey) {
    match inspect::info(key) {
        Ok(info) if info.objects.is_empty() => println!("    (nothing exists for this key)"),
        Ok(info) => {
            let objects: Vec<ObjectInfo> = info.objects;
            for line in output::objects_table(&objects).lines() {
                println!("    {line}");
            }
        }
        Err(e) => println!("    (cannot inspect: {e})"),
    }
}

fn interrupted() -> CliResult {
    match signals::received() {
        Some(sig) => Err(CliError::failed(OP, "Interrupted", format!("got {}; cleaned up", signals::name(sig)))),
        None => Ok(()),
    }
}

pub fn demo(argv: &[String]) -> CliResult {
    let a = Args::parse(OP, argv, &["--key"], &[])?;
    a.max_positionals(0)?;
    signals::install();
    let key_text =
        a.value("--key").map_or_else(|| format!("SharedMemoryExample-demo-{}", std::process::id()), str::to_string);
    let key = NativeKey::legacy_shared_memory(&key_text, KeyType::SYSTEM_V);
    let exe = std::env::current_exe().map_err(|e| CliError::io(OP, "cannot find the qipc executable", e))?;
    let mut cleanup = Cleanup { writer: None, key: key.clone() };

    println!("qipc demo: the seeds' Writer and Reader, as two real processes sharing memory the Qt way.");
    println!("key: {key_text:?}, a legacy key, as QSharedMemory({key_text:?}) uses on Linux (System V).");
    println!("    segment key file: {}", key.native_key());
    println!("    lock key file:    {}", key.lock_key().native_key());

    step(1, "Writer: create a 1024-byte segment, write QString(\"Hello from writer!\") with QDataStream under the lock, stay attached.");
    let mut writer = Command::new(&exe)
        .args(["share", &key_text, "--qstring", MESSAGE, "--size", "1024", "--for", "2m"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| CliError::io(OP, "cannot start the writer", e))?;
    let pid = writer.id();
    let stdout = writer.stdout.take().expect("piped");
    cleanup.writer = Some(writer);
    println!("    $ qipc share {key_text:?} --qstring {MESSAGE:?} --size 1024    (pid {pid})");
    let mut lines = BufReader::new(stdout).lines();
    match lines.next() {
        Some(Ok(line)) if line.starts_with("READY") => println!("    writer: {line}"),
        other => {
            let got = other.map(|l| l.unwrap_or_default()).unwrap_or_else(|| "nothing (it exited)".into());
            return Err(CliError::failed(OP, "WriterFailed", format!("the writer did not start: {got}")));
        }
    }
    interrupted()?;
    println!("    The segment now exists, with the writer attached (qipc ls):");
    show_state(&key);

    step(2, "Reader: attach, lock, copy the bytes, unlock, detach, decode the QString.");
    println!("    $ qipc __demo-reader {key_text:?}");
    let reader = Command::new(&exe)
        .args(["__demo-reader", &key_text])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| CliError::io(OP, "cannot run the reader", e))?;
    let text = String::from_utf8_lossy(&reader.stdout);
    for line in text.lines() {
        println!("    reader: {line}");
    }
    if !reader.status.success() {
        let err = String::from_utf8_lossy(&reader.stderr).trim().to_string();
        return Err(CliError::failed(OP, "ReaderFailed", format!("the reader failed: {err}")));
    }
    interrupted()?;
    println!("    The reader has detached; the writer is still attached, so the segment stays:");
    show_state(&key);

    step(3, "Writer exits (SIGTERM): it detaches; as the last process attached it removes the segment and key file,");
    println!("    and as the segment's creator it removes the lock semaphore (Qt's ownership rules).");
    let mut child = cleanup.writer.take().expect("started");
    signals::kill(child.id(), libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| CliError::io(OP, "waiting for the writer", e))? {
            break status;
        }
        if Instant::now() > deadline {
            cleanup.writer = Some(child);
            return Err(CliError::failed(OP, "WriterFailed", "the writer did not exit within 10 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    for line in lines.map_while(Result::ok) {
        println!("    writer: {line}");
    }
    if !status.success() {
        return Err(CliError::failed(OP, "WriterFailed", format!("the writer exited with {status}")));
    }
    println!("    After the writer exited:");
    show_state(&key);
    let left = inspect::info(&key).map(|i| i.objects.len()).unwrap_or(0);
    if left != 0 {
        return Err(CliError::failed(OP, "LeftBehind", format!("{left} object(s) left for the demo key; removed")));
    }
    println!("\nDone: the data went from one process to another through shared memory, and nothing is left behind.");
    Ok(())
}

/// The seeds' Reader (hidden command used by the demo).
pub fn reader(argv: &[String]) -> CliResult {
    const OP: &str = "__demo-reader";
    let a = Args::parse(OP, argv, &[], &[])?;
    a.max_positionals(1)?;
    let Some(key) = a.positionals.first() else {
        return Err(a.usage("KEY is required"));
    };
    let mut shm = SharedMemory::new(key);
    shm.attach(AccessMode::ReadOnly).map_err(|e| CliError::qipc(OP, e))?;
    let data = shm.lock().map_err(|e| CliError::qipc(OP, e))?.to_vec();
    shm.detach().map_err(|e| CliError::qipc(OP, e))?;
    let message = DataStreamReader::new(&data)
        .read_qstring()
        .map_err(|e| CliError::failed(OP, "DecodeError", e.to_string()))?
        .unwrap_or_default();
    println!("Data read from shared memory: {message:?}");
    Ok(())
}
