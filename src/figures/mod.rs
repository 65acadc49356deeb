//! What peerscope computes: rolling windows and histograms of pulls, the figures of SPEC §4
//! (quality, novelty, divergence) as pure functions, the reconciliation decision (pure),
//! and the `view::View` snapshot that `/metrics` and `/status` are made from.
//! No I/O and no clock reads here: `now` always comes in.

pub mod confirmation;
pub mod decision;
pub mod divergence;
pub(crate) mod histogram;
pub(crate) mod scoring;
pub(crate) mod view;
pub mod window;
