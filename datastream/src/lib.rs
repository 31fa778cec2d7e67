//! Qt's `QDataStream` binary format: the bytes a Qt program writes with
//! `operator<<` and reads with `operator>>`.
//!
//! [`DataStreamWriter`] plays a `QDataStream` writing into a `QBuffer`, and
//! [`DataStreamReader`] one reading from a `QByteArray`. Both start with Qt's
//! defaults: big-endian, floating point written as `double`, and the newest
//! stream version this crate knows, [`Version::QT_6_12`]. Stream versions 19
//! to 24 (Qt 5.15 to Qt 6.12) are supported.
//!
//! The crate has no unsafe code, does no I/O and, without features, has no
//! dependencies: the bytes can go to a file, a socket or shared memory (the
//! `qipc` crate shares them with Qt's `QSharedMemory` and re-exports this
//! crate as `qipc::datastream`).
//!
//! ## A walkthrough
//!
//! A Qt program puts a message and a picture into a buffer:
//!
//! ```cpp
//! QBuffer buffer;
//! buffer.open(QBuffer::WriteOnly);
//! QDataStream out(&buffer);
//! out << QString("Hello") << image;   // a 2×1 image, QImage::Format_RGB32
//! ```
//!
//! The same bytes from Rust, and back (this needs the `qimage`
//! feature):
//!
//! ```
//! # #[cfg(feature = "qimage")]
//! # fn main() -> Result<(), qipc_datastream::DecodeError> {
//! use qipc_datastream::{DataStreamReader, DataStreamWriter, ImageFormat, QImage};
//!
//! // A red and a blue pixel (straight RGBA8), shown as QImage::Format_RGB32.
//! let rgba = vec![255, 0, 0, 255, 0, 0, 255, 255];
//! let image = QImage::from_rgba8(2, 1, rgba)?.convert_to(ImageFormat::RGB32)?;
//!
//! let mut out = DataStreamWriter::new();        // QDataStream out(&buffer);
//! out.write_qstring(Some("Hello"));             // out << QString("Hello")
//! out.write_qimage(&image);                     //     << image;
//! let bytes = out.into_bytes();                 // buffer.data()
//!
//! // A QString: its length in bytes, then UTF-16 code units, big-endian.
//! assert_eq!(&bytes[..14], &[0, 0, 0, 10, 0, b'H', 0, b'e', 0, b'l', 0, b'l', 0, b'o']);
//! // A QImage: the marker 1, then a PNG file.
//! assert_eq!(&bytes[14..22], &[0, 0, 0, 1, 0x89, b'P', b'N', b'G']);
//!
//! let mut input = DataStreamReader::new(&bytes); // QDataStream in(buffer.data());
//! let message = input.read_qstring()?;           // in >> message
//! let picture = input.read_qimage()?;            //    >> picture;
//! assert_eq!(message.as_deref(), Some("Hello"));
//! assert_eq!((picture.width(), picture.height()), (2, 1));
//! assert_eq!(picture.format(), ImageFormat::RGB32); // what Qt's reader reports too
//! assert_eq!(picture.pixel(1, 0), 0xff0000ff);      // a QRgb, 0xAARRGGBB
//! assert!(input.at_end());
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "qimage"))]
//! # fn main() {}
//! ```
//!
//! ## Types
//!
//! | Qt type | Rust type |
//! |---|---|
//! | `qint8` … `quint64`, `bool` | `i8` … `u64`, `bool` |
//! | `float`, `double` | `f32`, `f64` (see [`FloatingPointPrecision`]) |
//! | `QString` | `Option<String>` (`None` = null), `String`, `&str` |
//! | `QByteArray` | [`QByteArray`] (keeps null and empty apart) |
//! | `QStringList`, `QList<T>` | `Vec<String>`, `Vec<T>` (also `[T]` to write) |
//! | `QMap<K, V>` | `BTreeMap<K, V>` (see [`MapOrder`]) |
//! | `QPair<A, B>` / `std::pair` | `(A, B)` |
//! | `QVariant` | [`QVariant`] |
//! | `QImage` | `QImage` (feature `qimage`) |
//!
//! All of them implement [`Encode`] and [`Decode`], which
//! [`DataStreamWriter::write`] and [`DataStreamReader::read`] take. Your own
//! types join in by implementing the two traits, or field by field with
//! [`datastream_struct!`].
//!
//! ## Byte order
//!
//! Nothing in the stream says which byte order it uses: both sides must
//! agree, as with `QDataStream::setByteOrder`. The order applies to every
//! number, lengths and the UTF-16 code units of strings included.
//!
//! ```
//! use qipc_datastream::{ByteOrder, DataStreamReader, DataStreamWriter, Version};
//!
//! let mut out = DataStreamWriter::with(Version::QT_6_12, ByteOrder::LittleEndian);
//! out.write(&0x0102_0304u32);
//! out.write_qstring(Some("A"));
//! let bytes = out.into_bytes();
//! assert_eq!(bytes, [4, 3, 2, 1, 2, 0, 0, 0, b'A', 0]);
//!
//! // Read in the default (big-endian) order, the same bytes are another number.
//! assert_eq!(DataStreamReader::new(&bytes).read::<u32>()?, 0x0403_0201);
//! # Ok::<(), qipc_datastream::DecodeError>(())
//! ```
//!
//! ## Stream versions and 64-bit sizes
//!
//! The version is not in the stream either: use the one the Qt side sets
//! with `QDataStream::setVersion` (see [`Version`]). For the types of this
//! crate it changes two things: the order of `QMap` entries ([`MapOrder`]),
//! and sizes. From `Qt_6_7` (22) on, a size of `0xFFFFFFFE` or more is
//! written as `0xFFFFFFFE` followed by the size as a `qint64`. In older
//! versions `0xFFFFFFFE` is itself a size, and a larger one cannot be
//! written: the value is left out and
//! [`size_limit_exceeded`](DataStreamWriter::size_limit_exceeded) is set, as
//! Qt sets `QDataStream::SizeLimitExceeded`.
//!
//! ```
//! use qipc_datastream::{ByteOrder, DataStreamReader, DataStreamWriter, Version};
//!
//! // The QByteArray "a", its size in the 64-bit form.
//! let long_form = [0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 0, 0, 0, 0, 1, b'a'];
//! let mut input = DataStreamReader::with(&long_form, Version::QT_6_7, ByteOrder::BigEndian);
//! assert_eq!(input.read_qbytearray()?, Some(b"a".to_vec()));
//! // In a Qt_6_6 stream the same bytes announce almost 4 GiB, more than there is.
//! let mut input = DataStreamReader::with(&long_form, Version::QT_6_6, ByteOrder::BigEndian);
//! assert!(input.read_qbytearray().is_err());
//!
//! // A size of exactly 0xFFFFFFFE, written for each version:
//! let mut out = DataStreamWriter::with(Version::QT_6_7, ByteOrder::BigEndian);
//! assert!(out.write_container_size(0xFFFF_FFFE));
//! assert_eq!(out.into_bytes(), [0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xfe]);
//! let mut out = DataStreamWriter::with(Version::QT_6_6, ByteOrder::BigEndian);
//! assert!(out.write_container_size(0xFFFF_FFFE));
//! assert!(!out.write_container_size(0xFFFF_FFFF)); // too large for Qt_6_6: not written
//! assert!(out.size_limit_exceeded());
//! assert_eq!(out.into_bytes(), [0xff, 0xff, 0xff, 0xfe]);
//! # Ok::<(), qipc_datastream::DecodeError>(())
//! ```
//!
//! ## Null and empty
//!
//! Qt tells a null `QString()` from an empty `QString("")`, and a null
//! `QByteArray()` from an empty one: null is written as the length
//! `0xFFFFFFFF`, empty as the length 0. This crate keeps them apart with
//! `Option` (`None` is null) and [`QByteArray`]. Reading into a plain
//! `String`, or a `Vec<String>` for a `QStringList`, turns null into empty.
//!
//! ```
//! use qipc_datastream::{DataStreamReader, DataStreamWriter};
//!
//! let mut out = DataStreamWriter::new();
//! out.write_qstring(None);     // out << QString()
//! out.write_qstring(Some("")); // out << QString("")
//! let bytes = out.into_bytes();
//! assert_eq!(bytes, [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
//!
//! let mut input = DataStreamReader::new(&bytes);
//! assert_eq!(input.read_qstring()?, None);
//! assert_eq!(input.read_qstring()?, Some(String::new()));
//!
//! let mut input = DataStreamReader::new(&bytes);
//! assert_eq!(input.read::<String>()?, ""); // the null string
//! assert_eq!(input.read::<String>()?, "");
//! # Ok::<(), qipc_datastream::DecodeError>(())
//! ```
//!
//! ## Untrusted input
//!
//! Decoding never trusts a length field: a length or element count that
//! cannot fit in the bytes left fails at once with a [`DecodeError`], before
//! anything is allocated. Nested [`QVariant`] lists and maps stop at
//! [`MAX_VARIANT_DEPTH`] levels, and images at 1 GiB of RGBA pixels. A read
//! that fails leaves the reader where the value started.
//!
//! ## Features
//!
//! - `qimage` (off by default): the types `QImage` and `ImageFormat`, and
//!   `DataStreamWriter::write_qimage` and `DataStreamReader::read_qimage`.
//!   In a stream a `QImage` is a PNG file, so this feature brings in the
//!   `png` crate.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt;

