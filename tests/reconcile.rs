//! Reconciliation end to end: the real binary beside simulated nodes over loopback, each
//! guard of SPEC §6 observed from the node's side (what it received, and when) and from
//! the sidecar's `/metrics` and `/status`.

mod common;

use common::{args, reconcile_request_schema, sample, until, Sidecar};
use peerscope_lab::node::{Behavior, NodeSpec, ReconcileBehavior, SimNode};
use serde_json::Value;

const INTERVAL: &str = "200ms";
/// Written to `{dir}/token` in every federation; used where `token_file` is configured.
const TOKEN: &str = "s3cr3t-token-7f1c";

struct Federation {
    local: SimNode,
    peers: Vec<SimNode>,
    sidecar: Sidecar,
    _dir: tempfile::TempDir,
}

/// The local node on `local_root`, one peer per entry of `peer_roots`, and a sidecar whose
/// `[reconcile]` section is `reconcile`.
async fn federation(
    local_root: &str,
    peer_roots: &[&str],
    behavior: ReconcileBehavior,
    reconcile: &str,
) -> Federation {
    let ids: Vec<String> = (0..peer_roots.len()).map(|i| format!("nova-{i}")).collect();
    let peers: Vec<(&str, &str)> = ids
        .iter()
        .map(String::as_str)
        .zip(peer_roots.iter().copied())
        .collect();
    federation_of(local_root, &peers, behavior, reconcile).await
}

