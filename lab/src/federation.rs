//! A whole federation on one machine, for `peerscope bench federation` and the end-to-end
//! test: N simulated nodes, N real sidecar processes (one per node, each on its own
//! loopback address, sampled observation with K observers per peer, lean series), Debian's
//! Prometheus in the sharded layout of `deploy/prometheus/` (S shards that scrape the
//! sidecars by `hashmod` and record observations, one global that federates them and
//! computes the verdicts), a real Alertmanager, and a webhook that counts notifications.
//! Faults: kill a node, isolate an observer (its peer URLs point at a closed port, names
//! unchanged), make a node flaky.
//!
//! The rules are the repository's with every duration (`for:`, ranges) divided by
//! [`SPEED_UP`], so they keep their proportions: verdict times measured here are
//! ×24 in production (README, "Federation scale").

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::time::Instant;

use crate::node::{Behavior, NodeSpec, SimNode};
use crate::{cpu_seconds, free_port, http, io, status_kib, RunError};
use peerscope::pull::assignment::Members;

/// What to start.
#[derive(Clone, Debug)]
pub struct Options {
    pub nodes: usize,
    pub observers_per_peer: usize,
    pub shards: usize,
    /// The `peerscope` binary to run as each sidecar.
    pub program: PathBuf,
    /// The repository's `alerts/` directory, whose rule files the Prometheus servers load
    /// (read at run time: no build-machine path is baked into the binary).
    pub rules: PathBuf,
}

/// A child process, killed when dropped.
pub struct Daemon {
    child: Child,
}

impl Daemon {
    /// Starts `program` with its output in `log`.
    pub fn start(program: &str, arguments: &[String], log: &Path) -> Result<Daemon, RunError> {
        Daemon::start_with(program, arguments, &[], log)
    }

