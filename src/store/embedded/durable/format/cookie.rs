//! The binary primitives of both formats: strings, the cookie object, and a bounds-checked
//! reader over untrusted bytes.
//!
//! Layout: `docs/FORMAT.md`, section "Record" (strings and the cookie table).

use std::sync::Arc;

use crate::record::{CookieRecord, Priority, SameSite};

/// Appends `s` as a `u32` length and its UTF-8 bytes.
pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

const F_MAX_AGE: u16 = 1;
const F_EXPIRES: u16 = 1 << 1;
const F_SECURE_SET: u16 = 1 << 2;
const F_SECURE: u16 = 1 << 3;
const F_HTTP_ONLY: u16 = 1 << 4;
const F_DOMAIN: u16 = 1 << 5;
const F_PARTITIONED_SET: u16 = 1 << 6;
const F_PARTITIONED: u16 = 1 << 7;
const F_ALL: u16 = (1 << 8) - 1;

/// The cookie object in binary: flags, sameSite, priority, the optional numbers and strings.
pub(crate) fn put_cookie(out: &mut Vec<u8>, c: &CookieRecord) {
    let mut flags = 0u16;
    let mut set = |cond: bool, f: u16| {
        if cond {
            flags |= f
        }
    };
    set(c.original_max_age.is_some(), F_MAX_AGE);
    set(c.expires.is_some(), F_EXPIRES);
    set(c.secure.is_some(), F_SECURE_SET);
    set(c.secure == Some(true), F_SECURE);
    set(c.http_only, F_HTTP_ONLY);
    set(c.domain.is_some(), F_DOMAIN);
    set(c.partitioned.is_some(), F_PARTITIONED_SET);
    set(c.partitioned == Some(true), F_PARTITIONED);
    out.extend_from_slice(&flags.to_le_bytes());
    out.push(match c.same_site {
        None => 0,
        Some(SameSite::True) => 1,
        Some(SameSite::Lax) => 2,
        Some(SameSite::Strict) => 3,
        Some(SameSite::None) => 4,
    });
    out.push(match c.priority {
        None => 0,
        Some(Priority::Low) => 1,
        Some(Priority::Medium) => 2,
        Some(Priority::High) => 3,
    });
    if let Some(m) = c.original_max_age {
        out.extend_from_slice(&m.to_le_bytes());
    }
    if let Some(e) = c.expires {
        out.extend_from_slice(&e.to_le_bytes());
    }
    if let Some(d) = &c.domain {
        put_str(out, d);
    }
    put_str(out, &c.path);
}

/// A bounds-checked reader over untrusted bytes.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    pub(crate) fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    pub(crate) fn str(&mut self) -> Option<&'a str> {
        let n = self.u32()? as usize;
        std::str::from_utf8(self.take(n)?).ok()
    }

    pub(crate) fn string(&mut self) -> Option<String> {
        self.str().map(str::to_owned)
    }

    pub(crate) fn cookie(&mut self) -> Option<CookieRecord> {
        let flags = self.u16()?;
        if flags & !F_ALL != 0 {
            return None;
        }
        let same_site = match self.u8()? {
            0 => None,
            1 => Some(SameSite::True),
            2 => Some(SameSite::Lax),
            3 => Some(SameSite::Strict),
            4 => Some(SameSite::None),
            _ => return None,
        };
        let priority = match self.u8()? {
            0 => None,
            1 => Some(Priority::Low),
            2 => Some(Priority::Medium),
            3 => Some(Priority::High),
            _ => return None,
        };
        let has = |f: u16| flags & f != 0;
        let original_max_age = if has(F_MAX_AGE) {
            Some(self.i64()?)
        } else {
            None
        };
        let expires = if has(F_EXPIRES) {
            Some(self.i64()?)
        } else {
            None
        };
        let domain = if has(F_DOMAIN) {
            Some(Arc::from(self.str()?))
        } else {
            None
        };
        let path = Arc::from(self.str()?);
        Some(CookieRecord {
            original_max_age,
            expires,
            secure: has(F_SECURE_SET).then_some(has(F_SECURE)),
            http_only: has(F_HTTP_ONLY),
            domain,
            path,
            same_site,
            partitioned: has(F_PARTITIONED_SET).then_some(has(F_PARTITIONED)),
            priority,
        })
    }
}
