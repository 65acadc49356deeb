//! The body of a reconciliation request (`contracts/reconcile_request@1.yaml`): what this
//! sidecar observed, and the confirmation's evidence when there is some.

use serde_json::json;
use tokio::time::Instant;

use super::confirmation::Confirmer;
use crate::figures::decision::{Facts, Target};

/// The body of `contracts/reconcile_request@1.yaml`. When the target was confirmed on
/// random members, the members found holding it follow the observed sources, and the
/// evidence is attached; `observed` stays what this sidecar observes.
pub(super) fn request_body(
    confirmer: &Confirmer,
    request_id: &str,
    facts: &Facts,
    target: &Target,
    dry_run: bool,
    now: Instant,
) -> serde_json::Value {
    let mut body = base_request_body(request_id, facts, target, dry_run);
    let evidence = confirmer.view(now);
    let confirmed = evidence.state == "confirmed"
        && evidence.target_root.as_deref() == Some(target.root.as_str());
    if confirmed {
        let mut sources = target.sources.clone();
        for source in confirmer.sampled_sources(&target.root) {
            if !sources.iter().any(|s| s.url == source.url) {
                sources.push(source.clone());
            }
        }
        body["sources"] = json!(sources);
        body["confirmation"] = json!({
            "voters": evidence.voters,
            "sampled": evidence.sampled,
            "for_target": evidence.for_target,
            "statistic": evidence.statistic,
        });
    }
    body
}

/// The body of `contracts/reconcile_request@1.yaml` from what this sidecar observes.
fn base_request_body(
    request_id: &str,
    facts: &Facts,
    target: &Target,
    dry_run: bool,
) -> serde_json::Value {
    let mut body = json!({
        "request_id": request_id,
        "reason": "state_divergence",
        "local_root": facts.local_root,
        "target_root": target.root,
        "sources": target.sources,
        "observed": {
            "live_peers": facts.live_peers,
            "voters": target.voters,
            "agreeing_with_target": target.sources.len(),
            "min_streak": target.sources.iter().map(|s| s.streak).min().unwrap_or(0),
        },
        "dry_run": dry_run,
    });
    if let Some(height) = target.height {
        body["target_height"] = json!(height);
    }
    body
}
