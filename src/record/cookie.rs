//! The `cookie` object express keeps inside every stored session, and its attributes.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::members::{members, ObjectText};
use crate::clock;

/// The `SameSite` attribute as express stores it (`true`, `"lax"`, `"strict"`, `"none"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// `sameSite: true`: sent as `SameSite=Strict`, stored as `true`.
    True,
    /// `sameSite: "lax"`.
    Lax,
    /// `sameSite: "strict"`.
    Strict,
    /// `sameSite: "none"` (browsers require `Secure` with it).
    None,
}

impl SameSite {
    /// The attribute value sent in `Set-Cookie`.
    pub fn attribute(self) -> &'static str {
        match self {
            SameSite::True | SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }

    fn to_json(self) -> Value {
        match self {
            SameSite::True => Value::Bool(true),
            SameSite::Lax => Value::from("lax"),
            SameSite::Strict => Value::from("strict"),
            SameSite::None => Value::from("none"),
        }
    }

    fn from_json(v: &Value) -> Result<Option<Self>, String> {
        Ok(match v {
            Value::Null | Value::Bool(false) => None,
            Value::Bool(true) => Some(SameSite::True),
            Value::String(s) => match s.to_ascii_lowercase().as_str() {
                "lax" => Some(SameSite::Lax),
                "strict" => Some(SameSite::Strict),
                "none" => Some(SameSite::None),
                other => return Err(format!("invalid cookie.sameSite {other:?}")),
            },
            other => return Err(format!("invalid cookie.sameSite {other}")),
        })
    }
}

/// The `Priority` cookie attribute (a Chrome extension express supports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// `Priority=Low`.
    Low,
    /// `Priority=Medium`.
    Medium,
    /// `Priority=High`.
    High,
}

impl Priority {
    /// The attribute value sent in `Set-Cookie`.
    pub fn attribute(self) -> &'static str {
        match self {
            Priority::Low => "Low",
            Priority::Medium => "Medium",
            Priority::High => "High",
        }
    }

    fn json_name(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
        }
    }

    /// Parses express's spelling (`"low"`, `"medium"`, `"high"`, any case).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Some(Priority::Low),
            "medium" => Some(Priority::Medium),
            "high" => Some(Priority::High),
            _ => None,
        }
    }
}

/// The `cookie` object express keeps inside every stored session.
///
/// Its fields are the attributes of the session cookie as they were when the session was
/// created; a loaded session sends its cookie with these, not with the current options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieRecord {
    /// `originalMaxAge`: the lifetime in milliseconds the cookie was given, or `None` for a
    /// browser-session cookie.
    pub original_max_age: Option<i64>,
    /// `expires`, in milliseconds since the Unix epoch; `None` for a browser-session cookie.
    pub expires: Option<i64>,
    /// `secure`; `None` when express would leave it undefined.
    pub secure: Option<bool>,
    /// `httpOnly` (express's default: `true`).
    pub http_only: bool,
    /// `domain`.
    pub domain: Option<Arc<str>>,
    /// `path` (express's default: `/`).
    pub path: Arc<str>,
    /// `sameSite`.
    pub same_site: Option<SameSite>,
    /// `partitioned`.
    pub partitioned: Option<bool>,
    /// `priority`.
    pub priority: Option<Priority>,
}

impl Default for CookieRecord {
    fn default() -> Self {
        CookieRecord {
            original_max_age: None,
            expires: None,
            secure: None,
            http_only: true,
            domain: None,
            path: Arc::from("/"),
            same_site: None,
            partitioned: None,
            priority: None,
        }
    }
}

impl CookieRecord {
    /// Whether two cookies differ at most in the value of `expires` (whether it is set
    /// counts): the same "shape", as the embedded store keeps cookies in memory and in
    /// snapshots.
    pub(crate) fn same_shape(&self, other: &CookieRecord) -> bool {
        self.expires.is_some() == other.expires.is_some()
            && self.original_max_age == other.original_max_age
            && self.secure == other.secure
            && self.http_only == other.http_only
            && self.domain == other.domain
            && self.path == other.path
            && self.same_site == other.same_site
            && self.partitioned == other.partitioned
            && self.priority == other.priority
    }
}

