//! The discovery loop (SPEC §10): every `discovery_refresh`, looks up each DNS source and
//! fetches the http_sd list, and hands each source's members to the store — or, when a
//! lookup fails, the failure's class, so the source keeps its last good members.

use std::time::Duration;

use futures_util::future::join_all;
use tokio_util::sync::CancellationToken;

use crate::config::discovery::{source_name, DiscoveryConfig, DnsSource, Lookup};
use crate::config::peers_file::{self, FILE_LIMIT};
use crate::config::{parse_base_url, PeerConfig};
use crate::pull::poller::Poller;
use crate::pull::resolver::Resolver;
use crate::store::Store;

/// How long an http_sd fetch may take at most (less when the refresh is shorter).
const HTTP_SD_TIMEOUT: Duration = Duration::from_secs(10);

/// A failed refresh: its class (the `outcome` label) and what happened.
type Failure = (&'static str, String);

/// Runs until `shutdown`. `resolver` is `Err` with the reason when none could be built
/// (then every DNS refresh fails with that reason, counted, and http_sd still works).
pub(crate) async fn run_discovery(
    store: Store,
    resolver: Result<Resolver, String>,
    poller: Poller,
    shutdown: CancellationToken,
) {
    loop {
        let config = store.discovery_config();
        if config.is_on() {
            let dns = config.dns.iter().map(|source| async {
                let result = match &resolver {
                    Ok(resolver) => look_up(resolver, source, &config).await,
                    Err(reason) => Err(("error", reason.clone())),
                };
                (source.text.clone(), result)
            });
            let http_sd = config.http_sd.iter().map(|url| async {
                (source_name(url), fetch_http_sd(&poller, url, &config).await)
            });
            let (dns, http_sd) = tokio::select! {
                _ = shutdown.cancelled() => break,
                results = async { tokio::join!(join_all(dns), join_all(http_sd)) } => results,
            };
            for (source, result) in dns.into_iter().chain(http_sd) {
                store.record_discovery(&source, result);
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            () = tokio::time::sleep(config.refresh.max(Duration::from_millis(100))) => {}
        }
    }
}

/// The members a DNS source names now.
async fn look_up(
    resolver: &Resolver,
    source: &DnsSource,
    config: &DiscoveryConfig,
) -> Result<Vec<PeerConfig>, Failure> {
    let fail = |failure: crate::pull::resolver::LookupFailure| (failure.class, failure.detail);
    let mut hosts: Vec<(String, u16)> = match source.lookup {
        Lookup::Address { port } => resolver
            .addresses(&source.name)
            .await
            .map_err(fail)?
            .into_iter()
            .map(|ip| match ip {
                std::net::IpAddr::V4(v4) => (v4.to_string(), port),
                std::net::IpAddr::V6(v6) => (format!("[{v6}]"), port),
            })
            .collect(),
        Lookup::Srv => resolver.services(&source.name).await.map_err(fail)?,
    };
    hosts.sort();
    hosts.dedup();
    hosts
        .into_iter()
        .map(|(host, port)| {
            let name = format!("{host}:{port}");
            let url = parse_base_url(&format!("{}://{name}{}", source.scheme, source.path))
                .map_err(|problem| {
                    (
                        "error",
                        format!("a record gave an unusable address: {problem}"),
                    )
                })?;
            Ok(member(url, name, config))
        })
        .collect()
}

/// The http_sd list now: fetched as a summary is (the peer TLS settings, no redirects,
/// bounded), parsed as a peers file.
async fn fetch_http_sd(
    poller: &Poller,
    url: &reqwest::Url,
    config: &DiscoveryConfig,
) -> Result<Vec<PeerConfig>, Failure> {
    let timeout = HTTP_SD_TIMEOUT.min(config.refresh);
    let fetch = poller.fetch(url, &config.transport, FILE_LIMIT as usize);
    let body = match tokio::time::timeout(timeout, fetch).await {
        Ok(Ok(body)) => body,
        Ok(Err(error)) => return Err((error.reason.as_str(), error.detail)),
        Err(_) => return Err(("timeout", format!("no whole answer within {timeout:?}"))),
    };
    let peers = peers_file::parse_json(&body, &format!("http_sd {}", source_name(url)))
        .map_err(|error| ("bad_body", error.to_string()))?;
    Ok(peers
        .into_iter()
        .map(|peer| member(peer.url, peer.label, config))
        .collect())
}

/// A discovered member, reached as `[pull]` says.
fn member(url: reqwest::Url, name: String, config: &DiscoveryConfig) -> PeerConfig {
    let mut peer = PeerConfig::new(url, Some(name));
    peer.transport = std::sync::Arc::clone(&config.transport);
    peer
}
