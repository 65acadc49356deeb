//! Simulated nodes on loopback, for `peerscope demo`, `peerscope bench` and the tests.
//!
//! A [`SimNode`] serves `/federation/sync/summary` like a Nova node, with a `g_star` that
//! moves over time, and can be told to misbehave in each way SPEC §5 classifies: hang,
//! reset connections, answer 500 or a redirect, send a huge or dripping body, or any raw
//! body. Every request is counted, so a test can prove a node was never contacted.
//! It also serves the reconciliation API (`POST /federation/reconcile`), scriptable to
//! heal, reject, fail, hang or answer 409, and records every request with its headers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::stream;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONTENT_TYPE, LOCATION};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use peerscope::pull::contract::SUMMARY_PATH;

/// How a simulated node answers.
#[derive(Clone, Debug, PartialEq)]
pub enum Behavior {
    /// A valid summary, at once.
    Healthy,
    /// A valid summary after a delay.
    Slow(Duration),
    /// 503 with this probability, else a valid summary.
    Flaky(f64),
    /// Accepts the request and never answers.
    Hang,
    /// Closes every connection as soon as it is accepted, and drops the requests of
    /// connections opened before without an answer: a dead node.
    Reset,
    /// Answers with this status and no summary.
    Status(u16),
    /// Answers 302 to this URL.
    Redirect(String),
    /// 200 with a body of this many bytes, streamed without Content-Length.
    HugeBody(usize),
    /// A valid summary, one byte per this period.
    Drip(Duration),
    /// 200 with exactly this body.
    Raw(String),
}

/// How a simulated node answers `POST /federation/reconcile`.
#[derive(Clone, Debug, PartialEq)]
pub enum ReconcileBehavior {
    /// Adopt the request's `target_root` and answer 200.
    Heal,
    /// Answer 202 without changing anything.
    AcceptWithoutEffect,
    /// Answer this status (4xx: rejected, 409: already running, 5xx: failed).
    Status(u16),
    /// Never answer.
    Hang,
    /// Heal, but answer only after this long.
    SlowHeal(Duration),
}

/// A reconciliation request as the node received it.
#[derive(Clone, Debug)]
pub struct ReceivedRequest {
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub at: Instant,
}

impl ReceivedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Path of the simulated reconciliation API.
pub const RECONCILE_PATH: &str = "/federation/reconcile";

/// The identity and state a simulated node reports.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    pub node_id: String,
    pub state_root: String,
    /// Centre of the node's `g_star`, which swings ±0.15 around it.
    pub g_star_base: f64,
    pub behavior: Behavior,
    pub reconcile: ReconcileBehavior,
}

impl NodeSpec {
    pub fn healthy(node_id: &str, state_root: &str, g_star_base: f64) -> Self {
        NodeSpec {
            node_id: node_id.to_owned(),
            state_root: state_root.to_owned(),
            g_star_base,
            behavior: Behavior::Healthy,
            reconcile: ReconcileBehavior::Heal,
        }
    }
}

struct Shared {
    spec: Mutex<NodeSpec>,
    /// The `Authorization` a summary request must carry (else 401), if any.
    required_authorization: Mutex<Option<String>>,
    requests: AtomicU64,
    reconcile_requests: Mutex<Vec<ReceivedRequest>>,
    started: Instant,
}

/// A running simulated node. Stops when dropped.
pub struct SimNode {
    address: SocketAddr,
    scheme: &'static str,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl SimNode {
    /// Starts a node listening on `address` (port 0 picks a free port).
    pub async fn start(address: SocketAddr, spec: NodeSpec) -> std::io::Result<SimNode> {
        SimNode::serve(address, spec, None).await
    }

    /// Starts a node that serves HTTPS with `tls` (its certificate, and client
    /// certificates if `tls` asks for them).
    pub async fn start_tls(
        address: SocketAddr,
        spec: NodeSpec,
        tls: Arc<rustls::ServerConfig>,
    ) -> std::io::Result<SimNode> {
        SimNode::serve(address, spec, Some(tls)).await
    }

