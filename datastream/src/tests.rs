//! Unit tests: the byte layout of each type as Qt writes it, hostile inputs
//! and the inputs the fuzzer found crashing.

use super::*;
use std::collections::BTreeMap;

fn write<T: Encode + ?Sized>(v: &T) -> Vec<u8> {
    let mut w = DataStreamWriter::new();
    w.write(v);
    w.into_bytes()
}

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn spec_integers() {
    let mut out = DataStreamWriter::new();
    out.write(&0x0102_0304u32);
    out.write(&-2i32);
    let bytes = out.into_bytes();
    assert_eq!(bytes, [0x01, 0x02, 0x03, 0x04, 0xff, 0xff, 0xff, 0xfe]);
    let mut r = DataStreamReader::new(&bytes);
    assert_eq!(r.read::<u32>().unwrap(), 0x0102_0304);
    assert_eq!(r.read::<i32>().unwrap(), -2);
    assert!(r.at_end());
}

#[test]
fn spec_bool_and_small_ints() {
    assert_eq!(write(&true), [1]);
    assert_eq!(write(&false), [0]);
    assert_eq!(write(&-1i8), [0xff]);
    assert!(DataStreamReader::new(&[7]).read::<bool>().unwrap());
}

#[test]
fn spec_floats_are_doubles_by_default() {
    assert_eq!(write(&1.5f32), 1.5f64.to_be_bytes());
    assert_eq!(write(&1.5f64), 1.5f64.to_be_bytes());
    let mut w = DataStreamWriter::new();
    w.set_floating_point_precision(FloatingPointPrecision::SinglePrecision);
    w.write(&1.5f32);
    w.write(&1.5f64);
    assert_eq!(w.into_bytes(), [0x3f, 0xc0, 0, 0, 0x3f, 0xc0, 0, 0]);
    assert_eq!(DataStreamReader::new(&0.1f64.to_be_bytes()).read::<f32>().unwrap(), 0.1f32);
}

#[test]
fn little_endian() {
    let mut w = DataStreamWriter::with(Version::QT_6_12, ByteOrder::LittleEndian);
    w.write(&0x0102_0304u32);
    w.write_qstring(Some("A"));
    let b = w.into_bytes();
    assert_eq!(b, [4, 3, 2, 1, 2, 0, 0, 0, 0x41, 0]);
    let mut r = DataStreamReader::with(&b, Version::QT_6_12, ByteOrder::LittleEndian);
    assert_eq!(r.read::<u32>().unwrap(), 0x0102_0304);
    assert_eq!(r.read_qstring().unwrap().as_deref(), Some("A"));
}

#[test]
fn spec_qbytearray() {
    let mut w = DataStreamWriter::new();
    w.write_qbytearray(Some(b"abc"));
    w.write_qbytearray(None);
    w.write_qbytearray(Some(b""));
    let b = w.into_bytes();
    assert_eq!(b, unhex("00 00 00 03 61 62 63 ff ff ff ff 00 00 00 00"));
    let mut r = DataStreamReader::new(&b);
    assert_eq!(r.read_qbytearray().unwrap(), Some(b"abc".to_vec()));
    assert_eq!(r.read_qbytearray().unwrap(), None);
    assert_eq!(r.read_qbytearray().unwrap(), Some(vec![]));
    assert_eq!(r.remaining(), 0);
}

#[test]
fn spec_qstring_hello() {
    let expected = unhex(
        "00 00 00 24 00 48 00 65 00 6c 00 6c 00 6f 00 20
         00 66 00 72 00 6f 00 6d 00 20 00 77 00 72 00 69
         00 74 00 65 00 72 00 21",
    );
    let mut w = DataStreamWriter::new();
    w.write_qstring(Some("Hello from writer!"));
    assert_eq!(w.into_bytes(), expected);
    assert_eq!(expected.len(), 40);
    for v in [Version::QT_5_15, Version::QT_6_0, Version::QT_6_12] {
        let mut r = DataStreamReader::with(&expected, v, ByteOrder::BigEndian);
        assert_eq!(r.read_qstring().unwrap().as_deref(), Some("Hello from writer!"));
    }
}

