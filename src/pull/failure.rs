//! Why a pull failed: the closed set of reasons of SPEC §5, each counted exactly once.

use std::fmt;

use crate::outside::text::printable;

/// The reason a pull of a summary failed. Every failed pull has exactly one.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// The pull did not complete within `timeout` (headers or body).
    Timeout,
    /// The TCP connection could not be made, or broke before a whole answer arrived.
    Connect,
    /// The TLS handshake failed: the certificate did not verify (unknown CA, wrong name,
    /// expired), or the peer refused ours (mTLS).
    Tls,
    /// The node answered with a status other than 2xx (and not a redirect).
    HttpStatus,
    /// The node answered with a redirect; redirects are never followed.
    Redirect,
    /// The body was larger than the limit (enforced while streaming).
    BodyTooLarge,
    /// The body was not JSON (or had NaN/Infinity literals, or nested too deep).
    Decode,
    /// Valid JSON that breaks the contract `peer_sync_payload@1`.
    Schema,
    /// `schema_version` is not a major version this build understands.
    UnsupportedVersion,
    /// The peer is the local node itself, or another URL already reports its `node_id`.
    Identity,
}

impl FailureReason {
    /// Every reason, in the order they are exported.
    pub const ALL: [FailureReason; 10] = [
        FailureReason::Timeout,
        FailureReason::Connect,
        FailureReason::Tls,
        FailureReason::HttpStatus,
        FailureReason::Redirect,
        FailureReason::BodyTooLarge,
        FailureReason::Decode,
        FailureReason::Schema,
        FailureReason::UnsupportedVersion,
        FailureReason::Identity,
    ];

    /// The value of the `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Timeout => "timeout",
            FailureReason::Connect => "connect",
            FailureReason::Tls => "tls",
            FailureReason::HttpStatus => "http_status",
            FailureReason::Redirect => "redirect",
            FailureReason::BodyTooLarge => "body_too_large",
            FailureReason::Decode => "decode",
            FailureReason::Schema => "schema",
            FailureReason::UnsupportedVersion => "unsupported_version",
            FailureReason::Identity => "identity",
        }
    }

    /// Position in [`FailureReason::ALL`], used to index per-reason counters.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed pull: its reason and a short human-readable detail.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct PullError {
    pub reason: FailureReason,
    pub(crate) detail: String,
}

impl PullError {
    /// The detail may quote what a peer sent (a field name, a status line): it is made
    /// printable here, once, for every log line, `/status` entry and table that shows it.
    pub fn new(reason: FailureReason, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        let detail = match printable(&detail) {
            std::borrow::Cow::Borrowed(_) => detail,
            std::borrow::Cow::Owned(escaped) => escaped,
        };
        PullError { reason, detail }
    }
}

/// The innermost cause of an error: the informative one ("Connection refused (os error
/// 111)") under the wrappers an HTTP client adds.
pub(crate) fn innermost_cause<'e>(
    error: &'e (dyn std::error::Error + 'static),
) -> &'e (dyn std::error::Error + 'static) {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_matches_position_in_all() {
        for (position, reason) in FailureReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), position, "{reason}");
        }
    }
}
