//! A conformance suite for [`SessionStore`] implementations.
//!
//! The suite checks express-session's store semantics as this crate's layer relies on them:
//!
//! | check | what it proves |
//! | --- | --- |
//! | [`check_get_missing`] | `get` of an id never written is `Ok(None)` |
//! | [`check_set_get`] | `set` then `get` returns the same record: every cookie field, `expires` to the millisecond, and JSON-equal data |
//! | [`check_set_replaces`] | a second `set` replaces the record as a whole (no merge of fields) |
//! | [`check_destroy`] | `destroy` removes one record and no other; destroying a missing id is `Ok` |
//! | [`check_touch`] | `touch` stores the new cookie (and expiry) and keeps the data; a missing id stays missing |
//! | [`check_create`] | `create` stores only where no live record is (an expired one counts as absent) and never overwrites; of 50 racing creates of one id exactly one wins |
//! | [`check_apply`] | `apply` applies `Set`/`Remove` changes in order and stores the new cookie |
//! | [`check_apply_missing`] | `apply` on a missing or destroyed id is [`Applied::Missing`] and writes nothing |
//! | [`check_expiry`] | a record whose `cookie.expires` passes (set that way, or shortened by `touch` or `apply`) disappears from `get`, `all` and `len` |
//! | [`check_expired_on_arrival`] | a record whose `expires` has already passed is never returned, and replacing a live record with one removes it |
//! | [`check_all_and_len`] | `all` returns live records by id, only live ones; `len` counts them |
//! | [`check_concurrent_apply`] | 50 `apply` calls on one id, all in flight together, each changing its own field: every change survives |
//! | [`check_large_values`] | a record of more than 100 KB of data round-trips |
//! | [`check_odd_ids`] | ids with `%`, `/`, spaces, unicode and glob characters (`*`, `?`, `[`) are stored as exact, distinct keys |
//! | [`check_undecodable_fields`] | a record as Node writes it, with a lone UTF-16 surrogate in one field and nesting 200 and 100,000 deep in others, reads, keeps those fields byte for byte through `apply` and `touch`, and counts in `all`/`len` |
//! | [`check_owners`] | `sessions_of` lists an owner's live sessions (written by `set`, `create` or `apply`), oldest owner first, and no longer those destroyed, expired or given another owner; `destroy_all_of` destroys them all but the one excepted, and no one else's |
//! | [`check_clear`] | **destructive**: `clear` empties the store, which keeps working afterwards |
//!
//! [`run`] runs every check but the destructive one; [`run_destructive`] runs them all. Each
//! check is also a public function, so a store's own tests can run or skip one by name.
//!
//! # Running it against a store that holds other data
//!
//! Every record a check writes lives under an id made of a fresh random prefix
//! ([`crate::id::generate`]), and every check destroys what it wrote, whether it passed or
//! not (should that cleanup fail too, the records left expire within ten minutes, except a
//! few browser-session ones, which the store's own idle expiry must handle). Only [`check_clear`] (and so [`run_destructive`]) calls `clear`. The checks of
//! `len` compare counts taken just before and just after a change of their own, so they
//! hold on a store full of other sessions as long as those do not change in between; run
//! the suite against a quiet store (or retry a `len` failure) if others write to it.
//!
//! The suite takes about a second: [`check_expiry`] and [`check_create`] wait for records
//! to expire. It
//! does not need a particular async runtime (its one timer runs on a helper thread), and
//! its futures are `Send`, so it can run inside `tokio::spawn`.
//!
//! # Example
//!
//! ```
//! use sessile::store::suite;
//! use sessile::EmbeddedStore;
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() {
//!     // On a store other code also uses: only the non-destructive checks.
//!     let shared = EmbeddedStore::new();
//!     if let Err(failure) = suite::run(&shared).await {
//!         panic!("{failure}");
//!     }
//!
//!     // On a store of the test's own, the destructive check (`clear`) too.
//!     let own = EmbeddedStore::builder().shards(1).build();
//!     suite::run_destructive(&own).await.expect("EmbeddedStore conforms");
//!
//!     // Or one check at a time.
//!     suite::check_concurrent_apply(&own).await.expect("no lost update");
//! }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::clock;
use crate::error::StoreError;
use crate::record::{Change, Changes, CookieRecord, Data, Priority, Record, SameSite};
use crate::store::{Applied, Created, OwnedSession, SessionStore};

/// A check of the suite that did not hold: which check, and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteFailure {
    check: &'static str,
    message: String,
}

impl SuiteFailure {
    /// A failure of `check` (the check function's name without `check_`).
    pub fn new(check: &'static str, message: impl Into<String>) -> Self {
        SuiteFailure {
            check,
            message: message.into(),
        }
    }

    /// The name of the check that failed, e.g. `"touch"` for [`check_touch`].
    pub fn check(&self) -> &'static str {
        self.check
    }

    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for SuiteFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "session store check `{}` failed: {}",
            self.check, self.message
        )
    }
}

impl std::error::Error for SuiteFailure {}

/// Runs every check except the destructive [`check_clear`], stopping at the first failure.
///
/// Safe on a store that holds other sessions (see the module documentation).
pub async fn run<S: SessionStore + ?Sized>(store: &S) -> Result<(), SuiteFailure> {
    check_get_missing(store).await?;
    check_set_get(store).await?;
    check_set_replaces(store).await?;
    check_destroy(store).await?;
    check_touch(store).await?;
    check_apply(store).await?;
    check_apply_missing(store).await?;
    check_expiry(store).await?;
    check_expired_on_arrival(store).await?;
    check_create(store).await?;
    check_all_and_len(store).await?;
    check_concurrent_apply(store).await?;
    check_large_values(store).await?;
    check_odd_ids(store).await?;
    check_undecodable_fields(store).await?;
    check_owners(store).await?;
    Ok(())
}

/// Runs [`run`] and then the destructive [`check_clear`], which **removes every record in
/// the store**. Only for a store that holds nothing else.
pub async fn run_destructive<S: SessionStore + ?Sized>(store: &S) -> Result<(), SuiteFailure> {
    run(store).await?;
    check_clear(store).await
}

/// `get` of an id that was never written is `Ok(None)`.
pub async fn check_get_missing<S: SessionStore + ?Sized>(store: &S) -> Result<(), SuiteFailure> {
    let t = Scope::new(store, "get_missing")?;
    let result = get_missing(&t).await;
    t.finish(result).await
}

/// `set` then `get` returns the same record: every cookie field (including `expires` to the
/// millisecond, and a browser-session cookie's missing `expires`) and JSON-equal data; a
/// second `get` returns it again.
pub async fn check_set_get<S: SessionStore + ?Sized>(store: &S) -> Result<(), SuiteFailure> {
    let t = Scope::new(store, "set_get")?;
    let result = set_get(&t).await;
    t.finish(result).await
}

/// A second `set` of an id replaces the whole record: fields of the first record that the
/// second lacks are gone, and the cookie is the second one.
pub async fn check_set_replaces<S: SessionStore + ?Sized>(store: &S) -> Result<(), SuiteFailure> {
    let t = Scope::new(store, "set_replaces")?;
    let result = set_replaces(&t).await;
    t.finish(result).await
}

/// `destroy` removes the record (and no other); destroying it again, or an id never
/// written, is `Ok`.
pub async fn check_destroy<S: SessionStore + ?Sized>(store: &S) -> Result<(), SuiteFailure> {
    let t = Scope::new(store, "destroy")?;
    let result = destroy(&t).await;
    t.finish(result).await
}

