//! The top level of a JSON object as raw text.
//!
//! A record written by Node can hold what a `serde_json::Value` cannot: a string with a
//! lone UTF-16 surrogate (`"x\ud800y"`, which JavaScript's `'👍'.slice(0, 1)` gives and
//! `JSON.stringify` writes as an escape), or nesting past serde_json's recursion limit
//! (128). Such a field must not make the whole record unreadable: the object's top level is
//! split into raw member texts with serde_json's [`RawValue`] (which skips a value without
//! recursion and without decoding its strings), each field is decoded on its own (see
//! [`Parsed`](super::Parsed)), and the members are written back as the text they were read
//! from, in their order, unless they changed.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, Error as _, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

use super::Change;

/// One member of a JSON object: its key and its value, as they are written.
#[derive(Clone, Copy)]
pub(crate) struct Member<'a> {
    /// The key, a JSON string with its quotes.
    pub(crate) key: &'a RawValue,
    /// The value's JSON text.
    pub(crate) value: &'a RawValue,
}

impl<'a> Member<'a> {
    /// The key, decoded; `None` when it cannot be (a lone surrogate).
    pub(crate) fn name(&self) -> Option<Cow<'a, str>> {
        name_of(self.key.get())
    }

    /// Whether the key is `name`.
    pub(crate) fn is(&self, name: &str) -> bool {
        self.name().as_deref() == Some(name)
    }
}

/// The name a key (a JSON string with its quotes) spells; `None` when it cannot be decoded
/// (a lone surrogate).
fn name_of(k: &str) -> Option<Cow<'_, str>> {
    let inner = k.get(1..k.len().saturating_sub(1))?;
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(k).ok().map(Cow::Owned)
}

/// The members of the JSON object `text`, in order (a name given twice appears twice).
/// Fails when `text` is not one JSON object; the values are checked for syntax only.
pub(crate) fn members(text: &str) -> serde_json::Result<Vec<Member<'_>>> {
    let mut out = Vec::new();
    each_member(text, |m| out.push(m))?;
    Ok(out)
}

/// Calls `f` with each member of the JSON object `text`, in order, as [`members`] lists
/// them (without collecting them).
pub(crate) fn each_member<'a>(text: &'a str, f: impl FnMut(Member<'a>)) -> serde_json::Result<()> {
    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_map(Members(f))?;
    de.end()
}

struct Members<F>(F);

impl<'de, F: FnMut(Member<'de>)> Visitor<'de> for Members<F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<&'de RawValue>()? {
            if !key.get().starts_with('"') {
                return Err(A::Error::custom("an object key is not a string"));
            }
            let value = map.next_value::<&'de RawValue>()?;
            (self.0)(Member { key, value });
        }
        Ok(())
    }
}

/// A JSON object's text, written member by member.
pub(crate) struct ObjectText(String);

impl ObjectText {
    /// An empty object, with room for `bytes`.
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        let mut out = String::with_capacity(bytes);
        out.push('{');
        ObjectText(out)
    }

    fn next(&mut self) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
    }

    /// A member from its key (a JSON string with its quotes) and value texts.
    pub(crate) fn raw(&mut self, key: &str, value: &str) {
        self.next();
        self.0.push_str(key);
        self.0.push(':');
        self.0.push_str(value);
    }

    /// A member from its name and value, as serde_json writes them.
    pub(crate) fn value(&mut self, name: &str, value: &Value) {
        self.next();
        // Serialising a string or a `Value` cannot fail.
        self.0
            .push_str(&serde_json::to_string(name).unwrap_or_default());
        self.0.push(':');
        self.0
            .push_str(&serde_json::to_string(value).unwrap_or_default());
    }

    /// The text, closed.
    pub(crate) fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

/// `{"k":v,...}` of these `(key, value)` texts.
pub(crate) fn object_text<'a>(members: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = ObjectText::with_capacity(64);
    for (k, v) in members {
        out.raw(k, v);
    }
    out.finish()
}

/// A member's text in an object being changed: as read, or a value (or name) to write.
#[derive(Clone, Copy)]
enum Text<'a> {
    Raw(&'a str),
    Value(&'a Value),
    Name(&'a str),
}

/// One member of an object being changed: its name (if it decodes), key and value texts.
struct Entry<'a> {
    name: Option<Cow<'a, str>>,
    key: Text<'a>,
    value: Text<'a>,
}

/// Keeps a member read (from its key and value texts) unless it is named `cookie`.
fn keep<'a>(entries: &mut Vec<Entry<'a>>, key: &'a str, value: &'a str) {
    let name = name_of(key);
    if name.as_deref() != Some("cookie") {
        entries.push(Entry {
            name,
            key: Text::Raw(key),
            value: Text::Raw(value),
        });
    }
}

