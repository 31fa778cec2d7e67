//! End-to-end tests of the example programs (qipc/examples) against real Qt.
//!
//! Every program runs as a separate process with a deadline, on keys unique
//! to the test, and every test checks that nothing is left in /tmp,
//! /dev/shm or the System V tables afterwards (a `Cleanup` guard removes
//! leftovers even when an assertion fails). The Qt side is
//! qipc/tests/qt/programs_peer.py, run with PyQt5 (Qt 5.15) and PySide6 (Qt 6);
//! if those are missing the tests fail and name scripts/setup-qt.sh.
//!
//! Integration tests get no `CARGO_BIN_EXE_*` for examples, so the first test
//! that needs one runs `cargo build -p qipc --examples --features qimage` once, into the same
//! target directory and profile as this test binary.

// These tests exercise Linux's objects and Qt peers (run by scripts/test.sh);
// Windows has its own in conformance.rs and windows_interop.rs.
#![cfg(unix)]

mod common;

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use common::{assert_clean, object_paths, qt_peer, unique_key, Cleanup, Proc};
use qipc::{KeyType, NativeKey};

/// Deadline of a program that should finish by itself.
const SHORT: Duration = Duration::from_secs(60);
/// Deadline of a program that stays until signalled.
const LONG: Duration = Duration::from_secs(120);
const PEER: &str = "programs_peer.py";
const HELLO_LINE: &str = "Data read from shared memory: \"Hello from writer!\"";

// ---- locating and running the example binaries --------------------------

/// The directory the example binaries are built into, after building them once.
fn examples_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // This binary is <target>/<profile>/deps/programs-<hash>.
        let exe = std::env::current_exe().expect("current_exe");
        let profile_dir = exe.parent().and_then(Path::parent).expect("<target>/<profile>").to_path_buf();
        let target_dir = profile_dir.parent().expect("<target>").to_path_buf();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let mut cmd = Command::new(cargo);
        // image_share needs `qimage`, which this test needs too (off by default).
        cmd.args(["build", "-q", "-p", "qipc", "--examples", "--features", "qimage"])
            .env("CARGO_TARGET_DIR", &target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        // Other builds may hold the target directory's lock for a while.
        let out = run("cargo build --examples", cmd, Duration::from_secs(900));
        assert!(out.status.success(), "cargo build -p qipc --examples --features qimage failed:\n{}", out.stderr);
        profile_dir.join("examples")
    })
}

/// The command that runs example `name`.
fn example(name: &str) -> Command {
    let path = examples_dir().join(name);
    assert!(path.exists(), "example binary {} was not built", path.display());
    Command::new(path)
}

/// A finished process: status and both outputs.
struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Output {
    fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\n--- stdout:\n{}--- stderr:\n{}", self.status, self.stdout, self.stderr)
    }
}

/// Runs `cmd` to completion within `deadline` (killed and a panic otherwise).
fn run(name: &str, mut cmd: Command, deadline: Duration) -> Output {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let pipe = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let _ = r.read_to_string(&mut s);
            }
            s
        })
    };
    let out = pipe(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = pipe(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let end = Instant::now() + deadline;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{name}: deadline of {deadline:?} passed; killed");
            }
        }
    };
    Output { status, stdout: out.join().unwrap_or_default(), stderr: err.join().unwrap_or_default() }
}

fn run_example(name: &str, args: &[&str]) -> Output {
    let mut cmd = example(name);
    cmd.args(args);
    run(&format!("{name} {}", args.join(" ")), cmd, SHORT)
}

fn spawn_example(name: &str, args: &[&str]) -> Proc {
    let mut cmd = example(name);
    cmd.args(args);
    Proc::spawn(&format!("{name} {}", args.join(" ")), cmd, LONG)
}

fn legacy(key: &str) -> NativeKey {
    NativeKey::legacy_shared_memory(key, KeyType::SYSTEM_V)
}

/// Stops a long-running program with SIGTERM and checks it detached cleanly.
fn stop(proc: Proc) -> String {
    let name = proc.name.clone();
    let (ok, out) = proc.terminate();
    assert!(ok, "{name} did not exit cleanly on SIGTERM; output:\n{out}");
    out
}

// ---- writer / reader ------------------------------------------------------

