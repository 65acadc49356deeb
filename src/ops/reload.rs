//! Hot reload. The configuration is re-read on `SIGHUP`, on `POST /-/reload`, when a
//! watched directory changes, and every minute (for filesystems that send no events).
//! A new configuration is loaded and validated whole from every source; it is applied only
//! if valid — otherwise the old one stays in force and the failure is logged and counted.
//! Watching the *directories* of the config and peers files (not the files) sees editors
//! that save by rename and Kubernetes ConfigMaps that swap a `..data` symlink; only
//! events that name one of those files (or a ConfigMap's `..` entries) count, so a log
//! file or a checkpoint written in the same directory does not re-read the configuration.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::act::Reconciler;
use crate::config::web::WebSettings;
use crate::config::{keys, Config, ConfigError};
use crate::ops::operations::{fnv1a_hex, Operations};
use crate::outside::file::{directory_of, Pending};
use crate::store::Store;
use crate::timeline::unix_seconds;

/// Loads the whole configuration again, from the same sources as at start.
pub(crate) type Loader = Arc<dyn Fn() -> Result<Config, ConfigError> + Send + Sync>;

/// Events within this window after a change are folded into one reload.
const DEBOUNCE: Duration = Duration::from_millis(250);
/// The periodic re-check.
const RECHECK: Duration = Duration::from_secs(60);
/// How long loading the configuration (reading every file) may take.
pub(crate) const LOAD_TIME_LIMIT: Duration = Duration::from_secs(5);

enum Trigger {
    /// A watched directory changed, or the periodic re-check: apply only if changed.
    Changed,
    /// SIGHUP: reload even if nothing changed.
    Signal,
    /// `POST /-/reload`: reload and tell the caller how it went.
    Request(oneshot::Sender<Result<(), String>>),
}

/// Asks the reloader for a reload; held by the HTTP server.
#[derive(Clone)]
pub(crate) struct ReloadHandle {
    triggers: mpsc::UnboundedSender<Trigger>,
}

impl ReloadHandle {
    /// Reloads now; `Err` carries the reason a new configuration was refused.
    pub(crate) async fn reload(&self) -> Result<(), String> {
        let (reply, answer) = oneshot::channel();
        self.triggers
            .send(Trigger::Request(reply))
            .map_err(|_| "the reloader has stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the reloader has stopped".to_owned())?
    }
}

/// Applies reloaded configurations to the running sidecar.
pub(crate) struct Reloader {
    pub(crate) loader: Loader,
    pub(crate) current: Config,
    /// The values the keys that need a restart had at start: what is still in force.
    pub(crate) at_start: keys::RestartValues,
    /// The `--config` file, if any; its directory and the peers file's are watched.
    pub(crate) config_file: Option<PathBuf>,
    pub(crate) store: Store,
    pub(crate) reconciler: Reconciler,
    pub(crate) operations: Operations,
    /// The web configuration the server uses; replaced by each applied reload.
    pub(crate) web: WebSettings,
    /// A load that outlived [`LOAD_TIME_LIMIT`] and has not finished yet.
    pub(crate) stalled_load: Option<Pending<Result<Config, ConfigError>>>,
}

/// The triggers one reload answers.
#[derive(Default)]
struct Batch {
    /// A signal or a request: reload and count even if nothing changed.
    forced: bool,
    signalled: bool,
    replies: Vec<oneshot::Sender<Result<(), String>>>,
}

impl Batch {
    fn add(&mut self, trigger: Trigger) {
        match trigger {
            Trigger::Changed => {}
            Trigger::Signal => {
                self.forced = true;
                self.signalled = true;
            }
            Trigger::Request(reply) => {
                self.forced = true;
                self.replies.push(reply);
            }
        }
    }
}

/// A handle and the receiving end, to be run with [`Reloader::run`].
pub(crate) fn channel() -> (ReloadHandle, ReloadTriggers) {
    let (triggers, receiver) = mpsc::unbounded_channel();
    (
        ReloadHandle {
            triggers: triggers.clone(),
        },
        ReloadTriggers {
            sender: triggers,
            receiver,
        },
    )
}

pub(crate) struct ReloadTriggers {
    sender: mpsc::UnboundedSender<Trigger>,
    receiver: mpsc::UnboundedReceiver<Trigger>,
}

/// The configuration's fingerprint, shown in `/status`.
pub(crate) fn config_hash(config: &Config) -> String {
    fnv1a_hex(serde_json::to_string(config).unwrap_or_default().as_bytes())
}

