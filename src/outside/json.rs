//! JSON from a peer, parsed so that every reader of it sees the same document. JSON
//! allows an object to name a key twice and leaves the meaning open: serde_json keeps the
//! last value, other parsers (a proxy, the node's own tooling, a person reading the body)
//! the first. A summary whose `node_id` or `state_root` reads differently to two parsers
//! is a way to mislead, so [`parse_unique`] refuses any object with a repeated key.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// `bytes` as a JSON value; an error when the text is not JSON or an object (at any
/// depth) repeats a key (`is_data()` then; the message names the key).
pub(crate) fn parse_unique(bytes: &[u8]) -> serde_json::Result<Value> {
    serde_json::from_slice::<Unique>(bytes).map(|unique| unique.0)
}

/// A JSON value whose objects were checked for repeated keys while it was read.
struct Unique(Value);

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueVisitor).map(Unique)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(n.into())
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(n.into())
    }
    fn visit_f64<E>(self, x: f64) -> Result<Value, E> {
        // serde_json refuses NaN and infinities while parsing, so this never is Null.
        Ok(serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, text: &str) -> Result<Value, E> {
        Ok(Value::String(text.to_owned()))
    }
    fn visit_string<E>(self, text: String) -> Result<Value, E> {
        Ok(Value::String(text))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Value, A::Error> {
        let mut list = Vec::new();
        while let Some(Unique(item)) = items.next_element()? {
            list.push(item);
        }
        Ok(Value::Array(list))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = entries.next_key::<String>()? {
            let Unique(value) = entries.next_value()?;
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate key `{}`",
                    super::text::printable(&key)
                )));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_is_refused_at_any_depth_and_named() {
        assert_eq!(
            parse_unique(br#"{"a":1,"b":[true,null,"x",-2,0.5],"c":{"d":{}}}"#).unwrap(),
            serde_json::json!({"a":1,"b":[true,null,"x",-2,0.5],"c":{"d":{}}})
        );
        let error = parse_unique(br#"{"node_id":"a","node_id":"b"}"#).unwrap_err();
        assert!(error.is_data(), "{error}");
        assert!(
            error.to_string().contains("duplicate key `node_id`"),
            "{error}"
        );
        let nested = parse_unique(br#"{"m":[{"g":1,"g":2}]}"#).unwrap_err();
        assert!(nested.to_string().contains("duplicate key `g`"), "{nested}");
        assert!(parse_unique(b"{\"a\":").unwrap_err().is_eof());
    }
}
