//! The tutorial's **Reader**: attaches to the segment keyed
//! `"SharedMemoryExample"`, copies it out under the lock, decodes the
//! QDataStream `QString` at its start, prints it and detaches.
//!
//! ```text
//! cargo run -p qipc --example reader              # key "SharedMemoryExample"
//! cargo run -p qipc --example reader -- MyKey     # another legacy key
//! ```
//!
//! It reads what `writer` wrote, and what the Qt Writer (Qt 5 or
//! Qt 6, same key) wrote. Exit status 0 on success, 1 if there is no segment
//! or it does not start with a QString.
//!
//! The Qt original, for comparison:
//!
//! ```cpp
//! QSharedMemory sharedMemory("SharedMemoryExample");
//! if (!sharedMemory.attach()) { qDebug() << "Unable to attach to shared memory segment."; return 1; }
//! sharedMemory.lock();
//! QByteArray data; data.resize(sharedMemory.size());
//! memcpy(data.data(), sharedMemory.constData(), qMin(sharedMemory.size(), data.size()));
//! sharedMemory.unlock();
//! QBuffer buffer(&data); buffer.open(QBuffer::ReadOnly);
//! QDataStream in(&buffer); QString message; in >> message;
//! qDebug() << "Data read from shared memory:" << message;
//! ```

use std::process::ExitCode;

use qipc::{datastream::DataStreamReader, AccessMode, ErrorKind, SharedMemory};

const DEFAULT_KEY: &str = "SharedMemoryExample";
const USAGE: &str =
    "usage: reader [KEY]   (KEY is a legacy key as in QSharedMemory(KEY); default \"SharedMemoryExample\")";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let key = match args.as_slice() {
        [] => DEFAULT_KEY.to_string(),
        [flag] if flag == "-h" || flag == "--help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        [flag] if flag.starts_with("--") => return usage_error(&format!("unknown option {flag}")),
        [key] => key.clone(),
        _ => return usage_error("more than one key given"),
    };

    let mut shared_memory = SharedMemory::new(&key); // QSharedMemory sharedMemory(key);
    if let Err(err) = shared_memory.attach(AccessMode::ReadOnly) {
        if err.kind() == ErrorKind::NotFound {
            eprintln!(
                "reader: Unable to attach to shared memory segment: no segment with key {key:?} exists.\n\
                 \x20 Start a writer first, e.g.  cargo run -p qipc --example writer -- {key}"
            );
        } else {
            eprintln!("reader: Unable to attach to shared memory segment {key:?}: {err}");
        }
        return ExitCode::FAILURE;
    }

    // lock(); memcpy(data, constData(), size()); unlock();
    let data = match shared_memory.lock() {
        Ok(guard) => guard.to_vec(),
        Err(err) => {
            eprintln!("reader: cannot lock the segment {key:?}: {err}");
            return ExitCode::FAILURE;
        }
    };
    // in >> message;
    let message = DataStreamReader::new(&data).read_qstring();
    if let Err(err) = shared_memory.detach() {
        eprintln!("reader: detach failed: {err}");
        return ExitCode::FAILURE;
    }

    match message {
        Ok(Some(message)) => {
            println!("Data read from shared memory: {message:?}");
            ExitCode::SUCCESS
        }
        Ok(None) => {
            println!("Data read from shared memory: \"\" (a null QString)");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!(
                "reader: the {}-byte segment {key:?} does not start with a QDataStream QString: {err}",
                data.len()
            );
            ExitCode::FAILURE
        }
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("reader: {message}\n{USAGE}");
    ExitCode::from(2)
}
