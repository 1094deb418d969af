//! Arbitrary bytes as a snapshot file: loading validates every checksum, archive and column
//! and never panics. The bytes are tried raw; framed with valid checksums around them (so the
//! rkyv archive validation itself meets arbitrary input); and as the parts of a chunk archive
//! that rkyv accepts (so the checks of the columns, shapes, lengths and text splits meet
//! arbitrary input too).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sessile::fuzzing::{arbitrary_snapshot_chunk, frame_snapshot, load_snapshot};

fuzz_target!(|bytes: &[u8]| {
    let _ = load_snapshot(bytes);
    let half = bytes.len() / 2;
    // Up to a little over a chunk's 4096 entries, so counts the loader must refuse come too.
    let count = bytes.first().map_or(0, |&b| u32::from(b) * 17);
    let _ = load_snapshot(&frame_snapshot(3, &[(count, bytes)]));
    let _ = load_snapshot(&frame_snapshot(
        3,
        &[(count, &bytes[..half]), (count, &bytes[half..])],
    ));
    let (entries, chunk) = arbitrary_snapshot_chunk(bytes);
    let _ = load_snapshot(&frame_snapshot(3, &[(entries, &chunk)]));
});
