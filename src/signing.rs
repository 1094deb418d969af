//! Cookie signatures exactly as Node's `cookie-signature` makes them, so a Node service and
//! a Rust service with the same secret read each other's cookies.
//!
//! A signed value is `value + "." + base64(HMAC-SHA256(secret, value))` with the `=` padding
//! removed; express prefixes it with `s:`.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The secrets that sign and verify session cookies: the first signs, every one verifies, so
/// a secret can be rotated by putting the new one first.
///
/// Each secret's HMAC key schedule is computed once, here; signing and verifying clone it.
#[derive(Clone)]
pub struct Secrets(Vec<Hmac<Sha256>>);

impl Secrets {
    /// One or more secrets. Returns `None` when there are none or one is empty.
    pub fn new<I, S>(secrets: I) -> Option<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        let mut keyed = Vec::new();
        for secret in secrets {
            let secret = secret.as_ref();
            if secret.is_empty() {
                return None;
            }
            keyed.push(Hmac::<Sha256>::new_from_slice(secret).ok()?);
        }
        (!keyed.is_empty()).then_some(Secrets(keyed))
    }

    /// `cookie-signature`'s `sign(value, secrets[0])`.
    pub fn sign(&self, value: &str) -> String {
        signed(value, &mac_with(value, &self.0[0]))
    }

    /// `unsign` against every secret in turn: the value before the last `.` when its
    /// signature matches one of them, compared in constant time.
    pub fn unsign<'a>(&self, signed: &'a str) -> Option<&'a str> {
        let dot = signed.rfind('.')?;
        let (value, mac) = (&signed[..dot], &signed[dot + 1..]);
        let mut found = subtle::Choice::from(0);
        for key in &self.0 {
            let expected = mac_with(value, key);
            let same = if expected.len() == mac.len() {
                expected.as_bytes().ct_eq(mac.as_bytes())
            } else {
                subtle::Choice::from(0)
            };
            found |= same;
        }
        bool::from(found).then_some(value)
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} hidden)", self.0.len())
    }
}

/// The unpadded base64 HMAC-SHA256 of `value` under an already keyed HMAC.
fn mac_with(value: &str, key: &Hmac<Sha256>) -> String {
    let mut mac = key.clone();
    mac.update(value.as_bytes());
    STANDARD_NO_PAD.encode(mac.finalize().into_bytes())
}

fn signed(value: &str, mac: &str) -> String {
    let mut out = String::with_capacity(value.len() + 1 + mac.len());
    out.push_str(value);
    out.push('.');
    out.push_str(mac);
    out
}

/// `cookie-signature`'s `sign`: `value.base64mac`.
pub fn sign(value: &str, secret: &[u8]) -> String {
    match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(key) => signed(value, &mac_with(value, &key)),
        // HMAC takes keys of any length; this arm is never taken.
        Err(_) => signed(value, ""),
    }
}

/// The session cookie's value for `sid`: `s:` + the signed id (before percent-encoding).
pub fn cookie_value(sid: &str, secrets: &Secrets) -> String {
    let mut out = String::from("s:");
    out.push_str(&secrets.sign(sid));
    out
}

/// Reads a session id from a decoded cookie value, as express's `getcookie`: the value must
/// start with `s:` and carry a signature of one of the secrets; otherwise it is no id.
pub fn session_id<'a>(value: &'a str, secrets: &Secrets) -> Option<&'a str> {
    secrets.unsign(value.strip_prefix("s:")?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cookie::encode;

    fn kc() -> Secrets {
        Secrets::new(["keyboard cat"]).unwrap()
    }

    #[test]
    fn express_vectors() {
        for (sid, expected) in [
            (
                "apple",
                "s%3Aapple.D8Y%2BpkTAmeR0PobOhY4G97PRW%2Bj7bUnP%2F5m6%2FOn1MCU",
            ),
            ("%", "s%3A%25.kzQ6x52kKVdF35Qh62AWk4ZekS28K5XYCXKa%2FOTZ01g"),
            (
                "/foo",
                "s%3A%2Ffoo.paEKBtAHbV5s1IB8B2zPnzAgYmmnRPIqObW4VRYj%2FMQ",
            ),
        ] {
            let value = cookie_value(sid, &kc());
            assert_eq!(encode(&value), expected);
            assert_eq!(session_id(&value, &kc()), Some(sid));
        }
    }

    #[test]
    fn rejects_tampered_truncated_unsigned_and_unknown() {
        let good = cookie_value("apple", &kc());
        assert_eq!(session_id(&good, &kc()), Some("apple"));
        assert_eq!(session_id(&good.replace("apple", "apples"), &kc()), None);
        assert_eq!(session_id(&good[..good.len() - 1], &kc()), None);
        assert_eq!(session_id(&good[2..], &kc()), None);
        assert_eq!(session_id("s:apple", &kc()), None);
        assert_eq!(session_id("s:", &kc()), None);
        let other = Secrets::new(["other"]).unwrap();
        assert_eq!(session_id(&good, &other), None);
    }

    #[test]
    fn every_secret_verifies_the_first_signs() {
        let rotated = Secrets::new(["new", "keyboard cat"]).unwrap();
        let old = cookie_value("apple", &kc());
        assert_eq!(session_id(&old, &rotated), Some("apple"));
        let fresh = cookie_value("apple", &rotated);
        assert_eq!(session_id(&fresh, &kc()), None);
        assert!(Secrets::new(Vec::<String>::new()).is_none());
        assert!(Secrets::new([""]).is_none());
    }
}
