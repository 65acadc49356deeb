//! The node summary contract `peer_sync_payload@1` (`contracts/peer_sync_payload@1.yaml`):
//! its typed form and the decoder that accepts exactly what the schema accepts.
//!
//! A valid body is read in one typed pass (`contract/typed.rs`); any other is parsed
//! into a JSON value so that the decoder can tell the three ways a body can be bad apart:
//! not JSON at all (`decode`), a major version we do not speak (`unsupported_version`),
//! and JSON that breaks the contract (`schema`). Unknown fields
//! are ignored, as additive evolution within major version 1 requires; a key repeated in
//! an object is refused (`schema`), as readers would disagree on its value.

use reqwest::Url;
use serde_json::{Map, Value};

use crate::outside::json::parse_unique;
use crate::pull::failure::{FailureReason, PullError};

mod typed;

/// Path of the summary endpoint, appended to a node's base URL.
pub const SUMMARY_PATH: &str = "/federation/sync/summary";

/// The URL a node's summary is pulled from.
pub(crate) fn summary_url(base: &Url) -> Url {
    let mut url = base.clone();
    let path = format!("{}{SUMMARY_PATH}", base.path().trim_end_matches('/'));
    url.set_path(&path);
    url
}

/// The only major version of the payload this build understands.
pub(crate) const SUPPORTED_MAJOR: u64 = 1;

/// The largest integer a JSON number carries exactly (2^53 − 1); larger heights are refused.
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Names of the reported numeric fields, in export order (`field` label values).
/// Only these are exported: labels never come from payload content.
pub(crate) const REPORTED_FIELDS: [&str; 9] = [
    "peer_quality",
    "stability_margin",
    "hopf_distance",
    "spectral_radius",
    "gamma",
    "g_star",
    "g_components_P",
    "g_components_N",
    "g_components_Cc",
];
const G_STAR: usize = 5;
const G_COMPONENT_KEYS: [&str; 3] = ["P", "N", "Cc"];

/// A node's summary, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub(crate) schema_version: u64,
    pub node_id: String,
    /// Unix seconds at which the node produced the summary.
    pub timestamp: f64,
    pub state_root: Option<String>,
    pub(crate) state_height: Option<u64>,
    pub metrics: ReportedMetrics,
}

/// The numeric fields of a summary's `metrics`, indexed like `REPORTED_FIELDS`.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportedMetrics {
    values: [Option<f64>; REPORTED_FIELDS.len()],
}

impl ReportedMetrics {
    /// `g_star`, the one required metric.
    pub fn g_star(&self) -> f64 {
        self.values[G_STAR].expect("g_star is required by the decoder")
    }

    /// The fields present, as (`field` label, value).
    pub(crate) fn present(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        REPORTED_FIELDS
            .iter()
            .zip(self.values.iter())
            .filter_map(|(name, value)| value.map(|v| (*name, v)))
    }
}

/// Decodes and validates a summary body: in one typed pass when it is valid, else again
/// through a JSON value, which tells what is wrong.
pub fn decode_summary(body: &[u8]) -> Result<Summary, PullError> {
    typed::decode(body).map_or_else(|| decode_by_value(body), Ok)
}

/// The typed pass alone (the fuzz target checks it never accepts what
/// [`decode_by_value`] refuses, nor reads anything differently).
#[doc(hidden)]
pub fn decode_typed(body: &[u8]) -> Option<Summary> {
    typed::decode(body)
}

