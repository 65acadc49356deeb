//! `peerscope bench faults`: the fault campaign. The real sidecar binary, beside simulated
//! nodes on loopback, through the faults a file, a client, its node or the machine can
//! throw at it. During each fault `/metrics` is scraped every 100 ms (latency measured);
//! afterwards the campaign checks that the good peers stayed up, that memory stayed under
//! [`MEMORY_BOUND_MIB`], that nothing saved was lost, and that the fault showed in the
//! metrics or `/status`. It prints one row per fault and fails if any row broke a promise.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Child;
use tokio::time::Instant;

use crate::node::{NodeSpec, ReconcileBehavior, SimNode};
use crate::{free_port, http, io, pid_of, status_kib, wait_ready, RunError};
use peerscope::ops::checkpoint;

/// Peak resident memory every fault must stay under, in MiB.
pub const MEMORY_BOUND_MIB: f64 = 64.0;
/// A scrape slower than this counts as failed.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(clap::Args, Debug)]
pub struct FaultArgs {
    /// The short campaign (CI): fewer replacements, connections and kills.
    #[arg(long)]
    pub short: bool,
}

/// How hard each fault pushes.
struct Scale {
    replace_for: Duration,
    connections: usize,
    kills: usize,
    stopped_for: Duration,
}

/// One fault's outcome.
struct Row {
    fault: String,
    scrapes: Scrapes,
    good_peers_up: bool,
    peak_mib: f64,
    /// What shows nothing saved was lost (or `-` where the fault touches nothing saved).
    kept: String,
    /// Where the fault showed: a metric or a `/status` field, with its value.
    visible: String,
    /// A promise this row broke, if any.
    broken: Option<String>,
}

/// `/metrics` as seen from outside while a fault ran.
#[derive(Default)]
struct Scrapes {
    millis: Vec<f64>,
    failed: usize,
}

impl Scrapes {
    fn summary(&self) -> String {
        let mut sorted = self.millis.clone();
        sorted.sort_by(f64::total_cmp);
        match (sorted.get(sorted.len() / 2), sorted.last()) {
            (Some(median), Some(max)) => format!(
                "{median:.1} / {max:.1} ms, {} of {} failed",
                self.failed,
                self.failed + sorted.len()
            ),
            _ => format!("none answered ({} failed)", self.failed),
        }
    }
}

pub async fn run(args: FaultArgs) -> Result<(), RunError> {
    let scale = if args.short {
        Scale {
            replace_for: Duration::from_secs(3),
            connections: 1200,
            kills: 40,
            stopped_for: Duration::from_secs(2),
        }
    } else {
        Scale {
            replace_for: Duration::from_secs(10),
            connections: 2000,
            kills: 500,
            stopped_for: Duration::from_secs(5),
        }
    };
    let program = crate::sidecar_program()?;
    let root = std::env::temp_dir().join(format!("peerscope-faults-{}", std::process::id()));
    std::fs::create_dir_all(&root).map_err(io("cannot create the campaign directory"))?;
    println!(
        "bench faults{}: the real sidecar beside simulated nodes; memory bound {MEMORY_BOUND_MIB} MiB",
        if args.short { " (short)" } else { "" }
    );
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    rows.push(files_replaced_rapidly(&program, &root.join("replace"), &scale).await?);
    rows.extend(hostile_config_files(&program, &root.join("files")).await?);
    match checkpoint_directory_faults(&program, &root.join("checkpoint-dir")).await? {
        Ok(faults) => rows.extend(faults),
        Err(why) => skipped.push(format!("read-only and full checkpoint directory: {why}")),
    }
    rows.extend(reconcile_api_faults(&program, &root.join("reconcile")).await?);
    rows.push(hostile_clients(&program, &root.join("clients"), &scale).await?);
    rows.push(cross_site_reload(&program, &root.join("cross-site")).await?);
    rows.push(forged_log_line(&program, &root.join("log-line")).await?);
    rows.push(stopped_and_continued(&program, &root.join("stop"), &scale).await?);
    rows.push(killed_during_checkpoint_writes(&program, &root.join("kill"), &scale).await?);
    let _ = std::fs::remove_dir_all(&root);

    println!();
    println!("| fault | /metrics median / max | good peers up | peak RSS | nothing lost | visible as | verdict |");
    println!("|---|---|---|---|---|---|---|");
    for row in &rows {
        println!(
            "| {} | {} | {} | {:.1} MiB | {} | {} | {} |",
            row.fault,
            row.scrapes.summary(),
            if row.good_peers_up { "yes" } else { "NO" },
            row.peak_mib,
            row.kept,
            row.visible,
            row.broken.as_deref().unwrap_or("held")
        );
    }
    for why in &skipped {
        println!("skipped: {why}");
    }
    let broken = rows.iter().filter(|r| r.broken.is_some()).count();
    println!("{} passed, {broken} failed", rows.len() - broken);
    if broken > 0 {
        return Err(RunError::Measurement(format!(
            "{broken} fault(s) broke a promise"
        )));
    }
    Ok(())
}

