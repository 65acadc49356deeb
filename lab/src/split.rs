//! A split federation with reconciliation on, for `peerscope bench split` and
//! `tests/reconcile_split.rs`: N simulated nodes that keep their state roots (a majority
//! on one root, a minority on another; the reconciliation API answers 202 and changes
//! nothing), and N real sidecar processes beside them with sampled observation and
//! `reconcile.mode = "on"`. It records which nodes were asked to reconcile, towards which
//! root and when, and the federation-wide pulls per second while the split lasts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use tokio::time::Instant;

use crate::federation::{loopback, member_list, sidecar_arguments, Daemon};
use crate::node::{NodeSpec, ReconcileBehavior, SimNode};
use crate::{http, io, wait_ready, RunError};
use peerscope::config::duration::parse_duration;

/// `peerscope bench split`.
#[derive(Args, Clone, Debug)]
pub struct SplitArgs {
    /// Members of the federation (each a simulated node with a real sidecar).
    #[arg(long, default_value_t = 100)]
    pub nodes: usize,
    /// Share of the members on the minority root, in percent.
    #[arg(long, default_value_t = 30)]
    pub minority_percent: usize,
    /// K: observers per peer.
    #[arg(long, default_value_t = 8)]
    pub observers_per_peer: usize,
    /// The sidecars' poll interval.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub interval: Duration,
    /// How long the split runs.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
}

/// What to start.
#[derive(Clone, Debug)]
pub struct SplitOptions {
    pub args: SplitArgs,
    /// The `peerscope` binary to run as each sidecar.
    pub program: PathBuf,
}

/// What a split run measured.
#[derive(Clone, Debug)]
pub struct SplitReport {
    pub nodes: usize,
    pub minority: usize,
    /// Majority nodes that asked to reconcile, towards any root.
    pub majority_asked: Vec<usize>,
    /// Minority nodes that asked towards the majority root, and when (seconds after every
    /// sidecar was ready).
    pub minority_asked: Vec<(usize, f64)>,
    /// Minority nodes that asked towards another root than the majority's.
    pub minority_asked_elsewhere: Vec<usize>,
    /// Pulls the simulated nodes served per second, over the whole run.
    pub pulls_per_second: f64,
    /// The busiest stretch of five intervals.
    pub peak_pulls_per_second: f64,
    /// What the same federation pulls without a split: N · (K + 1) per interval, plus the
    /// probe's N.
    pub quiet_pulls_per_second: f64,
    /// Confirmation episodes that ended, over every sidecar: confirmed, refuted, undecided.
    pub confirmations: [u64; 3],
    /// Of the last episode of each sidecar: draws whose pull failed, and all draws.
    pub failed_draws: (u64, u64),
}

const MAJORITY_ROOT: &str = "root-majority";
const MINORITY_ROOT: &str = "root-minority";