/// Writes a member's key or value.
fn write(out: &mut Vec<u8>, part: Text<'_>) -> serde_json::Result<()> {
    match part {
        Text::Raw(t) => out.extend_from_slice(t.as_bytes()),
        Text::Name(t) => serde_json::to_writer(&mut *out, t)?,
        Text::Value(v) => serde_json::to_writer(&mut *out, v)?,
    }
    Ok(())
}

/// The JSON object `text` with `changes` applied. Only its top level is read (by the
/// [`scan`](super::scan) of its members, or serde_json's when the scan gives up): every
/// member the changes do not name is written back as it was, byte for byte, and nothing is
/// decoded but the keys. A member named `cookie` is left out (that name belongs to the
/// cookie object).
pub(crate) fn apply(text: &str, changes: &[Change]) -> serde_json::Result<String> {
    let mut entries: Vec<Entry<'_>> = Vec::with_capacity(8 + changes.len());
    if super::scan::each_span(text, |s| keep(&mut entries, &text[s.key], &text[s.value])).is_err() {
        // serde_json tells whether the text is an object after all, and why not.
        entries.clear();
        each_member(text, |m| keep(&mut entries, m.key.get(), m.value.get()))?;
    }
    for change in changes {
        match change {
            Change::Set(k, v) if k != "cookie" => {
                match entries.iter().position(|e| e.name.as_deref() == Some(k)) {
                    Some(at) => {
                        entries[at].value = Text::Value(v);
                        // Later duplicates of the name go, as a map keeps one value.
                        let mut i = 0;
                        entries.retain(|e| {
                            i += 1;
                            i <= at + 1 || e.name.as_deref() != Some(k)
                        });
                    }
                    None => entries.push(Entry {
                        name: Some(Cow::Borrowed(k)),
                        key: Text::Name(k),
                        value: Text::Value(v),
                    }),
                }
            }
            Change::Set(..) => {}
            Change::Remove(k) => entries.retain(|e| e.name.as_deref() != Some(k)),
        }
    }
    let mut out = Vec::with_capacity(text.len() + 32);
    out.push(b'{');
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(&mut out, e.key)?;
        out.push(b':');
        write(&mut out, e.value)?;
    }
    out.push(b'}');
    // Only text and serde_json's output were written.
    String::from_utf8(out).map_err(serde_json::Error::custom)
}

/// `depth` arrays, one inside the other, around a 1: nesting past serde_json's limit.
#[cfg(test)]
pub(crate) fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_keep_every_value_as_written() {
        let deep = nested(100_000);
        let text = format!(
            r#"{{ "a" : 1, "lone":"x\ud800y", "b\u0063":{{"x": [1, 2]}}, "deep":{deep}, "\udc00":2 }}"#
        );
        let m = members(&text).unwrap();
        let got: Vec<(Option<String>, &str)> = m
            .iter()
            .map(|m| (m.name().map(Cow::into_owned), m.value.get()))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some("a".to_owned()), "1"),
                (Some("lone".to_owned()), r#""x\ud800y""#),
                (Some("bc".to_owned()), r#"{"x": [1, 2]}"#),
                (Some("deep".to_owned()), deep.as_str()),
                (None, "2"),
            ]
        );
        for bad in [
            "",
            "[]",
            "{",
            r#"{"a":}"#,
            r#"{"a":1,}"#,
            r#"{"a":1}x"#,
            r#"{1:2}"#,
            r#"{"a":[}"#,
            r#"{"a":"\x"}"#,
        ] {
            assert!(members(bad).is_err(), "{bad}");
        }
        // Unbalanced nesting past the recursion limit is an error, not a crash.
        assert!(members(&format!(r#"{{"a":{}}}"#, "[".repeat(100_000))).is_err());
    }

    #[test]
    fn apply_changes_only_the_named_members() {
        let deep = nested(200);
        let text =
            format!(r#"{{"a":1, "lone":"x\ud800y","deep":{deep},"a":2,"\udc00":0,"b":[ 1 ]}}"#);
        let changes = [
            Change::Set("a".into(), Value::from(3)),
            Change::Remove("lone".into()),
            Change::Set("c".into(), Value::from("new")),
            Change::Set("cookie".into(), Value::from(1)),
            Change::Remove("never".into()),
        ];
        assert_eq!(
            apply(&text, &changes).unwrap(),
            format!(r#"{{"a":3,"deep":{deep},"\udc00":0,"b":[ 1 ],"c":"new"}}"#)
        );
        assert!(apply("[1]", &changes).is_err());
    }
}
