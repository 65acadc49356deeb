//! What comes from outside the process and must not be trusted to behave: files that an
//! operator (or anyone who can write to their directory) controls, and text that a peer
//! sends. Reading a file here never blocks the runtime, never reads without end and never
//! outlives its time limit; JSON from a peer may not repeat a key; text from a peer is
//! made printable before a log line or a terminal table shows it.

pub(crate) mod file;
pub(crate) mod json;
pub(crate) mod text;