/// `touch` stores the new cookie, whether only its expiry moved (later or earlier) or other
/// attributes changed too, and leaves the data as it was; `touch` of a missing or destroyed
/// id does not create it.
pub async fn check_touch<S: SessionStore + ?Sized>(store: &S) -> Result<(), SuiteFailure> {
    let t = Scope::new(store, "touch")?;
    let result = touch(&t).await;
    t.finish(result).await
}

/// `create` (insert if absent) of an id never written stores the record; a second `create`
/// with another record returns [`Created::Exists`] and leaves the first one as it was;
/// after `destroy`, and once a record's `expires` has passed, the id is free again
/// (waits about 300 ms for that); a record already expired on arrival is not stored and
/// does not displace a live one. Then 50 creates of one fresh id, each with its own
/// record, all in flight together: exactly one returns [`Created::Created`] and its
/// record is the one stored.
pub async fn check_create<S: SessionStore + ?Sized>(store: &S) -> Result<(), SuiteFailure> {
    let t = Scope::new(store, "create")?;
    let result = create(&t).await;
    t.finish(result).await
}

/// `apply` on a live record applies `Set` and `Remove` changes in order (leaving other
/// fields alone) and stores the new cookie; with no field changes it only stores the cookie.
pub async fn check_apply<S: SessionStore + ?Sized>(store: &S) -> Result<(), SuiteFailure> {
    let t = Scope::new(store, "apply")?;
    let result = apply(&t).await;
    t.finish(result).await
}

/// `apply` on an id never written, or destroyed, returns [`Applied::Missing`] and writes
/// nothing.
pub async fn check_apply_missing<S: SessionStore + ?Sized>(store: &S) -> Result<(), SuiteFailure> {
    let t = Scope::new(store, "apply_missing")?;
    let result = apply_missing(&t).await;
    t.finish(result).await
}

/// Records whose `cookie.expires` passes are not returned by `get` or `all` nor counted by
/// `len`: one set to expire in 300 ms, one whose expiry `touch` shortened to that, and one
/// whose expiry `apply` shortened to that. A live record beside them stays. Waits about
/// 450 ms.
pub async fn check_expiry<S: SessionStore + ?Sized>(store: &S) -> Result<(), SuiteFailure> {
    let t = Scope::new(store, "expiry")?;
    let result = expiry(&t).await;
    t.finish(result).await
}

/// A record whose `cookie.expires` has already passed is never returned by `get` or `all`
/// nor counted by `len`; `set` of such a record over a live one leaves the id missing.
pub async fn check_expired_on_arrival<S: SessionStore + ?Sized>(
    store: &S,
) -> Result<(), SuiteFailure> {
    let t = Scope::new(store, "expired_on_arrival")?;
    let result = expired_on_arrival(&t).await;
    t.finish(result).await
}

/// `all` returns every live record of the check under its id (equal to what was set) and
/// no record whose `expires` has passed; `len` counts each live record once.
pub async fn check_all_and_len<S: SessionStore + ?Sized>(store: &S) -> Result<(), SuiteFailure> {
    let t = Scope::new(store, "all_and_len")?;
    let result = all_and_len(&t).await;
    t.finish(result).await
}

/// 50 `apply` calls on one id, issued together (all in flight at once on the calling task),
/// each setting its own field and removing another: every call returns
/// [`Applied::Applied`] and the final record holds all 50 changes, i.e. `apply` is atomic
/// per call and no call overwrites another's change.
///
/// A store whose calls complete without awaiting anything (like the embedded store) runs
/// them one after the other here; its multi-threaded behaviour needs a test of its own.
pub async fn check_concurrent_apply<S: SessionStore + ?Sized>(
    store: &S,
) -> Result<(), SuiteFailure> {
    let t = Scope::new(store, "concurrent_apply")?;
    let result = concurrent_apply(&t).await;
    t.finish(result).await
}

/// A record with a 100 KB string field (with multi-byte characters and JSON escapes) and a
/// 2,000-element array round-trips through `set`, `get`, `apply` and `all`.
pub async fn check_large_values<S: SessionStore + ?Sized>(store: &S) -> Result<(), SuiteFailure> {
    let t = Scope::new(store, "large_values")?;
    let result = large_values(&t).await;
    t.finish(result).await
}

/// Ids containing `%`, `%25`, `/`, spaces, quotes, backslashes, unicode, `:`/`.` and glob
/// characters (`*`, `?`, `[a-z]`) are exact keys: each round-trips under its own id,
/// `all` lists it under that id, and destroying one (`*` included) removes no other.
pub async fn check_odd_ids<S: SessionStore + ?Sized>(store: &S) -> Result<(), SuiteFailure> {
    let t = Scope::new(store, "odd_ids")?;
    let result = odd_ids(&t).await;
    t.finish(result).await
}

/// A record as Node's `JSON.stringify` writes it, whose fields beside ordinary ones hold what
/// this crate cannot decode into a `serde_json::Value`: a string with a lone UTF-16
/// surrogate (`"x\ud800y"`, what JavaScript's `'👍'.slice(0, 1)` gives), an array nested
/// 200 deep (past serde_json's recursion limit) and one nested 100,000 deep. The record
/// reads; its ordinary fields decode; the odd fields come back byte for byte after `set`,
/// after an `apply` of other fields and after `touch`; `all` returns it and `len` counts
/// it; `destroy` removes it.
pub async fn check_undecodable_fields<S: SessionStore + ?Sized>(
    store: &S,
) -> Result<(), SuiteFailure> {
    let t = Scope::new(store, "undecodable_fields")?;
    let result = undecodable_fields(&t).await;
    t.finish(result).await
}

/// Sessions by owner (the reserved field [`OWNER_KEY`](crate::store::OWNER_KEY)):
/// `sessions_of` lists an owner's live sessions, whether the owner came with `set`, `create`
/// or `apply`, oldest owner first (by [`OWNER_SINCE_KEY`](crate::store::OWNER_SINCE_KEY)),
/// each with its record, and still after a `touch`; not a session given another owner, nor
/// one destroyed, nor one whose `expires` passed (waits about 450 ms), nor another owner's.
/// `destroy_all_of` destroys all the owner's sessions but the one excepted, returns how
/// many, and leaves other owners' and unowned sessions alone.
pub async fn check_owners<S: SessionStore + ?Sized>(store: &S) -> Result<(), SuiteFailure> {
    let t = Scope::new(store, "owners")?;
    let result = owners(&t).await;
    t.finish(result).await
}

/// **Destructive: removes every record in the store.** `clear` leaves `get`, `all` and
/// `len` empty, and the store accepts and returns records afterwards.
pub async fn check_clear<S: SessionStore + ?Sized>(store: &S) -> Result<(), SuiteFailure> {
    let t = Scope::new(store, "clear")?;
    let result = clear(&t).await;
    t.finish(result).await
}

// ---------------------------------------------------------------------------------------
// The checks.

async fn get_missing<S: SessionStore + ?Sized>(t: &Scope<'_, S>) -> Result<(), SuiteFailure> {
    let id = t.id("never-written");
    t.expect_missing(&id, "an id never written").await?;
    // Asking twice must not create it either.
    t.expect_missing(&id, "an id never written, asked again")
        .await
}

