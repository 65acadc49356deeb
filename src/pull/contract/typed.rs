//! The fast path of the summary decoder (issue 20): the body read straight into the
//! contract's fields by one serde pass, validating as it goes — no `serde_json::Value`
//! tree, no field-name strings, no error text. It accepts only what the value-based
//! decoder accepts (it may refuse more: a `2.0` where an integer is due); anything it
//! refuses is decoded again by that decoder, which classifies the failure and names it.
//! Repeated keys are refused at every depth, unknown fields included, as there.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{
    valid_node_id, valid_root, ReportedMetrics, Summary, BOUNDS, G_COMPONENT_KEYS, G_STAR,
    MAX_EXACT_INTEGER, REPORTED_FIELDS, SUPPORTED_MAJOR,
};

/// The summary in `body` if it is valid and read without a doubt; `None` otherwise.
pub(super) fn decode(body: &[u8]) -> Option<Summary> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let summary = deserializer.deserialize_map(SummaryVisitor).ok()?;
    deserializer.end().ok()?;
    Some(summary)
}

/// Nothing to say: the slow path says it.
fn refused<E: de::Error>() -> E {
    E::custom("")
}

/// A string read from the body, borrowed when it holds no escapes.
struct Text<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(text)))
            }
            fn visit_str<E>(self, text: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// The keys of one object, checked for repeats as they come (objects here have a handful).
#[derive(Default)]
struct Keys<'de>(Vec<Text<'de>>);

impl<'de> Keys<'de> {
    fn next<A: MapAccess<'de>>(&mut self, map: &mut A) -> Result<Option<usize>, A::Error> {
        let Some(key) = map.next_key::<Text<'de>>()? else {
            return Ok(None);
        };
        if self.0.iter().any(|seen| seen.0 == key.0) {
            return Err(refused());
        }
        self.0.push(key);
        Ok(Some(self.0.len() - 1))
    }

    fn name(&self, index: usize) -> &str {
        &self.0[index].0
    }
}

struct SummaryVisitor;

impl<'de> Visitor<'de> for SummaryVisitor {
    type Value = Summary;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a summary")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Summary, A::Error> {
        let mut keys = Keys::default();
        let (mut version, mut node_id, mut timestamp) = (None, None, None);
        let (mut state_root, mut state_height, mut metrics) = (None, None, None);
        while let Some(index) = keys.next(&mut map)? {
            match keys.name(index) {
                "schema_version" => version = Some(map.next_value::<u64>()?),
                "node_id" => node_id = Some(map.next_value::<Text<'de>>()?),
                "timestamp" => timestamp = Some(map.next_value::<f64>()?),
                "state_root" => state_root = Some(map.next_value::<Text<'de>>()?),
                "state_height" => state_height = Some(map.next_value::<u64>()?),
                "metrics" => metrics = Some(map.next_value_seed(MetricsVisitor)?),
                _ => map.next_value_seed(UniqueIgnored)?,
            }
        }
        let version = version.unwrap_or(SUPPORTED_MAJOR);
        let node_id = node_id.ok_or_else(refused)?.0;
        let timestamp = timestamp.ok_or_else(refused)?;
        let integer = |n: u64| n as f64 <= MAX_EXACT_INTEGER;
        let valid = version == SUPPORTED_MAJOR
            && valid_node_id(&node_id)
            && timestamp > 0.0
            && state_root.as_ref().is_none_or(|root| valid_root(&root.0))
            && state_height.is_none_or(integer);
        if !valid {
            return Err(refused());
        }
        Ok(Summary {
            schema_version: version,
            node_id: node_id.into_owned(),
            timestamp,
            state_root: state_root.map(|root| root.0.into_owned()),
            state_height,
            metrics: metrics.ok_or_else(refused)?,
        })
    }
}

/// `metrics`: the bounded numeric fields, `g_star` required, and `g_components`.
struct MetricsVisitor;

impl<'de> DeserializeSeed<'de> for MetricsVisitor {
    type Value = ReportedMetrics;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MetricsVisitor {
    type Value = ReportedMetrics;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("metrics")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ReportedMetrics, A::Error> {
        let mut keys = Keys::default();
        let mut values = [None; REPORTED_FIELDS.len()];
        while let Some(index) = keys.next(&mut map)? {
            let name = keys.name(index);
            if let Some(slot) = BOUNDS.iter().position(|(field, ..)| *field == name) {
                let (_, low, high) = BOUNDS[slot];
                let value = map.next_value::<f64>()?;
                if !(low..=high).contains(&value) {
                    return Err(refused());
                }
                values[slot] = Some(value);
            } else if name == "g_components" {
                map.next_value_seed(ComponentsVisitor(&mut values))?;
            } else {
                map.next_value_seed(UniqueIgnored)?;
            }
        }
        if values[G_STAR].is_none() {
            return Err(refused());
        }
        Ok(ReportedMetrics { values })
    }
}

/// `metrics.g_components`: every value in [0, 1], the known ones kept.
struct ComponentsVisitor<'v>(&'v mut [Option<f64>; REPORTED_FIELDS.len()]);

impl<'de> DeserializeSeed<'de> for ComponentsVisitor<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ComponentsVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("g_components")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys = Keys::default();
        while let Some(index) = keys.next(&mut map)? {
            let value = map.next_value::<f64>()?;
            if !(0.0..=1.0).contains(&value) {
                return Err(refused());
            }
            let name = keys.name(index);
            if let Some(position) = G_COMPONENT_KEYS.iter().position(|k| *k == name) {
                self.0[BOUNDS.len() + position] = Some(value);
            }
        }
        Ok(())
    }
}

/// Any JSON value, read and dropped, whose objects are checked for repeated keys (serde's
/// `IgnoredAny` would skip them unseen, and accept what the value-based decoder refuses).
struct UniqueIgnored;

impl<'de> DeserializeSeed<'de> for UniqueIgnored {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueIgnored {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        while items.next_element_seed(UniqueIgnored)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys = Keys::default();
        while keys.next(&mut map)?.is_some() {
            map.next_value_seed(UniqueIgnored)?;
        }
        Ok(())
    }
}
