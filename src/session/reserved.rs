//! Reserved fields: session fields whose name starts with [`PREFIX`] hold sessile's own data
//! in the stored record (a creation time, a renewal's redirect), where a Node app sharing the
//! store keeps them (express-session writes back every field of `req.session`).
//!
//! [`Session`](super::Session)'s public methods never show them and refuse to set or remove
//! them; the layer reads and writes them through `Session::reserved`/`set_reserved`. The keys
//! and their JSON types are listed in docs/FORMAT.md ("Reserved keys").

/// The prefix of every reserved field name.
pub(crate) const PREFIX: &str = "__sessile_";

/// When the session was first saved: ms since the Unix epoch (a JSON number). Carried over
/// by `cycle_id`; a `regenerate` starts a new session, stamped when it is saved.
pub(crate) const CREATED: &str = "__sessile_created";

/// When the session's id was last renewed (`cycle_id`, `regenerate`): ms since the Unix
/// epoch (a JSON number). Written only when `max_lifetime` is configured.
pub(crate) const RENEWED: &str = "__sessile_renewed";

/// In the redirect record left under an id renewed with a grace (`renew_grace`): the new id
/// (a JSON string).
pub(crate) const RENEWED_TO: &str = "__sessile_renewed_to";

/// In the redirect record: until when the old id resolves to the new one, ms since the Unix
/// epoch (a JSON number).
pub(crate) const RENEWED_UNTIL: &str = "__sessile_renewed_until";

/// Whether `key` is a reserved field name.
pub(crate) fn is_reserved(key: &str) -> bool {
    key.starts_with(PREFIX)
}

/// The reserved fields a session keeps when its id changes (`cycle_id`): the others belong
/// to the old id.
pub(crate) fn carried_on_cycle(key: &str) -> bool {
    key == CREATED || key == crate::store::OWNER_KEY || key == crate::store::OWNER_SINCE_KEY
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::error::Error;
    use crate::record::{CookieRecord, Data, Record};
    use crate::{Session, SessionLayer};

    fn detached() -> (SessionLayer, Session) {
        let layer = SessionLayer::builder().secret("s").build().unwrap();
        let session = layer.detached_session().unwrap();
        (layer, session)
    }

    #[test]
    fn reserved_names_are_refused_by_insert_and_remove() {
        let (_, session) = detached();
        for key in [CREATED, "__sessile_anything", PREFIX] {
            let err = session.insert(key, 1).unwrap_err();
            assert!(
                matches!(&err, Error::ReservedField(k) if k == key),
                "{err:?}"
            );
            assert!(err.to_string().contains("reserved by the session"), "{err}");
            let err = session.remove(key).unwrap_err();
            assert!(
                matches!(&err, Error::ReservedField(k) if k == key),
                "{err:?}"
            );
        }
        // Only the prefix is reserved.
        session.insert("__sessile", 1).unwrap();
        session.insert("_sessile_created", 1).unwrap();
    }

    #[test]
    fn reserved_fields_are_hidden_from_the_handler() {
        let (_, session) = detached();
        session.set_reserved(CREATED, Some(json!(5))).unwrap();
        session.insert("user", "alice").unwrap();
        assert_eq!(session.reserved(CREATED).unwrap(), Some(json!(5)));
        assert_eq!(session.get::<i64>(CREATED).unwrap(), None);
        assert_eq!(session.get_value(CREATED).unwrap(), None);
        let data = session.data().unwrap();
        assert_eq!(data.keys().collect::<Vec<_>>(), ["user"]);
    }

    #[test]
    fn clear_keeps_reserved_fields_and_changes_nothing_without_others() {
        let (_, session) = detached();
        session.set_reserved(CREATED, Some(json!(5))).unwrap();
        session.insert("user", "alice").unwrap();
        session.clear().unwrap();
        assert!(session.data().unwrap().is_empty());
        assert_eq!(session.reserved(CREATED).unwrap(), Some(json!(5)));
    }

    #[tokio::test]
    async fn a_loaded_record_keeps_its_reserved_fields_when_written_back() {
        let (layer, session) = detached();
        let record = Record {
            cookie: CookieRecord::default(),
            data: Data::from_json_text(r#"{"__sessile_created":7,"user":"alice"}"#).unwrap(),
        };
        let id = session.id().unwrap();
        layer.store().set(&id, &record).await.unwrap();
        session.reload().await.unwrap();
        assert_eq!(
            session.get::<String>("user").unwrap().as_deref(),
            Some("alice")
        );
        assert_eq!(session.get_value(CREATED).unwrap(), None);
        session.clear().unwrap();
        session.insert("views", 1).unwrap();
        session.save().await.unwrap();
        let stored = layer.store().get(&id).await.unwrap().unwrap();
        assert_eq!(stored.data.as_str(), r#"{"__sessile_created":7,"views":1}"#);
    }

    #[tokio::test]
    async fn a_new_id_keeps_only_the_reserved_fields_sessile_carries_over() {
        let (_, session) = detached();
        session.set_reserved(CREATED, Some(json!(5))).unwrap();
        session.set_reserved(RENEWED_TO, Some(json!("x"))).unwrap();
        session.insert("user", "alice").unwrap();
        session.cycle_id().await.unwrap();
        assert_eq!(session.reserved(CREATED).unwrap(), Some(json!(5)));
        assert_eq!(session.reserved(RENEWED_TO).unwrap(), None);
        assert_eq!(
            session.get::<String>("user").unwrap().as_deref(),
            Some("alice")
        );
        session.regenerate().await.unwrap();
        assert_eq!(session.reserved(CREATED).unwrap(), None);
    }

    #[test]
    fn setting_a_reserved_field_is_a_modification_and_setting_it_again_is_none() {
        let (_, session) = detached();
        session.set_reserved(CREATED, Some(json!(5))).unwrap();
        assert!(session.is_modified().unwrap());
        session.set_reserved(CREATED, None).unwrap();
        assert!(!session.is_modified().unwrap());
    }
}
