//! `peerscope bench`: the real sidecar binary against N simulated peers, each on its own
//! loopback address, pulling every `interval`. Prints the sidecar's CPU time per pull, its
//! memory, and how long `/metrics` takes to render, measured from outside the process.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::Duration;

use tokio::time::Instant;

use crate::federation::{Faults, Federation, Options, SPEED_UP};
use crate::floor::{allocations, AllocationCounter};
use crate::node::{NodeSpec, SimNode};
use crate::{cpu_seconds, free_port, http, io, pid_of, status_kib, wait_ready, RunError};
use peerscope::config::duration::{format_duration, parse_duration};

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

pub async fn run(args: BenchArgs) -> Result<(), RunError> {
    let node = SimNode::start(loopback(0), NodeSpec::healthy("bench-node", "root", 0.5))
        .await
        .map_err(io("cannot start the simulated node"))?;
    let mut peers = Vec::with_capacity(args.peers);
    for i in 0..args.peers {
        let spec = NodeSpec::healthy(&format!("bench-{i}"), "root", (i % 100) as f64 / 100.0);
        peers.push(
            SimNode::start(loopback(i + 1), spec)
                .await
                .map_err(io(format!("cannot start peer {i}")))?,
        );
    }
    let directory = std::env::temp_dir().join(format!("peerscope-bench-{}", std::process::id()));
    std::fs::create_dir_all(&directory).map_err(io("cannot create the bench directory"))?;
    let peers_file = directory.join("peers.json");
    let targets: Vec<String> = peers.iter().map(|p| p.address().to_string()).collect();
    std::fs::write(
        &peers_file,
        serde_json::json!([{ "targets": targets }]).to_string(),
    )
    .map_err(io("cannot write the peers file"))?;

    let listen = free_port()?;
    let timeout = args.interval.mul_f64(0.8).min(Duration::from_millis(2500));
    let program = crate::sidecar_program()?;
    let counter = AllocationCounter::build(&directory);
    let sidecar_count = directory.join("sidecar.allocations");
    let mut command = tokio::process::Command::new(program);
    if let Some(counter) = &counter {
        counter.attach(&mut command, &sidecar_count)?;
    }
    let mut child = command
        .args([
            "run",
            "--node",
            &node.url(),
            "--web.listen-address",
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
            "--log.level",
            "warn",
            // Every peer pulled, whatever `auto` would choose: the bench measures the mesh.
            "--observers-per-peer",
            "0",
        ])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(io("cannot start the sidecar"))?;
    let pid = pid_of(&child)?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(http("cannot build the HTTP client"))?;
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
    let measured = |figure: Option<f64>, what: &str| {
        figure.ok_or_else(|| RunError::Measurement(format!("/proc/{pid}: no {what}")))
    };
    let cpu_before = measured(cpu_seconds(pid), "CPU times")?;
    let allocations_before = allocations(&sidecar_count);
    let before = pull_counters(&client, &base).await?;
    tokio::time::sleep(args.duration).await;
    let cpu_after = measured(cpu_seconds(pid), "CPU times")?;
    let allocations_after = allocations(&sidecar_count);
    let after = pull_counters(&client, &base).await?;
    let rss = measured(status_kib(pid, "VmRSS:").map(|k| k as f64), "VmRSS")?;
    let peak = measured(status_kib(pid, "VmHWM:").map(|k| k as f64), "VmHWM")?;

    // /metrics as each kind of scraper takes it: text or OpenMetrics (Prometheus), plain
    // or gzip (Prometheus asks for gzip).
    let mut scrapes = Vec::new();
    let scraping_from = pull_counters(&client, &base).await?;
    for (format, accept) in [
        ("text 0.0.4 ", "text/plain;version=0.0.4"),
        ("OpenMetrics", "application/openmetrics-text;version=1.0.0"),
    ] {
        for gzip in [false, true] {
            let timed = time_scrapes(&client, &base, accept, gzip).await?;
            scrapes.push((format, gzip, timed));
        }
    }
    // Then back to back for three intervals, so that pulls finish while it renders.
    let storm_until = Instant::now() + args.interval * 3;
    while Instant::now() < storm_until {
        scrape(&client, &base).await?;
    }
    let scraping_to = pull_counters(&client, &base).await?;
    let _ = tokio::process::Command::new("kill")
        .arg(pid.to_string())
        .status()
        .await;
    let _ = child.wait().await;

    // The floor, against the same peers, measured the same way.
    let urls: Vec<String> = std::iter::once(&node)
        .chain(&peers)
        .map(|n| format!("{}{}", n.url(), peerscope::pull::contract::SUMMARY_PATH))
        .collect();
    let floor = measure_floor(&urls, &args, timeout, counter.as_ref(), &directory).await;
    let _ = std::fs::remove_dir_all(&directory);

    let pulls = after.polls - before.polls;
    if pulls == 0 {
        return Err(RunError::Measurement(
            "no pulls were completed while measuring".into(),
        ));
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
        "pull duration          {:.2} ms mean while measuring, {:.2} ms while /metrics was scraped back to back",
        after.mean_duration_since(&before) * 1e3,
        scraping_to.mean_duration_since(&scraping_from) * 1e3
    );
    println!(
        "CPU busy               {:.1}% of one core",
        100.0 * (cpu_after - cpu_before) / args.duration.as_secs_f64()
    );
    println!(
        "RSS                    {:.1} MiB (peak {:.1} MiB)",
        rss / 1024.0,
        peak / 1024.0
    );
    let sidecar = Figures {
        cpu_per_pull: (cpu_after - cpu_before) / pulls as f64,
        allocations_per_pull: allocations_before
            .zip(allocations_after)
            .map(|(before, after)| (after - before) as f64 / pulls as f64),
        rss_mib: rss / 1024.0,
    };
    match floor {
        Ok(floor) => compare(&sidecar, &floor),
        Err(error) => println!("the floor could not be measured: {error}"),
    }
    for (format, gzip, (millis, bytes)) in scrapes {
        println!(
            "/metrics {format} {} median {:.1} ms, p90 {:.1} ms, max {:.1} ms, {} KiB",
            if gzip { "gzip " } else { "plain" },
            millis[10],
            millis[18],
            millis[19],
            bytes / 1024
        );
    }
    Ok(())
}