    /// Starts `program` with these environment variables (and no `RUST_LOG`).
    pub fn start_with(
        program: &str,
        arguments: &[String],
        environment: &[(&str, &str)],
        log: &Path,
    ) -> Result<Daemon, RunError> {
        let file = std::fs::File::create(log).map_err(io(format!("{}", log.display())))?;
        let child = Command::new(program)
            .args(arguments)
            .envs(environment.iter().copied())
            .env_remove("RUST_LOG")
            .stdout(file.try_clone().map_err(io("log file"))?)
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .map_err(io(format!(
                "cannot start {program} (Debian package; the test command installs it)"
            )))?;
        Ok(Daemon { child })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One alert as a notification carried it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notified {
    pub alertname: String,
    pub labels: BTreeMap<String, String>,
    /// `firing` or `resolved` (Alertmanager tells webhooks of both).
    pub status: String,
}

impl Notified {
    pub fn firing(&self) -> bool {
        self.status == "firing"
    }
}

/// Receives Alertmanager's webhook notifications and keeps them, one entry per alert per
/// notification.
pub struct Webhook {
    pub url: String,
    received: Arc<Mutex<Vec<Notified>>>,
}

impl Webhook {
    pub async fn start() -> Result<Webhook, RunError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(io("webhook"))?;
        let url = format!("http://{}/", listener.local_addr().map_err(io("webhook"))?);
        let received = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&received);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = Arc::clone(&seen);
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| {
                        let seen = Arc::clone(&seen);
                        async move {
                            let body = request
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            if let Ok(message) = serde_json::from_slice::<Value>(&body) {
                                let alerts = message["alerts"].as_array().cloned();
                                let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                                for alert in alerts.into_iter().flatten() {
                                    let status = alert["status"].as_str().unwrap_or("firing");
                                    seen.push(notified(&alert["labels"], status));
                                }
                            }
                            Ok::<_, Infallible>(hyper::Response::new(Full::new(
                                Bytes::from_static(b"ok"),
                            )))
                        }
                    },
                );
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Ok(Webhook { url, received })
    }

    /// Every alert of every notification so far.
    pub fn received(&self) -> Vec<Notified> {
        self.received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

fn notified(labels: &Value, status: &str) -> Notified {
    let labels: BTreeMap<String, String> = labels
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect();
    Notified {
        alertname: labels.get("alertname").cloned().unwrap_or_default(),
        labels,
        status: status.to_owned(),
    }
}

/// How much faster than production the rules run here: every `for:` and every range
/// (`[2m]`, `[10m]`, …) is divided by it, so the rules keep their proportions.
pub const SPEED_UP: u32 = 24;

/// A rule file's text with every `for:` and every `[range]` divided by [`SPEED_UP`] (in
/// milliseconds), for runs that cannot wait minutes. Line by line: the rule files keep
/// `for:` on a line of its own (the e2e tests fail if that changes).
pub fn fast_rules(text: &str) -> String {
    let scaled = |duration: &str| -> Option<String> {
        let parsed = peerscope::config::duration::parse_duration(duration).ok()?;
        Some(format!("{}ms", (parsed / SPEED_UP).as_millis()))
    };
    text.lines()
        .map(|line| {
            let indent = &line[..line.len() - line.trim_start().len()];
            if let Some(fast) = line.trim_start().strip_prefix("for: ").and_then(scaled) {
                return format!("{indent}for: {fast}");
            }
            let mut out = String::new();
            let mut rest = line;
            while let Some(open) = rest.find('[') {
                let Some(close) = rest[open..].find(']').map(|c| open + c) else {
                    break;
                };
                out.push_str(&rest[..=open]);
                let inside = &rest[open + 1..close];
                out.push_str(&scaled(inside).unwrap_or_else(|| inside.to_owned()));
                out.push(']');
                rest = &rest[close + 1..];
            }
            out.push_str(rest);
            out
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Writes the fast version of the rule file `name` of `rules` into `directory`.
pub fn write_fast_rules(rules: &Path, name: &str, directory: &Path) -> Result<PathBuf, RunError> {
    let source = rules.join(name);
    let text = std::fs::read_to_string(&source).map_err(io(source.display().to_string()))?;
    let target = directory.join(name);
    std::fs::write(&target, fast_rules(&text)).map_err(io(target.display().to_string()))?;
    Ok(target)
}

/// The i-th address of a loopback /16 starting at `127.<block>.0.1`.
pub(crate) fn loopback(block: u8, i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        block,
        (i / 250) as u8,
        (i % 250 + 1) as u8,
    ))
}

/// A port nothing listens on, on its own loopback address: where an isolated observer's
/// pulls go.
fn closed_address() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 254, 254, 254)), 9)
}

/// Members chosen for the faults of a run (indices into [`Federation::names`]).
#[derive(Clone, Copy, Debug)]
pub struct Faults {
    pub dead: usize,
    pub flaky: usize,
    pub isolated: usize,
}

/// A running federation; everything stops when it is dropped.
pub struct Federation {
    pub names: Vec<String>,
    /// The simulated nodes, by member index.
    pub nodes: Vec<SimNode>,
    sidecars: Vec<Daemon>,
    pub sidecar_addresses: Vec<SocketAddr>,
    peers_files: Vec<PathBuf>,
    k: usize,
    shards: Vec<(Daemon, SocketAddr)>,
    global: (Daemon, SocketAddr),
    _alertmanager: Daemon,
    pub webhook: Webhook,
    client: reqwest::Client,
    directory: PathBuf,
}