impl CookieRecord {
    /// `cookie.maxAge`: milliseconds until `expires` (negative once passed), `None` for a
    /// browser-session cookie.
    pub fn max_age(&self) -> Option<i64> {
        self.expires.map(|e| e - clock::now_ms())
    }

    /// `cookie.maxAge = ms`: sets `expires` to now + `ms` and `originalMaxAge` to `ms`;
    /// `None` makes it a browser-session cookie.
    ///
    /// An expiry past what JavaScript's `Date` holds is an Invalid Date in express: it is
    /// kept as no `expires` beside the `originalMaxAge`
    /// ([`has_invalid_expires`](Self::has_invalid_expires)), and no cookie is sent for it.
    pub fn set_max_age(&mut self, ms: Option<i64>) {
        self.expires = ms.and_then(|ms| clock::js_date(clock::now_ms().saturating_add(ms)));
        self.original_max_age = ms;
    }

    /// `session.touch()`: resets `expires` to now + `originalMaxAge`.
    pub fn touch(&mut self) {
        let original = self.original_max_age;
        self.expires = original.and_then(|ms| clock::js_date(clock::now_ms().saturating_add(ms)));
    }

    /// Whether `expires` is what express holds as an Invalid Date: an `originalMaxAge` whose
    /// expiry lies past JavaScript's dates. express's `cookie.serialize` refuses such a cookie,
    /// so no `Set-Cookie` is sent; the record is stored with `expires: null`, as
    /// `JSON.stringify` writes an Invalid Date.
    ///
    /// ```
    /// let mut c = sessile::CookieRecord::default();
    /// c.set_max_age(Some(i64::MAX));
    /// assert!(c.has_invalid_expires());
    /// c.set_max_age(Some(60_000));
    /// assert!(!c.has_invalid_expires());
    /// ```
    pub fn has_invalid_expires(&self) -> bool {
        self.original_max_age.is_some() && self.expires.is_none()
    }

    /// Whether `expires` has passed at `now_ms`.
    pub fn is_expired_at(&self, now_ms: i64) -> bool {
        self.expires.is_some_and(|e| e <= now_ms)
    }

    /// The cookie's members as express serialises them (`Cookie.prototype.data`), in its
    /// order.
    fn each_member(&self, mut f: impl FnMut(&'static str, Value)) {
        f(
            "originalMaxAge",
            self.original_max_age.map_or(Value::Null, Value::from),
        );
        if let Some(p) = self.partitioned {
            f("partitioned", Value::Bool(p));
        }
        if let Some(p) = self.priority {
            f("priority", Value::from(p.json_name()));
        }
        f(
            "expires",
            self.expires
                .map_or(Value::Null, |e| Value::from(clock::to_iso(e))),
        );
        if let Some(s) = self.secure {
            f("secure", Value::Bool(s));
        }
        f("httpOnly", Value::Bool(self.http_only));
        if let Some(d) = &self.domain {
            f("domain", Value::from(&**d));
        }
        f("path", Value::from(&*self.path));
        if let Some(s) = self.same_site {
            f("sameSite", s.to_json());
        }
    }

    /// The cookie as express serialises it (`Cookie.prototype.data`), as a `Value`: its key
    /// order is your serde_json's (sorted, unless its `preserve_order` feature is on). For
    /// express's text, key order included, see [`to_json_text`](Self::to_json_text).
    ///
    /// ```
    /// let cookie = sessile::CookieRecord::default().to_json();
    /// assert_eq!(cookie["httpOnly"], true);
    /// assert_eq!(cookie["path"], "/");
    /// ```
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        self.each_member(|k, v| {
            m.insert(k.into(), v);
        });
        Value::Object(m)
    }

    /// The cookie object's JSON text as express writes it, in express's key order (what
    /// [`Record::to_json`](super::Record::to_json) writes).
    ///
    /// ```
    /// let mut cookie = sessile::CookieRecord::default();
    /// cookie.secure = Some(true);
    /// assert_eq!(
    ///     cookie.to_json_text(),
    ///     r#"{"originalMaxAge":null,"expires":null,"secure":true,"httpOnly":true,"path":"/"}"#
    /// );
    /// ```
    pub fn to_json_text(&self) -> String {
        let mut out = ObjectText::with_capacity(128);
        self.each_member(|k, v| out.value(k, &v));
        out.finish()
    }

