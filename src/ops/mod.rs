//! Running for months: hot reload, checkpoints, logging, signals, and the counters and
//! status of those operations.

pub mod checkpoint;
mod log_file;
mod log_format;
pub mod logging;
pub(crate) mod operations;
pub(crate) mod reload;
pub mod shutdown;
