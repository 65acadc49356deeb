//! The dashboards under grafana/dashboard-linter's rules (issue 18), ported: the linter is
//! a Go program not packaged for Debian, so its rules are restated here, each under its
//! own name, and `dashboards/.lint` (the linter's own exclusions format) lists the
//! deliberate exceptions with their reasons — an exclusion nothing needs is an error too.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

const DASHBOARDS: [&str; 3] = [
    "peerscope-overview.json",
    "peerscope-peer.json",
    "peerscope-sidecar.json",
];

/// A rule broken at (rule, dashboard title, panel title or "" for the dashboard).
type Finding = (String, String, String);

fn dashboard(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("dashboards")
        .join(file);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn uses_datasource_variable(datasource: &Value) -> bool {
    datasource == "$datasource"
        || datasource["uid"] == "${datasource}"
        || datasource["uid"] == "$datasource"
}

/// The label matchers of every selector in `expr` (the text between braces).
fn selectors(expr: &str) -> Vec<&str> {
    expr.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(inside, _)| inside))
        .collect()
}

fn lint(dashboard: &Value) -> Vec<Finding> {
    let title = dashboard["title"].as_str().unwrap().to_owned();
    let mut findings = Vec::new();
    let mut found = |rule: &str, panel: &str| {
        findings.push((rule.to_owned(), title.clone(), panel.to_owned()));
    };
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    let datasources: Vec<&Value> = variables
        .iter()
        .filter(|v| v["type"] == "datasource")
        .collect();
    if datasources.len() != 1
        || datasources[0]["name"] != "datasource"
        || datasources[0]["label"] != "Data Source"
        || datasources[0]["query"] != "prometheus"
    {
        found("template-datasource-rule", "");
    }
    for (rule, name) in [
        ("template-job-rule", "job"),
        ("template-instance-rule", "instance"),
    ] {
        let variable = variables.iter().find(|v| v["name"] == name);
        let good = variable.is_some_and(|v| {
            v["label"] == name
                && v["type"] == "query"
                && uses_datasource_variable(&v["datasource"])
                && v["multi"] == true
                && v["allValue"] == ".+"
        });
        if !good {
            found(rule, "");
        }
    }
    if variables
        .iter()
        .any(|v| v["type"] == "query" && v["refresh"] != 2)
    {
        found("template-on-time-change-reload-rule", "");
    }
    if dashboard["editable"] != false {
        found("template-uneditable-rule", "");
    }
    for panel in dashboard["panels"].as_array().unwrap() {
        let name = panel["title"].as_str().unwrap_or("");
        if panel["type"] == "row" {
            continue;
        }
        if !uses_datasource_variable(&panel["datasource"]) {
            found("panel-datasource-rule", name);
        }
        let described = panel["description"].as_str().is_some_and(|d| !d.is_empty());
        if name.is_empty() || !described {
            found("panel-title-description-rule", name);
        }
        let kind = panel["type"].as_str().unwrap_or("");
        let with_units = [
            "stat",
            "singlestat",
            "graph",
            "table",
            "timeseries",
            "gauge",
        ];
        let defaults = &panel["fieldConfig"]["defaults"];
        let mapped = defaults["mappings"]
            .as_array()
            .is_some_and(|m| !m.is_empty());
        let unit = defaults["unit"].as_str().unwrap_or("");
        if with_units.contains(&kind) && !mapped && unit.is_empty() {
            found("panel-units-rule", name);
        }
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or("");
            let ranged = ["rate(", "irate(", "increase("]
                .iter()
                .any(|f| expr.contains(f));
            let fixed_range = expr
                .split('[')
                .skip(1)
                .any(|rest| !rest.starts_with("$__rate_interval]"));
            if ranged && fixed_range {
                found("target-rate-interval-rule", name);
            }
            let matchers = selectors(expr);
            if matchers.is_empty() || matchers.iter().any(|m| !m.contains(r#"job=~"$job""#)) {
                found("target-job-rule", name);
            }
            if matchers.is_empty()
                || matchers
                    .iter()
                    .any(|m| !m.contains(r#"instance=~"$instance""#))
            {
                found("target-instance-rule", name);
            }
        }
    }
    findings.sort();
    findings.dedup();
    findings
}

/// `dashboards/.lint`: (rule, dashboard, panel) excluded, each rule with its reason.
fn exclusions() -> BTreeSet<Finding> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards/.lint");
    let document: yaml_serde::Value =
        yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut excluded = BTreeSet::new();
    for (rule, exclusion) in document["exclusions"].as_mapping().into_iter().flatten() {
        let rule = rule.as_str().unwrap();
        assert!(
            exclusion["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{rule}: an exclusion says why"
        );
        for entry in exclusion["entries"].as_sequence().unwrap() {
            excluded.insert((
                rule.to_owned(),
                entry["dashboard"].as_str().unwrap().to_owned(),
                entry["panel"].as_str().unwrap_or("").to_owned(),
            ));
        }
    }
    excluded
}

#[test]
fn the_dashboards_pass_dashboard_linters_rules_but_for_their_reasoned_exclusions() {
    let findings: BTreeSet<Finding> = DASHBOARDS
        .iter()
        .flat_map(|file| lint(&dashboard(file)))
        .collect();
    let excluded = exclusions();
    let unexcused: Vec<_> = findings.difference(&excluded).collect();
    let needless: Vec<_> = excluded.difference(&findings).collect();
    assert!(
        unexcused.is_empty() && needless.is_empty(),
        "broken, not excluded: {unexcused:#?}\nexcluded, not broken: {needless:#?}"
    );
}

/// The port catches what the linter catches (each rule fails on a dashboard built to
/// break it).
#[test]
fn each_ported_rule_finds_what_it_is_about() {
    let broken = serde_json::json!({
        "title": "broken",
        "editable": true,
        "templating": {"list": [
            {"name": "ds", "type": "datasource", "label": "x", "query": "prometheus"},
            {"name": "job", "label": "Job", "type": "query", "datasource": {"uid": "${datasource}"},
             "multi": false, "refresh": 1},
        ]},
        "panels": [{
            "title": "p", "type": "stat", "datasource": {"uid": "prom"},
            "fieldConfig": {"defaults": {}},
            "targets": [{"expr": "rate(up{job=\"x\"}[5m])"}],
        }],
    });
    let rules: BTreeSet<String> = lint(&broken).into_iter().map(|f| f.0).collect();
    let expected: BTreeSet<String> = [
        "template-datasource-rule",
        "template-job-rule",
        "template-instance-rule",
        "template-on-time-change-reload-rule",
        "template-uneditable-rule",
        "panel-datasource-rule",
        "panel-title-description-rule",
        "panel-units-rule",
        "target-rate-interval-rule",
        "target-job-rule",
        "target-instance-rule",
    ]
    .iter()
    .map(|r| r.to_string())
    .collect();
    assert_eq!(rules, expected);
}
