//! A session's new id: the old id destroyed at once (express), or, with `renew_grace`,
//! replaced by a short-lived redirect record that resolves it to the new session.

use std::time::Duration;

use serde_json::{json, Value};

use super::fields::Snap;
use super::reserved;
use super::Session;
use crate::clock;
use crate::error::Error;
use crate::record::{CookieRecord, Data, Record};

/// The start of a redirect record's fields: its first field is [`reserved::RENEWED_TO`], so
/// a load tells a redirect from a session without reading the record.
const REDIRECT_HEAD: &str = "{\"__sessile_renewed_to\":";

/// The redirect record left under a renewed id: the new id, until `until` (ms), living
/// `grace` in the store.
pub(crate) fn redirect_record(to: &str, until: i64, grace: Duration) -> Record {
    let ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
    let cookie = CookieRecord {
        expires: Some(until),
        original_max_age: Some(ms),
        ..CookieRecord::default()
    };
    // Written by hand: the order `REDIRECT_HEAD` needs, whatever order a `Map` keeps.
    let text = format!(
        "{REDIRECT_HEAD}{},\"{}\":{until}}}",
        Value::String(to.to_owned()),
        reserved::RENEWED_UNTIL
    );
    Record {
        cookie,
        data: Data::from_trusted(&text),
    }
}

/// Where a redirect record leads: the new id, and until when (ms). `None` for a record
/// that is not a redirect.
pub(crate) fn redirect_target(data: &Data) -> Option<(String, i64)> {
    if !data.as_str().starts_with(REDIRECT_HEAD) {
        return None;
    }
    let to = data.field::<String>(reserved::RENEWED_TO).ok().flatten()?;
    let until = data
        .field::<i64>(reserved::RENEWED_UNTIL)
        .ok()
        .flatten()
        .unwrap_or(i64::MIN);
    Some((to, until))
}

impl Session {
    /// Gives the session the new id `new` (its fields as the caller left them) and ends
    /// `old`: destroyed, or with `renew_grace` the new session is saved now and `old`
    /// becomes a redirect to it.
    pub(super) async fn renew(&self, old: &str) -> Result<(), Error> {
        let config = &self.inner.config;
        let (grace, new, record, snap) = {
            let mut st = self.inner.state.lock();
            if config.max_lifetime.is_some() {
                st.set_reserved(reserved::RENEWED, Some(json!(clock::now_ms())))?;
            }
            let Some(grace) = config.renew_grace else {
                return Ok(());
            };
            // The whole record, so the redirect never leads to a session not yet stored.
            let record = Record {
                cookie: st.cookie.clone(),
                data: st.fields.data(),
            };
            (grace, st.id.clone(), record, st.fields.snap())
        };
        config.store.set(&new, &record).await?;
        self.after_early_save(&new, snap);
        let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        let until = clock::now_ms().saturating_add(grace_ms);
        config
            .store
            .set(old, &redirect_record(&new, until, grace))
            .await?;
        Ok(())
    }

    /// The session was saved under `id` as `snap` by the renewal.
    fn after_early_save(&self, id: &str, snap: Snap) {
        let mut st = self.inner.state.lock();
        if st.id == id {
            st.persisted = Some(snap);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_record_is_told_apart_by_its_head() {
        let r = redirect_record("new\"id", 1234, Duration::from_secs(5));
        assert_eq!(
            r.data.as_str(),
            r#"{"__sessile_renewed_to":"new\"id","__sessile_renewed_until":1234}"#
        );
        assert_eq!(redirect_target(&r.data), Some(("new\"id".into(), 1234)));
        assert_eq!(r.cookie.expires, Some(1234));
        let session = Data::from_json_text(r#"{"user":"a","__sessile_renewed_to":"x"}"#).unwrap();
        assert_eq!(redirect_target(&session), None);
    }
}
