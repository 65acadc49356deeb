//! `GET /metrics`: one rendering shared by the scrapes that come together, and a bound on
//! the bodies held by clients that do not read.
//!
//! A rendered exposition is immutable bytes (`Bytes`, reference-counted): scrapes of the
//! same format and encoding that arrive while one renders wait for that rendering and get
//! the same body rather than start their own (a rendering finished before a scrape
//! arrived is not reused: counters read right after an event are never stale). A body stays in memory while any client still has it to send; at most
//! [`MAX_BODIES`] distinct bodies are held by clients at once: beyond that a scrape gets
//! the latest rendering of its kind if it is recent, or `503` (before issue 19, 50
//! clients that never read a 20 MB exposition held 50 renderings: 1.17 GiB). Writes that make no progress are cut off by the connection's
//! stall limit (`stall.rs`), which frees the body.

use super::process::ProcessFigures;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, ACCEPT, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER, VARY,
};
use hyper::{Request, Response, StatusCode};
use tokio::time::Instant;

use crate::serve::exposition::{self, Format, Rendering};
use crate::serve::server::{respond, App};

/// Distinct rendered bodies held by clients at once (shared ones count once), beside the
/// latest rendering of each kind.
pub(crate) const MAX_BODIES: usize = 4;
/// At the bound, the latest rendering answers only while it is this recent; after, `503`.
pub(crate) const STALE_LIMIT: Duration = Duration::from_secs(15);

/// The latest rendering of each kind, and the count of bodies alive.
#[derive(Default)]
pub(crate) struct Renderings {
    /// Held across a rendering: scrapes that come meanwhile wait, then share it.
    latest: Arc<tokio::sync::Mutex<HashMap<Kind, Rendered>>>,
    alive: Arc<AtomicUsize>,
}

/// What a body is rendered as.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Kind {
    format: Format,
    gzip: bool,
}

struct Rendered {
    /// When the rendering was done: it answers the scrapes that arrived before.
    finished: Instant,
    body: Bytes,
}

/// A body's bytes, counted as alive until the last clone of its `Bytes` is dropped.
struct Counted {
    bytes: Vec<u8>,
    alive: Arc<AtomicUsize>,
}

impl AsRef<[u8]> for Counted {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.alive.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Renderings {
    /// Distinct bodies alive now.
    #[cfg(test)]
    fn alive(&self) -> usize {
        self.alive.load(Ordering::Acquire)
    }
}

/// The answer to `GET /metrics`.
pub(crate) async fn metrics(
    app: Arc<App>,
    request: &Request<Incoming>,
    now: Instant,
) -> Response<Full<Bytes>> {
    let kind = Kind {
        format: exposition::negotiate(request.headers().get(ACCEPT)),
        gzip: accepts_gzip(request.headers().get(ACCEPT_ENCODING)),
    };
    // The lock is owned by a task of its own, so a client that goes away mid-rendering
    // neither frees the lock for a second rendering nor leaves this one uncounted.
    let latest = Arc::clone(&app.renderings.latest).lock_owned().await;
    let body = tokio::spawn(body_for(app, latest, kind, now)).await;
    let body = match body {
        Ok(Some(body)) => body,
        Ok(None) => return busy(),
        Err(_) => {
            return respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                "rendering failed (a bug: please report it)\n",
            )
        }
    };
    let mut response = Response::new(Full::new(body));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(kind.format.content_type()),
    );
    if kind.gzip {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    // The body depends on Accept-Encoding: said for caches.
    headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
    response
}