#[test]
fn writer_to_qt5_and_qt6_readers() {
    let key = unique_key("writer");
    let _cleanup = Cleanup::legacy(&key);
    let mut writer = spawn_example("writer", &[&key]);
    writer.wait_for_line("Data written to shared memory.");
    for qt in ["5", "6"] {
        let out = qt_peer(PEER, &["--qt", qt, "read", "--key", &key], SHORT).expect_success();
        assert!(out.contains(HELLO_LINE), "Qt {qt} reader printed:\n{out}");
    }
    let out = run_example("reader", &[&key]);
    assert!(out.status.success() && out.stdout.contains(HELLO_LINE), "qipc reader: {out}");
    let rest = stop(writer);
    assert!(rest.contains("detached"), "writer output after SIGTERM:\n{rest}");
    assert_clean(&legacy(&key));
}

#[test]
fn qt5_and_qt6_writers_to_reader() {
    for qt in ["5", "6"] {
        let key = unique_key(&format!("qt{qt}writer"));
        let _cleanup = Cleanup::legacy(&key);
        let mut writer = qt_peer(PEER, &["--qt", qt, "write", "--key", &key], LONG);
        writer.wait_for_line("Data written to shared memory.");
        let out = run_example("reader", &[&key]);
        assert!(out.status.success(), "qipc reader after the Qt {qt} writer: {out}");
        assert!(out.stdout.contains(HELLO_LINE), "qipc reader after the Qt {qt} writer: {out}");
        stop(writer);
        assert_clean(&legacy(&key));
    }
}

#[test]
fn writer_refuses_an_existing_segment() {
    let key = unique_key("writer2");
    let _cleanup = Cleanup::legacy(&key);
    let mut first = spawn_example("writer", &[&key]);
    first.wait_for_line("Data written to shared memory.");
    let second = run_example("writer", &[&key]);
    assert_eq!(second.code(), Some(1), "second writer: {second}");
    assert!(second.stderr.contains("already exists") && second.stderr.contains(&key), "second writer: {second}");
    stop(first);
    assert_clean(&legacy(&key));
}

#[test]
fn missing_segment_is_a_clear_error() {
    let key = unique_key("missing");
    let _cleanup = Cleanup::legacy(&key);
    let out = run_example("reader", &[&key]);
    assert_eq!(out.code(), Some(1), "reader without a writer: {out}");
    assert!(out.stderr.contains("Unable to attach") && out.stderr.contains(&key), "reader: {out}");
    assert!(out.stderr.contains("no segment"), "reader should say why: {out}");
    assert_clean(&legacy(&key));
}

#[test]
fn help_and_usage_errors() {
    for name in ["writer", "reader", "single_instance"] {
        let help = run_example(name, &["--help"]);
        assert!(help.status.success() && help.stdout.contains("usage"), "{name} --help: {help}");
        let bad = run_example(name, &["--no-such-option"]);
        assert_eq!(bad.code(), Some(2), "{name} with a bad option: {bad}");
        assert!(bad.stderr.contains("usage"), "{name} with a bad option: {bad}");
    }
    let bad = run_example("single_instance", &["--type", "windows"]);
    assert_eq!(bad.code(), Some(2), "{bad}");
    let bad = run_example("single_instance", &["--native", "bogus:/x"]);
    assert_eq!(bad.code(), Some(2), "{bad}");
}

// ---- single_instance ----------------------------------------------------