impl Drop for Federation {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

/// The command line of a member's sidecar: its node, the shared member list, its name, K,
/// where it listens, its pacing, warnings only.
pub(crate) fn sidecar_arguments(
    node_url: &str,
    members: &Path,
    name: &str,
    observers_per_peer: usize,
    listen: SocketAddr,
    interval: &str,
    timeout: &str,
) -> Vec<String> {
    let members = members.display().to_string();
    let (k, listen) = (observers_per_peer.to_string(), listen.to_string());
    [
        "run",
        "--node",
        node_url,
        "--peers-file",
        &members,
        "--name",
        name,
        "--observers-per-peer",
        &k,
        "--web.listen-address",
        &listen,
        "--interval",
        interval,
        "--timeout",
        timeout,
        "--log.level",
        "warn",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A `file_sd` member list: every member by name, at `address(i)`.
pub(crate) fn member_list(names: &[String], address: impl Fn(usize) -> String) -> String {
    let groups: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(i, name)| serde_json::json!({"targets": [address(i)], "labels": {"name": name}}))
        .collect();
    Value::Array(groups).to_string()
}

impl Federation {
    /// Starts everything and waits until the global Prometheus has a verdict for every peer.
    pub async fn start(options: &Options) -> Result<Federation, RunError> {
        static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let directory =
            std::env::temp_dir().join(format!("peerscope-federation-{}-{run}", std::process::id()));
        std::fs::create_dir_all(&directory).map_err(io("work directory"))?;
        let n = options.nodes;
        let names: Vec<String> = (0..n).map(|i| format!("nova-{i:03}")).collect();
        let mut nodes = Vec::with_capacity(n);
        for (i, name) in names.iter().enumerate() {
            let spec = NodeSpec::healthy(name, "root", (i % 100) as f64 / 100.0);
            let node = SimNode::start(SocketAddr::new(loopback(2, i), 0), spec)
                .await
                .map_err(io(format!("simulated node {name}")))?;
            nodes.push(node);
        }
        let members = member_list(&names, |i| nodes[i].address().to_string());
        let mut sidecars = Vec::with_capacity(n);
        let mut sidecar_addresses = Vec::with_capacity(n);
        let mut peers_files = Vec::with_capacity(n);
        for (i, name) in names.iter().enumerate() {
            // Each sidecar has its own copy of the member list, so one can be isolated.
            let peers_file = directory.join(format!("members-{i}.json"));
            std::fs::write(&peers_file, &members).map_err(io("member list"))?;
            let listen = SocketAddr::new(loopback(3, i), 9478);
            let mut arguments = sidecar_arguments(
                &nodes[i].url(),
                &peers_file,
                name,
                options.observers_per_peer,
                listen,
                "1s",
                "500ms",
            );
            arguments.extend(["--live-max-age".to_owned(), "5s".to_owned()]);
            let log = directory.join(format!("sidecar-{i}.log"));
            let file = std::fs::File::create(&log).map_err(io("sidecar log"))?;
            let child = Command::new(&options.program)
                .args(&arguments)
                .env("PEERSCOPE_METRICS_PER_PEER", "lean")
                .env_remove("RUST_LOG")
                .stdout(file.try_clone().map_err(io("sidecar log"))?)
                .stderr(file)
                .stdin(Stdio::null())
                .spawn()
                .map_err(io(format!("sidecar {name}")))?;
            sidecars.push(Daemon { child });
            sidecar_addresses.push(listen);
            peers_files.push(peers_file);
        }

        let webhook = Webhook::start().await?;
        let alertmanager_address = free_port()?;
        // As deploy/alertmanager/alertmanager.yml: one group per alert and peer or
        // instance; a down peer's per-observer warnings and an isolated observer's own
        // warnings inhibited.
        let alertmanager_config = format!(
            "route:\n  receiver: hook\n  group_by: [alertname, job, instance, peer]\n  group_wait: 1s\n  group_interval: 2s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: {}\ninhibit_rules:\n  - source_matchers: ['alertname=\"PeerscopePeerDownByConsensus\"']\n    target_matchers: ['alertname=~\"PeerscopePeerQualityLow|PeerscopePeerClockSkew\"']\n    equal: [job, peer]\n  - source_matchers: ['alertname=\"PeerscopeObserverIsolated\"']\n    target_matchers: ['alertname=~\"PeerscopeFederationDegraded|PeerscopeNoveltyCollapsed|PeerscopePeerQualityLow|PeerscopePeerClockSkew\"']\n    equal: [job, instance]\n",
            webhook.url
        );
        let alertmanager_file = directory.join("alertmanager.yml");
        std::fs::write(&alertmanager_file, alertmanager_config).map_err(io("alertmanager.yml"))?;
        let alertmanager = Daemon::start(
            "prometheus-alertmanager",
            &[
                format!("--config.file={}", alertmanager_file.display()),
                format!("--storage.path={}", directory.join("am-data").display()),
                format!("--web.listen-address={alertmanager_address}"),
                "--cluster.listen-address=".into(),
            ],
            &directory.join("alertmanager.log"),
        )?;

        let shard_rules = [
            write_fast_rules(&options.rules, "peerscope.rules.yml", &directory)?,
            write_fast_rules(&options.rules, "observations.rules.yml", &directory)?,
        ];
        let global_rules = write_fast_rules(&options.rules, "consensus.rules.yml", &directory)?;
        let targets: Vec<String> = sidecar_addresses.iter().map(|a| format!("'{a}'")).collect();
        let alerting = format!(
            "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{alertmanager_address}']\n"
        );
        let mut shards = Vec::new();
        for shard in 0..options.shards {
            // As deploy/prometheus/shard.yml, with every interval at 1 s.
            let config = format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n  external_labels:\n    shard: \"{shard}\"\nrule_files: [{}, {}]\n{alerting}scrape_configs:\n  - job_name: peerscope\n    static_configs:\n      - targets: [{}]\n    relabel_configs:\n      - source_labels: [__address__]\n        modulus: {}\n        target_label: __tmp_shard\n        action: hashmod\n      - source_labels: [__tmp_shard]\n        regex: \"{shard}\"\n        action: keep\n",
                shard_rules[0].display(),
                shard_rules[1].display(),
                targets.join(", "),
                options.shards
            );
            shards.push(start_prometheus(
                &directory,
                &format!("shard-{shard}"),
                &config,
            )?);
        }
        let shard_targets: Vec<String> = shards.iter().map(|(_, a)| format!("'{a}'")).collect();
        // As deploy/prometheus/global.yml. Federation every 2 s with a 2 s timeout: a failed
        // /federate scrape marks a whole shard's records stale at once.
        let global_config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [{}]\n{alerting}scrape_configs:\n  - job_name: peerscope-shards\n    scrape_interval: 2s\n    scrape_timeout: 2s\n    honor_labels: true\n    metrics_path: /federate\n    params:\n      'match[]': ['{{__name__=~\"peerscope:observer_peer_.+\"}}']\n    static_configs:\n      - targets: [{}]\n",
            global_rules.display(),
            shard_targets.join(", ")
        );
        let global = start_prometheus(&directory, "global", &global_config)?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(http("HTTP client"))?;
        let federation = Federation {
            names,
            nodes,
            sidecars,
            sidecar_addresses,
            peers_files,
            k: options.observers_per_peer,
            shards,
            global,
            _alertmanager: alertmanager,
            webhook,
            client,
            directory,
        };
        let expected = n as f64;
        federation
            .until(
                180,
                "a verdict for every peer in the global Prometheus",
                || async {
                    federation
                        .query_value("count(peerscope:peer_up_observers:ratio == 1)")
                        .await
                        == Some(expected)
                },
            )
            .await?;
        Ok(federation)
    }

