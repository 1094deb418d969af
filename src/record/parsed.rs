//! Session fields parsed for a request that changes them, each kept as its text until it is
//! set.
//!
//! The loaded fields are split into their members, in order; a member is decoded into a
//! `serde_json::Value` only when something looks at it, and is written back as the text it
//! was read from unless it was set since. So a session written back whole keeps the member
//! order and the number text Node wrote without serde_json's `preserve_order` and
//! `float_roundtrip` features, which a library must not turn on in its users' builds (Cargo
//! unifies features: every `Map` of the application would become ordered). A field that
//! cannot be decoded (a lone UTF-16 surrogate, nesting past serde_json's limit) is opaque:
//! only its text, written back as it was.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Range;
use std::sync::OnceLock;

use indexmap::{Equivalent, IndexMap};
use serde::de::Error as _;
use serde_json::{Map, Value};

use super::members::{each_member, ObjectText};
use super::{Change, Data};

/// Session fields: every member of the loaded object in the order written (a name given
/// twice at the place of its first, with its last value), then those set since, in the
/// order set. A field removed and set again goes last, as in a JavaScript object.
#[derive(Debug, Clone, Default)]
pub(crate) struct Parsed {
    /// The text the loaded members are in.
    source: Data,
    fields: IndexMap<Key, Field, ahash::RandomState>,
}

/// A member's key: its name, or, for a name that cannot be decoded, its place among the
/// members read (such a member can only be kept or dropped with the others).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Name(String),
    Nameless(usize),
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, h: &mut H) {
        match self {
            // As `Name` hashes it, so that a map of `Key`s is searched by `&str`.
            Key::Name(n) => Name(n).hash(h),
            Key::Nameless(i) => {
                h.write_u8(0xff);
                i.hash(h);
            }
        }
    }
}

/// A field name, to look a [`Key`] up without building one.
#[derive(Hash)]
struct Name<'a>(&'a str);

impl Equivalent<Key> for Name<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        matches!(key, Key::Name(n) if n == self.0)
    }
}

#[derive(Debug, Clone)]
enum Field {
    /// As loaded: where its key and value are in the source text, and the value decoded
    /// once asked for (`None` when it cannot be).
    Loaded {
        key: Range<usize>,
        text: Range<usize>,
        value: OnceLock<Option<Value>>,
    },
    /// Set since it was loaded.
    Set(Value),
}

/// A field that cannot be decoded into a `serde_json::Value`, as it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Opaque<'a> {
    /// The field's name; `None` when the name itself cannot be decoded.
    pub(crate) name: Option<&'a str>,
    /// The key as written (a JSON string with its quotes).
    pub(crate) key: &'a str,
    /// The value as written.
    pub(crate) value: &'a str,
}

impl Opaque<'_> {
    /// Why the field cannot be decoded: serde_json's own error for it.
    pub(crate) fn error(&self) -> serde_json::Error {
        if self.name.is_none() {
            if let Err(e) = serde_json::from_str::<String>(self.key) {
                return e;
            }
        }
        match serde_json::from_str::<Value>(self.value) {
            Err(e) => e,
            Ok(_) => serde_json::Error::custom("the field cannot be decoded"),
        }
    }
}

impl fmt::Display for Opaque<'_> {
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

impl Parsed {
    /// Splits the JSON object of `data` into its members; their values are checked for
    /// syntax only, and decoded when asked for.
    pub(crate) fn parse(data: &Data) -> serde_json::Result<Parsed> {
        let text = data.as_str();
        // Where a slice of `text` lies in it.
        let span = |s: &str| {
            let start = s.as_ptr() as usize - text.as_ptr() as usize;
            start..start + s.len()
        };
        let mut fields = IndexMap::default();
        let mut i = 0;
        each_member(text, |m| {
            let key = m
                .name()
                .map_or(Key::Nameless(i), |n| Key::Name(n.into_owned()));
            let field = Field::Loaded {
                key: span(m.key.get()),
                text: span(m.value.get()),
                value: OnceLock::new(),
            };
            // A name given twice: its place stays, its value is the last.
            fields.insert(key, field);
            i += 1;
        })?;
        Ok(Parsed {
            source: data.clone(),
            fields,
        })
    }

