//! Log records: one logged mutation ([`Op`]), encoded as a 28-byte header and a payload.
//!
//! Layout: `docs/FORMAT.md`, section "Record" (`#record-28-byte-header-then-the-payload`).
//! The header's synced watermark lets recovery tell a torn tail from corruption: a bad record
//! that a later valid record says was already synced is corruption (bit rot); one that no
//! later record vouches for was never known durable, so it and everything after it is a torn
//! tail.
//!
//! Decoding never trusts the bytes: every length is bounds-checked, every enum value checked,
//! and a record whose checksum does not match is reported, not used.

use super::cookie::{put_cookie, put_str, Reader};
use crate::record::{Change, Changes, CookieRecord, Data, Record};

/// Bytes in a record header.
pub(crate) const HEADER: usize = 28;
/// The largest payload accepted (a session of 64 MiB is certainly corruption).
pub(crate) const MAX_PAYLOAD: usize = 64 << 20;

const SET: u8 = 1;
const APPLY: u8 = 2;
const TOUCH: u8 = 3;
const DESTROY: u8 = 4;
const CLEAR: u8 = 5;

/// One logged mutation of the store.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    /// A whole record stored, with its deadline (ms since the epoch).
    Set {
        sid: String,
        record: Record,
        deadline: i64,
    },
    /// Field changes applied to a live record.
    Apply {
        sid: String,
        changes: Changes,
        deadline: i64,
    },
    /// A new cookie / deadline for a live record.
    Touch {
        sid: String,
        cookie: CookieRecord,
        deadline: i64,
    },
    /// A record removed.
    Destroy { sid: String },
    /// Every record removed.
    Clear,
}

impl Op {
    /// The session the op is about (`None` for [`Op::Clear`], which is about all).
    pub(crate) fn sid(&self) -> Option<&str> {
        match self {
            Op::Set { sid, .. }
            | Op::Apply { sid, .. }
            | Op::Touch { sid, .. }
            | Op::Destroy { sid } => Some(sid),
            Op::Clear => None,
        }
    }
}

/// An op borrowed from the caller, for encoding: what a writer logs without copying its id
/// or record first.
#[derive(Debug, Clone, Copy)]
pub(crate) enum OpRef<'a> {
    /// See [`Op::Set`].
    Set {
        sid: &'a str,
        record: &'a Record,
        deadline: i64,
    },
    /// See [`Op::Apply`].
    Apply {
        sid: &'a str,
        changes: &'a Changes,
        deadline: i64,
    },
    /// See [`Op::Touch`].
    Touch {
        sid: &'a str,
        cookie: &'a CookieRecord,
        deadline: i64,
    },
    /// See [`Op::Destroy`].
    Destroy { sid: &'a str },
    /// See [`Op::Clear`].
    Clear,
}

impl Op {
    /// The op borrowed, for encoding.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn as_ref(&self) -> OpRef<'_> {
        match self {
            Op::Set {
                sid,
                record,
                deadline,
            } => OpRef::Set {
                sid,
                record,
                deadline: *deadline,
            },
            Op::Apply {
                sid,
                changes,
                deadline,
            } => OpRef::Apply {
                sid,
                changes,
                deadline: *deadline,
            },
            Op::Touch {
                sid,
                cookie,
                deadline,
            } => OpRef::Touch {
                sid,
                cookie,
                deadline: *deadline,
            },
            Op::Destroy { sid } => OpRef::Destroy { sid },
            Op::Clear => OpRef::Clear,
        }
    }
}

/// A record encoded but for its sequence numbers: what a writer prepares before it takes the
/// log's lock. [`Unsealed::seal`] then fills in the header, under the lock, in a few
/// nanoseconds: the payload's checksum is already computed (the record's CRC32C runs over the
/// payload first and the header after it, for exactly this).
pub(crate) struct Unsealed {
    kind: u8,
    payload_crc: u32,
}