    async fn serve(
        address: SocketAddr,
        spec: NodeSpec,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<SimNode> {
        let listener = bind(address).await?;
        let address = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let shared = Arc::new(Shared {
            spec: Mutex::new(spec),
            required_authorization: Mutex::new(None),
            requests: AtomicU64::new(0),
            reconcile_requests: Mutex::new(Vec::new()),
            started: Instant::now(),
        });
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared), tls));
        Ok(SimNode {
            address,
            scheme,
            shared,
            task,
        })
    }

    /// The node's base URL.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.address)
    }

    /// From now on, summary requests without exactly this `Authorization` get 401.
    pub fn require_authorization(&self, value: Option<&str>) {
        *self.shared.required_authorization.lock().expect("poisoned") = value.map(str::to_owned);
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Requests (or, for [`Behavior::Reset`], connections) received so far.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    pub fn set_behavior(&self, behavior: Behavior) {
        self.spec().behavior = behavior;
    }

    pub fn set_reconcile_behavior(&self, behavior: ReconcileBehavior) {
        self.spec().reconcile = behavior;
    }

    /// Every reconciliation request received so far, oldest first.
    pub fn reconcile_requests(&self) -> Vec<ReceivedRequest> {
        self.shared
            .reconcile_requests
            .lock()
            .expect("poisoned")
            .clone()
    }

    pub fn set_state_root(&self, root: &str) {
        self.spec().state_root = root.to_owned();
    }

    pub fn state_root(&self) -> String {
        self.spec().state_root.clone()
    }

    pub fn node_id(&self) -> String {
        self.spec().node_id.clone()
    }

    fn spec(&self) -> std::sync::MutexGuard<'_, NodeSpec> {
        self.shared
            .spec
            .lock()
            .expect("simulated node state poisoned")
    }
}

