//! The poll loop: a cycle every `interval` pulls the local node and every peer
//! concurrently (bounded, with start times spread over a small jitter), then hands all
//! outcomes to the store at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::pull::outcome::{Pacing, PullOutcome, PullTarget, TargetId};
use crate::pull::poller::{Limits, Poller};
use crate::store::Store;
use crate::timeline::later;

/// Pull start times fall into this many slots across the jitter: enough to spread the
/// load, few enough that pulls in one slot share the runtime's wake-ups (one timer per
/// slot instead of one per pull).
const JITTER_SLOTS: u32 = 10;

/// Runs cycles until `shutdown` is cancelled. In-flight pulls are cancelled with it.
/// `cycles` carries the number of completed cycles to whoever acts on them. The pacing is
/// read from the store before every cycle, so a reload takes effect at the next one.
pub(crate) async fn run_poll_loop(
    store: Store,
    poller: Poller,
    cycles: watch::Sender<u64>,
    shutdown: CancellationToken,
) {
    let mut pacing = store.pacing();
    let mut ticker = ticker(pacing.interval);
    let mut limit = Arc::new(Semaphore::new(pacing.max_concurrent_pulls));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let current = store.pacing();
        if current.interval != pacing.interval {
            ticker = ticker_after(current.interval);
        }
        if current.max_concurrent_pulls != pacing.max_concurrent_pulls {
            limit = Arc::new(Semaphore::new(current.max_concurrent_pulls));
        }
        pacing = current;
        store.beat(Instant::now());
        tokio::select! {
            _ = shutdown.cancelled() => break,
            () = run_cycle(&store, &poller, pacing, &limit) => {}
        }
        cycles.send_modify(|completed| *completed += 1);
    }
    tracing::info!("poll loop stopped");
}

fn ticker(interval: Duration) -> tokio::time::Interval {
    let mut ticker = tokio::time::interval(interval);
    // A cycle that overran (all peers timing out, a stalled machine) must not be followed
    // by a burst of catch-up cycles.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    ticker
}

/// A ticker whose first tick is one `interval` from now (the current cycle just ran).
fn ticker_after(interval: Duration) -> tokio::time::Interval {
    let mut ticker = tokio::time::interval_at(later(Instant::now(), interval), interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    ticker
}

/// One cycle: pull everything, then record it.
pub(crate) async fn run_cycle(
    store: &Store,
    poller: &Poller,
    pacing: Pacing,
    limit: &Arc<Semaphore>,
) {
    let plan = store.pull_plan();
    let jitter = pacing.jitter();
    let limits = Limits {
        timeout: pacing.timeout,
        body_limit: pacing.body_limit,
    };
    let mut pulls = JoinSet::new();
    for (is_node, target) in
        std::iter::once((true, plan.node)).chain(plan.peers.into_iter().map(|p| (false, p)))
    {
        let poller = poller.clone();
        let limit = Arc::clone(limit);
        pulls.spawn(async move {
            let delay = jitter * fastrand::u32(0..JITTER_SLOTS) / JITTER_SLOTS;
            tokio::time::sleep(delay).await;
            let _permit = limit
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let outcome = poller
                .pull(&target.summary_url, &target.transport, limits)
                .await;
            (is_node, target, outcome)
        });
    }
    let mut node_outcome = None;
    let mut peer_outcomes: HashMap<TargetId, PullOutcome> = HashMap::new();
    while let Some(joined) = pulls.join_next().await {
        match joined {
            Ok((true, PullTarget { id, .. }, outcome)) => node_outcome = Some((id, outcome)),
            Ok((false, PullTarget { id, .. }, outcome)) => {
                peer_outcomes.insert(id, outcome);
            }
            Err(error) => {
                tracing::error!(%error, "a pull task panicked; its outcome is lost for this cycle")
            }
        }
    }
    store.record_cycle(node_outcome, peer_outcomes, Instant::now());
}
