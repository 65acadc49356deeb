//! The HTTP client of the node's reconciliation API: sends one request, with its
//! idempotency key and bearer token, and classifies the node's answer.

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::Url;

use crate::config::ReconcileConfig;
use crate::outside::file::read_token;
use crate::pull::failure::innermost_cause;

use super::guards::{Answer, Outgoing, RequestFailure};

/// Builds the client: no redirects, no proxies (a sidecar talks to its own node directly).
pub(crate) fn build() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
}

/// Sends one request to the node and classifies its answer.
pub(crate) async fn send(
    client: &reqwest::Client,
    url: Url,
    config: &ReconcileConfig,
    outgoing: &Outgoing,
) -> Answer {
    let mut request = client
        .post(url)
        .timeout(config.timeout)
        .header(CONTENT_TYPE, "application/json")
        .header("Idempotency-Key", &outgoing.request_id)
        .body(outgoing.body.to_string());
    if let Some(path) = &config.token_file {
        // Re-read at every request so a rotated token is used at once. The token itself
        // is never logged: only the file's path appears in errors.
        match read_token(path).await {
            Ok(token) => request = request.header(AUTHORIZATION, format!("Bearer {token}")),
            Err(error) => return Answer::Failed(RequestFailure::TokenFile, error),
        }
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            match status.as_u16() {
                200..=299 => Answer::Accepted(status.as_u16()),
                409 => Answer::AlreadyRunning,
                400..=499 => Answer::Failed(RequestFailure::Rejected, format!("answered {status}")),
                _ => Answer::Failed(RequestFailure::HttpStatus, format!("answered {status}")),
            }
        }
        Err(error) if error.is_timeout() => Answer::Failed(
            RequestFailure::Timeout,
            format!("no answer within {:?}", config.timeout),
        ),
        Err(error) => Answer::Failed(RequestFailure::Connect, innermost_cause(&error).to_string()),
    }
}

/// `{node}{path}`, keeping the node's own path prefix.
pub(crate) fn api_url(node: &Url, path: &str) -> Url {
    let mut url = node.clone();
    url.set_path(&format!("{}{path}", node.path().trim_end_matches('/')));
    url
}
