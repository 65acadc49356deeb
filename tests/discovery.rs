//! Peers found, not listed (SPEC §10), tried as a new user would: the real binary beside
//! simulated nodes, a real DNS server (Debian's dnsmasq) serving SRV and A records that
//! change and then go away, and an http_sd endpoint that changes, fails and hangs.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{args, free_address, sample, series_of_peer, until, Sidecar};
use peerscope_lab::node::{NodeSpec, SimNode};

/// A simulated node on an address of its own.
async fn node(id: &str, address: SocketAddr) -> SimNode {
    SimNode::start(address, NodeSpec::healthy(id, "root-1", 0.5))
        .await
        .unwrap()
}

/// dnsmasq on a loopback address, answering only from its command line: no upstream, no
/// /etc/hosts, TTL 0. Records change by starting it again on the same address.
struct Dns {
    address: SocketAddr,
    child: Option<Child>,
}

impl Dns {
    fn start(address: SocketAddr, records: &[String]) -> Dns {
        let mut dns = Dns {
            address,
            child: None,
        };
        dns.restart(records);
        dns
    }

    fn restart(&mut self, records: &[String]) {
        self.stop();
        let child = Command::new("dnsmasq")
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--local-ttl=0",
                "--log-facility=-",
            ])
            .arg(format!("--listen-address={}", self.address.ip()))
            .arg(format!("--port={}", self.address.port()))
            .arg(format!(
                "--pid-file={}",
                std::env::temp_dir()
                    .join(format!("peerscope-dnsmasq-{}.pid", self.address))
                    .display()
            ))
            .args(records)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq runs (Debian's dnsmasq-base; .ci/test installs it)");
        self.child = Some(child);
        // Until it answers on TCP (it listens on UDP and TCP at once).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(self.address).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "dnsmasq did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The SRV record of `name` pointing at `node` under the host name `host`, and that
/// host's A record.
fn srv(name: &str, host: &str, node: &SimNode) -> [String; 2] {
    let address = node.address();
    [
        format!("--srv-host={name},{host},{}", address.port()),
        format!("--host-record={host},{}", address.ip()),
    ]
}

/// The sidecar beside `local` with fast cycles and refreshes, and `flags` naming sources.
async fn discovering_sidecar(local: &SimNode, flags: &[&str]) -> Sidecar {
    let mut all = vec![
        "--node".to_owned(),
        local.url(),
        "--discovery-refresh".to_owned(),
        "300ms".to_owned(),
        "--interval".to_owned(),
        "200ms".to_owned(),
        "--timeout".to_owned(),
        "150ms".to_owned(),
    ];
    all.extend(args(flags));
    Sidecar::start(&all).await
}

fn refreshes(text: &str, source: &str, outcome: &str) -> f64 {
    sample(
        text,
        "peerscope_discovery_refreshes_total",
        &[("source", source), ("outcome", outcome)],
    )
    .unwrap_or(0.0)
}

fn polled_and_up(text: &str, peer: &str) -> bool {
    sample(text, "peerscope_peer_polls_total", &[("peer", peer)]).is_some_and(|n| n >= 1.0)
        && sample(text, "peerscope_peer_up", &[("peer", peer)]) == Some(1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs dnsmasq (Debian's dnsmasq-base); run by .ci/test"]
async fn srv_targets_become_peers_follow_changes_and_survive_a_dead_dns_server() {
    let addresses: Vec<SocketAddr> = (0..4).map(|_| free_address()).collect();
    let local = node("nova-a", addresses[0]).await;
    let b = node("nova-b", addresses[1]).await;
    let c = node("nova-c", addresses[2]).await;
    let d = node("nova-d", addresses[3]).await;
    let name = "_nova._tcp.peers.test";
    let host = |n: &str| format!("{n}.peers.test");
    let member = |n: &str, node: &SimNode| format!("{}:{}", host(n), node.address().port());
    let records = |nodes: &[(&str, &SimNode)]| -> Vec<String> {
        nodes
            .iter()
            .flat_map(|(n, node)| srv(name, &host(n), node))
            .collect()
    };
    let mut dns = Dns::start(
        free_address(),
        &records(&[("nova-a", &local), ("nova-b", &b), ("nova-c", &c)]),
    );
    let source = format!("dnssrv+{name}");
    let sidecar = discovering_sidecar(
        &local,
        &["--peer", &source, "--dns-server", &dns.address.to_string()],
    )
    .await;

    // The SRV targets are the peers, pulled at their names through the same DNS server;
    // the local node, listed too, is recognised by its node_id and skipped.
    until(
        15,
        "nova-b and nova-c pulled, the local node skipped",
        || async {
            let text = sidecar.metrics().await;
            polled_and_up(&text, &member("nova-b", &b))
                && polled_and_up(&text, &member("nova-c", &c))
                && sample(&text, "peerscope_peers_configured", &[]) == Some(2.0)
                && series_of_peer(&text, &member("nova-a", &local)).is_empty()
                && sample(&text, "peerscope_discovery_members", &[("source", &source)]) == Some(3.0)
        },
    )
    .await;

    // A changed record set (c gone, d new) is followed within two refreshes (0.6 s; the
    // wait allows for the restart of the DNS server and slow machines).
    dns.restart(&records(&[
        ("nova-a", &local),
        ("nova-b", &b),
        ("nova-d", &d),
    ]));
    until(10, "nova-d pulled and nova-c gone", || async {
        let text = sidecar.metrics().await;
        polled_and_up(&text, &member("nova-d", &d))
            && series_of_peer(&text, &member("nova-c", &c)).is_empty()
    })
    .await;

    // The DNS server stops: refreshes fail and are counted; the last good set stays,
    // pulled and up (names resolved before are not needed again: connections are kept,
    // and a failed lookup changes nothing).
    dns.stop();
    let text = sidecar.metrics().await;
    let ok_before = refreshes(&text, &source, "ok");
    until(15, "failed refreshes counted", || async {
        let text = sidecar.metrics().await;
        let failed: f64 = ["timeout", "unreachable", "refused", "servfail", "error"]
            .iter()
            .map(|outcome| refreshes(&text, &source, outcome))
            .sum();
        failed >= 3.0
    })
    .await;
    let text = sidecar.metrics().await;
    assert_eq!(refreshes(&text, &source, "ok"), ok_before, "{text}");
    assert_eq!(
        sample(&text, "peerscope_discovery_members", &[("source", &source)]),
        Some(3.0)
    );
    let polls_before = sample(
        &text,
        "peerscope_peer_polls_total",
        &[("peer", &member("nova-d", &d))],
    )
    .unwrap();
    until(10, "nova-b and nova-d still pulled and up", || async {
        let text = sidecar.metrics().await;
        polled_and_up(&text, &member("nova-b", &b))
            && sample(
                &text,
                "peerscope_peer_polls_total",
                &[("peer", &member("nova-d", &d))],
            )
            .is_some_and(|n| n >= polls_before + 3.0)
            && sample(
                &text,
                "peerscope_peer_up",
                &[("peer", &member("nova-d", &d))],
            ) == Some(1.0)
    })
    .await;
    let status = sidecar.status().await;
    let shown = &status["discovery"][0];
    assert_eq!(shown["source"], source.as_str());
    assert!(shown["last_error"].is_string(), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs dnsmasq (Debian's dnsmasq-base); run by .ci/test"]
async fn a_dns_name_gives_one_peer_per_address() {
    // Two nodes on the same port of two loopback addresses: one A record each.
    let first = free_address();
    let second = SocketAddr::new(free_address().ip(), first.port());
    let a = node("nova-a", first).await;
    let b = node("nova-b", second).await;
    let local = node("nova-local", free_address()).await;
    // peers.test is dnsmasq's own domain (unknown names there are NXDOMAIN); it has no
    // upstream, so a name elsewhere is REFUSED.
    let local_domain = "--local=/peers.test/".to_owned();
    let mut dns = Dns::start(
        free_address(),
        &[
            local_domain.clone(),
            format!("--host-record=peers.test,{}", first.ip()),
            format!("--host-record=peers.test,{}", second.ip()),
        ],
    );
    let source = format!("dns+peers.test:{}", first.port());
    let refused = "dnssrv+_nova._tcp.elsewhere.example";
    let sidecar = discovering_sidecar(
        &local,
        &[
            "--peer",
            &format!("{source},{refused}"),
            "--dns-server",
            &dns.address.to_string(),
        ],
    )
    .await;
    until(15, "one peer per A record, named ADDRESS:PORT", || async {
        let text = sidecar.metrics().await;
        polled_and_up(&text, &a.address().to_string())
            && polled_and_up(&text, &b.address().to_string())
            && sample(&text, "peerscope_peers_configured", &[]) == Some(2.0)
    })
    .await;
    until(
        10,
        "the source outside the server's domain counted as refused",
        || async { refreshes(&sidecar.metrics().await, refused, "refused") >= 2.0 },
    )
    .await;

    // The name is gone (NXDOMAIN): a valid answer, so the source has no members now.
    dns.restart(&[local_domain]);
    until(10, "both peers gone after NXDOMAIN", || async {
        let text = sidecar.metrics().await;
        sample(&text, "peerscope_discovery_members", &[("source", &source)]) == Some(0.0)
            && sample(&text, "peerscope_peers_configured", &[]) == Some(0.0)
            && series_of_peer(&text, &a.address().to_string()).is_empty()
    })
    .await;
}

/// What the fake http_sd endpoint does.
#[derive(Clone)]
enum Serve {
    List(String),
    Fail,
    Hang,
}

/// A minimal HTTP server answering every request as `mode` says.
async fn http_sd(mode: Arc<Mutex<Serve>>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind(free_address()).await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let mode = mode.lock().unwrap().clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let (status, body) = match mode {
                    Serve::List(body) => ("200 OK", body),
                    Serve::Fail => ("500 Internal Server Error", "oops".to_owned()),
                    Serve::Hang => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return;
                    }
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    address
}

fn list(nodes: &[(&str, &SimNode)]) -> String {
    let groups: Vec<serde_json::Value> = nodes
        .iter()
        .map(|(name, node)| serde_json::json!({"targets": [node.address().to_string()], "labels": {"name": name}}))
        .collect();
    serde_json::Value::Array(groups).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_sd_targets_are_followed_through_a_change_and_kept_through_failures() {
    let local = node("nova-local", free_address()).await;
    let a = node("nova-a", free_address()).await;
    let b = node("nova-b", free_address()).await;
    let c = node("nova-c", free_address()).await;
    let mode = Arc::new(Mutex::new(Serve::List(list(&[("a", &a), ("b", &b)]))));
    let endpoint = format!("http://{}/sd", http_sd(Arc::clone(&mode)).await);
    let sidecar = discovering_sidecar(&local, &["--peers-http-sd", &endpoint]).await;
    until(15, "a and b pulled", || async {
        let text = sidecar.metrics().await;
        polled_and_up(&text, "a") && polled_and_up(&text, "b")
    })
    .await;

    *mode.lock().unwrap() = Serve::List(list(&[("a", &a), ("c", &c)]));
    until(10, "c pulled and b gone", || async {
        let text = sidecar.metrics().await;
        polled_and_up(&text, "c") && series_of_peer(&text, "b").is_empty()
    })
    .await;

    for (failure, outcome) in [(Serve::Fail, "http_status"), (Serve::Hang, "timeout")] {
        *mode.lock().unwrap() = failure;
        until(10, &format!("{outcome} refreshes counted"), || async {
            refreshes(&sidecar.metrics().await, &endpoint, outcome) >= 2.0
        })
        .await;
        let text = sidecar.metrics().await;
        assert!(
            polled_and_up(&text, "a") && polled_and_up(&text, "c"),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                "peerscope_discovery_members",
                &[("source", &endpoint)]
            ),
            Some(2.0)
        );
    }
    let status = sidecar.status().await;
    assert_eq!(status["discovery"][0]["members"], 2);
    assert!(status["discovery"][0]["last_error"].is_string());
}
