//! How a peer is reached, past plain HTTP and public-CA HTTPS: a CA bundle, a client
//! certificate (mTLS), a name to verify its certificate as, verification switched off
//! (loudly), and an `Authorization` header from a file. Set per peer in `[[peers]]` or for
//! every peer in `[pull]`; a peer's own setting wins, key by key.
//!
//! Everything is read and checked when the configuration loads, so a bad file is refused
//! by name while the configuration in force stays; the reloader watches these files'
//! directories, so a renewed certificate or a rotated credential is picked up (the file
//! contents are part of the configuration's identity, through a digest).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::pem::PemFiles;
use crate::outside::file::TOKEN_LIMIT;

/// What the configuration says of reaching one peer (or, in `[pull]`, every peer).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub(crate) struct PeerAccess {
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) cert_file: Option<PathBuf>,
    pub(crate) key_file: Option<PathBuf>,
    pub(crate) server_name: Option<String>,
    pub(crate) insecure_skip_verify: Option<bool>,
    pub(crate) authorization_type: Option<String>,
    pub(crate) authorization_credentials_file: Option<PathBuf>,
}

/// `server_name`: a DNS name or an IP address to verify peers' certificates as.
pub(crate) fn server_name(text: &str) -> Result<String, String> {
    ServerName::try_from(text.to_owned())
        .map_err(|_| format!("{text:?} is not a DNS name or an IP address"))?;
    Ok(text.to_owned())
}

/// `authorization_type`: an HTTP authorization scheme (`Bearer`).
pub(crate) fn authorization_type(text: &str) -> Result<String, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(format!(
            "{text:?} is not an authorization scheme (such as Bearer)"
        ));
    }
    Ok(text.to_owned())
}

/// `insecure_skip_verify`: `true` or `false`.
pub(crate) fn switch(text: &str) -> Result<bool, String> {
    match text {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{text:?} is neither true nor false")),
    }
}

impl PeerAccess {
    /// The files these settings name.
    pub(crate) fn files(&self) -> impl Iterator<Item = &PathBuf> {
        [
            &self.ca_file,
            &self.cert_file,
            &self.key_file,
            &self.authorization_credentials_file,
        ]
        .into_iter()
        .flatten()
    }

    /// These settings, with what they leave unset taken from `defaults`.
    pub(crate) fn over(&self, defaults: &PeerAccess) -> PeerAccess {
        PeerAccess {
            ca_file: self.ca_file.clone().or_else(|| defaults.ca_file.clone()),
            cert_file: self
                .cert_file
                .clone()
                .or_else(|| defaults.cert_file.clone()),
            key_file: self.key_file.clone().or_else(|| defaults.key_file.clone()),
            server_name: self
                .server_name
                .clone()
                .or_else(|| defaults.server_name.clone()),
            insecure_skip_verify: self.insecure_skip_verify.or(defaults.insecure_skip_verify),
            authorization_type: self
                .authorization_type
                .clone()
                .or_else(|| defaults.authorization_type.clone()),
            authorization_credentials_file: self
                .authorization_credentials_file
                .clone()
                .or_else(|| defaults.authorization_credentials_file.clone()),
        }
    }
}

/// [`PeerAccess`] made ready: the TLS client configuration and the header, built once.
#[derive(Clone, Default, serde::Serialize)]
pub(crate) struct Transport {
    #[serde(flatten)]
    pub(crate) access: PeerAccess,
    /// SHA-256 of every file read: changed contents are a changed configuration.
    pub(crate) files_sha256: Option<String>,
    /// `None`: the shared client (public roots, no client certificate).
    #[serde(skip)]
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    /// The `Authorization` header's value; never shown.
    #[serde(skip)]
    pub(crate) authorization: Option<hyper::header::HeaderValue>,
}

impl Transport {
    /// Plain HTTP or public-CA HTTPS, no header: nothing to show.
    pub(crate) fn is_plain(transport: &Arc<Transport>) -> bool {
        transport.access == PeerAccess::default()
    }

    fn identity(&self) -> (&PeerAccess, &Option<String>) {
        (&self.access, &self.files_sha256)
    }

    /// A short key telling transports apart (settings and file digest), for client caches.
    pub(crate) fn fingerprint(&self) -> String {
        format!("{:?}/{:?}", self.access, self.files_sha256)
    }
}

