//! `share`, `read`, `write`, `lock`.

use std::{
    io::{Read, Write},
    time::Duration,
};

use qipc::{
    datastream::{DataStreamReader, DataStreamWriter},
    inspect, AccessMode, NativeKey, SharedMemory, SharedMemoryGuard,
};

use crate::{args::Args, signals, CliError, CliResult};

/// The bytes given by `--text`, `--qstring`, `--file` or `--stdin`.
fn payload(a: &Args, op: &str) -> Result<Vec<u8>, CliError> {
    let (opt, value) = a.one_of(&["--text", "--qstring", "--file", "--stdin"], false)?.expect("required");
    Ok(match opt {
        "--text" => value.as_bytes().to_vec(),
        "--qstring" => {
            let mut w = DataStreamWriter::new();
            w.write_qstring(Some(value));
            w.into_bytes()
        }
        "--file" => std::fs::read(value).map_err(|e| CliError::io(op, &format!("cannot read {value}"), e))?,
        _ => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf).map_err(|e| CliError::io(op, "cannot read stdin", e))?;
            buf
        }
    })
}

pub fn share(argv: &[String]) -> CliResult {
    const OP: &str = "share";
    let a = Args::parse(
        OP,
        argv,
        &["--native", "--type", "--text", "--qstring", "--file", "--size", "--for"],
        &["--stdin"],
    )?;
    a.max_positionals(1)?;
    let key = crate::key_from_args(&a)?;
    let size = a.number("--size")?;
    let limit = a.duration("--for")?;
    let data = payload(&a, OP)?;
    let size = size.unwrap_or(data.len().max(1));
    if size == 0 {
        return Err(a.usage("--size must be at least 1"));
    }
    if data.len() > size {
        return Err(CliError::failed(
            OP,
            "InvalidSize",
            format!("{} bytes of data do not fit in a {size}-byte segment", data.len()),
        ));
    }
    signals::install();
    let mut shm = SharedMemory::with_native_key(key);
    shm.create(size, AccessMode::ReadWrite).map_err(|e| CliError::qipc(OP, e))?;
    {
        let mut guard = shm.lock().map_err(|e| CliError::qipc(OP, e))?;
        guard.write_at(0, &data).map_err(|e| CliError::qipc(OP, e))?;
    }
    println!("READY {} size={} bytes={} pid={}", shm.native_key(), shm.size(), data.len(), std::process::id());
    let _ = std::io::stdout().flush();
    let why = match signals::wait(limit) {
        Some(sig) => signals::name(sig).to_string(),
        None => "time is up".to_string(),
    };
    shm.detach().map_err(|e| CliError::qipc(OP, e))?;
    println!("DETACHED ({why})");
    Ok(())
}

/// Attaches for a one-off operation. If the segment is orphaned (nobody
/// attached), detaching would remove it (Qt's last-detacher rule); a
/// diagnostic tool should not destroy what it looks at, so such an
/// attachment is kept until the process exits instead (the kernel detaches
/// without removing).
struct Attachment {
    shm: Option<SharedMemory>,
    preserve: bool,
    /// `--timeout`: the longest wait for the lock (attach and lock).
    timeout: Option<Duration>,
}

impl Attachment {
    fn open(key: NativeKey, mode: AccessMode, op: &str, timeout: Option<Duration>) -> Result<Attachment, CliError> {
        let preserve = inspect::info(&key)
            .ok()
            .and_then(|i| i.segment_object().map(|o| o.state == inspect::State::Orphaned))
            .unwrap_or(false);
        let mut shm = SharedMemory::with_native_key(key);
        match timeout {
            Some(t) => shm.attach_timeout(mode, t),
            None => shm.attach(mode),
        }
        .map_err(|e| CliError::qipc(op, e))?;
        Ok(Attachment { shm: Some(shm), preserve, timeout })
    }

    fn shm(&self) -> &SharedMemory {
        self.shm.as_ref().expect("attached")
    }