/// What one program costs per pull, measured from outside.
struct Figures {
    cpu_per_pull: f64,
    allocations_per_pull: Option<f64>,
    rss_mib: f64,
}

/// Prints the sidecar beside the floor, with the ratios.
fn compare(sidecar: &Figures, floor: &Figures) {
    println!("                       peerscope     floor        ratio");
    println!(
        "CPU per pull           {:>6.1} µs     {:>6.1} µs    {:.2}×",
        sidecar.cpu_per_pull * 1e6,
        floor.cpu_per_pull * 1e6,
        sidecar.cpu_per_pull / floor.cpu_per_pull
    );
    match (sidecar.allocations_per_pull, floor.allocations_per_pull) {
        (Some(s), Some(f)) => println!(
            "allocations per pull   {s:>6.1}        {f:>6.1}       {:.2}×",
            s / f
        ),
        _ => println!("allocations per pull   not counted"),
    }
    println!(
        "RSS                    {:>6.1} MiB    {:>6.1} MiB   +{:.1} MiB",
        sidecar.rss_mib,
        floor.rss_mib,
        sidecar.rss_mib - floor.rss_mib
    );
}

/// Runs the floor (this program's `floor` command) against `urls` for a short warm-up
/// and `args.duration`, and measures it as the sidecar was.
async fn measure_floor(
    urls: &[String],
    args: &BenchArgs,
    timeout: Duration,
    counter: Option<&AllocationCounter>,
    directory: &std::path::Path,
) -> Result<Figures, RunError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::io::AsyncBufReadExt;

    let urls_file = directory.join("floor-urls");
    std::fs::write(&urls_file, urls.join("\n")).map_err(io("cannot write the floor's URLs"))?;
    let this = std::env::current_exe().map_err(io("cannot find this program"))?;
    let mut command = tokio::process::Command::new(this);
    let count_file = directory.join("floor.allocations");
    if let Some(counter) = counter {
        counter.attach(&mut command, &count_file)?;
    }
    let mut child = command
        .arg("floor")
        .arg("--urls-file")
        .arg(&urls_file)
        .args(["--interval", &format_duration(args.interval)])
        .args(["--timeout", &format_duration(timeout)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(io("cannot start the floor"))?;
    let pid = pid_of(&child)?;
    let pulls = std::sync::Arc::new(AtomicU64::new(0));
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("piped")).lines();
    let counted = pulls.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(n) = line.trim().parse() {
                counted.store(n, Ordering::Relaxed);
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(5).max(args.interval * 3)).await;
    let measured = |figure: Option<f64>, what: &str| {
        figure.ok_or_else(|| RunError::Measurement(format!("/proc/{pid}: no {what}")))
    };
    let (cpu_before, pulls_before) = (
        measured(cpu_seconds(pid), "CPU times")?,
        pulls.load(Ordering::Relaxed),
    );
    let allocations_before = allocations(&count_file);
    tokio::time::sleep(args.duration).await;
    let (cpu_after, pulls_after) = (
        measured(cpu_seconds(pid), "CPU times")?,
        pulls.load(Ordering::Relaxed),
    );
    let allocations_after = allocations(&count_file);
    let rss = measured(status_kib(pid, "VmRSS:").map(|k| k as f64), "VmRSS")?;
    let _ = child.kill().await;
    let done = pulls_after - pulls_before;
    if done == 0 {
        return Err(RunError::Measurement("the floor completed no pulls".into()));
    }
    Ok(Figures {
        cpu_per_pull: (cpu_after - cpu_before) / done as f64,
        allocations_per_pull: allocations_before
            .filter(|_| counter.is_some())
            .zip(allocations_after)
            .map(|(before, after)| (after - before) as f64 / done as f64),
        rss_mib: rss / 1024.0,
    })
}