    /// Reads the cookie object as express (or Node's connect-redis) wrote it.
    pub fn from_json(v: &Value) -> Result<Self, String> {
        let obj = v.as_object().ok_or("cookie is not an object")?;
        let mut c = CookieRecord::default();
        for (k, v) in obj {
            c.read_field(k, v)?;
        }
        Ok(c)
    }

    /// Reads the cookie object from its JSON text: only the attributes this crate knows are
    /// decoded, so a property express copied onto the cookie that cannot be decoded (a lone
    /// surrogate, deep nesting) is ignored, as express ignores it.
    pub(super) fn from_raw(raw: &str) -> Result<Self, String> {
        let members = members(raw).map_err(|_| "cookie is not an object".to_owned())?;
        let mut c = CookieRecord::default();
        // `JSON.parse` keeps the last of a name given twice: only that one is read.
        let mut last = [None; Self::FIELDS.len()];
        for (i, m) in members.iter().enumerate() {
            if let Some(f) = m
                .name()
                .and_then(|n| Self::FIELDS.iter().position(|f| *f == n))
            {
                last[f] = Some(i);
            }
        }
        for (i, m) in members.iter().enumerate() {
            let Some(name) = m.name() else { continue };
            let Some(f) = Self::FIELDS.iter().position(|f| *f == name) else {
                continue;
            };
            if last[f] != Some(i) {
                continue;
            }
            let v: Value = serde_json::from_str(m.value.get())
                .map_err(|e| format!("invalid cookie.{name}: {e}"))?;
            c.read_field(&name, &v)?;
        }
        Ok(c)
    }

    /// The attributes [`read_field`](Self::read_field) reads.
    const FIELDS: &'static [&'static str] = &[
        "originalMaxAge",
        "expires",
        "secure",
        "httpOnly",
        "domain",
        "path",
        "sameSite",
        "partitioned",
        "priority",
    ];

    fn read_field(&mut self, k: &str, v: &Value) -> Result<(), String> {
        let c = self;
        match k {
            "originalMaxAge" => c.original_max_age = json_ms(v, "originalMaxAge")?,
            "expires" => {
                c.expires = match v {
                    Value::Null | Value::Bool(false) => None,
                    Value::String(s) => {
                        Some(clock::parse_date(s).ok_or_else(|| format!("invalid expires {s:?}"))?)
                    }
                    Value::Number(_) => json_ms(v, "expires")?,
                    other => return Err(format!("invalid expires {other}")),
                }
                // Dates past the years 0..=9999 cannot be printed (nor can JavaScript
                // hold them): clamp, so what is read is what is written back.
                .map(|e| e.clamp(clock::MIN_MS, clock::MAX_MS));
            }
            "secure" => c.secure = json_bool(v, "secure")?,
            "httpOnly" => c.http_only = json_bool(v, "httpOnly")?.unwrap_or(true),
            "domain" => c.domain = json_str(v, "domain")?.map(Arc::from),
            "path" => c.path = json_str(v, "path")?.map_or_else(|| Arc::from("/"), Arc::from),
            "sameSite" => c.same_site = SameSite::from_json(v)?,
            "partitioned" => c.partitioned = json_bool(v, "partitioned")?,
            "priority" => {
                c.priority = match json_str(v, "priority")? {
                    None => None,
                    Some(s) => {
                        Some(Priority::parse(s).ok_or_else(|| format!("invalid priority {s:?}"))?)
                    }
                }
            }
            // express copies any other property onto the cookie but never sends it.
            _ => {}
        }
        Ok(())
    }
}

fn json_ms(v: &Value, what: &str) -> Result<Option<i64>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| format!("invalid {what} {n}")),
        other => Err(format!("invalid {what} {other}")),
    }
}

fn json_bool(v: &Value, what: &str) -> Result<Option<bool>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        other => Err(format!("invalid {what} {other}")),
    }
}

fn json_str<'a>(v: &'a Value, what: &str) -> Result<Option<&'a str>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        other => Err(format!("invalid {what} {other}")),
    }
}