async fn set_get<S: SessionStore + ?Sized>(t: &Scope<'_, S>) -> Result<(), SuiteFailure> {
    let now = clock::now_ms();
    let full = Record {
        // A millisecond part that a store rounding to seconds would lose.
        cookie: full_cookie(Some(now + 600_123)),
        data: data(json!({
            "user": {"name": "alice", "roles": ["admin", "dev"]},
            "views": 42,
            "ratio": 1.5,
            "flag": true,
            "nothing": null,
            "text": "é \"quoted\" \\ back\nslash\t✓ 🦀",
            "list": [1, "two", {"three": 3}, [4]],
            "empty": {},
        })),
    };
    let browser = Record {
        cookie: CookieRecord::default(),
        data: Data::empty(),
    };
    let strict = Record {
        cookie: CookieRecord {
            original_max_age: Some(300_000),
            expires: Some(now + 299_999),
            secure: Some(false),
            http_only: true,
            domain: None,
            path: Arc::from("/"),
            same_site: Some(SameSite::True),
            partitioned: Some(false),
            priority: Some(Priority::Low),
        },
        data: data(json!({"n": -7, "big": 9_007_199_254_740_993_i64})),
    };
    for (name, record) in [
        ("full", &full),
        ("browser-session", &browser),
        ("strict", &strict),
    ] {
        let id = t.id(name);
        t.set(&id, record).await?;
        t.expect_record(&id, record, &format!("the {name} record after set"))
            .await?;
        t.expect_record(&id, record, &format!("the {name} record, read again"))
            .await?;
    }
    Ok(())
}

async fn set_replaces<S: SessionStore + ?Sized>(t: &Scope<'_, S>) -> Result<(), SuiteFailure> {
    let now = clock::now_ms();
    let id = t.id("replaced");
    let first = Record {
        cookie: full_cookie(Some(now + 600_000)),
        data: data(json!({"a": 1, "b": {"deep": true}, "shared": "first"})),
    };
    let second = Record {
        cookie: CookieRecord {
            original_max_age: Some(120_000),
            expires: Some(now + 120_000),
            ..CookieRecord::default()
        },
        data: data(json!({"c": 3, "shared": "second"})),
    };
    t.set(&id, &first).await?;
    t.set(&id, &second).await?;
    t.expect_record(&id, &second, "after a second set").await?;
    // And back to a record with no fields at all.
    let empty = Record {
        cookie: second.cookie.clone(),
        data: Data::empty(),
    };
    t.set(&id, &empty).await?;
    t.expect_record(&id, &empty, "after a set with no fields")
        .await
}

async fn destroy<S: SessionStore + ?Sized>(t: &Scope<'_, S>) -> Result<(), SuiteFailure> {
    let now = clock::now_ms();
    let gone = t.id("destroyed");
    let kept = t.id("kept");
    let record = Record {
        cookie: full_cookie(Some(now + 600_000)),
        data: data(json!({"x": 1})),
    };
    t.set(&gone, &record).await?;
    t.set(&kept, &record).await?;
    t.destroy(&gone).await?;
    t.expect_missing(&gone, "after destroy").await?;
    t.expect_record(&kept, &record, "another id, after destroying its neighbour")
        .await?;
    t.destroy(&gone).await?;
    t.expect_missing(&gone, "after a second destroy").await?;
    let never = t.id("never-written");
    t.destroy(&never).await?;
    t.expect_missing(&never, "after destroying an id never written")
        .await
}

async fn touch<S: SessionStore + ?Sized>(t: &Scope<'_, S>) -> Result<(), SuiteFailure> {
    let now = clock::now_ms();
    let id = t.id("touched");
    let fields = data(json!({"a": 1, "nested": {"b": [1, 2]}}));
    let record = Record {
        cookie: full_cookie(Some(now + 60_000)),
        data: fields.clone(),
    };
    t.set(&id, &record).await?;

    // Only the expiry moves, later (what a rolling session sends on every request).
    let later = full_cookie(Some(now + 120_007));
    t.touch(&id, &later).await?;
    let expected = Record {
        cookie: later,
        data: fields.clone(),
    };
    t.expect_record(&id, &expected, "after a touch that moved expires later")
        .await?;

    // Other attributes change and the expiry moves earlier.
    let changed = CookieRecord {
        original_max_age: Some(90_000),
        expires: Some(now + 90_011),
        secure: Some(false),
        same_site: Some(SameSite::Strict),
        priority: None,
        ..full_cookie(None)
    };
    t.touch(&id, &changed).await?;
    let expected = Record {
        cookie: changed,
        data: fields.clone(),
    };
    t.expect_record(
        &id,
        &expected,
        "after a touch that changed attributes and moved expires earlier",
    )
    .await?;

    // Other attributes change and the expiry moves later.
    let changed_later = CookieRecord {
        expires: Some(now + 150_013),
        same_site: Some(SameSite::None),
        partitioned: None,
        ..full_cookie(None)
    };
    t.touch(&id, &changed_later).await?;
    let expected = Record {
        cookie: changed_later,
        data: fields.clone(),
    };
    t.expect_record(
        &id,
        &expected,
        "after a touch that changed attributes and moved expires later",
    )
    .await?;

    // A browser-session record keeps having no expiry.
    let browser = t.id("browser-session");
    let record = Record {
        cookie: CookieRecord::default(),
        data: fields.clone(),
    };
    t.set(&browser, &record).await?;
    t.touch(&browser, &CookieRecord::default()).await?;
    t.expect_record(&browser, &record, "a browser-session record after touch")
        .await?;

    // Touch never creates.
    let missing = t.id("never-written");
    t.touch(&missing, &full_cookie(Some(now + 60_000))).await?;
    t.expect_missing(&missing, "after touching an id never written")
        .await?;
    t.destroy(&id).await?;
    t.touch(&id, &full_cookie(Some(now + 60_000))).await?;
    t.expect_missing(&id, "after touching a destroyed id").await
}

async fn create<S: SessionStore + ?Sized>(t: &Scope<'_, S>) -> Result<(), SuiteFailure> {
    let now = clock::now_ms();
    let record = |who: &str, expires: i64| Record {
        cookie: full_cookie(Some(expires)),
        data: data(json!({ "user": who })),
    };
    let alice = record("alice", now + 600_000);
    let mallory = record("mallory", now + 600_000);
    let id = t.id("created");
    t.create_expect(&id, &alice, Created::Created, "an id never written")
        .await?;
    t.expect_record(&id, &alice, "after create").await?;
    t.create_expect(
        &id,
        &mallory,
        Created::Exists,
        "an id holding a live record",
    )
    .await?;
    t.expect_record(&id, &alice, "after a create that found a live record")
        .await?;

    // Already expired on arrival: over the live record it changes nothing; on a free id it
    // stores nothing.
    let past = record("past", now - 1_000);
    t.create_expect(
        &id,
        &past,
        Created::Exists,
        "a live id, with an expired record",
    )
    .await?;
    t.expect_record(
        &id,
        &alice,
        "after creating an expired record over a live one",
    )
    .await?;
    t.destroy(&id).await?;
    t.create_expect(
        &id,
        &past,
        Created::Created,
        "a destroyed id, with an expired record",
    )
    .await?;
    t.expect_missing(&id, "after creating an already expired record")
        .await?;
    t.create_expect(&id, &mallory, Created::Created, "a destroyed id")
        .await?;
    t.expect_record(&id, &mallory, "after create on a destroyed id")
        .await?;

    // An expired record counts as absent, whether or not the store has freed it yet.
    let soon = clock::now_ms() + 200;
    let expiring = t.id("expired");
    t.set(&expiring, &record("old", soon)).await?;
    sleep_until_ms(soon + 100).await;
    let fresh = record("new", clock::now_ms() + 600_000);
    t.create_expect(
        &expiring,
        &fresh,
        Created::Created,
        "an id whose record expired",
    )
    .await?;
    t.expect_record(&expiring, &fresh, "after create over an expired record")
        .await?;

    // The race: exactly one winner, and its record is the one stored.
    const TASKS: usize = 50;
    let raced = t.id("raced");
    let records: Vec<Record> = (0..TASKS)
        .map(|i| record(&format!("racer{i}"), now + 600_000))
        .collect();
    let calls = records.iter().map(|r| t.store.create(&raced, r)).collect();
    let results = JoinAll::new(calls).await;
    let mut winners = Vec::new();
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(Created::Created) => winners.push(i),
            Ok(Created::Exists) => {}
            Err(e) => return Err(t.fail(format!("racing create #{i} failed: {e}"))),
        }
    }
    let [winner] = winners[..] else {
        return Err(t.fail(format!(
            "{} of {TASKS} racing creates of one id returned Created (#{winners:?}), expected one",
            winners.len()
        )));
    };
    t.expect_record(&raced, &records[winner], "after racing creates")
        .await
}

