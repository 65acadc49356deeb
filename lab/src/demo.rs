//! `peerscope demo`: a simulated federation on loopback, measured by a real sidecar.
//!
//! Six simulated nodes — the local one and five peers: two healthy, one flaky, one slow,
//! one whose state root drifts away and back — and the sidecar beside the local node,
//! with a live table of what it sees. Every 45 s the local node itself drifts to another
//! root: the majority holds, and after `threshold` cycles the sidecar asks the node to
//! reconcile through its API; the node heals and the divergence clears.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::node::{Behavior, NodeSpec, SimNode};
use peerscope::config::{self, ConfigError, Mode, Sources};
use peerscope::serve::status_table;
use peerscope::sidecar::{self, SidecarError};

const SHARED_ROOT: &str = "9f2c01d4e8a7";
const DRIFTED_ROOT: &str = "7d41e0c93b52";
const DRIFT_PERIOD: Duration = Duration::from_secs(20);
const LOCAL_DRIFT_PERIOD: u64 = 45;
const LOCAL_DRIFTED_ROOT: &str = "e5b7a0f19c33";
const INTERVAL: &str = "2s";
/// How often the live table is redrawn: once a cycle (`INTERVAL`).
const REFRESH: Duration = Duration::from_secs(2);

/// Where the demo listens and how long it runs.
pub struct DemoOptions {
    pub listen: SocketAddr,
    /// Stop after this long; `None` runs until Ctrl-C.
    pub duration: Option<Duration>,
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot start a simulated node: {0}")]
    Node(#[source] std::io::Error),
    #[error("cannot listen on loopback: {0}")]
    Listen(#[source] std::io::Error),
    #[error("demo configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    #[error(transparent)]
    Sidecar(#[from] SidecarError),
    #[error("the sidecar panicked: {0}")]
    Panicked(#[source] tokio::task::JoinError),
}

pub async fn run(options: DemoOptions, shutdown: CancellationToken) -> Result<(), DemoError> {
    let loopback: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
    let local = SimNode::start(loopback, NodeSpec::healthy("nova-a", SHARED_ROOT, 0.45))
        .await
        .map_err(DemoError::Node)?;
    let peer_specs = [
        ("nova-b", Behavior::Healthy, 0.30, "healthy"),
        ("nova-c", Behavior::Healthy, 0.55, "healthy"),
        (
            "nova-d",
            Behavior::Flaky(0.3),
            0.40,
            "flaky: 30% of pulls answer 503",
        ),
        (
            "nova-e",
            Behavior::Slow(Duration::from_millis(600)),
            0.65,
            "slow: answers after 600ms",
        ),
        (
            "nova-f",
            Behavior::Healthy,
            0.50,
            "drifts to another state root and back every 20s",
        ),
    ];
    let mut peers = Vec::new();
    for (name, behavior, g_star, _) in &peer_specs {
        let spec = NodeSpec {
            behavior: behavior.clone(),
            ..NodeSpec::healthy(name, SHARED_ROOT, *g_star)
        };
        peers.push(
            SimNode::start(loopback, spec)
                .await
                .map_err(DemoError::Node)?,
        );
    }

    let local_url = local.url();
    let mut flags = vec![
        ("node", local_url.as_str()),
        ("interval", INTERVAL),
        ("timeout", "1s"),
        ("window", "1m"),
        ("live_max_age", "6s"),
    ];
    let peer_flags: Vec<String> = peers
        .iter()
        .zip(&peer_specs)
        .map(|(node, (name, ..))| format!("{name}={}", node.url()))
        .collect();
    flags.extend(peer_flags.iter().map(|text| ("peers", text.as_str())));
    let mut config = config::load(&Sources::flags(&flags))?;
    config.reconcile.mode = Mode::On;
    config.reconcile.cooldown = Duration::from_secs(10);

    let listener = match TcpListener::bind(options.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "note: {} is taken ({error}); using a free port instead",
                options.listen
            );
            TcpListener::bind(loopback)
                .await
                .map_err(DemoError::Listen)?
        }
    };
    let address = listener.local_addr().map_err(DemoError::Listen)?;
    config.listen = address;
    let base = format!("http://{address}");
    let mut header = format!("peerscope demo: open {base}/ in a browser\n");
    header += "6 simulated nodes on loopback, measured by a real sidecar beside nova-a:\n";
    header += &format!("  page     {base}/\n");
    header += &format!("  metrics  {base}/metrics\n");
    header += &format!("  status   {base}/status      (or: peerscope status --url {base})\n");
    header += &format!("  scrape   point Prometheus at {address}\n");
    for (name, _, _, what) in &peer_specs {
        header += &format!("  {name}   {what}\n");
    }
    header += &format!("  nova-a   drifts to another root every {LOCAL_DRIFT_PERIOD}s; the sidecar asks it to reconcile (mode on)\n");
    header += "Ctrl-C stops it.\n\n";
    if !show(&header) {
        return Ok(());
    }

    let sidecar = tokio::spawn(sidecar::run(
        sidecar::Launch::fixed(config),
        listener,
        shutdown.clone(),
    ));
    let drifter = &peers[4];
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(DemoError::HttpClient)?;
    let refresh = REFRESH;
    let started = tokio::time::Instant::now();
    let tty = std::io::stdout().is_terminal();
    let mut ticker = tokio::time::interval(refresh);
    let mut local_drifts = 0;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let elapsed = started.elapsed();
        if options.duration.is_some_and(|d| elapsed >= d) {
            shutdown.cancel();
            break;
        }
        let drifted = (elapsed.as_secs() / DRIFT_PERIOD.as_secs()) % 2 == 1;
        drifter.set_state_root(if drifted { DRIFTED_ROOT } else { SHARED_ROOT });
        if elapsed.as_secs() / LOCAL_DRIFT_PERIOD > local_drifts {
            local_drifts += 1;
            local.set_state_root(LOCAL_DRIFTED_ROOT);
        }
        let table = match status_table::fetch(&client, &base).await {
            Ok(status) => status_table::render(&status),
            Err(error) => format!("status not available yet: {error}\n"),
        };
        let frame = if tty {
            format!(
                "\x1b[2J\x1b[H{base}   (t = {}s, Ctrl-C stops)\n\n{table}",
                elapsed.as_secs()
            )
        } else {
            format!("--- t = {}s\n{table}\n", elapsed.as_secs())
        };
        if !show(&frame) {
            shutdown.cancel();
            break;
        }
    }
    sidecar.await.map_err(DemoError::Panicked)??;
    show("demo stopped\n");
    Ok(())
}

/// Writes `text` to stdout; false once stdout is closed (`peerscope demo | head`),
/// which ends the demo quietly instead of a panic in `println!`.
fn show(text: &str) -> bool {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_ok()
}
