//! A fast scanner of a JSON object's top-level members.
//!
//! [`members`](super::members::members) splits an object with serde_json (a `RawValue` per
//! member), which costs several thousand instructions for a 200-byte session. Patching a
//! stored object needs only where each member's key and value text are, so this scanner
//! finds them in one pass over the bytes: strings are skipped eight bytes at a time, nesting is kept
//! in a bit stack. It checks the whole text against JSON's grammar, as serde_json does, and
//! gives up ([`Unsure`]) on what it does not handle itself (nesting deeper than 64); the
//! caller then takes serde_json's path, which gives the same members or the same error.

use std::ops::Range;

/// The scanner could not vouch for the text: it is not JSON, or nests deeper than
/// [`MAX_DEPTH`]. serde_json's path decides which.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Unsure;

/// The deepest nesting (inside a member's value) the scanner follows.
const MAX_DEPTH: u32 = 64;

/// Where one member is in the text: its key with its quotes, and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) key: Range<usize>,
    pub(crate) value: Range<usize>,
}

/// Calls `f` with each top-level member of the JSON object `text`, in order.
pub(crate) fn each_span(text: &str, mut f: impl FnMut(Span)) -> Result<(), Unsure> {
    let b = text.as_bytes();
    let mut i = ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return Err(Unsure);
    }
    i = ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return end(b, i + 1);
    }
    loop {
        let key_start = i;
        i = string(b, i)?;
        let key = key_start..i;
        i = ws(b, i);
        if b.get(i) != Some(&b':') {
            return Err(Unsure);
        }
        i = ws(b, i + 1);
        let value_start = i;
        i = value(b, i)?;
        f(Span {
            key,
            value: value_start..i,
        });
        i = ws(b, i);
        match b.get(i) {
            Some(b',') => i = ws(b, i + 1),
            Some(b'}') => return end(b, i + 1),
            _ => return Err(Unsure),
        }
    }
}

/// Only whitespace after the object.
fn end(b: &[u8], i: usize) -> Result<(), Unsure> {
    if ws(b, i) == b.len() {
        Ok(())
    } else {
        Err(Unsure)
    }
}

/// The index of the first byte at or after `i` that is not JSON whitespace.
#[inline(always)]
fn ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// Bytes of `word` that are `"`, `\\` or a control character: the high bit of each such
/// byte's lane (exact for the lowest one, which is all [`string`] looks at).
#[inline(always)]
fn specials(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    zero(word ^ (ONES * u64::from(b'"'))) | zero(word ^ (ONES * u64::from(b'\\'))) | control
}

/// The end of the string that starts at `i` (just past its closing quote). Eight bytes are
/// looked at a time for a quote, a backslash or a control character (which must have been
/// escaped).
#[inline(always)]
fn string(b: &[u8], i: usize) -> Result<usize, Unsure> {
    if b.get(i) != Some(&b'"') {
        return Err(Unsure);
    }
    let mut at = i + 1;
    loop {
        // The next special byte.
        loop {
            match b.get(at..at + 8) {
                Some(chunk) => {
                    let word = u64::from_le_bytes(chunk.try_into().map_err(|_| Unsure)?);
                    let found = specials(word);
                    if found != 0 {
                        at += (found.trailing_zeros() / 8) as usize;
                        break;
                    }
                    at += 8;
                }
                None => match b.get(at) {
                    Some(b'"' | b'\\' | 0..=0x1f) => break,
                    Some(_) => at += 1,
                    None => return Err(Unsure),
                },
            }
        }
        match b[at] {
            b'"' => return Ok(at + 1),
            b'\\' => {}
            _ => return Err(Unsure),
        }
        at += match b.get(at + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => 2,
            Some(b'u') => {
                let hex = b.get(at + 2..at + 6).ok_or(Unsure)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return Err(Unsure);
                }
                6
            }
            _ => return Err(Unsure),
        };
    }
}

