//! The reconciler's loop: after every completed cycle it evaluates the guards against the
//! store's facts, sends at most one request at a time, and records the answer.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::store::Store;
use crate::timeline::Anchor;

use super::client::{self, api_url, send};
use super::guards::{Answer, Outgoing};
use super::Reconciler;

/// Runs after every completed cycle until `shutdown`; a request in flight at shutdown is
/// still awaited (bounded by its timeout) so its outcome is recorded.
pub async fn run(
    reconciler: Reconciler,
    store: Store,
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
    type InFlight = Pin<Box<dyn Future<Output = (Outgoing, Answer)> + Send>>;
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
                let now = Anchor::now();
                if let Some(outgoing) = reconciler.evaluate(&store.reconcile_facts(now.instant), now) {
                    // Read at each request: a reload may have changed the node or the path.
                    let config = reconciler.config();
                    let url = api_url(&store.node_url(), &config.path);
                    let client = client.clone();
                    in_flight = Some(Box::pin(async move {
                        let answer = send(&client, url, &config, &outgoing).await;
                        (outgoing, answer)
                    }));
                }
            }
        }
    }
}
