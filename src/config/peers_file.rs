//! The peers file: Prometheus `file_sd` JSON or YAML, `[{"targets": ["host:port", …],
//! "labels": {"__scheme__": "http", "__path__": "/nova", "name": "…"}}]`. Targets without
//! a scheme are `http://`; `__metrics_path__` (Prometheus' name) is understood beside
//! `__path__`; `name` may name a group of one target only. The same list comes over HTTP
//! from an http_sd endpoint.

use std::collections::HashMap;
use std::path::Path;

use super::parse::base_url;
use super::{ConfigError, PeerConfig};
use crate::outside::file::read_bounded;

/// One group of a `file_sd` file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetGroup {
    targets: Vec<String>,
    #[serde(default)]
    labels: HashMap<String, String>,
}

/// The largest peers file read, in bytes: room for some 100,000 targets.
pub(crate) const FILE_LIMIT: u64 = 32 << 20;

/// Reads a peers file (a regular file of at most [`FILE_LIMIT`] bytes); errors name the file.
pub(crate) fn read(path: &Path) -> Result<Vec<PeerConfig>, ConfigError> {
    let origin = format!("peers file {}", path.display());
    let text =
        read_bounded(path, FILE_LIMIT).map_err(|e| ConfigError::new(&origin, e.to_string()))?;
    parse(&text, &origin)
}

/// The most targets one list may name: a peers file or one http_sd answer.
pub(crate) const MAX_TARGETS: usize = 100_000;

/// Parses a peers file's bytes, JSON or YAML; `origin` names it in errors.
pub fn parse(text: &[u8], origin: &str) -> Result<Vec<PeerConfig>, ConfigError> {
    // JSON first (what most generators write); YAML as Prometheus also reads it. A text
    // that opens like JSON gets the JSON parser's message.
    let looks_like_json = text.trim_ascii_start().first() == Some(&b'[');
    let groups: Vec<TargetGroup> = match serde_json::from_slice(text) {
        Ok(groups) => groups,
        Err(json) if looks_like_json => {
            return Err(ConfigError::new(
                origin,
                format!("not a file_sd target list: {json}"),
            ))
        }
        Err(_) => {
            // An alias copies its anchor's value each time it is used: a 32 MiB file of
            // aliases to one large value would take gigabytes. A target list needs none.
            if has_anchor(text) {
                return Err(ConfigError::new(
                    origin,
                    "YAML anchors and aliases (&name, *name) are not accepted in a target list",
                ));
            }
            yaml_serde::from_slice(text).map_err(|e| {
                ConfigError::new(
                    origin,
                    format!("not a file_sd target list (JSON or YAML): {e}"),
                )
            })?
        }
    };
    targets(groups, origin)
}

/// Parses an http_sd answer: JSON only, as Prometheus' http_sd format is.
pub(crate) fn parse_json(text: &[u8], origin: &str) -> Result<Vec<PeerConfig>, ConfigError> {
    let groups: Vec<TargetGroup> = serde_json::from_slice(text)
        .map_err(|e| ConfigError::new(origin, format!("not an http_sd target list: {e}")))?;
    targets(groups, origin)
}

/// Whether a YAML text defines an anchor: `&` where a node starts.
fn has_anchor(text: &[u8]) -> bool {
    text.iter().enumerate().any(|(at, &byte)| {
        byte == b'&'
            && (at == 0 || b" \t\r\n[{,".contains(&text[at - 1]))
            && text
                .get(at + 1)
                .is_some_and(|next| !next.is_ascii_whitespace())
    })
}

