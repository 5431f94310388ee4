//! Checksummed envelopes around the values PhantomDB writes into the database file.
//!
//! Segment statistics are sealed too; the ones format-2 files stored bare (before
//! statistics were sealed) read as unknown until `ANALYZE` rewrites them.
//!
//! redb checks its commit slots, not every page it reads: a flipped byte in a page could reach
//! a decoder, or worse, decode into a different but valid value. Every segment, deletion
//! bitmap, catalog entry and role is therefore stored as
//!
//! ```text
//! [tag: 4 bytes, the kind of value] [CRC32C of the payload: u32 little-endian] [payload]
//! ```
//!
//! and verified on every read: a mismatch is [`Error::Corrupt`] (`XX001`) naming the value,
//! never wrong data. Files of format version 1 stored bare payloads; opening one seals every
//! value once ([`super::store`], the upgrade to format 2).

use crate::error::{Error, Result};

/// Bytes before the payload.
pub(super) const HEADER: usize = 8;

/// What a sealed value holds (its tag, checked with the checksum: a value of one kind is
/// never read as another).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// An Arrow IPC segment.
    Segment,
    /// A deletion bitmap.
    Deletes,
    /// A catalog entry (JSON).
    Catalog,
    /// A role (JSON).
    Role,
    /// A segment's column statistics.
    Stats,
}

impl Kind {
    fn tag(self) -> [u8; 4] {
        match self {
            Kind::Segment => *b"PDsg",
            Kind::Deletes => *b"PDdl",
            Kind::Catalog => *b"PDct",
            Kind::Role => *b"PDrl",
            Kind::Stats => *b"PDst",
        }
    }
}

impl Kind {
    /// Whether `bytes` start with this kind's tag.
    pub(super) fn is_tag_of(self, bytes: &[u8]) -> bool {
        bytes.starts_with(&self.tag())
    }
}

/// `payload` in its envelope.
pub(super) fn seal(kind: Kind, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&kind.tag());
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The payload of a sealed value, once its tag and checksum are verified; `what` names the
/// value in the error (`segment 7 of table "t"`).
pub(super) fn unseal(kind: Kind, bytes: &[u8], what: impl FnOnce() -> String) -> Result<&[u8]> {
    if bytes.len() < HEADER || bytes[..4] != kind.tag() {
        return Err(Error::Corrupt(format!(
            "{}: the stored value has no valid header",
            what()
        )));
    }
    let stored = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    let payload = &bytes[HEADER..];
    let computed = crc32c::crc32c(payload);
    if computed != stored {
        return Err(Error::Corrupt(format!(
            "{}: computed checksum {computed:08x} does not match stored checksum {stored:08x}",
            what()
        )));
    }
    Ok(payload)
}

/// How a table's segment is named in errors.
pub(super) fn segment_name(table: &str, segment: u64) -> String {
    format!("segment {segment} of table \"{table}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flipped_bit_is_detected() {
        let payload = b"some payload bytes of a segment".to_vec();
        let sealed = seal(Kind::Segment, &payload);
        assert_eq!(
            unseal(Kind::Segment, &sealed, String::new).expect("intact"),
            payload.as_slice()
        );
        for byte in 0..sealed.len() {
            for bit in 0..8 {
                let mut bad = sealed.clone();
                bad[byte] ^= 1 << bit;
                let err = unseal(Kind::Segment, &bad, || "segment 1".into()).unwrap_err();
                assert_eq!(err.sqlstate(), crate::SqlState::DataCorrupted);
                assert!(err.to_string().contains("segment 1"), "{err}");
            }
        }
        assert!(
            unseal(Kind::Catalog, &sealed, String::new).is_err(),
            "wrong kind"
        );
        assert!(
            unseal(Kind::Segment, &sealed[..5], String::new).is_err(),
            "truncated"
        );
    }
}
