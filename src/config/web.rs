//! The web configuration file (`--web.config.file`), in the format of the Prometheus
//! exporter-toolkit that node_exporter and blackbox_exporter read: TLS for the server
//! (with client certificates if asked) and HTTP basic auth with bcrypt hashes, for every
//! endpoint. It is loaded with the rest of the configuration, so a reload applies it and
//! a bad file (or certificate) is refused while the one in force stays.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt          # relative paths: from this file's directory
//!   key_file: server.key
//!   client_auth_type: RequireAndVerifyClientCert   # or NoClientCert, VerifyClientCertIfGiven
//!   client_ca_file: clients-ca.crt
//!   min_version: TLS12             # or TLS13
//! http_server_config:
//!   headers: {Strict-Transport-Security: max-age=31536000}
//! basic_auth_users:
//!   prometheus: $2y$10$...         # bcrypt, e.g. `htpasswd -nBC 10 prometheus`
//! ```
//!
//! What exporter-toolkit has and peerscope does not (refused by name, never ignored):
//! `cipher_suites`, `curve_preferences`, `prefer_server_cipher_suites`,
//! `client_allowed_sans`, TLS 1.0/1.1, and the client auth types that take a certificate
//! without verifying it. The server speaks HTTP/1.1 only, so `http2` is accepted and has
//! no effect.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::server::WebPkiClientVerifier;

use super::pem::PemFiles;
use super::ConfigError;
use crate::outside::file::{directory_of, read_text_bounded};
use crate::sync;

/// The largest web configuration file read, in bytes.
pub(crate) const FILE_LIMIT: u64 = 1 << 20;

/// The highest bcrypt cost accepted. Each step doubles the work: cost 10 takes ~60 ms of a
/// core here, 12 ~250 ms. A higher cost makes every client's first request slow and every
/// wrong password a lever on the CPU (cost 31 would take days, and shutdown would wait
/// for it); exporter-toolkit sets no cap, this is a deliberate difference.
pub(crate) const MAX_BCRYPT_COST: u32 = 12;

/// The web configuration in force: no TLS and no users when there is no file.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct WebConfig {
    pub(crate) tls: Option<TlsServer>,
    /// User → bcrypt hash. Only the names are ever shown.
    #[serde(rename = "basic_auth_users", serialize_with = "names_only")]
    pub users: BTreeMap<String, String>,
    /// Extra headers on every response (`http_server_config.headers`).
    pub(crate) headers: Vec<(String, String)>,
    /// Requests answered at most `burst` at once and one per `interval` after
    /// (`rate_limit`, as exporter-toolkit's); `None`: no limit.
    pub(crate) rate_limit: Option<RateLimit>,
}

/// `rate_limit`: a token bucket of `burst` requests, refilled one per `interval`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub(crate) struct RateLimit {
    pub(crate) burst: u32,
    #[serde(serialize_with = "seconds")]
    pub(crate) interval: std::time::Duration,
}

fn seconds<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// TLS for the server, ready to accept with.
#[derive(Clone, serde::Serialize)]
pub(crate) struct TlsServer {
    pub(crate) cert_file: PathBuf,
    pub(crate) key_file: PathBuf,
    pub(crate) client_ca_file: Option<PathBuf>,
    pub(crate) client_auth_type: ClientAuth,
    pub(crate) min_version: &'static str,
    pub(crate) max_version: &'static str,
    /// SHA-256 of the certificate, key and client CA files: a renewed certificate at the
    /// same path is a changed configuration (and reloads), without showing any of it.
    pub(crate) files_sha256: String,
    #[serde(skip)]
    pub(crate) server_config: Arc<rustls::ServerConfig>,
}