#[cfg(feature = "qimage")]
mod image;
#[cfg(feature = "qimage")]
pub use image::{ImageFormat, QImage};

#[cfg(test)]
mod tests;

/// The README's example runs as a doctest, so the crate's page stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The byte order of a stream (`QDataStream::ByteOrder`).
///
/// ```
/// use qipc_datastream::{ByteOrder, DataStreamWriter, Version};
/// let mut out = DataStreamWriter::with(Version::QT_6_12, ByteOrder::LittleEndian);
/// out.write(&1u16);
/// assert_eq!(out.into_bytes(), [1, 0]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ByteOrder {
    /// `QDataStream::BigEndian`, Qt's default.
    #[default]
    BigEndian,
    /// `QDataStream::LittleEndian`.
    LittleEndian,
}

/// A `QDataStream::Version` value (not written into the stream: both sides must agree).
///
/// Only the versions from Qt 5.15 on are supported ([`Version::MIN`] ..= [`Version::MAX`]).
/// Qt gives several of its versions the same value when the format did not
/// change between them, and so do these constants.
///
/// ```
/// use qipc_datastream::{ByteOrder, DataStreamWriter, Version};
/// // out.setVersion(QDataStream::Qt_6_7);
/// let out = DataStreamWriter::with(Version::QT_6_7, ByteOrder::BigEndian);
/// assert_eq!(out.version().value(), 22);
/// assert_eq!(Version::QT_6_8, Version::QT_6_7);
/// assert_eq!(Version::new(24).map(|v| v.to_string()).as_deref(), Some("Qt_6_12 (24)"));
/// assert_eq!(Version::new(18), None); // Qt_5_12: too old
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(u8);

impl Version {
    /// `Qt_5_15` (also `Qt_5_13`, `Qt_5_14`): 19.
    pub const QT_5_15: Version = Version(19);
    /// `Qt_6_0` (also `Qt_6_1` … `Qt_6_5`): 20.
    pub const QT_6_0: Version = Version(20);
    /// `Qt_6_5`: 20.
    pub const QT_6_5: Version = Version(20);
    /// `Qt_6_6`: 21.
    pub const QT_6_6: Version = Version(21);
    /// `Qt_6_7` (also `Qt_6_8`, `Qt_6_9`): 22, the first with 64-bit sizes.
    pub const QT_6_7: Version = Version(22);
    /// `Qt_6_8`: 22.
    pub const QT_6_8: Version = Version(22);
    /// `Qt_6_9`: 22.
    pub const QT_6_9: Version = Version(22);
    /// `Qt_6_10`: 23.
    pub const QT_6_10: Version = Version(23);
    /// `Qt_6_11` (also `Qt_6_12`): 24.
    pub const QT_6_11: Version = Version(24);
    /// `Qt_6_12`: 24.
    pub const QT_6_12: Version = Version(24);
    /// The oldest supported version (19).
    pub const MIN: Version = Version::QT_5_15;
    /// The newest supported version (24), the default of readers and writers.
    pub const MAX: Version = Version::QT_6_12;

    /// The version with this `QDataStream::Version` value, if supported (19..=24).
    pub const fn new(value: u8) -> Option<Version> {
        if value >= Version::MIN.0 && value <= Version::MAX.0 {
            Some(Version(value))
        } else {
            None
        }
    }

    /// The numeric value (`QDataStream::version()`).
    pub const fn value(self) -> u8 {
        self.0
    }

    /// True from `Qt_6_7` (22) on: sizes ≥ 0xFFFFFFFE are written as
    /// `0xFFFFFFFE` then a `qint64` (see
    /// [64-bit sizes](crate#stream-versions-and-64-bit-sizes)).
    pub const fn has_extended_size(self) -> bool {
        self.0 >= Version::QT_6_7.0
    }
}

impl Default for Version {
    fn default() -> Self {
        Version::MAX
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            19 => "Qt_5_15",
            20 => "Qt_6_0",
            21 => "Qt_6_6",
            22 => "Qt_6_7",
            23 => "Qt_6_10",
            _ => "Qt_6_12",
        };
        write!(f, "{name} ({})", self.0)
    }
}

/// `QDataStream::FloatingPointPrecision`: how `float` and `double` are written.
///
/// With [`DoublePrecision`](Self::DoublePrecision) (the default) both are
/// written as 8-byte doubles; with [`SinglePrecision`](Self::SinglePrecision)
/// both are written as 4-byte floats, as Qt does.
///
/// ```
/// use qipc_datastream::{DataStreamWriter, FloatingPointPrecision};
/// let mut out = DataStreamWriter::new();
/// out.write(&1.5f32);
/// out.set_floating_point_precision(FloatingPointPrecision::SinglePrecision);
/// out.write(&1.5f64);
/// assert_eq!(out.into_bytes(), [0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0x3f, 0xc0, 0, 0]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FloatingPointPrecision {
    /// 4-byte IEEE floats.
    SinglePrecision,
    /// 8-byte IEEE doubles (Qt's default).
    #[default]
    DoublePrecision,
}

/// The order in which a writer writes the entries of a `QMap`.
///
/// Qt 5 writes a `QMap` from the largest key to the smallest; Qt 6 from the
/// smallest to the largest. Readers accept either order. The default follows
/// the stream version: [`Descending`](Self::Descending) for `Qt_5_15`,
/// [`Ascending`](Self::Ascending) for Qt 6 versions. Qt itself decides by
/// its own major version, not by the stream's: to write the same bytes as a
/// Qt 6 program that sets `Qt_5_15`, use
/// [`set_map_order`](DataStreamWriter::set_map_order).
///
/// ```
/// use std::collections::BTreeMap;
/// use qipc_datastream::{ByteOrder, DataStreamWriter, MapOrder, Version};
/// let map = BTreeMap::from([(1u8, 10u8), (2, 20)]);
/// let mut out = DataStreamWriter::with(Version::QT_5_15, ByteOrder::BigEndian);
/// assert_eq!(out.map_order(), MapOrder::Descending);
/// out.write(&map);
/// assert_eq!(out.into_bytes(), [0, 0, 0, 2, 2, 20, 1, 10]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MapOrder {
    /// Smallest key first (Qt 6).
    Ascending,
    /// Largest key first (Qt 5).
    Descending,
}