/// As [`federation`], with each peer's `(node_id, root)` given.
async fn federation_of(
    local_root: &str,
    peer_nodes: &[(&str, &str)],
    behavior: ReconcileBehavior,
    reconcile: &str,
) -> Federation {
    let loopback = "127.0.0.1:0".parse().unwrap();
    let spec = NodeSpec {
        reconcile: behavior,
        ..NodeSpec::healthy("nova-local", local_root, 0.5)
    };
    let local = SimNode::start(loopback, spec).await.unwrap();
    let mut peers = Vec::new();
    for (node_id, root) in peer_nodes {
        peers.push(
            SimNode::start(loopback, NodeSpec::healthy(node_id, root, 0.5))
                .await
                .unwrap(),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
    let mut toml = format!(
        "node = \"{}\"\ninterval = \"{INTERVAL}\"\ntimeout = \"100ms\"\nlive_max_age = \"2s\"\n",
        local.url()
    );
    for (i, peer) in peers.iter().enumerate() {
        toml += &format!("[[peers]]\nname = \"p{i}\"\nurl = \"{}\"\n", peer.url());
    }
    // `{dir}` in the section stands for this federation's temporary directory.
    toml += &format!(
        "[reconcile]\n{}\n",
        reconcile.replace("{dir}", dir.path().to_str().unwrap())
    );
    let path = dir.path().join("peerscope.toml");
    std::fs::write(&path, toml).unwrap();
    let sidecar = Sidecar::start(&args(&[
        "--config",
        path.to_str().unwrap(),
        "--log-level",
        "debug",
    ]))
    .await;
    Federation {
        local,
        peers,
        sidecar,
        _dir: dir,
    }
}

async fn suppressed(fed: &Federation, reason: &str) -> f64 {
    metric(
        &fed.sidecar,
        "peerscope_reconcile_suppressed_total",
        &[("reason", reason)],
    )
    .await
}

async fn failures(fed: &Federation, reason: &str) -> f64 {
    metric(
        &fed.sidecar,
        "peerscope_reconcile_failures_total",
        &[("reason", reason)],
    )
    .await
}

async fn wait_suppressed(fed: &Federation, reason: &str, at_least: f64) {
    let what = format!("{at_least} {reason} suppressions");
    until(20, &what, || async {
        suppressed(fed, reason).await >= at_least
    })
    .await;
}

fn body(request: &peerscope_lab::node::ReceivedRequest) -> Value {
    serde_json::from_str(&request.body).unwrap()
}

async fn metric(sidecar: &Sidecar, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(&sidecar.metrics().await, name, labels).unwrap_or_else(|| panic!("no {name}{labels:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_in_the_minority_asks_once_heals_and_the_token_stays_secret() {
    let settings = "mode = \"on\"\nthreshold = 3\ntoken_file = \"{dir}/token\"\n";
    let fed = federation("old", &["new", "new"], ReconcileBehavior::Heal, settings).await;
    let sidecar = &fed.sidecar;

    until(20, "the node to heal", || async {
        fed.local.state_root() == "new"
    })
    .await;
    until(10, "divergence to clear", || async {
        metric(sidecar, "peerscope_divergence_ratio", &[]).await == 0.0
            && metric(sidecar, "peerscope_state_peers", &[("relation", "agree")]).await == 2.0
    })
    .await;
    sidecar.wait_more_cycles(10).await;
    let requests = fed.local.reconcile_requests();
    assert_eq!(requests.len(), 1, "exactly one request");
    let request = &requests[0];
    let body = body(request);
    assert!(reconcile_request_schema().is_valid(&body), "{body}");
    assert_eq!(body["target_root"], "new");
    assert_eq!(body["local_root"], "old");
    assert_eq!(body["dry_run"], false);
    assert!(
        body["observed"]["min_streak"].as_u64().unwrap() >= 3,
        "asked before the threshold: {body}"
    );
    assert_eq!(body["sources"].as_array().unwrap().len(), 2);
    assert_eq!(
        request.header("idempotency-key"),
        body["request_id"].as_str()
    );
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );

    let text = sidecar.metrics().await;
    assert_eq!(
        sample(&text, "peerscope_reconcile_requests_total", &[]),
        Some(1.0)
    );
    assert!(sample(
        &text,
        "peerscope_reconcile_last_success_timestamp_seconds",
        &[]
    )
    .is_some());
    let status = sidecar.get("/status").await.text().await.unwrap();
    let history: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(
        history["reconciliation"]["history"][0]["outcome"],
        "success"
    );
    for (place, content) in [
        ("log", sidecar.log()),
        ("/status", status),
        ("/metrics", text),
    ] {
        assert!(!content.contains(TOKEN), "the token appears in {place}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_in_the_majority_never_asks() {
    let fed = federation(
        "root",
        &["root", "other"],
        ReconcileBehavior::Heal,
        "mode = \"on\"\nthreshold = 2\n",
    )
    .await;
    wait_suppressed(&fed, "no_quorum", 5.0).await;
    assert!(fed.local.reconcile_requests().is_empty());
    assert_eq!(fed.local.state_root(), "root");
    assert_eq!(
        metric(
            &fed.sidecar,
            "peerscope_peer_state_divergent",
            &[("peer", "p1")]
        )
        .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_one_vote_and_the_local_node_never_votes() {
    // Counted by URL, "other" would hold 5 of 8 votes: three URLs of nova-b, nova-c, and a
    // URL that is the local node itself. Counted by node, it holds 2 of 5 (local, nova-b,
    // nova-c, nova-d, nova-e): no quorum.
    let fed = federation_of(
        "root",
        &[
            ("nova-b", "other"),
            ("nova-b", "other"),
            ("nova-b", "other"),
            ("nova-c", "other"),
            ("nova-local", "other"),
            ("nova-d", "root"),
            ("nova-e", "root"),
        ],
        ReconcileBehavior::Heal,
        "mode = \"on\"\nthreshold = 2\n",
    )
    .await;
    wait_suppressed(&fed, "no_quorum", 5.0).await;
    assert!(fed.local.reconcile_requests().is_empty());
    let status = fed.sidecar.status().await;
    let flagged = status["peers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !p["identity_problem"].is_null())
        .count();
    assert_eq!(
        flagged, 4,
        "the three URLs reporting nova-b (contested) and the local node: {status}"
    );
}

/// Regression (issue 19, item 4): whoever reported a node_id first owned it. Impostors
/// listed before the honest peers took their identities, the honest peers were marked
/// down, and the impostors' root won the quorum: the local node was asked to reconcile
/// towards it. Now each stolen node_id is contested: neither side votes, the honest peers
/// stay up, and the impostors never move the quorum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impostors_listed_first_never_move_the_quorum() {
    let fed = federation_of(
        "root",
        &[
            ("nova-b", "forged"),
            ("nova-c", "forged"),
            ("nova-d", "forged"),
            ("nova-b", "root"),
            ("nova-c", "root"),
            ("nova-d", "root"),
        ],
        ReconcileBehavior::Heal,
        "mode = \"on\"\nthreshold = 2\n",
    )
    .await;
    // First-come ownership gave the three impostors every vote: 3 of 4 nodes on
    // "forged", a quorum, and a request within a few cycles.
    fed.sidecar.wait_cycles(15).await;
    assert!(
        fed.local.reconcile_requests().is_empty(),
        "the impostors moved the quorum"
    );
    assert_eq!(fed.local.state_root(), "root");
    for peer in ["p0", "p1", "p2", "p3", "p4", "p5"] {
        let labels = [("peer", peer)];
        assert_eq!(
            metric(&fed.sidecar, "peerscope_peer_up", &labels).await,
            1.0,
            "{peer}"
        );
        assert_eq!(
            metric(&fed.sidecar, "peerscope_peer_identity_contested", &labels).await,
            1.0,
            "{peer}"
        );
    }
    let status = fed.sidecar.status().await;
    let honest = status["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["label"] == "p3")
        .unwrap();
    assert!(
        honest["identity_problem"]
            .as_str()
            .unwrap()
            .contains("contested"),
        "{honest}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_never_ask_under_majority_and_are_bounded_under_any() {
    let fed = federation(
        "a",
        &["b"],
        ReconcileBehavior::Heal,
        "mode = \"on\"\nthreshold = 2\n",
    )
    .await;
    wait_suppressed(&fed, "no_quorum", 5.0).await;
    assert!(fed.local.reconcile_requests().is_empty());

    // The seed's policy acts on one peer; a node that accepts without effect is asked again
    // only after the cooldown and a backoff, and never more than max_per_hour times.
    let any = "mode = \"on\"\npolicy = \"any\"\nthreshold = 2\ncooldown = \"1s\"\nbackoff_base = \"100ms\"\nmax_per_hour = 3\n";
    let fed = federation("a", &["b"], ReconcileBehavior::AcceptWithoutEffect, any).await;
    wait_suppressed(&fed, "rate_limit", 3.0).await;
    let requests = fed.local.reconcile_requests();
    assert_eq!(requests.len(), 3);
    for pair in requests.windows(2) {
        assert_ne!(
            body(&pair[0])["request_id"],
            body(&pair[1])["request_id"],
            "a retry after no effect is a new episode"
        );
    }
    assert!(failures(&fed, "no_effect").await >= 2.0);
    assert!(suppressed(&fed, "cooldown").await >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_back_off_with_growing_delays_up_to_the_cap_one_at_a_time() {
    let settings = "mode = \"on\"\nthreshold = 1\nbackoff_base = \"200ms\"\nbackoff_factor = 2\nbackoff_cap = \"800ms\"\nmax_per_hour = 100\n";
    let fed = federation(
        "old",
        &["new", "new"],
        ReconcileBehavior::Status(503),
        settings,
    )
    .await;
    until(30, "seven attempts", || async {
        fed.local.reconcile_requests().len() >= 7
    })
    .await;
    // The delays themselves (growth, cap, jitter) are tested exactly in act::guards under a
    // paused clock; end to end: retries keep the episode's id, each failure is counted, and
    // cycles between attempts are held back by the backoff.
    let ids: Vec<Value> = fed
        .local
        .reconcile_requests()
        .iter()
        .map(|r| body(r)["request_id"].clone())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "retries of one episode keep their id: {ids:?}"
    );
    assert!(failures(&fed, "http_status").await >= 7.0);
    assert!(suppressed(&fed, "backoff").await >= 1.0);

    // A node that hangs: each request times out; while one waits, later cycles are held
    // back as in flight, and every request the node received was counted by the sidecar.
    let settings = "mode = \"on\"\nthreshold = 1\ntimeout = \"600ms\"\nbackoff_base = \"100ms\"\nbackoff_cap = \"100ms\"\nmax_per_hour = 100\n";
    let fed = federation("old", &["new", "new"], ReconcileBehavior::Hang, settings).await;
    until(20, "two timeouts", || async {
        failures(&fed, "timeout").await >= 2.0
    })
    .await;
    assert!(suppressed(&fed, "in_flight").await >= 1.0);
    let sent = metric(&fed.sidecar, "peerscope_reconcile_requests_total", &[]).await;
    let received = fed.local.reconcile_requests().len() as f64;
    assert!(
        received <= sent && sent >= 2.0,
        "the node received {received} requests, the sidecar sent {sent}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hourly_cap_suppresses_further_requests() {
    let settings = "mode = \"on\"\nthreshold = 1\nbackoff_base = \"50ms\"\nbackoff_cap = \"50ms\"\nmax_per_hour = 2\n";
    let fed = federation(
        "old",
        &["new", "new"],
        ReconcileBehavior::Status(500),
        settings,
    )
    .await;
    wait_suppressed(&fed, "rate_limit", 5.0).await;
    assert_eq!(fed.local.reconcile_requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_root_is_not_retried_but_a_new_root_starts_a_new_episode() {
    let fed = federation(
        "old",
        &["new", "new"],
        ReconcileBehavior::Status(422),
        "mode = \"on\"\nthreshold = 1\n",
    )
    .await;
    wait_suppressed(&fed, "rejected_target", 5.0).await;
    assert_eq!(fed.local.reconcile_requests().len(), 1);
    assert_eq!(failures(&fed, "rejected").await, 1.0);

    for peer in &fed.peers {
        peer.set_state_root("newer");
    }
    until(10, "a request towards the new root", || async {
        fed.local.reconcile_requests().len() == 2
    })
    .await;
    let requests = fed.local.reconcile_requests();
    assert_eq!(body(&requests[1])["target_root"], "newer");
    assert_ne!(
        body(&requests[0])["request_id"],
        body(&requests[1])["request_id"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn already_running_waits_without_counting_a_failure() {
    let settings = "mode = \"on\"\nthreshold = 1\nbackoff_base = \"500ms\"\n";
    let fed = federation(
        "old",
        &["new", "new"],
        ReconcileBehavior::Status(409),
        settings,
    )
    .await;
    until(10, "a second request", || async {
        fed.local.reconcile_requests().len() >= 2
    })
    .await;
    let requests = fed.local.reconcile_requests();
    // Cycles between the 409 and the retry were held back as in flight (the wait itself is
    // tested exactly in act::guards).
    assert!(
        suppressed(&fed, "in_flight").await >= 1.0,
        "did not wait after 409"
    );
    assert_eq!(
        body(&requests[0])["request_id"],
        body(&requests[1])["request_id"]
    );
    let text = fed.sidecar.metrics().await;
    for reason in ["timeout", "connect", "http_status", "rejected", "no_effect"] {
        assert_eq!(
            sample(
                &text,
                "peerscope_reconcile_failures_total",
                &[("reason", reason)]
            ),
            Some(0.0),
            "{reason}"
        );
    }
    let status = fed.sidecar.status().await;
    assert_eq!(
        status["reconciliation"]["history"][0]["outcome"],
        "in_progress"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_local_node_is_never_asked() {
    // The first request fails and starts a long backoff; meanwhile the node's summary
    // becomes unreachable. The streaks hold, but no request follows.
    let settings = "mode = \"on\"\nthreshold = 2\nbackoff_base = \"1s\"\nbackoff_cap = \"1s\"\nmax_per_hour = 100\n";
    let fed = federation(
        "old",
        &["new", "new"],
        ReconcileBehavior::Status(500),
        settings,
    )
    .await;
    until(10, "the first request", || async {
        fed.local.reconcile_requests().len() == 1
    })
    .await;
    fed.local.set_behavior(Behavior::Status(503));
    wait_suppressed(&fed, "node_down", 10.0).await;
    assert_eq!(fed.local.reconcile_requests().len(), 1);
    assert_eq!(metric(&fed.sidecar, "peerscope_node_up", &[]).await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_records_the_decision_and_sends_nothing() {
    let fed = federation(
        "old",
        &["new", "new"],
        ReconcileBehavior::Heal,
        "mode = \"dry-run\"\nthreshold = 2\n",
    )
    .await;
    wait_suppressed(&fed, "dry_run", 5.0).await;
    assert!(fed.local.reconcile_requests().is_empty());
    assert_eq!(
        metric(&fed.sidecar, "peerscope_reconcile_requests_total", &[]).await,
        0.0
    );
    let status = fed.sidecar.status().await;
    let would = &status["reconciliation"]["dry_run_request"];
    assert!(reconcile_request_schema().is_valid(would), "{would}");
    assert_eq!(would["dry_run"], true);
    assert_eq!(would["target_root"], "new");
    let history = status["reconciliation"]["history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "one entry per episode: {history:?}");
    assert_eq!(history[0]["outcome"], "dry_run");
}