impl PartialEq for TlsServer {
    fn eq(&self, other: &Self) -> bool {
        // The rustls configuration is built from exactly these.
        (
            &self.cert_file,
            &self.key_file,
            &self.client_ca_file,
            self.client_auth_type,
            (self.min_version, self.max_version),
            &self.files_sha256,
        ) == (
            &other.cert_file,
            &other.key_file,
            &other.client_ca_file,
            other.client_auth_type,
            (other.min_version, other.max_version),
            &other.files_sha256,
        )
    }
}

impl fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsServer")
            .field("cert_file", &self.cert_file)
            .field("client_auth_type", &self.client_auth_type)
            .field("min_version", &self.min_version)
            .field("max_version", &self.max_version)
            .finish_non_exhaustive()
    }
}

/// Which client certificates the server asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub(crate) enum ClientAuth {
    NoClientCert,
    /// A certificate is optional, but one that is sent must verify against the client CA.
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

fn names_only<S: serde::Serializer>(
    users: &BTreeMap<String, String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(users.keys())
}

/// The web configuration in force, shared by the server (which reads it for every
/// connection and request) and the reloader (which replaces it).
#[derive(Clone, Default)]
pub(crate) struct WebSettings(Arc<RwLock<Arc<WebConfig>>>);

impl WebSettings {
    pub(crate) fn new(config: WebConfig) -> Self {
        WebSettings(Arc::new(RwLock::new(Arc::new(config))))
    }

    pub(crate) fn current(&self) -> Arc<WebConfig> {
        Arc::clone(&sync::read(&self.0))
    }

