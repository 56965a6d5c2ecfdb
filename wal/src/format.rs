//! The on-disk format of log segments (STYLE rule 7: the format lives beside
//! its encoder). Pure functions: no I/O, no clock, no randomness.
//!
//! A segment is one preallocated file in `dataLogDir`, named
//! `log.<first zxid as 16 hex digits>`. All integers are little-endian.
//!
//! ```text
//! offset 0: segment header, one whole block (4096 bytes)
//!   0   8  magic            b"FKWALSEG"
//!   8   4  format version   u32 = 2 (1 is still read, never written; see the end)
//!  12   4  reserved         u32 = 0
//!  16   8  first zxid       i64   zxid of the first record this segment may hold
//!  24   8  previous zxid    i64   last zxid logged before this segment (-1: none)
//!  32   8  salt             u64   chosen afresh each time the file is (re)used
//!  40   4  header crc       u32   crc32c of bytes 0..40
//!  44 ..4096 zero
//!
//! offset 4096 to the end of the file: 512-byte sectors, each a stamp and a
//! piece of the record stream
//!   0   4  sector crc       u32   crc32c(the sector's file offset as 8 bytes ‖ bytes 4..512)
//!   4   4  write            u32   which write of this life of the file stored the sector (1, 2, …)
//!   8   8  salt             u64   the salt of the life that wrote it
//!  16   8  records start    u64   stream offset of that write's first record
//!  24   8  records end      u64   stream offset just past that write's last record
//!  32 480  stream bytes     the next 480 bytes of the record stream
//!
//! the record stream (stream offset 0 is byte 32 of the first sector): records
//! packed back to back, no padding between them
//!   0   4  payload length   u32   at most RECORD_PAYLOAD_BYTES_MAX
//!   4   8  zxid             i64   strictly increasing within the log
//!  12   4  write offset     u32   stream bytes from the first record of the same write to this one
//!  16   4  crc              u32   crc32c(salt as 8 bytes ‖ bytes 0..16 ‖ payload)
//!  20   …  payload          opaque (an encoded txn)
//!
//! after the last record: at least one all-zero record header (20 zero bytes)
//! unless the segment is full; then zeros or stale bytes to the file's end.
//! ```
//!
//! Why the salt: segments are recycled (renamed and reused without being
//! zeroed), so a file still holds records from its previous life. Those were
//! sealed with another salt, so their crc no longer matches and they can never
//! be mistaken for records of the current life; their sectors are *stale*. A
//! new life's salt is derived from the previous life's, so the two differ even
//! when a caller reuses a salt seed. Why the previous zxid: zxids need not be
//! contiguous across restarts (a new epoch), so the chain of "previous zxid"
//! fields is what proves no segment is missing. Why the zero header after the
//! last record: it marks a clean end of the stream.
//!
//! # Writes
//!
//! The writer issues one write at a time and starts the next only after the
//! previous one's sync returned, which is when its records are acknowledged.
//! Write n re-writes the block holding the end of the stream (its earlier
//! bytes unchanged), then its records, then zeros up to the end of the block
//! that holds the zero header after them. That range of whole blocks is the
//! write's *extent*, and every sector of it is stamped (n, salt, records
//! start, records end). An empty write (start = end) marks a cut: see below.
//!
//! # Telling a torn write from damage
//!
//! A power cut during write n (never acknowledged) and damage to a durable
//! record (acknowledged) both leave a record whose crc fails. They are told
//! apart by the sector stamps, given one property of the device: a sector
//! (512 bytes, aligned) is written atomically. Devices guarantee this for
//! their atomic write unit (NVMe: AWUPF, at least one logical block of 512 or
//! 4096 bytes; a disk sector whose write was cut fails its ECC and reads as an
//! I/O error rather than as mixed bytes). So after a power cut every sector
//! holds its old contents or its new contents, whole.
//!
//! Recovery classifies every sector: *current* (its crc holds and it carries
//! this life's salt), *stale* (its crc holds, another salt: an earlier life),
//! *zero* (never written, or zeroed), or *bad* (its crc fails: the writer never
//! wrote these bytes). Let n be the highest write number among current
//! sectors, and X the stream offset where the records stop (the first position
//! that is not a valid record). Then:
//!
//! 1. A bad sector in write n's extent: damage. Refuse.
//! 2. Every sector of the extent is current and from write n: write n landed
//!    whole, and its records were (or may have been) acknowledged. The stream
//!    must stop exactly at n's records end, on a zero header or the end of the
//!    segment; anywhere else is damage. Refuse.
//! 3. Some sector of the extent holds older contents (zero, stale, or an
//!    earlier write's): write n never completed, so its sync never returned
//!    and none of its records was acknowledged. Write n changed nothing before
//!    its records start, so X must lie at or after that start (else: damage,
//!    refuse), and cutting at X drops only records of write n. A torn write:
//!    cut, with one warning.
//!
//! Damage is refused with the file, the byte offset and the `fk-tools`
//! command that accepts the loss (see [`crate::WalError::Corrupt`]). A
//! segment that is not the last must end cleanly (case 2): a later segment
//! proves its last write completed. What the stamps cannot tell apart: a
//! device that acknowledges a write and then loses it, or returns a sector's
//! previous contents or zeros in place of what was written, looks exactly like
//! a torn write. A sector torn mid-way (a device breaking its atomicity
//! promise) reads as bad, so it is refused, never silently cut.
//!
//! Before appending after a cut, the writer stamps an empty write (n + 1,
//! start = end = X) over the block holding X and then zeroes every current
//! sector after that block, so no leftover of the torn write can be read as a
//! record later. Truncation (ZAB's TRUNC) is the same empty write at the cut
//! point, made durable before the zeroing behind it: at every crash point the
//! log is a prefix of what it was.
//!
//! # Format 1
//!
//! Written by earlier versions: no sector stamps (the stream is the file from
//! byte 4096 on), and a torn tail is told from damage only by where a valid
//! record after the damage says its write began (the write offset field): a
//! damaged last record is indistinguishable from a torn one and is cut.
//! Recovery and the tools still read format 1; the writer never appends to a
//! format-1 segment (it starts a new one), purge deletes format-1 segments
//! rather than recycling them, and truncation refuses to cut inside one.

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
/// The bytes at the start of each sector that say which write stored it.
pub const SECTOR_STAMP_BYTES: usize = 32;
/// Record-stream bytes carried by each sector.
pub const SECTOR_STREAM_BYTES: usize = SECTOR_BYTES - SECTOR_STAMP_BYTES;
/// Sectors in a block.
pub const SECTORS_PER_BLOCK: usize = BLOCK_BYTES / SECTOR_BYTES;
/// Record-stream bytes carried by each block.
pub const BLOCK_STREAM_BYTES: usize = SECTORS_PER_BLOCK * SECTOR_STREAM_BYTES;
/// The largest single write the log writer issues, in file bytes: a batch,
/// plus the rewritten tail block in front of it, plus the zero header and
/// padding after it, in whole blocks.
pub const WRITE_BYTES_MAX: usize = (BATCH_BYTES_MAX / BLOCK_STREAM_BYTES + 3) * BLOCK_BYTES;
/// Format 1's bound on one write: recovery's window for a torn write's leftovers.
pub(crate) const WRITE_BYTES_MAX_V1: usize = BATCH_BYTES_MAX + 3 * BLOCK_BYTES;
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
const _: () = assert!(SECTOR_STAMP_BYTES < SECTOR_BYTES);
// A zero record header fits any block's stream, so an extent is at most one
// block longer than its records.
const _: () = assert!(RECORD_HEADER_BYTES < BLOCK_STREAM_BYTES);

