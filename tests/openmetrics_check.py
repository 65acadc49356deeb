"""Reads OpenMetrics text on stdin and parses it with the Prometheus project's reference
parser (prometheus_client.openmetrics), which refuses what the format does not allow
(a missing `# EOF`, a counter family named with `_total`, samples out of their family...).
Prints what it found; exits non-zero on the first error. Used by tests/openmetrics.rs."""
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

families = list(text_string_to_metric_families(sys.stdin.read()))
samples = [s for f in families for s in f.samples]
created = [s for s in samples if s.name.endswith("_created")]
print(f"{len(families)} families, {len(samples)} samples, {len(created)} _created")
