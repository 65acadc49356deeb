//! Pulling summaries: which peers this sidecar pulls (sampled observation), the payload
//! contract and its decoder, why a pull failed, and the poller that fetches one summary
//! over HTTP and hands back its outcome; the DNS resolver of discovery and of pulls of
//! discovered names.

pub mod assignment;
pub mod contract;
pub mod failure;
pub mod outcome;
pub(crate) mod poller;
pub(crate) mod resolver;