impl Reloader {
    /// Records the configuration in force at start.
    pub(crate) fn record_initial(&self, source: Option<String>) {
        let mut operations = self.operations.lock();
        operations.config.source = source;
        operations.config.hash = config_hash(&self.current);
        operations.config.web = self.current.web.clone();
        operations.config.loaded_at = unix_seconds(SystemTime::now());
        operations.config.last_reload_successful = true;
        operations.config.last_reload_success_at = operations.config.loaded_at;
    }

    pub async fn run(mut self, triggers: ReloadTriggers, shutdown: CancellationToken) {
        let ReloadTriggers {
            sender,
            mut receiver,
        } = triggers;
        let mut watch = self.watch(sender.clone());
        if let Ok(mut hangups) = signal(SignalKind::hangup()) {
            let sender = sender.clone();
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    if sender.send(Trigger::Signal).is_err() {
                        break;
                    }
                }
            });
        }
        let mut recheck = tokio::time::interval(RECHECK);
        recheck.tick().await;
        loop {
            let first = tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = recheck.tick() => Trigger::Changed,
                trigger = receiver.recv() => match trigger {
                    Some(trigger) => trigger,
                    None => break,
                },
            };
            let mut batch = Batch::default();
            batch.add(first);
            if !batch.forced {
                // Editors and ConfigMap swaps make several events: wait for the last.
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    () = tokio::time::sleep(DEBOUNCE) => {}
                }
            }
            // Everything that came meanwhile is answered by this one reload, which reads
            // the files after it came: a signal or request is folded in, never dropped.
            while let Ok(next) = receiver.try_recv() {
                batch.add(next);
            }
            if batch.signalled {
                tracing::info!("SIGHUP: reloading the configuration");
            }
            let result = tokio::select! {
                _ = shutdown.cancelled() => break,
                result = self.reload(batch.forced) => result,
            };
            if let Some(watch) = &mut watch {
                watch.follow(self.watched_files());
            }
            for reply in batch.replies {
                let _ = reply.send(result.clone());
            }
        }
    }

    /// Loads the configuration on a thread of its own under [`LOAD_TIME_LIMIT`], so a file
    /// that stalls holds up neither the runtime nor shutdown. A load that timed out is
    /// kept: the next attempt waits for it rather than stranding another thread, and once
    /// it finishes reads afresh (its result is from the past).
    async fn load(&mut self) -> Result<Config, ConfigError> {
        let timed_out = || {
            ConfigError::new(
                "configuration",
                format!("reading the configuration took longer than {LOAD_TIME_LIMIT:?} (a stalled filesystem?)"),
            )
        };
        if let Some(stalled) = self.stalled_load.take() {
            if let Err(still) = stalled.wait(LOAD_TIME_LIMIT).await {
                self.stalled_load = Some(still);
                return Err(timed_out());
            }
        }
        let loader = Arc::clone(&self.loader);
        let pending = Pending::start(move || loader()).map_err(|error| {
            ConfigError::new(
                "configuration",
                format!("cannot start a thread to read it: {error}"),
            )
        })?;
        match pending.wait(LOAD_TIME_LIMIT).await {
            Ok(Some(loaded)) => loaded,
            Ok(None) => Err(ConfigError::new(
                "configuration",
                "loading it panicked (a bug: please report it)",
            )),
            Err(still) => {
                self.stalled_load = Some(still);
                Err(timed_out())
            }
        }
    }

    /// Loads, validates and applies. `forced` (a signal or a request) applies and counts
    /// even an unchanged configuration. Otherwise a re-read only reports a change of state:
    /// a new configuration, a new refusal, or the configuration in force found valid again
    /// after a refusal — so unrelated writes in a watched directory count nothing, and a
    /// reverted bad edit clears the failure.
    async fn reload(&mut self, forced: bool) -> Result<(), String> {
        let loaded = self.load().await;
        let mut operations = self.operations.lock();
        let status = &mut operations.config;
        let now = unix_seconds(SystemTime::now());
        match loaded {
            Ok(new) if new == self.current && !forced => {
                if status.last_reload_successful {
                    tracing::debug!("configuration re-read; unchanged");
                } else {
                    tracing::info!(hash = %status.hash, "the configuration files are valid again and equal the configuration in force");
                    status.reloads_total += 1;
                    status.last_reload_successful = true;
                    status.last_reload_success_at = now;
                    status.last_error = None;
                }
                Ok(())
            }
            Ok(new) => {
                let unapplied = keys::changed_restart_keys(&self.at_start, &new);
                if !unapplied.is_empty() {
                    tracing::warn!(
                        keys = %unapplied.join(", "),
                        "these keys changed and take effect only at the next restart"
                    );
                }
                self.store.reconfigure(&new);
                self.reconciler.reconfigure(new.reconcile.clone());
                self.web.replace(new.web.clone());
                status.web = new.web.clone();
                status.reloads_total += 1;
                status.last_reload_successful = true;
                status.last_reload_success_at = now;
                status.loaded_at = now;
                status.hash = config_hash(&new);
                status.last_error = None;
                tracing::info!(peers = new.peers.len(), hash = %status.hash, "configuration reloaded");
                self.current = new;
                Ok(())
            }
            Err(error) => {
                let message = error.to_string();
                let already_reported =
                    !status.last_reload_successful && status.last_error.as_ref() == Some(&message);
                if already_reported && !forced {
                    tracing::debug!(%error, "configuration re-read; still refused for the same reason");
                } else {
                    status.reloads_total += 1;
                    status.reload_failures_total += 1;
                    status.last_reload_successful = false;
                    status.last_error = Some(message.clone());
                    tracing::error!(%error, "configuration refused; the previous one stays in force");
                }
                Err(message)
            }
        }
    }

    /// Starts watching the directories of the configuration in force; events become
    /// [`Trigger::Changed`].
    fn watch(&self, sender: mpsc::UnboundedSender<Trigger>) -> Option<Watch> {
        let names = Arc::new(Mutex::new(BTreeSet::new()));
        let watched = Arc::clone(&names);
        let watcher = match notify::recommended_watcher(
            move |event: notify::Result<notify::Event>| {
                // Reading the files (our own reloads included) makes access events:
                // reacting to those would re-read the configuration in a loop.
                if event.is_ok_and(|e| !e.kind.is_access() && names_watched(&e, &watched)) {
                    let _ = sender.send(Trigger::Changed);
                }
            },
        ) {
            Ok(watcher) => watcher,
            Err(error) => {
                tracing::warn!(%error, "cannot watch files; relying on SIGHUP, /-/reload and the minutely re-check");
                return None;
            }
        };
        let mut watch = Watch {
            watcher,
            directories: BTreeSet::new(),
            names,
        };
        watch.follow(self.watched_files());
        Some(watch)
    }

    /// Every file the configuration in force reads: the `--config` file, the peers file,
    /// the web configuration and its certificates (a renewal there reloads), the peers'
    /// CA, certificates and credentials (a rotation reloads too).
    fn watched_files(&self) -> BTreeSet<PathBuf> {
        let tls_files = self.current.web.tls.iter().flat_map(|tls| {
            [&tls.cert_file, &tls.key_file]
                .into_iter()
                .chain(tls.client_ca_file.as_ref())
        });
        let peer_files = self
            .current
            .peers
            .iter()
            .flat_map(|peer| peer.transport.access.files());
        self.config_file
            .iter()
            .chain(self.current.peers_file.iter())
            .chain(self.current.web_config_file.iter())
            .chain(tls_files)
            .chain(peer_files)
            .cloned()
            .collect()
    }
}