/// What went wrong in a [`DecodeError`].
///
/// ```
/// use qipc_datastream::{DataStreamReader, DecodeErrorKind};
/// let err = DataStreamReader::new(&[0, 0]).read::<u32>().unwrap_err();
/// assert_eq!(err.kind(), &DecodeErrorKind::UnexpectedEof { needed: 4, available: 2 });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The data ended: `needed` bytes were required, `available` were left.
    UnexpectedEof {
        /// Bytes needed.
        needed: u64,
        /// Bytes left.
        available: u64,
    },
    /// A length or element count cannot fit in the bytes left (or is negative).
    BadLength(i64),
    /// A null marker (`0xFFFFFFFF`) where the type has no null value.
    UnexpectedNull,
    /// A QString with an odd byte count.
    OddStringLength(u64),
    /// A QString that is not valid UTF-16 (an unpaired surrogate).
    InvalidUtf16,
    /// A QVariant of a type this crate does not support.
    UnsupportedVariantType(u32),
    /// A QImage marker other than 0 or 1.
    BadImageMarker(i32),
    /// A malformed or unsupported PNG, or one over the size limits.
    Image(String),
    /// Some other problem.
    Other(String),
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeErrorKind::UnexpectedEof { needed, available } => {
                write!(f, "unexpected end of data: {needed} bytes needed, {available} left")
            }
            DecodeErrorKind::BadLength(n) => write!(f, "length {n} does not fit in the data left"),
            DecodeErrorKind::UnexpectedNull => f.write_str("unexpected null marker"),
            DecodeErrorKind::OddStringLength(n) => write!(f, "odd QString byte count {n}"),
            DecodeErrorKind::InvalidUtf16 => f.write_str("invalid UTF-16 (unpaired surrogate)"),
            DecodeErrorKind::UnsupportedVariantType(t) => write!(f, "unsupported QVariant type id {t}"),
            DecodeErrorKind::BadImageMarker(m) => write!(f, "bad QImage marker {m}"),
            DecodeErrorKind::Image(s) => write!(f, "bad image: {s}"),
            DecodeErrorKind::Other(s) => f.write_str(s),
        }
    }
}

/// A decoding error: what was being read, where, and why it failed.
///
/// ```
/// use qipc_datastream::{DataStreamReader, DecodeErrorKind};
/// let err = DataStreamReader::new(&[0, 0, 0, 9, 0]).read_qbytearray().unwrap_err();
/// assert_eq!(err.offset(), 0);
/// assert_eq!(err.type_name(), "QByteArray");
/// assert!(matches!(err.kind(), DecodeErrorKind::BadLength(9)));
/// assert_eq!(err.to_string(), "cannot read QByteArray at offset 0: length 9 does not fit in the data left");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    offset: usize,
    type_name: &'static str,
    kind: DecodeErrorKind,
}

impl DecodeError {
    /// An error at byte `offset` while reading a `type_name`.
    pub fn new(offset: usize, type_name: &'static str, kind: DecodeErrorKind) -> Self {
        DecodeError { offset, type_name, kind }
    }
    /// The byte offset in the stream where the failing value (or field) starts.
    pub fn offset(&self) -> usize {
        self.offset
    }
    /// The Qt type that was being read, e.g. `"QString"`.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }
    /// Why it failed.
    pub fn kind(&self) -> &DecodeErrorKind {
        &self.kind
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot read {} at offset {}: {}", self.type_name, self.offset, self.kind)
    }
}

impl std::error::Error for DecodeError {}

/// A `QByteArray`: `None` is the null byte array, distinct from an empty one.
///
/// ```
/// use qipc_datastream::{DataStreamReader, DataStreamWriter, QByteArray};
/// let mut out = DataStreamWriter::new();
/// out.write(&QByteArray::from(&b"abc"[..]));
/// out.write(&QByteArray::null()); // QByteArray()
/// out.write(&QByteArray::from(Vec::new())); // QByteArray("")
/// let bytes = out.into_bytes();
/// assert_eq!(bytes, [0, 0, 0, 3, b'a', b'b', b'c', 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
///
/// let mut input = DataStreamReader::new(&bytes);
/// assert_eq!(input.read::<QByteArray>()?.as_bytes(), b"abc");
/// assert!(input.read::<QByteArray>()?.is_null());
/// let empty = input.read::<QByteArray>()?;
/// assert!(!empty.is_null() && empty.as_bytes().is_empty());
/// # Ok::<(), qipc_datastream::DecodeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct QByteArray(pub Option<Vec<u8>>);

impl QByteArray {
    /// The null byte array (`QByteArray()`).
    pub const fn null() -> Self {
        QByteArray(None)
    }
    /// True for the null byte array.
    pub fn is_null(&self) -> bool {
        self.0.is_none()
    }
    /// The bytes (empty for the null byte array).
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_deref().unwrap_or(&[])
    }
}

impl From<Vec<u8>> for QByteArray {
    fn from(v: Vec<u8>) -> Self {
        QByteArray(Some(v))
    }
}

impl From<&[u8]> for QByteArray {
    fn from(v: &[u8]) -> Self {
        QByteArray(Some(v.to_vec()))
    }
}

impl From<Option<Vec<u8>>> for QByteArray {
    fn from(v: Option<Vec<u8>>) -> Self {
        QByteArray(v)
    }
}

/// A `QVariant` holding one of the supported types.
///
/// Written as a `quint32` type id (the same in Qt 5 and Qt 6 for these
/// types), a null-flag byte (1 only for [`QVariant::Invalid`]), then the value.
///
/// ```
/// use qipc_datastream::{DataStreamReader, DataStreamWriter, QVariant};
/// let mut out = DataStreamWriter::new();
/// out.write(&QVariant::Int(7));
/// let bytes = out.into_bytes();
/// assert_eq!(bytes, [0, 0, 0, 2, 0, 0, 0, 0, 7]);
/// assert_eq!(DataStreamReader::new(&bytes).read::<QVariant>()?, QVariant::Int(7));
/// # Ok::<(), qipc_datastream::DecodeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub enum QVariant {
    /// An invalid (default-constructed) `QVariant()`: type id 0.
    #[default]
    Invalid,
    /// `bool` (type id 1).
    Bool(bool),
    /// `int` (type id 2).
    Int(i32),
    /// `uint` (type id 3).
    UInt(u32),
    /// `qlonglong` (type id 4).
    LongLong(i64),
    /// `qulonglong` (type id 5).
    ULongLong(u64),
    /// `double` (type id 6).
    Double(f64),
    /// `QString` (type id 10); `None` = null string.
    String(Option<String>),
    /// `QStringList` (type id 11).
    StringList(Vec<String>),
    /// `QByteArray` (type id 12).
    ByteArray(QByteArray),
    /// `QVariantMap` = `QMap<QString, QVariant>` (type id 8).
    Map(BTreeMap<String, QVariant>),
    /// `QVariantList` = `QList<QVariant>` (type id 9).
    List(Vec<QVariant>),
}

/// How deeply [`QVariant::Map`] and [`QVariant::List`] may nest when read.
pub const MAX_VARIANT_DEPTH: u32 = 64;

impl QVariant {
    /// The `QMetaType` id written for this variant (Qt 5 and Qt 6 agree on these).
    pub fn type_id(&self) -> u32 {
        match self {
            QVariant::Invalid => 0,
            QVariant::Bool(_) => 1,
            QVariant::Int(_) => 2,
            QVariant::UInt(_) => 3,
            QVariant::LongLong(_) => 4,
            QVariant::ULongLong(_) => 5,
            QVariant::Double(_) => 6,
            QVariant::String(_) => 10,
            QVariant::StringList(_) => 11,
            QVariant::ByteArray(_) => 12,
            QVariant::Map(_) => 8,
            QVariant::List(_) => 9,
        }
    }
}