    fn text(&self, at: &Range<usize>) -> &str {
        &self.source.as_str()[at.clone()]
    }

    fn value_of<'a>(&'a self, f: &'a Field) -> Option<&'a Value> {
        match f {
            Field::Set(v) => Some(v),
            Field::Loaded { text, value, .. } => value
                .get_or_init(|| serde_json::from_str(self.text(text)).ok())
                .as_ref(),
        }
    }

    /// `f` as opaque, when its name or its value cannot be decoded.
    fn opaque_of<'a>(&'a self, key: &'a Key, f: &'a Field) -> Option<Opaque<'a>> {
        let Field::Loaded { key: k, text, .. } = f else {
            return None;
        };
        let name = match key {
            Key::Name(n) => Some(n.as_str()),
            Key::Nameless(_) => None,
        };
        (name.is_none() || self.value_of(f).is_none()).then(|| Opaque {
            name,
            key: self.text(k),
            value: self.text(text),
        })
    }

    /// The value of the field `name`; `None` when there is none, or when it cannot be
    /// decoded (see [`opaque`](Self::opaque)).
    pub(crate) fn get(&self, name: &str) -> Option<&Value> {
        self.value_of(self.fields.get(&Name(name))?)
    }

    /// The field named `name` when it cannot be decoded.
    pub(crate) fn opaque(&self, name: &str) -> Option<Opaque<'_>> {
        let (key, f) = self.fields.get_key_value(&Name(name))?;
        self.opaque_of(key, f)
    }

    /// The first field that cannot be decoded, if there is one.
    pub(crate) fn first_opaque(&self) -> Option<Opaque<'_>> {
        self.fields.iter().find_map(|(k, f)| self.opaque_of(k, f))
    }

    /// The fields that decode, as a `Map` (ordered as the application's serde_json orders
    /// one).
    pub(crate) fn to_map(&self) -> Map<String, Value> {
        self.named()
            .filter_map(|(n, f)| Some((n.to_owned(), self.value_of(f)?.clone())))
            .collect()
    }

    fn named(&self) -> impl Iterator<Item = (&str, &Field)> {
        self.fields.iter().filter_map(|(k, f)| match k {
            Key::Name(n) => Some((n.as_str(), f)),
            Key::Nameless(_) => None,
        })
    }

    /// The members whose names cannot be decoded, as their key and value texts.
    fn nameless(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().filter_map(|(k, f)| match (k, f) {
            (Key::Nameless(_), Field::Loaded { key, text, .. }) => {
                Some((self.text(key), self.text(text)))
            }
            _ => None,
        })
    }

    /// Whether some field's name is not `hidden` (a field whose name cannot be decoded is
    /// never hidden).
    pub(crate) fn any_shown(&self, hidden: impl Fn(&str) -> bool) -> bool {
        self.fields.keys().any(|k| match k {
            Key::Name(n) => !hidden(n),
            Key::Nameless(_) => true,
        })
    }

    /// Whether some field has a name that `pred` holds for.
    pub(crate) fn any_named(&self, pred: impl Fn(&str) -> bool) -> bool {
        self.named().any(|(n, _)| pred(n))
    }

    /// Keeps the fields whose name `keep` says to keep, in their order, and those whose name
    /// cannot be decoded when `nameless` says so.
    pub(crate) fn retain(&mut self, keep: impl Fn(&str) -> bool, nameless: bool) {
        self.fields.retain(|k, _| match k {
            Key::Name(n) => keep(n),
            Key::Nameless(_) => nameless,
        });
    }

    /// Whether a field named `name` exists, decodable or not.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.fields.contains_key(&Name(name))
    }

    /// Removes the field named `name`; its value if it decoded.
    pub(crate) fn remove(&mut self, name: &str) -> Option<Value> {
        match self.fields.shift_remove(&Name(name))? {
            Field::Set(v) => Some(v),
            Field::Loaded { text, value, .. } => match value.into_inner() {
                Some(v) => v,
                None => serde_json::from_str(self.text(&text)).ok(),
            },
        }
    }

    /// Sets the field `name` (no longer opaque, if it was), in its place if it exists. Set
    /// to the value it has, a field keeps its text.
    pub(crate) fn insert(&mut self, name: String, value: Value) {
        if self.get(&name) != Some(&value) {
            self.fields.insert(Key::Name(name), Field::Set(value));
        }
    }

    /// Applies field changes as a store applies them to the text
    /// ([`Changes::apply_to_data`](super::Changes::apply_to_data)): a field set takes the
    /// new value in its place, or goes last; a `cookie` is not a field.
    pub(crate) fn apply(&mut self, changes: &[Change]) {
        for change in changes {
            match change {
                Change::Set(k, v) if k != "cookie" => {
                    self.fields
                        .insert(Key::Name(k.clone()), Field::Set(v.clone()));
                }
                Change::Set(..) => {}
                Change::Remove(k) => {
                    self.fields.shift_remove(&Name(k));
                }
            }
        }
    }

    /// Whether `a` (of `self`) and `b` (of `other`) hold the same value, or the same text
    /// when they cannot be decoded.
    fn same(&self, a: &Field, other: &Parsed, b: &Field) -> bool {
        if let (Field::Loaded { text: x, .. }, Field::Loaded { text: y, .. }) = (a, b) {
            if self.text(x) == other.text(y) {
                return true;
            }
        }
        match (self.value_of(a), other.value_of(b)) {
            (Some(x), Some(y)) => x == y,
            // Opaque both, and their texts differ.
            _ => false,
        }
    }

    /// The changes from `base` to these fields; `None` when they cannot be said as
    /// [`Change`]s (a field that cannot be decoded and is new or different, or a nameless
    /// one that went).
    pub(crate) fn changes_since(&self, base: &Parsed) -> Option<Vec<Change>> {
        if !self.nameless().eq(base.nameless()) {
            return None;
        }
        let mut out = Vec::new();
        for (n, _) in base.named() {
            if !self.contains(n) {
                out.push(Change::Remove(n.to_owned()));
            }
        }
        for (n, f) in self.named() {
            let before = base.fields.get(&Name(n));
            if before.is_some_and(|b| self.same(f, base, b)) {
                continue;
            }
            // A value that cannot be decoded cannot be sent as one.
            out.push(Change::Set(n.to_owned(), self.value_of(f)?.clone()));
        }
        Some(out)
    }

    /// The JSON object text: every member in order, as it was read unless it was set. A
    /// field named `cookie` is left out.
    pub(crate) fn to_text(&self) -> String {
        let mut out = ObjectText::with_capacity(self.source.len() + 16);
        for (k, f) in &self.fields {
            if matches!(k, Key::Name(n) if n == "cookie") {
                continue;
            }
            match (k, f) {
                (_, Field::Loaded { key, text, .. }) => out.raw(self.text(key), self.text(text)),
                (Key::Name(n), Field::Set(v)) => out.value(n, v),
                // Only read members have no name.
                (Key::Nameless(_), Field::Set(_)) => {}
            }
        }
        out.finish()
    }
}

