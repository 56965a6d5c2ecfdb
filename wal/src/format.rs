//! The on-disk format of log segments (STYLE rule 7: the format lives beside
//! its encoder). Pure functions: no I/O, no clock, no randomness.
//!
//! A segment is one preallocated file in `dataLogDir`, named
//! `log.<first zxid as 16 hex digits>`. All integers are little-endian.
//!
//! ```text
//! offset 0: segment header, one whole block (4096 bytes)
//!   0   8  magic            b"FKWALSEG"
//!   8   4  format version   u32 = 1
//!  12   4  reserved         u32 = 0
//!  16   8  first zxid       i64   zxid of the first record this segment may hold
//!  24   8  previous zxid    i64   last zxid logged before this segment (-1: none)
//!  32   8  salt             u64   chosen afresh each time the file is (re)used
//!  40   4  header crc       u32   crc32c of bytes 0..40
//!  44 ..4096 zero
//!
//! offset 4096: records, packed back to back, no padding between them
//!   0   4  payload length   u32   at most RECORD_PAYLOAD_BYTES_MAX
//!   4   8  zxid             i64   strictly increasing within the log
//!  12   4  write offset     u32   bytes from the first record of the same write
//!                                 (one sync's records in this segment) to this one
//!  16   4  crc              u32   crc32c(salt as 8 bytes ‖ bytes 0..16 ‖ payload)
//!  20   …  payload          opaque (an encoded txn)
//!
//! after the last record: at least one all-zero record header (20 zero bytes)
//! unless the segment is full, then zeros or stale bytes up to the file's end.
//! ```
//!
//! Why the salt: segments are recycled (renamed and reused without being
//! zeroed), so a file still holds records from its previous life. Those were
//! sealed with another salt, so their crc no longer matches and they can never
//! be mistaken for records of the current life. Why the previous zxid: zxids
//! need not be contiguous across restarts (a new epoch), so the chain of
//! "previous zxid" fields is what proves no segment is missing.
//!
//! Why the write offset: it names where the write that carried a record began.
//! After damaged bytes at X, a valid record whose write began at or before X
//! can be the leftover of a torn last write; one whose write began after X
//! proves the write holding X had completed, so X is corruption.
//!
//! Why the zero header after the last record: a clean end of data (zeros)
//! must be told apart from a torn write (non-zero bytes that fail their crc),
//! even in a recycled segment full of stale bytes.

/// O_DIRECT writes are aligned to, and a multiple of, this many bytes.
pub const BLOCK_BYTES: usize = 4096;
/// Power cuts tear writes at this granularity (the smallest sector size).
pub const SECTOR_BYTES: usize = 512;
/// The segment header occupies the first block, so record writes never touch it.
pub const SEGMENT_HEADER_BYTES: usize = BLOCK_BYTES;
/// Bytes of the header in front of each record's payload.
pub const RECORD_HEADER_BYTES: usize = 20;
const RECORD_CRC_OFFSET: usize = 16;
/// The largest payload one record may carry (a txn is bounded by jute.maxbuffer,
/// 1 MiB by default; this leaves room for a raised limit).
pub const RECORD_PAYLOAD_BYTES_MAX: usize = 4 << 20;
/// At most this many records are written by one `sync()` (group commit bound).
pub const BATCH_RECORDS_MAX: usize = 1000;
/// At most this many record bytes (headers included) are written by one `sync()`.
pub const BATCH_BYTES_MAX: usize = 8 << 20;
/// The largest single write the log writer issues: a batch, plus the rewritten
/// tail block in front of it, plus the zero header and padding after it.
/// Recovery uses this as the window in which a torn write can leave bytes.
pub const WRITE_BYTES_MAX: usize = BATCH_BYTES_MAX + 3 * BLOCK_BYTES;
/// The default size of a segment file (ZooKeeper's preAllocSize).
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 << 20;
/// The smallest segment accepted (tests use small segments to exercise switching).
pub const SEGMENT_BYTES_MIN: u64 = 4 * BLOCK_BYTES as u64;
/// The largest segment accepted.
pub const SEGMENT_BYTES_MAX: u64 = 1 << 40;

