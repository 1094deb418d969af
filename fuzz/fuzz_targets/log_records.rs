//! Arbitrary bytes as the records of a log segment: decoding never panics (raw, and with the
//! checksum made valid so the payload decoder meets arbitrary input), and a record written
//! from fuzzed fields decodes back, also when garbage follows it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sessile::fuzzing::{decode_log, decode_log_with_valid_crc, encode_set};

fuzz_target!(|bytes: &[u8]| {
    let _ = decode_log(bytes);
    let _ = decode_log_with_valid_crc(bytes);

    let split = bytes.first().map_or(0, |&b| b as usize).min(bytes.len());
    let (head, tail) = bytes.split_at(split);
    let sid = String::from_utf8_lossy(head);
    let mut log = encode_set(&sid, "{\"v\":1}", 7);
    assert_eq!(decode_log(&log), 1, "a freshly encoded record must decode");
    log.extend_from_slice(tail);
    assert!(decode_log(&log) >= 1);
});