#[test]
fn spec_qstring_null_empty_odd() {
    assert_eq!(write(&None::<String>), [0xff; 4]);
    assert_eq!(write(&Some(String::new())), [0; 4]);
    assert_eq!(DataStreamReader::new(&[0xff; 4]).read_qstring().unwrap(), None);
    assert_eq!(DataStreamReader::new(&[0; 4]).read_qstring().unwrap(), Some(String::new()));
    let e = DataStreamReader::new(&[0, 0, 0, 3, 0, 0x41, 0]).read_qstring().unwrap_err();
    assert_eq!(e.kind(), &DecodeErrorKind::OddStringLength(3));
    assert_eq!(e.type_name(), "QString");
    // Surrogate pair, and an unpaired surrogate.
    assert_eq!(write("\u{1F600}"), unhex("00 00 00 04 d8 3d de 00"));
    let lone = unhex("00 00 00 02 d8 3d");
    assert_eq!(DataStreamReader::new(&lone).read_qstring().unwrap_err().kind(), &DecodeErrorKind::InvalidUtf16);
    assert_eq!(DataStreamReader::new(&lone).read_qstring_utf16().unwrap(), Some(vec![0xd83d]));
}

#[test]
fn spec_extended_size() {
    // From Qt_6_7 (22) on, 0xFFFFFFFE announces a qint64 length.
    let data = unhex("ff ff ff fe 00 00 00 00 00 00 00 02 61 62");
    for v in [Version::QT_6_7, Version::QT_6_10, Version::QT_6_12] {
        let mut r = DataStreamReader::with(&data, v, ByteOrder::BigEndian);
        assert_eq!(r.read_qbytearray().unwrap(), Some(b"ab".to_vec()), "{v}");
    }
    // Before that it is a plain (here impossible) length.
    for v in [Version::QT_5_15, Version::QT_6_0, Version::QT_6_6] {
        let mut r = DataStreamReader::with(&data, v, ByteOrder::BigEndian);
        let e = r.read_qbytearray().unwrap_err();
        assert_eq!(e.kind(), &DecodeErrorKind::BadLength(0xFFFF_FFFE), "{v}");
        assert_eq!(r.position(), 0);
    }
    // A negative 64-bit length.
    let neg = unhex("ff ff ff fe ff ff ff ff ff ff ff ff");
    assert!(DataStreamReader::new(&neg).read_qbytearray().is_err());
    // Version constants.
    assert_eq!(Version::QT_5_15.value(), 19);
    assert_eq!(Version::QT_6_0.value(), 20);
    assert_eq!(Version::QT_6_6.value(), 21);
    assert_eq!(Version::QT_6_7.value(), 22);
    assert_eq!(Version::QT_6_10.value(), 23);
    assert_eq!(Version::QT_6_12.value(), 24);
    assert_eq!(Version::default(), Version::QT_6_12);
}

#[test]
fn hostile_lengths_fail_at_once() {
    let mut data = vec![0u8; 100];
    data[..4].copy_from_slice(&[0xff, 0xff, 0xff, 0xfd]);
    let e = DataStreamReader::new(&data).read_qbytearray().unwrap_err();
    assert_eq!((e.offset(), e.kind()), (0, &DecodeErrorKind::BadLength(0xFFFF_FFFD)));
    assert!(DataStreamReader::new(&data).read_qstring().is_err());
    // 4 Gi elements of at least 4 bytes each.
    assert!(DataStreamReader::new(&data).read::<Vec<u32>>().is_err());
    // 24 u64 need 192 bytes; 96 left.
    data[..4].copy_from_slice(&[0, 0, 0, 24]);
    let e = DataStreamReader::new(&data).read::<Vec<u64>>().unwrap_err();
    assert_eq!(e.kind(), &DecodeErrorKind::BadLength(24));
    // Extended size of 2^62 with 96 bytes left.
    let mut ext = unhex("ff ff ff fe 40 00 00 00 00 00 00 00");
    ext.resize(100, 0);
    assert!(DataStreamReader::new(&ext).read_qbytearray().is_err());
    assert!(DataStreamReader::new(&ext).read::<Vec<Vec<u8>>>().is_err());
    assert!(DataStreamReader::new(&ext).read::<BTreeMap<String, QVariant>>().is_err());
    // Null marker for a list.
    let e = DataStreamReader::new(&[0xff; 4]).read::<Vec<u8>>().unwrap_err();
    assert_eq!(e.kind(), &DecodeErrorKind::UnexpectedNull);
}

