//! `peerscope bench`: the real sidecar binary against N simulated peers, each on its own
//! loopback address, pulling every `interval`. Prints the sidecar's CPU time per pull, its
//! memory, and how long `/metrics` takes to render, measured from outside the process.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::time::Instant;

use crate::config::duration::{format_duration, parse_duration};
use crate::sim::node::{NodeSpec, SimNode};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Number of simulated peers.
    #[arg(long, default_value_t = 200)]
    pub peers: usize,
    /// Time between cycles.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
    /// How long to measure, after the warm-up.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// How long to let the sidecar run before measuring (use ≥ the window for full windows).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// The sidecar's window.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub window: Duration,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let node = SimNode::start(loopback(0), NodeSpec::healthy("bench-node", "root", 0.5)).await?;
    let mut peers = Vec::with_capacity(args.peers);
    for i in 0..args.peers {
        let spec = NodeSpec::healthy(&format!("bench-{i}"), "root", (i % 100) as f64 / 100.0);
        peers.push(
            SimNode::start(loopback(i + 1), spec)
                .await
                .with_context(|| format!("cannot start peer {i}"))?,
        );
    }
    let directory = std::env::temp_dir().join(format!("peerscope-bench-{}", std::process::id()));
    std::fs::create_dir_all(&directory)?;
    let peers_file = directory.join("peers.json");
    let targets: Vec<String> = peers.iter().map(|p| p.address().to_string()).collect();
    std::fs::write(
        &peers_file,
        serde_json::json!([{ "targets": targets }]).to_string(),
    )?;

    let listen = free_port().await?;
    let timeout = args.interval.mul_f64(0.8).min(Duration::from_millis(2500));
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args([
            "run",
            "--node",
            &node.url(),
            "--listen",
            &listen.to_string(),
        ])
        .arg("--peers-file")
        .arg(&peers_file)
        .args([
            "--interval",
            &format_duration(args.interval),
            "--timeout",
            &format_duration(timeout),
        ])
        .args([
            "--window",
            &format_duration(args.window),
            "--log-level",
            "warn",
        ])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the sidecar")?;
    let pid = child.id().context("the sidecar exited at once")?;
    let client = reqwest::Client::builder().no_proxy().build()?;
    let base = format!("http://{listen}");
    wait_ready(&client, &base).await?;

    println!(
        "bench: {} peers every {}, window {}, warm-up {}, measuring {} (sidecar pid {pid})",
        args.peers,
        format_duration(args.interval),
        format_duration(args.window),
        format_duration(args.warmup),
        format_duration(args.duration)
    );
    tokio::time::sleep(args.warmup).await;
    let (cpu_before, polls_before) = (cpu_seconds(pid)?, polls(&client, &base).await?);
    tokio::time::sleep(args.duration).await;
    let (cpu_after, polls_after) = (cpu_seconds(pid)?, polls(&client, &base).await?);
    let (rss, peak) = (status_kib(pid, "VmRSS:")?, status_kib(pid, "VmHWM:")?);

    let mut scrape_millis = Vec::new();
    let mut scrape_bytes = 0;
    for _ in 0..20 {
        let started = Instant::now();
        let text = client
            .get(format!("{base}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        scrape_millis.push(started.elapsed().as_secs_f64() * 1000.0);
        scrape_bytes = text.len();
    }
    scrape_millis.sort_by(f64::total_cmp);
    let _ = tokio::process::Command::new("kill")
        .arg(pid.to_string())
        .status()
        .await;
    let _ = child.wait().await;
    let _ = std::fs::remove_dir_all(&directory);

    let pulls = polls_after - polls_before;
    if pulls == 0 {
        bail!("no pulls were completed while measuring");
    }
    let expected =
        (args.peers + 1) as f64 * args.duration.as_secs_f64() / args.interval.as_secs_f64();
    println!(
        "pulls completed        {pulls} ({:.1}% of the {expected:.0} planned)",
        100.0 * pulls as f64 / expected
    );
    println!(
        "CPU per pull           {:.1} µs",
        (cpu_after - cpu_before) / pulls as f64 * 1e6
    );
    println!(
        "CPU busy               {:.1}% of one core",
        100.0 * (cpu_after - cpu_before) / args.duration.as_secs_f64()
    );
    println!(
        "RSS                    {:.1} MiB (peak {:.1} MiB)",
        rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    println!(
        "/metrics               median {:.1} ms, p90 {:.1} ms, max {:.1} ms, {} KiB",
        scrape_millis[10],
        scrape_millis[18],
        scrape_millis[19],
        scrape_bytes / 1024
    );
    Ok(())
}

/// The i-th loopback address, 127.1.x.y, so that every simulated node is its own host.
fn loopback(i: usize) -> SocketAddr {
    let ip = Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8);
    SocketAddr::new(IpAddr::V4(ip), 0)
}

async fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    Ok(listener.local_addr()?)
}

async fn wait_ready(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(response) = client.get(format!("{base}/readyz")).send().await {
            if response.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("the sidecar at {base} was not ready within 60s")
}

/// Pulls completed so far: the sum of every `*_polls_total` in a scrape.
async fn polls(client: &reqwest::Client, base: &str) -> anyhow::Result<u64> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| {
            l.starts_with("peerscope_peer_polls_total")
                || l.starts_with("peerscope_node_polls_total")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64)
}

/// User + system CPU seconds of a process, from /proc (clock ticks of 1/100 s on Linux).
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("bad /proc stat")?
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("no {field}"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("bad line")?
        .parse()?)
}
