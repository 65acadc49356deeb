//! Who may talk to the server, from the web configuration in force
//! ([`crate::config::web`]): TLS (and client certificates) for each connection, basic
//! auth for each request, on every endpoint.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use hyper::header::HeaderValue;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_util::either::Either;

use crate::config::web::TlsServer;
use crate::sync;

/// One client connection: plain, or TLS once the handshake is done.
pub(crate) type Stream = Either<TcpStream, TlsStream<TcpStream>>;

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;
/// What a plain-HTTP client gets on a TLS port (the same words as Go's servers, so
/// operators recognise it), instead of a handshake error it cannot read.
const PLAIN_ON_TLS: &[u8] = b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// TLS on `stream` as `tls` says, after a handshake that must finish within
/// `time_limit`. `Err` says why the connection was closed.
pub(crate) async fn handshake(
    stream: TcpStream,
    tls: &TlsServer,
    time_limit: Duration,
) -> Result<Stream, String> {
    let handshake = async {
        let mut first = [0u8; 1];
        let mut stream = stream;
        let read = stream.peek(&mut first).await.map_err(|e| e.to_string())?;
        if read == 1 && first[0] != TLS_HANDSHAKE {
            let _ = stream.write_all(PLAIN_ON_TLS).await;
            let _ = stream.shutdown().await;
            return Err("plain HTTP on the TLS port: answered 400".to_owned());
        }
        tokio_rustls::TlsAcceptor::from(tls.server_config.clone())
            .accept(stream)
            .await
            .map_err(|e| format!("TLS handshake failed: {e}"))
    };
    match tokio::time::timeout(time_limit, handshake).await {
        Ok(result) => result.map(Either::Right),
        Err(_) => Err(format!("no TLS handshake within {time_limit:?}")),
    }
}

/// Checks HTTP basic auth against bcrypt hashes. bcrypt is slow on purpose (tens of
/// milliseconds a check): a password once verified is remembered by a digest of user,
/// password and hash, so a scraper or the page pays once, not at every request.
pub(crate) struct BasicAuth {
    verified: Mutex<HashSet<[u8; 32]>>,
    /// At most this many bcrypt checks at a time: clients with wrong passwords cannot
    /// take every core.
    checking: tokio::sync::Semaphore,
}

/// Remembered verifications are forgotten all at once beyond this many.
const REMEMBERED: usize = 1024;

impl Default for BasicAuth {
    fn default() -> Self {
        BasicAuth {
            verified: Mutex::default(),
            checking: tokio::sync::Semaphore::new(2),
        }
    }
}

impl BasicAuth {
    /// Whether `header` (`Authorization`) names one of `users` with its password.
    pub(crate) async fn allows(
        &self,
        users: &BTreeMap<String, String>,
        header: Option<&HeaderValue>,
    ) -> bool {
        let Some((user, password)) = header.and_then(credentials) else {
            return false;
        };
        let Some(hash) = users.get(&user) else {
            return false;
        };
        let key = digest(&user, &password, hash);
        if self.remembered().contains(&key) {
            return true;
        }
        let Ok(_permit) = self.checking.acquire().await else {
            return false;
        };
        let hash = hash.clone();
        let matches = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .is_ok_and(|verified| verified.unwrap_or(false));
        if matches {
            let mut remembered = self.remembered();
            if remembered.len() >= REMEMBERED {
                remembered.clear();
            }
            remembered.insert(key);
        }
        matches
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        sync::lock(&self.verified)
    }
}

/// Whether a browser sent this request from a page of another site. Any web page can
/// make a browser `POST` to loopback (a form, or `fetch` with `text/plain`, needs no
/// preflight), so a state-changing endpoint refuses such requests. The rule is Go's
/// `net/http.CrossOriginProtection`: `Sec-Fetch-Site` when the browser sends it (only
/// `same-origin` and `none` — typed by the user — pass), else an `Origin` whose host is
/// not the `Host` asked for. Clients that are not browsers send neither and pass.
pub(crate) fn is_cross_site(headers: &hyper::HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(hyper::header::ORIGIN) else {
        return false;
    };
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|origin| origin.split_once("://"))
        .map(|(_, host)| host);
    let host = headers
        .get(hyper::header::HOST)
        .and_then(|host| host.to_str().ok());
    match (origin_host, host) {
        (Some(origin), Some(host)) => !origin.eq_ignore_ascii_case(host),
        // `Origin: null` (a sandboxed page, a redirect) or no Host: not provably ours.
        _ => true,
    }
}

/// (user, password) from `Basic <base64 user:password>`.
fn credentials(header: &HeaderValue) -> Option<(String, String)> {
    let encoded = header.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn digest(user: &str, password: &str, hash: &str) -> [u8; 32] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [user, password, hash] {
        context.update(&(part.len() as u64).to_le_bytes());
        context.update(part.as_bytes());
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(context.finish().as_ref());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> HeaderValue {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    #[test]
    fn requests_from_pages_of_other_sites_are_cross_site() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = hyper::HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            map
        };
        // curl, Prometheus, scripts: no browser headers.
        assert!(!is_cross_site(&headers(&[("host", "127.0.0.1:9478")])));
        assert!(!is_cross_site(&headers(&[
            ("host", "127.0.0.1:9478"),
            ("origin", "http://127.0.0.1:9478")
        ])));
        assert!(is_cross_site(&headers(&[
            ("host", "127.0.0.1:9478"),
            ("origin", "https://evil.example")
        ])));
        assert!(is_cross_site(&headers(&[
            ("host", "127.0.0.1:9478"),
            ("origin", "null")
        ])));
        assert!(!is_cross_site(&headers(&[(
            "sec-fetch-site",
            "same-origin"
        )])));
        assert!(!is_cross_site(&headers(&[("sec-fetch-site", "none")])));
        for site in ["cross-site", "same-site"] {
            assert!(is_cross_site(&headers(&[
                ("sec-fetch-site", site),
                ("host", "127.0.0.1:9478"),
                ("origin", "http://127.0.0.1:9478")
            ])));
        }
    }

    #[tokio::test]
    async fn only_the_right_password_of_a_known_user_passes_and_is_remembered() {
        let users = BTreeMap::from([("alice".to_owned(), bcrypt::hash("s3cret", 4).unwrap())]);
        let auth = BasicAuth::default();
        assert!(!auth.allows(&users, None).await);
        assert!(!auth.allows(&users, Some(&basic("alice", "wrong"))).await);
        assert!(!auth.allows(&users, Some(&basic("bob", "s3cret"))).await);
        assert!(
            !auth
                .allows(&users, Some(&HeaderValue::from_static("Bearer s3cret")))
                .await
        );
        assert!(auth.remembered().is_empty(), "failures are not remembered");
        assert!(auth.allows(&users, Some(&basic("alice", "s3cret"))).await);
        assert_eq!(auth.remembered().len(), 1);
        assert!(auth.allows(&users, Some(&basic("alice", "s3cret"))).await);
        // A changed hash (a reload) does not match what was remembered for the old one.
        let changed = BTreeMap::from([("alice".to_owned(), bcrypt::hash("other", 4).unwrap())]);
        assert!(!auth.allows(&changed, Some(&basic("alice", "s3cret"))).await);
    }
}
