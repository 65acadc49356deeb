//! The sidecar assembled. One store, built first (and restored from the checkpoint before
//! anything polls), handed to the poll loop, the reconciler, the reloader, the
//! checkpointer and the HTTP server, which all stop when `shutdown` is cancelled; the
//! last checkpoint is written once the poll loop and the reconciler have stopped.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::act::{self, Reconciler};
use crate::config::web::WebSettings;
use crate::config::Config;
use crate::cycle::run_poll_loop;
use crate::discover::run_discovery;
use crate::ops::checkpoint::{self, CheckpointError, Checkpointer};
use crate::ops::operations::Operations;
use crate::ops::reload::{self, Loader, Reloader};
use crate::pull::poller::Poller;
use crate::pull::resolver::Resolver;
use crate::serve::basic_auth::BasicAuth;
use crate::serve::exposition::BuildInfo;
use crate::serve::server::{serve, App};
use crate::store::Store;
use crate::timeline::unix_seconds;

/// What the sidecar starts from.
pub struct Launch {
    pub config: Config,
    /// Loads the configuration again (hot reload), from the same sources.
    pub loader: Loader,
    /// The `--config` file, watched for changes.
    pub config_file: Option<PathBuf>,
}

impl Launch {
    /// A launch whose configuration never changes (the demo, tests).
    pub fn fixed(config: Config) -> Self {
        let same = config.clone();
        Launch {
            config,
            loader: Arc::new(move || Ok(same.clone())),
            config_file: None,
        }
    }
}

/// Why the sidecar could not start, or did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    #[error("the listener has no address: {0}")]
    Listener(#[source] std::io::Error),
    /// A task ended by panicking: a bug, reported rather than hidden.
    #[error("the {task} panicked: {source}")]
    Panicked {
        task: &'static str,
        source: tokio::task::JoinError,
    },
}

fn panicked(task: &'static str) -> impl FnOnce(tokio::task::JoinError) -> SidecarError {
    move |source| SidecarError::Panicked { task, source }
}

/// Runs the sidecar on `listener` until `shutdown` is cancelled and every task has stopped.
pub async fn run(
    launch: Launch,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), SidecarError> {
    let config = launch.config;
    // Taken before anything reads or writes the checkpoint; held until the end of `run`.
    let _lock = match &config.checkpoint.path {
        Some(path) => Some(checkpoint::lock(path)?),
        None => None,
    };
    let store = Store::new(&config);
    let reconciler = Reconciler::new(config.reconcile.clone());
    let operations = Operations::default();
    let checkpointer = config.checkpoint.path.clone().map(|path| Checkpointer {
        path,
        store: store.clone(),
        reconciler: reconciler.clone(),
        operations: operations.clone(),
    });
    if let Some(checkpointer) = &checkpointer {
        checkpointer.restore()?;
    }

    // Named DNS servers resolve discovered names for every pull too; without them the
    // system resolver does, and hickory (with the system's configuration) only looks up
    // the discovery sources.
    let resolver = Resolver::new(&config.discovery.dns_servers);
    if let (Err(reason), true) = (&resolver, !config.discovery.dns.is_empty()) {
        tracing::error!(%reason, "no DNS resolver: the dns+ and dnssrv+ sources cannot be looked up");
    }
    let pull_resolver = resolver.as_ref().ok().filter(|r| r.custom).cloned();
    let poller =
        Poller::new(config.timeout, pull_resolver.clone()).map_err(SidecarError::HttpClient)?;
    // Members drawn at random are pulled once: no connection kept to each of them.
    let sampler = Poller::without_keep_alive(config.timeout, pull_resolver)
        .map_err(SidecarError::HttpClient)?;
    let (reload_handle, reload_triggers) = reload::channel();
    let web = WebSettings::new(config.web.clone());
    let reloader = Reloader {
        loader: launch.loader,
        current: config.clone(),
        at_start: crate::config::keys::RestartValues::of(&config),
        config_file: launch.config_file.clone(),
        store: store.clone(),
        reconciler: reconciler.clone(),
        operations: operations.clone(),
        web: web.clone(),
        stalled_load: None,
    };
    reloader.record_initial(launch.config_file.map(|f| f.display().to_string()));
    let app = Arc::new(App {
        store: store.clone(),
        reconciler: reconciler.clone(),
        operations: operations.clone(),
        reload: reload_handle,
        admin_token_file: config.admin_token_file.clone(),
        web,
        basic_auth: BasicAuth::default(),
        build: BuildInfo::current(),
        started_at: unix_seconds(std::time::SystemTime::now()),
        renderings: Default::default(),
        refusals: Default::default(),
        request_budget: Default::default(),
        telemetry_path: config.metrics.path.clone(),
        exporter_metrics: !config.metrics.disable_exporter_metrics,
    });
    tracing::info!(
        listen = %listener.local_addr().map_err(SidecarError::Listener)?,
        node = %config.node,
        peers = config.peers.len(),
        interval = ?config.interval,
        "peerscope started"
    );

    let (cycles, cycles_seen) = tokio::sync::watch::channel(0);
    let acting = tokio::spawn(act::run(
        reconciler,
        store.clone(),
        sampler,
        cycles_seen,
        shutdown.clone(),
    ));
    let discovery = tokio::spawn(run_discovery(
        store.clone(),
        resolver,
        poller.clone(),
        shutdown.clone(),
    ));
    let poll_loop = tokio::spawn(run_poll_loop(store, poller, cycles, shutdown.clone()));
    let reloading = tokio::spawn(reloader.run(reload_triggers, shutdown.clone()));
    let periodic = checkpointer
        .clone()
        .map(|c| tokio::spawn(c.run(config.checkpoint.interval, shutdown.clone())));
    let server = tokio::spawn(serve(listener, app, shutdown));

    let (poll_loop, acting) = tokio::join!(poll_loop, acting);
    poll_loop.map_err(panicked("poll loop"))?;
    acting.map_err(panicked("reconciler"))?;
    discovery.await.map_err(panicked("discovery"))?;
    if let Some(periodic) = periodic {
        periodic.await.map_err(panicked("checkpointer"))?;
    }
    if let Some(checkpointer) = &checkpointer {
        checkpointer.save().await;
        tracing::info!(path = %checkpointer.path.display(), "final checkpoint written");
    }
    reloading.await.map_err(panicked("reloader"))?;
    server.await.map_err(panicked("HTTP server"))?;
    Ok(())
}
