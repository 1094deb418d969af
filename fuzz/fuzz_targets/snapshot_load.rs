//! Arbitrary bytes as a snapshot file: loading validates every checksum and archive and never
//! panics. The bytes are tried raw, and framed with valid checksums around them (so the rkyv
//! archive validation itself meets arbitrary input).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sessile::store::embedded::fuzzing::{frame_snapshot, load_snapshot};

fuzz_target!(|bytes: &[u8]| {
    let _ = load_snapshot(bytes);
    let half = bytes.len() / 2;
    let _ = load_snapshot(&frame_snapshot(3, &[bytes]));
    let _ = load_snapshot(&frame_snapshot(3, &[&bytes[..half], &bytes[half..]]));
});
