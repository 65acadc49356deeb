//! Pulling a node's summary over HTTP: one shared client (and one more per distinct TLS
//! setting, `config::transport`), a total time limit per pull, the body cap enforced while
//! streaming, redirects never followed, every failure classified.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use reqwest::header::{ACCEPT, AUTHORIZATION, LOCATION};
use reqwest::Url;
use tokio::time::Instant;

use crate::config::duration::format_duration;
use crate::config::transport::Transport;
use crate::pull::contract::decode_summary;
use crate::pull::failure::{innermost_cause, FailureReason, PullError};
use crate::pull::outcome::PullOutcome;
use crate::pull::resolver::Resolver;
use crate::sync;

/// Pulls summaries. Holds one HTTP client (and so one connection pool) for every pull
/// without TLS settings of its own, and one per distinct TLS setting.
#[derive(Clone)]
pub struct Poller {
    client: reqwest::Client,
    connect_timeout: Duration,
    /// Whether connections are kept for the next pull of the same node.
    keep_alive: bool,
    /// Clients for peers with TLS settings, by [`Transport::fingerprint`].
    tls_clients: Arc<Mutex<HashMap<String, reqwest::Client>>>,
    /// The named DNS servers, which resolve discovered names for pulls too.
    resolver: Option<Resolver>,
}

/// Clients for TLS settings no longer in force are dropped all at once beyond this many.
const TLS_CLIENTS: usize = 64;

fn client_builder(
    connect_timeout: Duration,
    keep_alive: bool,
    resolver: Option<&Resolver>,
) -> reqwest::ClientBuilder {
    let builder = match resolver {
        Some(resolver) => reqwest::Client::builder().dns_resolver(Arc::new(resolver.clone())),
        None => reqwest::Client::builder(),
    };
    builder
        .redirect(reqwest::redirect::Policy::none())
        // A sidecar talks to its federation directly; an HTTP_PROXY meant for something
        // else must not reroute (or leak) its pulls.
        .no_proxy()
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .pool_max_idle_per_host(usize::from(keep_alive))
        .user_agent(concat!("peerscope/", env!("CARGO_PKG_VERSION")))
}

/// The bounds of one pull (they may change on reload).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Limits {
    /// Total time for the whole pull, headers and body.
    pub(crate) timeout: Duration,
    /// Largest body accepted, in bytes.
    pub(crate) body_limit: usize,
}

impl Poller {
    /// A poller; `connect_timeout` bounds connection set-up (each pull is bounded whole by
    /// its own limits too).
    pub(crate) fn new(
        connect_timeout: Duration,
        resolver: Option<Resolver>,
    ) -> Result<Self, reqwest::Error> {
        Poller::build(connect_timeout, true, resolver)
    }

    /// A poller that closes each connection after its pull: for one-off pulls of members
    /// drawn at random (reconciliation's confirmation), which would otherwise leave an idle
    /// connection to every member drawn, on both sides, for the pool's idle timeout.
    pub(crate) fn without_keep_alive(
        connect_timeout: Duration,
        resolver: Option<Resolver>,
    ) -> Result<Self, reqwest::Error> {
        Poller::build(connect_timeout, false, resolver)
    }

    fn build(
        connect_timeout: Duration,
        keep_alive: bool,
        resolver: Option<Resolver>,
    ) -> Result<Self, reqwest::Error> {
        Ok(Poller {
            client: client_builder(connect_timeout, keep_alive, resolver.as_ref()).build()?,
            connect_timeout,
            keep_alive,
            tls_clients: Arc::default(),
            resolver,
        })
    }

    /// The client for `transport`: the shared one, or the one built for its TLS settings.
    fn client_for(&self, transport: &Transport) -> Result<reqwest::Client, PullError> {
        let Some(tls) = &transport.tls else {
            return Ok(self.client.clone());
        };
        let mut clients = sync::lock(&self.tls_clients);
        let key = transport.fingerprint();
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let client = client_builder(
            self.connect_timeout,
            self.keep_alive,
            self.resolver.as_ref(),
        )
        .use_preconfigured_tls(rustls::ClientConfig::clone(tls))
        .build()
        .map_err(|e| PullError::new(FailureReason::Tls, format!("cannot set up TLS: {e}")))?;
        if clients.len() >= TLS_CLIENTS {
            clients.clear();
        }
        clients.insert(key, client.clone());
        Ok(client)
    }

    /// Pulls and decodes one summary. Never fails: a failure is part of the outcome.
    pub(crate) async fn pull(
        &self,
        url: &Url,
        transport: &Transport,
        limits: Limits,
    ) -> PullOutcome {
        let started = Instant::now();
        let fetch = self.fetch(url, transport, limits.body_limit);
        let result = match tokio::time::timeout(limits.timeout, fetch).await {
            Ok(Ok(body)) => decode_summary(&body),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(PullError::new(
                FailureReason::Timeout,
                format!(
                    "no complete answer within {}",
                    format_duration(limits.timeout)
                ),
            )),
        };
        PullOutcome {
            started,
            duration: started.elapsed(),
            received_at: SystemTime::now(),
            result,
        }
    }

    /// The body at `url` (2xx only, no redirect, at most `body_limit` bytes); the pull's
    /// failure classes name what went wrong. Used for summaries and http_sd lists.
    pub(crate) async fn fetch(
        &self,
        url: &Url,
        transport: &Transport,
        body_limit: usize,
    ) -> Result<Vec<u8>, PullError> {
        let mut request = self
            .client_for(transport)?
            .get(url.clone())
            .header(ACCEPT, "application/json");
        if let Some(authorization) = &transport.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        let mut response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        // Only these point elsewhere; 304 (and 300, with no single target) are statuses.
        if matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .unwrap_or("nowhere");
            return Err(PullError::new(
                FailureReason::Redirect,
                format!("answered {status} to {location:?}; redirects are not followed"),
            ));
        }
        if !status.is_success() {
            return Err(PullError::new(
                FailureReason::HttpStatus,
                format!("answered {status}"),
            ));
        }
        let too_large = || {
            PullError::new(
                FailureReason::BodyTooLarge,
                format!("body larger than the limit of {} bytes", body_limit),
            )
        };
        let declared = response.content_length().unwrap_or(0);
        if declared > body_limit as u64 {
            return Err(too_large());
        }
        let mut body = Vec::with_capacity(declared as usize);
        while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
            if body.len() + chunk.len() > body_limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// Classifies a client error: a timeout, a TLS handshake that failed (an unknown CA, a
/// name mismatch, a client certificate refused…), or else a connection that could not be
/// made or broke.
fn transport_error(error: reqwest::Error) -> PullError {
    let reason = if error.is_timeout() {
        FailureReason::Timeout
    } else if is_tls(&error) {
        FailureReason::Tls
    } else {
        FailureReason::Connect
    };
    let cause = innermost_cause(&error);
    let detail = if reason == FailureReason::Tls {
        format!("TLS: {cause}")
    } else if error.is_connect() {
        format!("cannot connect: {cause}")
    } else {
        format!("connection failed: {cause}")
    };
    PullError::new(reason, detail)
}

/// Whether a rustls error is among the causes. An io::Error hides its inner error from
/// `source()` (and the connector nests one io::Error in another), so those are opened.
fn is_tls(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        cause = match error.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => error.source(),
        };
    }
    false
}
