//! QDataStream-compatible encoding (placeholder; being written).

#![forbid(unsafe_code)]

/// Writes QDataStream bytes.
#[derive(Debug, Default)]
pub struct DataStreamWriter {
    buf: Vec<u8>,
}

impl DataStreamWriter {
    /// A writer with Qt's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Writes a QString (None = null).
    pub fn write_qstring(&mut self, s: Option<&str>) {
        match s {
            None => self.buf.extend_from_slice(&[0xff; 4]),
            Some(s) => {
                let units: Vec<u16> = s.encode_utf16().collect();
                self.buf.extend_from_slice(&((units.len() * 2) as u32).to_be_bytes());
                for u in units {
                    self.buf.extend_from_slice(&u.to_be_bytes());
                }
            }
        }
    }
    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// A decoding error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);
impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for DecodeError {}

/// Reads QDataStream bytes.
#[derive(Debug)]
pub struct DataStreamReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> DataStreamReader<'a> {
    /// A reader with Qt's defaults.
    pub fn new(data: &'a [u8]) -> Self {
        DataStreamReader { data, pos: 0 }
    }
    /// Reads a QString.
    pub fn read_qstring(&mut self) -> Result<Option<String>, DecodeError> {
        let len = self.data.get(self.pos..self.pos + 4).ok_or_else(|| DecodeError("eof".into()))?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        self.pos += 4;
        if len == 0xffff_ffff {
            return Ok(None);
        }
        let bytes = self.data.get(self.pos..self.pos + len as usize).ok_or_else(|| DecodeError("eof".into()))?;
        self.pos += len as usize;
        let units: Vec<u16> = bytes.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
        String::from_utf16(&units).map(Some).map_err(|e| DecodeError(e.to_string()))
    }
}