/// 20 scrapes of `/metrics` with `accept`, gzip-compressed or not: their times in
/// milliseconds (sorted) and the bytes of the last answer as transferred.
async fn time_scrapes(
    client: &reqwest::Client,
    base: &str,
    accept: &str,
    gzip: bool,
) -> Result<(Vec<f64>, usize), RunError> {
    let url = format!("{base}/metrics");
    let mut millis = Vec::new();
    let mut bytes = 0;
    for _ in 0..20 {
        let started = Instant::now();
        let mut request = client.get(&url).header("accept", accept);
        if gzip {
            request = request.header("accept-encoding", "gzip");
        }
        let response = request.send().await.map_err(http(&url))?;
        bytes = response.bytes().await.map_err(http(&url))?.len();
        millis.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    millis.sort_by(f64::total_cmp);
    Ok((millis, bytes))
}

/// The i-th loopback address, 127.1.x.y, so that every simulated node is its own host.
fn loopback(i: usize) -> SocketAddr {
    let ip = Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250 + 1) as u8);
    SocketAddr::new(IpAddr::V4(ip), 0)
}

/// The sidecar's pull counters in one scrape: pulls completed (every `*_polls_total`) and
/// the peers' poll-duration histogram's sum and count.
struct PullCounters {
    polls: u64,
    duration_sum: f64,
    duration_count: f64,
}

impl PullCounters {
    /// Mean seconds per peer pull between `earlier` and these.
    fn mean_duration_since(&self, earlier: &PullCounters) -> f64 {
        (self.duration_sum - earlier.duration_sum)
            / (self.duration_count - earlier.duration_count).max(1.0)
    }
}

async fn pull_counters(client: &reqwest::Client, base: &str) -> Result<PullCounters, RunError> {
    let text = scrape(client, base).await?;
    let sum = |prefix: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    Ok(PullCounters {
        polls: (sum("peerscope_peer_polls_total") + sum("peerscope_node_polls_total")) as u64,
        duration_sum: sum("peerscope_peer_poll_duration_seconds_sum"),
        duration_count: sum("peerscope_peer_poll_duration_seconds_count"),
    })
}

async fn scrape(client: &reqwest::Client, base: &str) -> Result<String, RunError> {
    let url = format!("{base}/metrics");
    let response = client.get(&url).send().await.map_err(http(&url))?;
    response.text().await.map_err(http(url))
}

/// `peerscope bench federation`.
#[derive(clap::Args, Debug)]
pub struct FederationArgs {
    /// Members of the federation (each a simulated node with a real sidecar).
    #[arg(long, default_value_t = 50)]
    pub nodes: usize,
    /// K: observers per peer.
    #[arg(long, default_value_t = 8)]
    pub observers_per_peer: usize,
    /// Prometheus shards (plus one global).
    #[arg(long, default_value_t = 2)]
    pub shards: usize,
    /// How long to measure steady state before the faults.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub duration: Duration,
    /// The repository's alert rules directory, loaded by the Prometheus servers.
    #[arg(long, default_value = "alerts")]
    pub rules: std::path::PathBuf,
}