impl Unsealed {
    /// Clears `buf` and encodes `op` into it: a header of zeros, then the payload.
    pub(crate) fn encode(op: OpRef<'_>, buf: &mut Vec<u8>) -> Unsealed {
        buf.clear();
        buf.extend_from_slice(&[0u8; HEADER]);
        let kind = put_payload(op, buf);
        Unsealed {
            kind,
            payload_crc: crc32c::crc32c(&buf[HEADER..]),
        }
    }

    /// Writes the header of the record in `buf` (as [`Unsealed::encode`] left it): sequence
    /// number `seq`, written when everything up to `synced` was durable.
    pub(crate) fn seal(&self, buf: &mut [u8], seq: u64, synced: u64) {
        let len = (buf.len() - HEADER) as u32;
        buf[0..4].copy_from_slice(&len.to_le_bytes());
        buf[4] = self.kind;
        buf[5..8].fill(0);
        buf[8..16].copy_from_slice(&seq.to_le_bytes());
        buf[16..24].copy_from_slice(&synced.to_le_bytes());
        let crc = crc32c::crc32c_append(self.payload_crc, &buf[..24]);
        buf[24..28].copy_from_slice(&crc.to_le_bytes());
    }
}

/// The checksum of a record: CRC32C over the payload, then over header bytes 0..24.
pub(crate) fn record_crc(header: &[u8], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(payload), &header[..24])
}

/// Appends one encoded record (header and payload) for `op` with sequence number `seq`,
/// written when everything up to `synced` was durable.
#[cfg(any(test, fuzzing))]
pub(crate) fn encode(op: OpRef<'_>, seq: u64, synced: u64, out: &mut Vec<u8>) {
    let mut rec = Vec::new();
    Unsealed::encode(op, &mut rec).seal(&mut rec, seq, synced);
    out.extend_from_slice(&rec);
}

/// Appends the payload of `op`; returns its kind.
fn put_payload(op: OpRef<'_>, out: &mut Vec<u8>) -> u8 {
    match op {
        OpRef::Set {
            sid,
            record,
            deadline,
        } => {
            put_str(out, sid);
            put_cookie(out, &record.cookie);
            out.extend_from_slice(&deadline.to_le_bytes());
            put_str(out, record.data.as_str());
            SET
        }
        OpRef::Apply {
            sid,
            changes,
            deadline,
        } => {
            put_str(out, sid);
            put_cookie(out, &changes.cookie);
            out.extend_from_slice(&deadline.to_le_bytes());
            out.extend_from_slice(&(changes.fields.len() as u32).to_le_bytes());
            for c in &changes.fields {
                match c {
                    Change::Set(k, v) => {
                        out.push(1);
                        put_str(out, k);
                        put_json(out, v);
                    }
                    Change::Remove(k) => {
                        out.push(2);
                        put_str(out, k);
                    }
                }
            }
            APPLY
        }
        OpRef::Touch {
            sid,
            cookie,
            deadline,
        } => {
            put_str(out, sid);
            put_cookie(out, cookie);
            out.extend_from_slice(&deadline.to_le_bytes());
            TOUCH
        }
        OpRef::Destroy { sid } => {
            put_str(out, sid);
            DESTROY
        }
        OpRef::Clear => CLEAR,
    }
}

/// A JSON value as a string (`u32` length, then its JSON text), written in place.
fn put_json(out: &mut Vec<u8>, v: &serde_json::Value) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    // Writing to a Vec cannot fail, and a Value always serialises.
    let _ = serde_json::to_writer(&mut *out, v);
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

