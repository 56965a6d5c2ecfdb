//! The jute binary encoding used by every ZooKeeper record.
//!
//! ```text
//! int     4 bytes, big-endian, signed
//! long    8 bytes, big-endian, signed
//! bool    1 byte, 0 = false, anything else = true
//! buffer  int length (-1 = null) + that many bytes
//! ustring int length (-1 = null) + UTF-8 bytes (Java writes CESU-8 for
//!         non-BMP characters; we decode leniently, replacing what is invalid)
//! vector  int count (-1 = null; any other negative count = no items) + items
//! ```
//!
//! Null is a value, not an error: Java's `BinaryInputArchive` returns null for
//! a string or buffer of length -1 and for a vector of count -1, and what the
//! server does with it depends on the field (see [`crate::nulls`]). A vector
//! count below -1 is read by Java as an index that is already done, i.e. an
//! empty vector; a string or buffer length below -1 is an error there
//! (`checkLength`) and here.
//!
//! Decoding never panics on hostile input: every length is checked against the
//! bytes that remain before anything is allocated.

use thiserror::Error;

/// Why a frame could not be decoded. Carries enough to write one log line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("record truncated: needed {needed} more bytes at offset {offset}")]
    Truncated { offset: usize, needed: usize },
    #[error("negative length {length} at offset {offset}")]
    NegativeLength { offset: usize, length: i32 },
    #[error("null where a value is required at offset {offset}")]
    UnexpectedNull { offset: usize },
    #[error("unknown opcode {0}")]
    UnknownOpCode(i32),
    #[error("invalid value {value} for {field}")]
    InvalidValue { field: &'static str, value: i64 },
    #[error("{0} trailing bytes after the record")]
    TrailingBytes(usize),
    /// A jute null where ZooKeeper fails the request with MARSHALLINGERROR
    /// (see [`crate::nulls`]).
    #[error("null {at}: ZooKeeper answers MARSHALLINGERROR")]
    Null { at: crate::nulls::NullAt },
}

/// A cursor over one received frame.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, offset: 0 }
    }

    pub fn offset(&self) -> usize {
        self.offset
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.offset
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Fails unless every byte of the frame was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated {
                offset: self.offset,
                needed: n - self.remaining(),
            });
        }
        let slice = &self.buf[self.offset..self.offset + n];
        self.offset += n;
        Ok(slice)
    }

    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.take(1)?[0] != 0)
    }

    /// A length prefix; `None` for the null marker -1.
    fn read_length(&mut self) -> Result<Option<usize>, DecodeError> {
        let offset = self.offset;
        match self.read_i32()? {
            -1 => Ok(None),
            length if length < 0 => Err(DecodeError::NegativeLength { offset, length }),
            length => Ok(Some(length as usize)),
        }
    }

    /// A buffer that may be null.
    pub fn read_buffer_opt(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        match self.read_length()? {
            None => Ok(None),
            Some(n) => self.take(n).map(Some),
        }
    }

    /// A buffer; null decodes as empty, as the Java server treats it.
    pub fn read_buffer(&mut self) -> Result<Vec<u8>, DecodeError> {
        Ok(self
            .read_buffer_opt()?
            .map(<[u8]>::to_vec)
            .unwrap_or_default())
    }

    pub fn read_ustring_opt(&mut self) -> Result<Option<String>, DecodeError> {
        Ok(self
            .read_buffer_opt()?
            .map(|b| String::from_utf8_lossy(b).into_owned()))
    }

    /// A string where null is an error (replies, notifications and stored
    /// records; requests decode nulls, see [`crate::nulls`]).
    pub fn read_ustring(&mut self) -> Result<String, DecodeError> {
        let offset = self.offset;
        self.read_ustring_opt()?
            .ok_or(DecodeError::UnexpectedNull { offset })
    }

    /// Whether the next int is jute's null marker -1, without consuming it.
    pub fn peek_null(&self) -> bool {
        self.clone().read_i32() == Ok(-1)
    }

    /// A vector that may be null. A count below -1 is an empty vector, as
    /// Java's `BinaryIndex` reads it. The count is checked against the
    /// remaining bytes (every item takes at least one byte) before allocating.
    pub fn read_vec_opt<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<Vec<T>>, DecodeError> {
        let offset = self.offset;
        let count = match self.read_i32()? {
            -1 => return Ok(None),
            count if count < 0 => return Ok(Some(Vec::new())),
            count => count as usize,
        };
        if count > self.remaining() {
            return Err(DecodeError::Truncated {
                offset,
                needed: count - self.remaining(),
            });
        }
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(item(self)?);
        }
        Ok(Some(items))
    }

    /// A vector; null decodes as empty.
    pub fn read_vec<T>(
        &mut self,
        item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        Ok(self.read_vec_opt(item)?.unwrap_or_default())
    }

    pub fn read_record<T: Record>(&mut self) -> Result<T, DecodeError> {
        T::decode(self)
    }
}

