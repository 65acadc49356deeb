//! peerscope: an observability sidecar and Prometheus exporter for a federation of nodes.
//!
//! One peerscope runs beside each node. Every `interval` it pulls the summary of its node
//! and of every peer, keeps a rolling window per peer, computes quality, novelty and state
//! divergence, exports it all at `/metrics`, and — the one way it acts — asks its node to
//! reconcile when the node has fallen behind a quorum of its peers.
//!
//! # Layout, in reading order
//! - [`config`]: where the settings come from and how they are checked; [`duration`] parses durations.
//! - [`contract`]: the summary payload and its decoder; [`failure`]: why a pull failed.
//! - [`poller`]: one pull over HTTP; [`cycle`]: the poll loop that runs them every interval.
//! - [`store`]: the one shared store of what is known; [`window`] and [`histogram`] hold samples.
//! - [`scoring`] and [`divergence`]: the figures, as pure functions; [`view`]: a snapshot of them.
//! - [`decision`]: whether to ask the node to reconcile (pure); [`reconciler`]: the guarded actor.
//! - [`exposition`] (`/metrics`) and [`server`] (every endpoint).
//! - [`reload`] (hot reload), [`checkpoint`] (state across restarts), [`operations`] (their
//!   counters), [`timeline`] (monotonic ↔ wall clock).
//! - [`sidecar`]: the pieces assembled; [`shutdown`]: signals; [`logging`].
//! - [`simulation`]: simulated nodes for [`demo`], [`bench`] and the tests;
//!   [`status_table`]: the human view of `/status`.

#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod contract;
pub mod cycle;
pub mod decision;
pub mod demo;
pub mod divergence;
pub mod duration;
pub mod exposition;
pub mod failure;
pub mod histogram;
pub mod logging;
pub mod operations;
pub mod poller;
pub mod reconciler;
pub mod reload;
pub mod scoring;
pub mod server;
pub mod shutdown;
pub mod sidecar;
pub mod simulation;
pub mod status_table;
pub mod store;
pub mod timeline;
pub mod view;
pub mod window;
