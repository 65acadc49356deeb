//! The sidecar's HTTP server (hyper 1.x, HTTP/1.1).
//!
//! Endpoints:
//! - `GET /` — the page for people (`page.rs`; with `/page.js` and `/page.css`): the
//!   federation as this sidecar sees it, refreshed from `/status` and `/history`.
//! - `GET /metrics` — Prometheus text exposition 0.0.4, gzip-compressed when the client's
//!   `Accept-Encoding` allows it (Prometheus' does).
//! - `GET /healthz` — 200 while the poll loop's heartbeat advanced within 3 intervals, else 503.
//! - `GET /readyz`  — 200 once the first poll cycle has completed, else 503.
//! - `POST /-/reload` — reload the configuration; only from loopback, or with
//!   `Authorization: Bearer <admin token>`; never from a browser on another site
//!   ([`access::is_cross_site`]).
//! - `GET /status`  — a JSON snapshot of the node, the peers, the federation figures and
//!   the reconciliation state.
//! - `GET /history` — JSON: each cycle's peers live, novelty and divergence ratio over
//!   the last window (for the page's plots).
//!
//! Every `GET` endpoint answers `HEAD` too; every answer says `X-Content-Type-Options:
//! nosniff`. With a web configuration file
//! (`--web.config.file`, `access.rs`), every endpoint is served over TLS and/or behind
//! basic auth (`401` without valid credentials).
//!
//! Limits against clients that misbehave: request headers within 10 s and 16 KiB
//! (else `431` or a closed connection), writes that make no progress for 10 s close the
//! connection (`stall.rs`), at most 512 connections (`connections.rs`), and one
//! `/metrics` rendering shared by the scrapes that come together (`scrape.rs`).

use crate::serve::rate_limit::RequestBudget;
use crate::serve::refusals::{Refusal, Refusals};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::Either;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, AUTHORIZATION, CONNECTION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
    X_CONTENT_TYPE_OPTIONS,
};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::act::{ReconcileView, Reconciler};
use crate::config::web::{WebConfig, WebSettings};
use crate::figures::view::{HistoryPoint, View};
use crate::ops::operations::{Operations, OperationsState};
use crate::ops::reload::ReloadHandle;
use crate::outside::file::read_token;
use crate::serve::access::{self, Stream};
use crate::serve::basic_auth::{BasicAuth, Verdict};
use crate::serve::connections::{Admission, Connections, MAX_CONNECTIONS};
use crate::serve::exposition::BuildInfo;
use crate::serve::page;
use crate::serve::scrape::{self, Renderings};
use crate::serve::stall::{StallLimit, WRITE_STALL_LIMIT};
use crate::store::Store;
use crate::timeline::Anchor;

/// A client that has not sent its request headers by then is dropped.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest read buffer of one connection, in bytes: request headers longer than this
/// are answered `431` and the connection closed (hyper's default is ~400 KiB, and 2,000
/// clients sending unfinished headers took the sidecar to 778 MiB — issue 12).
pub(crate) const MAX_REQUEST_BUFFER: usize = 16 * 1024;
/// How long in-flight requests may take to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What the handlers need; built once and shared by every connection.
pub(crate) struct App {
    pub(crate) store: Store,
    pub(crate) reconciler: Reconciler,
    pub(crate) operations: Operations,
    pub(crate) reload: ReloadHandle,
    /// File holding the token that lets a non-loopback caller reload.
    pub(crate) admin_token_file: Option<PathBuf>,
    /// TLS and basic auth in force (replaced by reloads).
    pub(crate) web: WebSettings,
    pub(crate) basic_auth: BasicAuth,
    pub(crate) build: BuildInfo,
    /// Unix time the sidecar started: its own counters' OpenMetrics `_created`.
    pub(crate) started_at: f64,
    /// The latest `/metrics` renderings, shared by scrapes that come together.
    pub(crate) renderings: Renderings,
    /// The log lines of refused connections and requests, rate-limited.
    pub(crate) refusals: Refusals,
    /// The web configuration's `rate_limit` bucket.
    pub(crate) request_budget: RequestBudget,
    /// Where the metrics are served (`metrics.path`).
    pub(crate) telemetry_path: String,
    /// Whether `process_*` and the HTTP request counts are exported.
    pub(crate) exporter_metrics: bool,
}

