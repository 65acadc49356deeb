//! The deployment files stay true to what they are built from.

use std::path::Path;

/// The rule files, in the order a single Prometheus (and the PrometheusRule) loads them.
pub const RULE_FILES: [&str; 3] = [
    "alerts/peerscope.rules.yml",
    "alerts/observations.rules.yml",
    "alerts/consensus.rules.yml",
];

/// Every rule group of every rule file.
fn all_groups() -> Vec<serde_yaml::Value> {
    RULE_FILES
        .iter()
        .flat_map(|file| yaml(file)["groups"].as_sequence().unwrap().clone())
        .collect()
}

fn yaml(path: &str) -> serde_yaml::Value {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    serde_yaml::from_str(&std::fs::read_to_string(&full).unwrap())
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_prometheusrule_carries_exactly_the_alerting_rules() {
    let resource = yaml("deploy/kubernetes/prometheusrule.yaml");
    assert_eq!(resource["kind"], "PrometheusRule");
    assert_eq!(
        resource["spec"]["groups"].as_sequence().unwrap(),
        &all_groups(),
        "deploy/kubernetes/prometheusrule.yaml is stale: run python3 deploy/kubernetes/build_prometheusrule.py"
    );
}

#[test]
fn every_alert_has_severity_summary_description_and_a_runbook_section() {
    let runbook =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/runbook.md"))
            .unwrap();
    let mut count = 0;
    for group in &all_groups() {
        for rule in group["rules"].as_sequence().unwrap() {
            let Some(name) = rule["alert"].as_str() else {
                assert!(rule["record"].is_string(), "a rule is an alert or a record");
                continue;
            };
            assert!(rule["labels"]["severity"].is_string(), "{name}: severity");
            for key in ["summary", "description", "runbook_url"] {
                assert!(
                    rule["annotations"][key]
                        .as_str()
                        .is_some_and(|s| !s.is_empty()),
                    "{name}: {key}"
                );
            }
            let anchor = rule["annotations"]["runbook_url"]
                .as_str()
                .unwrap()
                .rsplit('#')
                .next()
                .unwrap();
            assert_eq!(anchor, name.to_lowercase(), "{name}: runbook anchor");
            assert!(
                runbook.contains(&format!("## {name}")),
                "docs/runbook.md has no section for {name}"
            );
            count += 1;
        }
    }
    assert_eq!(count, 17);
}

#[test]
fn dashboards_have_fixed_unique_uids_and_no_import_inputs() {
    let mut uids = std::collections::BTreeSet::new();
    for file in [
        "peerscope-overview.json",
        "peerscope-peer.json",
        "peerscope-sidecar.json",
    ] {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("dashboards")
                .join(file),
        )
        .unwrap();
        assert!(
            !text.contains("${DS_"),
            "{file}: `${{DS_…}}` inputs break file provisioning"
        );
        let board: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(
            uids.insert(board["uid"].as_str().unwrap().to_owned()),
            "{file}: duplicate uid"
        );
        let variables: Vec<&str> = board["templating"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert!(
            variables.starts_with(&["datasource", "job", "instance"]),
            "{file}: {variables:?}"
        );
        assert!(
            !text.contains("[5m]") && !text.contains("[1m]"),
            "{file}: use $__rate_interval in rates"
        );
    }
}