const _: () = assert!(BLOCK_BYTES.is_multiple_of(SECTOR_BYTES));
const _: () = assert!(SEGMENT_HEADER_BYTES.is_multiple_of(BLOCK_BYTES));
const _: () = assert!(BATCH_BYTES_MAX >= RECORD_HEADER_BYTES + RECORD_PAYLOAD_BYTES_MAX);
const _: () = assert!(SEGMENT_BYTES_MIN > (SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES) as u64);
const _: () = assert!(RECORD_PAYLOAD_BYTES_MAX <= u32::MAX as usize);

pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"FKWALSEG";
pub(crate) const FORMAT_VERSION: u32 = 1;
const HEADER_CRC_OFFSET: usize = 40;
const HEADER_USED_BYTES: usize = 44;

/// The fields of a segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The zxid of the first record the segment may hold; also its file name.
    pub zxid_first: i64,
    /// The last zxid logged before this segment, or -1 if none was.
    pub zxid_previous: i64,
    /// Mixed into every record's crc; new for each life of the file.
    pub salt: u64,
}

/// Why a segment header was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    TooShort,
    BadMagic,
    UnsupportedVersion(u32),
    BadCrc,
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderError::TooShort => write!(f, "file shorter than a segment header"),
            HeaderError::BadMagic => write!(f, "bad segment magic"),
            HeaderError::UnsupportedVersion(v) => write!(f, "unsupported format version {v}"),
            HeaderError::BadCrc => write!(f, "segment header crc mismatch"),
        }
    }
}

impl SegmentHeader {
    /// Encodes the header as the full first block of a segment.
    pub fn encode(&self) -> Vec<u8> {
        let mut block = vec![0u8; SEGMENT_HEADER_BYTES];
        block[0..8].copy_from_slice(&SEGMENT_MAGIC);
        block[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        block[16..24].copy_from_slice(&self.zxid_first.to_le_bytes());
        block[24..32].copy_from_slice(&self.zxid_previous.to_le_bytes());
        block[32..40].copy_from_slice(&self.salt.to_le_bytes());
        let crc = crc32c::crc32c(&block[..HEADER_CRC_OFFSET]);
        block[HEADER_CRC_OFFSET..HEADER_USED_BYTES].copy_from_slice(&crc.to_le_bytes());
        block
    }

    /// Decodes and verifies a header from the first bytes of a segment.
    pub fn decode(bytes: &[u8]) -> Result<SegmentHeader, HeaderError> {
        if bytes.len() < HEADER_USED_BYTES {
            return Err(HeaderError::TooShort);
        }
        if bytes[0..8] != SEGMENT_MAGIC {
            return Err(HeaderError::BadMagic);
        }
        let version = read_u32(bytes, 8);
        if version != FORMAT_VERSION {
            return Err(HeaderError::UnsupportedVersion(version));
        }
        if read_u32(bytes, HEADER_CRC_OFFSET) != crc32c::crc32c(&bytes[..HEADER_CRC_OFFSET]) {
            return Err(HeaderError::BadCrc);
        }
        Ok(SegmentHeader {
            zxid_first: read_i64(bytes, 16),
            zxid_previous: read_i64(bytes, 24),
            salt: read_u64(bytes, 32),
        })
    }
}

/// The number of bytes a record with this payload occupies.
pub fn record_bytes(payload_len: usize) -> usize {
    RECORD_HEADER_BYTES + payload_len
}

fn record_crc(salt: u64, header: &[u8], payload: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&salt.to_le_bytes());
    let crc = crc32c::crc32c_append(crc, &header[..RECORD_CRC_OFFSET]);
    crc32c::crc32c_append(crc, payload)
}

