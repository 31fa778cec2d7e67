//! `qipc read`: attach, lock, copy, unlock, detach; then print or decode.

use qipc::{datastream::DataStreamReader, AccessMode};
use serde::Serialize;
use serde_json::{json, Value};

use super::attach::{self, Session};
use crate::{
    cli::{Format, ReadArgs},
    error::{CliError, CmdResult},
    json::{self, KeyJson},
    keys, output,
};

#[derive(Serialize)]
struct ReadDoc {
    key: KeyJson,
    size: usize,
    offset: usize,
    len: usize,
    #[serde(rename = "as")]
    format: &'static str,
    hex: String,
    text: Option<String>,
    value: Value,
    out: Option<String>,
}

pub fn run(a: &ReadArgs) -> CmdResult {
    let key = keys::resolve(&a.key)?;
    if a.format == Format::Qimage && a.out.is_none() {
        return Err(CliError::usage("--as qimage needs --out FILE.png (the image is written as a PNG file)"));
    }
    let session = Session::open(&key, AccessMode::ReadOnly, a.timeout)?;
    let (bytes, size, offset) = {
        let guard = session.lock()?;
        let size = guard.len();
        let (offset, n) = range(a.offset, a.len, size)?;
        let mut buf = vec![0u8; n];
        guard.read_at(offset, &mut buf).map_err(|e| attach::error(&e, &key, None))?;
        (buf, size, offset)
    };
    session.close()?;

    let bad = |what: &str, e: &dyn std::fmt::Display| {
        CliError::new("InvalidData", format!("no {what} at offset {offset} of the key {}: {e}", keys::label(&key)))
            .hint("`--as hex` shows the bytes")
    };
    let mut value = Value::Null;
    let mut text = None;
    let out: Vec<u8> = match a.format {
        Format::Raw => {
            text = std::str::from_utf8(&bytes).ok().map(str::to_string);
            bytes.clone()
        }
        Format::Hex => {
            text = std::str::from_utf8(&bytes).ok().map(str::to_string);
            hexdump(&bytes).into_bytes()
        }
        Format::Qstring => match DataStreamReader::new(&bytes).read_qstring() {
            Ok(Some(s)) => {
                value = Value::String(s.clone());
                format!("{s}\n").into_bytes()
            }
            Ok(None) => {
                if !a.output.json {
                    output::note("(a null QString)");
                }
                Vec::new()
            }
            Err(e) => return Err(bad("QString", &e)),
        },
        Format::Qbytearray => match DataStreamReader::new(&bytes).read_qbytearray() {
            Ok(b) => {
                let b = b.unwrap_or_default();
                text = std::str::from_utf8(&b).ok().map(str::to_string);
                value = Value::String(hex(&b));
                b
            }
            Err(e) => return Err(bad("QByteArray", &e)),
        },
        Format::Qimage => {
            let image = DataStreamReader::new(&bytes).read_qimage().map_err(|e| bad("QImage", &e))?;
            let path = a.out.as_deref().unwrap_or(std::path::Path::new("image.png"));
            let png = if image.is_null() { Vec::new() } else { image.to_png() };
            std::fs::write(path, &png).map_err(|e| CliError::io(format!("cannot write {}", path.display()), &e))?;
            let (w, h, f, null) = (image.width(), image.height(), image.format().name(), image.is_null());
            if a.output.json {
                value =
                    json!({ "width": w, "height": h, "format": f, "null": null, "png": path.display().to_string() });
            } else {
                output::outln(&format!("width={w} height={h} format={f} null={null} png={}", path.display()))?;
                return Ok(0);
            }
            Vec::new()
        }
    };
    if a.output.json {
        if let (Some(path), false) = (&a.out, a.format == Format::Qimage) {
            std::fs::write(path, &out).map_err(|e| CliError::io(format!("cannot write {}", path.display()), &e))?;
        }
        let doc = ReadDoc {
            key: KeyJson::of(&key),
            size,
            offset,
            len: bytes.len(),
            format: format_name(a.format),
            hex: hex(&bytes),
            text,
            value,
            out: a.out.as_ref().map(|p| p.display().to_string()),
        };
        json::print("read", &doc)?;
        return Ok(0);
    }
    match &a.out {
        Some(path) => {
            std::fs::write(path, &out).map_err(|e| CliError::io(format!("cannot write {}", path.display()), &e))?
        }
        None => output::out_bytes(&out)?,
    }
    Ok(0)
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::Raw => "raw",
        Format::Hex => "hex",
        Format::Qstring => "qstring",
        Format::Qbytearray => "qbytearray",
        Format::Qimage => "qimage",
    }
}

/// The part of a `size`-byte segment that `--offset` and `--len` name.
fn range(offset: u64, len: Option<u64>, size: usize) -> Result<(usize, usize), CliError> {
    let size64 = size as u64;
    if offset > size64 {
        return Err(CliError::new(
            "InvalidSize",
            format!("offset {offset} is beyond the end of the {size}-byte segment"),
        ));
    }
    let n = len.unwrap_or(size64 - offset);
    match offset.checked_add(n) {
        Some(end) if end <= size64 => Ok((offset as usize, n as usize)),
        _ => Err(CliError::new(
            "InvalidSize",
            format!("{n} bytes at offset {offset} go beyond the end of the {size}-byte segment"),
        )
        .hint(format!("at most {} bytes start at offset {offset}", size64 - offset))),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_never_overflow() {
        assert_eq!(range(0, None, 10).unwrap(), (0, 10));
        assert_eq!(range(4, Some(6), 10).unwrap(), (4, 6));
        assert_eq!(range(10, None, 10).unwrap(), (10, 0));
        assert!(range(11, None, 10).is_err());
        assert!(range(1, Some(u64::MAX), 10).is_err());
        assert!(range(u64::MAX, Some(u64::MAX), 10).is_err());
        assert!(range(4, Some(7), 10).is_err());
    }
}
