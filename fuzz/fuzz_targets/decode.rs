//! Decodes arbitrary bytes as every QDataStream type qipc-datastream supports, with both
//! byte orders and several stream versions. A decode must never panic, never
//! allocate beyond the input's size, and whatever decodes must re-encode to
//! bytes that decode to the same value.

#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use qipc_datastream::{
    ByteOrder, DataStreamReader, DataStreamWriter, Decode, Encode, FloatingPointPrecision, QByteArray, QImage,
    QVariant, Version,
};

fn roundtrip<T: Decode + Encode + PartialEq + std::fmt::Debug>(data: &[u8], v: Version, bo: ByteOrder, single: bool) {
    let prec = if single { FloatingPointPrecision::SinglePrecision } else { FloatingPointPrecision::DoublePrecision };
    let mut r = DataStreamReader::with(data, v, bo);
    r.set_floating_point_precision(prec);
    let start_remaining = r.remaining();
    match r.read::<T>() {
        Ok(value) => {
            assert!(r.remaining() <= start_remaining);
            let mut w = DataStreamWriter::with(v, bo);
            w.set_floating_point_precision(prec);
            w.write(&value);
            let bytes = w.into_bytes();
            let mut r2 = DataStreamReader::with(&bytes, v, bo);
            r2.set_floating_point_precision(prec);
            let again = r2.read::<T>().expect("re-encoded value must decode");
            // NaN payloads make f64 comparison unreliable: compare the bytes instead.
            let mut w2 = DataStreamWriter::with(v, bo);
            w2.set_floating_point_precision(prec);
            w2.write(&again);
            assert_eq!(w2.into_bytes(), bytes);
            assert_eq!(r2.remaining(), 0);
        }
        Err(e) => {
            assert_eq!(r.position(), 0, "a failed read must not move the reader");
            let _ = e.to_string();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let sel = data[0];
    let body = &data[1..];
    let bo = if sel & 1 == 0 { ByteOrder::BigEndian } else { ByteOrder::LittleEndian };
    let v = [Version::QT_5_15, Version::QT_6_0, Version::QT_6_6, Version::QT_6_7, Version::QT_6_12]
        [usize::from(sel >> 1) % 5];
    let single = sel & 0x80 != 0;
    match (sel >> 4) & 7 {
        0 => {
            roundtrip::<Option<String>>(body, v, bo, single);
            roundtrip::<QByteArray>(body, v, bo, single);
            roundtrip::<Vec<String>>(body, v, bo, single);
        }
        1 => {
            roundtrip::<QVariant>(body, v, bo, single);
            roundtrip::<Vec<QVariant>>(body, v, bo, single);
        }
        2 => {
            roundtrip::<BTreeMap<String, QVariant>>(body, v, bo, single);
            roundtrip::<BTreeMap<i32, Vec<QByteArray>>>(body, v, bo, single);
        }
        3 => {
            roundtrip::<Vec<Vec<Vec<u16>>>>(body, v, bo, single);
            roundtrip::<Vec<(i64, Option<String>)>>(body, v, bo, single);
        }
        4 => {
            // Any image that decodes must survive an encode/decode with the same pixels.
            let mut r = DataStreamReader::with(body, v, bo);
            if let Ok(img) = r.read_qimage() {
                let mut w = DataStreamWriter::with(v, bo);
                w.write_qimage(&img);
                let bytes = w.into_bytes();
                let back = DataStreamReader::with(&bytes, v, bo).read_qimage().expect("re-encoded image");
                assert_eq!(back.to_rgba8(), img.to_rgba8());
                assert_eq!((back.width(), back.height()), (img.width(), img.height()));
            }
            let _ = QImage::from_png(body);
        }
        5 => {
            roundtrip::<(bool, (i8, u8))>(body, v, bo, single);
            roundtrip::<(f32, f64)>(body, v, bo, single);
            roundtrip::<Vec<f64>>(body, v, bo, single);
        }
        _ => {
            // A sequence of mixed reads from one reader.
            let mut r = DataStreamReader::with(body, v, bo);
            while !r.at_end() {
                let before = r.position();
                let ok = match r.read_u8().unwrap_or(0) % 6 {
                    0 => r.read_qstring().is_ok(),
                    1 => r.read_qvariant().is_ok(),
                    2 => r.read::<BTreeMap<u8, String>>().is_ok(),
                    3 => r.read_qimage().is_ok(),
                    4 => r.read_qbytearray().is_ok(),
                    _ => r.read::<Vec<QVariant>>().is_ok(),
                };
                if !ok && r.position() == before + 1 {
                    break;
                }
            }
        }
    }
});
