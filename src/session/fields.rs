//! The fields of a session: as loaded, parsed on demand, written back, and compared with a
//! snapshot (what was loaded, saved or stored) to find what a request changed.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::Error;
use crate::record::{Change, Data, Parsed};

/// A view of the fields that is equal to some known text without parsing it.
#[derive(Clone)]
pub(super) enum Snap {
    Text(Data),
    Map(Arc<Parsed>),
}

/// The fields as loaded (`raw`) and, once a handler looked at them as a whole or wrote one,
/// parsed (`map`). A field that cannot be decoded into a `Value` (a lone surrogate, nesting
/// past serde_json's limit: what Node can write) stays opaque in `map`: written back as it
/// was, and only reading that field fails.
pub(super) struct Fields {
    raw: Data,
    map: Option<Arc<Parsed>>,
    /// A write happened since `raw` was loaded.
    dirty: bool,
    /// Fields read from `raw` without parsing it into `map`.
    scans: u8,
}

/// Reads of single fields served by scanning the text before the fields are parsed into a
/// map once for all (a handler that reads one or two fields never builds the map).
const SCANS_BEFORE_PARSING: u8 = 2;

impl Fields {
    pub(super) fn new(raw: Data) -> Self {
        Fields {
            raw,
            map: None,
            dirty: false,
            scans: 0,
        }
    }

    /// One field, converted from JSON.
    pub(super) fn get<T: DeserializeOwned>(&mut self, key: &str) -> Result<Option<T>, Error> {
        if self.map.is_none() && self.scans < SCANS_BEFORE_PARSING {
            self.scans += 1;
            // On an error (text that is not a JSON object, or a value that is not a `T`) the
            // map below gives the same answer and error as without the scan.
            if let Ok(v) = self.raw.field(key) {
                return Ok(v);
            }
        }
        let parsed = self.map()?;
        match parsed.values.get(key) {
            Some(v) => Ok(Some(T::deserialize(v)?)),
            // A `T` may read what a `Value` cannot (or fails with serde_json's reason).
            None => match parsed.opaque(key) {
                Some(o) => Ok(Some(serde_json::from_str(&o.value)?)),
                None => Ok(None),
            },
        }
    }

    /// One field as a `Value`; an error for a field that cannot be decoded.
    pub(super) fn value(&mut self, key: &str) -> Result<Option<Value>, Error> {
        let parsed = self.map()?;
        if let Some(o) = parsed.opaque(key) {
            return Err(Error::Value(o.error()));
        }
        Ok(parsed.values.get(key).cloned())
    }

    /// Every field as a `Value`; an error naming the first field that cannot be decoded.
    pub(super) fn values(&mut self) -> Result<Map<String, Value>, Error> {
        let parsed = self.map()?;
        if let Some(o) = parsed.opaque.first() {
            return Err(Error::Value(serde::de::Error::custom(o)));
        }
        Ok(parsed.values.clone())
    }

    pub(super) fn map(&mut self) -> Result<&Arc<Parsed>, Error> {
        if self.map.is_none() {
            self.map = Some(Arc::new(self.raw.parse()?));
        }
        Ok(self.map.get_or_insert_with(Default::default))
    }

    pub(super) fn map_mut(&mut self) -> Result<&mut Parsed, Error> {
        self.map()?;
        self.dirty = true;
        Ok(Arc::make_mut(self.map.get_or_insert_with(Default::default)))
    }

    pub(super) fn snap(&self) -> Snap {
        match (&self.map, self.dirty) {
            (Some(m), true) => Snap::Map(m.clone()),
            _ => Snap::Text(self.raw.clone()),
        }
    }

    pub(super) fn data(&self) -> Data {
        match (&self.map, self.dirty) {
            (Some(m), true) => Data::from_parsed(m),
            _ => self.raw.clone(),
        }
    }

    pub(super) fn equals(&mut self, snap: &Snap) -> Result<bool, Error> {
        if !self.dirty {
            if let Snap::Text(t) = snap {
                if *t == self.raw {
                    return Ok(true);
                }
            }
        }
        let other = match snap {
            Snap::Text(t) => Arc::new(t.parse()?),
            Snap::Map(m) => m.clone(),
        };
        Ok(**self.map()? == *other)
    }
}

/// The changes from `base` to `current`; `None` when they cannot be said as [`Change`]s
/// (an opaque field that is new or different, or one without a name that went).
pub(super) fn diff(base: &Parsed, current: &Parsed) -> Option<Vec<Change>> {
    if current.opaque.iter().any(|o| !base.opaque.contains(o)) {
        return None;
    }
    let mut out = Vec::new();
    for o in &base.opaque {
        if current.opaque.contains(o) {
            continue;
        }
        let name = o.name.as_ref()?;
        // A field set over it is a `Set` below.
        if !current.values.contains_key(name) {
            out.push(Change::Remove(name.clone()));
        }
    }
    for k in base.values.keys() {
        if !current.contains(k) {
            out.push(Change::Remove(k.clone()));
        }
    }
    for (k, v) in &current.values {
        if base.values.get(k) != Some(v) {
            out.push(Change::Set(k.clone(), v.clone()));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_lists_sets_and_removes() {
        let parsed = |v: serde_json::Value| Parsed {
            values: v.as_object().unwrap().clone(),
            opaque: Vec::new(),
        };
        let a = parsed(json!({"a": 1, "b": 2, "c": 3}));
        let b = parsed(json!({"a": 1, "b": 5, "d": 4}));
        let d = diff(&a, &b).unwrap();
        assert_eq!(
            d,
            vec![
                Change::Remove("c".into()),
                Change::Set("b".into(), json!(5)),
                Change::Set("d".into(), json!(4)),
            ]
        );
    }

    #[test]
    fn diff_removes_opaque_fields_by_name_and_gives_up_without_one() {
        let base = Parsed::parse(r#"{"a":1,"lone":"\ud800","\ud800":2}"#).unwrap();
        assert_eq!(base.opaque.len(), 2);
        // Unchanged: nothing to send.
        assert_eq!(diff(&base, &base), Some(Vec::new()));
        // The named one removed, another set over it: field changes.
        let mut current = base.clone();
        current.remove("lone");
        assert_eq!(
            diff(&base, &current),
            Some(vec![Change::Remove("lone".into())])
        );
        current.insert("lone".into(), json!("ok"));
        assert_eq!(
            diff(&base, &current),
            Some(vec![Change::Set("lone".into(), json!("ok"))])
        );
        // Cleared: the field without a name cannot be removed by name.
        assert_eq!(diff(&base, &Parsed::default()), None);
    }
}