#[test]
fn truncated_values_report_offset_and_type() {
    let mut r = DataStreamReader::new(&[0, 0, 0, 1, 0, 0]);
    assert_eq!(r.read::<u32>().unwrap(), 1);
    let e = r.read::<u32>().unwrap_err();
    assert_eq!(e.offset(), 4);
    assert_eq!(e.type_name(), "quint32");
    assert_eq!(e.kind(), &DecodeErrorKind::UnexpectedEof { needed: 4, available: 2 });
    assert_eq!(r.position(), 4, "a failed read does not move the reader");
    assert!(e.to_string().contains("offset 4"));
}

#[test]
fn lists_and_maps() {
    assert_eq!(write(&vec![1u16, 2]), [0, 0, 0, 2, 0, 1, 0, 2]);
    assert_eq!(write(&["a", "b"][..]), unhex("00000002 00000002 0061 00000002 0062"));
    let map = BTreeMap::from([("a".to_string(), 1i32), ("b".to_string(), 2)]);
    let qt6 = unhex("00000002 00000002 0061 00000001 00000002 0062 00000002");
    let qt5 = unhex("00000002 00000002 0062 00000002 00000002 0061 00000001");
    assert_eq!(write(&map), qt6);
    let mut w = DataStreamWriter::with(Version::QT_5_15, ByteOrder::BigEndian);
    w.write(&map);
    assert_eq!(w.into_bytes(), qt5);
    for b in [&qt5, &qt6] {
        assert_eq!(DataStreamReader::new(b).read::<BTreeMap<String, i32>>().unwrap(), map);
    }
    // Repeated key: the last one wins.
    let dup = unhex("00000002 01 0a 01 0b");
    assert_eq!(DataStreamReader::new(&dup).read::<BTreeMap<u8, u8>>().unwrap(), BTreeMap::from([(1, 11)]));
    // Pairs.
    assert_eq!(write(&(1u8, true)), [1, 1]);
}

#[test]
fn qvariant_vectors() {
    // Observed from PyQt5 (Qt 5.15) and PySide6 (Qt 6.12).
    let cases: Vec<(QVariant, &str)> = vec![
        (QVariant::Invalid, "00000000 01"),
        (QVariant::Bool(true), "00000001 00 01"),
        (QVariant::LongLong(1 << 40), "00000004 00 0000010000000000"),
        (QVariant::ByteArray(QByteArray::from(&b"ab"[..])), "0000000c 00 00000002 6162"),
        (QVariant::StringList(vec!["a".into()]), "0000000b 00 00000001 00000002 0061"),
        (
            QVariant::List(vec![QVariant::Int(1), QVariant::String(Some("x".into()))]),
            "00000009 00 00000002 00000002 00 00000001 0000000a 00 00000002 0078",
        ),
    ];
    for (v, h) in cases {
        let b = unhex(h);
        assert_eq!(write(&v), b, "{v:?}");
        assert_eq!(DataStreamReader::new(&b).read::<QVariant>().unwrap(), v);
    }
    let map = QVariant::Map(BTreeMap::from([
        ("b".to_string(), QVariant::Int(1)),
        ("a".to_string(), QVariant::String(Some("x".into()))),
    ]));
    let qt6 = unhex("00000008 00 00000002 00000002 0061 0000000a 00 00000002 0078 00000002 0062 00000002 00 00000001");
    assert_eq!(write(&map), qt6);
    let qt5 = unhex("00000008 00 00000002 00000002 0062 00000002 00 00000001 00000002 0061 0000000a 00 00000002 0078");
    assert_eq!(DataStreamReader::new(&qt5).read::<QVariant>().unwrap(), map);
    // Unsupported type id.
    let e = DataStreamReader::new(&unhex("00000007 00 0041")).read::<QVariant>().unwrap_err();
    assert_eq!(e.kind(), &DecodeErrorKind::UnsupportedVariantType(7));
}

