//! On-disk record framing: magic, checksum, length, position, sequence, time, payload.
//!
//! ```text
//! offset  size  field
//!      0     4  magic  D7 1A 57 4C
//!      4     4  CRC-32C (Castagnoli) of bytes 8 .. 36+len, little endian
//!      8     4  payload length, little endian
//!     12     8  LSN: the record's byte position in the log (segment base + offset)
//!     20     8  sequence number (1 per record, for backlog counts)
//!     28     8  append time, microseconds since the Unix epoch
//!     36   len  payload
//! ```
//!
//! The LSN inside the frame must equal the position the frame is read from, so a stale or
//! shifted frame (for example a payload that itself contains a frame) never passes as a record.

use super::options::MAX_RECORD_BYTES_LIMIT;
use super::Lsn;

/// First four bytes of every record.
pub const MAGIC: [u8; 4] = [0xD7, 0x1A, 0x57, 0x4C];

/// Size of the fixed part of a record, before the payload.
pub const HEADER_BYTES: usize = 36;

/// The fixed fields of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Payload length in bytes.
    pub len: u32,
    /// Byte position of the record in the log.
    pub lsn: Lsn,
    /// Record sequence number.
    pub seq: u64,
    /// Append time, microseconds since the Unix epoch.
    pub appended_us: u64,
}

impl RecordHeader {
    /// Total size of the record on disk.
    pub fn framed_len(&self) -> u64 {
        framed_len(self.len as usize)
    }
}

/// Size on disk of a record with a payload of `payload_len` bytes.
pub fn framed_len(payload_len: usize) -> u64 {
    (HEADER_BYTES + payload_len) as u64
}

/// Appends the frame of one record to `buf`.
pub fn encode(buf: &mut Vec<u8>, header: &RecordHeader, payload: &[u8]) {
    debug_assert_eq!(header.len as usize, payload.len());
    let start = buf.len();
    buf.extend_from_slice(&MAGIC);
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&header.len.to_le_bytes());
    buf.extend_from_slice(&header.lsn.to_le_bytes());
    buf.extend_from_slice(&header.seq.to_le_bytes());
    buf.extend_from_slice(&header.appended_us.to_le_bytes());
    buf.extend_from_slice(payload);
    let crc = crc32c::crc32c(&buf[start + 8..]);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Result of trying to read one record at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A valid record; its payload is `buf[HEADER_BYTES .. HEADER_BYTES + len]`.
    Record(RecordHeader),
    /// The buffer ends before the record does; `needed` bytes would be required.
    Incomplete {
        /// Bytes needed from the start of the buffer.
        needed: usize,
    },
    /// The bytes are not a valid record at this position.
    Bad(BadRecord),
}

/// Why bytes are not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRecord {
    /// The first four bytes are not the magic.
    Magic,
    /// The length field is beyond any record the WAL accepts.
    Length(u32),
    /// The checksum does not match.
    Checksum,
    /// Valid frame, but written for another position.
    Position {
        /// Position found in the frame.
        found: Lsn,
    },
}

impl std::fmt::Display for BadRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadRecord::Magic => write!(f, "bad magic"),
            BadRecord::Length(len) => write!(f, "impossible length {len}"),
            BadRecord::Checksum => write!(f, "CRC-32C mismatch"),
            BadRecord::Position { found } => {
                write!(f, "record claims LSN {found}, not its position")
            }
        }
    }
}