/// Writes QDataStream bytes into a growing buffer.
///
/// ```
/// use qipc_datastream::DataStreamWriter;
/// let mut out = DataStreamWriter::new();
/// out.write(&0x01020304u32);
/// out.write(&-2i32);
/// assert_eq!(out.into_bytes(), [1, 2, 3, 4, 0xff, 0xff, 0xff, 0xfe]);
/// ```
#[derive(Debug, Clone)]
pub struct DataStreamWriter {
    buf: Vec<u8>,
    version: Version,
    byte_order: ByteOrder,
    precision: FloatingPointPrecision,
    map_order: Option<MapOrder>,
    size_limit_exceeded: bool,
}

impl Default for DataStreamWriter {
    fn default() -> Self {
        Self::new()
    }
}

macro_rules! write_int {
    ($($name:ident $t:ty, $doc:literal;)*) => {$(
        #[doc = concat!("Writes a `", $doc, "` in the stream byte order.")]
        pub fn $name(&mut self, v: $t) {
            match self.byte_order {
                ByteOrder::BigEndian => self.buf.extend_from_slice(&v.to_be_bytes()),
                ByteOrder::LittleEndian => self.buf.extend_from_slice(&v.to_le_bytes()),
            }
        }
    )*};
}

impl DataStreamWriter {
    /// A writer with Qt's defaults: newest version, big-endian, double precision.
    pub fn new() -> Self {
        Self::with(Version::default(), ByteOrder::BigEndian)
    }

    /// A writer for this stream version and byte order.
    pub fn with(version: Version, byte_order: ByteOrder) -> Self {
        DataStreamWriter {
            buf: Vec::new(),
            version,
            byte_order,
            precision: FloatingPointPrecision::DoublePrecision,
            map_order: None,
            size_limit_exceeded: false,
        }
    }

    /// The stream version.
    pub fn version(&self) -> Version {
        self.version
    }
    /// Changes the stream version (`QDataStream::setVersion`).
    pub fn set_version(&mut self, version: Version) {
        self.version = version;
    }
    /// The byte order.
    pub fn byte_order(&self) -> ByteOrder {
        self.byte_order
    }
    /// Changes the byte order (`QDataStream::setByteOrder`).
    pub fn set_byte_order(&mut self, byte_order: ByteOrder) {
        self.byte_order = byte_order;
    }
    /// The floating point precision.
    pub fn floating_point_precision(&self) -> FloatingPointPrecision {
        self.precision
    }
    /// Changes the floating point precision (`QDataStream::setFloatingPointPrecision`).
    pub fn set_floating_point_precision(&mut self, precision: FloatingPointPrecision) {
        self.precision = precision;
    }
    /// The order `QMap` entries are written in (default: from the version).
    pub fn map_order(&self) -> MapOrder {
        self.map_order.unwrap_or(if self.version >= Version::QT_6_0 {
            MapOrder::Ascending
        } else {
            MapOrder::Descending
        })
    }
    /// Sets the order `QMap` entries are written in (e.g. to match Qt 6 writing a `Qt_5_15` stream).
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use qipc_datastream::{ByteOrder, DataStreamWriter, MapOrder, Version};
    /// let mut out = DataStreamWriter::with(Version::QT_5_15, ByteOrder::BigEndian);
    /// out.set_map_order(MapOrder::Ascending);
    /// out.write(&BTreeMap::from([(1u8, 10u8), (2, 20)]));
    /// assert_eq!(out.into_bytes(), [0, 0, 0, 2, 1, 10, 2, 20]);
    /// ```
    pub fn set_map_order(&mut self, order: MapOrder) {
        self.map_order = Some(order);
    }
    /// True if a size did not fit the stream version (Qt's `SizeLimitExceeded`);
    /// the value was then not written.
    pub fn size_limit_exceeded(&self) -> bool {
        self.size_limit_exceeded
    }
    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Writes any [`Encode`] value (`out << value`).
    ///
    /// ```
    /// use qipc_datastream::DataStreamWriter;
    /// let mut out = DataStreamWriter::new();
    /// out.write(&true);
    /// out.write("é");
    /// out.write(&(1u8, -1i8));
    /// assert_eq!(out.into_bytes(), [1, 0, 0, 0, 2, 0, 0xe9, 1, 0xff]);
    /// ```
    pub fn write<T: Encode + ?Sized>(&mut self, value: &T) {
        value.encode(self);
    }

    /// Appends raw bytes (`QDataStream::writeRawData`).
    ///
    /// ```
    /// use qipc_datastream::DataStreamWriter;
    /// let mut out = DataStreamWriter::new();
    /// out.write_raw(b"\x89PNG");
    /// assert_eq!(out.into_bytes(), b"\x89PNG"); // no length prefix
    /// ```
    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    write_int! {
        write_i8 i8, "qint8";
        write_u8 u8, "quint8";
        write_i16 i16, "qint16";
        write_u16 u16, "quint16";
        write_i32 i32, "qint32";
        write_u32 u32, "quint32";
        write_i64 i64, "qint64";
        write_u64 u64, "quint64";
    }

    /// Writes a `bool` as one byte 0 or 1.
    pub fn write_bool(&mut self, v: bool) {
        self.buf.push(v as u8);
    }

    /// Writes a `float`: as a double unless the precision is single.
    pub fn write_f32(&mut self, v: f32) {
        match self.precision {
            FloatingPointPrecision::SinglePrecision => self.write_u32(v.to_bits()),
            FloatingPointPrecision::DoublePrecision => self.write_u64(f64::from(v).to_bits()),
        }
    }

    /// Writes a `double`: as a float if the precision is single (as Qt does).
    pub fn write_f64(&mut self, v: f64) {
        match self.precision {
            FloatingPointPrecision::SinglePrecision => self.write_u32((v as f32).to_bits()),
            FloatingPointPrecision::DoublePrecision => self.write_u64(v.to_bits()),
        }
    }

    /// Writes a size prefix (Qt's `writeQSizeType`); false if it does not fit the version.
    fn write_size(&mut self, len: usize) -> bool {
        let len = len as u64;
        if self.version.has_extended_size() {
            if len >= 0xFFFF_FFFE {
                self.write_u32(0xFFFF_FFFE);
                self.write_i64(len as i64);
            } else {
                self.write_u32(len as u32);
            }
            true
        } else if len <= 0xFFFF_FFFE {
            self.write_u32(len as u32);
            true
        } else {
            self.size_limit_exceeded = true;
            false
        }
    }

    /// Writes a container size (`QList`, `QMap`); false if it does not fit.
    ///
    /// ```
    /// use qipc_datastream::DataStreamWriter;
    /// let mut out = DataStreamWriter::new();
    /// let items = [1u16, 2];
    /// assert!(out.write_container_size(items.len()));
    /// for x in items {
    ///     out.write_u16(x);
    /// }
    /// assert_eq!(out.into_bytes(), [0, 0, 0, 2, 0, 1, 0, 2]);
    /// ```
    pub fn write_container_size(&mut self, len: usize) -> bool {
        self.write_size(len)
    }