/// Appends one framed record to `out`. `write_offset` is the distance from
/// the first record of the same write to this one.
pub fn encode_record(out: &mut Vec<u8>, salt: u64, zxid: i64, write_offset: u32, payload: &[u8]) {
    assert!(
        payload.len() <= RECORD_PAYLOAD_BYTES_MAX,
        "record payload over the maximum"
    );
    let start = out.len();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&zxid.to_le_bytes());
    out.extend_from_slice(&write_offset.to_le_bytes());
    let crc = record_crc(salt, &out[start..], payload);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
}

/// What lies at a position in a segment's record area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// A whole, verified record: its zxid, the distance back to the first
    /// record of its write, and its payload at `bytes[RECORD_HEADER_BYTES..bytes_total]`.
    Record {
        zxid: i64,
        write_offset: u32,
        bytes_total: usize,
    },
    /// A zero record header: the clean end of the data.
    End,
    /// The header says the record is longer than the bytes given; read more
    /// (or, at the end of the file, it is torn).
    NeedBytes(usize),
    /// Not a record sealed with this salt: torn, damaged or stale.
    Invalid(InvalidReason),
}

/// Why the bytes at a position are not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidReason {
    LengthTooLarge,
    BadCrc,
}

impl std::fmt::Display for InvalidReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvalidReason::LengthTooLarge => write!(f, "record length over the maximum"),
            InvalidReason::BadCrc => write!(f, "record crc mismatch"),
        }
    }
}

/// Decodes the record that starts at `bytes[0]`. Never panics on any input.
pub fn decode_record(bytes: &[u8], salt: u64) -> Decoded {
    if bytes.len() < RECORD_HEADER_BYTES {
        return Decoded::NeedBytes(RECORD_HEADER_BYTES);
    }
    let header = &bytes[..RECORD_HEADER_BYTES];
    if header.iter().all(|&b| b == 0) {
        return Decoded::End;
    }
    let payload_len = read_u32(bytes, 0) as usize;
    if payload_len > RECORD_PAYLOAD_BYTES_MAX {
        return Decoded::Invalid(InvalidReason::LengthTooLarge);
    }
    let bytes_total = record_bytes(payload_len);
    if bytes.len() < bytes_total {
        return Decoded::NeedBytes(bytes_total);
    }
    let crc = record_crc(salt, header, &bytes[RECORD_HEADER_BYTES..bytes_total]);
    if crc != read_u32(bytes, RECORD_CRC_OFFSET) {
        return Decoded::Invalid(InvalidReason::BadCrc);
    }
    Decoded::Record {
        zxid: read_i64(bytes, 4),
        write_offset: read_u32(bytes, 12),
        bytes_total,
    }
}

/// The zxid, payload length and write offset of a record header, unverified:
/// a cheap filter before the crc when hunting for records after damage.
pub(crate) fn peek_header(bytes: &[u8]) -> Option<(i64, usize, u32)> {
    if bytes.len() < RECORD_HEADER_BYTES {
        return None;
    }
    Some((
        read_i64(bytes, 4),
        read_u32(bytes, 0) as usize,
        read_u32(bytes, 12),
    ))
}

/// `log.<16 hex digits>`: the name of the segment whose first zxid is `zxid`.
pub fn segment_name(zxid: i64) -> String {
    format!("log.{:016x}", zxid as u64)
}

/// The first zxid of a segment, from its file name (`log.<hex>`).
pub fn parse_segment_name(name: &str) -> Option<i64> {
    parse_hex_suffix(name, "log.")
}

pub(crate) fn parse_hex_suffix(name: &str, prefix: &str) -> Option<i64> {
    let hex = name.strip_prefix(prefix)?;
    if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(|v| v as i64)
}

/// Rounds down to a block boundary.
pub fn align_down(offset: u64) -> u64 {
    offset - offset % BLOCK_BYTES as u64
}