/// A sidecar beside a local node and two good peers (`b`, `c`, listed in a peers file),
/// its files in `dir`.
struct Rig {
    child: Child,
    pid: u32,
    base: String,
    client: reqwest::Client,
    dir: PathBuf,
    config: PathBuf,
    peers: PathBuf,
    local: SimNode,
    /// The good peers `b` and `c`.
    good: [SimNode; 2],
}

impl Rig {
    /// `extra` is appended to the config file; `local_root`/`peer_root` set the roots.
    async fn start(
        program: &Path,
        dir: &Path,
        extra: &str,
        roots: (&str, &str),
    ) -> Result<Rig, RunError> {
        std::fs::create_dir_all(dir).map_err(io("cannot create a rig directory"))?;
        let any = "127.0.0.1:0".parse().expect("a literal address");
        let start = |id: &str, root: &str| SimNode::start(any, NodeSpec::healthy(id, root, 0.4));
        let local = start("nova-local", roots.0)
            .await
            .map_err(io("cannot start the local node"))?;
        let good = [
            start("nova-b", roots.1)
                .await
                .map_err(io("cannot start peer b"))?,
            start("nova-c", roots.1)
                .await
                .map_err(io("cannot start peer c"))?,
        ];
        let config = dir.join("peerscope.toml");
        let peers = dir.join("peers.json");
        std::fs::write(&peers, peers_text(&good, false)).map_err(io("cannot write peers"))?;
        std::fs::write(
            &config,
            format!(
                "node = \"{}\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\nwindow = \"30s\"\npeers_file = \"peers.json\"\nlog_level = \"warn\"\n{extra}\n",
                local.url()
            ),
        )
        .map_err(io("cannot write the config"))?;
        let (child, pid, base) = spawn(program, &config, dir).await?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(SCRAPE_TIMEOUT)
            .build()
            .map_err(http("cannot build the HTTP client"))?;
        let rig = Rig {
            child,
            pid,
            base,
            client,
            dir: dir.to_path_buf(),
            config,
            peers,
            local,
            good,
        };
        rig.wait_ready().await?;
        Ok(rig)
    }

    async fn wait_ready(&self) -> Result<(), RunError> {
        wait_ready(&self.client, &self.base).await
    }

    /// GET `path`; `None` if it did not answer within the scrape time-out.
    async fn get(&self, path: &str) -> Option<reqwest::Response> {
        let url = format!("{}{path}", self.base);
        self.client.get(url).send().await.ok()
    }

    async fn scrape(&self) -> Option<String> {
        self.get("/metrics").await?.text().await.ok()
    }

    async fn value(&self, name: &str, labels: &str) -> Option<f64> {
        value(&self.scrape().await?, name, labels)
    }