/// The body for a scrape of `kind` that arrived at `now`: shared if it was rendered while
/// the scrape waited, else rendered now — unless bodies held by clients are at the bound,
/// when the latest of its kind (not older than [`STALE_LIMIT`]) answers; `None` if none.
async fn body_for(
    app: Arc<App>,
    mut latest: tokio::sync::OwnedMutexGuard<HashMap<Kind, Rendered>>,
    kind: Kind,
    now: Instant,
) -> Option<Bytes> {
    if let Some(rendered) = latest.get(&kind) {
        if rendered.finished >= now {
            return Some(rendered.body.clone());
        }
    }
    // The latest renderings are alive by being kept here: only bodies beyond them are
    // held by clients.
    let held_by_clients = app
        .renderings
        .alive
        .load(Ordering::Acquire)
        .saturating_sub(latest.len());
    if held_by_clients >= MAX_BODIES {
        return latest
            .get(&kind)
            .filter(|r| now.saturating_duration_since(r.finished) < STALE_LIMIT)
            .map(|r| r.body.clone());
    }
    let bytes = render(Arc::clone(&app), kind, now).await.ok()?;
    app.renderings.alive.fetch_add(1, Ordering::AcqRel);
    let body = Bytes::from_owner(Counted {
        bytes,
        alive: Arc::clone(&app.renderings.alive),
    });
    let rendered = Rendered {
        finished: Instant::now(),
        body: body.clone(),
    };
    latest.insert(kind, rendered);
    Some(body)
}

/// Renders (and compresses) on a blocking thread: rendering 1,000 peers takes
/// milliseconds, and pulls in flight are not delayed (nor their latency inflated) by it.
async fn render(app: Arc<App>, kind: Kind, now: Instant) -> Result<Vec<u8>, ()> {
    let rendering = Rendering {
        format: kind.format,
        started_at: app.started_at,
        exporter_metrics: app.exporter_metrics,
    };
    tokio::task::spawn_blocking(move || {
        let text = exposition::render(
            &app.store.view(now),
            &app.reconciler.view(now),
            &app.operations.snapshot(),
            &app.build,
            ProcessFigures::read()
                .filter(|_| app.exporter_metrics)
                .as_ref(),
            rendering,
        );
        if kind.gzip {
            gzip_bytes(text.as_bytes())
        } else {
            // The text was given room for the worst case; a body may be held a while.
            let mut bytes = text.into_bytes();
            bytes.shrink_to_fit();
            bytes
        }
    })
    .await
    .map_err(|error| tracing::error!(%error, "rendering /metrics failed"))
}

/// Too many bodies alive: clients that do not read hold them.
fn busy() -> Response<Full<Bytes>> {
    tracing::warn!(
        "{MAX_BODIES} /metrics bodies are still being sent to clients; answered 503 (slow or stalled readers)"
    );
    let mut response = respond(
        StatusCode::SERVICE_UNAVAILABLE,
        "text/plain",
        "too many scrapes still being sent; try again in a moment\n",
    );
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// Whether an `Accept-Encoding` header allows gzip (`gzip` or `*`, with a q-value above 0).
fn accepts_gzip(header: Option<&HeaderValue>) -> bool {
    let Some(text) = header.and_then(|h| h.to_str().ok()) else {
        return false;
    };
    text.split(',').any(|entry| {
        let mut parts = entry.split(';').map(str::trim);
        let coding = parts.next().unwrap_or("");
        let quality = parts
            .find_map(|p| p.strip_prefix("q=").and_then(|q| q.parse::<f64>().ok()))
            .unwrap_or(1.0);
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && quality > 0.0
    })
}

/// `bytes` compressed with gzip (fast level: a scrape is compressed once and read once).
fn gzip_bytes(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 8),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_used_when_accept_encoding_allows_it() {
        let accepts = |text: &str| accepts_gzip(Some(&HeaderValue::from_str(text).unwrap()));
        assert!(accepts("gzip"));
        assert!(accepts("deflate, GZIP;q=0.5"));
        assert!(accepts("*"));
        assert!(!accepts("identity"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("br, deflate"));
        assert!(!accepts_gzip(None));
    }

    #[test]
    fn a_body_is_alive_until_its_last_clone_is_dropped() {
        let renderings = Renderings::default();
        renderings.alive.fetch_add(1, Ordering::AcqRel);
        let body = Bytes::from_owner(Counted {
            bytes: b"peerscope_up 1\n".to_vec(),
            alive: Arc::clone(&renderings.alive),
        });
        let (first, second) = (body.clone(), body.clone());
        drop(body);
        drop(first);
        assert_eq!(renderings.alive(), 1);
        assert_eq!(&second[..], b"peerscope_up 1\n");
        drop(second);
        assert_eq!(renderings.alive(), 0);
    }
}
