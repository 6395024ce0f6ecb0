//! OMG CDR (XCDR version 1, "plain" CDR), little-endian, as ROS 2 middlewares put it on the wire.
//!
//! A serialised message starts with the 4-byte encapsulation header `00 01 00 00` (representation identifier
//! `CDR_LE`, options 0). Every primitive is aligned to its own size (8 for 64-bit types), measured from the first
//! byte *after* that header; padding bytes are zero. Strings are a `u32` length that counts the terminating NUL,
//! the bytes, then the NUL; sequences are a `u32` element count followed by the elements; fixed-size arrays are
//! just their elements.

/// The encapsulation header of little-endian plain CDR.
pub const ENCAPSULATION_LE: [u8; 4] = [0x00, 0x01, 0x00, 0x00];

/// Why bytes could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The data ended before the message did.
    Truncated {
        /// Offset (after the encapsulation header) at which more bytes were needed.
        at: usize,
    },
    /// The encapsulation header is not little-endian plain CDR.
    Encapsulation([u8; 4]),
    /// A string is not NUL-terminated UTF-8 or its length is zero.
    BadString {
        /// Offset of the string's length word.
        at: usize,
    },
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DecodeError::Truncated { at } => write!(f, "CDR data truncated at offset {at}"),
            DecodeError::Encapsulation(h) => write!(f, "unsupported CDR encapsulation {h:02x?}"),
            DecodeError::BadString { at } => write!(f, "malformed CDR string at offset {at}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Writes one little-endian CDR message.
#[derive(Debug)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Default for Writer {
    fn default() -> Self {
        Self::new()
    }
}

impl Writer {
    /// A message with its encapsulation header written.
    pub fn new() -> Self {
        Self {
            buf: ENCAPSULATION_LE.to_vec(),
        }
    }

    /// Zero padding up to a multiple of `n` bytes from the end of the encapsulation header.
    fn align(&mut self, n: usize) {
        let pos = self.buf.len() - ENCAPSULATION_LE.len();
        let pad = pos.next_multiple_of(n) - pos;
        self.buf.resize(self.buf.len() + pad, 0);
    }

    fn put<const N: usize>(&mut self, bytes: [u8; N]) {
        self.align(N);
        self.buf.extend_from_slice(&bytes);
    }

    /// A `uint8`.
    pub fn u8(&mut self, v: u8) {
        self.put(v.to_le_bytes());
    }
    /// An `int8`.
    pub fn i8(&mut self, v: i8) {
        self.put(v.to_le_bytes());
    }
    /// A `uint16`.
    pub fn u16(&mut self, v: u16) {
        self.put(v.to_le_bytes());
    }
    /// An `int32`.
    pub fn i32(&mut self, v: i32) {
        self.put(v.to_le_bytes());
    }
    /// A `uint32`.
    pub fn u32(&mut self, v: u32) {
        self.put(v.to_le_bytes());
    }
    /// A `float64`.
    pub fn f64(&mut self, v: f64) {
        self.put(v.to_le_bytes());
    }
    /// A fixed-size `float64[N]` array (no length prefix).
    pub fn f64_array(&mut self, values: &[f64]) {
        for &v in values {
            self.f64(v);
        }
    }
    /// A `string`: length including the NUL, bytes, NUL.
    pub fn string(&mut self, s: &str) {
        self.u32(s.len() as u32 + 1);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    /// The serialised message, encapsulation header included.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads one little-endian CDR message.
#[derive(Debug)]
pub struct Reader<'a> {
    body: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Checks the encapsulation header and positions the reader after it.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] or [`DecodeError::Encapsulation`] (big-endian or XCDR2 data).
    pub fn new(data: &'a [u8]) -> Result<Self, DecodeError> {
        let header: [u8; 4] = data
            .get(..4)
            .and_then(|h| h.try_into().ok())
            .ok_or(DecodeError::Truncated { at: 0 })?;
        if header[..2] != ENCAPSULATION_LE[..2] {
            return Err(DecodeError::Encapsulation(header));
        }
        Ok(Self {
            body: &data[4..],
            pos: 0,
        })
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let start = self.pos.next_multiple_of(N);
        let bytes = self
            .body
            .get(start..start + N)
            .ok_or(DecodeError::Truncated { at: start })?;
        self.pos = start + N;
        Ok(bytes.try_into().expect("slice of length N"))
    }

