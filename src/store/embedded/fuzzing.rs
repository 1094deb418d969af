//! Entry points for the fuzz targets in `fuzz/`; not part of the API.

use super::durable::{format, snapshot};

/// Decodes log records from `bytes` as recovery does; returns how many were valid.
pub fn decode_log(bytes: &[u8]) -> usize {
    let mut at = 0;
    let mut n = 0;
    while at < bytes.len() {
        match format::decode(&bytes[at..]) {
            format::Decoded::Record { len, .. } => {
                n += 1;
                at += len;
            }
            _ => break,
        }
    }
    n
}

/// Encodes a record for `sid` and `data`, so a fuzz target can check that what is
/// written decodes back.
pub fn encode_set(sid: &str, data: &str, seq: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let op = format::Op::Set {
        sid: sid.to_owned(),
        record: crate::record::Record {
            cookie: crate::record::CookieRecord::default(),
            data: crate::record::Data::from_trusted(data),
        },
        deadline: seq as i64,
    };
    format::encode(op.as_ref(), seq, seq.saturating_sub(1), &mut out);
    out
}

/// Gives the record at the start of `bytes` a correct checksum (when it has a whole
/// header and payload), so a fuzzer reaches the payload decoder; then decodes.
pub fn decode_log_with_valid_crc(bytes: &[u8]) -> usize {
    let mut b = bytes.to_vec();
    if b.len() >= format::HEADER {
        let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if len <= b.len() - format::HEADER {
            let crc = format::record_crc(&b[..24], &b[format::HEADER..format::HEADER + len]);
            b[24..28].copy_from_slice(&crc.to_le_bytes());
        }
    }
    decode_log(&b)
}

/// Frames arbitrary chunk bodies, each with the entry count its chunk header is to give,
/// as a snapshot with valid header, chunk and footer checksums, so a fuzzer reaches the
/// archive validation.
pub fn frame_snapshot(seq: u64, chunks: &[(u32, &[u8])]) -> Vec<u8> {
    snapshot::frame(seq, chunks)
}

/// A chunk archive that rkyv's validation accepts, with columns, shapes, lengths and text
/// taken from arbitrary bytes (not necessarily consistent), and the entry count to frame
/// it with: so a fuzzer reaches the snapshot's own checks of the columns.
pub fn arbitrary_snapshot_chunk(bytes: &[u8]) -> (u32, Vec<u8>) {
    snapshot::arbitrary_chunk(bytes)
}

/// Loads a snapshot from `bytes` as recovery does; returns the number of sessions.
pub fn load_snapshot(bytes: &[u8]) -> Result<usize, crate::StoreError> {
    let mut n = 0;
    snapshot::load("fuzz", bytes, |_, _, _| n += 1)?;
    Ok(n)
}

/// `Data::field`: the scan `Session::get` runs on the stored text before it parses the
/// fields into a map.
pub fn data_field<T: serde::de::DeserializeOwned>(
    data: &crate::record::Data,
    key: &str,
) -> serde_json::Result<Option<T>> {
    data.field(key)
}

/// Data holding `text` unchecked, as it is read from a checksummed log record or a
/// snapshot.
pub fn data_from_disk(text: &str) -> crate::record::Data {
    crate::record::Data::from_trusted(text)
}