/// The `/status` document.
#[derive(serde::Serialize)]
struct StatusDocument<'a> {
    version: &'static str,
    ready: bool,
    #[serde(flatten)]
    view: &'a View,
    reconciliation: &'a ReconcileView,
    #[serde(flatten)]
    operations: &'a OperationsState,
}

/// The `/history` document.
#[derive(serde::Serialize)]
struct HistoryDocument {
    interval_seconds: f64,
    window_seconds: f64,
    points: Vec<HistoryPoint>,
}

/// Serves until `shutdown` is cancelled, then lets in-flight requests finish.
pub(crate) async fn serve(listener: TcpListener, app: Arc<App>, shutdown: CancellationToken) {
    let graceful = GracefulShutdown::new();
    let connections = Connections::default();
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (stream, remote) = stream;
        let admitted = match connections.admit(MAX_CONNECTIONS) {
            Admission::Admitted { connection, shed } => {
                if shed {
                    app.operations.lock().server.connections_shed_total += 1;
                    app.refusals.note(
                        Refusal::ConnectionShed,
                        remote,
                        "the oldest idle connection was closed for a new one",
                    );
                }
                connection
            }
            Admission::Refused => {
                drop(stream);
                app.operations.lock().server.connections_shed_total += 1;
                app.refusals.note(
                    Refusal::ConnectionShed,
                    remote,
                    "every connection was inside a request; the new one was closed",
                );
                continue;
            }
        };
        let web = app.web.current();
        let for_requests = Arc::clone(&app);
        let requests = admitted.requests();
        let set_up_with = Arc::clone(&web);
        let service = hyper::service::service_fn(move |request| {
            let app = Arc::clone(&for_requests);
            let set_up_with = Arc::clone(&set_up_with);
            let in_request = requests.enter();
            async move {
                let response = guarded_route(app, &set_up_with, remote, &request).await;
                drop(in_request);
                Ok::<_, Infallible>(response)
            }
        });
        let connection = match web.tls.clone() {
            // Plain HTTP is watched at once: a request already sent when shutdown begins
            // is still answered.
            None => Either::Left(graceful.watch(http1(Stream::Left(stream), service))),
            // TLS first: its handshake counts against the same time limit as request
            // headers, so a silent client cannot hold the slot.
            Some(tls) => {
                let watcher = graceful.watcher();
                let app = Arc::clone(&app);
                Either::Right(async move {
                    match access::handshake(stream, &tls, HEADER_READ_TIMEOUT).await {
                        Ok(stream) => watcher.watch(http1(stream, service)).await,
                        Err(reason) => {
                            app.refusals
                                .note(Refusal::Handshake, remote, &reason.to_string());
                            Ok(())
                        }
                    }
                })
            }
        };
        tokio::spawn(async move {
            tokio::select! {
                ended = connection => if let Err(error) = ended {
                    tracing::debug!(%error, "connection ended with an error");
                },
                () = admitted.closed() => tracing::debug!("closed to make room for a new connection"),
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("HTTP server stopped"),
        () = tokio::time::sleep(SHUTDOWN_GRACE) => tracing::warn!("HTTP requests still running after {SHUTDOWN_GRACE:?}; closing"),
    }
}

/// One HTTP/1.1 connection over `stream`, with the limits against clients that misbehave.
fn http1<S>(
    stream: Stream,
    service: S,
) -> hyper::server::conn::http1::Connection<TokioIo<StallLimit<Stream>>, S>
where
    S: hyper::service::Service<
        Request<Incoming>,
        Response = Response<Full<Bytes>>,
        Error = Infallible,
    >,
    S::Future: Send + 'static,
{
    hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_REQUEST_BUFFER)
        .serve_connection(
            TokioIo::new(StallLimit::new(stream, WRITE_STALL_LIMIT)),
            service,
        )
}

/// [`route`] behind the web configuration in force: basic auth (when it names users)
/// before any endpoint, and its extra headers on every answer. A connection set up under
/// other TLS settings (`set_up_with`, before a reload) is closed after this answer, so
/// the client's next request comes on a connection that meets the new ones.
async fn guarded_route(
    app: Arc<App>,
    set_up_with: &WebConfig,
    remote: SocketAddr,
    request: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    let handler = if path == app.telemetry_path {
        "/metrics"
    } else {
        handler(path)
    };
    let web = app.web.current();
    // Before anything else is done for the request, a password check least of all.
    let limited = web
        .rate_limit
        .is_some_and(|limit| !app.request_budget.allow(limit, Instant::now()));
    let verdict = if limited {
        Verdict::Throttled
    } else if web.users.is_empty() {
        Verdict::Allowed
    } else {
        let (verdict, checked) = app
            .basic_auth
            .check(
                &web.users,
                request.headers().get(AUTHORIZATION),
                remote.ip(),
            )
            .await;
        let counters = &mut app.operations.lock().server;
        counters.basic_auth_checks_total += u64::from(checked);
        counters.basic_auth_throttled_total += u64::from(verdict == Verdict::Throttled);
        verdict
    };
    let mut response = match verdict {
        Verdict::Allowed => route(Arc::clone(&app), remote, request).await,
        Verdict::Refused => {
            app.refusals.note(
                Refusal::Login,
                remote,
                "no user and password, or a wrong one",
            );
            let mut refused = respond(
                StatusCode::UNAUTHORIZED,
                "text/plain",
                "this peerscope needs a user and password (HTTP basic auth)\n",
            );
            refused.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"peerscope\""),
            );
            refused
        }
        Verdict::Throttled if limited => {
            let mut limited = respond(
                StatusCode::TOO_MANY_REQUESTS,
                "text/plain",
                "too many requests (the web configuration's rate_limit); try again in a moment\n",
            );
            limited
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            limited
        }
        Verdict::Throttled => {
            app.refusals.note(
                Refusal::LoginThrottled,
                remote,
                "answered 429 without a check",
            );
            let mut throttled = respond(
                StatusCode::TOO_MANY_REQUESTS,
                "text/plain",
                "too many failed logins from this address; try again in a moment\n",
            );
            throttled
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            throttled
        }
    };
    response
        .headers_mut()
        .insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    for (name, value) in &web.headers {
        // Checked when the file was loaded; a failure here cannot happen.
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    if web.tls != set_up_with.tls {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    *app.operations
        .lock()
        .server
        .requests_total
        .entry((handler, response.status().as_u16()))
        .or_default() += 1;
    response
}

/// The `handler` label of a request for `path`: the endpoint, or `other` (any path a
/// client invents must not become a series).
fn handler(path: &str) -> &'static str {
    crate::config::parse::ENDPOINTS
        .iter()
        .find(|handler| **handler == path)
        .copied()
        .unwrap_or("other")
}

