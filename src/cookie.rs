//! Reading the `Cookie` header and writing `Set-Cookie`, as Node's `cookie` package does.

use std::borrow::Cow;

use crate::clock;
use crate::record::CookieRecord;

/// Finds the first cookie called `name` in a `Cookie` header value and returns its decoded
/// value, as `cookie.parse(header)[name]` does: pairs split on `;`, names and values trimmed,
/// one pair of surrounding double quotes removed, `%XX` escapes decoded when they form valid
/// UTF-8 (otherwise the raw value is kept). The first cookie of a name wins.
///
/// The header is taken as bytes, as Node's HTTP parser reads it: a byte of 0x80 or more is
/// the Latin-1 character of that code (Node decodes headers as Latin-1), so a raw UTF-8
/// value in another cookie (`pref=café`) never hides the one asked for.
///
/// ```
/// use sessile::cookie::find;
///
/// let header = "pref=caf\u{e9}; connect.sid=s%3Aabc.sig".as_bytes();
/// assert_eq!(find(header, "connect.sid").as_deref(), Some("s:abc.sig"));
/// assert_eq!(find(b"a=%+1", "a").as_deref(), Some("%+1"));
/// assert_eq!(find(b"a=1", "b"), None);
/// ```
pub fn find<'a>(header: &'a [u8], name: &str) -> Option<Cow<'a, str>> {
    for pair in header.split(|&b| b == b';') {
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            continue;
        };
        if trim(&pair[..eq]) != name.as_bytes() {
            continue;
        }
        let mut value = trim(&pair[eq + 1..]);
        if value.len() >= 2 && value[0] == b'"' && value[value.len() - 1] == b'"' {
            value = &value[1..value.len() - 1];
        }
        return Some(match std::str::from_utf8(value) {
            Ok(text) if text.is_ascii() => decode(text),
            _ => Cow::Owned(decode(&latin1(value)).into_owned()),
        });
    }
    None
}

/// The first cookie called `name` over every `Cookie` header of a request, in order, as Node
/// sees them (it joins repeated `Cookie` headers with `; `, and HTTP/2 sends one per cookie).
///
/// ```
/// use http::{header::COOKIE, HeaderMap, HeaderValue};
/// use sessile::cookie::find_in_headers;
///
/// let mut headers = HeaderMap::new();
/// headers.append(COOKIE, HeaderValue::from_bytes(b"pref=caf\xc3\xa9").unwrap());
/// headers.append(COOKIE, HeaderValue::from_static("connect.sid=s%3Aabc.sig"));
/// assert_eq!(find_in_headers(&headers, "connect.sid").as_deref(), Some("s:abc.sig"));
/// ```
pub fn find_in_headers<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<Cow<'h, str>> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .find_map(|value| find(value.as_bytes(), name))
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

