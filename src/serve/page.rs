//! The page for people at `/`, with its script and style as files of their own
//! (`page.js`, `page.css`, embedded in the binary), served with headers that keep it safe
//! to open: a Content-Security-Policy that allows only this origin's script, style and
//! fetches, no framing, no content sniffing. No script or style is inline, so an
//! operator's stricter policy (web config `http_server_config.headers`) still lets it run.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY, X_FRAME_OPTIONS};
use hyper::{Response, StatusCode};

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("page.js");
const STYLE: &str = include_str!("page.css");

/// Only this origin's script, style and fetches; the favicon is an empty `data:` URL.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// The page (`/`) or one of its files, by path; `None` for any other path.
pub(crate) fn serve(path: &str) -> Option<Response<Full<Bytes>>> {
    let (body, content_type) = match path {
        "/" => (PAGE, "text/html; charset=utf-8"),
        "/page.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "/page.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return None,
    };
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    Some(response)
}
