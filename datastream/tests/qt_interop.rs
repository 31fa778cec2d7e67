//! The codec against real Qt (PyQt5 = Qt 5.15, PySide6 = Qt 6.x) through
//! `tests/qt/datastream_peer.py`.
//!
//! For every case, stream version and byte order: Qt encodes and the bytes
//! must equal ours (bit-exact, images excepted) and decode here to the
//! case's value; we encode and Qt must decode the case's value. Images are
//! compared pixel by pixel both ways, with the `QImage::Format` Qt reports.
//! One Python process per Qt version runs all of its cases in a batch.
//!
//! Needs the `qimage` feature (the image cases are part of every run) and
//! the Qt peers (see `support`): `cargo test -p qipc-datastream --features qimage`.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use qipc_datastream::{
    ByteOrder, DataStreamReader, DataStreamWriter, Decode, Encode, FloatingPointPrecision, ImageFormat, MapOrder,
    QByteArray, QImage, QVariant, Version,
};

type WriteFn = Box<dyn Fn(&mut DataStreamWriter)>;
type CheckFn = Box<dyn Fn(&mut DataStreamReader<'_>) -> Result<(), String>>;

struct Case {
    name: &'static str,
    /// Python can produce this value through Qt (else decode-only).
    qt_encodes: bool,
    single: bool,
    write: WriteFn,
    check: CheckFn,
}

fn case<T>(name: &'static str, value: T) -> Case
where
    T: Encode + Decode + PartialEq + std::fmt::Debug + Clone + 'static,
{
    let v2 = value.clone();
    Case {
        name,
        qt_encodes: true,
        single: false,
        write: Box::new(move |w| w.write(&value)),
        check: Box::new(move |r| {
            let got = r.read::<T>().map_err(|e| e.to_string())?;
            if got != v2 {
                return Err(format!("got {got:?}, expected {v2:?}"));
            }
            if r.remaining() != 0 {
                return Err(format!("{} bytes left", r.remaining()));
            }
            Ok(())
        }),
    }
}

fn decode_only(mut c: Case) -> Case {
    c.qt_encodes = false;
    c
}

fn single(mut c: Case) -> Case {
    c.single = true;
    c
}

fn s(x: &str) -> Option<String> {
    Some(x.to_string())
}

fn vs(x: &str) -> QVariant {
    QVariant::String(s(x))
}

const UNICODE: &str = "h\u{e9}llo w\u{f6}rld \u{65e5}\u{672c} \u{1F600}";

fn cases() -> Vec<Case> {
    let map = QVariant::Map(BTreeMap::from([
        ("b".to_string(), vs("x")),
        ("a".to_string(), QVariant::Int(1)),
        (
            "c".to_string(),
            QVariant::Map(BTreeMap::from([
                ("n".to_string(), QVariant::List(vec![QVariant::Int(1), vs("y")])),
                ("m".to_string(), QVariant::Double(2.5)),
            ])),
        ),
    ]));
    let list = QVariant::List(vec![
        QVariant::Int(1),
        vs("x"),
        QVariant::Bool(true),
        QVariant::Double(2.5),
        QVariant::ByteArray(QByteArray::from(&b"z"[..])),
        QVariant::List(vec![vs("in"), QVariant::Int(3)]),
    ]);
    vec![
        case("i8", -5i8),
        case("u8", 250u8),
        case("i16", -12345i16),
        case("u16", 54321u16),
        case("i32", -2i32),
        case("i32_min", i32::MIN),
        case("u32", 0x0102_0304u32),
        case("u32_max", u32::MAX),
        case("i64", -1_234_567_890_123_456_789i64),
        case("u64", u64::MAX),
        case("bool_true", true),
        case("bool_false", false),
        case("f32", 1.5f32),
        case("f32_tenth", 0.1f32),
        case("f64", std::f64::consts::PI),
        case("f64_neg", -1e300f64),
        single(case("f32_single", 0.1f32)),
        single(case("f64_single", 2.5f64)),
        case("qstring_hello", s("Hello from writer!")),
        case("qstring_null", None::<String>),
        case("qstring_empty", s("")),
        case("qstring_unicode", s(UNICODE)),
        case("qbytearray_abc", QByteArray::from(&b"abc"[..])),
        case("qbytearray_ab", QByteArray::from(&b"ab"[..])),
        case("qbytearray_null", QByteArray::null()),
        case("qbytearray_empty", QByteArray::from(Vec::new())),
        case("qbytearray_all", QByteArray::from((0..=255u8).collect::<Vec<u8>>())),
        case("qstringlist", vec!["a".to_string(), String::new(), "\u{65e5}\u{672c}".to_string()]),
        case("qstringlist_empty", Vec::<String>::new()),
        case("qvariant_invalid", QVariant::Invalid),
        case("qvariant_bool", QVariant::Bool(true)),
        case("qvariant_int", QVariant::Int(-7)),
        case("qvariant_longlong", QVariant::LongLong(1 << 40)),
        case("qvariant_double", QVariant::Double(2.5)),
        case("qvariant_string", vs("str")),
        case("qvariant_string_empty", vs("")),
        case("qvariant_bytearray", QVariant::ByteArray(QByteArray::from(&[0u8, 0xff][..]))),
        decode_only(case("qvariant_uint", QVariant::UInt(4_000_000_000))),
        decode_only(case("qvariant_ulonglong", QVariant::ULongLong((1 << 63) + 5))),
        decode_only(case("qvariant_stringlist", QVariant::StringList(vec!["x".into(), "y".into()]))),
        case("qvariantmap", map),
        case("qvariantmap_empty", QVariant::Map(BTreeMap::new())),
        case("qvariantlist", list),
        case("qvariantlist_empty", QVariant::List(vec![])),
    ]
}

/// The pixel pattern of the big image cases (same formula as the peer).
fn big_pixels(w: u32, h: u32) -> Vec<u32> {
    (0..h)
        .flat_map(|y| {
            (0..w).map(move |x| {
                (((x * 7 + y * 3) & 255) << 24)
                    | (((x * 6) & 255) << 16)
                    | (((y * 8) & 255) << 8)
                    | (((x ^ y) * 4) & 255)
            })
        })
        .collect()
}

/// The image cases: name, width, height, source format, pixels (`0xAARRGGBB`).
fn image_cases() -> Vec<(&'static str, u32, u32, ImageFormat, Vec<u32>)> {
    vec![
        (
            "image_rgb32",
            3,
            2,
            ImageFormat::RGB32,
            vec![0xFFFF0000, 0xFF00FF00, 0xFF0000FF, 0xFF123456, 0xFFFFFFFF, 0xFF000000],
        ),
        (
            "image_argb32",
            3,
            2,
            ImageFormat::ARGB32,
            vec![0xFFFF0000, 0x8000FF00, 0x000000FF, 0x00000000, 0x40FFFFFF, 0xC0123456],
        ),
        (
            "image_gray8",
            3,
            2,
            ImageFormat::Grayscale8,
            vec![0xFF000000, 0xFF101010, 0xFF808080, 0xFFFEFEFE, 0xFFFFFFFF, 0xFF7F7F7F],
        ),
        (
            "image_indexed8",
            3,
            2,
            ImageFormat::Indexed8,
            vec![0xFFFF0000, 0x8000FF00, 0xFF0000FF, 0xFFFF0000, 0x00000000, 0x8000FF00],
        ),
        ("image_indexed8_gray", 4, 1, ImageFormat::Indexed8, vec![0xFF000000, 0xFF404040, 0xFFC0C0C0, 0xFFFFFFFF]),
        (
            "image_mono",
            9,
            2,
            ImageFormat::Mono,
            (0..18).map(|i| if i % 3 != 0 { 0xFFFF0000 } else { 0xFF0000FF }).collect(),
        ),
        ("image_argb32_big", 40, 30, ImageFormat::ARGB32, big_pixels(40, 30)),
        (
            "image_rgb32_big",
            33,
            17,
            ImageFormat::RGB32,
            big_pixels(33, 17).into_iter().map(|p| p | 0xFF00_0000).collect(),
        ),
    ]
}

fn make_image(w: u32, h: u32, format: ImageFormat, px: &[u32]) -> QImage {
    let rgba: Vec<u8> = px
        .iter()
        .flat_map(|p| {
            let [a, r, g, b] = p.to_be_bytes();
            [r, g, b, a]
        })
        .collect();
    QImage::from_rgba8(w, h, rgba).unwrap().convert_to(format).unwrap()
}

/// Qt's description of an image: "FORMAT W H PIXELS".
fn describe(img: &QImage) -> String {
    if img.is_null() {
        return "Format_Invalid 0 0 -".into();
    }
    let px: Vec<String> = (0..img.height())
        .flat_map(|y| (0..img.width()).map(move |x| (x, y)))
        .map(|(x, y)| format!("{:08X}", img.pixel(x, y)))
        .collect();
    format!("{} {} {} {}", img.format(), img.width(), img.height(), px.join(","))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

fn bo_name(bo: ByteOrder) -> &'static str {
    match bo {
        ByteOrder::BigEndian => "be",
        ByteOrder::LittleEndian => "le",
    }
}

struct Setup {
    v: Version,
    bo: ByteOrder,
    single: bool,
    qt: u8,
}

impl Setup {
    fn writer(&self) -> DataStreamWriter {
        let mut w = DataStreamWriter::with(self.v, self.bo);
        if self.single {
            w.set_floating_point_precision(FloatingPointPrecision::SinglePrecision);
        }
        // Qt 5 writes a QMap from the largest key down, Qt 6 from the smallest up,
        // whatever the stream version.
        w.set_map_order(if self.qt == 5 { MapOrder::Descending } else { MapOrder::Ascending });
        w
    }
    fn reader<'a>(&self, data: &'a [u8]) -> DataStreamReader<'a> {
        let mut r = DataStreamReader::with(data, self.v, self.bo);
        if self.single {
            r.set_floating_point_precision(FloatingPointPrecision::SinglePrecision);
        }
        r
    }
}