#[test]
fn qvariant_nesting_is_bounded() {
    // 1000 nested single-element QVariantLists.
    let mut b = Vec::new();
    for _ in 0..1000 {
        b.extend_from_slice(&unhex("00000009 00 00000001"));
    }
    b.extend_from_slice(&unhex("00000000 01"));
    assert!(DataStreamReader::new(&b).read::<QVariant>().is_err());
}

#[test]
fn struct_macro() {
    #[derive(Debug, PartialEq)]
    struct S {
        a: u8,
        b: Option<String>,
        c: Vec<QVariant>,
    }
    crate::datastream_struct!(S { a, b, c });
    let v = S { a: 3, b: None, c: vec![QVariant::Double(0.5)] };
    let bytes = write(&v);
    assert_eq!(DataStreamReader::new(&bytes).read::<S>().unwrap(), v);
}

#[cfg(feature = "qimage")]
mod image_tests {
    use super::*;

    #[test]
    fn spec_null_image() {
        let mut w = DataStreamWriter::new();
        w.write_qimage(&QImage::null());
        assert_eq!(w.into_bytes(), [0, 0, 0, 0]);
        let mut r = DataStreamReader::new(&[0, 0, 0, 0, 9]);
        assert!(r.read_qimage().unwrap().is_null());
        assert_eq!(r.remaining(), 1);
        let e = DataStreamReader::new(&[0, 0, 0, 2]).read_qimage().unwrap_err();
        assert_eq!(e.kind(), &DecodeErrorKind::BadImageMarker(2));
    }

    #[test]
    fn spec_rgb32_image_start() {
        // The start of a 2×1 RGB32 image as Qt writes it.
        let img = QImage::from_rgba8(2, 1, vec![255, 0, 0, 255, 0, 255, 0, 255])
            .unwrap()
            .convert_to(ImageFormat::RGB32)
            .unwrap();
        let mut w = DataStreamWriter::new();
        w.write_qimage(&img);
        w.write(&7u8);
        let b = w.into_bytes();
        assert_eq!(&b[..20], &unhex("00 00 00 01 89 50 4e 47 0d 0a 1a 0a 00 00 00 0d 49 48 44 52")[..]);
        let mut r = DataStreamReader::new(&b);
        let back = r.read_qimage().unwrap();
        assert_eq!(back.format(), ImageFormat::RGB32);
        assert_eq!(back.to_rgba8(), img.to_rgba8());
        assert_eq!(r.read::<u8>().unwrap(), 7, "the stream continues after IEND");
    }

    #[test]
    fn qt_written_images() {
        // Streams written by Qt 5.15 / 6.12 (3×2, see tests/qt/datastream_peer.py).
        let rgb32 = unhex("0000000189504e470d0a1a0a0000000d49484452000000030000000208020000001216f14d000000097048597300000f6100000f6101a83fa7690000001849444154089963f8cfc0c000c1422661ffffff676060000040740697f9684f9c0000000049454e44ae426082");
        let img = DataStreamReader::new(&rgb32).read_qimage().unwrap();
        assert_eq!((img.width(), img.height(), img.format()), (3, 2, ImageFormat::RGB32));
        assert_eq!(img.pixel(0, 0), 0xFFFF0000);
        assert_eq!(img.pixel(0, 1), 0xFF123456);
        let gray = unhex("0000000189504e470d0a1a0a0000000d4948445200000003000000020800000000b81f39c6000000097048597300000f6100000f6101a83fa769000000104944415408996364102860faf7fe3f00087f03700cc9d5440000000049454e44ae426082");
        let img = DataStreamReader::new(&gray).read_qimage().unwrap();
        assert_eq!(img.format(), ImageFormat::Grayscale8);
        assert_eq!(img.pixel(1, 0), 0xFF101010);
    }