async fn apply<S: SessionStore + ?Sized>(t: &Scope<'_, S>) -> Result<(), SuiteFailure> {
    let now = clock::now_ms();
    let id = t.id("applied");
    t.set(
        &id,
        &Record {
            cookie: full_cookie(Some(now + 60_000)),
            data: data(json!({"a": 1, "b": 2, "keep": "x", "gone": [1]})),
        },
    )
    .await?;
    let cookie = CookieRecord {
        original_max_age: Some(30_000),
        expires: Some(now + 30_003),
        ..full_cookie(None)
    };
    let changes = Changes {
        cookie: cookie.clone(),
        fields: vec![
            Change::Set("b".into(), json!(20)),
            Change::Remove("a".into()),
            Change::Set("d".into(), json!({"nested": ["x", {"y": null}]})),
            // Later changes win over earlier ones of the same field.
            Change::Set("gone".into(), json!("briefly")),
            Change::Remove("gone".into()),
            Change::Set("e".into(), json!(1)),
            Change::Set("e".into(), json!(2)),
            // Removing a field that does not exist is no error.
            Change::Remove("never".into()),
        ],
    };
    t.apply_expect(&id, &changes, Applied::Applied, "a live record")
        .await?;
    let expected = Record {
        cookie,
        data: data(json!({"b": 20, "keep": "x", "d": {"nested": ["x", {"y": null}]}, "e": 2})),
    };
    t.expect_record(&id, &expected, "after apply").await?;

    // No field changes: only the cookie is stored.
    let cookie = full_cookie(Some(now + 45_045));
    let changes = Changes {
        cookie: cookie.clone(),
        fields: Vec::new(),
    };
    t.apply_expect(&id, &changes, Applied::Applied, "no field changes")
        .await?;
    let expected = Record {
        cookie,
        data: expected.data,
    };
    t.expect_record(&id, &expected, "after an apply with no field changes")
        .await
}

async fn apply_missing<S: SessionStore + ?Sized>(t: &Scope<'_, S>) -> Result<(), SuiteFailure> {
    let now = clock::now_ms();
    let changes = Changes {
        cookie: full_cookie(Some(now + 60_000)),
        fields: vec![Change::Set("a".into(), json!(1))],
    };
    let never = t.id("never-written");
    t.apply_expect(&never, &changes, Applied::Missing, "an id never written")
        .await?;
    t.expect_missing(&never, "after apply on an id never written")
        .await?;

    let destroyed = t.id("destroyed");
    t.set(
        &destroyed,
        &Record {
            cookie: full_cookie(Some(now + 60_000)),
            data: Data::empty(),
        },
    )
    .await?;
    t.destroy(&destroyed).await?;
    t.apply_expect(&destroyed, &changes, Applied::Missing, "a destroyed id")
        .await?;
    t.expect_missing(&destroyed, "after apply on a destroyed id")
        .await?;

    let empty = Changes {
        cookie: full_cookie(Some(now + 60_000)),
        fields: Vec::new(),
    };
    t.apply_expect(
        &never,
        &empty,
        Applied::Missing,
        "an id never written, no field changes",
    )
    .await?;
    t.expect_missing(&never, "after an empty apply on an id never written")
        .await
}

async fn expiry<S: SessionStore + ?Sized>(t: &Scope<'_, S>) -> Result<(), SuiteFailure> {
    let start = clock::now_ms();
    let soon = start + 300;
    let fields = data(json!({"x": 1}));
    let set_soon = t.id("set-to-expire");
    let touched = t.id("touched-to-expire");
    let applied = t.id("applied-to-expire");
    let control = t.id("live");
    let later = |ms: i64| Record {
        cookie: full_cookie(Some(start + ms)),
        data: fields.clone(),
    };

    t.set(&set_soon, &later(300)).await?;
    t.set(&touched, &later(60_000)).await?;
    t.touch(&touched, &full_cookie(Some(soon))).await?;
    t.set(&applied, &later(60_000)).await?;
    let changes = Changes {
        cookie: full_cookie(Some(soon)),
        fields: vec![Change::Set("y".into(), json!(2))],
    };
    t.apply_expect(&applied, &changes, Applied::Applied, "a live record")
        .await?;
    let live = later(600_000);
    t.set(&control, &live).await?;

    let doomed = [
        (&set_soon, "a record set to expire in 300 ms"),
        (&touched, "a record whose expiry touch shortened to 300 ms"),
        (&applied, "a record whose expiry apply shortened to 300 ms"),
    ];
    // Before they expire they are there (skipped if the store was too slow to tell).
    for (id, what) in doomed {
        let found = t.get(id).await?;
        if clock::now_ms() < soon - 20 && found.is_none() {
            return Err(t.fail(format!(
                "{what}: get({id:?}) returned None before it expired"
            )));
        }
    }

    sleep_until_ms(soon + 150).await;

    for (id, what) in doomed {
        t.expect_missing(id, &format!("{what}, after it expired"))
            .await?;
    }
    t.expect_record(&control, &live, "a live record beside expired ones")
        .await?;
    let all = t.all().await?;
    for (id, what) in doomed {
        if all.contains_key(id) {
            return Err(t.fail(format!("{what}: all() still returns it after it expired")));
        }
    }
    if !all.contains_key(&control) {
        return Err(t.fail(format!("all() lacks the live record {control:?}")));
    }

    // `len` must not count the expired records: removing them changes nothing.
    let with_expired = t.len().await?;
    for (id, _) in doomed {
        t.destroy(id).await?;
    }
    let without = t.len().await?;
    if with_expired != without {
        return Err(t.fail(format!(
            "len() counts expired records: {with_expired} with 3 expired records present, \
             {without} once they were destroyed"
        )));
    }
    Ok(())
}