    /// The observers of member `peer`, by the documented assignment.
    pub fn observers_of(&self, peer: usize) -> Vec<usize> {
        let members = Members::new(self.names.iter().map(String::as_str));
        let observers = members.observers_of(&self.names[peer], self.k);
        observers
            .iter()
            .filter_map(|o| self.names.iter().position(|n| n == o))
            .collect()
    }

    /// The faults of a run: a dead node, a flaky node, and an observer of at least two
    /// peers that observes neither (so its isolation cannot be mistaken for their faults).
    /// `None` when the federation is too small to have such an observer.
    pub fn choose_faults(&self) -> Option<Faults> {
        let (dead, flaky) = (1, 2);
        let n = self.names.len();
        let mut involved = self.observers_of(dead);
        involved.extend(self.observers_of(flaky));
        let observes = |o: usize| {
            (0..n)
                .filter(|p| self.observers_of(*p).contains(&o))
                .count()
        };
        let isolated = (0..n)
            .filter(|o| ![dead, flaky].contains(o) && !involved.contains(o))
            .find(|o| observes(*o) >= 2)?;
        Some(Faults {
            dead,
            flaky,
            isolated,
        })
    }

    /// Member `i`'s node stops answering (every connection closed at once).
    pub fn kill_node(&self, i: usize) {
        self.nodes[i].set_behavior(Behavior::Reset);
    }