    /// Takes the segment's lock, waiting at most `--timeout` if given.
    fn lock(&self, op: &str) -> Result<SharedMemoryGuard<'_>, CliError> {
        match self.timeout {
            None => self.shm().lock().map_err(|e| CliError::qipc(op, e)),
            Some(t) => self.shm().lock_timeout(t).map_err(|e| CliError::qipc(op, e))?.ok_or_else(|| {
                CliError::failed(
                    op,
                    "LockError",
                    format!("SharedMemory::lock_timeout: the lock was not free within {t:?}"),
                )
            }),
        }
    }

    fn close(mut self, op: &str) -> CliResult {
        let shm = self.shm.take().expect("attached");
        if self.preserve {
            std::mem::forget(shm);
            return Ok(());
        }
        let mut shm = shm;
        shm.detach().map_err(|e| CliError::qipc(op, e))
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        if let Some(shm) = self.shm.take() {
            if self.preserve {
                std::mem::forget(shm);
            }
        }
    }
}

fn slice_range(a: &Args, len: usize, op: &str) -> Result<(usize, usize), CliError> {
    let offset = a.number("--offset")?.unwrap_or(0);
    if offset > len {
        return Err(CliError::failed(op, "InvalidSize", format!("offset {offset} is beyond the {len}-byte segment")));
    }
    let n = a.number("--len")?.unwrap_or(len - offset);
    if offset + n > len {
        return Err(CliError::failed(
            op,
            "InvalidSize",
            format!("{n} bytes at offset {offset} go beyond the {len}-byte segment"),
        ));
    }
    Ok((offset, n))
}

pub fn read(argv: &[String]) -> CliResult {
    const OP: &str = "read";
    let a = Args::parse(OP, argv, &["--native", "--type", "--as", "--offset", "--len", "--out", "--timeout"], &[])?;
    a.max_positionals(1)?;
    let key = crate::key_from_args(&a)?;
    let format = a.value("--as").unwrap_or("raw");
    if !["raw", "hex", "qstring", "qbytearray", "qimage"].contains(&format) {
        return Err(a.usage(format!("--as: expected raw, hex, qstring, qbytearray or qimage, not `{format}`")));
    }
    if format == "qimage" && a.value("--out").is_none() {
        return Err(a.usage("--as qimage needs --out FILE.png"));
    }
    let att = Attachment::open(key, AccessMode::ReadOnly, OP, a.duration("--timeout")?)?;
    let bytes = {
        let guard = att.lock(OP)?;
        let (offset, n) = slice_range(&a, guard.len(), OP)?;
        let mut buf = vec![0u8; n];
        guard.read_at(offset, &mut buf).map_err(|e| CliError::qipc(OP, e))?;
        buf
    };
    att.close(OP)?;
    let decode_err =
        |what: &str, e: &dyn std::fmt::Display| CliError::failed(OP, "DecodeError", format!("{what}: {e}"));
    let out: Vec<u8> = match format {
        "raw" => bytes,
        "hex" => hexdump(&bytes).into_bytes(),
        "qstring" => match DataStreamReader::new(&bytes).read_qstring() {
            Ok(Some(s)) => format!("{s}\n").into_bytes(),
            Ok(None) => {
                eprintln!("(null QString)");
                Vec::new()
            }
            Err(e) => return Err(decode_err("no QString at this offset", &e)),
        },
        "qbytearray" => match DataStreamReader::new(&bytes).read_qbytearray() {
            Ok(b) => b.unwrap_or_default(),
            Err(e) => return Err(decode_err("no QByteArray at this offset", &e)),
        },
        _ => {
            let image =
                DataStreamReader::new(&bytes).read_qimage().map_err(|e| decode_err("no QImage at this offset", &e))?;
            let path = a.value("--out").expect("checked");
            let png = if image.is_null() { Vec::new() } else { image.to_png() };
            std::fs::write(path, &png).map_err(|e| CliError::io(OP, &format!("cannot write {path}"), e))?;
            println!(
                "width={} height={} format={} null={} png={path}",
                image.width(),
                image.height(),
                image.format(),
                image.is_null()
            );
            return Ok(());
        }
    };
    match a.value("--out") {
        Some(path) => std::fs::write(path, &out).map_err(|e| CliError::io(OP, &format!("cannot write {path}"), e)),
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&out).and_then(|()| stdout.flush()).map_err(|e| CliError::io(OP, "stdout", e))
        }
    }
}