/// Bytes read as Latin-1, as Node reads header bytes.
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// JavaScript's `decodeURIComponent`, falling back to the input when it would throw: a `%`
/// must be followed by exactly two hex digits (no sign, as `from_str_radix` would allow), and
/// the decoded bytes must be UTF-8.
///
/// ```
/// use sessile::cookie::decode;
///
/// assert_eq!(decode("s%3Aabc"), "s:abc");
/// assert_eq!(decode("caf%C3%A9"), "café");
/// assert_eq!(decode("%+1"), "%+1");
/// assert_eq!(decode("%FF"), "%FF");
/// ```
pub fn decode(value: &str) -> Cow<'_, str> {
    if !value.contains('%') {
        return Cow::Borrowed(value);
    }
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let pair = match bytes.get(i + 1..i + 3) {
                Some(&[h, l]) => hex(h).zip(hex(l)),
                _ => None,
            };
            match pair {
                Some((h, l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                None => return Cow::Borrowed(value),
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(_) => Cow::Borrowed(value),
    }
}

/// JavaScript's `encodeURIComponent`.
pub fn encode(value: &str) -> Cow<'_, str> {
    fn keep(b: u8) -> bool {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
            )
    }
    if value.bytes().all(keep) {
        return Cow::Borrowed(value);
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if keep(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
    Cow::Owned(out)
}

/// Whether `name` is a valid cookie name (an RFC 7230 token), as `cookie.serialize` demands.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `domain` is a valid `Domain` attribute, by the rule of Node's `cookie` package:
/// dot-separated labels of letters, digits and inner hyphens, at most 63 characters each, with
/// an optional leading dot.
pub fn is_valid_domain(domain: &str) -> bool {
    let d = domain.strip_prefix('.').unwrap_or(domain);
    !d.is_empty()
        && d.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

/// Whether `path` is a valid `Path` attribute, by the rule of Node's `cookie` package:
/// characters 0x20-0x3A and 0x3D-0x7E (printable ASCII without `;` and `<`).
pub fn is_valid_path(path: &str) -> bool {
    path.bytes()
        .all(|b| (0x20..=0x3a).contains(&b) || (0x3d..=0x7e).contains(&b))
}

/// Checks the attributes of a cookie before it is sent, as `cookie.serialize` does (it throws
/// where this returns an error): an invalid domain or path could otherwise inject attributes.
pub fn check(c: &CookieRecord) -> Result<(), String> {
    if let Some(d) = &c.domain {
        if !is_valid_domain(d) {
            return Err(format!("invalid cookie domain {d:?}"));
        }
    }
    if !is_valid_path(&c.path) {
        return Err(format!("invalid cookie path {:?}", c.path));
    }
    Ok(())
}

/// Checks a cookie against the rules its name's prefix sets, as browsers enforce them
/// (RFC 6265bis, "Cookie Name Prefixes"; matched without regard to case): a `__Secure-`
/// cookie must be `Secure`; a `__Host-` cookie must be `Secure`, have `Path=/` and no
/// `Domain`. A browser drops a cookie that breaks them, so the session would silently never
/// stick; the error says which rule is broken.
///
/// ```
/// use sessile::cookie::check_prefix;
/// use sessile::CookieRecord;
///
/// let secure = CookieRecord { secure: Some(true), ..CookieRecord::default() };
/// assert!(check_prefix("__Host-sid", &secure).is_ok());
/// assert!(check_prefix("__Host-sid", &CookieRecord::default()).is_err());
/// let scoped = CookieRecord { domain: Some("example.com".into()), ..secure.clone() };
/// assert!(check_prefix("__Host-sid", &scoped).is_err());
/// assert!(check_prefix("__Secure-sid", &scoped).is_ok());
/// // Other names have no rule.
/// assert!(check_prefix("sid", &CookieRecord::default()).is_ok());
/// ```
pub fn check_prefix(name: &str, c: &CookieRecord) -> Result<(), String> {
    let has = |prefix: &str| {
        name.get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
    };
    let prefix = if has("__Host-") {
        "__Host-"
    } else if has("__Secure-") {
        "__Secure-"
    } else {
        return Ok(());
    };
    if c.secure != Some(true) {
        return Err(format!(
            "a cookie named {name:?} must be Secure (the {prefix} prefix): set secure to \
             Secure::On, or browsers drop it"
        ));
    }
    if prefix == "__Host-" {
        if let Some(d) = &c.domain {
            return Err(format!(
                "a cookie named {name:?} must have no Domain (the __Host- prefix), \
                 not {d:?}, or browsers drop it"
            ));
        }
        if &*c.path != "/" {
            return Err(format!(
                "a cookie named {name:?} must have Path=/ (the __Host- prefix), not {:?}, \
                 or browsers drop it",
                c.path
            ));
        }
    }
    Ok(())
}

/// `cookie.serialize(name, value, cookie.data)`: the `Set-Cookie` value express sends.
/// `value` is encoded with `encodeURIComponent`. Attribute order: Domain, Path, Expires,
/// HttpOnly, Secure, Partitioned, Priority, SameSite. `Max-Age` is never sent.
pub fn serialize(name: &str, value: &str, c: &CookieRecord) -> String {
    let value = encode(value);
    let mut out = String::with_capacity(name.len() + value.len() + 96);
    out.push_str(name);
    out.push('=');
    out.push_str(&value);
    if let Some(domain) = &c.domain {
        out.push_str("; Domain=");
        out.push_str(domain);
    }
    out.push_str("; Path=");
    out.push_str(&c.path);
    if let Some(expires) = c.expires {
        out.push_str("; Expires=");
        out.push_str(&clock::to_http_date(expires));
    }
    if c.http_only {
        out.push_str("; HttpOnly");
    }
    if c.secure == Some(true) {
        out.push_str("; Secure");
    }
    if c.partitioned == Some(true) {
        out.push_str("; Partitioned");
    }
    if let Some(p) = c.priority {
        out.push_str("; Priority=");
        out.push_str(p.attribute());
    }
    if let Some(s) = c.same_site {
        out.push_str("; SameSite=");
        out.push_str(s.attribute());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Priority, SameSite};
    use std::sync::Arc;

    #[test]
    fn parse_follows_the_cookie_package() {
        let h = b"a=1; connect.sid=s%3Aabc.def; connect.sid=second;b=\"q\"";
        assert_eq!(find(h, "connect.sid").as_deref(), Some("s:abc.def"));
        assert_eq!(find(h, "b").as_deref(), Some("q"));
        assert_eq!(find(h, "a").as_deref(), Some("1"));
        assert_eq!(find(h, "missing"), None);
        assert_eq!(find(b"  x = y ;", "x").as_deref(), Some("y"));
        assert_eq!(find(b"x=%E0%A4%A", "x").as_deref(), Some("%E0%A4%A"));
        assert_eq!(find(b"x=%FF", "x").as_deref(), Some("%FF"));
        assert_eq!(find(b"novalue; x", "x"), None);
        assert_eq!(find(b"x=", "x").as_deref(), Some(""));
    }

    /// `decodeURIComponent` wants two hex digits after `%`; `from_str_radix` would also take a
    /// sign (issue 10, item 2).
    #[test]
    fn a_percent_needs_two_hex_digits() {
        for raw in ["%+1", "%-1", "a%+Fb", "%1", "%", "%g0", "%0g", "% 1"] {
            assert_eq!(decode(raw), raw, "{raw}");
            let header = format!("x={raw}");
            assert_eq!(find(header.as_bytes(), "x").as_deref(), Some(raw), "{raw}");
        }
        assert_eq!(decode("%2b%2B%41"), "++A");
    }

    /// Bytes of 0x80 and more are Latin-1 characters, as Node reads headers: a raw UTF-8
    /// cookie is found (as Node would see it) and never hides another (issue 10, item 1).
    #[test]
    fn header_bytes_are_read_as_latin1() {
        let h = b"pref=caf\xc3\xa9; \xff=\xfe; connect.sid=s%3Aa.b";
        assert_eq!(find(h, "connect.sid").as_deref(), Some("s:a.b"));
        assert_eq!(find(h, "pref").as_deref(), Some("caf\u{c3}\u{a9}"));
        assert_eq!(
            find(b"v=\xc3\xa9%C3%A9", "v").as_deref(),
            Some("\u{c3}\u{a9}\u{e9}")
        );
        assert_eq!(find(b"v=\"\xff\"", "v").as_deref(), Some("\u{ff}"));
    }

    #[test]
    fn attribute_rules_follow_the_cookie_package() {
        for ok in ["example.com", ".example.com", "a-b.c0", "localhost"] {
            assert!(is_valid_domain(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "a..b",
            "-a.com",
            "a-.com",
            "ex ample.com",
            "a.com; Secure",
            "é.com",
        ] {
            assert!(!is_valid_domain(bad), "{bad}");
        }
        assert!(is_valid_path("/a/b c:d=e~"));
        assert!(!is_valid_path("/a;b"));
        assert!(!is_valid_path("/a<b"));
        assert!(!is_valid_path("/a\nb"));
    }

    #[test]
    fn encode_matches_encode_uri_component() {
        assert_eq!(encode("s:a/b+c=d.e"), "s%3Aa%2Fb%2Bc%3Dd.e");
        assert_eq!(encode("-_.!~*'()"), "-_.!~*'()");
        assert_eq!(encode("é %"), "%C3%A9%20%25");
        assert_eq!(decode(&encode("é %;=")), "é %;=");
    }

    #[test]
    fn serialize_orders_attributes_like_express() {
        let c = CookieRecord {
            original_max_age: Some(1000),
            expires: Some(0),
            secure: Some(true),
            http_only: true,
            domain: Some(Arc::from("example.com")),
            path: Arc::from("/app"),
            same_site: Some(SameSite::True),
            partitioned: Some(true),
            priority: Some(Priority::High),
        };
        assert_eq!(
            serialize("sid", "s:x", &c),
            "sid=s%3Ax; Domain=example.com; Path=/app; Expires=Thu, 01 Jan 1970 00:00:00 GMT; \
             HttpOnly; Secure; Partitioned; Priority=High; SameSite=Strict"
        );
        assert_eq!(
            serialize("sid", "v", &CookieRecord::default()),
            "sid=v; Path=/; HttpOnly"
        );
    }
}