    /// A `uint8`.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        self.take().map(u8::from_le_bytes)
    }
    /// An `int8`.
    pub fn i8(&mut self) -> Result<i8, DecodeError> {
        self.take().map(i8::from_le_bytes)
    }
    /// A `uint16`.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        self.take().map(u16::from_le_bytes)
    }
    /// An `int32`.
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        self.take().map(i32::from_le_bytes)
    }
    /// A `uint32`.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        self.take().map(u32::from_le_bytes)
    }
    /// A `float64`.
    pub fn f64(&mut self) -> Result<f64, DecodeError> {
        self.take().map(f64::from_le_bytes)
    }
    /// A fixed-size `float64[N]` array.
    pub fn f64_array<const N: usize>(&mut self) -> Result<[f64; N], DecodeError> {
        let mut out = [0.0; N];
        for v in &mut out {
            *v = self.f64()?;
        }
        Ok(out)
    }
    /// A `string`.
    pub fn string(&mut self) -> Result<String, DecodeError> {
        let at = self.pos.next_multiple_of(4);
        let len = self.u32()? as usize;
        let bytes = self
            .body
            .get(self.pos..self.pos.saturating_add(len))
            .ok_or(DecodeError::Truncated { at: self.pos })?;
        let (last, text) = bytes.split_last().ok_or(DecodeError::BadString { at })?;
        if *last != 0 {
            return Err(DecodeError::BadString { at });
        }
        let s = std::str::from_utf8(text).map_err(|_| DecodeError::BadString { at })?;
        self.pos += len;
        Ok(s.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_counts_from_after_the_encapsulation_header() {
        let mut w = Writer::new();
        w.u8(1);
        w.f64(1.0);
        w.u16(2);
        w.u32(3);
        let bytes = w.finish();
        #[rustfmt::skip]
        let expected = [
            0, 1, 0, 0,
            1, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0xf0, 0x3f,
            2, 0, 0, 0,
            3, 0, 0, 0,
        ];
        assert_eq!(bytes, expected);
        let mut r = Reader::new(&bytes).unwrap();
        assert_eq!(r.u8().unwrap(), 1);
        assert_eq!(r.f64().unwrap(), 1.0);
        assert_eq!(r.u16().unwrap(), 2);
        assert_eq!(r.u32().unwrap(), 3);
        assert_eq!(r.u8(), Err(DecodeError::Truncated { at: 24 }));
    }

    #[test]
    fn strings_count_their_nul() {
        let mut w = Writer::new();
        w.string("ab");
        w.string("");
        let bytes = w.finish();
        assert_eq!(bytes, [0, 1, 0, 0, 3, 0, 0, 0, b'a', b'b', 0, 0, 1, 0, 0, 0, 0]);
        let mut r = Reader::new(&bytes).unwrap();
        assert_eq!(r.string().unwrap(), "ab");
        assert_eq!(r.string().unwrap(), "");
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert_eq!(Reader::new(&[0, 1]).err(), Some(DecodeError::Truncated { at: 0 }));
        assert_eq!(
            Reader::new(&[0, 0, 0, 0]).err(),
            Some(DecodeError::Encapsulation([0, 0, 0, 0]))
        );
        // Length 0: not even the NUL.
        let mut r = Reader::new(&[0, 1, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(r.string(), Err(DecodeError::BadString { at: 0 }));
        // Missing NUL.
        let mut r = Reader::new(&[0, 1, 0, 0, 1, 0, 0, 0, b'a']).unwrap();
        assert_eq!(r.string(), Err(DecodeError::BadString { at: 0 }));
        // Length beyond the data.
        let mut r = Reader::new(&[0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, b'a']).unwrap();
        assert_eq!(r.string(), Err(DecodeError::Truncated { at: 4 }));
    }
}