/// Whether `event` names a watched file, or an entry of a Kubernetes ConfigMap's atomic
/// swap (`..data`, `..2026_12_03_…`), through which every file of the volume changes.
fn names_watched(event: &notify::Event, names: &Mutex<BTreeSet<OsString>>) -> bool {
    let names = crate::sync::lock(names);
    // No path: the watcher lost events (an inotify queue overflow) and asks for a rescan.
    event.paths.is_empty()
        || event.paths.iter().any(|path| {
            path.file_name().is_some_and(|name| {
                names.contains(name) || name.as_encoded_bytes().starts_with(b"..")
            })
        })
}

/// The file watcher and the directories it watches, which follow the configuration in
/// force: a reload that names a peers file or a certificate in another directory moves
/// the watch there.
struct Watch {
    watcher: notify::RecommendedWatcher,
    directories: BTreeSet<PathBuf>,
    /// The names of the watched files, read by the watcher's callback.
    names: Arc<Mutex<BTreeSet<OsString>>>,
}

impl Watch {
    fn follow(&mut self, files: BTreeSet<PathBuf>) {
        use notify::Watcher;
        *crate::sync::lock(&self.names) = files
            .iter()
            .filter_map(|file| file.file_name().map(OsString::from))
            .collect();
        let wanted: BTreeSet<PathBuf> = files
            .iter()
            .map(|file| directory_of(file).to_path_buf())
            .collect();
        for gone in self.directories.difference(&wanted) {
            // A directory that was removed is no longer watched anyway.
            let _ = self.watcher.unwatch(gone);
        }
        for directory in wanted.difference(&self.directories) {
            if let Err(error) = self
                .watcher
                .watch(directory, notify::RecursiveMode::NonRecursive)
            {
                tracing::warn!(directory = %directory.display(), %error, "cannot watch directory");
            }
        }
        self.directories = wanted;
    }
}