/// The decoder through a JSON value, which classifies and names every failure.
#[doc(hidden)]
pub fn decode_by_value(body: &[u8]) -> Result<Summary, PullError> {
    let value = parse_unique(body).map_err(|e| {
        if e.is_data() {
            // Well-formed JSON that repeats a key: two parsers could read it differently.
            schema_error("payload", &e.to_string())
        } else {
            PullError::new(FailureReason::Decode, format!("not valid JSON: {e}"))
        }
    })?;
    let object = value
        .as_object()
        .ok_or_else(|| schema_error("payload", "must be a JSON object"))?;

    let schema_version = match object.get("schema_version") {
        None => SUPPORTED_MAJOR,
        Some(v) => {
            let n = integer(v, "schema_version", 0.0, MAX_EXACT_INTEGER)?;
            if n != SUPPORTED_MAJOR {
                return Err(PullError::new(
                    FailureReason::UnsupportedVersion,
                    format!(
                        "schema_version {n} is not supported (this build speaks {SUPPORTED_MAJOR})"
                    ),
                ));
            }
            n
        }
    };

    let node_id = required_string(object, "node_id")?;
    if !valid_node_id(node_id) {
        return Err(schema_error(
            "node_id",
            "must be 1-128 characters of [A-Za-z0-9._:-]",
        ));
    }
    let timestamp = number(required(object, "timestamp")?, "timestamp")?;
    if timestamp <= 0.0 {
        return Err(schema_error("timestamp", "must be greater than 0"));
    }
    let state_root = match object.get("state_root") {
        None => None,
        Some(v) => {
            let root = v
                .as_str()
                .ok_or_else(|| schema_error("state_root", "must be a string"))?;
            if !valid_root(root) {
                return Err(schema_error(
                    "state_root",
                    "must be 1-128 printable ASCII characters without spaces",
                ));
            }
            Some(root.to_owned())
        }
    };
    let state_height = object
        .get("state_height")
        .map(|v| integer(v, "state_height", 0.0, MAX_EXACT_INTEGER))
        .transpose()?;

    let metrics = required(object, "metrics")?
        .as_object()
        .ok_or_else(|| schema_error("metrics", "must be an object"))?;
    let metrics = decode_metrics(metrics)?;

    Ok(Summary {
        schema_version,
        node_id: node_id.to_owned(),
        timestamp,
        state_root,
        state_height,
        metrics,
    })
}

/// (field, lower bound, upper bound) for the plain numeric fields of `metrics`, in the
/// order of `REPORTED_FIELDS`.
const BOUNDS: [(&str, f64, f64); 6] = [
    ("peer_quality", 0.0, 1.0),
    ("stability_margin", f64::NEG_INFINITY, f64::INFINITY),
    ("hopf_distance", f64::NEG_INFINITY, f64::INFINITY),
    ("spectral_radius", 0.0, f64::INFINITY),
    ("gamma", 0.0, 1.0),
    ("g_star", 0.0, 1.0),
];

fn decode_metrics(metrics: &Map<String, Value>) -> Result<ReportedMetrics, PullError> {
    let mut values = [None; REPORTED_FIELDS.len()];
    for (slot, (field, low, high)) in BOUNDS.iter().enumerate() {
        if let Some(v) = metrics.get(*field) {
            values[slot] = Some(bounded(v, &format!("metrics.{field}"), *low, *high)?);
        }
    }
    if values[G_STAR].is_none() {
        return Err(schema_error("metrics.g_star", "is required"));
    }
    if let Some(components) = metrics.get("g_components") {
        let components = components
            .as_object()
            .ok_or_else(|| schema_error("metrics.g_components", "must be an object"))?;
        for (key, v) in components {
            let value = bounded(v, &format!("metrics.g_components.{key}"), 0.0, 1.0)?;
            if let Some(position) = G_COMPONENT_KEYS.iter().position(|k| k == key) {
                values[BOUNDS.len() + position] = Some(value);
            }
        }
    }
    Ok(ReportedMetrics { values })
}

/// Whether `id` is 1–128 characters of `[A-Za-z0-9._:-]`.
pub fn valid_node_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Whether `root` is 1–128 printable ASCII characters without spaces.
fn valid_root(root: &str) -> bool {
    (1..=128).contains(&root.len()) && root.bytes().all(|b| b.is_ascii_graphic())
}

fn schema_error(field: &str, problem: &str) -> PullError {
    PullError::new(FailureReason::Schema, format!("{field}: {problem}"))
}

fn required<'a>(object: &'a Map<String, Value>, field: &str) -> Result<&'a Value, PullError> {
    object
        .get(field)
        .ok_or_else(|| schema_error(field, "is required"))
}

fn required_string<'a>(object: &'a Map<String, Value>, field: &str) -> Result<&'a str, PullError> {
    required(object, field)?
        .as_str()
        .ok_or_else(|| schema_error(field, "must be a string"))
}

