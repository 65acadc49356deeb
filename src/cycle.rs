//! The poll loop: a cycle every `interval` pulls the local node and every peer
//! concurrently (bounded, with start times spread over a small jitter), then hands all
//! outcomes to the store at once.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::{stream, FutureExt, StreamExt};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::pull::outcome::{Pacing, PullOutcome, TargetId};
use crate::pull::poller::{Limits, Poller};
use crate::store::Store;
use crate::timeline::later;

/// Pull start times fall into this many slots across the jitter: enough to spread the
/// load, few enough that pulls in one slot share a wake-up and their system calls. Measured
/// at 200 peers (issue 20): 10 slots 37 µs of CPU a pull, 0.9 ms mean pull duration (the
/// answers of a slot wait their turn on the one thread); 40 slots 51 µs, 0.3 ms. The
/// latency score is relative to the timeout, so the CPU counts more.
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
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let current = store.pacing();
        if current.interval != pacing.interval {
            ticker = ticker_after(current.interval);
        }
        pacing = current;
        store.beat(Instant::now());
        tokio::select! {
            _ = shutdown.cancelled() => break,
            () = run_cycle(&store, &poller, pacing) => {}
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
///
/// All in this one task: targets fall into `JITTER_SLOTS` start times, one timer per slot,
/// and at most `max_concurrent_pulls` run at once (the later slots wait for room). No task,
/// timer or permit per pull (issue 20): on the sidecar's one runtime thread they bought
/// nothing but their cost.
pub(crate) async fn run_cycle(store: &Store, poller: &Poller, pacing: Pacing) {
    let plan = store.pull_plan();
    let jitter = pacing.jitter();
    let limits = Limits {
        timeout: pacing.timeout,
        body_limit: pacing.body_limit,
    };
    // Targets by position: 0 is the node, i + 1 the i-th peer (owned positions keep the
    // stream's closures free of borrowed arguments, which a spawned future cannot carry).
    let target = |position: usize| match position {
        0 => &plan.node,
        i => &plan.peers[i - 1],
    };
    let mut slots: Vec<Vec<usize>> = vec![Vec::new(); JITTER_SLOTS as usize];
    for position in 0..=plan.peers.len() {
        slots[fastrand::usize(..JITTER_SLOTS as usize)].push(position);
    }
    let started = Instant::now();
    let pulls = stream::iter(slots.into_iter().enumerate())
        .then(|(slot, positions)| async move {
            tokio::time::sleep_until(started + jitter * slot as u32 / JITTER_SLOTS).await;
            stream::iter(positions)
        })
        .flatten()
        .map(|position| async move {
            let pulled = target(position);
            let pull = poller.pull(&pulled.summary_url, &pulled.transport, limits);
            (position, AssertUnwindSafe(pull).catch_unwind().await)
        })
        .buffer_unordered(pacing.max_concurrent_pulls.max(1));
    let mut pulls = std::pin::pin!(pulls);
    let mut node_outcome = None;
    let mut peer_outcomes: HashMap<TargetId, PullOutcome> =
        HashMap::with_capacity(plan.peers.len());
    while let Some((position, outcome)) = pulls.next().await {
        let pulled = target(position);
        match outcome {
            Ok(outcome) if position == 0 => node_outcome = Some((pulled.id, outcome)),
            Ok(outcome) => {
                peer_outcomes.insert(pulled.id, outcome);
            }
            Err(_) => {
                tracing::error!(target_label = %pulled.label, "a pull panicked; its outcome is lost for this cycle")
            }
        }
    }
    store.record_cycle(node_outcome, peer_outcomes, Instant::now());
}