    /// Writes a `QString` (`None` = null string) as UTF-16.
    ///
    /// ```
    /// use qipc_datastream::DataStreamWriter;
    /// let mut out = DataStreamWriter::new();
    /// out.write_qstring(Some("hé"));
    /// out.write_qstring(None);
    /// assert_eq!(out.into_bytes(), [0, 0, 0, 4, 0, 0x68, 0, 0xe9, 0xff, 0xff, 0xff, 0xff]);
    /// ```
    pub fn write_qstring(&mut self, s: Option<&str>) {
        match s {
            None => self.write_u32(0xFFFF_FFFF),
            Some(s) => {
                let units = s.encode_utf16().count();
                if self.write_size(units * 2) {
                    for u in s.encode_utf16() {
                        self.write_u16(u);
                    }
                }
            }
        }
    }

    /// Writes a `QString` given as UTF-16 code units (may hold unpaired surrogates).
    ///
    /// ```
    /// use qipc_datastream::DataStreamWriter;
    /// let mut out = DataStreamWriter::new();
    /// out.write_qstring_utf16(Some(&[0xd800])); // a lone surrogate, which a Rust string cannot hold
    /// assert_eq!(out.into_bytes(), [0, 0, 0, 2, 0xd8, 0]);
    /// ```
    pub fn write_qstring_utf16(&mut self, s: Option<&[u16]>) {
        match s {
            None => self.write_u32(0xFFFF_FFFF),
            Some(units) => {
                if self.write_size(units.len() * 2) {
                    for &u in units {
                        self.write_u16(u);
                    }
                }
            }
        }
    }

    /// Writes a `QByteArray` (`None` = null byte array).
    pub fn write_qbytearray(&mut self, bytes: Option<&[u8]>) {
        match bytes {
            None => self.write_u32(0xFFFF_FFFF),
            Some(b) => {
                if self.write_size(b.len()) {
                    self.buf.extend_from_slice(b);
                }
            }
        }
    }

    /// Writes a `QStringList`.
    pub fn write_qstringlist<S: AsRef<str>>(&mut self, list: &[S]) {
        if self.write_size(list.len()) {
            for s in list {
                self.write_qstring(Some(s.as_ref()));
            }
        }
    }

    /// Writes a `QVariant`, with the null flag 1 only for [`QVariant::Invalid`]
    /// (what Qt writes for variants made from a value).
    ///
    /// ```
    /// use qipc_datastream::{DataStreamWriter, QVariant};
    /// let mut out = DataStreamWriter::new();
    /// out.write_qvariant(&QVariant::Bool(true));
    /// out.write_qvariant(&QVariant::Invalid);
    /// assert_eq!(out.into_bytes(), [0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1]);
    /// ```
    pub fn write_qvariant(&mut self, v: &QVariant) {
        self.write_qvariant_with_null_flag(v, matches!(v, QVariant::Invalid));
    }

    /// Writes a `QVariant` with an explicit null flag. Qt 5 writes 1 for a typed
    /// null variant such as `QVariant(QVariant::Int)` (then the default value).
    ///
    /// ```
    /// use qipc_datastream::{DataStreamWriter, QVariant};
    /// let mut out = DataStreamWriter::new();
    /// out.write_qvariant_with_null_flag(&QVariant::Int(0), true);
    /// assert_eq!(out.into_bytes(), [0, 0, 0, 2, 1, 0, 0, 0, 0]);
    /// ```
    pub fn write_qvariant_with_null_flag(&mut self, v: &QVariant, is_null: bool) {
        self.write_u32(v.type_id());
        self.write_bool(is_null);
        match v {
            QVariant::Invalid => {}
            QVariant::Bool(b) => self.write_bool(*b),
            QVariant::Int(i) => self.write_i32(*i),
            QVariant::UInt(i) => self.write_u32(*i),
            QVariant::LongLong(i) => self.write_i64(*i),
            QVariant::ULongLong(i) => self.write_u64(*i),
            QVariant::Double(d) => self.write_f64(*d),
            QVariant::String(s) => self.write_qstring(s.as_deref()),
            QVariant::StringList(l) => self.write_qstringlist(l),
            QVariant::ByteArray(b) => self.write_qbytearray(b.0.as_deref()),
            QVariant::Map(m) => self.write(m),
            QVariant::List(l) => self.write(l),
        }
    }

    /// Writes a `QImage`: marker 0 for a null image, else marker 1 and a PNG file.
    #[cfg(feature = "qimage")]
    #[cfg_attr(docsrs, doc(cfg(feature = "qimage")))]
    pub fn write_qimage(&mut self, image: &QImage) {
        if image.is_null() {
            self.write_i32(0);
        } else {
            self.write_i32(1);
            self.buf.extend_from_slice(&image.to_png());
        }
    }
}

/// Reads QDataStream bytes from a slice.
///
/// ```
/// use qipc_datastream::{ByteOrder, DataStreamReader, Version};
/// let mut input = DataStreamReader::with(&[1, 0, 2, 0], Version::QT_5_15, ByteOrder::LittleEndian);
/// assert_eq!(input.read::<u16>()?, 1);
/// assert_eq!(input.position(), 2);
/// assert_eq!(input.remaining(), 2);
/// # Ok::<(), qipc_datastream::DecodeError>(())
/// ```
#[derive(Debug, Clone)]
pub struct DataStreamReader<'a> {
    data: &'a [u8],
    pos: usize,
    version: Version,
    byte_order: ByteOrder,
    precision: FloatingPointPrecision,
    depth: u32,
}

macro_rules! read_int {
    ($($name:ident $t:ty, $n:literal, $doc:literal;)*) => {$(
        #[doc = concat!("Reads a `", $doc, "` in the stream byte order.")]
        pub fn $name(&mut self) -> Result<$t, DecodeError> {
            let b: [u8; $n] = self.take_array($doc)?;
            Ok(match self.byte_order {
                ByteOrder::BigEndian => <$t>::from_be_bytes(b),
                ByteOrder::LittleEndian => <$t>::from_le_bytes(b),
            })
        }
    )*};
}

impl<'a> DataStreamReader<'a> {
    /// A reader with Qt's defaults: newest version, big-endian, double precision.
    pub fn new(data: &'a [u8]) -> Self {
        Self::with(data, Version::default(), ByteOrder::BigEndian)
    }

    /// A reader for this stream version and byte order.
    pub fn with(data: &'a [u8], version: Version, byte_order: ByteOrder) -> Self {
        DataStreamReader {
            data,
            pos: 0,
            version,
            byte_order,
            precision: FloatingPointPrecision::DoublePrecision,
            depth: 0,
        }
    }

