//! DNS for discovery (SPEC §10): A/AAAA and SRV lookups with hickory-resolver, against the
//! system's resolver configuration or the configured `dns_servers`, and the same resolver
//! for pulls of discovered names (as reqwest's resolver) when servers are named.
//!
//! hickory-resolver: the maintained pure-Rust stub resolver on tokio (SRV included, which
//! the system's getaddrinfo cannot do), with servers settable per resolver. Its cache is
//! off: every refresh asks again, so a changed record set is seen at the next refresh.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::{ResolveError, TokioResolver};

/// How long one lookup may take, all attempts included.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// A lookup that did not give a valid answer, by class (the `outcome` label of
/// `peerscope_discovery_refreshes_total`). A valid answer with no records (NXDOMAIN, or
/// no records of the type) is not a failure: it is an empty member set.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{class}: {detail}")]
pub struct LookupFailure {
    /// `timeout`, `servfail`, `refused`, `unreachable` or `error`.
    pub class: &'static str,
    pub detail: String,
}

/// The resolver discovery and pulls share. Cloning it is cheap.
#[derive(Clone)]
pub struct Resolver {
    inner: Arc<TokioResolver>,
    /// Servers were named: pulls of discovered names resolve here too.
    pub(crate) custom: bool,
}

impl Resolver {
    /// A resolver asking `servers` (UDP, then TCP for long answers), or the system's
    /// configuration when there are none. `Err` when the system configuration cannot be
    /// read.
    pub fn new(servers: &[SocketAddr]) -> Result<Self, String> {
        let (mut builder, custom) = if servers.is_empty() {
            let builder = TokioResolver::builder_tokio()
                .map_err(|e| format!("cannot read the system's resolver configuration: {e}"))?;
            (builder, false)
        } else {
            let mut config = ResolverConfig::new();
            for server in servers {
                config.add_name_server(NameServerConfig::new(*server, Protocol::Udp));
                config.add_name_server(NameServerConfig::new(*server, Protocol::Tcp));
            }
            let builder =
                TokioResolver::builder_with_config(config, TokioConnectionProvider::default());
            (builder, true)
        };
        let options: &mut ResolverOpts = builder.options_mut();
        options.cache_size = 0;
        options.timeout = LOOKUP_TIMEOUT;
        options.attempts = 1;
        // /etc/hosts still answers the names it lists (hostAliases, --add-host), as for
        // the system resolver; discovery's SRV lookups never consult it.
        options.use_hosts_file = ResolveHosts::Auto;
        Ok(Resolver {
            inner: Arc::new(builder.build()),
            custom,
        })
    }

    /// The addresses of `name`: its A and its AAAA records, asked separately and both
    /// needed. (hickory's combined lookup takes an A timeout followed by an empty AAAA
    /// answer for "no addresses", which would empty a source on one lost packet.)
    pub async fn addresses(&self, name: &str) -> Result<Vec<IpAddr>, LookupFailure> {
        let name = fqdn(name);
        let (v4, v6) = tokio::join!(
            self.inner.ipv4_lookup(name.as_str()),
            self.inner.ipv6_lookup(name.as_str())
        );
        let mut addresses: Vec<IpAddr> = match v4 {
            Ok(lookup) => lookup.iter().map(|a| IpAddr::V4(a.0)).collect(),
            Err(error) => empty_or_failure(error)?,
        };
        match v6 {
            Ok(lookup) => addresses.extend(lookup.iter().map(|aaaa| IpAddr::V6(aaaa.0))),
            Err(error) => addresses.extend(empty_or_failure::<IpAddr>(error)?),
        }
        Ok(addresses)
    }

    /// The targets and ports of the SRV records of `name`, targets without the trailing
    /// dot. A record that names no service (target `.`, RFC 2782) or port 0 is left out.
    pub async fn services(&self, name: &str) -> Result<Vec<(String, u16)>, LookupFailure> {
        match self.inner.srv_lookup(fqdn(name)).await {
            Ok(lookup) => Ok(lookup
                .iter()
                .filter_map(|srv| {
                    let target = srv.target().to_utf8();
                    let target = target.trim_end_matches('.');
                    if target.is_empty() || srv.port() == 0 {
                        tracing::debug!(%name, "an SRV record names no service; left out");
                        return None;
                    }
                    Some((target.to_owned(), srv.port()))
                })
                .collect()),
            Err(error) => empty_or_failure(error),
        }
    }
}

/// `name.`: a name given is absolute (no search domains tried first).
fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

fn empty_or_failure<T>(error: ResolveError) -> Result<Vec<T>, LookupFailure> {
    let class = match error.proto().map(|proto| proto.kind()) {
        Some(ProtoErrorKind::NoRecordsFound { response_code, .. }) => match *response_code {
            ResponseCode::NXDomain | ResponseCode::NoError => return Ok(Vec::new()),
            ResponseCode::ServFail => "servfail",
            ResponseCode::Refused => "refused",
            _ => "error",
        },
        Some(ProtoErrorKind::Timeout) => "timeout",
        Some(ProtoErrorKind::NoConnections | ProtoErrorKind::Io(_)) => "unreachable",
        _ => "error",
    };
    Err(LookupFailure {
        class,
        detail: error.to_string(),
    })
}

/// Pulls resolve host names through the named servers.
impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.clone();
        Box::pin(async move {
            // For a connection, whatever answered will do (A, else AAAA).
            let lookup = resolver.inner.lookup_ip(fqdn(name.as_str())).await?;
            let addresses: Vec<IpAddr> = lookup.iter().collect();
            if addresses.is_empty() {
                return Err(format!("{} has no addresses", name.as_str()).into());
            }
            // Port 0: reqwest puts the URL's port in.
            let addrs: reqwest::dns::Addrs =
                Box::new(addresses.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}
