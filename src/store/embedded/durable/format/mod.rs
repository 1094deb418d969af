//! The bytes on disk, and nothing else: the file header every log segment and snapshot starts
//! with, the log's records, and a snapshot chunk's columns. Nothing here touches a file; the
//! log (`wal/`), the snapshots (`snapshot/`) and recovery (`recovery/`) read and write through
//! these.
//!
//! Every layout is described byte by byte in `docs/FORMAT.md`; each module names its section.

pub(crate) mod columns;
pub(crate) mod cookie;
pub(crate) mod header;
pub(crate) mod record;

pub(crate) use record::{decode, Decoded, Op, OpRef, Unsealed, HEADER, MAX_PAYLOAD};
#[cfg(fuzzing)]
pub(crate) use record::{encode, record_crc};