    /// The stream version.
    pub fn version(&self) -> Version {
        self.version
    }
    /// Changes the stream version.
    pub fn set_version(&mut self, version: Version) {
        self.version = version;
    }
    /// The byte order.
    pub fn byte_order(&self) -> ByteOrder {
        self.byte_order
    }
    /// Changes the byte order.
    pub fn set_byte_order(&mut self, byte_order: ByteOrder) {
        self.byte_order = byte_order;
    }
    /// The floating point precision.
    pub fn floating_point_precision(&self) -> FloatingPointPrecision {
        self.precision
    }
    /// Changes the floating point precision.
    pub fn set_floating_point_precision(&mut self, precision: FloatingPointPrecision) {
        self.precision = precision;
    }
    /// The number of bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }
    /// The number of bytes left.
    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }
    /// True when all bytes have been read (`QDataStream::atEnd`).
    pub fn at_end(&self) -> bool {
        self.remaining() == 0
    }

    /// Reads any [`Decode`] value (`in >> value`). On error the position is
    /// left where the failing value started.
    ///
    /// ```
    /// use qipc_datastream::DataStreamReader;
    /// let bytes = [0, 0, 0, 7, 0, 0, 0, 2, 0, 0x41];
    /// let mut input = DataStreamReader::new(&bytes);
    /// let (n, s): (i32, String) = input.read()?; // in >> n >> s
    /// assert_eq!((n, s.as_str()), (7, "A"));
    ///
    /// // The second half of the pair is cut short: the whole pair is unread.
    /// let mut input = DataStreamReader::new(&[0, 0, 0, 7, 0, 0]);
    /// assert!(input.read::<(i32, i32)>().is_err());
    /// assert_eq!(input.position(), 0);
    /// # Ok::<(), qipc_datastream::DecodeError>(())
    /// ```
    pub fn read<T: Decode>(&mut self) -> Result<T, DecodeError> {
        let start = self.pos;
        let r = T::decode(self);
        if r.is_err() {
            self.pos = start;
        }
        r
    }

    fn err(&self, offset: usize, type_name: &'static str, kind: DecodeErrorKind) -> DecodeError {
        DecodeError::new(offset, type_name, kind)
    }

    /// Takes `n` raw bytes (`QDataStream::readRawData`).
    pub fn read_raw(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        self.take(n, "raw data")
    }

    fn take(&mut self, n: usize, type_name: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(self.err(
                self.pos,
                type_name,
                DecodeErrorKind::UnexpectedEof { needed: n as u64, available: self.remaining() as u64 },
            ));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn take_array<const N: usize>(&mut self, type_name: &'static str) -> Result<[u8; N], DecodeError> {
        let s = self.take(N, type_name)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    read_int! {
        read_i8 i8, 1, "qint8";
        read_u8 u8, 1, "quint8";
        read_i16 i16, 2, "qint16";
        read_u16 u16, 2, "quint16";
        read_i32 i32, 4, "qint32";
        read_u32 u32, 4, "quint32";
        read_i64 i64, 8, "qint64";
        read_u64 u64, 8, "quint64";
    }

    /// Reads a `bool` (any nonzero byte is true, as in Qt).
    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.take(1, "bool")?[0] != 0)
    }

    /// Reads a `float` (a double narrowed to float unless the precision is single).
    pub fn read_f32(&mut self) -> Result<f32, DecodeError> {
        match self.precision {
            FloatingPointPrecision::SinglePrecision => Ok(f32::from_bits(self.read_u32()?)),
            FloatingPointPrecision::DoublePrecision => Ok(f64::from_bits(self.read_u64()?) as f32),
        }
    }

    /// Reads a `double` (a float widened to double if the precision is single).
    pub fn read_f64(&mut self) -> Result<f64, DecodeError> {
        match self.precision {
            FloatingPointPrecision::SinglePrecision => Ok(f64::from(f32::from_bits(self.read_u32()?))),
            FloatingPointPrecision::DoublePrecision => Ok(f64::from_bits(self.read_u64()?)),
        }
    }

    /// Reads a size prefix (Qt's `readQSizeType`): `None` for the null marker.
    fn read_size(&mut self, type_name: &'static str) -> Result<Option<u64>, DecodeError> {
        let start = self.pos;
        let first = self.read_u32().map_err(|e| self.err(start, type_name, e.kind))?;
        if first == 0xFFFF_FFFF {
            return Ok(None);
        }
        if first == 0xFFFF_FFFE && self.version.has_extended_size() {
            let ext = self.read_i64().map_err(|e| self.err(start, type_name, e.kind))?;
            if ext < 0 {
                return Err(self.err(start, type_name, DecodeErrorKind::BadLength(ext)));
            }
            return Ok(Some(ext as u64));
        }
        Ok(Some(u64::from(first)))
    }

    /// Reads a byte length and checks that `len * unit` bytes are left.
    fn read_byte_len(&mut self, type_name: &'static str, unit: u64) -> Result<Option<usize>, DecodeError> {
        let start = self.pos;
        match self.read_size(type_name)? {
            None => Ok(None),
            Some(n) => match n.checked_mul(unit) {
                Some(bytes) if bytes <= self.remaining() as u64 => Ok(Some(n as usize)),
                _ => Err(self.err(start, type_name, DecodeErrorKind::BadLength(n as i64))),
            },
        }
    }

    /// Reads a container element count (`QList`, `QMap`), checked against the
    /// bytes left given the smallest encoding of one element.
    ///
    /// ```
    /// use qipc_datastream::DataStreamReader;
    /// let mut input = DataStreamReader::new(&[0, 0, 0, 2, 0, 1, 0, 2]);
    /// let n = input.read_container_size("QList<quint16>", 2)?;
    /// let items = (0..n).map(|_| input.read_u16()).collect::<Result<Vec<_>, _>>()?;
    /// assert_eq!(items, [1, 2]);
    /// // A count that cannot fit in the bytes left fails before anything is allocated:
    /// assert!(DataStreamReader::new(&[0, 0, 0, 9, 0, 1]).read_container_size("QList<quint16>", 2).is_err());
    /// # Ok::<(), qipc_datastream::DecodeError>(())
    /// ```
    pub fn read_container_size(
        &mut self,
        type_name: &'static str,
        min_element_size: usize,
    ) -> Result<usize, DecodeError> {
        let start = self.pos;
        self.restoring(|r| match r.read_byte_len(type_name, min_element_size.max(1) as u64)? {
            Some(n) => Ok(n),
            None => Err(r.err(start, type_name, DecodeErrorKind::UnexpectedNull)),
        })
    }

    /// Reads a `QString` as UTF-16 code units (`None` = null string), without
    /// checking surrogates.
    ///
    /// ```
    /// use qipc_datastream::DataStreamReader;
    /// let bytes = [0, 0, 0, 2, 0xd8, 0]; // a lone surrogate
    /// assert_eq!(DataStreamReader::new(&bytes).read_qstring_utf16()?, Some(vec![0xd800]));
    /// assert!(DataStreamReader::new(&bytes).read_qstring().is_err());
    /// # Ok::<(), qipc_datastream::DecodeError>(())
    /// ```
    pub fn read_qstring_utf16(&mut self) -> Result<Option<Vec<u16>>, DecodeError> {
        let start = self.pos;
        let Some(len) = self.restoring(|r| r.read_byte_len("QString", 1))? else { return Ok(None) };
        if len % 2 != 0 {
            self.pos = start;
            return Err(self.err(start, "QString", DecodeErrorKind::OddStringLength(len as u64)));
        }
        let bytes = self.take(len, "QString")?;
        let units = bytes
            .chunks_exact(2)
            .map(|c| match self.byte_order {
                ByteOrder::BigEndian => u16::from_be_bytes([c[0], c[1]]),
                ByteOrder::LittleEndian => u16::from_le_bytes([c[0], c[1]]),
            })
            .collect();
        Ok(Some(units))
    }

    /// Reads a `QString` (`None` = null string, see
    /// [null and empty](crate#null-and-empty)). Fails on an odd byte count
    /// (as Qt does) and on an unpaired surrogate (which a Rust `String` cannot
    /// hold: use [`read_qstring_utf16`](Self::read_qstring_utf16) for those).
    pub fn read_qstring(&mut self) -> Result<Option<String>, DecodeError> {
        let start = self.pos;
        match self.read_qstring_utf16()? {
            None => Ok(None),
            Some(units) => String::from_utf16(&units).map(Some).map_err(|_| {
                self.pos = start;
                self.err(start, "QString", DecodeErrorKind::InvalidUtf16)
            }),
        }
    }

    /// Reads a `QByteArray` (`None` = null byte array).
    pub fn read_qbytearray(&mut self) -> Result<Option<Vec<u8>>, DecodeError> {
        self.restoring(|r| match r.read_byte_len("QByteArray", 1)? {
            None => Ok(None),
            Some(len) => Ok(Some(r.take(len, "QByteArray")?.to_vec())),
        })
    }

    /// Runs `f`, putting the position back where it was if `f` fails.
    fn restoring<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, DecodeError>) -> Result<T, DecodeError> {
        let start = self.pos;
        let r = f(self);
        if r.is_err() {
            self.pos = start;
        }
        r
    }

    /// Reads a `QStringList` (null strings in it become empty strings).
    ///
    /// ```
    /// use qipc_datastream::DataStreamReader;
    /// let bytes = [0, 0, 0, 2, 0, 0, 0, 2, 0, 0x61, 0xff, 0xff, 0xff, 0xff];
    /// assert_eq!(DataStreamReader::new(&bytes).read_qstringlist()?, ["a", ""]);
    /// # Ok::<(), qipc_datastream::DecodeError>(())
    /// ```
    pub fn read_qstringlist(&mut self) -> Result<Vec<String>, DecodeError> {
        self.read::<Vec<String>>()
    }

    /// Reads a `QVariant` (its null flag is read and dropped; Qt reads the
    /// value whatever the flag says).
    pub fn read_qvariant(&mut self) -> Result<QVariant, DecodeError> {
        self.read_qvariant_with_null_flag().map(|(v, _)| v)
    }

    /// Reads a `QVariant` and its null flag.
    ///
    /// ```
    /// use qipc_datastream::{DataStreamReader, QVariant};
    /// // Qt 5: out << QVariant(QVariant::String)
    /// let bytes = [0, 0, 0, 10, 1, 0xff, 0xff, 0xff, 0xff];
    /// let (v, is_null) = DataStreamReader::new(&bytes).read_qvariant_with_null_flag()?;
    /// assert_eq!((v, is_null), (QVariant::String(None), true));
    /// # Ok::<(), qipc_datastream::DecodeError>(())
    /// ```
    pub fn read_qvariant_with_null_flag(&mut self) -> Result<(QVariant, bool), DecodeError> {
        let start = self.pos;
        let r = self.read_qvariant_inner(start);
        if r.is_err() {
            self.pos = start;
        }
        r
    }

    fn read_qvariant_inner(&mut self, start: usize) -> Result<(QVariant, bool), DecodeError> {
        let type_id = self.read_u32().map_err(|e| self.err(start, "QVariant", e.kind))?;
        let is_null = self.read_bool().map_err(|e| self.err(start, "QVariant", e.kind))?;
        let v = match type_id {
            0 => QVariant::Invalid,
            1 => QVariant::Bool(self.read_bool()?),
            2 => QVariant::Int(self.read_i32()?),
            3 => QVariant::UInt(self.read_u32()?),
            4 => QVariant::LongLong(self.read_i64()?),
            5 => QVariant::ULongLong(self.read_u64()?),
            6 => QVariant::Double(self.read_f64()?),
            10 => QVariant::String(self.read_qstring()?),
            11 => QVariant::StringList(self.read_qstringlist()?),
            12 => QVariant::ByteArray(QByteArray(self.read_qbytearray()?)),
            8 | 9 => {
                if self.depth >= MAX_VARIANT_DEPTH {
                    return Err(self.err(
                        start,
                        "QVariant",
                        DecodeErrorKind::Other("QVariant nesting too deep".into()),
                    ));
                }
                self.depth += 1;
                let r = if type_id == 8 { self.read().map(QVariant::Map) } else { self.read().map(QVariant::List) };
                self.depth -= 1;
                r?
            }
            t => return Err(self.err(start, "QVariant", DecodeErrorKind::UnsupportedVariantType(t))),
        };
        Ok((v, is_null))
    }

    /// Reads a `QImage`: marker 0 gives the null image, marker 1 a PNG file
    /// whose end is found from its chunk structure (there is no length prefix).
    #[cfg(feature = "qimage")]
    #[cfg_attr(docsrs, doc(cfg(feature = "qimage")))]
    pub fn read_qimage(&mut self) -> Result<QImage, DecodeError> {
        let start = self.pos;
        let marker = self.read_i32().map_err(|e| self.err(start, "QImage", e.kind))?;
        let r = match marker {
            0 => Ok(QImage::null()),
            1 => {
                let png_start = self.pos;
                image::png_length(&self.data[png_start..])
                    .and_then(|len| {
                        let img = QImage::from_png(&self.data[png_start..png_start + len])?;
                        self.pos = png_start + len;
                        Ok(img)
                    })
                    .map_err(|e| self.err(png_start + e.offset(), "QImage", e.kind))
            }
            m => Err(self.err(start, "QImage", DecodeErrorKind::BadImageMarker(m))),
        };
        if r.is_err() {
            self.pos = start;
        }
        r
    }
}

