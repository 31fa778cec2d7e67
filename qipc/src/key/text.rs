//! The percent-escaping of Qt's text form of a key (`QNativeIpcKey::toString`).
//!
//! Qt escapes only a few ASCII characters and the controls, and keeps every
//! other character as it is; the `percent-encoding` crate always escapes
//! non-ASCII bytes, so it would not give Qt's text.

#![forbid(unsafe_code)]

pub(super) fn escape(s: &str, set: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if (c.is_ascii() && set.contains(&(c as u8))) || c.is_ascii_control() {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Decodes `%XX` escapes; a `%` that does not start a valid escape is kept.
pub(super) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