    #[test]
    fn image_formats_roundtrip() {
        let px = vec![255, 0, 0, 255, 0, 255, 0, 128, 0, 0, 255, 0, 10, 10, 10, 255];
        let img = QImage::from_rgba8(2, 2, px).unwrap();
        for f in [ImageFormat::ARGB32, ImageFormat::RGB32, ImageFormat::Grayscale8, ImageFormat::Indexed8] {
            let src = img.convert_to(f).unwrap();
            let back = QImage::from_png(&src.to_png()).unwrap();
            assert_eq!(back.format(), f);
            assert_eq!(back.to_rgba8(), src.to_rgba8(), "{f}");
        }
        let two = QImage::from_rgba8(
            9,
            1,
            [0, 0, 0, 255, 255, 255, 255, 255].repeat(4).into_iter().chain([0, 0, 0, 255]).collect(),
        )
        .unwrap()
        .convert_to(ImageFormat::Mono)
        .unwrap();
        let back = QImage::from_png(&two.to_png()).unwrap();
        assert_eq!((back.format(), back.to_rgba8()), (ImageFormat::Mono, two.to_rgba8()));
        assert_eq!(ImageFormat::ARGB32.to_string(), "Format_ARGB32");
        assert_eq!(ImageFormat::from_value(4), Some(ImageFormat::RGB32));
    }

    fn png_with_ihdr(w: u32, h: u32) -> Vec<u8> {
        // A PNG whose IHDR claims w×h, with a tiny IDAT: must be refused before allocating.
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, 1, 1);
        enc.set_color(png::ColorType::Rgba);
        enc.write_header().unwrap().write_image_data(&[1, 2, 3, 4]).unwrap();
        // Patch the IHDR size and fix its CRC.
        out[16..20].copy_from_slice(&w.to_be_bytes());
        out[20..24].copy_from_slice(&h.to_be_bytes());
        let crc = crc32(&out[12..29]);
        out[29..33].copy_from_slice(&crc.to_be_bytes());
        out
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }

    #[test]
    fn huge_png_dimensions_are_refused() {
        let e = QImage::from_png(&png_with_ihdr(100_000, 100_000)).unwrap_err();
        assert!(matches!(e.kind(), DecodeErrorKind::Image(_)), "{e}");
        assert!(QImage::from_png(&png_with_ihdr(1, 1)).is_ok());
        // Under the 1 GiB cap, but 400 MB cannot come from a few bytes of IDAT.
        let e = QImage::from_png(&png_with_ihdr(10_000, 10_000)).unwrap_err();
        assert!(e.to_string().contains("cannot come from"), "{e}");
        assert!(QImage::from_rgba8(70_000, 70_000, vec![]).is_err());
    }

    #[test]
    fn fuzz_regressions() {
        // Inputs the fuzzer (fuzz/fuzz_targets/decode.rs) found crashing; the
        // first byte selects the fuzz case, the rest is the stream.
        let inputs: &[&[u8]] = &[include_bytes!("fuzz_regressions/plte-length-61.bin")];
        for input in inputs {
            let body = &input[1..];
            for bo in [ByteOrder::BigEndian, ByteOrder::LittleEndian] {
                let _ = DataStreamReader::with(body, Version::QT_6_12, bo).read_qimage();
            }
            let _ = QImage::from_png(body);
            let _ = QImage::from_png(body.get(4..).unwrap_or(&[]));
        }
    }
}

#[test]
fn writer_size_prefix_rules() {
    // 64-bit sizes from Qt_6_7 on (only the prefix is written here).
    let mut w = DataStreamWriter::with(Version::QT_6_7, ByteOrder::BigEndian);
    assert!(w.write_container_size(0xFFFF_FFFD));
    assert!(w.write_container_size(0xFFFF_FFFE));
    assert!(w.write_container_size(0x1_0000_0005));
    assert!(!w.size_limit_exceeded());
    assert_eq!(w.into_bytes(), unhex("fffffffd fffffffe 00000000fffffffe fffffffe 0000000100000005"));
    // Older versions: 0xFFFFFFFE as-is, larger sizes are refused (SizeLimitExceeded).
    let mut w = DataStreamWriter::with(Version::QT_6_6, ByteOrder::LittleEndian);
    assert!(w.write_container_size(0xFFFF_FFFE));
    assert!(!w.write_container_size(0xFFFF_FFFF));
    assert!(w.size_limit_exceeded());
    assert_eq!(w.into_bytes(), [0xfe, 0xff, 0xff, 0xff]);
    // The reader reads the extended form back.
    let b = unhex("fffffffe 0000000000000001 61");
    assert_eq!(DataStreamReader::new(&b).read_qbytearray().unwrap(), Some(b"a".to_vec()));
}

