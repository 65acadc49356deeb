//! Running for months: hot reload in every way a file can change, checkpoints across
//! restarts and crashes, a second sidecar refused, shutdown during a scrape, log files.
//! The real binary, real files, real signals.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{args, sample, series_of_peer, signal, until, Sidecar};
use peerscope_lab::node::{Behavior, NodeSpec, ReconcileBehavior, SimNode};

async fn node(id: &str, root: &str) -> SimNode {
    SimNode::start(
        "127.0.0.1:0".parse().unwrap(),
        NodeSpec::healthy(id, root, 0.5),
    )
    .await
    .unwrap()
}

/// The config text: the node, the named peers, fast cycles, and `extra`.
fn config_text(local: &SimNode, peers: &[(&str, &SimNode)], extra: &str) -> String {
    let mut text = format!(
        "node = \"{}\"\ninterval = \"200ms\"\ntimeout = \"100ms\"\n{extra}\n",
        local.url()
    );
    for (name, peer) in peers {
        text += &format!("[[peers]]\nname = \"{name}\"\nurl = \"{}\"\n", peer.url());
    }
    text
}

fn peers_file_text(peers: &[(&str, &SimNode)]) -> String {
    let groups: Vec<serde_json::Value> = peers
        .iter()
        .map(|(name, node)| serde_json::json!({"targets": [node.address().to_string()], "labels": {"name": name}}))
        .collect();
    serde_json::Value::Array(groups).to_string()
}

/// The ways an operator's tools replace a file.
#[derive(Clone, Copy, Debug)]
enum Save {
    /// Write a temporary file and rename it over (vim, most editors).
    Rename,
    /// Truncate and write in place.
    Truncate,
    /// Delete, then create anew.
    Recreate,
}

fn save(path: &Path, text: &str, how: Save) {
    match how {
        Save::Rename => {
            let temporary = path.with_extension("swp");
            std::fs::write(&temporary, text).unwrap();
            std::fs::rename(&temporary, path).unwrap();
        }
        Save::Truncate => {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(path)
                .unwrap();
            file.write_all(text.as_bytes()).unwrap();
        }
        Save::Recreate => {
            std::fs::remove_file(path).unwrap();
            std::thread::sleep(Duration::from_millis(50));
            std::fs::write(path, text).unwrap();
        }
    }
}

/// A Kubernetes ConfigMap volume: `name` → `..data/name`, `..data` → a timestamped dir.
fn configmap_write(dir: &Path, name: &str, text: &str, generation: u32) -> PathBuf {
    let version = dir.join(format!("..2026_11_22_{generation}"));
    std::fs::create_dir_all(&version).unwrap();
    std::fs::write(version.join(name), text).unwrap();
    let staging = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&staging);
    std::os::unix::fs::symlink(version.file_name().unwrap(), &staging).unwrap();
    std::fs::rename(&staging, dir.join("..data")).unwrap();
    let link = dir.join(name);
    if std::fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink(Path::new("..data").join(name), &link).unwrap();
    }
    link
}

async fn exports_peer(sidecar: &Sidecar, peer: &str) -> bool {
    sample(
        &sidecar.metrics().await,
        "peerscope_peer_polls_total",
        &[("peer", peer)],
    )
    .is_some_and(|polls| polls >= 1.0)
}

