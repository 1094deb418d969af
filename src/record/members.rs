//! The top level of a JSON object as raw text, and fields kept as text when they cannot be
//! decoded.
//!
//! A record written by Node can hold what a `serde_json::Value` cannot: a string with a
//! lone UTF-16 surrogate (`"x\ud800y"`, which JavaScript's `'👍'.slice(0, 1)` gives and
//! `JSON.stringify` writes as an escape), or nesting past serde_json's recursion limit
//! (128). Such a field must not make the whole record unreadable: the object's top level is
//! split into raw member texts with serde_json's [`RawValue`] (which skips a value without
//! recursion and without decoding its strings), each field is decoded on its own, and a
//! field that does not decode stays [`Opaque`]: written back byte for byte.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, Error as _, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

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
        let k = self.key.get();
        let inner = k.get(1..k.len().saturating_sub(1))?;
        if !inner.contains('\\') {
            return Some(Cow::Borrowed(inner));
        }
        serde_json::from_str::<String>(k).ok().map(Cow::Owned)
    }

    /// Whether the key is `name`.
    pub(crate) fn is(&self, name: &str) -> bool {
        self.name().as_deref() == Some(name)
    }
}

/// The members of the JSON object `text`, in order (a name given twice appears twice).
/// Fails when `text` is not one JSON object; the values are checked for syntax only.
pub(crate) fn members(text: &str) -> serde_json::Result<Vec<Member<'_>>> {
    let mut de = serde_json::Deserializer::from_str(text);
    let members = de.deserialize_map(Members)?;
    de.end()?;
    Ok(members)
}

struct Members;

impl<'de> Visitor<'de> for Members {
    type Value = Vec<Member<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(key) = map.next_key::<&'de RawValue>()? {
            if !key.get().starts_with('"') {
                return Err(A::Error::custom("an object key is not a string"));
            }
            let value = map.next_value::<&'de RawValue>()?;
            out.push(Member { key, value });
        }
        Ok(out)
    }
}

/// `{"k":v,...}` of these `(key, value)` texts.
pub(crate) fn object_text<'a>(members: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::from("{");
    for (k, v) in members {
        if out.len() > 1 {
            out.push(',');
        }
        out.push_str(k);
        out.push(':');
        out.push_str(v);
    }
    out.push('}');
    out
}

/// A field that cannot be decoded into a `serde_json::Value`, kept as its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Opaque {
    /// The field's name; `None` when the name itself cannot be decoded.
    pub(crate) name: Option<String>,
    /// The key as written (a JSON string with its quotes).
    pub(crate) key: Box<str>,
    /// The value as written.
    pub(crate) value: Box<str>,
}

impl Opaque {
    /// Why the field cannot be decoded: serde_json's own error for it.
    pub(crate) fn error(&self) -> serde_json::Error {
        if self.name.is_none() {
            if let Err(e) = serde_json::from_str::<String>(&self.key) {
                return e;
            }
        }
        match serde_json::from_str::<Value>(&self.value) {
            Err(e) => e,
            Ok(_) => serde_json::Error::custom("the field cannot be decoded"),
        }
    }
}

impl fmt::Display for Opaque {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "the field {n:?} cannot be decoded: {}", self.error()),
            None => {
                let key: String = self.key.chars().take(40).collect();
                write!(
                    f,
                    "the field named {key} cannot be decoded: {}",
                    self.error()
                )
            }
        }
    }
}

/// Session fields, decoded: the values, and the fields that do not decode (by name, never
/// among the values), each in the order written.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Parsed {
    pub(crate) values: Map<String, Value>,
    pub(crate) opaque: Vec<Opaque>,
}

impl Parsed {
    /// Decodes the JSON object `text`. A name given twice keeps its last value (at the
    /// place of the first, as a map keeps it).
    pub(crate) fn parse(text: &str) -> serde_json::Result<Parsed> {
        // Nearly always everything decodes: one pass.
        let first = match serde_json::from_str::<Map<String, Value>>(text) {
            Ok(values) => {
                return Ok(Parsed {
                    values,
                    opaque: Vec::new(),
                })
            }
            Err(e) => e,
        };
        // Not an object at all: the error of the whole.
        let members = members(text).map_err(|_| first)?;
        let mut p = Parsed::default();
        for m in &members {
            let name = m.name().map(Cow::into_owned);
            let value = serde_json::from_str::<Value>(m.value.get());
            if let Some(n) = &name {
                p.opaque.retain(|o| o.name.as_ref() != Some(n));
            }
            match (name, value) {
                (Some(name), Ok(v)) => {
                    p.values.insert(name, v);
                }
                (name, _) => {
                    if let Some(n) = &name {
                        p.values.shift_remove(n);
                    }
                    p.opaque.push(Opaque {
                        name,
                        key: m.key.get().into(),
                        value: m.value.get().into(),
                    });
                }
            }
        }
        Ok(p)
    }

