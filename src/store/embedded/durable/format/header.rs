//! The 32-byte header that starts every log segment and every snapshot: a magic naming the
//! kind of file, the format version, a sequence number and a checksum.
//!
//! Layout: `docs/FORMAT.md`, section "File header" (`#file-header-32-bytes`).

/// Bytes of a file header.
pub(crate) const LEN: usize = 32;

/// The kinds of file that start with a header, each with its magic and the version this
/// build writes and reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// A log segment (`wal-<seq>.log`); its header names the first record's sequence number.
    /// Version 1 checksummed a record's header before its payload; it was never released.
    Segment,
    /// A snapshot (`snap-<cut>.rkyv`); its header names the cut.
    Snapshot,
}

impl FileKind {
    fn magic(self) -> &'static [u8; 8] {
        match self {
            FileKind::Segment => b"SESSWAL1",
            FileKind::Snapshot => b"SESSNAP1",
        }
    }

    /// The format version this build writes and reads.
    pub(crate) fn version(self) -> u32 {
        2
    }
}

/// Why a file header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// Fewer than [`LEN`] bytes.
    Truncated,
    /// Not this kind's magic.
    BadMagic,
    /// The checksum of bytes 0..24 does not match.
    BadChecksum,
    /// A valid header of another format version: such a file is refused, never salvaged as if
    /// it were corrupt.
    Version(u32),
}

/// The header of a `kind` file whose sequence number is `seq`.
pub(crate) fn build(kind: FileKind, seq: u64) -> [u8; LEN] {
    let mut h = [0u8; LEN];
    h[..8].copy_from_slice(kind.magic());
    h[8..12].copy_from_slice(&kind.version().to_le_bytes());
    h[16..24].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32c::crc32c(&h[..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks the header at the start of `bytes` for a `kind` file (its magic, then its checksum,
/// then its version); returns its sequence number.
pub(crate) fn parse(kind: FileKind, bytes: &[u8]) -> Result<u64, HeaderError> {
    let h: &[u8; LEN] = bytes
        .get(..LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(HeaderError::Truncated)?;
    let word = |at: usize| u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    if &h[..8] != kind.magic() {
        return Err(HeaderError::BadMagic);
    }
    if crc32c::crc32c(&h[..24]) != word(24) {
        return Err(HeaderError::BadChecksum);
    }
    match word(8) {
        v if v == kind.version() => {}
        v => return Err(HeaderError::Version(v)),
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&h[16..24]);
    Ok(u64::from_le_bytes(seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_round_trips_and_is_refused_for_the_other_kind() {
        for (kind, other) in [
            (FileKind::Segment, FileKind::Snapshot),
            (FileKind::Snapshot, FileKind::Segment),
        ] {
            let h = build(kind, 42);
            assert_eq!(parse(kind, &h), Ok(42));
            assert_eq!(parse(other, &h), Err(HeaderError::BadMagic));
            assert_eq!(parse(kind, &h[..LEN - 1]), Err(HeaderError::Truncated));
        }
    }

    #[test]
    fn a_flip_is_a_checksum_error_and_another_version_is_named() {
        let mut h = build(FileKind::Segment, 7);
        h[17] ^= 1;
        assert_eq!(parse(FileKind::Segment, &h), Err(HeaderError::BadChecksum));
        let mut h = build(FileKind::Segment, 7);
        h[8..12].copy_from_slice(&1u32.to_le_bytes());
        let crc = crc32c::crc32c(&h[..24]);
        h[24..28].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(parse(FileKind::Segment, &h), Err(HeaderError::Version(1)));
    }
}