/// Rounds up to a block boundary.
pub fn align_up(offset: u64) -> u64 {
    align_down(offset + BLOCK_BYTES as u64 - 1)
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

fn read_i64(bytes: &[u8], at: usize) -> i64 {
    read_u64(bytes, at) as i64
}

/// A deterministic 64-bit mixer (splitmix64) used to derive segment salts from
/// the seed the caller supplies (STYLE rule 4: randomness is an argument).
pub(crate) fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // A header survives encode/decode, and any single flipped bit is caught.
    #[test]
    fn header_round_trip_and_bit_flips() {
        let header = SegmentHeader {
            zxid_first: 0x1_0000_0001,
            zxid_previous: -1,
            salt: 42,
        };
        let block = header.encode();
        assert_eq!(block.len(), SEGMENT_HEADER_BYTES);
        assert_eq!(SegmentHeader::decode(&block), Ok(header));
        for bit in 0..HEADER_USED_BYTES * 8 {
            let mut damaged = block.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(SegmentHeader::decode(&damaged).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn segment_names_sort_by_zxid() {
        assert_eq!(segment_name(0x1a), "log.000000000000001a");
        assert_eq!(parse_segment_name("log.000000000000001a"), Some(0x1a));
        assert_eq!(parse_segment_name("log.1a"), Some(0x1a));
        assert_eq!(parse_segment_name("log."), None);
        assert_eq!(parse_segment_name("log.xyz"), None);
        assert_eq!(parse_segment_name("spare.0001"), None);
        assert!(segment_name(9) < segment_name(10));
    }

    proptest! {
        // Framing round-trips for any zxid and payload.
        #[test]
        fn record_round_trip(salt: u64, zxid: i64, write_offset: u32,
                             payload in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut out = Vec::new();
            encode_record(&mut out, salt, zxid, write_offset, &payload);
            prop_assert_eq!(out.len(), record_bytes(payload.len()));
            match decode_record(&out, salt) {
                Decoded::Record { zxid: z, write_offset: w, bytes_total } => {
                    prop_assert_eq!(z, zxid);
                    prop_assert_eq!(w, write_offset);
                    prop_assert_eq!(bytes_total, out.len());
                    prop_assert_eq!(&out[RECORD_HEADER_BYTES..], &payload[..]);
                }
                other => prop_assert!(false, "decoded {:?}", other),
            }
        }

        // Any single byte change in a record (header or payload) is detected:
        // the record never decodes as a valid record again.
        #[test]
        fn any_byte_flip_is_detected(salt: u64, zxid: i64,
                                     payload in proptest::collection::vec(any::<u8>(), 0..300),
                                     position: prop::sample::Index, xor in 1u8..=255) {
            let mut out = Vec::new();
            encode_record(&mut out, salt, zxid, 0, &payload);
            let at = position.index(out.len());
            out[at] ^= xor;
            let decoded = decode_record(&out, salt);
            prop_assert!(!matches!(decoded, Decoded::Record { .. }), "{:?}", decoded);
        }

        // A record sealed with another salt (a recycled segment's stale data) is rejected.
        #[test]
        fn other_salt_is_rejected(salt: u64, other: u64, zxid: i64,
                                  payload in proptest::collection::vec(any::<u8>(), 0..100)) {
            prop_assume!(salt != other);
            let mut out = Vec::new();
            encode_record(&mut out, salt, zxid, 0, &payload);
            prop_assert_eq!(decode_record(&out, other), Decoded::Invalid(InvalidReason::BadCrc));
        }

        // Decoding garbage never panics, and whatever it claims stays in bounds.
        #[test]
        fn garbage_never_panics(salt: u64, bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            match decode_record(&bytes, salt) {
                Decoded::Record { bytes_total, .. } => prop_assert!(bytes_total <= bytes.len()),
                Decoded::NeedBytes(n) => prop_assert!(n > bytes.len()),
                Decoded::End | Decoded::Invalid(_) => {}
            }
            let _ = SegmentHeader::decode(&bytes);
        }
    }
}
