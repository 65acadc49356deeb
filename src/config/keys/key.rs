//! What a configuration key is: its name, flag, variables, default and parser — the
//! shape of each entry of the table in `keys.rs` — and the flags' earlier spellings.

use std::path::PathBuf;

use super::super::Config;

/// One configuration key.
pub struct Key {
    /// As written in the file; dotted for sections (`reconcile.mode`).
    pub name: &'static str,
    /// The command-line flag without its dashes (`live-max-age`), if the key has one.
    pub flag: Option<&'static str>,
    /// The seed system's variables that stand in for the key, below the file in precedence.
    pub(crate) seed_variables: &'static [&'static str],
    pub default: DefaultValue,
    /// A reload leaves it as it was: it takes effect at the next restart (the reloader
    /// warns, naming it, when it changed).
    pub(crate) restart: bool,
    /// One line for docs/configuration.md and `--help`.
    pub doc: &'static str,
    pub value: Value,
}

/// A key's value when no source sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultValue {
    /// No source set it: `load` refuses the configuration.
    Required,
    /// Absent: the feature it configures is off.
    Absent,
    /// This text, parsed like any other source's.
    Text(&'static str),
}

/// How a key's text becomes part of a [`Config`].
#[derive(Clone, Copy)]
pub enum Value {
    /// Parses the text and writes it into the configuration; `Err` says what is wrong.
    Scalar(fn(&mut Config, &str) -> Result<(), String>),
    /// A file or directory path. A relative one given in the configuration file is taken
    /// from the file's directory (as Prometheus does with `file_sd`); from a flag or a
    /// variable, from the working directory.
    Path(fn(&mut Config, PathBuf)),
    /// A list: comma-separated in a variable or the file (or a TOML array), the flag repeats.
    List(fn(&mut Config, &str) -> Result<(), String>),
    /// The peer list: comma-separated `[NAME=]URL` in variables, repeated `--peer`,
    /// `[[peers]]` tables in the file. The whole list comes from the highest source.
    PeerList,
}

impl Key {
    /// Parses `text` and writes the key's value into `config`; `Err` says what is wrong.
    /// The peer list is set whole by the loader, never through here.
    pub(crate) fn apply(&self, config: &mut Config, text: &str) -> Result<(), String> {
        match self.value {
            Value::Scalar(set) | Value::List(set) => set(config, text),
            Value::Path(set) => crate::config::parse::path(text).map(|path| set(config, path)),
            Value::PeerList => Err("the peer list is not a single value".to_owned()),
        }
    }
}

/// The environment variable of a key: `PEERSCOPE_` + the key path in upper snake case.
pub fn env_variable(name: &str) -> String {
    format!("PEERSCOPE_{}", name.replace('.', "_").to_uppercase())
}

/// Flags' earlier spellings, still accepted (hidden from `--help`) since the flags took
/// node_exporter's names, so that nothing deployed breaks: (key, earlier flag).
pub const EARLIER_FLAGS: [(&str, &str); 3] = [
    ("listen", "listen"),
    ("log_level", "log-level"),
    ("log_format", "log-format"),
];