#[test]
fn qt5_typed_null_variants() {
    // PyQt5 (Qt 5.15): out << QVariant(QVariant::String) << QVariant(QVariant::Int)
    let b = unhex("0000000a01ffffffff 000000020100000000");
    let mut r = DataStreamReader::with(&b, Version::QT_5_15, ByteOrder::BigEndian);
    let a = r.read_qvariant_with_null_flag().unwrap();
    let c = r.read_qvariant_with_null_flag().unwrap();
    assert_eq!(a, (QVariant::String(None), true));
    assert_eq!(c, (QVariant::Int(0), true));
    let mut w = DataStreamWriter::with(Version::QT_5_15, ByteOrder::BigEndian);
    w.write_qvariant_with_null_flag(&a.0, a.1);
    w.write_qvariant_with_null_flag(&c.0, c.1);
    assert_eq!(w.into_bytes(), b);
    assert_eq!(DataStreamReader::new(&b).read::<QVariant>().unwrap(), QVariant::String(None));
}

#[test]
fn version_names_and_aliases() {
    let names: Vec<String> = (19..=24).map(|v| Version::new(v).unwrap().to_string()).collect();
    assert_eq!(names, ["Qt_5_15 (19)", "Qt_6_0 (20)", "Qt_6_6 (21)", "Qt_6_7 (22)", "Qt_6_10 (23)", "Qt_6_12 (24)"]);
    assert_eq!(Version::QT_6_5, Version::QT_6_0);
    assert_eq!((Version::QT_6_8, Version::QT_6_9), (Version::QT_6_7, Version::QT_6_7));
    assert_eq!(Version::QT_6_11, Version::QT_6_12);
    assert_eq!((Version::MIN, Version::MAX), (Version::QT_5_15, Version::QT_6_12));
    assert_eq!((Version::new(18), Version::new(25)), (None, None));
    assert!(Version::QT_5_15 < Version::QT_6_0);
}

#[test]
fn reader_and_writer_settings() {
    // A single-precision stream holds 4-byte floats, read into f32 or f64 alike.
    let mut r = DataStreamReader::new(&[0x3f, 0x80, 0, 0, 0xc0, 0, 0, 0]);
    r.set_floating_point_precision(FloatingPointPrecision::SinglePrecision);
    assert_eq!(r.read::<f64>().unwrap(), 1.0);
    assert_eq!(r.read::<f32>().unwrap(), -2.0);
    assert!(r.at_end());
    // Raw data has no length prefix and borrows from the input.
    let mut r = DataStreamReader::new(b"\x89PNG\r\n");
    assert_eq!(r.read_raw(4).unwrap(), b"\x89PNG");
    assert!(r.read_raw(3).is_err());
    assert_eq!(r.position(), 4);
    // The map order follows a version set later, until it is set explicitly.
    let mut w = DataStreamWriter::new();
    assert_eq!(w.map_order(), MapOrder::Ascending);
    w.set_version(Version::QT_5_15);
    assert_eq!(w.map_order(), MapOrder::Descending);
    w.set_map_order(MapOrder::Ascending);
    w.set_version(Version::QT_6_12);
    assert_eq!(w.map_order(), MapOrder::Ascending);
    // write_qstringlist writes what Vec<String> does.
    let mut w = DataStreamWriter::new();
    w.write_qstringlist(&["a", ""]);
    assert_eq!(w.into_bytes(), write(&vec!["a".to_string(), String::new()]));
}