    async fn status(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.get("/status").await?.bytes().await.ok()?).ok()
    }

    async fn reload(&self) -> Option<(u16, String)> {
        let response = self
            .client
            .post(format!("{}/-/reload", self.base))
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    }

    async fn good_peers_up(&self) -> bool {
        let Some(text) = self.scrape().await else {
            return false;
        };
        ["b", "c"]
            .iter()
            .all(|p| value(&text, "peerscope_peer_up", &format!("peer=\"{p}\"")) == Some(1.0))
    }

    /// Waits up to `seconds` for the good peers to be up again after a fault.
    async fn good_peers_recover(&self, seconds: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        while Instant::now() < deadline {
            if self.good_peers_up().await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    fn peak_mib(&self) -> f64 {
        status_kib(self.pid, "VmHWM:").map_or(f64::NAN, |k| k as f64 / 1024.0)
    }

    /// Runs `fault` while scraping `/metrics` every 100 ms.
    async fn during<F: std::future::Future>(&self, fault: F) -> (F::Output, Scrapes) {
        let done = tokio_util::sync::CancellationToken::new();
        let probe = async {
            let mut scrapes = Scrapes::default();
            while !done.is_cancelled() {
                let started = Instant::now();
                match self.scrape().await {
                    Some(_) => scrapes
                        .millis
                        .push(started.elapsed().as_secs_f64() * 1000.0),
                    None => scrapes.failed += 1,
                }
                tokio::select! {
                    () = done.cancelled() => {}
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
            scrapes
        };
        let fault = async {
            let output = fault.await;
            done.cancel();
            output
        };
        tokio::join!(fault, probe)
    }

    /// A row with the common checks: scrapes all answered, good peers up, memory bound.
    async fn row(
        &self,
        fault: &str,
        scrapes: Scrapes,
        kept: String,
        visible: Option<String>,
    ) -> Row {
        let good_peers_up = self.good_peers_recover(10).await;
        let peak_mib = self.peak_mib();
        let broken = if scrapes.failed > 0 {
            Some(format!("{} scrapes failed", scrapes.failed))
        } else if !good_peers_up {
            Some("a good peer went down".to_owned())
        } else if peak_mib.is_nan() || peak_mib > MEMORY_BOUND_MIB {
            Some(format!("peak RSS {peak_mib:.1} MiB over the bound"))
        } else if visible.is_none() {
            Some("the fault did not show in metrics or /status".to_owned())
        } else {
            None
        };
        Row {
            fault: fault.to_owned(),
            scrapes,
            good_peers_up,
            peak_mib,
            kept,
            visible: visible.unwrap_or_else(|| "nowhere".to_owned()),
            broken,
        }
    }

    /// The row of a fault that touches nothing saved, then the rig stopped.
    async fn last_row(self, fault: &str, scrapes: Scrapes, visible: Option<String>) -> Row {
        let row = self.row(fault, scrapes, "-".to_owned(), visible).await;
        self.stop().await;
        row
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

async fn spawn(
    program: &Path,
    config: &Path,
    dir: &Path,
) -> Result<(Child, u32, String), RunError> {
    let listen = free_port()?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("sidecar.log"))
        .map_err(io("cannot open the sidecar log"))?;
    let child = tokio::process::Command::new(program)
        .arg("run")
        .arg("--config")
        .arg(config)
        .args(["--web.listen-address", &listen.to_string()])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .map_err(io("cannot start the sidecar"))?;
    let pid = pid_of(&child)?;
    Ok((child, pid, format!("http://{listen}")))
}

fn peers_text(good: &[SimNode; 2], swapped: bool) -> String {
    let mut groups = vec![
        serde_json::json!({"targets": [good[0].address().to_string()], "labels": {"name": "b"}}),
        serde_json::json!({"targets": [good[1].address().to_string()], "labels": {"name": "c"}}),
    ];
    if swapped {
        groups.reverse();
    }
    serde_json::Value::Array(groups).to_string()
}

/// The value of `name{labels}` (labels as written in the exposition, or empty).
fn value(text: &str, name: &str, labels: &str) -> Option<f64> {
    let series = if labels.is_empty() {
        format!("{name} ")
    } else {
        format!("{name}{{{labels}}} ")
    };
    text.lines()
        .find_map(|line| line.strip_prefix(&series)?.trim().parse().ok())
}

/// Replaces `path` by renaming a freshly written file over it, as editors do.
fn replace(path: &Path, text: &str) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path)
}

/// The peers file swapped 1,000 times a second (and the config re-saved every tenth time).
async fn files_replaced_rapidly(
    program: &Path,
    dir: &Path,
    scale: &Scale,
) -> Result<Row, RunError> {
    let rig = Rig::start(program, dir, "", ("root-1", "root-1")).await?;
    let polls_before = rig.value("peerscope_peer_polls_total", "peer=\"b\"").await;
    let reloads_before = rig
        .value("peerscope_config_reloads_total", "")
        .await
        .unwrap_or(0.0);
    let texts = [peers_text(&rig.good, false), peers_text(&rig.good, true)];
    let config_text = std::fs::read_to_string(&rig.config).map_err(io("cannot read the config"))?;
    let (peers, config, replace_for) = (rig.peers.clone(), rig.config.clone(), scale.replace_for);
    let writer = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let mut count = 0u64;
        // Paced to one replacement per millisecond, catching up after a slow one.
        while started.elapsed() < replace_for {
            replace(&peers, &texts[(count % 2) as usize])?;
            if count.is_multiple_of(10) {
                replace(&config, &config_text)?;
            }
            count += 1;
            let next = Duration::from_millis(count);
            if let Some(ahead) = next.checked_sub(started.elapsed()) {
                std::thread::sleep(ahead);
            }
        }
        Ok::<_, std::io::Error>(count)
    });
    let (written, scrapes) = rig.during(writer).await;
    let count = written
        .map_err(|e| RunError::Measurement(format!("the writer failed: {e}")))?
        .map_err(io("cannot replace the peers file"))?;
    let reloads = rig
        .value("peerscope_config_reloads_total", "")
        .await
        .unwrap_or(0.0);
    let polls_after = rig.value("peerscope_peer_polls_total", "peer=\"b\"").await;
    let kept = match (polls_before, polls_after) {
        (Some(before), Some(after)) if after >= before => {
            format!("peer b's window kept ({before:.0} → {after:.0} polls)")
        }
        _ => "NO: peer b's counters went back".to_owned(),
    };
    let visible = (reloads > reloads_before)
        .then(|| format!("config_reloads_total +{:.0}", reloads - reloads_before));
    let fault = format!(
        "peers file replaced {count} times in {:.0} s (≈{:.0}/s)",
        scale.replace_for.as_secs_f64(),
        count as f64 / scale.replace_for.as_secs_f64()
    );
    let mut row = rig.row(&fault, scrapes, kept.clone(), visible).await;
    if kept.starts_with("NO") {
        row.broken = Some(kept);
    }
    rig.stop().await;
    Ok(row)
}