/// First instance runs; a second one is refused; SIGKILL the first (which
/// leaves its objects behind); a third start recovers by itself.
fn single_instance_scenario(args: &[&str], key: &NativeKey) {
    let _cleanup = Cleanup::new(key);
    let mut first = spawn_example("single_instance", args);
    let line = first.wait_for_line("running (pid");
    let pid = first.child.id();
    assert!(line.contains(&format!("running (pid {pid})")), "first instance printed {line:?}");

    let second = run_example("single_instance", args);
    assert_eq!(second.code(), Some(1), "second instance: {second}");
    assert!(second.stderr.contains("already running"), "second instance: {second}");
    assert!(second.stderr.contains(&format!("pid {pid}")), "second instance should name the first: {second}");

    first.kill(); // SIGKILL: no detach, no clean-up
    let marker = &object_paths(key)[0];
    assert!(Path::new(marker).exists(), "the killed instance should have left {marker} behind");

    // Three starts race for the orphan: exactly one reclaims it and runs.
    const RACERS: usize = 3;
    let mut racers: Vec<Proc> = (0..RACERS).map(|_| spawn_example("single_instance", args)).collect();
    let end = Instant::now() + SHORT;
    let mut refused = 0;
    while refused < RACERS - 1 {
        assert!(Instant::now() < end, "the racing starts did not settle: {refused} refused");
        let mut i = 0;
        while i < racers.len() {
            if let Some(status) = racers[i].child.try_wait().expect("try_wait") {
                assert_eq!(status.code(), Some(1), "a racing start failed otherwise: {status}");
                racers.remove(i);
                refused += 1;
            } else {
                i += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(racers.len(), 1, "{} racing starts are still running", racers.len());
    let mut third = racers.pop().expect("one winner");
    let line = third.wait_for_line("running (pid");
    assert!(line.contains(&format!("running (pid {})", third.child.id())), "third instance printed {line:?}");
    let fourth = run_example("single_instance", args);
    assert_eq!(fourth.code(), Some(1), "a second instance next to the third: {fourth}");
    stop(third);
    assert_clean(key);
}

#[test]
fn single_instance_systemv_recovers_after_sigkill() {
    let key = unique_key("single_sysv");
    single_instance_scenario(&["--key", &key, "--type", "systemv"], &legacy(&key));
}

#[test]
fn single_instance_posix_recovers_after_sigkill() {
    let key = unique_key("single_posix");
    let native = NativeKey::legacy_shared_memory(&key, KeyType::PosixRealtime);
    single_instance_scenario(&["--key", &key, "--type", "posix"], &native);
}

#[test]
fn single_instance_native_keys_recover_after_sigkill() {
    let name = unique_key("single_native");
    // A bare name is a POSIX key, as QNativeIpcKey(name) in Qt 6.
    single_instance_scenario(&["--native", &name], &NativeKey::posix(name.clone()));
    let path = format!("{}/{}", qipc::key::temp_path(), unique_key("single_native_sysv"));
    single_instance_scenario(&["--native", &format!("systemv:{path}")], &NativeKey::system_v(path.clone()));
}

// ---- image_share (Qt's Shared Memory Example) ---------------------------

/// A directory for test images, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(unique_key(tag));
        std::fs::create_dir(&dir).expect("create a temporary directory");
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const W: u32 = 37;
const H: u32 = 23;

/// A palette PNG (colour type 3) with a tRNS chunk, which `image` cannot write.
fn write_palette_png(path: &Path) {
    let file = std::fs::File::create(path).expect("create palette png");
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), W, H);
    encoder.set_color(png::ColorType::Indexed);
    encoder.set_depth(png::BitDepth::Eight);
    let colors = 16u8;
    let palette: Vec<u8> = (0..colors).flat_map(|i| [i * 16, 255 - i * 15, i.wrapping_mul(71) % 251]).collect();
    let alpha: Vec<u8> = (0..colors).map(|i| if i == 3 { 0 } else { 255 - i * 5 }).collect();
    encoder.set_palette(palette);
    encoder.set_trns(alpha);
    let mut writer = encoder.write_header().expect("png header");
    let pixels: Vec<u8> = (0..W * H).map(|i| ((i * 7 + i / W) % u32::from(colors)) as u8).collect();
    writer.write_image_data(&pixels).expect("png data");
}

/// The `QImage::Format` Qt's reader gives each test image.
fn expected_format(name: &str) -> &'static str {
    match name {
        "rgb.png" => "Format_RGB32",
        "rgba.png" => "Format_ARGB32",
        "gray.png" => "Format_Grayscale8",
        "palette.png" => "Format_Indexed8",
        other => panic!("no expected format for {other}"),
    }
}

/// The test images: name -> file. RGB, RGBA (with fully transparent
/// pixels), grayscale and palette PNGs, plus BMP and GIF for `load`.
fn make_images(dir: &TempDir) -> Vec<(&'static str, PathBuf)> {
    let rgb = image::RgbImage::from_fn(W, H, |x, y| image::Rgb([(x * 7) as u8, (y * 11) as u8, ((x ^ y) * 5) as u8]));
    let rgba = image::RgbaImage::from_fn(W, H, |x, y| {
        let a = if (x + y) % 9 == 0 { 0 } else { ((x * 13 + y * 3) % 256) as u8 };
        image::Rgba([(x * 6) as u8, (255 - y * 9) as u8, ((x * y) % 256) as u8, a])
    });
    let gray = image::GrayImage::from_fn(W, H, |x, y| image::Luma([((x * 5 + y * 9) % 256) as u8]));
    let mut images = Vec::new();
    for (name, result) in [
        ("rgb.png", rgb.save(dir.path("rgb.png"))),
        ("rgba.png", rgba.save(dir.path("rgba.png"))),
        ("gray.png", gray.save(dir.path("gray.png"))),
    ] {
        result.unwrap_or_else(|e| panic!("cannot write {name}: {e}"));
        images.push((name, dir.path(name)));
    }
    write_palette_png(&dir.path("palette.png"));
    images.push(("palette.png", dir.path("palette.png")));
    images
}