/// The peers the groups name.
fn targets(groups: Vec<TargetGroup>, origin: &str) -> Result<Vec<PeerConfig>, ConfigError> {
    let count: usize = groups.iter().map(|g| g.targets.len()).sum();
    if count > MAX_TARGETS {
        return Err(ConfigError::new(
            origin,
            format!("{count} targets: more than the {MAX_TARGETS} a list may name"),
        ));
    }
    let mut peers = Vec::new();
    for (index, group) in groups.into_iter().enumerate() {
        let scheme = group
            .labels
            .get("__scheme__")
            .map_or("http", String::as_str);
        let prefix = group
            .labels
            .get("__path__")
            .or_else(|| group.labels.get("__metrics_path__"))
            .map_or("", String::as_str);
        let name = group.labels.get("name");
        // Found by the peers_file fuzz target: an empty name made an empty `peer` label.
        if name.is_some_and(|n| n.trim().is_empty()) {
            return Err(ConfigError::new(
                origin,
                format!("group {index}: label `name` must not be empty"),
            ));
        }
        if name.is_some() && group.targets.len() > 1 {
            return Err(ConfigError::new(
                origin,
                format!(
                    "group {index}: label `name` can name only one target, not {}",
                    group.targets.len()
                ),
            ));
        }
        for target in &group.targets {
            if target.starts_with("dns+") || target.starts_with("dnssrv+") {
                return Err(ConfigError::new(
                    origin,
                    format!("group {index}: target {target:?}: DNS discovery addresses go in the peer list (--peer, [[peers]] url), not in a target list"),
                ));
            }
            let url = base_url(&format!("{scheme}://{target}{prefix}")).map_err(|p| {
                ConfigError::new(origin, format!("group {index}: target {target:?}: {p}"))
            })?;
            peers.push(PeerConfig::new(url, name.cloned()));
        }
    }
    Ok(peers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_file_sd_peers_file() {
        let text = br#"[{"targets": ["10.0.0.5:8100", "10.0.0.6:8100"]},
                        {"targets": ["10.0.0.7:8100"], "labels": {"__scheme__": "https", "__path__": "/nova", "name": "nova-g"}}]"#;
        let peers = parse(text, "peers.json").unwrap();
        assert_eq!(peers.len(), 3);
        assert_eq!(peers[0].url.as_str(), "http://10.0.0.5:8100/");
        assert_eq!(peers[2].label, "nova-g");
        assert_eq!(peers[2].url.as_str(), "https://10.0.0.7:8100/nova");
        let err = parse(
            br#"[{"targets": ["a:1", "b:2"], "labels": {"name": "x"}}]"#,
            "p",
        )
        .unwrap_err();
        assert!(err.problem.contains("can name only one target"), "{err}");
        let err = parse(br#"[{"targets": ["a:1"], "labels": {"name": ""}}]"#, "p").unwrap_err();
        assert!(
            err.problem.contains("label `name` must not be empty"),
            "{err}"
        );
    }

    #[test]
    fn reads_a_yaml_file_sd_peers_file_with_metrics_path() {
        let text = b"- targets: ['10.0.0.5:8100']\n  labels:\n    __metrics_path__: /nova\n    name: nova-e\n- targets:\n    - 10.0.0.6:8100\n";
        let peers = parse(text, "peers.yml").unwrap();
        assert_eq!(peers.len(), 2);
        assert_eq!(peers[0].url.as_str(), "http://10.0.0.5:8100/nova");
        assert_eq!(peers[0].label, "nova-e");
        let err = parse(b"[{\"targets\": 5}]", "p").unwrap_err();
        assert!(
            err.problem
                .contains("not a file_sd target list: invalid type"),
            "{err}"
        );
        let err = parse(b"targets: nope", "p").unwrap_err();
        assert!(err.problem.contains("(JSON or YAML)"), "{err}");
        // Aliases would copy a large value once per use: refused before parsing.
        let bomb = b"- targets: &t ['10.0.0.5:8100']\n- targets: *t\n";
        let err = parse(bomb, "p").unwrap_err();
        assert!(err.problem.contains("anchors and aliases"), "{err}");
        // `&` inside a value is no anchor.
        let plain = b"- targets: ['10.0.0.5:8100']\n  labels: {name: R&D}\n";
        assert_eq!(parse(plain, "p").unwrap()[0].label, "R&D");
        let err = parse(br#"[{"targets": ["dnssrv+x.test"]}]"#, "p").unwrap_err();
        assert!(err.problem.contains("go in the peer list"), "{err}");
        let err = parse_json(b"- targets: ['10.0.0.5:8100']", "p").unwrap_err();
        assert!(err.problem.contains("not an http_sd target list"), "{err}");
    }
}
