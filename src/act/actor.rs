//! The reconciler's loop: after every completed cycle it evaluates the guards against the
//! store's facts, sends at most one request at a time, and records the answer. Under
//! sampled observation it also pulls, beside the cycle, the members the confirmation drew
//! and the roaming probe — with the cycle's poller, so with the same contract, limits and
//! peer TLS as any pull.

use std::future::Future;
use std::pin::Pin;

use futures_util::future::join_all;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::figures::confirmation::Verdict;
use crate::figures::decision::Facts;
use crate::pull::poller::{Limits, Poller};
use crate::store::Store;
use crate::timeline::Anchor;

use super::client::{self, api_url, send};
use super::confirmation::{Draws, Sample};
use super::guards::{Answer, Outgoing};
use super::Reconciler;

type InFlight = Pin<Box<dyn Future<Output = (Outgoing, Answer)> + Send>>;

/// Runs after every completed cycle until `shutdown`; a request in flight at shutdown is
/// still awaited (bounded by its timeout) so its outcome is recorded.
pub async fn run(
    reconciler: Reconciler,
    store: Store,
    poller: Poller,
    mut cycles: watch::Receiver<u64>,
    shutdown: CancellationToken,
) {
    let client = match client::build() {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot build the reconciliation client; reconciliation is off");
            return;
        }
    };
    let mut in_flight: Option<InFlight> = None;
    let mut cycles_open = true;
    loop {
        if !cycles_open && in_flight.is_none() {
            break;
        }
        tokio::select! {
            biased;
            _ = shutdown.cancelled(), if in_flight.is_none() => break,
            answer = async { in_flight.as_mut().expect("guarded").await }, if in_flight.is_some() => {
                in_flight = None;
                let (outgoing, answer) = answer;
                if reconciler.record(&outgoing, answer, Anchor::now()) {
                    store.reset_streaks();
                }
            }
            changed = cycles.changed(), if cycles_open => {
                if changed.is_err() {
                    cycles_open = false; // the poll loop has stopped
                    continue;
                }
                if shutdown.is_cancelled() {
                    continue;
                }
                let membership = store.membership();
                let now = Anchor::now();
                let facts = store.reconcile_facts(now.instant);
                if let Some(outgoing) = reconciler.evaluate(&facts, &membership, now) {
                    // Sent now; this interval's probe waits for the next one.
                    in_flight = Some(request(&reconciler, &store, &client, outgoing));
                    continue;
                }
                let draws = reconciler.draws(&membership);
                if draws.is_empty() {
                    continue;
                }
                let confirmed = tokio::select! {
                    _ = shutdown.cancelled() => continue,
                    verdict = pull_draws(&reconciler, &store, &poller, &facts, draws) => verdict == Verdict::Confirmed,
                };
                // A confirmation that just finished acts now, not an interval later (this
                // cycle then counts one `confirming` suppression before its request).
                if confirmed && in_flight.is_none() {
                    let now = Anchor::now();
                    let facts = store.reconcile_facts(now.instant);
                    if let Some(outgoing) = reconciler.evaluate(&facts, &membership, now) {
                        in_flight = Some(request(&reconciler, &store, &client, outgoing));
                    }
                }
            }
        }
    }
}

/// The request to the node, as a future that yields its answer.
fn request(
    reconciler: &Reconciler,
    store: &Store,
    client: &reqwest::Client,
    outgoing: Outgoing,
) -> InFlight {
    // Read at each request: a reload may have changed the node or the path.
    let config = reconciler.config();
    let url = api_url(&store.node_url(), &config.path);
    let client = client.clone();
    Box::pin(async move {
        let answer = send(&client, url, &config, &outgoing).await;
        (outgoing, answer)
    })
}

/// Pulls the probe and the confirmation's draws concurrently and hands their answers to
/// the reconciler; returns the confirmation's verdict afterwards.
async fn pull_draws(
    reconciler: &Reconciler,
    store: &Store,
    poller: &Poller,
    facts: &Facts,
    draws: Draws,
) -> Verdict {
    let positions: Vec<usize> = draws
        .probe
        .iter()
        .chain(&draws.confirmation)
        .copied()
        .collect();
    let Some(targets) = store.members_at(draws.generation, &positions) else {
        return Verdict::Pending; // the member list changed: these draws are void
    };
    let pacing = store.pacing();
    let limits = Limits {
        timeout: pacing.timeout,
        body_limit: pacing.body_limit,
    };
    let outcomes = join_all(
        targets
            .iter()
            .map(|(t, _)| poller.pull(&t.summary_url, &t.transport, limits)),
    )
    .await;
    // At most 2·K + 1 pulls at once: bounded without the cycle's semaphore.
    let mut samples = targets.into_iter().zip(outcomes).map(
        |((target, url), outcome)| {
            let (node_id, root) = match outcome.result {
                Ok(summary) => (Some(summary.node_id), summary.state_root),
                Err(error) => {
                    tracing::debug!(peer = %target.label, reason = %error.reason, detail = %error.detail, "confirmation pull failed");
                    (None, None)
                }
            };
            Sample {
                peer: target.label,
                url,
                node_id,
                root,
            }
        },
    );
    if draws.probe.is_some() {
        let probe = samples.next().expect("the probe was pulled first");
        reconciler.record_probe(draws.generation, probe, facts.local_root.as_deref());
    }
    let samples: Vec<Sample> = samples.collect();
    if samples.is_empty() {
        return Verdict::Pending;
    }
    let local_node_id = facts.local_node_id.as_deref();
    let now = tokio::time::Instant::now();
    reconciler.record_draws(draws.generation, samples, local_node_id, now)
}