/// `00000000  00 00 00 24 00 48 00 65  ...  |...$.H.e|`
fn hexdump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let mut hex = String::new();
        for (j, b) in chunk.iter().enumerate() {
            if j == 8 {
                hex.push(' ');
            }
            hex.push_str(&format!("{b:02x} "));
        }
        let ascii: String = chunk.iter().map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '.' }).collect();
        out.push_str(&format!("{:08x}  {hex:<49} |{ascii}|\n", i * 16));
    }
    out
}

pub fn write(argv: &[String]) -> CliResult {
    const OP: &str = "write";
    let a = Args::parse(
        OP,
        argv,
        &["--native", "--type", "--offset", "--text", "--qstring", "--file", "--timeout"],
        &["--stdin"],
    )?;
    a.max_positionals(1)?;
    let key = crate::key_from_args(&a)?;
    let offset = a.number("--offset")?.unwrap_or(0);
    let data = payload(&a, OP)?;
    let att = Attachment::open(key, AccessMode::ReadWrite, OP, a.duration("--timeout")?)?;
    let result = (|| {
        let mut guard = att.lock(OP)?;
        let len = guard.len();
        if offset.checked_add(data.len()).map_or(true, |end| end > len) {
            return Err(CliError::failed(
                OP,
                "InvalidSize",
                format!(
                    "{} bytes at offset {offset} do not fit in the {len}-byte segment; nothing written",
                    data.len()
                ),
            ));
        }
        guard.write_at(offset, &data).map_err(|e| CliError::qipc(OP, e))?;
        Ok(())
    })();
    let closed = att.close(OP);
    result?;
    closed?;
    println!("wrote {} bytes at offset {offset}", data.len());
    Ok(())
}

pub fn lock(argv: &[String]) -> CliResult {
    const OP: &str = "lock";
    let a = Args::parse(OP, argv, &["--native", "--type", "--timeout"], &[])?;
    a.max_positionals(1)?;
    let key = crate::key_from_args(&a)?;
    let timeout = a.duration("--timeout")?;
    if a.rest.is_empty() {
        return Err(a.usage("a COMMAND is required after `--`"));
    }
    signals::install();
    // Attaching would itself wait for the lock (Qt takes it around attach),
    // beyond --timeout; the lock needs no attachment, only the segment.
    let exists = inspect::info(&key).map_err(|e| CliError::qipc(OP, e))?.segment_object().is_some();
    if !exists {
        return Err(CliError::failed(OP, "NotFound", format!("no segment for key {key}")));
    }
    let shm = SharedMemory::with_native_key(key);
    let guard = match timeout {
        None => shm.lock().map_err(|e| CliError::qipc(OP, e))?,
        Some(t) => match shm.lock_timeout(t).map_err(|e| CliError::qipc(OP, e))? {
            Some(g) => g,
            None => {
                return Err(CliError::failed(
                    OP,
                    "LockError",
                    format!("SharedMemory::lock_timeout: the lock was not free within {t:?}"),
                ))
            }
        },
    };
    let status = std::process::Command::new(&a.rest[0]).args(&a.rest[1..]).status();
    drop(guard);
    drop(shm);
    let status = status.map_err(|e| CliError::io(OP, &format!("cannot run `{}`", a.rest[0]), e))?;
    use std::os::unix::process::ExitStatusExt;
    let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    if code == 0 {
        Ok(())
    } else {
        Err(CliError::Exit(code.clamp(1, 255) as u8))
    }
}