async fn expired_on_arrival<S: SessionStore + ?Sized>(
    t: &Scope<'_, S>,
) -> Result<(), SuiteFailure> {
    let now = clock::now_ms();
    let past = Record {
        cookie: full_cookie(Some(now - 1_000)),
        data: data(json!({"stale": true})),
    };
    let epoch = Record {
        cookie: full_cookie(Some(0)),
        data: Data::empty(),
    };
    let a = t.id("past");
    let b = t.id("epoch");
    let mut counted = None;
    for _ in 0..3 {
        let before = t.len().await?;
        t.set(&a, &past).await?;
        t.set(&b, &epoch).await?;
        let after = t.len().await?;
        if before == after {
            counted = None;
            break;
        }
        counted = Some((before, after));
        t.destroy(&a).await?;
        t.destroy(&b).await?;
    }
    if let Some((before, after)) = counted {
        return Err(t.fail(format!(
            "len() went from {before} to {after} after setting two already-expired records"
        )));
    }
    t.expect_missing(&a, "a record set with expires 1 s ago")
        .await?;
    t.expect_missing(&b, "a record set with expires at the epoch")
        .await?;
    let all = t.all().await?;
    if all.contains_key(&a) || all.contains_key(&b) {
        return Err(t.fail("all() returns a record set with an expiry in the past"));
    }

    // Replacing a live record with an expired one leaves the id missing.
    let c = t.id("replaced-by-expired");
    t.set(
        &c,
        &Record {
            cookie: full_cookie(Some(now + 60_000)),
            data: data(json!({"live": true})),
        },
    )
    .await?;
    t.set(&c, &past).await?;
    t.expect_missing(&c, "a live record replaced by an already-expired one")
        .await
}

async fn all_and_len<S: SessionStore + ?Sized>(t: &Scope<'_, S>) -> Result<(), SuiteFailure> {
    let now = clock::now_ms();
    let records = [
        (
            t.id("one"),
            Record {
                cookie: full_cookie(Some(now + 600_000)),
                data: data(json!({"n": 1})),
            },
        ),
        (
            t.id("two"),
            Record {
                cookie: CookieRecord::default(),
                data: data(json!({"n": 2, "s": "two"})),
            },
        ),
        (
            t.id("three"),
            Record {
                cookie: full_cookie(Some(now + 300_333)),
                data: Data::empty(),
            },
        ),
    ];
    for (id, record) in &records {
        t.set(id, record).await?;
    }

    let before_all = clock::now_ms();
    let all = t.all().await?;
    for (id, record) in &records {
        match all.get(id) {
            None => return Err(t.fail(format!("all() lacks {id:?}"))),
            Some(got) => {
                if let Some(diff) = differences(record, got) {
                    return Err(t.fail(format!("all()[{id:?}] differs from what was set: {diff}")));
                }
            }
        }
    }
    let ours = all.keys().filter(|k| k.starts_with(t.prefix())).count();
    if ours != records.len() {
        return Err(t.fail(format!(
            "all() returns {ours} records under this check's prefix, {} were set",
            records.len()
        )));
    }
    // No record of anyone's may be returned once its expiry has passed.
    for (id, record) in &all {
        if record.cookie.is_expired_at(before_all) {
            return Err(t.fail(format!(
                "all() returns {id:?}, whose cookie expired at {:?}, before all() was called",
                record.cookie.expires.map(clock::to_iso)
            )));
        }
    }

    let len = t.len().await?;
    if len < records.len() {
        return Err(t.fail(format!(
            "len() is {len} with at least {} live records",
            records.len()
        )));
    }
    // Each record is counted once: destroying one lowers the count by one.
    for (id, record) in &records {
        let mut seen = (0, 0);
        let mut ok = false;
        for _ in 0..3 {
            let with = t.len().await?;
            t.destroy(id).await?;
            let without = t.len().await?;
            t.set(id, record).await?;
            seen = (with, without);
            if with == without + 1 {
                ok = true;
                break;
            }
        }
        if !ok {
            return Err(t.fail(format!(
                "len() was {} with {id:?} and {} after destroying it (expected one less)",
                seen.0, seen.1
            )));
        }
    }
    Ok(())
}

async fn concurrent_apply<S: SessionStore + ?Sized>(t: &Scope<'_, S>) -> Result<(), SuiteFailure> {
    const TASKS: usize = 50;
    let now = clock::now_ms();
    let id = t.id("contended");
    let cookie = full_cookie(Some(now + 60_000));
    let mut initial = Map::new();
    initial.insert("base".into(), json!("kept"));
    for i in 0..TASKS {
        initial.insert(format!("old{i}"), json!(i));
    }
    t.set(
        &id,
        &Record {
            cookie: cookie.clone(),
            data: Data::from_map(&initial),
        },
    )
    .await?;

    let changes: Vec<Changes> = (0..TASKS)
        .map(|i| Changes {
            cookie: cookie.clone(),
            fields: vec![
                Change::Set(format!("new{i}"), json!({"task": i})),
                Change::Remove(format!("old{i}")),
            ],
        })
        .collect();
    let calls = changes.iter().map(|c| t.store.apply(&id, c)).collect();
    let results = JoinAll::new(calls).await;
    if results.len() != TASKS {
        return Err(t.fail(format!(
            "{} of {TASKS} apply calls completed",
            results.len()
        )));
    }
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(Applied::Applied) => {}
            Ok(Applied::Missing) => {
                return Err(t.fail(format!(
                    "concurrent apply #{i} returned Missing on a live record"
                )))
            }
            Err(e) => return Err(t.fail(format!("concurrent apply #{i} failed: {e}"))),
        }
    }

    let mut expected = Map::new();
    expected.insert("base".into(), json!("kept"));
    for i in 0..TASKS {
        expected.insert(format!("new{i}"), json!({"task": i}));
    }
    let expected = Record {
        cookie,
        data: Data::from_map(&expected),
    };
    t.expect_record(
        &id,
        &expected,
        &format!("after {TASKS} concurrent applies of different fields"),
    )
    .await
}

async fn large_values<S: SessionStore + ?Sized>(t: &Scope<'_, S>) -> Result<(), SuiteFailure> {
    let now = clock::now_ms();
    // 100 KiB of text with multi-byte characters and characters JSON escapes.
    let pattern = "abcdefghij\"\\\n\u{e9}\u{1f980}/<>&\u{0}";
    let mut big = String::with_capacity(110 * 1024);
    while big.len() < 100 * 1024 {
        big.push_str(pattern);
    }
    let list: Vec<Value> = (0..2_000).map(|i| json!({"i": i, "s": "item"})).collect();
    let id = t.id("large");
    let record = Record {
        cookie: full_cookie(Some(now + 60_000)),
        data: data(json!({"big": big, "list": list})),
    };
    t.set(&id, &record).await?;
    t.expect_record(&id, &record, "a record of more than 100 KB")
        .await?;

    let other: String = big.chars().rev().collect();
    let changes = Changes {
        cookie: record.cookie.clone(),
        fields: vec![Change::Set("other".into(), json!(other))],
    };
    t.apply_expect(&id, &changes, Applied::Applied, "a large record")
        .await?;
    let expected = Record {
        cookie: record.cookie.clone(),
        data: data(json!({"big": big, "list": list, "other": other})),
    };
    t.expect_record(
        &id,
        &expected,
        "a large record after apply added 100 KB more",
    )
    .await?;
    let all = t.all().await?;
    match all.get(&id) {
        None => Err(t.fail("all() lacks the large record")),
        Some(got) => match differences(&expected, got) {
            Some(diff) => Err(t.fail(format!("all() returns the large record changed: {diff}"))),
            None => Ok(()),
        },
    }
}