/// A value that can be written to a [`DataStreamWriter`] (Qt's `operator<<`).
///
/// ```
/// use qipc_datastream::{DataStreamWriter, Encode};
/// struct Point { x: i32, y: i32 }
/// impl Encode for Point {
///     fn encode(&self, out: &mut DataStreamWriter) {
///         out.write(&self.x);
///         out.write(&self.y);
///     }
/// }
/// let mut out = DataStreamWriter::new();
/// out.write(&Point { x: 1, y: 2 });
/// assert_eq!(out.into_bytes(), [0, 0, 0, 1, 0, 0, 0, 2]);
/// ```
pub trait Encode {
    /// Writes `self`.
    fn encode(&self, out: &mut DataStreamWriter);
}

/// A value that can be read from a [`DataStreamReader`] (Qt's `operator>>`).
///
/// A value that fails to decode returns a [`DecodeError`] saying where it
/// starts; [`DataStreamReader::read`] then puts the reader back there.
///
/// ```
/// use qipc_datastream::{DataStreamReader, Decode, DecodeError, DecodeErrorKind};
/// #[derive(Debug, PartialEq)]
/// struct Size { width: i32, height: i32 }
/// impl Decode for Size {
///     // Two qint32: bounds the element count of a QList<Size> read from untrusted data.
///     const MIN_ENCODED_SIZE: usize = 8;
///     fn decode(input: &mut DataStreamReader<'_>) -> Result<Self, DecodeError> {
///         let start = input.position();
///         let (width, height): (i32, i32) = input.read()?;
///         if width < 0 || height < 0 {
///             return Err(DecodeError::new(start, "Size", DecodeErrorKind::Other("negative size".into())));
///         }
///         Ok(Size { width, height })
///     }
/// }
/// let size: Size = DataStreamReader::new(&[0, 0, 0, 1, 0, 0, 0, 2]).read()?;
/// assert_eq!(size, Size { width: 1, height: 2 });
/// let err = DataStreamReader::new(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2]).read::<Size>().unwrap_err();
/// assert_eq!(err.to_string(), "cannot read Size at offset 0: negative size");
/// # Ok::<(), DecodeError>(())
/// ```
pub trait Decode: Sized {
    /// The fewest bytes one value can take (at least 1): bounds the element
    /// count of a list read from untrusted data.
    const MIN_ENCODED_SIZE: usize = 1;
    /// Reads a value.
    fn decode(input: &mut DataStreamReader<'_>) -> Result<Self, DecodeError>;
}

macro_rules! impl_prim {
    ($($t:ty, $w:ident, $r:ident, $size:expr;)*) => {$(
        impl Encode for $t {
            fn encode(&self, out: &mut DataStreamWriter) {
                out.$w(*self);
            }
        }
        impl Decode for $t {
            const MIN_ENCODED_SIZE: usize = $size;
            fn decode(input: &mut DataStreamReader<'_>) -> Result<Self, DecodeError> {
                input.$r()
            }
        }
    )*};
}

impl_prim! {
    i8, write_i8, read_i8, 1;
    u8, write_u8, read_u8, 1;
    i16, write_i16, read_i16, 2;
    u16, write_u16, read_u16, 2;
    i32, write_i32, read_i32, 4;
    u32, write_u32, read_u32, 4;
    i64, write_i64, read_i64, 8;
    u64, write_u64, read_u64, 8;
    bool, write_bool, read_bool, 1;
    f32, write_f32, read_f32, 4;
    f64, write_f64, read_f64, 4;
}

impl Encode for str {
    fn encode(&self, out: &mut DataStreamWriter) {
        out.write_qstring(Some(self));
    }
}

impl Encode for String {
    fn encode(&self, out: &mut DataStreamWriter) {
        out.write_qstring(Some(self));
    }
}

/// Reads a `QString`; a null string becomes an empty `String`.
impl Decode for String {
    const MIN_ENCODED_SIZE: usize = 4;
    fn decode(input: &mut DataStreamReader<'_>) -> Result<Self, DecodeError> {
        Ok(input.read_qstring()?.unwrap_or_default())
    }
}

/// A nullable `QString`.
impl Encode for Option<String> {
    fn encode(&self, out: &mut DataStreamWriter) {
        out.write_qstring(self.as_deref());
    }
}

/// A nullable `QString`.
impl Encode for Option<&str> {
    fn encode(&self, out: &mut DataStreamWriter) {
        out.write_qstring(*self);
    }
}

/// A nullable `QString`.
impl Decode for Option<String> {
    const MIN_ENCODED_SIZE: usize = 4;
    fn decode(input: &mut DataStreamReader<'_>) -> Result<Self, DecodeError> {
        input.read_qstring()
    }
}

impl Encode for QByteArray {
    fn encode(&self, out: &mut DataStreamWriter) {
        out.write_qbytearray(self.0.as_deref());
    }
}

impl Decode for QByteArray {
    const MIN_ENCODED_SIZE: usize = 4;
    fn decode(input: &mut DataStreamReader<'_>) -> Result<Self, DecodeError> {
        input.read_qbytearray().map(QByteArray)
    }
}

impl Encode for QVariant {
    fn encode(&self, out: &mut DataStreamWriter) {
        out.write_qvariant(self);
    }
}

impl Decode for QVariant {
    const MIN_ENCODED_SIZE: usize = 5;
    fn decode(input: &mut DataStreamReader<'_>) -> Result<Self, DecodeError> {
        input.read_qvariant()
    }
}

#[cfg(feature = "qimage")]
#[cfg_attr(docsrs, doc(cfg(feature = "qimage")))]
impl Encode for QImage {
    fn encode(&self, out: &mut DataStreamWriter) {
        out.write_qimage(self);
    }
}

#[cfg(feature = "qimage")]
#[cfg_attr(docsrs, doc(cfg(feature = "qimage")))]
impl Decode for QImage {
    const MIN_ENCODED_SIZE: usize = 4;
    fn decode(input: &mut DataStreamReader<'_>) -> Result<Self, DecodeError> {
        input.read_qimage()
    }
}

/// A `QList<T>` (a `QStringList` for `[String]`).
impl<T: Encode> Encode for [T] {
    fn encode(&self, out: &mut DataStreamWriter) {
        if out.write_size(self.len()) {
            for item in self {
                item.encode(out);
            }
        }
    }
}

/// A `QList<T>` (a `QStringList` for `Vec<String>`).
impl<T: Encode> Encode for Vec<T> {
    fn encode(&self, out: &mut DataStreamWriter) {
        self.as_slice().encode(out);
    }
}

/// A `QList<T>` (a `QStringList` for `Vec<String>`).
impl<T: Decode> Decode for Vec<T> {
    const MIN_ENCODED_SIZE: usize = 4;
    fn decode(input: &mut DataStreamReader<'_>) -> Result<Self, DecodeError> {
        let n = input.read_container_size("QList", T::MIN_ENCODED_SIZE)?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(T::decode(input)?);
        }
        Ok(v)
    }
}