/// Equal when they hold the same fields with the same values (or the same texts, for those
/// that cannot be decoded), in any order.
impl PartialEq for Parsed {
    fn eq(&self, other: &Self) -> bool {
        self.fields.len() == other.fields.len()
            && self.nameless().eq(other.nameless())
            && self.named().all(|(n, f)| {
                other
                    .fields
                    .get(&Name(n))
                    .is_some_and(|g| self.same(f, other, g))
            })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::members::nested;
    use super::*;

    fn parsed(text: &str) -> Parsed {
        Data::from_trusted(text).parse().unwrap()
    }

    #[test]
    fn undecodable_fields_stay_opaque_and_are_written_back_as_they_were() {
        let deep = nested(200);
        let text = format!(
            r#"{{"views":3,"lone":"x\ud800y","deep":{deep},"\ud800":1,"user":"u","views":4}}"#
        );
        let p = parsed(&text);
        let mut values = Map::new();
        values.insert("views".into(), Value::from(4));
        values.insert("user".into(), Value::from("u"));
        assert_eq!(p.to_map(), values);
        assert_eq!(p.get("views"), Some(&json!(4)));
        assert_eq!(p.get("lone"), None);
        let names: Vec<Option<&str>> = p
            .fields
            .iter()
            .filter_map(|(k, f)| p.opaque_of(k, f))
            .map(|o| o.name)
            .collect();
        assert_eq!(names, vec![Some("lone"), Some("deep"), None]);
        assert_eq!(p.first_opaque().and_then(|o| o.name), Some("lone"));
        let why = p.opaque("lone").unwrap().to_string();
        assert!(why.contains("\"lone\"") && why.contains("escape"), "{why}");
        assert!(p.opaque("deep").unwrap().to_string().contains("recursion"));
        // In their places; `views` where it was first, with its last value.
        assert_eq!(
            p.to_text(),
            format!(r#"{{"views":4,"lone":"x\ud800y","deep":{deep},"\ud800":1,"user":"u"}}"#)
        );
        // A later value of a name replaces an earlier one, opaque or not.
        let p = parsed(r#"{"a":"\ud800","a":1,"b":2,"b":"\ud800"}"#);
        assert_eq!(p.get("a"), Some(&Value::from(1)));
        assert!(p.get("b").is_none());
        assert_eq!(p.opaque("b").map(|o| o.value), Some(r#""\ud800""#));
    }

    #[test]
    fn fields_are_equal_by_value_in_any_order() {
        assert_eq!(
            parsed(r#"{"a":1,"b":[2]}"#),
            parsed(r#"{ "b" : [ 2 ], "a":1}"#)
        );
        assert_ne!(parsed(r#"{"a":1}"#), parsed(r#"{"a":2}"#));
        assert_ne!(parsed(r#"{"a":1}"#), parsed(r#"{"a":1,"b":2}"#));
        assert_eq!(parsed(r#"{"x":"\ud800"}"#), parsed(r#"{"x":"\ud800"}"#));
        assert_ne!(parsed(r#"{"x":"\ud800"}"#), parsed(r#"{"x":"\udc00"}"#));
        assert_ne!(parsed(r#"{"\ud800":1}"#), parsed(r#"{"\ud800":2}"#));
        let mut set = parsed(r#"{"a":1}"#);
        set.insert("a".into(), json!(2));
        assert_eq!(set, parsed(r#"{"a":2}"#));
    }

    #[test]
    fn changes_since_lists_removes_then_sets() {
        let a = parsed(r#"{"a":1,"b":2,"c":3}"#);
        let b = parsed(r#"{"a":1,"b":5,"d":4}"#);
        assert_eq!(
            b.changes_since(&a).unwrap(),
            vec![
                Change::Remove("c".into()),
                Change::Set("b".into(), json!(5)),
                Change::Set("d".into(), json!(4)),
            ]
        );
    }

    #[test]
    fn changes_since_removes_opaque_fields_by_name_and_gives_up_without_one() {
        let base = parsed(r#"{"a":1,"lone":"\ud800","\ud800":2}"#);
        // Unchanged: nothing to send.
        assert_eq!(base.changes_since(&base), Some(Vec::new()));
        // The named one removed, another set over it: field changes.
        let mut current = base.clone();
        current.remove("lone");
        assert_eq!(
            current.changes_since(&base),
            Some(vec![Change::Remove("lone".into())])
        );
        current.insert("lone".into(), json!("ok"));
        assert_eq!(
            current.changes_since(&base),
            Some(vec![Change::Set("lone".into(), json!("ok"))])
        );
        // An opaque field that is new cannot be sent as a value.
        assert_eq!(
            parsed(r#"{"a":"\ud800"}"#).changes_since(&parsed("{}")),
            None
        );
        // Cleared: the field without a name cannot be removed by name.
        assert_eq!(Parsed::default().changes_since(&base), None);
    }

    #[test]
    fn applied_changes_write_what_the_store_writes_for_them() {
        let text = r#"{"a":1, "lone":"x\ud800y","\udc00":0,"b":[ 1 ],"n":1e+21}"#;
        let changes = [
            Change::Set("a".into(), Value::from(3)),
            Change::Remove("lone".into()),
            Change::Set("c".into(), Value::from("new")),
            Change::Set("cookie".into(), Value::from(1)),
            Change::Remove("never".into()),
        ];
        let mut p = parsed(text);
        p.apply(&changes);
        assert_eq!(
            p.to_text(),
            super::super::members::apply(text, &changes).unwrap()
        );
        assert_eq!(
            p.to_text(),
            r#"{"a":3,"\udc00":0,"b":[ 1 ],"n":1e+21,"c":"new"}"#
        );
    }
}