async fn route(
    app: Arc<App>,
    remote: SocketAddr,
    request: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    let now = Instant::now();
    // HEAD is GET without the body: hyper sends the headers (Content-Length included) only.
    let method = match request.method() {
        &Method::HEAD => &Method::GET,
        method => method,
    };
    let path = request.uri().path();
    if path == app.telemetry_path {
        return match method {
            &Method::GET => scrape::metrics(app, request, now).await,
            _ => respond(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                "method not allowed\n",
            ),
        };
    }
    match (method, path) {
        (&Method::POST, "/-/reload") => {
            if access::is_cross_site(request.headers()) {
                tracing::warn!(%remote, "refused a cross-site reload request (a page of another site sent it)");
                return respond(
                    StatusCode::FORBIDDEN,
                    "text/plain",
                    "cross-site requests may not reload the configuration\n",
                );
            }
            let bearer = request
                .headers()
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            if !reload_allowed(remote, bearer, app.admin_token_file.as_deref()).await {
                tracing::warn!(%remote, "refused a reload request: not from loopback and no valid admin token");
                return respond(
                    StatusCode::FORBIDDEN,
                    "text/plain",
                    "reload is allowed from loopback or with the admin token\n",
                );
            }
            match app.reload.reload().await {
                Ok(()) => respond(StatusCode::OK, "text/plain", "configuration reloaded\n"),
                Err(error) => respond(
                    StatusCode::BAD_REQUEST,
                    "text/plain",
                    format!("configuration refused; the previous one stays in force: {error}\n"),
                ),
            }
        }
        (&Method::GET, path @ ("/" | "/page.js" | "/page.css")) => match page::serve(path) {
            Some(response) => response,
            None => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
        },
        (&Method::GET, "/history") => {
            let settings = app.store.timing();
            let document = HistoryDocument {
                interval_seconds: settings.0.as_secs_f64(),
                window_seconds: settings.1.as_secs_f64(),
                points: app.store.history(&Anchor::now()),
            };
            json(&document)
        }
        // Prometheus' own spellings too (`/-/healthy`, `/-/ready`), as its exporters answer.
        (&Method::GET, "/healthz" | "/-/healthy") => probe(
            app.store.is_alive(now),
            "poll loop alive",
            "poll loop stalled",
        ),
        (&Method::GET, "/readyz" | "/-/ready") => probe(
            app.store.is_ready(),
            "ready",
            "first poll cycle not completed",
        ),
        (&Method::GET, "/status") => {
            let view = app.store.view(now);
            let document = StatusDocument {
                version: app.build.version,
                ready: app.store.is_ready(),
                view: &view,
                reconciliation: &app.reconciler.view(now),
                operations: &app.operations.snapshot(),
            };
            json(&document)
        }
        (
            _,
            "/" | "/page.js" | "/page.css" | "/healthz" | "/readyz" | "/-/healthy" | "/-/ready"
            | "/status" | "/history",
        ) => respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "method not allowed\n",
        ),
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found; try /, /metrics, /healthz (/-/healthy), /readyz (/-/ready), /status or /history\n",
        ),
    }
}