impl Drop for SimNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `address`, trying again for up to a second while it is in use: an address picked
/// free a moment before (`free_loopback_address`) was once found taken when bound again
/// in a CI run (discovery.rs), by something short-lived.
async fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    let mut tries = 0;
    loop {
        match TcpListener::bind(address).await {
            Err(error) if error.kind() == std::io::ErrorKind::AddrInUse && tries < 20 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            result => return result,
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let behavior = shared.spec.lock().expect("poisoned").behavior.clone();
        if behavior == Behavior::Reset {
            shared.requests.fetch_add(1, Ordering::SeqCst);
            drop(stream);
            continue;
        }
        let shared = Arc::clone(&shared);
        let service = hyper::service::service_fn(move |request| {
            let shared = Arc::clone(&shared);
            async move {
                // A connection opened before the node "died" dies with it: an error from
                // the service makes hyper drop the connection without an answer.
                if shared.spec.lock().expect("poisoned").behavior == Behavior::Reset {
                    shared.requests.fetch_add(1, Ordering::SeqCst);
                    return Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
                }
                Ok(answer(&shared, request).await)
            }
        });
        // Connections live in the JoinSet so that aborting the node ends them too.
        let tls = tls.clone();
        connections.spawn(async move {
            let http = hyper::server::conn::http1::Builder::new();
            match tls {
                None => {
                    let _ = http.serve_connection(TokioIo::new(stream), service).await;
                }
                Some(tls) => {
                    let accept = tokio_rustls::TlsAcceptor::from(tls).accept(stream);
                    match accept.into_fallible().await {
                        Ok(stream) => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                        // A failed handshake (a missing or unknown client certificate…):
                        // the alert is sent, then the client's bytes are drained before
                        // closing. Closing with unread bytes sends a reset, which can
                        // destroy the alert before the client reads it (it then sees a
                        // reset, not a TLS refusal), as real servers do not.
                        Err((_, mut stream)) => {
                            use tokio::io::{AsyncReadExt, AsyncWriteExt};
                            let _ = stream.shutdown().await;
                            let mut sink = [0u8; 4096];
                            let drain = async {
                                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                            };
                            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), drain)
                                .await;
                        }
                    }
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
}

type Body = BoxBody<Bytes, Infallible>;

async fn answer(shared: &Shared, request: Request<Incoming>) -> Response<Body> {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    if request.method() == hyper::Method::POST && request.uri().path() == RECONCILE_PATH {
        return reconcile(shared, request).await;
    }
    if request.uri().path() != SUMMARY_PATH {
        return plain(StatusCode::NOT_FOUND, "not found");
    }
    let required = shared
        .required_authorization
        .lock()
        .expect("poisoned")
        .clone();
    if let Some(required) = required {
        let given = request
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if given != Some(required.as_str()) {
            return plain(StatusCode::UNAUTHORIZED, "authorization required");
        }
    }
    let spec = shared.spec.lock().expect("poisoned").clone();
    let summary = || summary_json(&spec, shared.started.elapsed());
    match spec.behavior {
        Behavior::Healthy | Behavior::Reset => json(summary()), // Reset never gets here
        Behavior::Slow(delay) => {
            tokio::time::sleep(delay).await;
            json(summary())
        }
        Behavior::Flaky(probability) => {
            if fastrand::f64() < probability {
                plain(StatusCode::SERVICE_UNAVAILABLE, "flaky")
            } else {
                json(summary())
            }
        }
        Behavior::Hang => std::future::pending().await,
        Behavior::Status(code) => plain(
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "simulated status",
        ),
        Behavior::Redirect(location) => {
            let mut response = plain(StatusCode::FOUND, "moved");
            if let Ok(value) = location.parse() {
                response.headers_mut().insert(LOCATION, value);
            }
            response
        }
        Behavior::HugeBody(size) => {
            const CHUNK: usize = 64 * 1024;
            let chunk = Bytes::from(vec![b' '; CHUNK]);
            let chunks = (0..size.div_ceil(CHUNK)).map(move |i| {
                let len = CHUNK.min(size - i * CHUNK);
                Ok::<_, Infallible>(Frame::data(chunk.slice(..len)))
            });
            with_json_type(StreamBody::new(stream::iter(chunks)).boxed())
        }
        Behavior::Drip(period) => {
            let bytes = Bytes::from(summary());
            let drip = stream::unfold(0usize, move |i| {
                let bytes = bytes.clone();
                async move {
                    if i >= bytes.len() {
                        return None;
                    }
                    tokio::time::sleep(period).await;
                    Some((
                        Ok::<_, Infallible>(Frame::data(bytes.slice(i..i + 1))),
                        i + 1,
                    ))
                }
            });
            with_json_type(StreamBody::new(drip).boxed())
        }
        Behavior::Raw(body) => json(body),
    }
}

async fn reconcile(shared: &Shared, request: Request<Incoming>) -> Response<Body> {
    let headers = request
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = match request.into_body().collect().await {
        Ok(collected) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
        Err(_) => return plain(StatusCode::BAD_REQUEST, "unreadable body"),
    };
    let target = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["target_root"].as_str().map(str::to_owned));
    shared
        .reconcile_requests
        .lock()
        .expect("poisoned")
        .push(ReceivedRequest {
            headers,
            body,
            at: Instant::now(),
        });
    let behavior = shared.spec.lock().expect("poisoned").reconcile.clone();
    match behavior {
        ReconcileBehavior::Heal => adopt(shared, target),
        ReconcileBehavior::AcceptWithoutEffect => plain(StatusCode::ACCEPTED, "accepted"),
        ReconcileBehavior::Status(code) => plain(
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "simulated status",
        ),
        ReconcileBehavior::Hang => std::future::pending().await,
        ReconcileBehavior::SlowHeal(delay) => {
            tokio::time::sleep(delay).await;
            adopt(shared, target)
        }
    }
}

/// Heals: takes the requested root as the node's own.
fn adopt(shared: &Shared, target: Option<String>) -> Response<Body> {
    match target {
        Some(root) => {
            shared.spec.lock().expect("poisoned").state_root = root;
            plain(StatusCode::OK, "reconciled")
        }
        None => plain(StatusCode::BAD_REQUEST, "no target_root"),
    }
}

/// The summary a node reports `elapsed` after it started.
fn summary_json(spec: &NodeSpec, elapsed: Duration) -> String {
    let t = elapsed.as_secs_f64();
    // Each node swings with its own period, so the federation's spread moves too.
    let period = 20.0 + 10.0 * spec.g_star_base;
    let g_star =
        (spec.g_star_base + 0.15 * (t * std::f64::consts::TAU / period).sin()).clamp(0.0, 1.0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    serde_json::json!({
        "schema_version": 1,
        "node_id": spec.node_id,
        "timestamp": now,
        "state_root": spec.state_root,
        "state_height": 1000 + elapsed.as_secs(),
        "metrics": {
            "peer_quality": 0.9,
            "stability_margin": 0.12,
            "hopf_distance": 0.33,
            "spectral_radius": 0.87,
            "gamma": 0.62,
            "g_star": g_star,
            "g_components": {"P": 0.5, "N": 0.2, "Cc": 0.7}
        }
    })
    .to_string()
}

fn json(body: String) -> Response<Body> {
    with_json_type(Full::new(Bytes::from(body)).boxed())
}

fn with_json_type(body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    response.headers_mut().insert(
        CONTENT_TYPE,
        "application/json".parse().expect("valid header"),
    );
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())).boxed());
    *response.status_mut() = status;
    response
}
