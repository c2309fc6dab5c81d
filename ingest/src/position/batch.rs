//! Splitting a message body into point elements: one JSON object, or an array of them
//! (a tracker flushing its offline buffer), with the array length bounded while parsing.

use std::cell::Cell;
use std::fmt;

use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::fields::not_an_object;
use super::point::Fail;
use super::reason::RejectReason;

/// The elements of a message: raw JSON text of each point, in order.
#[derive(Debug)]
pub(crate) enum Elements<'a> {
    /// The body is one object (the element is the whole body).
    One(&'a str),
    /// The body is an array.
    Many(Vec<&'a RawValue>),
}

/// Collects array elements without parsing them, failing past `max` elements.
struct LimitedArray {
    max: usize,
    exceeded: Cell<bool>,
}

impl<'de> Visitor<'de> for &LimitedArray {
    type Value = Vec<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of position objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(element) = seq.next_element::<&'de RawValue>()? {
            if out.len() == self.max {
                self.exceeded.set(true);
                return Err(serde::de::Error::custom("too many elements"));
            }
            out.push(element);
        }
        Ok(out)
    }
}

impl<'de> DeserializeSeed<'de> for &LimitedArray {
    type Value = Vec<&'de RawValue>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

/// Splits `text` into elements, allowing at most `max_points` in an array.
pub(crate) fn split(text: &str, max_points: usize) -> Result<Elements<'_>, Fail> {
    match text.trim_start().bytes().next() {
        None => Err(Fail::new(
            RejectReason::EmptyPayload,
            "payload holds only whitespace",
        )),
        Some(b'{') => Ok(Elements::One(text)),
        Some(b'[') => {
            let limit = LimitedArray {
                max: max_points,
                exceeded: Cell::new(false),
            };
            let mut de = serde_json::Deserializer::from_str(text);
            let parsed = limit
                .deserialize(&mut de)
                .and_then(|v| de.end().map(|()| v));
            match parsed {
                Ok(elements) => Ok(Elements::Many(elements)),
                Err(_) if limit.exceeded.get() => Err(Fail::new(
                    RejectReason::TooManyPoints,
                    format!("array holds more than {max_points} points: split the upload"),
                )),
                Err(e) => Err(Fail::json("payload", &e)),
            }
        }
        Some(_) => match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Ok(_) => Err(not_an_object(text)),
            Err(e) => Err(Fail::json("payload", &e)),
        },
    }
}