    /// Member `i`'s node answers 503 to this share of pulls.
    pub fn make_flaky(&self, i: usize, share: f64) {
        self.nodes[i].set_behavior(Behavior::Flaky(share));
    }

    /// Observer `i` loses its network to the peers: its member list keeps the names but
    /// every peer URL points at a closed port (it reloads the file by itself).
    pub fn isolate_observer(&self, i: usize) -> Result<(), RunError> {
        let blackhole = closed_address().to_string();
        let members = member_list(&self.names, |j| {
            if j == i {
                self.nodes[j].address().to_string()
            } else {
                format!("{blackhole}/{j}")
            }
        });
        let path = &self.peers_files[i];
        let temporary = path.with_extension("tmp");
        std::fs::write(&temporary, members).map_err(io("isolated member list"))?;
        std::fs::rename(&temporary, path).map_err(io("isolated member list"))
    }

    /// Names of the alerts firing in the global Prometheus and the shards, with labels.
    pub async fn firing(&self) -> Vec<Notified> {
        let mut firing = Vec::new();
        for (_, address) in self.shards.iter().chain(std::iter::once(&self.global)) {
            let url = format!("http://{address}/api/v1/alerts");
            let Some(body) = self.get_json(&url).await else {
                continue;
            };
            for alert in body["data"]["alerts"].as_array().into_iter().flatten() {
                if alert["state"] == "firing" {
                    firing.push(notified(&alert["labels"], "firing"));
                }
            }
        }
        firing
    }

    /// Waits until an alert `name` with `label = value` fires; returns how long it took.
    pub async fn wait_firing(
        &self,
        name: &str,
        label: (&str, &str),
        seconds: u64,
    ) -> Result<Duration, RunError> {
        let started = Instant::now();
        let what = format!("{name}{{{}=\"{}\"}} to fire", label.0, label.1);
        self.until(seconds, &what, || async {
            self.firing().await.iter().any(|a| {
                a.alertname == name && a.labels.get(label.0).map(String::as_str) == Some(label.1)
            })
        })
        .await?;
        Ok(started.elapsed())
    }

    /// Waits until `expr` in the global Prometheus has the value `expected`.
    pub async fn wait_value(
        &self,
        expr: &str,
        expected: f64,
        seconds: u64,
    ) -> Result<(), RunError> {
        let what = format!("{expr} to be {expected}");
        self.until(seconds, &what, || async {
            self.query_value(expr).await == Some(expected)
        })
        .await
    }

    /// The value of a scalar-like PromQL expression in the global Prometheus.
    pub async fn query_value(&self, expr: &str) -> Option<f64> {
        query(&self.client, self.global.1, expr).await
    }