pub(crate) const SEGMENT_MAGIC: [u8; 8] = *b"FKWALSEG";
/// The format the writer writes: sectors stamped with their write.
pub const FORMAT_VERSION: u32 = 2;
/// The format before sector stamps; read, never written.
pub const FORMAT_VERSION_V1: u32 = 1;
const HEADER_CRC_OFFSET: usize = 40;
const HEADER_USED_BYTES: usize = 44;

/// The fields of a segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// [`FORMAT_VERSION`] for segments this writer starts; [`FORMAT_VERSION_V1`]
    /// for older ones.
    pub version: u32,
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
    /// A header of the current format.
    pub fn new(zxid_first: i64, zxid_previous: i64, salt: u64) -> SegmentHeader {
        SegmentHeader {
            version: FORMAT_VERSION,
            zxid_first,
            zxid_previous,
            salt,
        }
    }

    /// Encodes the header as the full first block of a segment.
    pub fn encode(&self) -> Vec<u8> {
        assert!(self.version == FORMAT_VERSION || self.version == FORMAT_VERSION_V1);
        let mut block = vec![0u8; SEGMENT_HEADER_BYTES];
        block[0..8].copy_from_slice(&SEGMENT_MAGIC);
        block[8..12].copy_from_slice(&self.version.to_le_bytes());
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
        if version != FORMAT_VERSION && version != FORMAT_VERSION_V1 {
            return Err(HeaderError::UnsupportedVersion(version));
        }
        if read_u32(bytes, HEADER_CRC_OFFSET) != crc32c::crc32c(&bytes[..HEADER_CRC_OFFSET]) {
            return Err(HeaderError::BadCrc);
        }
        Ok(SegmentHeader {
            version,
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

/// What a sector's stamp says about the write that stored it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectorStamp {
    /// The write's number in this life of the segment (1, 2, …).
    pub write: u32,
    /// The salt of the life that wrote the sector.
    pub salt: u64,
    /// Stream offset of the write's first record.
    pub records_start: u64,
    /// Stream offset just past the write's last record (= start: an empty write).
    pub records_end: u64,
}

/// What a sector holds, for a segment whose life has salt `salt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectorClass {
    /// All zero: never written in any life, or zeroed.
    Zero,
    /// Written by this life: which write, and that write's records.
    Current(SectorStamp),
    /// Written whole by an earlier life of the file (another salt).
    Stale,
    /// Not a sector any writer wrote: its crc fails.
    Bad,
}

/// The file offset of sector `index` (sector 0 starts right after the header).
pub fn sector_file_offset(index: u64) -> u64 {
    SEGMENT_HEADER_BYTES as u64 + index * SECTOR_BYTES as u64
}

/// The file offset that holds stream byte `stream_offset`.
pub fn stream_file_offset(stream_offset: u64) -> u64 {
    let sector = stream_offset / SECTOR_STREAM_BYTES as u64;
    sector_file_offset(sector)
        + SECTOR_STAMP_BYTES as u64
        + stream_offset % SECTOR_STREAM_BYTES as u64
}

/// Whole sectors in a segment file of `file_bytes`.
pub fn sector_count(file_bytes: u64) -> u64 {
    file_bytes.saturating_sub(SEGMENT_HEADER_BYTES as u64) / SECTOR_BYTES as u64
}

/// The record-stream bytes a segment file of `file_bytes` can hold.
pub fn stream_capacity(file_bytes: u64) -> u64 {
    sector_count(file_bytes) * SECTOR_STREAM_BYTES as u64
}

/// The sectors `[first, end)` a write of records `[records_start,
/// records_end)` stamps, in a segment whose stream holds `stream_capacity`
/// bytes: from the block holding its start to the end of the block holding
/// the zero header after its records.
pub fn write_extent(records_start: u64, records_end: u64, stream_capacity: u64) -> (u64, u64) {
    let block = BLOCK_STREAM_BYTES as u64;
    let first = records_start / block * SECTORS_PER_BLOCK as u64;
    let zero_end = (records_end + RECORD_HEADER_BYTES as u64).min(stream_capacity);
    let end = zero_end.div_ceil(block) * block;
    (first, end.min(stream_capacity) / SECTOR_STREAM_BYTES as u64)
}

fn sector_crc(sector: &[u8], file_offset: u64) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&file_offset.to_le_bytes()), &sector[4..])
}

