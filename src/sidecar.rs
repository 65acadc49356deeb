//! The sidecar assembled: one store, built first and handed to the poll loop and the HTTP
//! server, which stop together when `shutdown` is cancelled.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::cycle::{run_poll_loop, Pacing};
use crate::exposition::BuildInfo;
use crate::poller::Poller;
use crate::reconciler::{self, Reconciler};
use crate::server::{serve, App};
use crate::store::Store;

/// Runs the sidecar on `listener` until `shutdown` is cancelled and both tasks have stopped.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let store = Store::new(&config);
    let reconciler = Reconciler::new(config.reconcile.clone());
    let poller =
        Poller::new(config.timeout, config.body_limit).context("cannot build the HTTP client")?;
    let process_registry = prometheus::Registry::new();
    process_registry
        .register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .context("cannot register the process collector")?;
    let app = Arc::new(App {
        store: store.clone(),
        reconciler: reconciler.clone(),
        build: BuildInfo::current(),
        process_registry,
    });
    let pacing = Pacing {
        interval: config.interval,
        timeout: config.timeout,
        max_concurrent_pulls: config.max_concurrent_pulls,
    };
    tracing::info!(
        listen = %listener.local_addr().context("listener has no address")?,
        node = %config.node,
        peers = config.peers.len(),
        interval = ?config.interval,
        "peerscope started"
    );
    let (cycles, cycles_seen) = tokio::sync::watch::channel(0);
    let acting = tokio::spawn(reconciler::run(
        reconciler,
        store.clone(),
        config.node.clone(),
        cycles_seen,
        shutdown.clone(),
    ));
    let poll_loop = tokio::spawn(run_poll_loop(
        store,
        poller,
        pacing,
        cycles,
        shutdown.clone(),
    ));
    let server = tokio::spawn(serve(listener, app, shutdown));
    let (poll_loop, acting, server) = tokio::join!(poll_loop, acting, server);
    poll_loop.context("the poll loop panicked")?;
    acting.context("the reconciler panicked")?;
    server.context("the HTTP server panicked")?;
    Ok(())
}
