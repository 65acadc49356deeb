//! peerscope: an observability sidecar and Prometheus exporter for a federation of nodes.
//!
//! One peerscope runs beside each node. Every `interval` it pulls the summary of its node
//! and of every peer, keeps a rolling window per peer, computes quality, novelty and state
//! divergence, exports it all at `/metrics`, and — the one way it acts — asks its node to
//! reconcile when the node has fallen behind a quorum of its peers.
//!
//! # Layout, in reading order
//! Each folder is one concern; a module imports only from folders above it in this list
//! (a test in `tests/layout.rs` holds that), so the crate reads top to bottom.
//! - [`timeline`]: monotonic ↔ wall-clock time, used by everything below.
//! - [`sync`]: locks that stay usable after a panic, used by everything below.
//! - [`outside`]: files and peer text that must not be trusted — bounded reads off the
//!   runtime, printable text for logs and terminals.
//! - [`config`]: the table of configuration keys, where values come from, how they are checked.
//! - [`pull`]: one pull of a summary over HTTP — the contract, its failures, its outcome.
//! - [`figures`]: windows and the figures computed from them, as pure functions, and the
//!   decision whether to reconcile.
//! - [`store`]: the one shared store of what is known, built first and passed to every task.
//! - [`discover`]: the discovery loop — DNS and http_sd sources looked up every refresh.
//! - [`cycle`]: the poll loop that pulls everything every interval.
//! - [`act`]: the reconciler — pure guards, the HTTP client, the actor loop.
//! - [`ops`]: running for months — reload, checkpoints, logs, signals, their counters.
//! - [`serve`]: the HTTP surface — the metric families, `/metrics`, `/status` and the rest.
//! - [`sidecar`]: the pieces assembled.

//! # The public API
//! Items are `pub(crate)` unless something outside the crate needs them; what is `pub` is
//! what these need, and nothing else:
//! - the `peerscope` binary (`src/main.rs`): [`config`] loading and its key table,
//!   [`sidecar::run`], logging and signals from [`ops`], the `status` table from [`serve`];
//! - the lab (`lab/`, the `peerscope-lab` crate): the summary contract's path, the
//!   reconciliation decision's facts, guards and sequential test (its simulation runs the
//!   real decision code), the checkpoint format (the fault campaign corrupts it);
//! - the integration tests (`tests/`), the fuzz targets (`fuzz/`: the five parsers that
//!   take outside input) and the benchmark (`benches/`: the exposition).
//!
//! The compiler holds this: a `pub` item nothing outside uses stays reachable, but a
//! `pub(crate)` item nothing inside uses is a dead-code error under `-D warnings`.

#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod outside;
pub mod sync;
pub mod timeline;

pub mod config;
pub mod pull;

pub mod figures;
pub mod store;

pub mod discover;

pub mod cycle;

pub mod act;
pub mod ops;
pub mod serve;

pub mod sidecar;