    /// The field named `name` that cannot be decoded, if there is one.
    pub(crate) fn opaque(&self, name: &str) -> Option<&Opaque> {
        self.opaque.iter().find(|o| o.name.as_deref() == Some(name))
    }

    /// Whether there are no fields at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.values.is_empty() && self.opaque.is_empty()
    }

    /// Whether a field named `name` exists, decodable or not.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name) || self.opaque(name).is_some()
    }

    /// Removes the field named `name`; its value if it decoded.
    pub(crate) fn remove(&mut self, name: &str) -> Option<Value> {
        self.opaque.retain(|o| o.name.as_deref() != Some(name));
        self.values.shift_remove(name)
    }

    /// Sets the field `name` (no longer opaque, if it was).
    pub(crate) fn insert(&mut self, name: String, value: Value) {
        self.opaque
            .retain(|o| o.name.as_deref() != Some(name.as_str()));
        self.values.insert(name, value);
    }

    /// The JSON object text: the values, then the opaque fields as they were written. A
    /// field named `cookie` is left out.
    pub(crate) fn to_text(&self) -> String {
        let values = super::Data::from_map(&self.values);
        if self.opaque.is_empty() {
            return values.as_str().to_owned();
        }
        let mut out = values.as_str().to_owned();
        out.pop();
        for o in &self.opaque {
            if o.name.as_deref() == Some("cookie") {
                continue;
            }
            if out.len() > 1 {
                out.push(',');
            }
            out.push_str(&o.key);
            out.push(':');
            out.push_str(&o.value);
        }
        out.push('}');
        out
    }
}

/// One member of an object being changed: its name (if it decodes), key and value texts.
struct Entry<'a> {
    name: Option<Cow<'a, str>>,
    key: Cow<'a, str>,
    value: Cow<'a, str>,
}

/// The JSON object `text` with `changes` applied. Only its top level is parsed: every member
/// the changes do not name is written back as it was, byte for byte. A member named
/// `cookie` is left out (that name belongs to the cookie object).
pub(crate) fn apply(text: &str, changes: &[Change]) -> serde_json::Result<String> {
    let members = members(text)?;
    let mut entries: Vec<Entry<'_>> = members
        .iter()
        .map(|m| Entry {
            name: m.name(),
            key: Cow::Borrowed(m.key.get()),
            value: Cow::Borrowed(m.value.get()),
        })
        .filter(|e| e.name.as_deref() != Some("cookie"))
        .collect();
    for change in changes {
        match change {
            Change::Set(k, v) if k != "cookie" => {
                let value = Cow::Owned(serde_json::to_string(v)?);
                match entries.iter().position(|e| e.name.as_deref() == Some(k)) {
                    Some(at) => {
                        entries[at].value = value;
                        // Later duplicates of the name go, as a map keeps one value.
                        let mut i = 0;
                        entries.retain(|e| {
                            i += 1;
                            i <= at + 1 || e.name.as_deref() != Some(k)
                        });
                    }
                    None => entries.push(Entry {
                        name: Some(Cow::Borrowed(k)),
                        key: Cow::Owned(serde_json::to_string(k)?),
                        value,
                    }),
                }
            }
            Change::Set(..) => {}
            Change::Remove(k) => entries.retain(|e| e.name.as_deref() != Some(k)),
        }
    }
    Ok(object_text(entries.iter().map(|e| (&*e.key, &*e.value))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    }

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
    fn undecodable_fields_stay_opaque_and_are_written_back_as_they_were() {
        let deep = nested(200);
        let text = format!(
            r#"{{"views":3,"lone":"x\ud800y","deep":{deep},"\ud800":1,"user":"u","views":4}}"#
        );
        let p = Parsed::parse(&text).unwrap();
        let mut values = Map::new();
        values.insert("views".into(), Value::from(4));
        values.insert("user".into(), Value::from("u"));
        assert_eq!(p.values, values);
        let names: Vec<Option<&str>> = p.opaque.iter().map(|o| o.name.as_deref()).collect();
        assert_eq!(names, vec![Some("lone"), Some("deep"), None]);
        let why = p.opaque("lone").unwrap().to_string();
        assert!(why.contains("\"lone\"") && why.contains("escape"), "{why}");
        assert!(p.opaque("deep").unwrap().to_string().contains("recursion"));
        assert_eq!(
            p.to_text(),
            format!(r#"{{"views":4,"user":"u","lone":"x\ud800y","deep":{deep},"\ud800":1}}"#)
        );
        // A later value of a name replaces an earlier one, opaque or not.
        let p = Parsed::parse(r#"{"a":"\ud800","a":1,"b":2,"b":"\ud800"}"#).unwrap();
        assert_eq!(p.values.get("a"), Some(&Value::from(1)));
        assert!(p.values.get("b").is_none());
        assert_eq!(p.opaque("b").map(|o| &*o.value), Some(r#""\ud800""#));
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