/// The end of the number that starts at `i`: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn number(b: &[u8], mut i: usize) -> Result<usize, Unsure> {
    let digits = |mut i: usize| {
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            Err(Unsure)
        } else {
            Ok(i)
        }
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    i = match b.get(i) {
        Some(b'0') => i + 1,
        Some(b'1'..=b'9') => digits(i)?,
        _ => return Err(Unsure),
    };
    if b.get(i) == Some(&b'.') {
        i = digits(i + 1)?;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        i = digits(i)?;
    }
    Ok(i)
}

/// The end of the literal `word` at `i`.
fn literal(b: &[u8], i: usize, word: &[u8]) -> Result<usize, Unsure> {
    if b.get(i..i + word.len()) == Some(word) {
        Ok(i + word.len())
    } else {
        Err(Unsure)
    }
}

/// The end of the scalar (string, number, literal) that starts at `i`.
#[inline(always)]
fn scalar(b: &[u8], i: usize) -> Result<usize, Unsure> {
    match b.get(i) {
        Some(b'"') => string(b, i),
        Some(b't') => literal(b, i, b"true"),
        Some(b'f') => literal(b, i, b"false"),
        Some(b'n') => literal(b, i, b"null"),
        _ => number(b, i),
    }
}

/// The end of the value that starts at `i`. Arrays and objects are followed without
/// recursion: bit `d` of `objects` says whether nesting level `d` is an object.
fn value(b: &[u8], i: usize) -> Result<usize, Unsure> {
    if !matches!(b.get(i), Some(b'[' | b'{')) {
        return scalar(b, i);
    }
    let (mut objects, mut depth) = (0u64, 0u32);
    let mut i = i;
    // At the top of the loop, `i` is at a value.
    loop {
        match b.get(i) {
            Some(&open @ (b'[' | b'{')) => {
                if depth == MAX_DEPTH {
                    return Err(Unsure);
                }
                let is_object = open == b'{';
                objects = (objects << 1) | u64::from(is_object);
                depth += 1;
                i = ws(b, i + 1);
                let close = if is_object { b'}' } else { b']' };
                if b.get(i) == Some(&close) {
                    // Empty: closed below as a completed value.
                    depth -= 1;
                    objects >>= 1;
                    i += 1;
                } else {
                    if is_object {
                        i = member_key(b, i)?;
                    }
                    continue;
                }
            }
            _ => i = scalar(b, i)?,
        }
        // A value ended at `i`: close the containers it completes.
        loop {
            if depth == 0 {
                return Ok(i);
            }
            i = ws(b, i);
            let is_object = objects & 1 == 1;
            match b.get(i) {
                Some(b',') => {
                    i = ws(b, i + 1);
                    if is_object {
                        i = member_key(b, i)?;
                    }
                    break;
                }
                Some(b'}') if is_object => {}
                Some(b']') if !is_object => {}
                _ => return Err(Unsure),
            }
            depth -= 1;
            objects >>= 1;
            i += 1;
        }
    }
}