fn run(qt: u8) {
    let versions: Vec<Version> =
        if qt == 5 { vec![Version::QT_5_15] } else { (19..=24).map(|v| Version::new(v).unwrap()).collect() };
    let cases = cases();
    let images = image_cases();
    let mut batch = String::new();
    let mut rust_images: HashMap<String, QImage> = HashMap::new();
    let mut n_lines = 0;
    for &v in &versions {
        for bo in [ByteOrder::BigEndian, ByteOrder::LittleEndian] {
            let head = format!("{} {}", v.value(), bo_name(bo));
            for c in &cases {
                let setup = Setup { v, bo, single: c.single, qt };
                if c.qt_encodes {
                    batch += &format!("encode {head} {}\n", c.name);
                }
                let mut w = setup.writer();
                (c.write)(&mut w);
                batch += &format!("decode {head} {} {}\n", c.name, hex(&w.into_bytes()));
                n_lines += 1 + usize::from(c.qt_encodes);
            }
            batch += &format!("encode {head} image_null\n");
            let mut w = DataStreamWriter::with(v, bo);
            w.write_qimage(&QImage::null());
            batch += &format!("readimage {head} image_null {}\n", hex(&w.into_bytes()));
            for (name, w, h, format, px) in &images {
                batch += &format!("encode {head} {name}\n");
                let img = make_image(*w, *h, *format, px);
                let mut w = DataStreamWriter::with(v, bo);
                w.write_qimage(&img);
                batch += &format!("readimage {head} {name} {}\n", hex(&w.into_bytes()));
                rust_images.insert(format!("{head} {name}"), img);
                n_lines += 2;
            }
        }
    }
    let file = support::BatchFile::new(&format!("qipc_datastream_qt{qt}"), &batch);
    let peer = support::run_peer(&["--qt", &qt.to_string(), "batch", file.path()], Duration::from_secs(120));
    drop(file);
    let out = &peer.stdout;

    let by_name: HashMap<&str, &Case> = cases.iter().map(|c| (c.name, c)).collect();
    let mut failures = Vec::new();
    let mut checked = 0;
    for line in out.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.len() < 5 {
            failures.push(format!("bad peer line: {line}"));
            continue;
        }
        let (cmd, vnum, bo_s, name) = (parts[0], parts[1], parts[2], parts[3]);
        let v = Version::new(vnum.parse().unwrap()).unwrap();
        let bo = if bo_s == "le" { ByteOrder::LittleEndian } else { ByteOrder::BigEndian };
        let ctx = format!("Qt {qt} {cmd} {name} version {vnum} {bo_s}");
        checked += 1;
        if parts[4] == "FAIL" {
            failures.push(format!("{ctx}: {}", parts[4..].join(" ")));
            continue;
        }
        match (cmd, name.starts_with("image_")) {
            ("decode", false) => {
                if parts[4] != "OK" {
                    failures.push(format!("{ctx}: {}", parts[4..].join(" ")));
                }
            }
            ("encode", false) => {
                let c = by_name[name];
                let setup = Setup { v, bo, single: c.single, qt };
                let qt_bytes = unhex(parts[4]);
                let mut w = setup.writer();
                (c.write)(&mut w);
                let ours = w.into_bytes();
                if ours != qt_bytes {
                    failures.push(format!("{ctx}: Qt wrote {} but qipc writes {}", parts[4], hex(&ours)));
                }
                let mut r = setup.reader(&qt_bytes);
                if let Err(e) = (c.check)(&mut r) {
                    failures.push(format!("{ctx}: qipc decoding Qt's bytes: {e}"));
                }
            }
            ("encode", true) => {
                // Qt's stream, and what Qt itself reads back from it.
                let qt_bytes = unhex(parts[4]);
                let qt_view = parts[5..].join(" ");
                match DataStreamReader::with(&qt_bytes, v, bo).read_qimage() {
                    Ok(img) => {
                        if describe(&img) != qt_view {
                            failures.push(format!("{ctx}: qipc reads {} but Qt reads {qt_view}", describe(&img)));
                        }
                    }
                    Err(e) => failures.push(format!("{ctx}: qipc cannot read Qt's image: {e}")),
                }
            }
            ("readimage", true) => {
                let qt_view = parts[4..].join(" ");
                let expected = match rust_images.get(&format!("{vnum} {bo_s} {name}")) {
                    Some(img) => describe(img),
                    None => describe(&QImage::null()),
                };
                if qt_view != expected {
                    failures.push(format!("{ctx}: Qt reads {qt_view} but qipc wrote {expected}"));
                }
            }
            _ => failures.push(format!("unexpected peer line: {line}")),
        }
    }
    let expected_lines = n_lines + 4 * versions.len(); // + the null image's two lines per version and byte order
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(checked, expected_lines, "peer answered {checked} of {expected_lines} lines:\n{out}");
    assert!(peer.success, "peer failed:\n{out}\n{}", peer.stderr);
}