    pub(crate) fn replace(&self, config: WebConfig) {
        *sync::write(&self.0) = Arc::new(config);
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileText {
    tls_server_config: Option<TlsText>,
    http_server_config: Option<HttpText>,
    basic_auth_users: Option<BTreeMap<String, String>>,
    rate_limit: Option<RateLimitText>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitText {
    burst: Option<u32>,
    interval: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsText {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    client_ca_file: Option<PathBuf>,
    min_version: Option<String>,
    // Known to exporter-toolkit, not supported here: refused by name below.
    cipher_suites: Option<yaml_serde::Value>,
    curve_preferences: Option<yaml_serde::Value>,
    prefer_server_cipher_suites: Option<yaml_serde::Value>,
    max_version: Option<String>,
    client_allowed_sans: Option<yaml_serde::Value>,
    cert: Option<yaml_serde::Value>,
    key: Option<yaml_serde::Value>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpText {
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// Reads the web configuration file at `path` and everything it names; errors name the
/// file and the key.
pub(crate) fn read(path: &Path) -> Result<WebConfig, ConfigError> {
    let origin = path.display().to_string();
    let text = read_text_bounded(path, FILE_LIMIT)
        .map_err(|e| ConfigError::new(&origin, e.to_string()))?;
    parse(&text, directory_of(path)).map_err(|problem| ConfigError::new(&origin, problem))
}

/// Parses the file's text; relative paths in it are taken from `directory`.
pub fn parse(text: &str, directory: &Path) -> Result<WebConfig, String> {
    // An empty file is a valid one: plain HTTP, no users (as exporter-toolkit has it).
    let file: Option<FileText> = yaml_serde::from_str(text).map_err(|e| e.to_string())?;
    let Some(file) = file else {
        return Ok(WebConfig::default());
    };
    let mut config = WebConfig::default();
    if let Some(limit) = file.rate_limit {
        let interval = limit
            .interval
            .as_deref()
            .map(crate::config::duration::parse_duration)
            .transpose()
            .map_err(|e| format!("rate_limit.interval: {e}"))?
            .unwrap_or_default();
        // As exporter-toolkit: no interval, no limit; a burst of 0 answers nothing.
        if !interval.is_zero() {
            config.rate_limit = Some(RateLimit {
                burst: limit.burst.unwrap_or(0),
                interval,
            });
        }
    }
    if let Some(tls) = file.tls_server_config {
        config.tls = Some(tls_server(tls, directory)?);
    }
    for (user, hash) in file.basic_auth_users.unwrap_or_default() {
        if user.is_empty() || user.contains(':') {
            return Err(format!(
                "basic_auth_users: user {user:?} must be non-empty and without ':'"
            ));
        }
        let Ok(parts) = hash.parse::<bcrypt::HashParts>() else {
            return Err(format!(
                "basic_auth_users.{user}: not a bcrypt hash ($2a$, $2b$ or $2y$; e.g. from `htpasswd -nBC 10 {user}`)"
            ));
        };
        if parts.get_cost() > MAX_BCRYPT_COST {
            return Err(format!(
                "basic_auth_users.{user}: bcrypt cost {} is over {MAX_BCRYPT_COST}: each check would take over a quarter of a second of a core, for every client's first request and every wrong password (use `htpasswd -nBC 10 {user}`)",
                parts.get_cost()
            ));
        }
        config.users.insert(user, hash);
    }
    if let Some(http) = file.http_server_config {
        let _ = http.http2; // HTTP/1.1 only: either value is fine
        for (name, value) in http.headers.unwrap_or_default() {
            check_header(&name, &value)?;
            config.headers.push((name, value));
        }
    }
    Ok(config)
}

/// The headers `http_server_config.headers` may set, with their allowed values (`None`:
/// any): exporter-toolkit's list, so that one web config file means the same in every
/// Prometheus exporter — and so that no header a scraper depends on (`Content-Type`) can
/// be replaced.
const CONFIGURABLE_HEADERS: [(&str, Option<&[&str]>); 5] = [
    ("Strict-Transport-Security", None),
    ("X-Content-Type-Options", Some(&["nosniff"])),
    ("X-Frame-Options", Some(&["deny", "sameorigin"])),
    ("X-XSS-Protection", None),
    ("Content-Security-Policy", None),
];

fn check_header(name: &str, value: &str) -> Result<(), String> {
    let Some((_, allowed)) = CONFIGURABLE_HEADERS.iter().find(|(n, _)| *n == name) else {
        return Err(format!(
            "http_server_config.headers: HTTP header {name:?} can not be configured (only {})",
            CONFIGURABLE_HEADERS.map(|(n, _)| n).join(", ")
        ));
    };
    if let Some(allowed) = allowed.filter(|allowed| !allowed.contains(&value)) {
        return Err(format!(
            "http_server_config.headers: invalid value for {name}: expected one of {allowed:?}, got {value:?}"
        ));
    }
    if hyper::header::HeaderValue::from_str(value).is_err() {
        return Err(format!(
            "http_server_config.headers: {name}: {value:?} is not a valid header value"
        ));
    }
    Ok(())
}

/// A TLS version as exporter-toolkit names it, of those rustls speaks.
fn tls_version(field: &str, text: &str) -> Result<&'static str, String> {
    match text {
        "TLS12" => Ok("TLS12"),
        "TLS13" => Ok("TLS13"),
        "TLS10" | "TLS11" => Err(format!(
            "tls_server_config.{field} {text}: TLS 1.0 and 1.1 are not spoken here (rustls has neither); use TLS12 or TLS13"
        )),
        other => Err(format!(
            "tls_server_config.{field} {other:?} is neither TLS12 nor TLS13"
        )),
    }
}

fn tls_server(tls: TlsText, directory: &Path) -> Result<TlsServer, String> {
    for (name, given) in [
        ("cipher_suites", tls.cipher_suites.is_some()),
        ("curve_preferences", tls.curve_preferences.is_some()),
        (
            "prefer_server_cipher_suites",
            tls.prefer_server_cipher_suites.is_some(),
        ),
        ("client_allowed_sans", tls.client_allowed_sans.is_some()),
        ("cert", tls.cert.is_some()),
        ("key", tls.key.is_some()),
    ] {
        if given {
            return Err(format!(
                "tls_server_config.{name} is not supported by peerscope (rustls chooses the cipher suites and curves; certificates come from cert_file and key_file)"
            ));
        }
    }
    let within = |path: PathBuf| {
        if path.is_relative() {
            directory.join(path)
        } else {
            path
        }
    };
    let (Some(cert_file), Some(key_file)) = (tls.cert_file, tls.key_file) else {
        return Err("tls_server_config needs both cert_file and key_file".to_owned());
    };
    let (cert_file, key_file) = (within(cert_file), within(key_file));
    let client_ca_file = tls.client_ca_file.map(within);
    let client_auth_type = match tls.client_auth_type.as_deref().unwrap_or("NoClientCert") {
        "NoClientCert" => ClientAuth::NoClientCert,
        "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
        "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
        other @ ("RequestClientCert" | "RequireAnyClientCert") => {
            return Err(format!("tls_server_config.client_auth_type {other} takes a client certificate without verifying it; peerscope supports NoClientCert, VerifyClientCertIfGiven and RequireAndVerifyClientCert"));
        }
        other => {
            return Err(format!("tls_server_config.client_auth_type {other:?} is none of NoClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"));
        }
    };
    if client_ca_file.is_some() && client_auth_type == ClientAuth::NoClientCert {
        // exporter-toolkit refuses it too: the operator believes client certificates are
        // checked, and none is even asked for.
        return Err("tls_server_config.client_ca_file is set but client_auth_type is NoClientCert (the default): client certificates would not be asked for, let alone checked; set client_auth_type: RequireAndVerifyClientCert (or VerifyClientCertIfGiven)".to_owned());
    }
    // exporter-toolkit's defaults: TLS 1.2 to 1.3.
    let min_version = tls_version("min_version", tls.min_version.as_deref().unwrap_or("TLS12"))?;
    let max_version = tls_version("max_version", tls.max_version.as_deref().unwrap_or("TLS13"))?;
    let versions: &[&'static rustls::SupportedProtocolVersion] = match (min_version, max_version) {
        ("TLS12", "TLS13") => &[&rustls::version::TLS13, &rustls::version::TLS12],
        ("TLS12", "TLS12") => &[&rustls::version::TLS12],
        ("TLS13", "TLS13") => &[&rustls::version::TLS13],
        _ => {
            return Err(format!(
                "tls_server_config.min_version {min_version} is above max_version {max_version}"
            ))
        }
    };

    let mut files = PemFiles::default();
    let certs = files.certificates("tls_server_config.cert_file", &cert_file)?;
    let key = files.private_key("tls_server_config.key_file", &key_file)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .map_err(|e| format!("tls_server_config: {e}"))?;
    let builder = match client_auth_type {
        ClientAuth::NoClientCert => builder.with_no_client_auth(),
        verify => {
            let Some(ca_file) = &client_ca_file else {
                return Err(format!(
                    "tls_server_config.client_auth_type {verify:?} needs client_ca_file"
                ));
            };
            let roots = files.roots("tls_server_config.client_ca_file", ca_file)?;
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
            let verifier = if verify == ClientAuth::VerifyClientCertIfGiven {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier.build().map_err(|e| {
                format!(
                    "tls_server_config.client_ca_file {}: {e}",
                    ca_file.display()
                )
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut server_config = builder.with_single_cert(certs, key).map_err(|e| {
        format!("tls_server_config: the key does not fit the certificate, or is unusable: {e}")
    })?;
    server_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let files_sha256 = files.sha256();
    Ok(TlsServer {
        cert_file,
        key_file,
        client_ca_file,
        client_auth_type,
        min_version,
        max_version,
        files_sha256,
        server_config: Arc::new(server_config),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_plain_http_and_unknown_or_unsupported_keys_are_refused_by_name() {
        assert_eq!(parse("", Path::new(".")).unwrap(), WebConfig::default());
        let unknown = parse("tls_server_config:\n  cert_flie: x\n", Path::new(".")).unwrap_err();
        assert!(unknown.contains("cert_flie"), "{unknown}");
        let unsupported = parse(
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
            Path::new("."),
        )
        .unwrap_err();
        assert!(
            unsupported.contains("cipher_suites is not supported"),
            "{unsupported}"
        );
        let hash = parse("basic_auth_users:\n  alice: secret\n", Path::new(".")).unwrap_err();
        assert!(hash.contains("alice: not a bcrypt hash"), "{hash}");
    }

    /// Issue 18: refused as exporter-toolkit refuses them (they were accepted: a CA file
    /// without a client auth type left the operator believing mTLS was on; any header,
    /// `Content-Type` included, could be set).
    #[test]
    fn a_client_ca_without_client_auth_and_headers_exporter_toolkit_refuses_are_refused() {
        let tls = "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: ca\n";
        let refused = parse(tls, Path::new(".")).unwrap_err();
        assert!(
            refused.contains("client_ca_file is set but client_auth_type is NoClientCert"),
            "{refused}"
        );
        let explicit = format!("{tls}  client_auth_type: NoClientCert\n");
        assert!(parse(&explicit, Path::new(".")).is_err());
        let headers = |lines: &str| {
            parse(
                &format!("http_server_config:\n  headers:\n{lines}"),
                Path::new("."),
            )
        };
        let content_type = headers("    Content-Type: foo\n").unwrap_err();
        assert!(
            content_type.contains("HTTP header \"Content-Type\" can not be configured"),
            "{content_type}"
        );
        let frame = headers("    X-Frame-Options: allowall\n").unwrap_err();
        assert!(
            frame.contains("invalid value for X-Frame-Options"),
            "{frame}"
        );
        let sniff = headers("    X-Content-Type-Options: sniff\n").unwrap_err();
        assert!(sniff.contains("expected one of [\"nosniff\"]"), "{sniff}");
        let good = headers(
            "    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n    Content-Security-Policy: default-src 'self'\n",
        )
        .unwrap();
        assert_eq!(good.headers.len(), 3);
    }

    /// Issue 18: `max_version` (exporter-toolkit's) was refused as unsupported.
    #[test]
    fn max_version_bounds_the_versions_and_must_not_be_below_min_version() {
        let tls = |versions: &str| {
            parse(
                &format!("tls_server_config:\n  cert_file: missing.pem\n  key_file: missing.key\n{versions}"),
                Path::new("."),
            )
            .unwrap_err()
        };
        // Accepted: the load goes on to read the (missing) certificate.
        for accepted in [
            "  max_version: TLS12\n",
            "  min_version: TLS13\n  max_version: TLS13\n",
        ] {
            let error = tls(accepted);
            assert!(error.contains("cert_file"), "{accepted}: {error}");
        }
        let inverted = tls("  min_version: TLS13\n  max_version: TLS12\n");
        assert!(
            inverted.contains("min_version TLS13 is above max_version TLS12"),
            "{inverted}"
        );
        let old = tls("  max_version: TLS11\n");
        assert!(old.contains("TLS 1.0 and 1.1 are not spoken here"), "{old}");
    }

    #[test]
    fn users_show_only_their_names() {
        let costly = "$2b$13$abcdefghijklmnopqrstuu5Ylt1ZKQmMUDCJcLSiWAD1.CfbVQ2Rq";
        let refused = parse(
            &format!("basic_auth_users:\n  bob: {costly}\n"),
            Path::new("."),
        )
        .unwrap_err();
        assert!(
            refused.contains("bob: bcrypt cost 13 is over 12"),
            "{refused}"
        );
        let hash = bcrypt::hash("secret", 4).unwrap();
        let config = parse(
            &format!("basic_auth_users:\n  alice: {hash}\n"),
            Path::new("."),
        )
        .unwrap();
        let shown = serde_json::to_string(&config).unwrap();
        assert_eq!(
            shown,
            r#"{"tls":null,"basic_auth_users":["alice"],"headers":[],"rate_limit":null}"#
        );
    }
}