fn pixels(path: &Path) -> image::RgbaImage {
    image::open(path).unwrap_or_else(|e| panic!("cannot decode {}: {e}", path.display())).into_rgba8()
}

fn assert_same_pixels(expected: &Path, actual: &Path, what: &str) {
    let (a, b) = (pixels(expected), pixels(actual));
    assert_eq!(a.dimensions(), b.dimensions(), "{what}: size differs");
    if let Some((i, (p, q))) = a.pixels().zip(b.pixels()).enumerate().find(|(_, (p, q))| p != q) {
        panic!("{what}: pixel {} ({}, {}) is {q:?}, expected {p:?}", i, i as u32 % a.width(), i as u32 / a.width());
    }
}

/// `--key K` for Qt 5 (the Qt 5 example's legacy key), `--native NAME` for
/// Qt 6 (the Qt 6.6+ example's POSIX key `QNativeIpcKey(NAME)`, no slash).
fn example_key(qt: &str, tag: &str) -> (Vec<String>, NativeKey) {
    let name = unique_key(tag);
    if qt == "5" {
        (vec!["--key".into(), name.clone()], legacy(&name))
    } else {
        (vec!["--native".into(), name.clone()], NativeKey::posix(name))
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// qipc `image_share load` -> Qt example's `display`, every test image.
fn qipc_load_qt_display(qt: &str) {
    let dir = TempDir::new("images");
    for (name, file) in make_images(&dir) {
        let (key_args, key) = example_key(qt, "img");
        let _cleanup = Cleanup::new(&key);
        let file = file.to_str().expect("utf-8 path");
        let mut load = spawn_example("image_share", &[&["load", file][..], &strs(&key_args)].concat());
        let line = load.wait_for_line("loaded ");
        let format = expected_format(name);
        assert!(line.contains(&format!("loaded {W} {H} {format} ")), "qipc load of {name}: {line}");
        let out = dir.path(&format!("qt{qt}-{name}"));
        let out_s = out.to_str().expect("utf-8 path");
        let mut args = vec!["--qt", qt, "display", "--out", out_s];
        args.extend(strs(&key_args));
        let shown = qt_peer(PEER, &args, SHORT).expect_success();
        let expected = format!("displayed {W} {H} {format} ");
        assert!(shown.contains(&expected), "Qt {qt} display of {name}: expected {expected:?} in {shown}");
        assert_same_pixels(&dir.path(name), &out, &format!("qipc load -> Qt {qt} display of {name}"));
        stop(load);
        assert_clean(&key);
    }
}

/// Qt example's `load` -> qipc `image_share display`, every test image.
fn qt_load_qipc_display(qt: &str) {
    let dir = TempDir::new("images");
    for (name, file) in make_images(&dir) {
        let (key_args, key) = example_key(qt, "img");
        // Qt never removes a POSIX segment: the guard does.
        let cleanup = Cleanup::new(&key);
        let file = file.to_str().expect("utf-8 path");
        let mut args = vec!["--qt", qt, "load", file];
        args.extend(strs(&key_args));
        let mut load = qt_peer(PEER, &args, LONG);
        let loaded = load.wait_for_line("loaded ");
        let qt_format = expected_format(name);
        assert!(loaded.contains(&format!("loaded {W} {H} {qt_format} ")), "Qt {qt} load of {name}: {loaded}");
        let out = dir.path(&format!("qipc-{qt}-{name}"));
        let out_s = out.to_str().expect("utf-8 path");
        let shown = run_example("image_share", &[&["display", "--out", out_s][..], &strs(&key_args)].concat());
        assert!(shown.status.success(), "qipc display after Qt {qt} load of {name}: {shown}");
        let expected = format!("displayed {W} {H} {qt_format} -> {out_s}");
        assert!(shown.stdout.contains(&expected), "qipc display of {name}: expected {expected:?} in {shown}");
        assert_same_pixels(&dir.path(name), &out, &format!("Qt {qt} load -> qipc display of {name}"));
        stop(load);
        drop(cleanup);
        assert_clean(&key);
    }
}

#[test]
fn image_share_load_to_qt5_display() {
    qipc_load_qt_display("5");
}

#[test]
fn image_share_load_to_qt6_display() {
    qipc_load_qt_display("6");
}

#[test]
fn qt5_load_to_image_share_display() {
    qt_load_qipc_display("5");
}

#[test]
fn qt6_load_to_image_share_display() {
    qt_load_qipc_display("6");
}

/// Other input formats, through `load` and Qt 6's display on a legacy key.
#[test]
fn image_share_reads_bmp_gif_and_jpeg() {
    let dir = TempDir::new("images");
    let rgb = image::RgbImage::from_fn(W, H, |x, y| image::Rgb([(x * 7) as u8, (y * 11) as u8, 200]));
    let two = image::RgbaImage::from_fn(W, H, |x, y| image::Rgba([if (x + y) % 2 == 0 { 255 } else { 0 }, 0, 80, 255]));
    rgb.save(dir.path("in.bmp")).expect("write bmp");
    two.save(dir.path("in.gif")).expect("write gif");
    rgb.save(dir.path("in.jpg")).expect("write jpeg");
    for (name, format) in [("in.bmp", "Format_RGB32"), ("in.gif", "Format_Indexed8"), ("in.jpg", "Format_RGB32")] {
        let key = unique_key("imgfmt");
        let _cleanup = Cleanup::legacy(&key);
        let file = dir.path(name);
        let mut load = spawn_example("image_share", &["load", file.to_str().unwrap(), "--key", &key]);
        let line = load.wait_for_line("loaded ");
        assert!(line.contains(&format!("loaded {W} {H} {format} ")), "qipc load of {name}: {line}");
        let out = dir.path(&format!("{name}.png"));
        let args = ["--qt", "6", "display", "--key", &key, "--out", out.to_str().unwrap()];
        let shown = qt_peer(PEER, &args, SHORT).expect_success();
        assert!(shown.contains(&format!("displayed {W} {H} {format} ")), "Qt 6 display of {name}: {shown}");
        // JPEG is lossy, but the pixels stored are those `image` decoded.
        assert_same_pixels(&file, &out, &format!("{name} through image_share load -> Qt 6 display"));
        stop(load);
        assert_clean(&legacy(&key));
    }
}

#[test]
fn image_share_errors() {
    let dir = TempDir::new("images");
    // display with nothing loaded
    let key = unique_key("imgmissing");
    let _cleanup = Cleanup::legacy(&key);
    let out = run_example("image_share", &["display", "--key", &key, "--out", dir.path("x.png").to_str().unwrap()]);
    assert_eq!(out.code(), Some(1), "display without load: {out}");
    assert!(out.stderr.contains("Unable to attach") && out.stderr.contains(&key), "display without load: {out}");
    assert!(!dir.path("x.png").exists());
    let native = unique_key("imgmissing_posix");
    let out = run_example("image_share", &["display", "--native", &native]);
    assert_eq!(out.code(), Some(1), "display without load (POSIX): {out}");
    assert!(out.stderr.contains(&format!("posix:{native}")), "display should name the key: {out}");
    // load of a file that is not an image
    let bogus = dir.path("not-an-image.png");
    std::fs::write(&bogus, b"this is text").unwrap();
    let out = run_example("image_share", &["load", bogus.to_str().unwrap(), "--key", &key]);
    assert_eq!(out.code(), Some(1), "load of a text file: {out}");
    assert!(out.stderr.contains("not an image") && out.stderr.contains("not-an-image.png"), "{out}");
    let out = run_example("image_share", &["load", dir.path("missing.png").to_str().unwrap(), "--key", &key]);
    assert_eq!(out.code(), Some(1), "load of a missing file: {out}");
    // usage
    let help = run_example("image_share", &["--help"]);
    assert!(help.status.success() && help.stdout.contains("usage"), "{help}");
    for bad in
        [&[][..], &["show"], &["load"], &["display", "--bogus"], &["load", "a.png", "--key", "a", "--native", "b"]]
    {
        let out = run_example("image_share", bad);
        assert_eq!(out.code(), Some(2), "image_share {bad:?}: {out}");
    }
    assert_clean(&legacy(&key));
}