async fn wait_for_peers(sidecar: &Sidecar, present: &str, absent: &str, how: &str) {
    until(
        10,
        &format!("{present} polled and {absent} gone after {how}"),
        || async {
            let text = sidecar.metrics().await;
            sample(&text, "peerscope_peer_polls_total", &[("peer", present)])
                .is_some_and(|p| p >= 1.0)
                && series_of_peer(&text, absent).is_empty()
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_changes_are_applied_however_the_file_is_saved() {
    let local = node("nova-local", "r").await;
    let (a, b) = (node("nova-a", "r").await, node("nova-b", "r").await);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("peerscope.toml");
    std::fs::write(&path, config_text(&local, &[("a", &a)], "")).unwrap();
    let sidecar = Sidecar::start(&args(&["--config", path.to_str().unwrap()])).await;
    until(10, "a polled", || exports_peer(&sidecar, "a")).await;

    // Alternate between {b} and {a}: each save must swap the peer that is polled.
    let mut current = ("a", &a);
    for (round, how) in [Save::Rename, Save::Truncate, Save::Recreate]
        .into_iter()
        .enumerate()
    {
        let next = if current.0 == "a" {
            ("b", &b)
        } else {
            ("a", &a)
        };
        save(&path, &config_text(&local, &[next], ""), how);
        wait_for_peers(&sidecar, next.0, current.0, &format!("{how:?}")).await;
        let reloads = sample(
            &sidecar.metrics().await,
            "peerscope_config_reloads_total",
            &[],
        )
        .unwrap();
        assert!(reloads >= (round + 1) as f64, "{how:?}: {reloads} reloads");
        current = next;
    }

    // A bad config is refused; the old peers keep being polled.
    save(&path, "node = \"not a url\"\n", Save::Rename);
    until(10, "the refusal to be counted", || async {
        sample(
            &sidecar.metrics().await,
            "peerscope_config_last_reload_successful",
            &[],
        ) == Some(0.0)
    })
    .await;
    let text = sidecar.metrics().await;
    assert_eq!(
        sample(&text, "peerscope_config_reload_failures_total", &[]),
        Some(1.0)
    );
    let before = sample(&text, "peerscope_peer_polls_total", &[("peer", current.0)]).unwrap();
    sidecar.wait_more_cycles(3).await;
    let after = sample(
        &sidecar.metrics().await,
        "peerscope_peer_polls_total",
        &[("peer", current.0)],
    )
    .unwrap();
    assert!(after > before, "the old peer stopped being polled");
    let status = sidecar.status().await;
    assert!(
        status["config"]["last_error"]
            .as_str()
            .unwrap()
            .contains("node"),
        "{}",
        status["config"]
    );
    assert!(sidecar.log().contains("configuration refused"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_symlink_swap_is_applied() {
    let local = node("nova-local", "r").await;
    let (a, b) = (node("nova-a", "r").await, node("nova-b", "r").await);
    let dir = tempfile::tempdir().unwrap();
    let link = configmap_write(
        dir.path(),
        "peerscope.toml",
        &config_text(&local, &[("a", &a)], ""),
        1,
    );
    let sidecar = Sidecar::start(&args(&["--config", link.to_str().unwrap()])).await;
    until(10, "a polled", || exports_peer(&sidecar, "a")).await;
    configmap_write(
        dir.path(),
        "peerscope.toml",
        &config_text(&local, &[("b", &b)], ""),
        2,
    );
    wait_for_peers(&sidecar, "b", "a", "a ..data swap").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_file_changes_are_applied_and_peers_that_stay_keep_their_windows() {
    let local = node("nova-local", "r").await;
    let (a, b, c) = (
        node("nova-a", "r").await,
        node("nova-b", "r").await,
        node("nova-c", "r").await,
    );
    let dir = tempfile::tempdir().unwrap();
    let peers = dir.path().join("peers.json");
    std::fs::write(&peers, peers_file_text(&[("a", &a), ("b", &b)])).unwrap();
    let config = dir.path().join("peerscope.toml");
    std::fs::write(
        &config,
        config_text(
            &local,
            &[],
            &format!("peers_file = \"{}\"", peers.display()),
        ),
    )
    .unwrap();
    let sidecar = Sidecar::start(&args(&["--config", config.to_str().unwrap()])).await;
    until(10, "a polled five times", || async {
        sample(
            &sidecar.metrics().await,
            "peerscope_peer_polls_total",
            &[("peer", "a")],
        )
        .is_some_and(|p| p >= 5.0)
    })
    .await;

    for (how, keep, gone, new) in [
        (Save::Rename, "a", "b", "c"),
        (Save::Truncate, "a", "c", "b"),
        (Save::Recreate, "a", "b", "c"),
    ] {
        let node_of = |name: &str| match name {
            "a" => &a,
            "b" => &b,
            _ => &c,
        };
        let before = sample(
            &sidecar.metrics().await,
            "peerscope_peer_polls_total",
            &[("peer", keep)],
        )
        .unwrap();
        save(
            &peers,
            &peers_file_text(&[(keep, node_of(keep)), (new, node_of(new))]),
            how,
        );
        wait_for_peers(&sidecar, new, gone, &format!("peers file {how:?}")).await;
        let after = sample(
            &sidecar.metrics().await,
            "peerscope_peer_polls_total",
            &[("peer", keep)],
        )
        .unwrap();
        assert!(
            after >= before,
            "{keep} lost its counters across {how:?}: {before} → {after}"
        );
    }
}

/// The watch follows the configuration in force: after a reload names a peers file in
/// another directory, an edit of that file is applied at once (before, only the
/// directories of the configuration at start were watched, and the edit waited for the
/// minutely re-check).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_follows_a_peers_file_moved_to_another_directory() {
    let local = node("nova-local", "r").await;
    let (a, b) = (node("nova-a", "r").await, node("nova-b", "r").await);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("peerscope.toml");
    std::fs::write(&config, config_text(&local, &[("a", &a)], "")).unwrap();
    let sidecar = Sidecar::start(&args(&["--config", config.to_str().unwrap()])).await;
    until(10, "a polled", || exports_peer(&sidecar, "a")).await;

    // The configuration now names a peers file in a directory of its own.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let peers = elsewhere.join("peers.json");
    std::fs::write(&peers, peers_file_text(&[("a", &a)])).unwrap();
    let extra = format!("peers_file = \"{}\"", peers.display());
    save(&config, &config_text(&local, &[], &extra), Save::Rename);
    until(10, "the reload with the peers file", || async {
        sample(
            &sidecar.metrics().await,
            "peerscope_config_reloads_total",
            &[],
        )
        .is_some_and(|n| n >= 1.0)
    })
    .await;

    // An edit there is seen by the watch, well before the 60 s re-check.
    save(&peers, &peers_file_text(&[("b", &b)]), Save::Rename);
    wait_for_peers(&sidecar, "b", "a", "an edit of the moved peers file").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_and_post_reload_apply_a_changed_config() {
    let local = node("nova-local", "r").await;
    let (a, b) = (node("nova-a", "r").await, node("nova-b", "r").await);
    let dir = tempfile::tempdir().unwrap();
    // An unchanged file is not re-applied when a watch event fires, so the reload count
    // moves only for the explicit triggers below.
    let path = dir.path().join("peerscope.toml");
    std::fs::write(&path, config_text(&local, &[("a", &a)], "")).unwrap();
    let mut sidecar = Sidecar::start(&args(&["--config", path.to_str().unwrap()])).await;
    let reloads = || async {
        sample(
            &sidecar.metrics().await,
            "peerscope_config_reloads_total",
            &[],
        )
        .unwrap()
    };

    signal(sidecar.child.id(), "HUP");
    until(10, "SIGHUP to reload", || async { reloads().await >= 1.0 }).await;

    let response = reqwest::Client::new()
        .post(format!("{}/-/reload", sidecar.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let count = reloads().await;
    assert!(count >= 2.0, "{count}");

    std::fs::write(&path, "interval = \"soon\"\n").unwrap();
    let response = reqwest::Client::new()
        .post(format!("{}/-/reload", sidecar.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("invalid duration \"soon\""));

    std::fs::write(&path, config_text(&local, &[("b", &b)], "")).unwrap();
    let response = reqwest::Client::new()
        .post(format!("{}/-/reload", sidecar.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    wait_for_peers(&sidecar, "b", "a", "POST /-/reload").await;
    assert_eq!(sidecar.terminate().code(), Some(0));
}

fn checkpoint_config(
    local: &SimNode,
    peers: &[(&str, &SimNode)],
    state: &Path,
    extra: &str,
) -> String {
    config_text(
        local,
        peers,
        &format!(
            "{extra}\n[checkpoint]\npath = \"{}\"\ninterval = \"100ms\"",
            state.display()
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_streaks_and_reconciliation_state_survive_a_restart() {
    let local = SimNode::start(
        "127.0.0.1:0".parse().unwrap(),
        NodeSpec {
            reconcile: ReconcileBehavior::AcceptWithoutEffect,
            ..NodeSpec::healthy("nova-local", "old", 0.5)
        },
    )
    .await
    .unwrap();
    let (a, b) = (node("nova-a", "new").await, node("nova-b", "new").await);
    let flaky = node("nova-f", "old").await;
    flaky.set_behavior(Behavior::Status(500));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let path = dir.path().join("peerscope.toml");
    let reconcile = "[reconcile]\nmode = \"on\"\nthreshold = 2\ncooldown = \"1h\"";
    std::fs::write(
        &path,
        checkpoint_config(
            &local,
            &[("a", &a), ("b", &b), ("f", &flaky)],
            &state,
            reconcile,
        ),
    )
    .unwrap();
    let arguments = args(&["--config", path.to_str().unwrap()]);

    let mut sidecar = Sidecar::start(&arguments).await;
    until(10, "the request", || async {
        local.reconcile_requests().len() == 1
    })
    .await;
    until(10, "f failing five times", || async {
        sample(
            &sidecar.metrics().await,
            "peerscope_peer_poll_failures_total",
            &[("peer", "f"), ("reason", "http_status")],
        )
        .is_some_and(|n| n >= 5.0)
    })
    .await;
    let streak_before = sidecar.status().await["peers"][0]["streak"]
        .as_u64()
        .unwrap();
    assert_eq!(sidecar.terminate().code(), Some(0), "{}", sidecar.log());
    assert!(state.exists());

    flaky.set_behavior(Behavior::Healthy);
    let sidecar = Sidecar::start(&arguments).await;
    let status = sidecar.status().await;
    assert!(
        status["checkpoint"]["restore"]
            .as_str()
            .unwrap()
            .starts_with("restored 3 peers"),
        "{}",
        status["checkpoint"]
    );
    // f failed ≥ 5 times before the restart and succeeds now: its restored window says so.
    let ratio = status["peers"][2]["quality"]["success_ratio"]
        .as_f64()
        .unwrap();
    assert!(
        ratio < 0.5,
        "the window was not restored: success ratio {ratio}"
    );
    let streak_after = status["peers"][0]["streak"].as_u64().unwrap();
    assert!(
        streak_after >= streak_before,
        "streak went from {streak_before} to {streak_after}"
    );
    // The cooldown of the accepted request survived: no second request for this episode.
    sidecar.wait_more_cycles(10).await;
    assert_eq!(
        local.reconcile_requests().len(),
        1,
        "a reconciliation fired twice for one episode"
    );
    let remaining = sidecar.status().await["reconciliation"]["cooldown_remaining_seconds"]
        .as_f64()
        .unwrap();
    assert!(remaining > 3500.0, "cooldown not restored: {remaining}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_never_corrupts_the_checkpoint() {
    let local = node("nova-local", "r").await;
    let (a, b) = (node("nova-a", "r").await, node("nova-b", "x").await);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let path = dir.path().join("peerscope.toml");
    let text = config_text(
        &local,
        &[("a", &a), ("b", &b)],
        &format!(
            "[checkpoint]\npath = \"{}\"\ninterval = \"10ms\"",
            state.display()
        ),
    );
    std::fs::write(&path, text).unwrap();
    let arguments = args(&["--config", path.to_str().unwrap()]);
    let iterations = 200;
    let mut killed_running = 0;
    for _ in 0..iterations {
        let mut sidecar = Sidecar::spawn(&arguments);
        std::thread::sleep(Duration::from_millis(fastrand::u64(10..120)));
        if sidecar.child.try_wait().unwrap().is_none() {
            killed_running += 1;
        } else {
            panic!("the sidecar exited by itself:\n{}", sidecar.log());
        }
        signal(sidecar.child.id(), "KILL");
        sidecar.child.wait().unwrap();
    }
    assert_eq!(killed_running, iterations);
    let corrupt: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("corrupt"))
        .collect();
    assert!(
        corrupt.is_empty(),
        "a kill left a corrupt checkpoint: {corrupt:?}"
    );
    let sidecar = Sidecar::start(&arguments).await;
    let status = sidecar.status().await;
    assert!(
        status["checkpoint"]["restore"]
            .as_str()
            .unwrap()
            .starts_with("restored 2 peers"),
        "{}",
        status["checkpoint"]
    );
    assert!(
        sample(
            &sidecar.metrics().await,
            "peerscope_checkpoint_restore_failures_total",
            &[]
        ) == Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_checkpoints_are_moved_aside_and_the_sidecar_starts_fresh() {
    let local = node("nova-local", "r").await;
    let a = node("nova-a", "r").await;
    let valid = {
        let payload = peerscope::ops::checkpoint::Payload {
            written_at: 1.0,
            store: Default::default(),
            reconcile: Default::default(),
        };
        peerscope::ops::checkpoint::encode(&payload)
    };
    type Damage<'a> = Box<dyn Fn(&Path) + 'a>;
    let cases: Vec<(&str, Damage<'_>)> = vec![
        (
            "corrupt",
            Box::new(|p: &Path| {
                std::fs::write(
                    p,
                    "{\"format\": \"peerscope-checkpoint\", \"version\": 1, garbage",
                )
                .unwrap()
            }),
        ),
        (
            "truncated",
            Box::new(|p: &Path| std::fs::write(p, &valid[..valid.len() / 2]).unwrap()),
        ),
        ("empty", Box::new(|p: &Path| std::fs::write(p, "").unwrap())),
        (
            "wrong version",
            Box::new(|p: &Path| {
                std::fs::write(p, valid.replace("\"version\":1", "\"version\":9")).unwrap()
            }),
        ),
        (
            "bad checksum",
            Box::new(|p: &Path| {
                std::fs::write(p, valid.replace("\"written_at\":1.0", "\"written_at\":2.0"))
                    .unwrap()
            }),
        ),
        (
            "unreadable",
            Box::new(|p: &Path| std::fs::create_dir(p).unwrap()),
        ),
    ];
    for (what, damage) in cases {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        damage(&state);
        let path = dir.path().join("peerscope.toml");
        std::fs::write(&path, checkpoint_config(&local, &[("a", &a)], &state, "")).unwrap();
        let sidecar = Sidecar::start(&args(&["--config", path.to_str().unwrap()])).await;
        let text = sidecar.metrics().await;
        assert_eq!(
            sample(&text, "peerscope_checkpoint_restore_failures_total", &[]),
            Some(1.0),
            "{what}"
        );
        let restore = sidecar.status().await["checkpoint"]["restore"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(restore.contains("moved aside to"), "{what}: {restore}");
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("state.json.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "{what}: {aside:?}");
        assert!(sidecar.log().contains("checkpoint unusable"), "{what}");
        until(10, "a fresh checkpoint", || async {
            std::fs::metadata(&state).is_ok_and(|m| m.is_file())
        })
        .await;
    }
}

/// The exit status of a sidecar expected to stop by itself within 10 s.
async fn exit_within(sidecar: &mut Sidecar, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = sidecar.child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "{what} kept running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sidecar_on_the_same_checkpoint_is_refused() {
    let local = node("nova-local", "r").await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let path = dir.path().join("peerscope.toml");
    std::fs::write(&path, checkpoint_config(&local, &[], &state, "")).unwrap();
    let arguments = args(&["--config", path.to_str().unwrap()]);
    let _first = Sidecar::start(&arguments).await;
    let mut second = Sidecar::spawn(&arguments);
    let status = exit_within(&mut second, "the second sidecar").await;
    assert!(!status.success());
    let log = second.log();
    assert!(
        log.contains("another peerscope holds this checkpoint's lock"),
        "{log}"
    );
}

/// Issue 19, item 3: a symlink planted in the state directory is never written through.
/// The temporary file had the predictable name `.NAME.tmp-PID` and was created with
/// create-and-truncate: a link planted there made every checkpoint overwrite its target
/// (and then the checkpoint path itself became that link). And the lock file followed a
/// link at its path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_planted_in_the_state_directory_are_never_written_through() {
    let local = node("nova-local", "r").await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    let path = dir.path().join("peerscope.toml");
    std::fs::write(&path, checkpoint_config(&local, &[], &state, "")).unwrap();
    let sidecar = Sidecar::start(&args(&["--config", path.to_str().unwrap()])).await;
    // The name the temporary file had, planted once the process id is known.
    let planted = dir
        .path()
        .join(format!(".state.json.tmp-{}", sidecar.child.id()));
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    let writes = || async {
        sample(
            &sidecar.metrics().await,
            "peerscope_checkpoint_writes_total",
            &[],
        )
        .unwrap_or(0.0)
    };
    let before = writes().await;
    until(10, "three more checkpoints", || async {
        writes().await >= before + 3.0
    })
    .await;
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(std::fs::symlink_metadata(&state).unwrap().is_file());
    drop(sidecar);

    // A link at the lock path: refused at start, naming it.
    let locked_state = dir.path().join("other.json");
    std::os::unix::fs::symlink(&victim, dir.path().join("other.json.lock")).unwrap();
    std::fs::write(&path, checkpoint_config(&local, &[], &locked_state, "")).unwrap();
    let mut refused = Sidecar::spawn(&args(&["--config", path.to_str().unwrap()]));
    let status = exit_within(&mut refused, "a sidecar with a linked lock file").await;
    assert!(!status.success());
    let log = refused.log();
    assert!(log.contains("a symbolic link there is refused"), "{log}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_scrape_finishes_it_writes_the_checkpoint_and_exits_0() {
    let local = node("nova-local", "r").await;
    let peers: Vec<SimNode> = futures_join(50).await;
    let named: Vec<(String, &SimNode)> = peers
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("p{i}"), p))
        .collect();
    let refs: Vec<(&str, &SimNode)> = named.iter().map(|(n, p)| (n.as_str(), *p)).collect();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let logs = dir.path().join("logs");
    let path = dir.path().join("peerscope.toml");
    // Checkpoints every hour: the file can only come from the final one, at shutdown.
    let checkpoint = format!(
        "[checkpoint]\npath = \"{}\"\ninterval = \"1h\"",
        state.display()
    );
    std::fs::write(&path, config_text(&local, &refs, &checkpoint)).unwrap();
    let mut sidecar = Sidecar::start(&args(&[
        "--config",
        path.to_str().unwrap(),
        "--log-file",
        logs.to_str().unwrap(),
    ]))
    .await;
    sidecar.wait_cycles(2).await;
    assert!(!state.exists());

    let address = sidecar.base.trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    // The request's head is sent whole but for its last line break, and the signal only
    // once the server has had time to accept the connection and start reading it: a
    // connection still in the listen backlog when the listener closes is reset, which
    // is not what this test is about.
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: peerscope\r\nConnection: close\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    signal(sidecar.child.id(), "TERM");
    stream.write_all(b"\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "{}",
        &response[..response.len().min(200)]
    );
    assert!(
        response.contains("peerscope_build_info"),
        "the scrape was cut short"
    );

    let exit = sidecar.child.wait().unwrap();
    assert_eq!(exit.code(), Some(0), "{}", sidecar.log());
    let payload =
        peerscope::ops::checkpoint::decode(&std::fs::read(&state).unwrap(), "state.json").unwrap();
    // Every peer this sidecar pulled is kept (the members others observe have nothing to
    // keep and no entry); the scrape answered during the shutdown says how many.
    let observed: usize = response
        .lines()
        .find_map(|l| l.strip_prefix("peerscope_peers_observed "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .expect("peerscope_peers_observed in the scrape") as usize;
    assert!(observed > 0);
    assert_eq!(payload.store.peers.len(), observed);
    let files: Vec<_> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let written = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        written.contains("final checkpoint written"),
        "the log file was not flushed at shutdown:\n{written}"
    );
}

async fn futures_join(count: usize) -> Vec<SimNode> {
    let mut nodes = Vec::new();
    for i in 0..count {
        nodes.push(node(&format!("nova-{i}"), "r").await);
    }
    nodes
}

/// The debug line of a change-triggered reload that found the configuration unchanged.
const UNCHANGED: &str = "configuration re-read; unchanged";

/// Regression: reading the watched files made inotify access events, which triggered
/// another read — a reload loop that cost ~30 µs of CPU per pull at 1,000 peers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_the_configuration_does_not_trigger_another_read() {
    let local = node("nova-local", "r").await;
    let a = node("nova-a", "r").await;
    let dir = tempfile::tempdir().unwrap();
    let peers = dir.path().join("peers.json");
    std::fs::write(&peers, peers_file_text(&[("a", &a)])).unwrap();
    let path = dir.path().join("peerscope.toml");
    std::fs::write(
        &path,
        config_text(
            &local,
            &[],
            &format!("peers_file = \"{}\"", peers.display()),
        ),
    )
    .unwrap();
    let sidecar = Sidecar::start(&args(&[
        "--config",
        path.to_str().unwrap(),
        "--log.filter",
        "peerscope=debug",
    ]))
    .await;
    // One change, then quiet: the change is read, and then never again.
    save(
        &path,
        &config_text(
            &local,
            &[],
            &format!("peers_file = \"{}\"\n# touched", peers.display()),
        ),
        Save::Rename,
    );
    let reads = || sidecar.log().matches(UNCHANGED).count();
    until(10, "the change to be read", || async { reads() >= 1 }).await;
    sidecar.wait_more_cycles(3).await; // events of the same save, debounced
    let settled = reads();
    sidecar.wait_more_cycles(10).await;
    assert_eq!(
        reads(),
        settled,
        "the configuration kept being re-read after one change"
    );
}
