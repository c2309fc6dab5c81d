//! Reading one JSON object field by field without building a full `serde_json::Value`:
//! the object is split into (key, raw value text) pairs, then each format reads the values it
//! knows with typed readers and hands the rest to `Attributes`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::point::Fail;
use super::reason::RejectReason;
use super::topic::shorten;

/// A JSON object key, borrowed from the payload when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// The fields of one JSON object, in payload order, values still as raw JSON text.
pub(crate) struct Fields<'a>(pub Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(12).min(64));
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    fields.push((key.0, value));
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(FieldsVisitor)
    }
}

/// Splits `text` (one JSON object, nothing after it) into its fields.
pub(crate) fn object_fields(text: &str) -> Result<Fields<'_>, Fail> {
    if !text.trim_start().starts_with('{') {
        return Err(not_an_object(text));
    }
    serde_json::from_str::<Fields<'_>>(text).map_err(|e| Fail::json("payload", &e))
}

/// The failure for an element that is valid JSON but not an object.
pub(crate) fn not_an_object(text: &str) -> Fail {
    let kind = match text.trim_start().bytes().next() {
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        Some(_) => "a number",
        None => "nothing",
    };
    Fail::new(
        RejectReason::NotAnObject,
        format!("expected a JSON object for a position, got {kind}"),
    )
}

fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

/// A finite number, or None for `null`.
pub(crate) fn number(field: &str, raw: &RawValue) -> Result<Option<f64>, Fail> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'-' | b'0'..=b'9') => {}
        _ if is_null(raw) => return Ok(None),
        _ => {
            return Err(Fail::new(
                RejectReason::InvalidField,
                format!("field `{field}` must be a number, got {}", shorten(text)),
            ))
        }
    }
    // The JSON parser has checked the number's syntax already; Rust's parser rounds exactly.
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(Some(value)),
        _ => Err(Fail::new(
            RejectReason::NumberOutOfRange,
            format!("field `{field}`: number out of range"),
        )),
    }
}

/// A JSON number kept exact (integers stay integers), or None for `null`.
pub(crate) fn exact_number(
    field: &str,
    raw: &RawValue,
) -> Result<Option<serde_json::Number>, Fail> {
    if is_null(raw) {
        return Ok(None);
    }
    if raw.get().starts_with('"') {
        return Err(Fail::new(
            RejectReason::InvalidField,
            format!("field `{field}` must be a number, got a string"),
        ));
    }
    serde_json::from_str::<serde_json::Number>(raw.get())
        .map(Some)
        .map_err(|e| Fail::json(&format!("field `{field}`"), &e))
}

/// A string, or None for `null`.
pub(crate) fn string(field: &str, raw: &RawValue) -> Result<Option<String>, Fail> {
    if is_null(raw) {
        return Ok(None);
    }
    serde_json::from_str::<String>(raw.get())
        .map(Some)
        .map_err(|_| {
            Fail::new(
                RejectReason::InvalidField,
                format!(
                    "field `{field}` must be a string, got {}",
                    shorten(raw.get())
                ),
            )
        })
}

/// Stores `value` into an empty `slot`; a second value for the same slot is an error (e.g.
/// both `lat` and `latitude`).
pub(crate) fn set_once<T>(slot: &mut Option<T>, field: &str, value: Option<T>) -> Result<(), Fail> {
    if value.is_none() {
        return Ok(());
    }
    if slot.is_some() {
        return Err(Fail::new(
            RejectReason::InvalidField,
            format!("field `{field}` given twice (or together with its alias)"),
        ));
    }
    *slot = value;
    Ok(())
}

/// Collects a point's attributes (an explicit `attributes` object and the fields no format
/// knows), bounded in size before anything is allocated for them.
pub(crate) struct Attributes<'a> {
    limit: usize,
    /// Bytes of JSON text taken so far (keys + values + punctuation).
    size: usize,
    extra: Vec<(Cow<'a, str>, &'a RawValue)>,
    explicit: Option<&'a RawValue>,
}

impl<'a> Attributes<'a> {
    pub fn new(limit: usize) -> Attributes<'a> {
        Attributes {
            limit,
            size: 2,
            extra: Vec::new(),
            explicit: None,
        }
    }

    fn grow(&mut self, bytes: usize) -> Result<(), Fail> {
        self.size = self.size.saturating_add(bytes);
        if self.size > self.limit {
            return Err(Fail::new(
                RejectReason::AttributesTooLarge,
                format!(
                    "attributes and unknown fields exceed {} bytes of JSON",
                    self.limit
                ),
            ));
        }
        Ok(())
    }

    /// A field no format knows: kept as an attribute.
    pub fn extra(&mut self, key: Cow<'a, str>, raw: &'a RawValue) -> Result<(), Fail> {
        self.grow(key.len() + raw.get().len() + 4)?;
        self.extra.push((key, raw));
        Ok(())
    }

    /// The explicit `attributes` field: must be an object (or null).
    pub fn explicit(&mut self, raw: &'a RawValue) -> Result<(), Fail> {
        if is_null(raw) {
            return Ok(());
        }
        if !raw.get().starts_with('{') {
            return Err(Fail::new(
                RejectReason::InvalidField,
                "field `attributes` must be a JSON object",
            ));
        }
        if self.explicit.is_some() {
            return Err(Fail::new(
                RejectReason::InvalidField,
                "field `attributes` given twice",
            ));
        }
        self.grow(raw.get().len())?;
        self.explicit = Some(raw);
        Ok(())
    }

    /// Parses what was collected. Keys of the explicit object win over unknown fields with
    /// the same name. None when there is nothing.
    ///
    /// A string holding U+0000 is refused: PostgreSQL `jsonb` cannot store it.
    pub fn finish(self) -> Result<Option<Map<String, Value>>, Fail> {
        let may_hold_nul = self
            .extra
            .iter()
            .any(|(_, raw)| raw.get().contains("u0000"))
            || self.explicit.is_some_and(|raw| raw.get().contains("u0000"));
        let mut map = Map::new();
        for (key, raw) in self.extra {
            let value = serde_json::from_str::<Value>(raw.get())
                .map_err(|e| Fail::json(&format!("field `{}`", shorten(&key)), &e))?;
            map.insert(key.into_owned(), value);
        }
        if let Some(raw) = self.explicit {
            let explicit = serde_json::from_str::<Map<String, Value>>(raw.get())
                .map_err(|e| Fail::json("field `attributes`", &e))?;
            map.extend(explicit);
        }
        if may_hold_nul && map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)) {
            return Err(Fail::new(
                RejectReason::InvalidField,
                "attributes hold a string with the character U+0000, which cannot be stored",
            ));
        }
        Ok(if map.is_empty() { None } else { Some(map) })
    }
}

/// True when a string (key or value) anywhere in `value` contains U+0000.
fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}
