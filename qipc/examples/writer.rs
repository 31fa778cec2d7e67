//! The tutorial's **Writer**: creates a 1024-byte shared memory segment keyed
//! `"SharedMemoryExample"`, serialises `QString("Hello from writer!")` into
//! it with the QDataStream format under the lock, and stays attached until
//! Ctrl-C or SIGTERM, like the Qt program's `a.exec()`.
//!
//! ```text
//! cargo run -p qipc --example writer                    # key "SharedMemoryExample"
//! cargo run -p qipc --example writer -- MyKey           # another legacy key
//! cargo run -p qipc --example writer -- --remove MyKey  # clear what a crashed writer left
//! ```
//!
//! The key is a legacy key, as `QSharedMemory("SharedMemoryExample")`: a Qt 5
//! or Qt 6 reader with the same key reads the string (and `reader` reads
//! what a Qt writer wrote).
//!
//! The Qt original, for comparison:
//!
//! ```cpp
//! QSharedMemory sharedMemory("SharedMemoryExample");
//! if (!sharedMemory.create(1024)) { qDebug() << "Unable to create shared memory segment."; return 1; }
//! QByteArray data; QBuffer buffer(&data); buffer.open(QBuffer::WriteOnly);
//! QDataStream out(&buffer); out << QString("Hello from writer!");
//! sharedMemory.lock();
//! memcpy(sharedMemory.data(), data.data(), qMin(sharedMemory.size(), data.size()));
//! sharedMemory.unlock();
//! qDebug() << "Data written to shared memory.";
//! return a.exec();
//! ```

mod support;

use std::process::ExitCode;

use support::{say, StopRequests, STOP_SIGNALS, STOP_WORDS};

use qipc::{datastream::DataStreamWriter, AccessMode, ErrorKind, KeyType, NativeKey, SharedMemory};

const DEFAULT_KEY: &str = "SharedMemoryExample";
const SIZE: usize = 1024;
const MESSAGE: &str = "Hello from writer!";
const USAGE: &str = "usage: writer [KEY]            create the segment, write the string, wait for Ctrl-C/SIGTERM
       writer --remove [KEY]   remove a segment (and its lock) left behind by a crashed writer
KEY is a legacy key as in QSharedMemory(KEY); default \"SharedMemoryExample\"";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut remove = false;
    let mut key = None;
    for arg in &args {
        match arg.as_str() {
            "--remove" => remove = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            flag if flag.starts_with("--") => return usage_error(&format!("unknown option {flag}")),
            _ if key.is_some() => return usage_error("more than one key given"),
            other => key = Some(other.to_string()),
        }
    }
    let key = key.unwrap_or_else(|| DEFAULT_KEY.to_string());
    if remove {
        return remove_segment(&key);
    }

    // Handle stop requests first: one that arrives while we create and
    // write is waited for below, and we still detach cleanly.
    let stops = match StopRequests::install() {
        Ok(stops) => stops,
        Err(err) => {
            eprintln!("writer: cannot handle {STOP_SIGNALS}: {err}");
            return ExitCode::FAILURE;
        }
    };

    let mut shared_memory = SharedMemory::new(&key); // QSharedMemory sharedMemory(key);
    if let Err(err) = shared_memory.create(SIZE, AccessMode::ReadWrite) {
        if err.kind() == ErrorKind::AlreadyExists {
            eprintln!(
                "writer: Unable to create shared memory segment: a segment with key {key:?} already exists.\n\
                 \x20 - Another writer may be running with this key: stop it first (Ctrl-C), or read it with `reader {key}`.\n\
                 \x20 - If no writer is running, one that crashed (or was killed with SIGKILL) left it behind:\n\
                 \x20   on Linux a System V segment outlives a creator that dies without detaching.\n\
                 \x20   Clear it with:  cargo run -p qipc --example writer -- --remove {key}\n\
                 \x20   (or by hand: ipcrm the segment of key file {} and delete that file)",
                shared_memory.native_key().native_key()
            );
        } else {
            eprintln!("writer: Unable to create shared memory segment {key:?}: {err}");
        }
        return ExitCode::FAILURE;
    }

    // QBuffer + QDataStream out(&buffer); out << QString("Hello from writer!");
    let mut out = DataStreamWriter::new();
    out.write_qstring(Some(MESSAGE));
    let data = out.into_bytes();

    // lock(); memcpy(data(), from, qMin(size(), data.size())); unlock();
    let written = shared_memory.lock().and_then(|mut guard| {
        let n = data.len().min(guard.len());
        guard.write_at(0, &data[..n])
    });
    if let Err(err) = written {
        eprintln!("writer: cannot write the segment {key:?}: {err}");
        return ExitCode::FAILURE; // dropping shared_memory detaches
    }

    say(format_args!("Data written to shared memory."));
    say(format_args!(
        "writer: QString {MESSAGE:?} ({} bytes of QDataStream) is in the {SIZE}-byte segment {key:?} ({}); \
         waiting for {STOP_WORDS}",
        data.len(),
        shared_memory.native_key()
    ));

    stops.wait();
    say(format_args!("writer: stop requested ({STOP_SIGNALS}), detaching"));
    match shared_memory.detach() {
        Ok(()) => {
            say(format_args!("writer: detached"));
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("writer: detach failed: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `writer --remove KEY`: removes the segment, its lock semaphore and their
/// key files, whoever is attached (`SharedMemory::remove`).
fn remove_segment(key: &str) -> ExitCode {
    match SharedMemory::remove(&NativeKey::legacy_shared_memory(key, KeyType::LEGACY_DEFAULT)) {
        // Windows frees a segment with its last handle; nothing can be removed by name.
        Ok(true) if cfg!(windows) => {
            println!(
                "writer: a segment with key {key:?} exists: a running process holds it; \
                 Windows frees it when the last one closes it (nothing was removed)"
            );
            ExitCode::SUCCESS
        }
        Ok(true) => {
            println!("writer: removed the shared memory segment {key:?} and its lock");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            println!("writer: nothing to remove: no segment with key {key:?} exists");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("writer: cannot remove the segment {key:?}: {err}");
            ExitCode::FAILURE
        }
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("writer: {message}\n{USAGE}");
    ExitCode::from(2)
}
