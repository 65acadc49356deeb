//! The sidecar's HTTP server (hyper 1.x, HTTP/1.1).
//!
//! Endpoints:
//! - `GET /metrics` — Prometheus text exposition 0.0.4.
//! - `GET /healthz` — 200 while the poll loop's heartbeat advanced within 3 intervals, else 503.
//! - `GET /readyz`  — 200 once the first poll cycle has completed, else 503.
//! - `GET /status`  — a JSON snapshot of the node, the peers, the federation figures and
//!   the reconciliation state.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::exposition::{self, BuildInfo};
use crate::reconciler::{ReconcileView, Reconciler};
use crate::store::Store;
use crate::view::View;

/// A client that has not sent its request headers by then is dropped.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests may take to finish at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What the handlers need; built once and shared by every connection.
pub struct App {
    pub store: Store,
    pub reconciler: Reconciler,
    pub build: BuildInfo,
    /// Holds the `process_*` collector; passed in, never global.
    pub process_registry: prometheus::Registry,
}

/// The `/status` document.
#[derive(serde::Serialize)]
struct StatusDocument<'a> {
    version: &'static str,
    ready: bool,
    #[serde(flatten)]
    view: &'a View,
    reconciliation: &'a ReconcileView,
}

/// Serves until `shutdown` is cancelled, then lets in-flight requests finish.
pub async fn serve(listener: TcpListener, app: Arc<App>, shutdown: CancellationToken) {
    let graceful = GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let app = Arc::clone(&app);
        let service = hyper::service::service_fn(move |request| {
            let app = Arc::clone(&app);
            async move { Ok::<_, Infallible>(route(app, &request).await) }
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("HTTP server stopped"),
        () = tokio::time::sleep(SHUTDOWN_GRACE) => tracing::warn!("HTTP requests still running after {SHUTDOWN_GRACE:?}; closing"),
    }
}

async fn route(app: Arc<App>, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let now = Instant::now();
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => {
            // Rendering 1,000 peers takes milliseconds: off the runtime's threads, so
            // pulls in flight are not delayed (and their latency not inflated) by a scrape.
            let rendered = tokio::task::spawn_blocking(move || {
                let reconciliation = app.reconciler.view(now);
                exposition::render(
                    &app.store.view(now),
                    &reconciliation,
                    &app.build,
                    &app.process_registry,
                )
            })
            .await;
            match rendered {
                Ok(text) => respond(StatusCode::OK, exposition::CONTENT_TYPE, text),
                Err(error) => respond(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    format!("rendering failed: {error}\n"),
                ),
            }
        }
        (&Method::GET, "/healthz") => probe(
            app.store.is_alive(now),
            "poll loop alive",
            "poll loop stalled",
        ),
        (&Method::GET, "/readyz") => probe(
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
            };
            match serde_json::to_string_pretty(&document) {
                Ok(json) => respond(StatusCode::OK, "application/json", json),
                Err(error) => respond(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    format!("cannot encode status: {error}\n"),
                ),
            }
        }
        (_, "/metrics" | "/healthz" | "/readyz" | "/status") => respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "method not allowed\n".into(),
        ),
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found; try /metrics, /healthz, /readyz or /status\n".into(),
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

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}