impl PartialEq for Transport {
    fn eq(&self, other: &Self) -> bool {
        self.identity() == other.identity()
    }
}
impl Eq for Transport {}
impl PartialOrd for Transport {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Transport {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.identity().cmp(&other.identity())
    }
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("access", &self.access)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

/// Reads what `access` names and builds the transport; the error names the key.
pub(crate) fn build(access: &PeerAccess) -> Result<Transport, String> {
    if *access == PeerAccess::default() {
        return Ok(Transport::default());
    }
    let mut files = PemFiles::default();
    let authorization = match &access.authorization_credentials_file {
        None if access.authorization_type.is_some() => {
            return Err("authorization_type needs authorization_credentials_file".to_owned());
        }
        None => None,
        Some(path) => {
            let bytes = files.read("authorization_credentials_file", path, TOKEN_LIMIT)?;
            let credentials = String::from_utf8(bytes)
                .map_err(|_| "authorization_credentials_file: not UTF-8 text".to_owned())?;
            // One trailing newline (as editors and `echo` write) is not part of it.
            let credentials = credentials.strip_suffix('\n').unwrap_or(&credentials);
            let credentials = credentials.strip_suffix('\r').unwrap_or(credentials);
            if credentials.is_empty() {
                return Err(format!(
                    "authorization_credentials_file {}: empty",
                    path.display()
                ));
            }
            let scheme = access.authorization_type.as_deref().unwrap_or("Bearer");
            let mut value = hyper::header::HeaderValue::from_str(&format!(
                "{scheme} {credentials}"
            ))
            .map_err(|_| {
                format!(
                    "authorization_credentials_file {}: holds characters a header cannot carry",
                    path.display()
                )
            })?;
            value.set_sensitive(true);
            Some(value)
        }
    };
    let needs_tls = access.ca_file.is_some()
        || access.cert_file.is_some()
        || access.key_file.is_some()
        || access.server_name.is_some()
        || access.insecure_skip_verify.is_some();
    let tls = if needs_tls {
        Some(Arc::new(client_config(access, &mut files)?))
    } else {
        None
    };
    let files_sha256 = Some(files.sha256());
    Ok(Transport {
        access: access.clone(),
        files_sha256,
        tls,
        authorization,
    })
}

fn client_config(
    access: &PeerAccess,
    files: &mut PemFiles,
) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // With verification off, the public roots only serve to check handshake signatures.
    let roots = match &access.ca_file {
        Some(path) if access.insecure_skip_verify != Some(true) => files.roots("ca_file", path)?,
        _ => rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    let webpki =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .build()
            .map_err(|e| format!("ca_file: {e}"))?;
    let check =
        if access.insecure_skip_verify == Some(true) {
            Check::Nothing
        } else {
            match &access.server_name {
                Some(name) => Check::As(ServerName::try_from(name.clone()).map_err(|_| {
                    format!("server_name {name:?} is not a DNS name or an IP address")
                })?),
                None => Check::UrlHost,
            }
        };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Verifier { check, webpki }));
    match (&access.cert_file, &access.key_file) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(cert_file), Some(key_file)) => {
            let certs = files.certificates("cert_file", cert_file)?;
            let key = files.private_key("key_file", key_file)?;
            builder.with_client_auth_cert(certs, key).map_err(|e| {
                format!(
                    "cert_file/key_file: the key does not fit the certificate, or is unusable: {e}"
                )
            })
        }
        _ => Err("cert_file and key_file go together (mTLS needs both)".to_owned()),
    }
}

/// What a peer's certificate is checked against.
#[derive(Debug)]
enum Check {
    /// The chain, and the host the URL names (what any HTTPS client does).
    UrlHost,
    /// The chain, and `server_name` — for peers reached by IP address or through a name
    /// their certificate does not carry.
    As(ServerName<'static>),
    /// Nothing (`insecure_skip_verify`): the connection is encrypted, to whoever answers.
    Nothing,
}

/// Checks certificates as [`Check`] says; the handshake's signatures are always checked.
#[derive(Debug)]
struct Verifier {
    check: Check,
    webpki: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        url_host: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let name = match &self.check {
            Check::Nothing => return Ok(ServerCertVerified::assertion()),
            Check::UrlHost => url_host,
            Check::As(name) => name,
        };
        self.webpki
            .verify_server_cert(end_entity, intermediates, name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peers_own_settings_win_key_by_key_and_bad_values_are_named() {
        let defaults = PeerAccess {
            ca_file: Some("/etc/ca.pem".into()),
            server_name: Some(server_name("nova.example").unwrap()),
            ..PeerAccess::default()
        };
        let own = PeerAccess {
            server_name: Some(server_name("nova-b.example").unwrap()),
            ..PeerAccess::default()
        };
        let merged = own.over(&defaults);
        assert_eq!(merged.ca_file, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(merged.server_name.as_deref(), Some("nova-b.example"));
        assert!(switch("yes").is_err());
        assert!(server_name("not a name").is_err());
        assert!(authorization_type("Bearer token").is_err());
        let unpaired = PeerAccess {
            cert_file: Some("/nonexistent.pem".into()),
            ..PeerAccess::default()
        };
        assert!(build(&unpaired).unwrap_err().contains("cert_file"));
        assert!(build(&PeerAccess::default()).unwrap().tls.is_none());
    }

    #[test]
    fn credentials_are_read_trimmed_of_one_newline_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret-token\n").unwrap();
        let access = PeerAccess {
            authorization_credentials_file: Some(path.clone()),
            ..PeerAccess::default()
        };
        let transport = build(&access).unwrap();
        assert_eq!(
            transport.authorization.as_ref().unwrap(),
            "Bearer s3cret-token"
        );
        assert!(transport.tls.is_none(), "a header needs no TLS settings");
        let shown = format!(
            "{transport:?} {}",
            serde_json::to_string(&transport).unwrap()
        );
        assert!(!shown.contains("s3cret"), "{shown}");
        std::fs::write(&path, "\n").unwrap();
        assert!(build(&access).unwrap_err().contains("empty"));
    }
}