async fn odd_ids<S: SessionStore + ?Sized>(t: &Scope<'_, S>) -> Result<(), SuiteFailure> {
    const SUFFIXES: &[&str] = &[
        "%",
        "%25",
        "%2F",
        "a/b/c",
        "/",
        "with space",
        "\u{fc}n\u{ef}c\u{f8}d\u{e9}-\u{1f980}-\u{4e2d}\u{6587}",
        "s:x.y",
        "*",
        "?",
        "[a-z]",
        "{}",
        "\"'",
        "\\",
        "+=&#;,",
        "..",
    ];
    let now = clock::now_ms();
    let mut records = Vec::new();
    for suffix in SUFFIXES {
        let id = t.id(suffix);
        let record = Record {
            cookie: full_cookie(Some(now + 60_000)),
            data: data(json!({ "suffix": suffix })),
        };
        t.set(&id, &record).await?;
        records.push((id, record));
    }
    for (id, record) in &records {
        t.expect_record(id, record, "an id with unusual characters")
            .await?;
    }
    let all = t.all().await?;
    for (id, record) in &records {
        match all.get(id) {
            None => return Err(t.fail(format!("all() lacks the id {id:?}"))),
            Some(got) => {
                if let Some(diff) = differences(record, got) {
                    return Err(t.fail(format!("all()[{id:?}] differs: {diff}")));
                }
            }
        }
    }
    // Destroying the glob-like ids first must leave every other id in place.
    for (i, (id, _)) in records.iter().enumerate().rev() {
        t.destroy(id).await?;
        t.expect_missing(id, "an id with unusual characters, after destroy")
            .await?;
        for (other, record) in &records[..i] {
            t.expect_record(
                other,
                record,
                &format!("after destroying the different id {id:?}"),
            )
            .await?;
        }
    }
    Ok(())
}

/// `depth` arrays, one inside the other, around a 1.
fn nested(depth: usize) -> String {
    let mut s = String::with_capacity(2 * depth + 1);
    s.extend(std::iter::repeat_n('[', depth));
    s.push('1');
    s.extend(std::iter::repeat_n(']', depth));
    s
}

async fn undecodable_fields<S: SessionStore + ?Sized>(
    t: &Scope<'_, S>,
) -> Result<(), SuiteFailure> {
    let now = clock::now_ms();
    let cookie = full_cookie(Some(now + 600_000));
    let lone = r#""x\ud800y""#.to_owned();
    let odd = [
        ("lone", lone),
        ("deep", nested(200)),
        ("deeper", nested(100_000)),
    ];
    let mut text = format!("{{\"cookie\":{},\"views\":3", cookie.to_json());
    for (name, raw) in &odd {
        text.push_str(&format!(",\"{name}\":{raw}"));
    }
    // An ordinary field after the odd ones: it must be found past them.
    text.push_str(r#","user":{"name":"alice"}}"#);
    let record = Record::from_json(&text).map_err(|e| {
        t.fail(format!(
            "Record::from_json refused a record as Node writes it: {e}"
        ))
    })?;

    // Reads the record, its ordinary fields, and the odd ones as their exact text.
    let expect = |got: Option<Record>, views: i64, what: &str| -> Result<Record, SuiteFailure> {
        let got = got.ok_or_else(|| t.fail(format!("{what}: get returned None")))?;
        let read = |key: &str| {
            got.data
                .field::<Value>(key)
                .map_err(|e| t.fail(format!("{what}: the field {key:?} does not read: {e}")))
        };
        if read("views")? != Some(json!(views)) {
            return Err(t.fail(format!(
                "{what}: views is {:?}, expected {views}",
                read("views")?
            )));
        }
        if read("user")? != Some(json!({"name": "alice"})) {
            return Err(t.fail(format!("{what}: user is {:?}", read("user")?)));
        }
        for (name, raw) in &odd {
            if !got.data.as_str().contains(&format!("\"{name}\":{raw}")) {
                return Err(t.fail(format!(
                    "{what}: the field {name:?} is not kept byte for byte in {}",
                    short(got.data.as_str())
                )));
            }
        }
        Ok(got)
    };

    let id = t.id("odd");
    let plain = t.id("plain");
    let plain_record = Record {
        cookie: cookie.clone(),
        data: data(json!({"n": 1})),
    };
    t.set(&plain, &plain_record).await?;
    t.set(&id, &record).await?;
    expect(t.get(&id).await?, 3, "after set")?;

    let changes = Changes {
        cookie: cookie.clone(),
        fields: vec![
            Change::Set("views".into(), json!(4)),
            Change::Set("added".into(), json!("new")),
        ],
    };
    t.apply_expect(&id, &changes, Applied::Applied, "a record with odd fields")
        .await?;
    let got = expect(t.get(&id).await?, 4, "after apply of other fields")?;
    if got.data.field::<Value>("added").ok().flatten() != Some(json!("new")) {
        return Err(t.fail(format!(
            "after apply: the added field is missing from {}",
            short(got.data.as_str())
        )));
    }

    t.touch(&id, &full_cookie(Some(now + 900_000))).await?;
    expect(t.get(&id).await?, 4, "after touch")?;

    let all = t.all().await?;
    expect(all.get(&id).cloned(), 4, "all()")?;
    if !all.contains_key(&plain) {
        return Err(t.fail("all() lacks an ordinary record beside one with odd fields"));
    }

    // `len` counts it: destroying it lowers the count by one (retried against noise).
    let mut seen = (0, 0);
    for attempt in 0..3 {
        if attempt > 0 {
            t.set(&id, &record).await?;
        }
        let with = t.len().await?;
        t.destroy(&id).await?;
        let without = t.len().await?;
        seen = (with, without);
        if with == without + 1 {
            return t
                .expect_missing(&id, "a record with odd fields, after destroy")
                .await;
        }
    }
    Err(t.fail(format!(
        "len() was {} with the record with odd fields and {} after destroying it",
        seen.0, seen.1
    )))
}

/// A record owned by `owner` since `since`, expiring at `expires`.
fn owned(owner: &str, since: i64, expires: i64) -> Record {
    Record {
        cookie: full_cookie(Some(expires)),
        data: data(json!({
            "user": "someone",
            crate::store::OWNER_KEY: owner,
            crate::store::OWNER_SINCE_KEY: since,
        })),
    }
}

async fn owners<S: SessionStore + ?Sized>(t: &Scope<'_, S>) -> Result<(), SuiteFailure> {
    let now = clock::now_ms();
    let later = now + 600_000;
    // Owner ids with the characters a key prefix or glob could trip on.
    let owner = format!("{}owner *?[x]", t.prefix());
    let other = format!("{}other", t.prefix());
    let (a, b, c, d) = (t.id("a"), t.id("b"), t.id("c"), t.id("d"));
    let (theirs, nobodys) = (t.id("theirs"), t.id("nobodys"));

    let ra = owned(&owner, 1, later);
    t.set(&a, &ra).await?;
    // `b` gets its owner through `apply`, `c` through `create`.
    t.set(
        &b,
        &Record {
            cookie: full_cookie(Some(later)),
            data: data(json!({"user": "someone"})),
        },
    )
    .await?;
    let changes = Changes {
        cookie: full_cookie(Some(later)),
        fields: vec![
            Change::Set(crate::store::OWNER_KEY.into(), json!(owner)),
            Change::Set(crate::store::OWNER_SINCE_KEY.into(), json!(2)),
        ],
    };
    t.apply_expect(&b, &changes, Applied::Applied, "a live record")
        .await?;
    let rc = owned(&owner, 3, later);
    t.create_expect(&c, &rc, Created::Created, "a fresh id")
        .await?;
    t.set(&theirs, &owned(&other, 1, later)).await?;
    t.set(
        &nobodys,
        &Record {
            cookie: full_cookie(Some(later)),
            data: data(json!({"user": "x"})),
        },
    )
    .await?;
    // Touched: still listed, with its data.
    t.touch(&c, &full_cookie(Some(later + 1_000))).await?;

    let listed = t.sessions_of(&owner).await?;
    t.expect_ids(&listed, &[&a, &b, &c], "three sessions of one owner")
        .await?;
    if let Some(diff) = differences(&ra, &listed[0].record) {
        return Err(t.fail(format!("sessions_of: the record of {a:?} {diff}")));
    }
    // A store sharing Node's format may keep the old cookie through a touch.
    if listed[2].record.data.to_map().ok() != rc.data.to_map().ok() {
        return Err(t.fail(format!(
            "sessions_of: the data of {c:?} (touched) is {}, expected {}",
            short(listed[2].record.data.as_str()),
            short(rc.data.as_str())
        )));
    }
    t.expect_ids(&t.sessions_of(&other).await?, &[&theirs], "another owner's")
        .await?;

    // Given another owner, destroyed, expired: no longer listed.
    let changes = Changes {
        cookie: full_cookie(Some(later)),
        fields: vec![Change::Set(crate::store::OWNER_KEY.into(), json!(other))],
    };
    t.apply_expect(&a, &changes, Applied::Applied, "a live record")
        .await?;
    t.destroy(&b).await?;
    let soon = clock::now_ms() + 300;
    t.set(&d, &owned(&owner, 4, soon)).await?;
    sleep_until_ms(soon + 150).await;
    t.expect_ids(
        &t.sessions_of(&owner).await?,
        &[&c],
        "after one session was given another owner, one destroyed and one expired",
    )
    .await?;
    t.expect_ids(
        &t.sessions_of(&other).await?,
        &[&a, &theirs],
        "the new owner's",
    )
    .await?;

    // Everything of one owner but the current session, then everything.
    let (e, f) = (t.id("e"), t.id("f"));
    t.set(&e, &owned(&owner, 5, later)).await?;
    t.set(&f, &owned(&owner, 6, later)).await?;
    let n = t
        .call(
            "destroy_all_of",
            &owner,
            t.store.destroy_all_of(&owner, Some(&e)),
        )
        .await?;
    if n != 2 {
        return Err(t.fail(format!(
            "destroy_all_of(except one of 3) returned {n}, expected 2"
        )));
    }
    for id in [&c, &f] {
        t.expect_missing(id, "after destroy_all_of of its owner")
            .await?;
    }
    t.expect_ids(
        &t.sessions_of(&owner).await?,
        &[&e],
        "after destroy_all_of but one",
    )
    .await?;
    for id in [&a, &theirs, &nobodys] {
        if t.get(id).await?.is_none() {
            return Err(t.fail(format!(
                "destroy_all_of of one owner destroyed {id:?}, not its own"
            )));
        }
    }
    let n = t
        .call(
            "destroy_all_of",
            &owner,
            t.store.destroy_all_of(&owner, None),
        )
        .await?;
    if n != 1 {
        return Err(t.fail(format!(
            "destroy_all_of of one session returned {n}, expected 1"
        )));
    }
    t.expect_ids(&t.sessions_of(&owner).await?, &[], "after destroy_all_of")
        .await
}

async fn clear<S: SessionStore + ?Sized>(t: &Scope<'_, S>) -> Result<(), SuiteFailure> {
    let now = clock::now_ms();
    let ids = [t.id("one"), t.id("two"), t.id("three")];
    let record = Record {
        cookie: full_cookie(Some(now + 60_000)),
        data: data(json!({"x": "y"})),
    };
    for id in &ids {
        t.set(id, &record).await?;
    }
    t.set(
        &ids[1],
        &Record {
            cookie: CookieRecord::default(),
            data: Data::empty(),
        },
    )
    .await?;
    t.call("clear", "", t.store.clear()).await?;
    for id in &ids {
        t.expect_missing(id, "after clear").await?;
    }
    let all = t.all().await?;
    if !all.is_empty() {
        return Err(t.fail(format!(
            "all() returns {} records after clear (first: {:?})",
            all.len(),
            all.keys().next()
        )));
    }
    let len = t.len().await?;
    if len != 0 {
        return Err(t.fail(format!("len() is {len} after clear")));
    }
    t.set(&ids[0], &record).await?;
    t.expect_record(&ids[0], &record, "a record set after clear")
        .await?;
    let len = t.len().await?;
    if len != 1 {
        return Err(t.fail(format!("len() is {len} with one record set after clear")));
    }
    let changes = Changes {
        cookie: record.cookie.clone(),
        fields: vec![Change::Set("z".into(), json!(1))],
    };
    t.apply_expect(
        &ids[1],
        &changes,
        Applied::Missing,
        "an id removed by clear",
    )
    .await?;
    t.expect_missing(&ids[1], "after apply on an id removed by clear")
        .await
}

// ---------------------------------------------------------------------------------------
// Helpers.

/// One check's view of the store: its id prefix, the ids it wrote (destroyed at the end)
/// and store calls that turn errors into failures of the check.
struct Scope<'s, S: SessionStore + ?Sized> {
    store: &'s S,
    check: &'static str,
    prefix: String,
    ids: Mutex<Vec<String>>,
}

