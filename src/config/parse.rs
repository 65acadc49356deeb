//! Parsers of one key's text, whatever its source. Each returns the value or says what is
//! wrong with the text; the caller adds where it came from and which key it was.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;

use super::duration::parse_duration;
use super::ObserversPerPeer;

/// A node's base URL: http(s), a host, an optional path prefix, no query.
/// A whole `http://` or `https://` URL (an http_sd endpoint), query included.
pub fn http_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "{text:?} must be an http:// or https:// URL with a host"
        ));
    }
    Ok(url)
}

pub fn base_url(text: &str) -> Result<Url, String> {
    let mut url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{text:?} must start with http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{text:?} has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{text:?} must not have a query or fragment"));
    }
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    Ok(url)
}

/// The server's address as node_exporter's `--web.listen-address` takes it: `HOST:PORT`
/// with an IP address (`[::1]:9478` for IPv6), `:PORT` for every IPv4 interface, or
/// `localhost:PORT` (127.0.0.1). Other names are refused rather than resolved: a lookup at
/// every reload could fail, or answer differently, for a key that needs a restart anyway.
pub(crate) fn listen_address(text: &str) -> Result<SocketAddr, String> {
    let problem = || {
        format!("{text:?} is not an address like 127.0.0.1:9478, :9478 or localhost:9478 (names other than localhost are not resolved: give the IP address)")
    };
    if let Ok(address) = text.parse() {
        return Ok(address);
    }
    let (host, port) = text.rsplit_once(':').ok_or_else(problem)?;
    let port: u16 = port.parse().map_err(|_| problem())?;
    match host {
        "" => Ok(SocketAddr::from(([0, 0, 0, 0], port))),
        "localhost" => Ok(SocketAddr::from(([127, 0, 0, 1], port))),
        _ => Err(problem()),
    }
}

/// `log_level`: `debug`, `info`, `warn` or `error`. A filter with `=` or `,`
/// (`info,peerscope=debug`) is taken too, as earlier versions took any filter here; a bare
/// word that is no level (`bogus`, `warning`) is refused — as a filter it would select a
/// module of that name and log nothing else.
pub(crate) fn log_level(text: &str) -> Result<String, String> {
    const LEVELS: [&str; 4] = ["debug", "info", "warn", "error"];
    if LEVELS.contains(&text) {
        return Ok(text.to_owned());
    }
    if text.contains(['=', ',']) {
        return log_filter(text);
    }
    Err(format!(
        "{text:?} is not one of {} (a finer filter goes in log_filter)",
        LEVELS.join(", ")
    ))
}

/// A `tracing` filter (`info,peerscope=debug`), refused here if it does not parse.
pub(crate) fn log_filter(text: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::builder()
        .parse(text)
        .map(|_| text.to_owned())
        .map_err(|error| format!("{text:?} is not a tracing filter: {error}"))
}

pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    parse_duration(text)
}

pub(crate) fn nonzero_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err(format!("{text:?} must be greater than 0")),
        d => Ok(d),
    }
}

/// A finite, non-negative number.
pub(crate) fn weight(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(w) if w.is_finite() && w >= 0.0 => Ok(w),
        _ => Err(format!("{text:?} is not a non-negative number")),
    }
}

/// A finite number of at least 1.
pub(crate) fn growth_factor(text: &str) -> Result<f64, String> {
    match weight(text)? {
        factor if factor >= 1.0 => Ok(factor),
        _ => Err(format!("{text:?} must be at least 1")),
    }
}

pub(crate) fn positive(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{text:?} is not a positive whole number")),
    }
}

/// `auto`, or a whole number of observers (0 = every sidecar observes every peer).
pub(crate) fn observers_per_peer(text: &str) -> Result<ObserversPerPeer, String> {
    match text.trim() {
        "auto" => Ok(ObserversPerPeer::Auto),
        number => number
            .parse()
            .map(ObserversPerPeer::Fixed)
            .map_err(|_| format!("{text:?} is neither `auto` nor a whole number")),
    }
}

/// A non-empty name.
pub(crate) fn name(text: &str) -> Result<Option<String>, String> {
    match text.trim().is_empty() {
        true => Err("must not be empty".to_owned()),
        false => Ok(Some(text.trim().to_owned())),
    }
}

/// One of the named choices.
pub(crate) fn one_of<T: Copy>(text: &str, choices: &[(&str, T)]) -> Result<T, String> {
    choices
        .iter()
        .find(|(name, _)| *name == text)
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
            format!("{text:?} is not one of {}", names.join(", "))
        })
}

/// The server's endpoints other than the metrics (whose path is `metrics.path`).
pub(crate) const ENDPOINTS: [&str; 10] = [
    "/",
    "/page.js",
    "/page.css",
    "/healthz",
    "/readyz",
    "/-/healthy",
    "/-/ready",
    "/-/reload",
    "/status",
    "/history",
];

/// `metrics.path`: a path of its own — not one of the other endpoints', which it would
/// hide (`/status` would break `peerscope status`, `/-/reload` the reloads).
pub(crate) fn metrics_path(text: &str) -> Result<String, String> {
    if ENDPOINTS.contains(&text) {
        return Err(format!("{text:?} is another endpoint's path"));
    }
    api_path(text)
}

/// `true` or `false`.
pub(crate) fn boolean(text: &str) -> Result<bool, String> {
    one_of(text, &[("true", true), ("false", false)])
}

/// A URL path: starts with `/`.
pub(crate) fn api_path(text: &str) -> Result<String, String> {
    match text.starts_with('/') {
        true => Ok(text.to_owned()),
        false => Err(format!("{text:?} must start with /")),
    }
}

/// A file or directory; present once a source names it.
pub(crate) fn path(text: &str) -> Result<PathBuf, String> {
    match text.is_empty() {
        true => Err("must not be empty".to_owned()),
        false => Ok(PathBuf::from(text)),
    }
}
