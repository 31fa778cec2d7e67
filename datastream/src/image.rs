//! `QImage` as written by `QDataStream`: a marker, then a PNG file.

use std::fmt;

use super::{DecodeError, DecodeErrorKind};

/// The largest decoded image accepted, in RGBA8 bytes (1 GiB).
const MAX_RGBA_BYTES: u64 = 1 << 30;

macro_rules! image_formats {
    ($($name:ident = $value:literal,)*) => {
        /// A `QImage::Format` value (numbering of Qt 6; Qt 5.15 agrees up to `Format_BGR888`).
        ///
        /// `Display` prints Qt's name.
        ///
        /// ```
        /// use qipc_datastream::ImageFormat;
        /// let format = ImageFormat::from_value(24).unwrap(); // QImage::format() as an int
        /// assert_eq!(format, ImageFormat::Grayscale8);
        /// assert_eq!(format.to_string(), "Format_Grayscale8");
        /// assert!(!format.has_alpha());
        /// ```
        #[cfg_attr(docsrs, doc(cfg(feature = "qimage")))]
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        #[non_exhaustive]
        pub enum ImageFormat {
            /// `QImage::Format_Invalid` (the null image).
            #[default]
            Invalid = 0,
            $(
                #[doc = concat!("`QImage::Format_", stringify!($name), "`")]
                $name = $value,
            )*
        }

        impl ImageFormat {
            /// Qt's name, e.g. `"Format_RGB32"`.
            pub fn name(self) -> &'static str {
                match self {
                    ImageFormat::Invalid => "Format_Invalid",
                    $( ImageFormat::$name => concat!("Format_", stringify!($name)), )*
                }
            }

            /// The format with this `QImage::Format` number.
            pub fn from_value(value: u32) -> Option<ImageFormat> {
                match value {
                    0 => Some(ImageFormat::Invalid),
                    $( $value => Some(ImageFormat::$name), )*
                    _ => None,
                }
            }
        }
    };
}

image_formats! {
    Mono = 1,
    MonoLSB = 2,
    Indexed8 = 3,
    RGB32 = 4,
    ARGB32 = 5,
    ARGB32_Premultiplied = 6,
    RGB16 = 7,
    ARGB8565_Premultiplied = 8,
    RGB666 = 9,
    ARGB6666_Premultiplied = 10,
    RGB555 = 11,
    ARGB8555_Premultiplied = 12,
    RGB888 = 13,
    RGB444 = 14,
    ARGB4444_Premultiplied = 15,
    RGBX8888 = 16,
    RGBA8888 = 17,
    RGBA8888_Premultiplied = 18,
    BGR30 = 19,
    A2BGR30_Premultiplied = 20,
    RGB30 = 21,
    A2RGB30_Premultiplied = 22,
    Alpha8 = 23,
    Grayscale8 = 24,
    RGBX64 = 25,
    RGBA64 = 26,
    RGBA64_Premultiplied = 27,
    Grayscale16 = 28,
    BGR888 = 29,
    RGBX16FPx4 = 30,
    RGBA16FPx4 = 31,
    RGBA16FPx4_Premultiplied = 32,
    RGBX32FPx4 = 33,
    RGBA32FPx4 = 34,
    RGBA32FPx4_Premultiplied = 35,
    CMYK8888 = 36,
}