impl<'s, S: SessionStore + ?Sized> Scope<'s, S> {
    fn new(store: &'s S, check: &'static str) -> Result<Self, SuiteFailure> {
        let random = crate::id::generate()
            .map_err(|e| SuiteFailure::new(check, format!("no random id prefix: {e}")))?;
        Ok(Scope {
            store,
            check,
            prefix: format!("sessile-suite:{random}:{check}:"),
            ids: Mutex::new(Vec::new()),
        })
    }

    fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A fresh id for this check, destroyed when the check ends.
    fn id(&self, name: &str) -> String {
        let id = format!("{}{name}", self.prefix);
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(id.clone());
        id
    }

    fn fail(&self, message: impl Into<String>) -> SuiteFailure {
        SuiteFailure::new(self.check, message)
    }

    /// Destroys every id the check used; a cleanup error fails a check that passed.
    async fn finish(self, result: Result<(), SuiteFailure>) -> Result<(), SuiteFailure> {
        let ids = std::mem::take(&mut *self.ids.lock().unwrap_or_else(|e| e.into_inner()));
        let mut cleanup = Ok(());
        for id in &ids {
            if let Err(e) = self.store.destroy(id).await {
                if cleanup.is_ok() {
                    cleanup =
                        Err(self.fail(format!("destroy({id:?}) failed while cleaning up: {e}")));
                }
            }
        }
        result.and(cleanup)
    }

