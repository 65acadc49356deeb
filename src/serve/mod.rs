//! The sidecar's HTTP surface: the table of metric families, the exposition rendered from
//! it, the server and its endpoints, the page for people, who may reach them (TLS, basic auth), and the human
//! table of `/status`.

pub(crate) mod access;
pub(crate) mod basic_auth;
pub(crate) mod connections;
pub mod exposition;
pub mod families;
pub(crate) mod page;
pub mod process;
pub(crate) mod rate_limit;
pub(crate) mod refusals;
pub(crate) mod scrape;
pub(crate) mod server;
pub(crate) mod stall;
pub mod status_table;