fn u32_at(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Decodes the record at the start of `buf`, which must sit at log position `expected_lsn`.
pub fn decode(buf: &[u8], expected_lsn: Lsn) -> Decoded {
    let magic_len = buf.len().min(MAGIC.len());
    if buf[..magic_len] != MAGIC[..magic_len] {
        return Decoded::Bad(BadRecord::Magic);
    }
    if buf.len() < HEADER_BYTES {
        return Decoded::Incomplete {
            needed: HEADER_BYTES,
        };
    }
    let len = u32_at(buf, 8);
    if len as usize > MAX_RECORD_BYTES_LIMIT {
        return Decoded::Bad(BadRecord::Length(len));
    }
    let total = HEADER_BYTES + len as usize;
    if buf.len() < total {
        return Decoded::Incomplete { needed: total };
    }
    if crc32c::crc32c(&buf[8..total]) != u32_at(buf, 4) {
        return Decoded::Bad(BadRecord::Checksum);
    }
    let lsn = u64_at(buf, 12);
    if lsn != expected_lsn {
        return Decoded::Bad(BadRecord::Position { found: lsn });
    }
    Decoded::Record(RecordHeader {
        len,
        lsn,
        seq: u64_at(buf, 20),
        appended_us: u64_at(buf, 28),
    })
}

/// Finds the first offset after `from` in `buf` where a valid, complete record starts, given
/// that `buf[0]` sits at log position `base`. Used to resynchronise after a bad record.
pub fn find_next_valid(buf: &[u8], from: usize, base: Lsn) -> Option<usize> {
    let start = from.checked_add(1)?;
    if start >= buf.len() {
        return None;
    }
    memchr::memmem::find_iter(&buf[start..], &MAGIC)
        .map(|rel| start + rel)
        .find(|&pos| matches!(decode(&buf[pos..], base + pos as u64), Decoded::Record(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(lsn: Lsn, payload: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        let header = RecordHeader {
            len: payload.len() as u32,
            lsn,
            seq: 7,
            appended_us: 42,
        };
        encode(&mut buf, &header, payload);
        buf
    }

    #[test]
    fn round_trip() {
        let buf = frame(100, b"hello");
        assert_eq!(buf.len() as u64, framed_len(5));
        match decode(&buf, 100) {
            Decoded::Record(h) => {
                assert_eq!((h.len, h.lsn, h.seq, h.appended_us), (5, 100, 7, 42));
                assert_eq!(&buf[HEADER_BYTES..], b"hello");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let buf = frame(0, b"some payload bytes");
        for i in 0..buf.len() {
            let mut broken = buf.clone();
            broken[i] ^= 0x01;
            assert!(
                !matches!(decode(&broken, 0), Decoded::Record(_)),
                "flip at {i} went unnoticed"
            );
        }
    }

    #[test]
    fn truncated_frames_are_incomplete() {
        let buf = frame(0, b"payload");
        for cut in 1..buf.len() {
            assert!(
                matches!(decode(&buf[..cut], 0), Decoded::Incomplete { .. }),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn wrong_position_and_length_are_bad() {
        let buf = frame(64, b"x");
        assert_eq!(
            decode(&buf, 0),
            Decoded::Bad(BadRecord::Position { found: 64 })
        );
        let mut huge = buf.clone();
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&huge, 64), Decoded::Bad(BadRecord::Length(u32::MAX)));
        assert_eq!(decode(b"nope", 0), Decoded::Bad(BadRecord::Magic));
    }

    #[test]
    fn resync_skips_garbage_and_embedded_frames() {
        let first = frame(0, b"aaaa");
        assert_eq!(first.len(), HEADER_BYTES + 4);
        // A payload that contains a full frame for another position must not be taken as a record.
        let embedded = frame(9999, b"fake");
        let mut buf = first.clone();
        let second_at = buf.len() as u64;
        buf.extend_from_slice(&frame(second_at, &embedded));
        let third_at = buf.len() as u64;
        buf.extend_from_slice(&frame(third_at, b"cccc"));
        assert_eq!(find_next_valid(&buf, 0, 0), Some(second_at as usize));
        buf[second_at as usize + HEADER_BYTES + 10] ^= 0xFF; // corrupt the second record
        assert_eq!(find_next_valid(&buf, 0, 0), Some(third_at as usize));
        assert_eq!(
            find_next_valid(&buf, second_at as usize, 0),
            Some(third_at as usize)
        );
        assert_eq!(find_next_valid(&buf, third_at as usize, 0), None);
    }
}