/// A symlink loop, a directory and a 100 MB file in place of the config file.
async fn hostile_config_files(program: &Path, dir: &Path) -> Result<Vec<Row>, RunError> {
    let rig = Rig::start(program, dir, "", ("root-1", "root-1")).await?;
    let good = std::fs::read_to_string(&rig.config).map_err(io("cannot read the config"))?;
    type Make = fn(&Path) -> std::io::Result<()>;
    let kinds: [(&str, Make, &str); 3] = [
        (
            "symlink loop as config",
            |p| {
                let other = p.with_extension("loop");
                std::os::unix::fs::symlink(&other, p)?;
                std::os::unix::fs::symlink(p, &other)
            },
            "symbolic links",
        ),
        (
            "directory as config",
            |p| std::fs::create_dir(p),
            "a directory",
        ),
        (
            "100 MB file as config",
            |p| std::fs::File::create(p)?.set_len(100 * 1024 * 1024),
            "larger than the limit",
        ),
    ];
    let mut rows = Vec::new();
    for (fault, make, expected) in kinds {
        remove_any(&rig.config);
        let _ = std::fs::remove_file(rig.config.with_extension("loop"));
        make(&rig.config).map_err(io(format!("cannot make the {fault}")))?;
        let (answer, scrapes) = rig.during(rig.reload()).await;
        let status = rig.status().await;
        let error = status
            .as_ref()
            .and_then(|s| s["config"]["last_error"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let refused = matches!(&answer, Some((400, body)) if body.contains(expected));
        let visible = (refused && error.contains(expected))
            .then(|| format!("reload 400, /status config.last_error: …{}…", expected));
        remove_any(&rig.config);
        let _ = std::fs::remove_file(rig.config.with_extension("loop"));
        std::fs::write(&rig.config, &good).map_err(io("cannot restore the config"))?;
        let restored = matches!(rig.reload().await, Some((200, _)));
        let kept = if restored {
            "old config stayed in force; restored file reloads"
        } else {
            "NO: the restored config did not reload"
        };
        let mut row = rig.row(fault, scrapes, kept.to_owned(), visible).await;
        if !restored {
            row.broken = Some(kept.to_owned());
        }
        rows.push(row);
    }
    rig.stop().await;
    Ok(rows)
}

fn remove_any(path: &Path) {
    let _ = std::fs::remove_file(path).or_else(|_| std::fs::remove_dir_all(path));
}

/// The checkpoint directory made read-only, then filled up: writes fail and are
/// counted, the last checkpoint stays whole, and writes resume when the fault clears.
/// Needs a small tmpfs (mounting as root); `Ok(Err(why))` when this machine cannot.
async fn checkpoint_directory_faults(
    program: &Path,
    dir: &Path,
) -> Result<Result<Vec<Row>, String>, RunError> {
    let mount_point = dir.join("cp");
    std::fs::create_dir_all(&mount_point).map_err(io("cannot create the mount point"))?;
    let mounted = command(
        "mount",
        &["-t", "tmpfs", "-o", "size=512k", "tmpfs"],
        &mount_point,
    )
    .await;
    if let Err(why) = mounted {
        return Ok(Err(format!("cannot mount a tmpfs here ({why})")));
    }
    let rows = checkpoint_directory_rows(program, dir, &mount_point).await;
    let _ = command("umount", &["-l"], &mount_point).await;
    rows.map(Ok)
}

async fn checkpoint_directory_rows(
    program: &Path,
    dir: &Path,
    mount_point: &Path,
) -> Result<Vec<Row>, RunError> {
    let state = mount_point.join("state.json");
    let extra = format!(
        "[checkpoint]\npath = \"{}\"\ninterval = \"200ms\"",
        state.display()
    );
    let rig = Rig::start(program, dir, &extra, ("root-1", "root-1")).await?;
    let writes = || rig.value("peerscope_checkpoint_writes_total", "");
    let failures = || rig.value("peerscope_checkpoint_write_failures_total", "");
    wait_for(10, || async { writes().await.unwrap_or(0.0) >= 2.0 }).await;
    let mut rows = Vec::new();
    for fault in [
        "checkpoint directory read-only",
        "checkpoint directory full",
    ] {
        let failures_before = failures().await.unwrap_or(0.0);
        let filler = mount_point.join("filler");
        // Read-only: the immutable attribute, which root obeys too (a remount `ro` is
        // refused while the sidecar holds its lock file open for writing).
        let injected = if fault.ends_with("read-only") {
            command("chattr", &["+i"], mount_point).await
        } else {
            fill(&filler).await
        };
        if let Err(why) = injected {
            return Err(RunError::Measurement(format!(
                "{fault}: cannot inject: {why}"
            )));
        }
        let (_, scrapes) = rig
            .during(wait_for(10, || async {
                failures().await.unwrap_or(0.0) >= failures_before + 3.0
            }))
            .await;
        let failed = failures().await.unwrap_or(0.0) - failures_before;
        let whole = std::fs::read(&state)
            .ok()
            .is_some_and(|bytes| checkpoint::decode(&bytes, "state.json").is_ok());
        if fault.ends_with("read-only") {
            let _ = command("chattr", &["-i"], mount_point).await;
        } else {
            let _ = std::fs::remove_file(&filler);
        }
        let writes_now = writes().await.unwrap_or(0.0);
        let resumed = wait_for(10, || async { writes().await.unwrap_or(0.0) > writes_now }).await;
        let kept = match (whole, resumed) {
            (true, true) => "last checkpoint whole; writes resumed",
            (true, false) => "NO: writes did not resume",
            (false, _) => "NO: the last checkpoint is damaged",
        };
        let visible =
            (failed > 0.0).then(|| format!("checkpoint_write_failures_total +{failed:.0}"));
        let mut row = rig.row(fault, scrapes, kept.to_owned(), visible).await;
        if kept.starts_with("NO") {
            row.broken = Some(kept.to_owned());
        }
        rows.push(row);
    }
    rig.stop().await;
    Ok(rows)
}

/// Fills the filesystem of `path` until it refuses another byte.
async fn fill(path: &Path) -> Result<(), String> {
    use std::io::Write;
    let mut file = std::fs::File::create(path).map_err(|e| e.to_string())?;
    let chunk = [0u8; 4096];
    while file.write_all(&chunk).and_then(|()| file.flush()).is_ok() {}
    Ok(())
}

async fn command(program: &str, args: &[&str], target: &Path) -> Result<(), String> {
    let output = tokio::process::Command::new(program)
        .args(args)
        .arg(target)
        .output()
        .await
        .map_err(|e| format!("{program}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Polls `check` every 50 ms for up to `seconds`; whether it came true.
async fn wait_for<F, Fut>(seconds: u64, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// The local node in the minority (its peers agree on another root), reconciliation on;
/// its API first hangs, then answers slowly.
async fn reconcile_api_faults(program: &Path, dir: &Path) -> Result<Vec<Row>, RunError> {
    let extra = "[reconcile]\nmode = \"on\"\nthreshold = 2\ntimeout = \"1s\"\ncooldown = \"2s\"\nbackoff_base = \"1s\"\nbackoff_cap = \"2s\"\nmax_per_hour = 1000";
    let rig = Rig::start(program, dir, extra, ("root-old", "root-new")).await?;
    let timeouts = || rig.value("peerscope_reconcile_failures_total", "reason=\"timeout\"");
    let mut rows = Vec::new();

    rig.local.set_reconcile_behavior(ReconcileBehavior::Hang);
    let (_, scrapes) = rig
        .during(wait_for(20, || async {
            timeouts().await.unwrap_or(0.0) >= 2.0
        }))
        .await;
    let failed = timeouts().await.unwrap_or(0.0);
    let visible = (failed >= 1.0)
        .then(|| format!("reconcile_failures_total{{reason=\"timeout\"}} {failed:.0}"));
    let kept = "never two in flight (single flight)";
    let in_flight = rig.local.reconcile_requests().len();
    let mut row = rig
        .row(
            "node's reconcile API hangs",
            scrapes,
            kept.to_owned(),
            visible,
        )
        .await;
    if in_flight as f64 > failed + 1.0 {
        row.broken = Some(format!("{in_flight} requests for {failed} time-outs"));
    }
    rows.push(row);

    rig.local
        .set_reconcile_behavior(ReconcileBehavior::SlowHeal(Duration::from_millis(700)));
    let healed = || async { rig.local.state_root() == "root-new" };
    let (healed_in_time, scrapes) = rig.during(wait_for(20, healed)).await;
    let accepted = rig
        .value("peerscope_reconcile_requests_total", "")
        .await
        .unwrap_or(0.0);
    let visible = healed_in_time.then(|| {
        format!("reconcile_requests_total {accepted:.0}; the node healed after a 0.7 s answer")
    });
    rows.push(
        rig.row(
            "node's reconcile API answers after 0.7 s",
            scrapes,
            "-".to_owned(),
            visible,
        )
        .await,
    );
    rig.stop().await;
    Ok(rows)
}

/// Half the connections send headers that never end (and are over the buffer cap), half
/// hold a partial request open (slowloris).
async fn hostile_clients(program: &Path, dir: &Path, scale: &Scale) -> Result<Row, RunError> {
    let rig = Rig::start(program, dir, "", ("root-1", "root-1")).await?;
    let address = rig.base.trim_start_matches("http://").to_owned();
    let padding = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: {}",
        "a".repeat(200 * 1024)
    );
    let flood = async {
        let mut held = Vec::new();
        for index in 0..scale.connections {
            let Ok(mut stream) = tokio::net::TcpStream::connect(&address).await else {
                continue;
            };
            let text = if index.is_multiple_of(2) {
                padding.clone()
            } else {
                "GET /metrics HTTP/1.1\r\nHost: x\r\n".to_owned()
            };
            held.push(tokio::spawn(async move {
                let _ = stream.write_all(text.as_bytes()).await;
                tokio::time::sleep(Duration::from_secs(5)).await;
                drop(stream);
            }));
        }
        for task in held {
            let _ = task.await;
        }
    };
    let (_, scrapes) = rig.during(flood).await;
    let shed = rig
        .value("peerscope_http_connections_shed_total", "")
        .await
        .unwrap_or(0.0);
    let visible = (shed > 0.0).then(|| format!("http_connections_shed_total {shed:.0}"));
    let fault = format!("{} hostile client connections", scale.connections);
    let row = rig.row(&fault, scrapes, "-".to_owned(), visible).await;
    rig.stop().await;
    Ok(row)
}

/// A web page of another site makes the browser `POST /-/reload` (issue 19, item 6).
async fn cross_site_reload(program: &Path, dir: &Path) -> Result<Row, RunError> {
    let rig = Rig::start(program, dir, "", ("root-1", "root-1")).await?;
    let reloads_before = rig.value("peerscope_config_reloads_total", "").await;
    let attempt = async {
        rig.client
            .post(format!("{}/-/reload", rig.base))
            .header("origin", "https://evil.example")
            .header("content-type", "text/plain")
            .body("x")
            .send()
            .await
            .map(|r| r.status().as_u16())
            .ok()
    };
    let (status, scrapes) = rig.during(attempt).await;
    let reloads_after = rig.value("peerscope_config_reloads_total", "").await;
    let visible = (status == Some(403) && reloads_before == reloads_after).then(|| {
        format!(
            "403; config_reloads_total stayed {}",
            reloads_after.unwrap_or(f64::NAN)
        )
    });
    Ok(rig
        .last_row("a cross-site POST /-/reload", scrapes, visible)
        .await)
}

/// A peer name with a newline and terminal escapes (issue 19, item 6): it forged a whole
/// log line. Every value is escaped now.
async fn forged_log_line(program: &Path, dir: &Path) -> Result<Row, RunError> {
    let forged = "2026-01-01T00:00:00Z level=error msg=FORGED";
    let extra =
        format!("[[peers]]\nname = \"x\\n{forged}\\u001b[31m\"\nurl = \"http://127.0.0.1:9\"\n");
    let rig = Rig::start(program, dir, &extra, ("root-1", "root-1")).await?;
    let (_, scrapes) = rig.during(tokio::time::sleep(Duration::from_secs(2))).await;
    let log = std::fs::read_to_string(dir.join("sidecar.log")).unwrap_or_default();
    let mentions = log.matches("FORGED").count();
    let forged_lines = log.lines().filter(|line| line.starts_with(forged)).count();
    let escapes = log.matches('\u{1b}').count();
    let visible = (mentions > 0 && forged_lines == 0 && escapes == 0)
        .then(|| format!("{mentions} log lines name the peer, escaped; 0 forged lines, 0 ESC"));
    Ok(rig
        .last_row("a peer name with a newline and ESC", scrapes, visible)
        .await)
}

/// SIGSTOP, a pause, SIGCONT: the sidecar answers again at once and catches up.
async fn stopped_and_continued(program: &Path, dir: &Path, scale: &Scale) -> Result<Row, RunError> {
    let rig = Rig::start(program, dir, "", ("root-1", "root-1")).await?;
    let cycles_before = rig.value("peerscope_cycles_total", "").await.unwrap_or(0.0);
    send_signal(rig.pid, "STOP").await?;
    tokio::time::sleep(scale.stopped_for).await;
    send_signal(rig.pid, "CONT").await?;
    let continued = Instant::now();
    // The probe starts after SIGCONT: a stopped process answers nothing, by definition.
    let (_, scrapes) = rig.during(tokio::time::sleep(Duration::from_secs(2))).await;
    let answered_after = continued.elapsed();
    let cycles = rig.value("peerscope_cycles_total", "").await.unwrap_or(0.0) - cycles_before;
    let stopped = scale.stopped_for.as_secs_f64();
    let expected = (stopped + answered_after.as_secs_f64()) / 0.2;
    let visible = Some(format!(
        "cycles_total +{cycles:.0} over {:.1} s (missed ticks skipped, ≈{expected:.0} planned)",
        stopped + answered_after.as_secs_f64()
    ));
    let fault = format!("SIGSTOP for {stopped:.0} s, then SIGCONT");
    let row = rig.row(&fault, scrapes, "-".to_owned(), visible).await;
    rig.stop().await;
    Ok(row)
}

async fn send_signal(pid: u32, name: &str) -> Result<(), RunError> {
    let status = tokio::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .await
        .map_err(io("cannot run kill"))?;
    if status.success() {
        Ok(())
    } else {
        Err(RunError::Measurement(format!("kill -{name} {pid} failed")))
    }
}

/// `kill -9` at a random moment while checkpoints are written every 10 ms, many times:
/// every checkpoint left behind must decode and be restored.
async fn killed_during_checkpoint_writes(
    program: &Path,
    dir: &Path,
    scale: &Scale,
) -> Result<Row, RunError> {
    let state = dir.join("state.json");
    let extra = format!(
        "[checkpoint]\npath = \"{}\"\ninterval = \"10ms\"",
        state.display()
    );
    let mut rig = Rig::start(program, dir, &extra, ("root-1", "root-1")).await?;
    let mut damaged = 0;
    let mut restored = 0;
    let mut scrapes = Scrapes::default();
    let mut peak_mib: f64 = 0.0;
    for _ in 0..scale.kills {
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..60))).await;
        peak_mib = peak_mib.max(rig.peak_mib());
        let _ = rig.child.start_kill();
        let _ = rig.child.wait().await;
        let whole = std::fs::read(&state)
            .ok()
            .is_some_and(|bytes| checkpoint::decode(&bytes, "state.json").is_ok());
        if !whole {
            damaged += 1;
        }
        let (child, pid, base) = spawn(program, &rig.config, &rig.dir).await?;
        (rig.child, rig.pid, rig.base) = (child, pid, base);
        rig.wait_ready().await?;
        let started = Instant::now();
        match rig.scrape().await {
            Some(_) => scrapes
                .millis
                .push(started.elapsed().as_secs_f64() * 1000.0),
            None => scrapes.failed += 1,
        }
        let outcome = rig
            .status()
            .await
            .and_then(|s| s["checkpoint"]["restore"].as_str().map(str::to_owned));
        if outcome.is_some_and(|o| o.starts_with("restored")) {
            restored += 1;
        }
    }
    let moved_aside = std::fs::read_dir(dir)
        .map_err(io("cannot list the checkpoint directory"))?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
        .count();
    let kept = format!(
        "{damaged} damaged, {moved_aside} moved aside, {restored} of {} restarts restored",
        scale.kills
    );
    let visible = Some("/status checkpoint.restore: \"restored N peers …\"".to_owned());
    let fault = format!(
        "{} × kill -9 during checkpoint writes (every 10 ms)",
        scale.kills
    );
    let mut row = rig.row(&fault, scrapes, kept.clone(), visible).await;
    row.peak_mib = row.peak_mib.max(peak_mib);
    if damaged > 0 || moved_aside > 0 || restored < scale.kills {
        row.broken = Some(kept);
    }
    rig.stop().await;
    Ok(row)
}