    /// `prometheus_tsdb_head_series` and resident memory (MiB) of each Prometheus, global last.
    pub async fn prometheus_figures(&self) -> Vec<(String, f64, f64)> {
        let mut figures = Vec::new();
        let all = self
            .shards
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("shard {i}"), s))
            .chain(std::iter::once(("global".to_owned(), &self.global)));
        for (name, (daemon, address)) in all {
            // Prometheus' own metrics (it does not scrape itself here).
            let url = format!("http://{address}/metrics");
            let text = match self.client.get(&url).send().await {
                Ok(response) => response.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            let series = text
                .lines()
                .find_map(|l| l.strip_prefix("prometheus_tsdb_head_series "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(f64::NAN);
            figures.push((
                name,
                series,
                status_kib(daemon.pid(), "VmRSS:").map_or(f64::NAN, |kib| kib as f64 / 1024.0),
            ));
        }
        figures
    }

    /// Series in each sidecar's scrape.
    pub async fn sidecar_series(&self) -> Vec<usize> {
        let mut counts = Vec::new();
        for address in &self.sidecar_addresses {
            let url = format!("http://{address}/metrics");
            let text = match self.client.get(&url).send().await {
                Ok(response) => response.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            counts.push(
                text.lines()
                    .filter(|l| !l.starts_with('#') && !l.is_empty())
                    .count(),
            );
        }
        counts
    }

    /// Summaries the simulated nodes have served so far (pulls by every sidecar).
    pub fn pulls_served(&self) -> u64 {
        self.nodes.iter().map(SimNode::requests).sum()
    }

    /// User + system CPU seconds of every sidecar process so far.
    pub fn sidecar_cpu_seconds(&self) -> Vec<f64> {
        self.sidecars
            .iter()
            .map(|d| cpu_seconds(d.pid()).unwrap_or(f64::NAN))
            .collect()
    }

    async fn get_json(&self, url: &str) -> Option<Value> {
        let response = self.client.get(url).send().await.ok()?;
        serde_json::from_slice(&response.bytes().await.ok()?).ok()
    }

    async fn until<F, Fut>(&self, seconds: u64, what: &str, mut check: F) -> Result<(), RunError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        while !check().await {
            if Instant::now() >= deadline {
                return Err(RunError::Timeout {
                    what: format!("{what} (logs in {})", self.directory.display()),
                    seconds,
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(())
    }
}

fn start_prometheus(
    directory: &Path,
    name: &str,
    config: &str,
) -> Result<(Daemon, SocketAddr), RunError> {
    let file = directory.join(format!("prometheus-{name}.yml"));
    std::fs::write(&file, config).map_err(io(file.display().to_string()))?;
    let address = free_port()?;
    let daemon = Daemon::start(
        "prometheus",
        &[
            format!("--config.file={}", file.display()),
            format!(
                "--storage.tsdb.path={}",
                directory.join(format!("data-{name}")).display()
            ),
            format!("--web.listen-address={address}"),
        ],
        &directory.join(format!("prometheus-{name}.log")),
    )?;
    Ok((daemon, address))
}

/// The first value of an instant query, if it has one.
async fn query(client: &reqwest::Client, prometheus: SocketAddr, expr: &str) -> Option<f64> {
    let url = reqwest::Url::parse_with_params(
        &format!("http://{prometheus}/api/v1/query"),
        &[("query", expr)],
    )
    .ok()?;
    let response = client.get(url).send().await.ok()?;
    let body: Value = serde_json::from_slice(&response.bytes().await.ok()?).ok()?;
    body["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_rules_divide_every_duration_by_the_same_factor() {
        let text = "      - alert: X\n        expr: max_over_time(a[2m]) / rate(b[5m]) > on(x) c{l=~\"[a-z]\"}[1h]\n        for: 10m\n        labels: {severity: warning}";
        assert_eq!(
            fast_rules(text),
            "      - alert: X\n        expr: max_over_time(a[5000ms]) / rate(b[12500ms]) > on(x) c{l=~\"[a-z]\"}[150000ms]\n        for: 25000ms\n        labels: {severity: warning}"
        );
    }
}
