#!/usr/bin/env python3
"""Builds deploy/kubernetes/prometheusrule.yaml from alerts/peerscope.rules.yml.
tests/deploy.rs fails if the two drift apart."""
import pathlib
import yaml

root = pathlib.Path(__file__).resolve().parents[2]
rules = yaml.safe_load((root / "alerts/peerscope.rules.yml").read_text())
resource = {
    "apiVersion": "monitoring.coreos.com/v1",
    "kind": "PrometheusRule",
    "metadata": {"name": "peerscope", "labels": {"app": "nova"}},
    "spec": {"groups": rules["groups"]},
}
text = "# Built from alerts/peerscope.rules.yml by build_prometheusrule.py; do not edit.\n"
text += yaml.safe_dump(resource, sort_keys=False, width=200)
(root / "deploy/kubernetes/prometheusrule.yaml").write_text(text)
