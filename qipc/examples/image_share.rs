//! Qt's **Shared Memory Example** (`examples/corelib/ipc/sharedmemory`)
//! without the window: `load` puts an image into shared memory, `display`
//! takes it out again.
//!
//! ```text
//! cargo run -p qipc --example image_share -- load photo.jpg          # legacy key "QSharedMemoryExample"
//! cargo run -p qipc --example image_share -- display --out shown.png
//! cargo run -p qipc --example image_share -- load photo.jpg --native QSharedMemoryExample   # Qt 6.6+ example
//! ```
//!
//! - `load IMAGE` reads any common image format (PNG, JPEG, BMP, GIF, through
//!   the `image` crate), serialises it as `QDataStream << QImage` (a `qint32`
//!   1 followed by a PNG file), creates a segment of exactly that size, copies
//!   the stream in under the lock, and stays attached until SIGINT/SIGTERM,
//!   as the dialog keeps its `QSharedMemory` until it closes.
//! - `display` attaches, copies the segment out under the lock, detaches,
//!   decodes `QDataStream >> QImage`, writes the image as PNG (`--out`,
//!   default `shared_image.png`) and prints its width, height and
//!   `QImage::Format`.
//!
//! # Keys
//!
//! The Qt example changed its key in Qt 6.6:
//!
//! | Qt example | key | here |
//! |---|---|---|
//! | Qt 5.x, Qt 6.0–6.5 | `QSharedMemory("QSharedMemoryExample")`: legacy key, System V on Linux | `--key QSharedMemoryExample` |
//! | Qt 6.6+ | `QSharedMemory(QNativeIpcKey("QSharedMemoryExample"))`: POSIX, `/dev/shm/QSharedMemoryExample` | `--native QSharedMemoryExample` (or `posix:QSharedMemoryExample`) |
//!
//! Default: `load` uses the legacy key, which every Qt version can open
//! (Qt 6 still accepts `QSharedMemory(QString)`), and which does not leave a
//! file in `/dev/shm` when a Qt process detaches last. `display` without a
//! key tries the legacy key first and then the Qt 6.6+ POSIX key, so it shows
//! the image of whichever Qt example (or `load`) is running.
//!
//! `--native` takes the `QNativeIpcKey::toString()` text form (`posix:NAME`,
//! `systemv:/path`, optionally `?legacyKey=...`); a bare NAME means
//! `posix:NAME`, which is what `QNativeIpcKey(NAME)` gives in Qt 6.
//!
//! Exit status: 0 on success, 1 on an error (message on stderr names what
//! failed and why), 2 on a usage error.

mod support;

use std::{path::PathBuf, process::ExitCode};

use support::{say, StopRequests, STOP_SIGNALS};

use qipc::{
    datastream::{DataStreamReader, DataStreamWriter, ImageFormat as QImageFormat, QImage},
    AccessMode, ErrorKind, KeyType, NativeKey, SharedMemory,
};

const EXAMPLE_KEY: &str = "QSharedMemoryExample";
const DEFAULT_OUT: &str = "shared_image.png";
const USAGE: &str = "usage: image_share load IMAGE [--key KEY | --native NATIVE]
       image_share display [--key KEY | --native NATIVE] [--out FILE]
Qt's Shared Memory Example without the window.
  load      read IMAGE (PNG, JPEG, BMP, GIF), put it into shared memory as QDataStream << QImage,
            and stay attached until SIGINT/SIGTERM
  display   read the QImage from shared memory, save it as PNG (default shared_image.png),
            print its width, height and format
  --key KEY        legacy key, as QSharedMemory(KEY) (System V on Linux); Qt 5's example uses
                   \"QSharedMemoryExample\", the default for load
  --native NATIVE  native key, QNativeIpcKey text form (posix:NAME, systemv:/path, windows:NAME); a
                   bare NAME means Qt's default type (posix:NAME; windows:NAME on Windows); Qt 6.6+'s
                   example uses QNativeIpcKey(\"QSharedMemoryExample\")
Without a key, display tries the legacy key \"QSharedMemoryExample\", then Qt 6's native key.";

enum Command {
    Load { image: PathBuf, key: Option<NativeKey> },
    Display { key: Option<NativeKey>, out: PathBuf },
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args) {
        Ok(None) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Some(Command::Load { image, key })) => load(&image, key.unwrap_or_else(legacy_example_key)),
        Ok(Some(Command::Display { key, out })) => display(key, &out),
        Err(message) => {
            eprintln!("image_share: {message}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn legacy_example_key() -> NativeKey {
    NativeKey::legacy_shared_memory(EXAMPLE_KEY, KeyType::LEGACY_DEFAULT)
}

/// `Ok(None)` for `--help`.
fn parse(args: &[String]) -> Result<Option<Command>, String> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return Ok(None);
    }
    let mut args = args.iter();
    let command = args.next().ok_or("no command given (load or display)")?.clone();
    if command != "load" && command != "display" {
        return Err(format!("unknown command {command:?} (expected load or display)"));
    }
    let (mut key, mut out, mut image) = (None, None, None);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().cloned().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--key" | "--native" if key.is_some() => return Err("give one key only (--key or --native)".into()),
            "--key" => key = Some(NativeKey::legacy_shared_memory(&value("--key")?, KeyType::LEGACY_DEFAULT)),
            "--native" => key = Some(parse_native(&value("--native")?)?),
            "--out" if command == "display" && out.is_none() => out = Some(PathBuf::from(value("--out")?)),
            flag if flag.starts_with('-') && flag.len() > 1 => {
                return Err(format!("unknown option {flag} for {command}"))
            }
            file if command == "load" && image.is_none() => image = Some(PathBuf::from(file)),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    match command.as_str() {
        "load" => Ok(Some(Command::Load { image: image.ok_or("load needs an IMAGE file")?, key })),
        _ => Ok(Some(Command::Display { key, out: out.unwrap_or_else(|| PathBuf::from(DEFAULT_OUT)) })),
    }
}