/// A reload may come from loopback, or from anywhere with the admin token (read from its
/// file at each request, compared whole; never logged).
async fn reload_allowed(
    remote: SocketAddr,
    bearer: Option<&str>,
    token_file: Option<&Path>,
) -> bool {
    if remote.ip().is_loopback() {
        return true;
    }
    let (Some(bearer), Some(file)) = (bearer, token_file) else {
        return false;
    };
    match read_token(file).await {
        Ok(token) => bearer
            .strip_prefix("Bearer ")
            .is_some_and(|given| same_secret(given, &token)),
        Err(error) => {
            tracing::error!(%error, "cannot use the admin token file");
            false
        }
    }
}

/// Whether two secrets are equal, in time that depends on neither: both are hashed (so
/// their lengths do not show) and the digests compared without an early exit.
fn same_secret(given: &str, expected: &str) -> bool {
    let digest = |text: &str| ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let (given, expected) = (digest(given), digest(expected));
    given
        .as_ref()
        .iter()
        .zip(expected.as_ref())
        .fold(0u8, |differ, (a, b)| differ | (a ^ b))
        == 0
}

/// A JSON document, pretty-printed.
fn json(document: &impl serde::Serialize) -> Response<Full<Bytes>> {
    match serde_json::to_string_pretty(document) {
        Ok(json) => respond(StatusCode::OK, "application/json", json),
        Err(error) => respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            format!("cannot encode the document: {error}\n"),
        ),
    }
}

fn probe(ok: bool, good: &str, bad: &str) -> Response<Full<Bytes>> {
    if ok {
        respond(StatusCode::OK, "text/plain", format!("{good}\n"))
    } else {
        respond(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            format!("{bad}\n"),
        )
    }
}

pub(crate) fn respond(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_compared_whole() {
        assert!(same_secret("s3cr3t", "s3cr3t"));
        assert!(!same_secret("s3cr3t", "s3cr3T"));
        assert!(!same_secret("s3cr3", "s3cr3t"));
        assert!(!same_secret("", "s3cr3t"));
    }

    #[tokio::test]
    async fn reload_needs_loopback_or_the_admin_token() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("admin-token");
        std::fs::write(&token, "letmein\n").unwrap();
        let loopback: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let remote: SocketAddr = "10.1.2.3:5000".parse().unwrap();
        assert!(reload_allowed(loopback, None, None).await);
        assert!(!reload_allowed(remote, None, Some(&token)).await);
        assert!(!reload_allowed(remote, Some("Bearer nope"), Some(&token)).await);
        assert!(!reload_allowed(remote, Some("Bearer letmein"), None).await);
        assert!(reload_allowed(remote, Some("Bearer letmein"), Some(&token)).await);
    }
}