/// Frames `stream` (a whole number of sectors' worth, starting at sector
/// `first_sector`) into stamped sectors appended to `out`.
pub fn encode_sectors(out: &mut Vec<u8>, stream: &[u8], first_sector: u64, stamp: &SectorStamp) {
    assert!(stream.len().is_multiple_of(SECTOR_STREAM_BYTES));
    for (i, piece) in stream.chunks(SECTOR_STREAM_BYTES).enumerate() {
        let start = out.len();
        out.extend_from_slice(&[0u8; 4]);
        out.extend_from_slice(&stamp.write.to_le_bytes());
        out.extend_from_slice(&stamp.salt.to_le_bytes());
        out.extend_from_slice(&stamp.records_start.to_le_bytes());
        out.extend_from_slice(&stamp.records_end.to_le_bytes());
        out.extend_from_slice(piece);
        let crc = sector_crc(&out[start..], sector_file_offset(first_sector + i as u64));
        out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
    }
}

/// Classifies one sector read at `file_offset` of a segment whose life has
/// salt `salt`. Never panics on any input of `SECTOR_BYTES`.
pub fn classify_sector(sector: &[u8], file_offset: u64, salt: u64) -> SectorClass {
    assert_eq!(sector.len(), SECTOR_BYTES);
    if sector.iter().all(|&b| b == 0) {
        return SectorClass::Zero;
    }
    if read_u32(sector, 0) != sector_crc(sector, file_offset) {
        return SectorClass::Bad;
    }
    let stamp = SectorStamp {
        write: read_u32(sector, 4),
        salt: read_u64(sector, 8),
        records_start: read_u64(sector, 16),
        records_end: read_u64(sector, 24),
    };
    if stamp.salt != salt {
        SectorClass::Stale
    } else {
        SectorClass::Current(stamp)
    }
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
        let header = SegmentHeader::new(0x1_0000_0001, -1, 42);
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

    // A stamped sector classifies as current for its salt, stale for any
    // other; zeros are zero; any flipped bit or a sector read at another
    // offset is bad.
    #[test]
    fn sector_stamps_classify() {
        let stamp = SectorStamp {
            write: 7,
            salt: 99,
            records_start: 1000,
            records_end: 1200,
        };
        let stream: Vec<u8> = (0..2 * SECTOR_STREAM_BYTES).map(|i| i as u8).collect();
        let mut out = Vec::new();
        encode_sectors(&mut out, &stream, 3, &stamp);
        assert_eq!(out.len(), 2 * SECTOR_BYTES);
        let second = &out[SECTOR_BYTES..];
        assert_eq!(
            &second[SECTOR_STAMP_BYTES..],
            &stream[SECTOR_STREAM_BYTES..]
        );
        let at = sector_file_offset(4);
        assert_eq!(classify_sector(second, at, 99), SectorClass::Current(stamp));
        assert_eq!(classify_sector(second, at, 98), SectorClass::Stale);
        assert_eq!(classify_sector(second, at + 512, 99), SectorClass::Bad);
        assert_eq!(
            classify_sector(&[0; SECTOR_BYTES], at, 99),
            SectorClass::Zero
        );
        for bit in 0..SECTOR_BYTES * 8 {
            let mut damaged = second.to_vec();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                classify_sector(&damaged, at, 99),
                SectorClass::Bad,
                "bit {bit}"
            );
        }
    }

    // Stream offsets map into sectors past their stamps; a write's extent
    // covers the block of its start through the block of its zero header.
    #[test]
    fn stream_layout_and_extents() {
        assert_eq!(stream_file_offset(0), 4096 + 32);
        assert_eq!(stream_file_offset(479), 4096 + 511);
        assert_eq!(stream_file_offset(480), 4096 + 512 + 32);
        assert_eq!(stream_capacity(16 * 1024), 24 * 480);
        let cap = stream_capacity(16 * 1024);
        assert_eq!(write_extent(0, 100, cap), (0, 8));
        assert_eq!(write_extent(3000, 3830, cap), (0, 16));
        assert_eq!(write_extent(3840, 3840, cap), (8, 16));
        assert_eq!(write_extent(5000, cap, cap), (8, 24));
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