/// A `QMap<K, V>`, written in the writer's [`MapOrder`].
impl<K: Encode, V: Encode> Encode for BTreeMap<K, V> {
    fn encode(&self, out: &mut DataStreamWriter) {
        if out.write_size(self.len()) {
            match out.map_order() {
                MapOrder::Ascending => self.iter().for_each(|(k, v)| {
                    k.encode(out);
                    v.encode(out);
                }),
                MapOrder::Descending => self.iter().rev().for_each(|(k, v)| {
                    k.encode(out);
                    v.encode(out);
                }),
            }
        }
    }
}

/// A `QMap<K, V>`; for a repeated key the last value wins (as in Qt 6).
impl<K: Decode + Ord, V: Decode> Decode for BTreeMap<K, V> {
    const MIN_ENCODED_SIZE: usize = 4;
    fn decode(input: &mut DataStreamReader<'_>) -> Result<Self, DecodeError> {
        let min = K::MIN_ENCODED_SIZE.saturating_add(V::MIN_ENCODED_SIZE);
        let n = input.read_container_size("QMap", min)?;
        let mut m = BTreeMap::new();
        for _ in 0..n {
            let k = K::decode(input)?;
            let v = V::decode(input)?;
            m.insert(k, v);
        }
        Ok(m)
    }
}

/// A `QPair<A, B>` / `std::pair<A, B>`: first, then second.
impl<A: Encode, B: Encode> Encode for (A, B) {
    fn encode(&self, out: &mut DataStreamWriter) {
        self.0.encode(out);
        self.1.encode(out);
    }
}

/// A `QPair<A, B>` / `std::pair<A, B>`: first, then second.
impl<A: Decode, B: Decode> Decode for (A, B) {
    const MIN_ENCODED_SIZE: usize = A::MIN_ENCODED_SIZE.saturating_add(B::MIN_ENCODED_SIZE);
    fn decode(input: &mut DataStreamReader<'_>) -> Result<Self, DecodeError> {
        Ok((A::decode(input)?, B::decode(input)?))
    }
}

impl<T: Encode + ?Sized> Encode for &T {
    fn encode(&self, out: &mut DataStreamWriter) {
        (**self).encode(out);
    }
}

impl<T: Encode + ?Sized> Encode for Box<T> {
    fn encode(&self, out: &mut DataStreamWriter) {
        (**self).encode(out);
    }
}

impl<T: Decode> Decode for Box<T> {
    const MIN_ENCODED_SIZE: usize = T::MIN_ENCODED_SIZE;
    fn decode(input: &mut DataStreamReader<'_>) -> Result<Self, DecodeError> {
        T::decode(input).map(Box::new)
    }
}

/// Implements [`Encode`] and [`Decode`] for a struct, field by field in the
/// order given (as a C++ `operator<<` / `operator>>` pair would).
///
/// ```
/// use std::collections::BTreeMap;
/// use qipc_datastream::{DataStreamReader, DataStreamWriter, QVariant};
///
/// #[derive(Debug, PartialEq, Default)]
/// struct Settings {
///     name: Option<String>,
///     size: (i32, i32),
///     values: BTreeMap<String, QVariant>,
/// }
/// qipc_datastream::datastream_struct!(Settings { name, size, values });
///
/// let s = Settings {
///     name: Some("main".into()),
///     size: (640, 480),
///     values: BTreeMap::from([("zoom".into(), QVariant::Double(1.5))]),
/// };
/// let mut out = DataStreamWriter::new();
/// out.write(&s);
/// let bytes = out.into_bytes();
/// assert_eq!(DataStreamReader::new(&bytes).read::<Settings>()?, s);
/// # Ok::<(), qipc_datastream::DecodeError>(())
/// ```
#[macro_export]
macro_rules! datastream_struct {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        impl $crate::Encode for $ty {
            fn encode(&self, out: &mut $crate::DataStreamWriter) {
                $( $crate::Encode::encode(&self.$field, out); )*
            }
        }
        impl $crate::Decode for $ty {
            fn decode(
                input: &mut $crate::DataStreamReader<'_>,
            ) -> ::std::result::Result<Self, $crate::DecodeError> {
                ::std::result::Result::Ok($ty { $( $field: input.read()?, )* })
            }
        }
    };
}