impl ImageFormat {
    /// True if the format has an alpha channel (`QImage::hasAlphaChannel` of an image in it).
    pub fn has_alpha(self) -> bool {
        use ImageFormat::*;
        matches!(
            self,
            ARGB32
                | ARGB32_Premultiplied
                | ARGB8565_Premultiplied
                | ARGB6666_Premultiplied
                | ARGB8555_Premultiplied
                | ARGB4444_Premultiplied
                | RGBA8888
                | RGBA8888_Premultiplied
                | A2BGR30_Premultiplied
                | A2RGB30_Premultiplied
                | Alpha8
                | RGBA64
                | RGBA64_Premultiplied
                | RGBA16FPx4
                | RGBA16FPx4_Premultiplied
                | RGBA32FPx4
                | RGBA32FPx4_Premultiplied
        )
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `QImage`, held as straight (non-premultiplied) RGBA8 pixels plus the
/// `QImage::Format` Qt would report for it.
///
/// In a stream it is the `qint32` marker 0 (null image) or 1 followed by a
/// PNG file. Decoding reports the format Qt's PNG reader gives:
/// RGB → `Format_RGB32`, RGBA / grey+alpha / RGB with tRNS → `Format_ARGB32`,
/// 8-bit grey → `Format_Grayscale8`, palette or low-depth grey → `Format_Indexed8`
/// (`Format_Mono` at 1 bit), 16-bit → `Format_RGBX64` / `Format_RGBA64` /
/// `Format_Grayscale16` (pixels reduced to 8 bits here).
///
/// ```
/// use qipc_datastream::{DataStreamReader, DataStreamWriter, ImageFormat, QImage};
/// let image = QImage::from_rgba8(2, 1, vec![255, 0, 0, 255, 0, 0, 255, 128])?;
/// let mut out = DataStreamWriter::new();
/// out.write_qimage(&image);
/// let bytes = out.into_bytes();
/// assert_eq!(&bytes[..8], &[0, 0, 0, 1, 0x89, b'P', b'N', b'G']);
/// let back = DataStreamReader::new(&bytes).read_qimage()?;
/// assert_eq!((back.width(), back.height(), back.format()), (2, 1, ImageFormat::ARGB32));
/// assert_eq!(back.to_rgba8(), image.to_rgba8());
/// # Ok::<(), qipc_datastream::DecodeError>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "qimage")))]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QImage {
    width: u32,
    height: u32,
    format: ImageFormat,
    rgba: Vec<u8>,
}

fn image_err(kind: DecodeErrorKind) -> DecodeError {
    DecodeError::new(0, "QImage", kind)
}

fn check_size(width: u32, height: u32) -> Result<usize, DecodeError> {
    let bytes = u64::from(width) * u64::from(height) * 4;
    if bytes > MAX_RGBA_BYTES {
        return Err(image_err(DecodeErrorKind::Image(format!("{width}x{height} is over the 1 GiB limit"))));
    }
    Ok(bytes as usize)
}

impl QImage {
    /// The null image (`QImage()`), written as marker 0 only.
    pub fn null() -> QImage {
        QImage::default()
    }

