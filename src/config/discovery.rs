//! Peers found, not listed (SPEC §10): DNS addresses in the peer list (`dns+NAME:PORT`,
//! `dnssrv+NAME`), an http_sd URL, the refresh interval and the DNS servers to ask.

use std::net::SocketAddr;

use reqwest::Url;

/// What a DNS source looks up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lookup {
    /// A and AAAA records of the name; every address is a member at the given port.
    Address { port: u16 },
    /// SRV records of the name; every target is a member at its port, pulled at that name.
    Srv,
}

/// A peer address that names members by DNS: `dns+[SCHEME://]NAME:PORT` or
/// `dnssrv+[SCHEME://]NAME`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DnsSource {
    /// As written: the `source` label of its metrics.
    pub text: String,
    pub lookup: Lookup,
    /// `http` or `https`.
    pub scheme: String,
    /// The name looked up, without a trailing dot.
    pub name: String,
    /// The path prefix of the members' URLs (the summary path is appended to it).
    pub path: String,
}

/// Everything discovery is told: the DNS sources, the http_sd URL, how often to look.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct DiscoveryConfig {
    pub dns: Vec<DnsSource>,
    #[serde(serialize_with = "serialize_optional_url")]
    pub http_sd: Option<Url>,
    pub refresh: std::time::Duration,
    /// The DNS servers to ask; empty: the system's resolver configuration.
    pub dns_servers: Vec<SocketAddr>,
    /// How discovered members and the http_sd endpoint are reached: `[pull]`'s settings,
    /// built when the configuration loads.
    #[serde(skip)]
    pub(crate) transport: std::sync::Arc<super::transport::Transport>,
}

fn serialize_optional_url<S: serde::Serializer>(
    url: &Option<Url>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match url {
        Some(url) => s.serialize_str(url.as_str()),
        None => s.serialize_none(),
    }
}

impl DiscoveryConfig {
    /// Whether any source is configured.
    pub fn is_on(&self) -> bool {
        !self.dns.is_empty() || self.http_sd.is_some()
    }
}

/// The `source` label of an http_sd URL: without user, password, query or fragment, which
/// may carry credentials that must not reach `/metrics`, `/status` or the logs.
pub fn source_name(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// The DNS source a peer address names, if it has a `dns+` or `dnssrv+` prefix; `Err`
/// says what is wrong with one that does.
pub fn dns_source(text: &str) -> Option<Result<DnsSource, String>> {
    let (lookup_is_srv, rest) = if let Some(rest) = text.strip_prefix("dnssrv+") {
        (true, rest)
    } else if let Some(rest) = text.strip_prefix("dns+") {
        (false, rest)
    } else {
        return None;
    };
    Some(parse_dns_source(text, lookup_is_srv, rest))
}

fn parse_dns_source(text: &str, srv: bool, rest: &str) -> Result<DnsSource, String> {
    let (scheme, rest) = match rest.split_once("://") {
        Some((scheme, rest)) => (scheme, rest),
        None => ("http", rest),
    };
    if scheme != "http" && scheme != "https" {
        return Err(format!("{text:?}: the scheme must be http or https"));
    }
    let (host_port, path) = match rest.find('/') {
        Some(at) => (&rest[..at], rest[at..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let (name, lookup) = if srv {
        if host_port.contains(':') {
            return Err(format!(
                "{text:?}: a dnssrv+ name takes no port (the SRV records give each target's)"
            ));
        }
        (host_port, Lookup::Srv)
    } else {
        let Some((name, port)) = host_port.rsplit_once(':') else {
            return Err(format!(
                "{text:?}: a dns+ name needs a port (dns+NAME:PORT)"
            ));
        };
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("{text:?}: {port:?} is not a port"))?;
        (name, Lookup::Address { port })
    };
    // The members' URLs are this with the host filled in: check the rest now.
    if let Err(problem) = super::parse::base_url(&format!("{scheme}://member.invalid:1{path}")) {
        return Err(format!(
            "{text:?}: the path is not usable in a URL: {problem}"
        ));
    }
    let name = name.trim_end_matches('.');
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(valid_label) {
        return Err(format!("{text:?}: {name:?} is not a DNS name"));
    }
    Ok(DnsSource {
        text: text.to_owned(),
        lookup,
        scheme: scheme.to_owned(),
        name: name.to_owned(),
        path: path.to_owned(),
    })
}

/// `ADDR[:PORT]` of a DNS server, port 53 when absent (`[::1]:5353` for IPv6 with a port).
pub fn dns_server(text: &str) -> Result<SocketAddr, String> {
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("{text:?} is not an IP address with an optional port"))
}

/// A comma-separated list of DNS servers.
pub fn dns_servers(text: &str) -> Result<Vec<SocketAddr>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(dns_server)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_addresses_are_parsed_with_their_scheme_port_and_path() {
        assert!(dns_source("http://10.0.0.1:8100").is_none());
        let a = dns_source("dns+peers.example:8100").unwrap().unwrap();
        assert_eq!(a.lookup, Lookup::Address { port: 8100 });
        assert_eq!(
            (a.scheme.as_str(), a.name.as_str()),
            ("http", "peers.example")
        );
        let srv = dns_source("dnssrv+https://_nova._tcp.peers.example./nova/")
            .unwrap()
            .unwrap();
        assert_eq!(srv.lookup, Lookup::Srv);
        assert_eq!(srv.scheme, "https");
        assert_eq!(srv.name, "_nova._tcp.peers.example");
        assert_eq!(srv.path, "/nova");
        for (bad, expected) in [
            ("dns+peers.example", "needs a port"),
            ("dns+peers.example:0", "is not a port"),
            ("dnssrv+peers.example:8100", "takes no port"),
            ("dns+ftp://peers.example:21", "scheme must be http or https"),
            ("dns+bad name:80", "is not a DNS name"),
            ("dnssrv+", "is not a DNS name"),
            ("dns+peers.example:80/x?q=1", "the path is not usable"),
        ] {
            let error = dns_source(bad).unwrap().unwrap_err();
            assert!(error.contains(expected), "{bad}: {error}");
        }
    }

    #[test]
    fn an_http_sd_source_is_shown_without_credentials() {
        let url = Url::parse("https://user:secret@sd.example/targets?token=t0k#x").unwrap();
        assert_eq!(source_name(&url), "https://sd.example/targets");
    }

    #[test]
    fn dns_servers_take_an_optional_port() {
        assert_eq!(
            dns_servers("127.0.0.1:5353, 10.0.0.2,[::1]:53").unwrap(),
            [
                "127.0.0.1:5353".parse().unwrap(),
                "10.0.0.2:53".parse().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
        assert!(dns_servers("localhost").is_err());
    }
}