/// What the bytes at some offset of a segment hold.
#[derive(Debug, PartialEq)]
pub(crate) enum Decoded {
    /// A valid record of `len` bytes in all.
    Record {
        seq: u64,
        synced: u64,
        op: Op,
        len: usize,
    },
    /// Only zeros from here on in this header: the end of the written log.
    End,
    /// Not a valid record (torn, corrupt); the reason says why.
    Bad(&'static str),
}

/// Decodes the record at the start of `buf`.
pub(crate) fn decode(buf: &[u8]) -> Decoded {
    if buf.len() < HEADER {
        return if buf.iter().all(|&b| b == 0) {
            Decoded::End
        } else {
            Decoded::Bad("truncated header")
        };
    }
    let header = &buf[..HEADER];
    if header.iter().all(|&b| b == 0) {
        return Decoded::End;
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let kind = header[4];
    if header[5..8] != [0, 0, 0] || !(SET..=CLEAR).contains(&kind) {
        return Decoded::Bad("invalid header");
    }
    if len > MAX_PAYLOAD || buf.len() - HEADER < len {
        return Decoded::Bad("truncated payload");
    }
    let seq = u64::from_le_bytes(header[8..16].try_into().unwrap_or([0; 8]));
    let synced = u64::from_le_bytes(header[16..24].try_into().unwrap_or([0; 8]));
    let stored = u32::from_le_bytes(header[24..28].try_into().unwrap_or([0; 4]));
    let payload = &buf[HEADER..HEADER + len];
    if record_crc(header, payload) != stored {
        return Decoded::Bad("checksum mismatch");
    }
    match decode_payload(kind, payload) {
        Some(op) => Decoded::Record {
            seq,
            synced,
            op,
            len: HEADER + len,
        },
        None => Decoded::Bad("invalid payload"),
    }
}

/// A field value of an apply record, at any depth: the application may set values nested
/// past serde_json's recursion limit, and what was logged must read back.
#[cfg(unix)]
fn deep_value(text: &str) -> Option<serde_json::Value> {
    use serde::Deserialize;
    let mut de = serde_json::Deserializer::from_str(text);
    de.disable_recursion_limit();
    let v = serde_json::Value::deserialize(serde_stacker::Deserializer::new(&mut de)).ok()?;
    de.end().ok()?;
    Some(v)
}

/// Elsewhere the durable store cannot be opened (it is unix only).
#[cfg(not(unix))]
fn deep_value(text: &str) -> Option<serde_json::Value> {
    serde_json::from_str(text).ok()
}

fn decode_payload(kind: u8, payload: &[u8]) -> Option<Op> {
    let mut r = Reader(payload);
    let op = match kind {
        SET => {
            let sid = r.string()?;
            let cookie = r.cookie()?;
            let deadline = r.i64()?;
            let data = Data::from_trusted(r.str()?);
            Op::Set {
                sid,
                record: Record { cookie, data },
                deadline,
            }
        }
        APPLY => {
            let sid = r.string()?;
            let cookie = r.cookie()?;
            let deadline = r.i64()?;
            let n = r.u32()? as usize;
            let mut fields = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                match r.u8()? {
                    1 => {
                        let k = r.string()?;
                        let v = deep_value(r.str()?)?;
                        fields.push(Change::Set(k, v));
                    }
                    2 => fields.push(Change::Remove(r.string()?)),
                    _ => return None,
                }
            }
            Op::Apply {
                sid,
                changes: Changes { cookie, fields },
                deadline,
            }
        }
        TOUCH => {
            let sid = r.string()?;
            let cookie = r.cookie()?;
            let deadline = r.i64()?;
            Op::Touch {
                sid,
                cookie,
                deadline,
            }
        }
        DESTROY => Op::Destroy { sid: r.string()? },
        CLEAR => Op::Clear,
        _ => return None,
    };
    r.0.is_empty().then_some(op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Priority, SameSite};
    use serde_json::json;
    use std::sync::Arc;

    fn cookie() -> CookieRecord {
        CookieRecord {
            original_max_age: Some(60_000),
            expires: Some(1_700_000_000_123),
            secure: Some(false),
            http_only: true,
            domain: Some(Arc::from("example.com")),
            path: Arc::from("/"),
            same_site: Some(SameSite::Lax),
            partitioned: None,
            priority: Some(Priority::High),
        }
    }

    fn ops() -> Vec<Op> {
        vec![
            Op::Set {
                sid: "a%/é".into(),
                record: Record {
                    cookie: cookie(),
                    data: Data::from_json_text(r#"{"views":3,"user":{"n":"x"}}"#).unwrap(),
                },
                deadline: 5,
            },
            Op::Apply {
                sid: "a".into(),
                changes: Changes {
                    cookie: CookieRecord::default(),
                    fields: vec![
                        Change::Set("k".into(), json!([1, "two", null])),
                        Change::Remove("views".into()),
                    ],
                },
                deadline: -7,
            },
            Op::Touch {
                sid: "b".into(),
                cookie: cookie(),
                deadline: i64::MAX,
            },
            Op::Destroy { sid: String::new() },
            Op::Clear,
        ]
    }

    #[test]
    fn every_op_round_trips() {
        let mut buf = Vec::new();
        for (i, op) in ops().iter().enumerate() {
            encode(op.as_ref(), i as u64 + 1, i as u64, &mut buf);
        }
        buf.extend_from_slice(&[0; 64]);
        let mut at = 0;
        for (i, op) in ops().into_iter().enumerate() {
            match decode(&buf[at..]) {
                Decoded::Record {
                    seq,
                    synced,
                    op: got,
                    len,
                } => {
                    assert_eq!((seq, synced), (i as u64 + 1, i as u64));
                    assert_eq!(got, op);
                    at += len;
                }
                other => panic!("record {i}: {other:?}"),
            }
        }
        assert_eq!(decode(&buf[at..]), Decoded::End);
    }

    #[test]
    fn every_truncation_and_bit_flip_is_detected() {
        let mut buf = Vec::new();
        encode(ops()[0].as_ref(), 9, 3, &mut buf);
        for cut in 0..buf.len() {
            let mut b = buf[..cut].to_vec();
            b.resize(buf.len() + HEADER, 0);
            match decode(&b) {
                Decoded::Record { .. } => panic!("truncation at {cut} decoded"),
                Decoded::End => assert_eq!(cut, 0),
                Decoded::Bad(_) => {}
            }
        }
        for byte in 0..buf.len() {
            for bit in 0..8 {
                let mut b = buf.clone();
                b[byte] ^= 1 << bit;
                assert!(
                    !matches!(decode(&b), Decoded::Record { .. }),
                    "flip {byte}:{bit} decoded"
                );
            }
        }
    }

    #[test]
    fn the_checksum_covers_the_payload_then_the_header() {
        let mut buf = Vec::new();
        encode(ops()[0].as_ref(), 7, 6, &mut buf);
        let len = u32::from_le_bytes(buf[0..4].try_into().unwrap()) as usize;
        assert_eq!(buf.len(), HEADER + len);
        assert_eq!((buf[4], &buf[5..8]), (SET, &[0u8, 0, 0][..]));
        assert_eq!(u64::from_le_bytes(buf[8..16].try_into().unwrap()), 7);
        assert_eq!(u64::from_le_bytes(buf[16..24].try_into().unwrap()), 6);
        let crc = crc32c::crc32c_append(crc32c::crc32c(&buf[HEADER..]), &buf[..24]);
        assert_eq!(buf[24..28], crc.to_le_bytes());
    }

    #[test]
    fn a_reused_buffer_encodes_as_a_fresh_one() {
        let mut reused = Vec::new();
        for (i, op) in ops().iter().enumerate().rev() {
            let rec = Unsealed::encode(op.as_ref(), &mut reused);
            rec.seal(&mut reused, i as u64 + 1, 0);
            let mut fresh = Vec::new();
            encode(op.as_ref(), i as u64 + 1, 0, &mut fresh);
            assert_eq!(reused, fresh, "op {i}");
        }
    }
}