/// `posix:NAME`, `systemv:/path`, `windows:NAME` (QNativeIpcKey text form), or
/// a bare name of Qt's default type (POSIX; on Windows, a Windows name).
fn parse_native(text: &str) -> Result<NativeKey, String> {
    if text.contains(':') {
        NativeKey::from_string(text).map_err(|err| format!("invalid native key: {err}"))
    } else if text.is_empty() {
        Err("--native needs a non-empty name".to_string())
    } else {
        Ok(NativeKey::new(text, KeyType::DEFAULT))
    }
}

fn describe(key: &NativeKey) -> String {
    match key.legacy_key() {
        Some(legacy) => format!("legacy key {legacy:?}"),
        None => format!("native key {key}"),
    }
}

/// Dialog::loadFromFile() without the file dialog.
fn load(path: &std::path::Path, key: NativeKey) -> ExitCode {
    let desc = describe(&key);
    // QImage image; image.load(fileName)
    let decoded = image::ImageReader::open(path)
        .map_err(|e| e.to_string())
        .and_then(|r| r.with_guessed_format().map_err(|e| e.to_string()))
        .and_then(|r| {
            let file_format = r.format();
            r.decode().map(|image| (image, file_format)).map_err(|e| e.to_string())
        });
    let (decoded, file_format) = match decoded {
        Ok(decoded) => decoded,
        Err(err) => {
            eprintln!("image_share: Selected file is not an image: cannot read {}: {err}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let format = qt_format(path, file_format, &decoded);
    let (width, height) = (decoded.width(), decoded.height());
    // The conversion fails only for a palette of more than 256 colours (a
    // 16-bit palette BMP, say); Format_ARGB32 keeps every pixel then.
    let qimage = QImage::from_rgba8(width, height, decoded.into_rgba8().into_raw())
        .map(|image| image.convert_to(format).unwrap_or(image));
    let qimage = match qimage {
        Ok(qimage) if !qimage.is_null() => qimage,
        Ok(_) => {
            eprintln!("image_share: {} is an empty image ({width}x{height})", path.display());
            return ExitCode::FAILURE;
        }
        Err(err) => {
            eprintln!("image_share: cannot make a QImage of {} ({width}x{height}): {err}", path.display());
            return ExitCode::FAILURE;
        }
    };
    // QBuffer buffer; QDataStream out(&buffer); out << image;
    let mut out = DataStreamWriter::new();
    out.write_qimage(&qimage);
    let data = out.into_bytes();

    let stops = match StopRequests::install() {
        Ok(stops) => stops,
        Err(err) => {
            eprintln!("image_share: cannot handle {STOP_SIGNALS}: {err}");
            return ExitCode::FAILURE;
        }
    };
    // sharedMemory.create(size)
    let mut shared_memory = SharedMemory::with_native_key(key);
    if let Err(err) = shared_memory.create(data.len(), AccessMode::ReadWrite) {
        if err.kind() == ErrorKind::AlreadyExists {
            eprintln!(
                "image_share: Unable to create shared memory segment: a segment with {desc} already exists \
                 (another load, or Qt's example, is holding an image; stop it first): {err}"
            );
        } else {
            eprintln!("image_share: Unable to create shared memory segment ({desc}, {} bytes): {err}", data.len());
        }
        return ExitCode::FAILURE;
    }
    // lock(); memcpy(data(), buffer.data(), qMin(size(), buffer.size())); unlock();
    let written = shared_memory.lock().and_then(|mut guard| {
        let n = data.len().min(guard.len());
        guard.write_at(0, &data[..n])
    });
    if let Err(err) = written {
        eprintln!("image_share: cannot write the image into the segment ({desc}): {err}");
        return ExitCode::FAILURE;
    }
    say(format_args!(
        "loaded {} {} {} segment {} bytes ({desc}); waiting for {STOP_SIGNALS}",
        qimage.width(),
        qimage.height(),
        qimage.format(),
        shared_memory.size()
    ));
    stops.wait();
    match shared_memory.detach() {
        Ok(()) => {
            say(format_args!("image_share: stop requested ({STOP_SIGNALS}), detached"));
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("image_share: detach failed ({desc}): {err}");
            ExitCode::FAILURE
        }
    }
}

/// The `QImage::Format` Qt's own reader gives for this file, so that the
/// stream holds what `QImage::load` would have produced: `Format_Indexed8`
/// for palette images (PNG colour type 3, GIF, BMP of 8 bits or fewer),
/// `Format_Grayscale8` for grey ones, `Format_RGB32` without alpha and
/// `Format_ARGB32` with alpha. Pixels are 8 bits per channel (16-bit files
/// are reduced, where Qt would keep `Format_RGBA64`/`Format_Grayscale16`).
fn qt_format(
    path: &std::path::Path,
    file_format: Option<image::ImageFormat>,
    image: &image::DynamicImage,
) -> QImageFormat {
    let head = std::fs::File::open(path)
        .and_then(|mut f| {
            let mut head = [0u8; 32];
            std::io::Read::read(&mut f, &mut head).map(|n| head[..n].to_vec())
        })
        .unwrap_or_default();
    let palette = match file_format {
        // 8-byte signature, IHDR length and type, width, height, bit depth, colour type.
        Some(image::ImageFormat::Png) => head.len() > 25 && &head[12..16] == b"IHDR" && head[25] == 3,
        Some(image::ImageFormat::Gif) => true,
        Some(image::ImageFormat::Bmp) => head.len() > 29 && u16::from_le_bytes([head[28], head[29]]) <= 8,
        _ => false,
    };
    let color = image.color();
    if palette {
        QImageFormat::Indexed8
    } else if color.channel_count() == 1 {
        QImageFormat::Grayscale8
    } else if color.has_alpha() {
        QImageFormat::ARGB32
    } else {
        QImageFormat::RGB32
    }
}

/// Dialog::loadFromMemory() without the label.
fn display(key: Option<NativeKey>, out_path: &std::path::Path) -> ExitCode {
    let candidates = match key {
        Some(key) => vec![key],
        // Qt 6.6+'s example: QNativeIpcKey("QSharedMemoryExample"), Qt's default type.
        None => vec![legacy_example_key(), NativeKey::new(EXAMPLE_KEY, KeyType::DEFAULT)],
    };
    let mut attached = None;
    let mut tried = Vec::new();
    for key in candidates {
        let desc = describe(&key);
        let mut shared_memory = SharedMemory::with_native_key(key);
        match shared_memory.attach(AccessMode::ReadOnly) {
            Ok(()) => {
                attached = Some((shared_memory, desc));
                break;
            }
            Err(err) if err.kind() == ErrorKind::NotFound => tried.push(desc),
            Err(err) => {
                eprintln!("image_share: Unable to attach to shared memory segment ({desc}): {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    let Some((mut shared_memory, desc)) = attached else {
        eprintln!(
            "image_share: Unable to attach to shared memory segment: no segment with {} exists.\n\
             Load an image first (image_share load IMAGE, or Qt's Shared Memory Example).",
            tried.join(" or ")
        );
        return ExitCode::FAILURE;
    };
    // lock(); buffer.setData(constData(), size()); in >> image; unlock(); detach();
    let data = match shared_memory.lock() {
        Ok(guard) => guard.to_vec(),
        Err(err) => {
            eprintln!("image_share: cannot lock the segment ({desc}): {err}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(err) = shared_memory.detach() {
        eprintln!("image_share: detach failed ({desc}): {err}");
        return ExitCode::FAILURE;
    }
    let image = match DataStreamReader::new(&data).read_qimage() {
        Ok(image) if !image.is_null() => image,
        Ok(_) => {
            eprintln!("image_share: the segment ({desc}) holds a null QImage");
            return ExitCode::FAILURE;
        }
        Err(err) => {
            eprintln!(
                "image_share: the {}-byte segment ({desc}) does not hold a QDataStream QImage: {err}",
                data.len()
            );
            return ExitCode::FAILURE;
        }
    };
    if let Err(err) = std::fs::write(out_path, image.to_png()) {
        eprintln!("image_share: cannot write {}: {err}", out_path.display());
        return ExitCode::FAILURE;
    }
    say(format_args!(
        "displayed {} {} {} -> {} ({desc}, {} bytes)",
        image.width(),
        image.height(),
        image.format(),
        out_path.display(),
        data.len()
    ));
    ExitCode::SUCCESS
}