    async fn call<T>(
        &self,
        call: &str,
        id: &str,
        fut: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, SuiteFailure> {
        fut.await
            .map_err(|e| self.fail(format!("{call}({id:?}) returned an error: {e}")))
    }

    async fn get(&self, id: &str) -> Result<Option<Record>, SuiteFailure> {
        self.call("get", id, self.store.get(id)).await
    }

    async fn set(&self, id: &str, record: &Record) -> Result<(), SuiteFailure> {
        self.call("set", id, self.store.set(id, record)).await
    }

    async fn destroy(&self, id: &str) -> Result<(), SuiteFailure> {
        self.call("destroy", id, self.store.destroy(id)).await
    }

    async fn touch(&self, id: &str, cookie: &CookieRecord) -> Result<(), SuiteFailure> {
        self.call("touch", id, self.store.touch(id, cookie)).await
    }

    async fn all(&self) -> Result<std::collections::BTreeMap<String, Record>, SuiteFailure> {
        self.call("all", "", self.store.all()).await
    }

    async fn len(&self) -> Result<usize, SuiteFailure> {
        self.call("len", "", self.store.len()).await
    }

    async fn sessions_of(&self, owner: &str) -> Result<Vec<OwnedSession>, SuiteFailure> {
        self.call("sessions_of", owner, self.store.sessions_of(owner))
            .await
    }

    /// Fails unless `listed` holds exactly the sessions `ids`, in that order.
    async fn expect_ids(
        &self,
        listed: &[OwnedSession],
        ids: &[&String],
        what: &str,
    ) -> Result<(), SuiteFailure> {
        let got: Vec<&str> = listed.iter().map(|s| s.id.as_str()).collect();
        let want: Vec<&str> = ids.iter().map(|s| s.as_str()).collect();
        if got != want {
            return Err(self.fail(format!(
                "{what}: sessions_of listed {got:?}, expected {want:?}"
            )));
        }
        Ok(())
    }

    async fn create_expect(
        &self,
        id: &str,
        record: &Record,
        expected: Created,
        what: &str,
    ) -> Result<(), SuiteFailure> {
        let call = self.store.create(id, record);
        self.expect_outcome("create", id, call, expected, what)
            .await
    }

    async fn apply_expect(
        &self,
        id: &str,
        changes: &Changes,
        expected: Applied,
        what: &str,
    ) -> Result<(), SuiteFailure> {
        let call = self.store.apply(id, changes);
        self.expect_outcome("apply", id, call, expected, what).await
    }

    /// Runs `call` (`name` on `id`) and fails unless it returns `expected`.
    async fn expect_outcome<T: PartialEq + fmt::Debug>(
        &self,
        name: &str,
        id: &str,
        call: impl Future<Output = Result<T, StoreError>>,
        expected: T,
        what: &str,
    ) -> Result<(), SuiteFailure> {
        let got = self.call(name, id, call).await?;
        if got != expected {
            return Err(self.fail(format!(
                "{what}: {name}({id:?}) returned {got:?}, expected {expected:?}"
            )));
        }
        Ok(())
    }

    async fn expect_missing(&self, id: &str, what: &str) -> Result<(), SuiteFailure> {
        match self.get(id).await? {
            None => Ok(()),
            Some(r) => Err(self.fail(format!(
                "{what}: get({id:?}) returned {}, expected None",
                short(&r.to_json())
            ))),
        }
    }

    async fn expect_record(
        &self,
        id: &str,
        expected: &Record,
        what: &str,
    ) -> Result<(), SuiteFailure> {
        match self.get(id).await? {
            None => Err(self.fail(format!(
                "{what}: get({id:?}) returned None, expected {}",
                short(&expected.to_json())
            ))),
            Some(got) => match differences(expected, &got) {
                None => Ok(()),
                Some(diff) => Err(self.fail(format!("{what}: get({id:?}) {diff}"))),
            },
        }
    }
}

/// How `got` differs from `expected`: cookies field by field, data as JSON objects (key
/// order and formatting aside).
fn differences(expected: &Record, got: &Record) -> Option<String> {
    if expected.cookie != got.cookie {
        return Some(format!(
            "returned the cookie {}, expected {} ({:?} vs {:?})",
            got.cookie.to_json(),
            expected.cookie.to_json(),
            got.cookie,
            expected.cookie
        ));
    }
    let want = match expected.data.to_map() {
        Ok(m) => m,
        Err(e) => return Some(format!("(the suite's own data is invalid: {e})")),
    };
    match got.data.to_map() {
        Err(e) => Some(format!("returned data that is not a JSON object: {e}")),
        Ok(map) if map == want => None,
        Ok(_) => Some(format!(
            "returned the data {}, expected {}",
            short(got.data.as_str()),
            short(expected.data.as_str())
        )),
    }
}

/// At most 300 characters of `s`, for messages about 100 KB records.
fn short(s: &str) -> String {
    const MAX: usize = 300;
    match s.char_indices().nth(MAX) {
        None => s.to_owned(),
        Some((cut, _)) => format!("{}... ({} bytes)", &s[..cut], s.len()),
    }
}

fn data(v: Value) -> Data {
    match v {
        Value::Object(m) => Data::from_map(&m),
        _ => Data::empty(),
    }
}

/// A cookie with every attribute set (`expires` as given, `originalMaxAge` ten minutes).
fn full_cookie(expires: Option<i64>) -> CookieRecord {
    CookieRecord {
        original_max_age: Some(600_000),
        expires,
        secure: Some(true),
        http_only: false,
        domain: Some(Arc::from("example.com")),
        path: Arc::from("/app"),
        same_site: Some(SameSite::Lax),
        partitioned: Some(true),
        priority: Some(Priority::High),
    }
}

/// Waits until the wall clock (the one `expires` is measured on) reaches `deadline_ms`.
async fn sleep_until_ms(deadline_ms: i64) {
    loop {
        let left = deadline_ms - clock::now_ms();
        if left <= 0 {
            return;
        }
        Sleep::new(Duration::from_millis(left as u64)).await;
    }
}

/// A timer that needs no particular runtime: a helper thread wakes the task.
struct Sleep {
    deadline: Instant,
    waker: Option<Arc<Mutex<Option<std::task::Waker>>>>,
}

impl Sleep {
    fn new(d: Duration) -> Self {
        Sleep {
            deadline: Instant::now() + d,
            waker: None,
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let now = Instant::now();
        if now >= self.deadline {
            return Poll::Ready(());
        }
        if let Some(slot) = &self.waker {
            // The helper thread is running: only keep its waker current.
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let slot = Arc::new(Mutex::new(Some(cx.waker().clone())));
        let theirs = slot.clone();
        let left = self.deadline - now;
        let spawned = std::thread::Builder::new()
            .name("sessile-suite-timer".into())
            .spawn(move || {
                std::thread::sleep(left);
                if let Some(w) = theirs.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    w.wake();
                }
            });
        if spawned.is_err() {
            // No thread to wake us: wait here instead.
            std::thread::sleep(left);
            return Poll::Ready(());
        }
        self.waker = Some(slot);
        Poll::Pending
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Polls every future on the calling task until all are done; outputs in input order.
struct JoinAll<'a, T> {
    pending: Vec<Option<BoxFuture<'a, T>>>,
    done: Vec<Option<T>>,
}

impl<'a, T> JoinAll<'a, T> {
    fn new(futures: Vec<BoxFuture<'a, T>>) -> Self {
        let done = futures.iter().map(|_| None).collect();
        JoinAll {
            pending: futures.into_iter().map(Some).collect(),
            done,
        }
    }
}

// The outputs are never pinned: they are only moved out once every future is done.
impl<T> Unpin for JoinAll<'_, T> {}

impl<T> Future for JoinAll<'_, T> {
    type Output = Vec<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<T>> {
        let this = &mut *self;
        let mut all_done = true;
        for (slot, out) in this.pending.iter_mut().zip(this.done.iter_mut()) {
            if let Some(fut) = slot {
                match fut.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *out = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => all_done = false,
                }
            }
        }
        if all_done {
            Poll::Ready(this.done.iter_mut().filter_map(Option::take).collect())
        } else {
            Poll::Pending
        }
    }
}