fn number(value: &Value, field: &str) -> Result<f64, PullError> {
    // serde_json refuses NaN and Infinity while parsing, so every f64 here is finite.
    value
        .as_f64()
        .ok_or_else(|| schema_error(field, "must be a number"))
}

fn bounded(value: &Value, field: &str, low: f64, high: f64) -> Result<f64, PullError> {
    let n = number(value, field)?;
    if n < low || n > high {
        return Err(PullError::new(
            FailureReason::Schema,
            format!("{field}: {n} is outside [{low}, {high}]"),
        ));
    }
    Ok(n)
}

/// A JSON integer (an integral number, as JSON Schema counts `2.0` as an integer).
fn integer(value: &Value, field: &str, low: f64, high: f64) -> Result<u64, PullError> {
    let n = number(value, field)?;
    if n.fract() != 0.0 {
        return Err(schema_error(field, "must be an integer"));
    }
    let n = bounded(value, field, low, high)?;
    Ok(n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &str) -> Result<Summary, PullError> {
        decode_summary(text.as_bytes())
    }

    #[test]
    fn the_summary_path_is_appended_to_the_base_path() {
        let base = Url::parse("http://10.0.0.2:8100/nova").unwrap();
        assert_eq!(
            summary_url(&base).as_str(),
            "http://10.0.0.2:8100/nova/federation/sync/summary"
        );
    }

    #[test]
    fn decodes_the_spec_example() {
        let summary = decode(
            r#"{"schema_version":1,"node_id":"nova-a","timestamp":1762534863.47,
                "state_root":"9f2c01","state_height":1042,
                "metrics":{"peer_quality":0.91,"stability_margin":0.12,"hopf_distance":0.33,
                "spectral_radius":0.87,"gamma":0.62,"g_star":0.41,
                "g_components":{"P":0.5,"N":0.2,"Cc":0.7}}}"#,
        )
        .unwrap();
        assert_eq!(summary.node_id, "nova-a");
        assert_eq!(summary.state_height, Some(1042));
        assert_eq!(summary.metrics.g_star(), 0.41);
        let fields: Vec<_> = summary.metrics.present().collect();
        assert_eq!(fields.len(), 9);
        assert_eq!(fields[8], ("g_components_Cc", 0.7));
    }

    #[test]
    fn absent_version_means_one_and_other_majors_are_unsupported() {
        let ok = decode(r#"{"node_id":"a","timestamp":1,"metrics":{"g_star":0}}"#).unwrap();
        assert_eq!(ok.schema_version, 1);
        let err =
            decode(r#"{"schema_version":2,"node_id":"a","timestamp":1,"metrics":{"g_star":0}}"#)
                .unwrap_err();
        assert_eq!(err.reason, FailureReason::UnsupportedVersion);
    }

    #[test]
    fn names_the_field_that_is_wrong() {
        let err = decode(r#"{"node_id":"a","timestamp":1,"metrics":{"g_star":1.5}}"#).unwrap_err();
        assert_eq!(err.reason, FailureReason::Schema);
        assert_eq!(err.detail, "metrics.g_star: 1.5 is outside [0, 1]");
        let err = decode(r#"{"node_id":"a b","timestamp":1,"metrics":{"g_star":1}}"#).unwrap_err();
        assert!(err.detail.starts_with("node_id:"), "{}", err.detail);
    }

    #[test]
    fn a_repeated_key_is_a_schema_error_naming_it() {
        let err = decode(
            r#"{"node_id":"honest","node_id":"impostor","timestamp":1,"metrics":{"g_star":0}}"#,
        )
        .unwrap_err();
        assert_eq!(err.reason, FailureReason::Schema);
        assert!(
            err.detail.contains("duplicate key `node_id`"),
            "{}",
            err.detail
        );
        let err = decode(r#"{"node_id":"a","timestamp":1,"metrics":{"g_star":0,"g_star":1}}"#)
            .unwrap_err();
        assert!(
            err.detail.contains("duplicate key `g_star`"),
            "{}",
            err.detail
        );
    }

    /// The typed pass never accepts what the value-based decoder refuses, nor reads a body
    /// differently; and it does read the valid ones (else it saves nothing).
    #[test]
    fn the_typed_pass_agrees_with_the_value_decoder() {
        let valid = [
            r#"{"node_id":"a","timestamp":1,"metrics":{"g_star":0}}"#,
            r#"{"schema_version":1,"node_id":"nova-a","timestamp":1762534863.47,"state_root":"9f2c01","state_height":1042,"metrics":{"peer_quality":0.91,"stability_margin":-0.12,"hopf_distance":0.33,"spectral_radius":0.87,"gamma":0.62,"g_star":0.41,"g_components":{"P":0.5,"N":0.2,"Cc":0.7,"Z":1}}}"#,
            r#"{"node_id":"n_1","timestamp":1,"extra":{"a":[1,{"b":2}]},"metrics":{"g_star":1,"new":"x"}}"#,
            r#"{"node_id":"a","timestamp":1,"state_height":9007199254740991,"metrics":{"g_star":0.5}}"#,
        ];
        let refused = [
            r#"{"node_id":"a","timestamp":1,"metrics":{"g_star":0},"x":{"k":1,"k":2}}"#,
            r#"{"node_id":"a","timestamp":1,"metrics":{"g_star":0,"u":[{"k":1,"k":2}]}}"#,
            r#"{"node_id":"a","node_id":"b","timestamp":1,"metrics":{"g_star":0}}"#,
            r#"{"node_id":"a","timestamp":1,"metrics":{"g_star":0,"g_components":{"P":1,"P":0}}}"#,
            r#"{"node_id":"a","timestamp":1,"state_height":9007199254740993,"metrics":{"g_star":0}}"#,
            r#"{"node_id":"a","timestamp":1,"state_height":-1,"metrics":{"g_star":0}}"#,
            r#"{"node_id":"a","timestamp":1,"state_root":"","metrics":{"g_star":0}}"#,
            r#"{"node_id":"a","timestamp":1,"state_root":null,"metrics":{"g_star":0}}"#,
            r#"{"node_id":"a","timestamp":0,"metrics":{"g_star":0}}"#,
            r#"{"node_id":"a b","timestamp":1,"metrics":{"g_star":0}}"#,
            r#"{"schema_version":2,"node_id":"a","timestamp":1,"metrics":{"g_star":0}}"#,
            r#"{"node_id":"a","timestamp":1,"metrics":{"gamma":0.5}}"#,
            r#"{"node_id":"a","timestamp":1,"metrics":{"g_star":0,"g_components":{"Z":-1}}}"#,
            r#"{"node_id":"a","timestamp":1,"metrics":{"g_star":0}} x"#,
            r#"[1]"#,
        ];
        // Accepted by the value decoder only: an integer written as 2.0 (JSON Schema's rule).
        let slow_only = [
            r#"{"schema_version":1.0,"node_id":"a","timestamp":1,"metrics":{"g_star":0}}"#,
            r#"{"node_id":"a","timestamp":1,"state_height":1e3,"metrics":{"g_star":0}}"#,
        ];
        for body in valid {
            let typed = decode_typed(body.as_bytes());
            assert!(typed.is_some(), "{body}");
            assert_eq!(typed, decode_by_value(body.as_bytes()).ok(), "{body}");
        }
        for body in refused {
            assert_eq!(decode_typed(body.as_bytes()), None, "{body}");
            assert!(decode_by_value(body.as_bytes()).is_err(), "{body}");
        }
        for body in slow_only {
            assert_eq!(decode_typed(body.as_bytes()), None, "{body}");
            assert!(decode(body).is_ok(), "{body}");
        }
    }

    #[test]
    fn nan_literal_is_a_decode_error() {
        let err = decode(r#"{"node_id":"a","timestamp":1,"metrics":{"g_star":NaN}}"#).unwrap_err();
        assert_eq!(err.reason, FailureReason::Decode);
    }

    #[test]
    fn unknown_g_components_are_validated_but_not_exported() {
        let s = decode(
            r#"{"node_id":"a","timestamp":1,"metrics":{"g_star":0.5,"g_components":{"Z":0.1}}}"#,
        )
        .unwrap();
        assert_eq!(s.metrics.present().count(), 1);
        let err = decode(
            r#"{"node_id":"a","timestamp":1,"metrics":{"g_star":0.5,"g_components":{"Z":2}}}"#,
        )
        .unwrap_err();
        assert_eq!(err.reason, FailureReason::Schema);
    }
}
