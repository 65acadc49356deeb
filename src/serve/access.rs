//! Who may talk to the server, from the web configuration in force
//! ([`crate::config::web`]): TLS (and client certificates) for each connection; basic
//! auth for each request, on every endpoint, is `basic_auth.rs`; no state change from a
//! page of another site.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_util::either::Either;

use crate::config::web::TlsServer;

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

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

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
}
