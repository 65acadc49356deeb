#!/usr/bin/env python3
"""Builds deploy/kubernetes/prometheusrule.yaml from the rule files in alerts/ (all of them:
one Prometheus, as prometheus-operator runs it). tests/deploy.rs fails if they drift apart."""
import pathlib
import yaml

root = pathlib.Path(__file__).resolve().parents[2]
files = ["peerscope.rules.yml", "observations.rules.yml", "consensus.rules.yml"]
groups = [g for f in files for g in yaml.safe_load((root / "alerts" / f).read_text())["groups"]]
resource = {
    "apiVersion": "monitoring.coreos.com/v1",
    "kind": "PrometheusRule",
    "metadata": {"name": "peerscope", "labels": {"app": "nova"}},
    "spec": {"groups": groups},
}
text = "# Built from alerts/*.rules.yml by build_prometheusrule.py; do not edit.\n"
text += yaml.safe_dump(resource, sort_keys=False, width=200)
(root / "deploy/kubernetes/prometheusrule.yaml").write_text(text)