/// Past `"key" :` at `i`, to the start of the member's value.
#[inline(always)]
fn member_key(b: &[u8], i: usize) -> Result<usize, Unsure> {
    let i = ws(b, string(b, i)?);
    if b.get(i) != Some(&b':') {
        return Err(Unsure);
    }
    Ok(ws(b, i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(text: &str) -> Result<Vec<(&str, &str)>, Unsure> {
        let mut out = Vec::new();
        each_span(text, |s| out.push((&text[s.key], &text[s.value])))?;
        Ok(out)
    }

    #[test]
    fn members_are_found_as_written() {
        let text = r#" { "a" : 1 , "b\"c":"x\\y\u00e9\ud800", "d":{"e":[1,{"f":null}],"g":{}},"h":[],
            "i":-0.5e+10,"j":true,"k":false } "#;
        assert_eq!(
            spans(text).unwrap(),
            vec![
                (r#""a""#, "1"),
                (r#""b\"c""#, r#""x\\y\u00e9\ud800""#),
                (r#""d""#, r#"{"e":[1,{"f":null}],"g":{}}"#),
                (r#""h""#, "[]"),
                (r#""i""#, "-0.5e+10"),
                (r#""j""#, "true"),
                (r#""k""#, "false"),
            ]
        );
        assert_eq!(spans("{}").unwrap(), vec![]);
    }

    /// Every text serde_json refuses, the scanner refuses too (the caller then asks
    /// serde_json, whose error it reports).
    #[test]
    fn what_serde_json_refuses_is_refused() {
        for bad in [
            "",
            "[]",
            "{",
            "{}x",
            r#"{"a":}"#,
            r#"{"a":1,}"#,
            r#"{"a":1}x"#,
            r#"{1:2}"#,
            r#"{"a":[}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":[1 2]}"#,
            r#"{"a":{"b"}}"#,
            r#"{"a":{"b":1,}}"#,
            r#"{"a":{"b":1]}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12g4"}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":1e}"#,
            r#"{"a":-}"#,
            r#"{"a":tru}"#,
            r#"{"a":nul}"#,
            r#"{"a":"x}"#,
            r#"{"a" 1}"#,
            r#"{"a":1 "b":2}"#,
        ] {
            assert!(
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(bad).is_err(),
                "{bad}"
            );
            assert_eq!(spans(bad), Err(Unsure), "{bad}");
        }
    }

    /// A quote, a backslash or a control character is found wherever it is in a word, and
    /// no other byte is taken for one (every byte value at every place of an 8-byte word).
    #[test]
    fn special_bytes_are_found_at_every_place() {
        for c in 0..=255u8 {
            for at in 0..8 {
                for fill in [b'a', 0xff, b'!', b'#', b'[', b']', 0x20] {
                    let mut w = [fill; 8];
                    w[at] = c;
                    let found = specials(u64::from_le_bytes(w));
                    let special = matches!(c, b'"' | b'\\' | 0..=0x1f);
                    if special {
                        assert_eq!(found.trailing_zeros() / 8, at as u32, "{c:#x} at {at}");
                    } else {
                        assert_eq!(found, 0, "{c:#x} at {at} in {fill:#x}");
                    }
                }
            }
        }
        let text = format!(r#"{{"{0}":"{0}\"{0}","b":"{0}\u0001"}}"#, "x".repeat(13));
        assert!(spans(&text).is_ok());
        let bad = format!("{{\"{0}\":\"{0}{1}{0}\"}}", "x".repeat(13), '\u{1}');
        assert_eq!(spans(&bad), Err(Unsure));
    }

    /// On every text it accepts, the scan finds the members serde_json finds (what
    /// `members::apply` would have used before it).
    #[test]
    fn the_scan_finds_what_serde_json_finds() {
        let texts = [
            r#"{"user":"user00000007","views":7,"csrf":"abc","cart":[101,202,303],"prefs":{"theme":"dark","lang":"en-GB"},"note":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
            r#"{ "a" : 1e5 , "a":-0,"\u0062":"\ud83d\ude00","c" : [ { } , [ ] , null ] }"#,
            "{\"k\":\"é ü 👍\",\n\t\"x\":{\"y\":{\"z\":[true,false,0.25E-3]}}}",
            r#"{"":"","\"":"\\","long":"0123456789abcdef0123456789abcdef\n"}"#,
        ];
        for text in texts {
            let ours = spans(text).unwrap();
            let theirs: Vec<(&str, &str)> = super::super::members::members(text)
                .unwrap()
                .iter()
                .map(|m| (m.key.get(), m.value.get()))
                .collect();
            assert_eq!(ours, theirs, "{text}");
        }
    }

    #[test]
    fn nesting_past_the_bit_stack_is_left_to_serde_json() {
        let ok = format!(r#"{{"a":{}1{}}}"#, "[".repeat(64), "]".repeat(64));
        assert_eq!(spans(&ok).unwrap().len(), 1);
        let deep = format!(r#"{{"a":{}1{}}}"#, "[".repeat(65), "]".repeat(65));
        assert_eq!(spans(&deep), Err(Unsure));
    }
}