    /// True for the null image.
    pub fn is_null(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    /// The width in pixels (0 for the null image).
    pub fn width(&self) -> u32 {
        self.width
    }

    /// The height in pixels (0 for the null image).
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The `QImage::Format` (what Qt reports after loading the same stream).
    pub fn format(&self) -> ImageFormat {
        self.format
    }

    /// An image from straight RGBA8 pixels, row by row, as `Format_ARGB32`.
    /// A 0×0 image with no pixels gives the null image.
    ///
    /// ```
    /// use qipc_datastream::QImage;
    /// assert!(QImage::from_rgba8(1, 1, vec![0; 3]).is_err());
    /// assert!(QImage::from_rgba8(0, 0, vec![]).unwrap().is_null());
    /// ```
    pub fn from_rgba8(width: u32, height: u32, rgba: Vec<u8>) -> Result<QImage, DecodeError> {
        let len = check_size(width, height)?;
        if rgba.len() != len {
            return Err(image_err(DecodeErrorKind::Other(format!(
                "{width}x{height} needs {len} RGBA bytes, got {}",
                rgba.len()
            ))));
        }
        if len == 0 {
            return Ok(QImage::null());
        }
        Ok(QImage { width, height, format: ImageFormat::ARGB32, rgba })
    }

    /// The same pixels reported as another format, as `QImage::convertToFormat` would give:
    /// alpha is dropped (made opaque) for formats without one, colours become
    /// grey (`qGray`) for `Format_Grayscale8`/`Format_Grayscale16`/`Format_Alpha8`
    /// keeps only alpha. `Format_Indexed8`/`Format_Mono`/`Format_MonoLSB` need at most
    /// 256 (2) distinct colours. Converting to `Format_Invalid` gives the null image.
    ///
    /// ```
    /// use qipc_datastream::{ImageFormat, QImage};
    /// let image = QImage::from_rgba8(1, 1, vec![10, 20, 30, 40])?;
    /// let rgb = image.convert_to(ImageFormat::RGB32)?;
    /// assert_eq!(rgb.to_rgba8(), [10, 20, 30, 255]);
    /// assert_eq!(rgb.format(), ImageFormat::RGB32);
    /// # Ok::<(), qipc_datastream::DecodeError>(())
    /// ```
    pub fn convert_to(&self, format: ImageFormat) -> Result<QImage, DecodeError> {
        if format == ImageFormat::Invalid || self.is_null() {
            return Ok(QImage::null());
        }
        let mut rgba = self.rgba.clone();
        match format {
            ImageFormat::Grayscale8 | ImageFormat::Grayscale16 => {
                for p in rgba.chunks_exact_mut(4) {
                    let g = q_gray(p[0], p[1], p[2]);
                    p.copy_from_slice(&[g, g, g, 255]);
                }
            }
            ImageFormat::Alpha8 => {
                for p in rgba.chunks_exact_mut(4) {
                    p[0] = 0;
                    p[1] = 0;
                    p[2] = 0;
                }
            }
            ImageFormat::Indexed8 | ImageFormat::Mono | ImageFormat::MonoLSB => {
                let max = if format == ImageFormat::Indexed8 { 256 } else { 2 };
                if palette_of(&rgba, max).is_none() {
                    return Err(image_err(DecodeErrorKind::Other(format!("more than {max} colours for {format}"))));
                }
            }
            f if !f.has_alpha() => {
                for p in rgba.chunks_exact_mut(4) {
                    p[3] = 255;
                }
            }
            _ => {}
        }
        Ok(QImage { width: self.width, height: self.height, format, rgba })
    }

    /// The pixels as straight RGBA8, row by row (empty for the null image).
    pub fn to_rgba8(&self) -> Vec<u8> {
        self.rgba.clone()
    }

    /// The pixels as straight RGBA8, without copying.
    pub fn as_rgba8(&self) -> &[u8] {
        &self.rgba
    }

    /// The pixel at (x, y) as Qt's `QRgb` (`0xAARRGGBB`, `QImage::pixel`).
    ///
    /// ```
    /// let image = qipc_datastream::QImage::from_rgba8(1, 1, vec![1, 2, 3, 4])?;
    /// assert_eq!(image.pixel(0, 0), 0x04010203);
    /// # Ok::<(), qipc_datastream::DecodeError>(())
    /// ```
    pub fn pixel(&self, x: u32, y: u32) -> u32 {
        assert!(x < self.width && y < self.height, "pixel ({x}, {y}) outside the image");
        let i = (y as usize * self.width as usize + x as usize) * 4;
        let p = &self.rgba[i..i + 4];
        u32::from_be_bytes([p[3], p[0], p[1], p[2]])
    }

    /// A PNG file of the image (empty for the null image), in the colour type
    /// Qt's PNG writer uses for the format: RGB for formats without alpha,
    /// RGBA for those with, grey for `Format_Grayscale8`/`16`, a palette (with tRNS when
    /// needed) for `Format_Indexed8` and 1-bit palette for `Format_Mono`/`MonoLSB`.
    ///
    /// ```
    /// use qipc_datastream::{ImageFormat, QImage};
    /// let image = QImage::from_rgba8(1, 1, vec![9, 9, 9, 255])?.convert_to(ImageFormat::Grayscale8)?;
    /// let back = QImage::from_png(&image.to_png())?;
    /// assert_eq!(back.format(), ImageFormat::Grayscale8);
    /// assert_eq!(back.to_rgba8(), [9, 9, 9, 255]);
    /// # Ok::<(), qipc_datastream::DecodeError>(())
    /// ```
    pub fn to_png(&self) -> Vec<u8> {
        if self.is_null() {
            return Vec::new();
        }
        let mut out = Vec::new();
        let (color, depth, data, palette): (png::ColorType, png::BitDepth, Vec<u8>, Option<Vec<[u8; 4]>>) =
            match self.format {
                ImageFormat::Grayscale8 | ImageFormat::Grayscale16 => (
                    png::ColorType::Grayscale,
                    png::BitDepth::Eight,
                    self.rgba.chunks_exact(4).map(|p| p[0]).collect(),
                    None,
                ),
                f @ (ImageFormat::Indexed8 | ImageFormat::Mono | ImageFormat::MonoLSB) => {
                    let one_bit = f != ImageFormat::Indexed8;
                    match palette_of(&self.rgba, if one_bit { 2 } else { 256 }) {
                        Some((palette, indices)) => {
                            if one_bit {
                                let row = (self.width as usize).div_ceil(8);
                                let mut packed = vec![0u8; row * self.height as usize];
                                for (i, &ix) in indices.iter().enumerate() {
                                    let (y, x) = (i / self.width as usize, i % self.width as usize);
                                    packed[y * row + x / 8] |= ix << (7 - (x % 8));
                                }
                                (png::ColorType::Indexed, png::BitDepth::One, packed, Some(palette))
                            } else {
                                (png::ColorType::Indexed, png::BitDepth::Eight, indices, Some(palette))
                            }
                        }
                        None => (png::ColorType::Rgba, png::BitDepth::Eight, self.rgba.clone(), None),
                    }
                }
                f if f.has_alpha() => (png::ColorType::Rgba, png::BitDepth::Eight, self.rgba.clone(), None),
                _ => (
                    png::ColorType::Rgb,
                    png::BitDepth::Eight,
                    self.rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect(),
                    None,
                ),
            };
        {
            let mut enc = png::Encoder::new(&mut out, self.width, self.height);
            enc.set_color(color);
            enc.set_depth(depth);
            if let Some(palette) = &palette {
                enc.set_palette(palette.iter().flat_map(|c| [c[0], c[1], c[2]]).collect::<Vec<u8>>());
                if palette.iter().any(|c| c[3] != 255) {
                    // tRNS may stop after the last non-opaque entry.
                    let last = palette.iter().rposition(|c| c[3] != 255).unwrap_or(0);
                    enc.set_trns(palette[..=last].iter().map(|c| c[3]).collect::<Vec<u8>>());
                }
            }
            let mut writer = enc.write_header().expect("PNG header of a valid image");
            writer.write_image_data(&data).expect("PNG data of a valid image");
            writer.finish().expect("PNG end");
        }
        out
    }

    /// Decodes a PNG file, reporting the format Qt's PNG reader would give.
    /// Images over 1 GiB of RGBA8 are refused before anything is allocated.
    pub fn from_png(data: &[u8]) -> Result<QImage, DecodeError> {
        let png_err = |e: png::DecodingError| image_err(DecodeErrorKind::Image(e.to_string()));
        let (len, idat) = png_chunks(data)?;
        let data = &data[..len];
        let limits = png::Limits { bytes: MAX_RGBA_BYTES as usize };
        let mut decoder = png::Decoder::new_with_limits(std::io::Cursor::new(data), limits);
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = decoder.read_info().map_err(png_err)?;
        let (width, height, color, depth, has_trns, palette_len) = {
            let info = reader.info();
            (
                info.width,
                info.height,
                info.color_type,
                info.bit_depth,
                info.trns.is_some(),
                info.palette.as_ref().map(|p| p.len() / 3),
            )
        };
        let len = check_size(width, height)?;
        // Deflate expands at most ~1032:1: refuse dimensions the compressed
        // data cannot fill before allocating the pixels.
        let channels: u64 = match color {
            png::ColorType::Grayscale | png::ColorType::Indexed => 1,
            png::ColorType::GrayscaleAlpha => 2,
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
        };
        let row_bits = u64::from(width) * channels * depth as u64;
        let raw_min = u64::from(height) * (1 + row_bits.div_ceil(8));
        if raw_min > idat.saturating_mul(1040) + 1024 {
            return Err(image_err(DecodeErrorKind::Image(format!(
                "{width}x{height} cannot come from {idat} bytes of image data"
            ))));
        }
        if reader.output_buffer_size() > 2 * len + 1024 {
            return Err(image_err(DecodeErrorKind::Image("unexpected PNG output size".into())));
        }
        let mut buf = vec![0u8; reader.output_buffer_size()];
        let frame = reader.next_frame(&mut buf).map_err(png_err)?;
        let (out_color, out_depth) = (frame.color_type, frame.bit_depth);
        if out_depth != png::BitDepth::Eight {
            return Err(image_err(DecodeErrorKind::Image("unsupported bit depth after expansion".into())));
        }
        let line = frame.line_size;
        let w = width as usize;
        let mut rgba = Vec::with_capacity(len);
        for row in buf.chunks(line).take(height as usize) {
            match out_color {
                png::ColorType::Grayscale => row[..w].iter().for_each(|&g| rgba.extend_from_slice(&[g, g, g, 255])),
                png::ColorType::GrayscaleAlpha => {
                    row[..2 * w].chunks_exact(2).for_each(|p| rgba.extend_from_slice(&[p[0], p[0], p[0], p[1]]))
                }
                png::ColorType::Rgb => {
                    row[..3 * w].chunks_exact(3).for_each(|p| rgba.extend_from_slice(&[p[0], p[1], p[2], 255]))
                }
                png::ColorType::Rgba => rgba.extend_from_slice(&row[..4 * w]),
                png::ColorType::Indexed => {
                    return Err(image_err(DecodeErrorKind::Image("palette not expanded".into())));
                }
            }
        }
        if rgba.len() != len {
            return Err(image_err(DecodeErrorKind::Image("truncated PNG image data".into())));
        }
        // The format QPngHandler (Qt 5.15 / 6.x) gives for this PNG.
        let format = match color {
            png::ColorType::Grayscale => match depth {
                png::BitDepth::Sixteen if !has_trns => ImageFormat::Grayscale16,
                png::BitDepth::Sixteen => ImageFormat::ARGB32,
                png::BitDepth::One => ImageFormat::Mono,
                png::BitDepth::Eight if !has_trns => ImageFormat::Grayscale8,
                _ => ImageFormat::Indexed8,
            },
            png::ColorType::Indexed if palette_len.is_some_and(|n| n <= 256) => {
                if depth == png::BitDepth::One {
                    ImageFormat::Mono
                } else {
                    ImageFormat::Indexed8
                }
            }
            png::ColorType::Rgb | png::ColorType::Rgba if depth == png::BitDepth::Sixteen => {
                if color == png::ColorType::Rgba || has_trns {
                    ImageFormat::RGBA64
                } else {
                    ImageFormat::RGBX64
                }
            }
            png::ColorType::GrayscaleAlpha if depth == png::BitDepth::Sixteen => ImageFormat::RGBA64,
            png::ColorType::Rgb if !has_trns => ImageFormat::RGB32,
            _ => ImageFormat::ARGB32,
        };
        Ok(QImage { width, height, format, rgba })
    }
}

/// Qt's `qGray`: (r*11 + g*16 + b*5) / 32.
fn q_gray(r: u8, g: u8, b: u8) -> u8 {
    ((u32::from(r) * 11 + u32::from(g) * 16 + u32::from(b) * 5) / 32) as u8
}

/// The distinct colours (in order of first use) and each pixel's index, if at most `max`.
fn palette_of(rgba: &[u8], max: usize) -> Option<(Vec<[u8; 4]>, Vec<u8>)> {
    let mut palette: Vec<[u8; 4]> = Vec::new();
    let mut lookup = std::collections::HashMap::new();
    let mut indices = Vec::with_capacity(rgba.len() / 4);
    for p in rgba.chunks_exact(4) {
        let c = [p[0], p[1], p[2], p[3]];
        let ix = match lookup.get(&c) {
            Some(&ix) => ix,
            None => {
                if palette.len() == max {
                    return None;
                }
                palette.push(c);
                let ix = (palette.len() - 1) as u8;
                lookup.insert(c, ix);
                ix
            }
        };
        indices.push(ix);
    }
    Some((palette, indices))
}

/// The length of the PNG file at the start of `data`: the signature and the
/// chunks up to and including IEND. Errors carry offsets relative to `data`.
pub(super) fn png_length(data: &[u8]) -> Result<usize, DecodeError> {
    png_chunks(data).map(|(len, _)| len)
}

/// The length of the PNG file at the start of `data` and the total size of its IDAT chunks.
fn png_chunks(data: &[u8]) -> Result<(usize, u64), DecodeError> {
    const SIG: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    let eof = |at: usize, needed: usize| {
        DecodeError::new(
            at,
            "QImage",
            DecodeErrorKind::UnexpectedEof { needed: needed as u64, available: data.len().saturating_sub(at) as u64 },
        )
    };
    if data.len() < 8 {
        return Err(eof(0, 8));
    }
    if data[..8] != SIG {
        return Err(DecodeError::new(0, "QImage", DecodeErrorKind::Image("no PNG signature".into())));
    }
    let mut pos = 8usize;
    let mut idat = 0u64;
    loop {
        let head = data.get(pos..pos + 8).ok_or_else(|| eof(pos, 8))?;
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let kind = [head[4], head[5], head[6], head[7]];
        if len > 0x7FFF_FFFF {
            return Err(DecodeError::new(pos, "QImage", DecodeErrorKind::Image("PNG chunk too long".into())));
        }
        // The png crate (0.17) panics on a PLTE whose length is not a multiple
        // of 3: refuse such files here (libpng refuses them too).
        if &kind == b"PLTE" && (len == 0 || len % 3 != 0 || len > 768) {
            return Err(DecodeError::new(pos, "QImage", DecodeErrorKind::Image(format!("bad PLTE length {len}"))));
        }
        let total = 12 + len;
        if data.len() - pos < total {
            return Err(eof(pos, total));
        }
        pos += total;
        if &kind == b"IDAT" {
            idat += len as u64;
        }
        if &kind == b"IEND" {
            return Ok((pos, idat));
        }
    }
}