/// Runs a whole federation (see `federation`), measures it, injects a dead node, an
/// isolated observer and a flaky node, and prints what it took and what was notified.
pub async fn run_federation(args: FederationArgs) -> Result<(), RunError> {
    let program = crate::sidecar_program()?;
    let started = Instant::now();
    let federation = Federation::start(&Options {
        nodes: args.nodes,
        observers_per_peer: args.observers_per_peer,
        shards: args.shards,
        program,
        rules: args.rules.clone(),
    })
    .await?;
    let n = args.nodes;
    println!(
        "bench federation: {n} nodes, K = {}, {} shards + 1 global; every peer has a verdict after {:.1}s",
        args.observers_per_peer,
        args.shards,
        started.elapsed().as_secs_f64()
    );

    let (pulls_before, cpu_before) = (federation.pulls_served(), federation.sidecar_cpu_seconds());
    tokio::time::sleep(args.duration).await;
    let (pulls_after, cpu_after) = (federation.pulls_served(), federation.sidecar_cpu_seconds());
    let seconds = args.duration.as_secs_f64();
    // Each sidecar pulls its own node and its sample every second (interval 1 s).
    println!(
        "pulls per interval     {:.0} (full mesh would be {})",
        (pulls_after - pulls_before) as f64 / seconds,
        n * n
    );
    let series = federation.sidecar_series().await;
    let total: usize = series.iter().sum();
    println!(
        "series per sidecar     min {} / mean {:.0} / max {}; all sidecars {total}",
        series.iter().min().unwrap_or(&0),
        total as f64 / n as f64,
        series.iter().max().unwrap_or(&0)
    );
    let cpu: Vec<f64> = cpu_before
        .iter()
        .zip(&cpu_after)
        .map(|(b, a)| 100.0 * (a - b) / seconds)
        .collect();
    println!(
        "CPU per sidecar        mean {:.2}% / max {:.2}% of one core",
        cpu.iter().sum::<f64>() / n as f64,
        cpu.iter().copied().fold(0.0, f64::max)
    );
    for (name, head, rss) in federation.prometheus_figures().await {
        println!("Prometheus {name:<9}  {head:.0} head series, RSS {rss:.0} MiB");
    }

    // Faults, at once: a dead node, a flaky one, and an observer of neither.
    let Faults {
        dead,
        flaky,
        isolated,
    } = federation.choose_faults().ok_or_else(|| {
        RunError::Measurement(
            "no observer of two healthy peers: the federation is too small".into(),
        )
    })?;
    let names = federation.names.clone();
    let isolated_instance = federation.sidecar_addresses[isolated].to_string();
    let injected = Instant::now();
    federation.kill_node(dead);
    federation.make_flaky(flaky, 0.3);
    federation.isolate_observer(isolated)?;
    let faults = [
        (
            "dead node",
            "PeerscopePeerDownByConsensus",
            "peer",
            names[dead].clone(),
        ),
        (
            "isolated observer",
            "PeerscopeObserverIsolated",
            "instance",
            isolated_instance,
        ),
        (
            "flaky node",
            "PeerscopePeerFlaky",
            "peer",
            names[flaky].clone(),
        ),
    ];
    let mut times = Vec::new();
    for (_, alert, label, value) in &faults {
        federation.wait_firing(alert, (label, value), 300).await?;
        times.push(injected.elapsed());
    }
    // Let Alertmanager deliver, and any duplicate show up.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let received = federation.webhook.received();
    for ((fault, alert, label, value), time) in faults.iter().zip(times) {
        let notified = received
            .iter()
            .filter(|a| a.firing() && a.alertname == *alert && a.labels.get(*label) == Some(value))
            .count();
        println!(
            "{fault:<18}     verdict {alert} after {:.1}s (×{SPEED_UP} in production: {:.0}s), {notified} firing notification(s)",
            time.as_secs_f64(),
            time.as_secs_f64() * f64::from(SPEED_UP)
        );
    }
    println!("all notifications      {}", received.len());
    for alert in &received {
        let about = ["peer", "instance"]
            .iter()
            .filter_map(|l| Some(format!("{l}={}", alert.labels.get(*l)?)))
            .collect::<Vec<_>>()
            .join(" ");
        println!("  {} {about} ({})", alert.alertname, alert.status);
    }
    Ok(())
}