/// Most replies (headers, stats, paths) fit in this many bytes, so building
/// one does not reallocate.
const FRAME_CAPACITY_DEFAULT: usize = 192;

/// Appends jute values to a byte vector.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity),
        }
    }

    /// Starts a length-prefixed frame: reserves 4 bytes that
    /// [`Writer::finish_frame`] fills in.
    pub fn begin_frame() -> Self {
        Self::begin_frame_with_capacity(FRAME_CAPACITY_DEFAULT)
    }

    /// Like [`Writer::begin_frame`], sized for a body of about `capacity` bytes.
    pub fn begin_frame_with_capacity(capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(4 + capacity);
        buf.extend_from_slice(&[0; 4]);
        Self { buf }
    }

    /// Fills in the frame length reserved by [`Writer::begin_frame`].
    pub fn finish_frame(mut self) -> Vec<u8> {
        assert!(self.buf.len() >= 4, "finish_frame without begin_frame");
        let length = i32::try_from(self.buf.len() - 4).expect("frame over 2 GiB");
        self.buf[..4].copy_from_slice(&length.to_be_bytes());
        self.buf
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    pub fn write_i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn write_i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn write_bool(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }

    fn write_length(&mut self, n: usize) {
        self.write_i32(i32::try_from(n).expect("jute length over i32::MAX"));
    }

    pub fn write_buffer(&mut self, v: &[u8]) {
        self.write_length(v.len());
        self.buf.extend_from_slice(v);
    }

    pub fn write_buffer_opt(&mut self, v: Option<&[u8]>) {
        match v {
            None => self.write_i32(-1),
            Some(v) => self.write_buffer(v),
        }
    }

    pub fn write_ustring(&mut self, v: &str) {
        self.write_buffer(v.as_bytes());
    }

    pub fn write_ustring_opt(&mut self, v: Option<&str>) {
        self.write_buffer_opt(v.map(str::as_bytes));
    }

    pub fn write_vec<T>(&mut self, items: &[T], mut item: impl FnMut(&mut Self, &T)) {
        self.write_length(items.len());
        for it in items {
            item(self, it);
        }
    }

    /// Appends bytes already in jute form (a record encoded elsewhere).
    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn write_record<T: Record>(&mut self, v: &T) {
        v.encode(self);
    }
}

/// A jute record: encodes to and decodes from the wire form.
pub trait Record: Sized {
    fn encode(&self, w: &mut Writer);
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Encodes into a fresh byte vector (handy for tests and for txn payloads).
    fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode(&mut w);
        w.into_inner()
    }

    /// Decodes a whole buffer, rejecting trailing bytes.
    fn from_bytes(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let v = Self::decode(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_round_trip() {
        let mut w = Writer::new();
        w.write_i32(-7);
        w.write_i64(i64::MIN);
        w.write_bool(true);
        w.write_buffer_opt(None);
        w.write_ustring("/a/b");
        w.write_vec(&[1i32, 2, 3], |w, v| w.write_i32(*v));
        let bytes = w.into_inner();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.read_i32().unwrap(), -7);
        assert_eq!(r.read_i64().unwrap(), i64::MIN);
        assert!(r.read_bool().unwrap());
        assert_eq!(r.read_buffer_opt().unwrap(), None);
        assert_eq!(r.read_ustring().unwrap(), "/a/b");
        assert_eq!(r.read_vec(|r| r.read_i32()).unwrap(), vec![1, 2, 3]);
        r.finish().unwrap();
    }

    #[test]
    fn huge_vector_count_is_rejected_before_allocating() {
        let mut w = Writer::new();
        w.write_i32(i32::MAX);
        let bytes = w.into_inner();
        let err = Reader::new(&bytes).read_vec(|r| r.read_i64()).unwrap_err();
        assert!(matches!(err, DecodeError::Truncated { .. }));
    }

    #[test]
    fn vector_counts_below_minus_one_are_empty_vectors() {
        // Proves Java's reading of a vector count: -1 is null, -2 and below
        // are empty (BinaryIndex.done() is `nelems <= 0`), and nothing after
        // the count is consumed.
        for (count, expected) in [(-1i32, None), (-2, Some(vec![])), (i32::MIN, Some(vec![]))] {
            let mut bytes = count.to_be_bytes().to_vec();
            bytes.extend_from_slice(&7i32.to_be_bytes());
            let mut r = Reader::new(&bytes);
            assert!(r.peek_null() == (count == -1));
            assert_eq!(r.read_vec_opt(|r| r.read_i32()).unwrap(), expected);
            assert_eq!(r.read_i32().unwrap(), 7, "count {count}");
        }
    }

    #[test]
    fn negative_lengths_other_than_null_are_errors() {
        let bytes = (-2i32).to_be_bytes();
        let err = Reader::new(&bytes).read_buffer().unwrap_err();
        assert_eq!(
            err,
            DecodeError::NegativeLength {
                offset: 0,
                length: -2
            }
        );
    }
}