#[test]
fn qt5_interop() {
    run(5);
}

#[test]
fn qt6_interop() {
    run(6);
}

/// Hand-made streams that Qt and qipc must accept or refuse alike: the 64-bit
/// size form (`0xFFFFFFFE` + `qint64`, only from `Qt_6_7` = 22 on), odd QString
/// byte counts and truncated data.
#[test]
fn edge_streams_agree_with_qt() {
    let inputs: &[(&str, &str)] = &[
        ("qbytearray_ab", "fffffffe00000000000000026162"),
        ("qbytearray_ab", "000000026162"),
        ("qbytearray_ab", "0000000361"),
        ("qstring_empty", "000000030041"),
        ("qstring_empty", "0000000100"),
        ("qstring_hello", "00000024004800"),
        ("qstringlist_empty", "ffffffff"),
        ("qvariant_int", "0000000200ffff"),
    ];
    let all = cases();
    let by_name: HashMap<&str, &Case> = all.iter().map(|c| (c.name, c)).collect();
    for qt in [5u8, 6] {
        let versions: Vec<u8> = if qt == 5 { vec![19] } else { (19..=24).collect() };
        let mut batch = String::new();
        let mut expected = Vec::new();
        for &v in &versions {
            for (name, h) in inputs {
                batch += &format!("decode {v} be {name} {h}\n");
                let setup = Setup { v: Version::new(v).unwrap(), bo: ByteOrder::BigEndian, single: false, qt };
                let bytes = unhex(h);
                let ours = (by_name[name].check)(&mut setup.reader(&bytes));
                expected.push((format!("decode {v} be {name}"), ours));
            }
        }
        let file = support::BatchFile::new(&format!("qipc_datastream_edge_qt{qt}"), &batch);
        let peer = support::run_peer(&["--qt", &qt.to_string(), "batch", file.path()], Duration::from_secs(60));
        drop(file);
        let out = &peer.stdout;
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), expected.len(), "Qt {qt} peer output:\n{out}\n{}", peer.stderr);
        for (line, (head, ours)) in lines.iter().zip(&expected) {
            assert!(line.starts_with(head.as_str()), "{line} vs {head}");
            let qt_ok = line[head.len()..].trim() == "OK";
            assert_eq!(qt_ok, ours.is_ok(), "Qt {qt}: {line}; qipc: {ours:?}");
        }
        // The 64-bit form (the first input) is read from Qt_6_7 (22) on, by both.
        for (k, &v) in versions.iter().enumerate() {
            let line = lines[k * inputs.len()];
            assert_eq!(line.ends_with(" OK"), v >= 22, "Qt {qt}: {line}");
        }
    }
}
