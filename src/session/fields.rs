//! The fields of a session: as loaded, parsed on demand, written back, and compared with a
//! snapshot (what was loaded, saved or stored) to find what a request changed.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::Error;
use crate::record::{Data, Parsed};

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
        match parsed.get(key) {
            Some(v) => Ok(Some(T::deserialize(v)?)),
            // A `T` may read what a `Value` cannot (or fails with serde_json's reason).
            None => match parsed.opaque(key) {
                Some(o) => Ok(Some(serde_json::from_str(o.value)?)),
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
        Ok(parsed.get(key).cloned())
    }

    /// Every field as a `Value`; an error naming the first field that cannot be decoded.
    pub(super) fn values(&mut self) -> Result<Map<String, Value>, Error> {
        let parsed = self.map()?;
        if let Some(o) = parsed
            .first_opaque()
            .filter(|o| !o.name.is_some_and(super::reserved::is_reserved))
        {
            return Err(Error::Value(serde::de::Error::custom(o)));
        }
        let mut map = parsed.to_map();
        map.retain(|k, _| !super::reserved::is_reserved(k));
        Ok(map)
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