/// Runs the split for `duration` and reports.
pub async fn run_split(options: &SplitOptions) -> Result<SplitReport, RunError> {
    let args = &options.args;
    let n = args.nodes;
    let minority = n * args.minority_percent / 100;
    let directory =
        std::env::temp_dir().join(format!("peerscope-split-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&directory).map_err(io("work directory"))?;
    let names: Vec<String> = (0..n).map(|i| format!("nova-{i:03}")).collect();
    let mut nodes = Vec::with_capacity(n);
    for (i, name) in names.iter().enumerate() {
        // The minority is spread over the member list, not a block of it.
        let root = if i * minority / n != (i + 1) * minority / n {
            MINORITY_ROOT
        } else {
            MAJORITY_ROOT
        };
        let mut spec = NodeSpec::healthy(name, root, (i % 100) as f64 / 100.0);
        spec.reconcile = ReconcileBehavior::AcceptWithoutEffect;
        let node = SimNode::start(SocketAddr::new(loopback(4, i), 0), spec)
            .await
            .map_err(io(format!("simulated node {name}")))?;
        nodes.push(node);
    }
    let in_minority: Vec<bool> = nodes
        .iter()
        .map(|n| n.state_root() == MINORITY_ROOT)
        .collect();
    let members_file = directory.join("members.json");
    let members = member_list(&names, |i| nodes[i].address().to_string());
    std::fs::write(&members_file, members).map_err(io("member list"))?;
    let interval = peerscope::config::duration::format_duration(args.interval);
    let timeout = peerscope::config::duration::format_duration(args.interval / 4);
    let mut sidecars = Vec::with_capacity(n);
    let mut bases = Vec::with_capacity(n);
    for (i, name) in names.iter().enumerate() {
        let listen = SocketAddr::new(loopback(5, i), 9478);
        let arguments = sidecar_arguments(
            &nodes[i].url(),
            &members_file,
            name,
            args.observers_per_peer,
            listen,
            &interval,
            &timeout,
        );
        let log = directory.join(format!("sidecar-{i}.log"));
        let environment = [
            ("PEERSCOPE_RECONCILE_MODE", "on"),
            ("PEERSCOPE_METRICS_PER_PEER", "lean"),
        ];
        sidecars.push(Daemon::start_with(
            &options.program.display().to_string(),
            &arguments,
            &environment,
            &log,
        )?);
        bases.push(format!("http://{listen}"));
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(http("HTTP client"))?;
    for base in &bases {
        wait_ready(&client, base).await?;
    }

    let served = || nodes.iter().map(SimNode::requests).sum::<u64>();
    let started = Instant::now();
    let first = served();
    let mut marks = vec![(started, first)];
    while started.elapsed() < args.duration {
        tokio::time::sleep(Duration::from_secs(1)).await;
        marks.push((Instant::now(), served()));
    }
    let last = *marks.last().expect("one mark at least");
    let seconds = last.0.duration_since(started).as_secs_f64();
    // Marks are a second apart; a stretch of five intervals smooths the burst at each
    // cycle's start.
    let span = ((5.0 * args.interval.as_secs_f64()).ceil() as usize).max(1);
    let peak = marks
        .windows(span + 1)
        .map(|w| (w[span].1 - w[0].1) as f64 / w[span].0.duration_since(w[0].0).as_secs_f64())
        .fold(0.0, f64::max);

    let mut report = SplitReport {
        nodes: n,
        minority,
        majority_asked: Vec::new(),
        minority_asked: Vec::new(),
        minority_asked_elsewhere: Vec::new(),
        pulls_per_second: (last.1 - first) as f64 / seconds,
        peak_pulls_per_second: peak,
        quiet_pulls_per_second: (n * (args.observers_per_peer + 2)) as f64
            / args.interval.as_secs_f64(),
        confirmations: [0; 3],
        failed_draws: (0, 0),
    };
    for base in &bases {
        if let Ok(response) = client.get(format!("{base}/metrics")).send().await {
            let text = response.text().await.unwrap_or_default();
            for (i, outcome) in ["confirmed", "refuted", "undecided"].iter().enumerate() {
                let name =
                    format!("peerscope_reconcile_confirmations_total{{outcome=\"{outcome}\"}} ");
                report.confirmations[i] += text
                    .lines()
                    .find_map(|l| l.strip_prefix(&name))
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .unwrap_or(0.0) as u64;
            }
        }
        if let Ok(response) = client.get(format!("{base}/status")).send().await {
            let body = response.bytes().await.unwrap_or_default();
            let status: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let evidence = &status["reconciliation"]["confirmation"];
            report.failed_draws.0 += evidence["failed"].as_u64().unwrap_or(0);
            report.failed_draws.1 += evidence["sampled"].as_u64().unwrap_or(0);
        }
    }
    for (i, node) in nodes.iter().enumerate() {
        let requests = node.reconcile_requests();
        let Some(first) = requests.first() else {
            continue;
        };
        let body: serde_json::Value = serde_json::from_str(&first.body).unwrap_or_default();
        let towards_majority = body["target_root"] == MAJORITY_ROOT;
        match (in_minority[i], towards_majority) {
            (false, _) => report.majority_asked.push(i),
            (true, true) => report
                .minority_asked
                .push((i, first.at.saturating_duration_since(started).as_secs_f64())),
            (true, false) => report.minority_asked_elsewhere.push(i),
        }
    }
    drop(sidecars);
    let _ = std::fs::remove_dir_all(&directory);
    Ok(report)
}

/// `peerscope bench split`: runs the split and prints what it measured.
pub async fn run(args: SplitArgs) -> Result<(), RunError> {
    let program = crate::sidecar_program()?;
    let report = run_split(&SplitOptions {
        args: args.clone(),
        program,
    })
    .await?;
    let majority = report.nodes - report.minority;
    let mut times: Vec<f64> = report.minority_asked.iter().map(|(_, t)| *t).collect();
    times.sort_by(f64::total_cmp);
    println!(
        "split of {} nodes ({} on the majority root, {} on the minority root), K = {}, interval {:?}, {:?}:",
        report.nodes, majority, report.minority, args.observers_per_peer, args.interval, args.duration
    );
    println!(
        "  majority nodes that asked to reconcile: {} of {majority} {:?}",
        report.majority_asked.len(),
        report.majority_asked
    );
    println!(
        "  minority nodes that asked towards the majority root: {} of {} (first {:.1} s, last {:.1} s after ready); towards another root: {}",
        report.minority_asked.len(),
        report.minority,
        times.first().copied().unwrap_or(f64::NAN),
        times.last().copied().unwrap_or(f64::NAN),
        report.minority_asked_elsewhere.len()
    );
    println!(
        "  pulls per second, federation-wide: {:.0} over the run, {:.0} in the busiest five intervals; without a split: {:.0} (N·(K+2)/interval); the most a split may cost: {:.0} (N·(3K+2)/interval)",
        report.pulls_per_second,
        report.peak_pulls_per_second,
        report.quiet_pulls_per_second,
        (report.nodes * (3 * args.observers_per_peer + 2)) as f64 / args.interval.as_secs_f64()
    );
    println!(
        "  confirmations, all sidecars: {} confirmed, {} refuted, {} undecided; last episodes: {} of {} draws failed",
        report.confirmations[0],
        report.confirmations[1],
        report.confirmations[2],
        report.failed_draws.0,
        report.failed_draws.1
    );
    Ok(())
}
