//! Simulated nodes on loopback, and the two programs built on them: the `demo` and the
//! `bench` load run. Tests use the simulated nodes too.

pub mod bench;
pub mod demo;
pub mod federation;
pub mod node;
