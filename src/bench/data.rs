//! The sessions a run writes: ids made from a number, and payloads of a chosen size, new for
//! every write.

use std::sync::Arc;

use crate::record::{CookieRecord, Data, Record};

/// The cookie's `maxAge` of every benchmark session: one day, in milliseconds.
pub(super) const MAX_AGE_MS: i64 = 86_400_000;

/// The length of a session id (24 random bytes in base64url, as `sessile::id` makes them).
const ID_LEN: usize = 32;

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// splitmix64's finaliser.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Session id number `i` of a run salted with `salt`: 32 base64url characters that look as
/// random as real ids (a store's hashing sees no pattern), the same for every store given the
/// same salt. Made by hashing, so a worker reads no table of ids.
#[derive(Clone, Copy)]
pub(super) struct Id([u8; ID_LEN]);

impl Id {
    pub(super) fn of(salt: u64, i: u64) -> Id {
        let x = i ^ salt;
        let words = [mix(x), mix(x ^ 0x5555_5555_5555_5555), mix(!x)];
        let mut bytes = [0u8; 24];
        for (k, w) in words.iter().enumerate() {
            bytes[k * 8..k * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        let mut out = [0u8; ID_LEN];
        for (chunk, dst) in bytes.chunks_exact(3).zip(out.chunks_exact_mut(4)) {
            let n = u32::from(chunk[0]) << 16 | u32::from(chunk[1]) << 8 | u32::from(chunk[2]);
            for (k, d) in dst.iter_mut().enumerate() {
                *d = B64URL[(n >> (18 - 6 * k)) as usize & 63];
            }
        }
        Id(out)
    }

    pub(super) fn as_str(&self) -> &str {
        // Only base64url characters were written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// wyrand: a small, fast generator for picking sessions uniformly.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xA076_1D64_78BD_642F);
        let t = u128::from(self.0).wrapping_mul(u128::from(self.0 ^ 0xE703_7ED1_A0B4_28DB));
        ((t >> 64) as u64) ^ (t as u64)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift); 0 when `n` is 0.
    pub(super) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// The JSON object text of a session's fields, `bytes` long (or as short as it can be, when
/// `bytes` is smaller than the fixed fields): a user, a `views` counter that is `n`, and a
/// note padding it to size. `n` makes every write's text new.
pub(super) fn payload_text(bytes: usize, n: u64) -> String {
    let mut s = String::with_capacity(bytes.max(48));
    s.push_str("{\"user\":\"user");
    s.push_str(&(n % 100_000_000).to_string());
    s.push_str("\",\"views\":");
    s.push_str(&n.to_string());
    // `,"note":"` … `"}` is 11 bytes around the padding.
    if bytes >= s.len() + 11 {
        let pad = bytes - s.len() - 11;
        s.push_str(",\"note\":\"");
        s.extend(std::iter::repeat_n('x', pad));
        s.push('"');
    }
    s.push('}');
    s
}

/// The cookie record sessile's layer stores for a session with a one-day `maxAge`,
/// expiring one day after `now_ms`; `path` is one `Arc<str>` shared by every session, as the
/// layer shares its options' path.
pub(super) fn cookie(path: &Arc<str>, now_ms: i64) -> CookieRecord {
    CookieRecord {
        original_max_age: Some(MAX_AGE_MS),
        expires: Some(now_ms + MAX_AGE_MS),
        http_only: true,
        path: path.clone(),
        ..CookieRecord::default()
    }
}

/// A new record: payload `n` of `bytes` bytes and `cookie`.
pub(super) fn record(bytes: usize, n: u64, cookie: &CookieRecord) -> Record {
    let text = payload_text(bytes, n);
    Record {
        cookie: cookie.clone(),
        // The text is a JSON object by construction; an empty object if that ever failed.
        data: Data::from_json_text(&text).unwrap_or_else(|_| Data::empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_have_the_size_asked_for_and_are_json_objects() {
        for bytes in [64, 197, 1000, 4096] {
            for n in [0, 7, 123_456_789, u64::MAX] {
                let text = payload_text(bytes, n);
                assert_eq!(text.len(), bytes, "{text}");
                let v: serde_json::Value = serde_json::from_str(&text).expect("json");
                assert_eq!(v["views"], serde_json::Value::from(n));
            }
        }
    }

    #[test]
    fn a_payload_too_small_for_its_fields_is_the_fields_alone() {
        let text = payload_text(1, 5);
        assert_eq!(text, r#"{"user":"user5","views":5}"#);
    }

    #[test]
    fn ids_are_distinct_base64url_and_depend_on_the_salt() {
        let ids: std::collections::HashSet<String> = (0..10_000)
            .map(|i| Id::of(1, i).as_str().to_owned())
            .collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| id.len() == ID_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')));
        assert_ne!(Id::of(1, 0).as_str(), Id::of(2, 0).as_str());
    }

    #[test]
    fn the_generator_stays_below_its_bound() {
        let mut rng = Rng::new(3);
        assert!((0..10_000).all(|_| rng.below(10) < 10));
        assert_eq!(rng.below(0), 0);
    }
}
