#!/usr/bin/env python3
"""Builds the alerting rules for a deployment from alerts/*.rules.yml.

    python3 deploy/build_rules.py
        rebuilds deploy/kubernetes/prometheusrule.yaml (tests/deploy.rs fails if it is stale);
    python3 deploy/build_rules.py --runbook-base URL --out DIR
        writes the three rule files and prometheusrule.yaml to DIR, every runbook_url
        pointing at URL#<alert name in lower case> instead of the shipped base
        (docs/runbook.md in the repository);
    python3 deploy/build_rules.py --selector 'job="nova-sidecar"' --out DIR
        the same with the sidecars' scrape selector in place of the shipped
        job="peerscope" (in expressions and texts); both options combine.
"""
import argparse
import pathlib
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The sidecars' scrape selector the shipped rules use.
SHIPPED_SELECTOR = 'job="peerscope"'

# In the order one Prometheus (and the PrometheusRule) loads them.
RULE_FILES = ["peerscope.rules.yml", "observations.rules.yml", "consensus.rules.yml"]


def with_runbook_base(groups, base):
    """The groups with every alert's runbook_url rebased onto `base` (None: unchanged)."""
    for group in groups:
        for rule in group["rules"]:
            if base is not None and "alert" in rule:
                rule["annotations"]["runbook_url"] = f"{base}#{rule['alert'].lower()}"
    return groups


def with_selector(groups, selector):
    """The groups with the shipped job selector replaced by `selector` (None: unchanged)."""
    if selector is None:
        return groups
    for group in groups:
        for rule in group["rules"]:
            rule["expr"] = rule["expr"].replace(SHIPPED_SELECTOR, selector)
            for key, text in rule.get("annotations", {}).items():
                rule["annotations"][key] = text.replace(SHIPPED_SELECTOR, selector)
    return groups


def prometheus_rule(groups):
    """The PrometheusRule resource (prometheus-operator) that carries `groups`."""
    resource = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "peerscope", "labels": {"app": "nova"}},
        "spec": {"groups": groups},
    }
    text = "# Built from alerts/*.rules.yml by deploy/build_rules.py; do not edit.\n"
    return text + yaml.safe_dump(resource, sort_keys=False, width=200)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runbook-base", help="where your copy of docs/runbook.md is served")
    parser.add_argument("--selector", help=f"the sidecars' scrape selector in place of {SHIPPED_SELECTOR}")
    parser.add_argument("--out", type=pathlib.Path, help="directory to write to (default: the repository's files)")
    args = parser.parse_args()
    if (args.runbook_base is not None or args.selector is not None) and args.out is None:
        parser.error("--runbook-base and --selector need --out: the shipped files keep the shipped values")
    every_group = []
    for name in RULE_FILES:
        groups = yaml.safe_load((ROOT / "alerts" / name).read_text())["groups"]
        groups = with_selector(with_runbook_base(groups, args.runbook_base), args.selector)
        every_group += groups
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            text = f"# Built from alerts/{name} by deploy/build_rules.py; do not edit.\n"
            (args.out / name).write_text(text + yaml.safe_dump({"groups": groups}, sort_keys=False, width=200))
    target = (args.out or ROOT / "deploy/kubernetes") / "prometheusrule.yaml"
    target.write_text(prometheus_rule(every_group))


if __name__ == "__main__":
    main()
