//! The TOML configuration file, read into (key, text) pairs for the loader. Sections are
//! flattened into dotted keys (`[reconcile] mode` → `reconcile.mode`); the key table says
//! which keys exist, so an unknown key is refused with its name.

use std::path::Path;

use super::discovery::{self, DnsSource};
use super::keys::{self, Value};
use super::load::PeerList;
use super::parse::base_url;
use super::{Config, ConfigError, PeerConfig};
use crate::outside::file::{directory_of, read_text_bounded};

/// What the file sets.
#[derive(Default)]
pub(crate) struct FileValues {
    /// Scalar keys as (key, text), in file order.
    pub(crate) scalars: Vec<(&'static str, String)>,
    /// The `[[peers]]` tables, if the file has any.
    pub(crate) peers: Option<PeerList>,
}

/// The largest configuration file read, in bytes.
pub(crate) const FILE_LIMIT: u64 = 1 << 20;

/// Reads and parses the file at `path` (a regular file of at most [`FILE_LIMIT`] bytes);
/// errors name the file.
pub(crate) fn read(path: &Path) -> Result<FileValues, ConfigError> {
    let origin = path.display().to_string();
    let text = read_text_bounded(path, FILE_LIMIT)
        .map_err(|e| ConfigError::new(&origin, e.to_string()))?;
    parse(&text, &origin, directory_of(path))
}

/// Parses a configuration file's text; `origin` names it in errors, and relative paths
/// in it are taken from `directory` (the file's own).
pub(crate) fn parse(text: &str, origin: &str, directory: &Path) -> Result<FileValues, ConfigError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigError::new(origin, e.to_string().trim_end()))?;
    let mut values = FileValues::default();
    for (name, value) in &table {
        let is_section = keys::KEYS.iter().any(|k| {
            k.name
                .strip_prefix(name.as_str())
                .is_some_and(|r| r.starts_with('.'))
        });
        match value {
            toml::Value::Table(section) if is_section => {
                for (inner, value) in section {
                    add(
                        &mut values,
                        &format!("{name}.{inner}"),
                        value,
                        origin,
                        directory,
                    )?;
                }
            }
            _ if is_section => {
                return Err(ConfigError::new(
                    origin,
                    format!("{name}: has the wrong type (a [{name}] section)"),
                ))
            }
            _ => add(&mut values, name, value, origin, directory)?,
        }
    }
    Ok(values)
}

fn add(
    values: &mut FileValues,
    name: &str,
    value: &toml::Value,
    origin: &str,
    directory: &Path,
) -> Result<(), ConfigError> {
    let key = keys::find(name)
        .ok_or_else(|| ConfigError::new(origin, format!("unknown key `{name}`")))?;
    match key.value {
        Value::PeerList => {
            let toml::Value::Array(entries) = value else {
                return Err(ConfigError::new(
                    origin,
                    format!("{name}: must be [[{name}]] tables"),
                ));
            };
            let mut list: PeerList = (Vec::new(), Vec::new());
            for (index, entry) in entries.iter().enumerate() {
                if let Some(source) = dns_entry(entry, index, origin)? {
                    list.1.push(source);
                } else {
                    list.0.push(peer_entry(entry, index, origin, directory)?);
                }
            }
            values.peers = Some(list);
        }
        Value::Scalar(_) => values
            .scalars
            .push((key.name, scalar_text(value, name, origin)?)),
        Value::List(_) => {
            let text = match value {
                toml::Value::Array(items) => items
                    .iter()
                    .map(|item| scalar_text(item, name, origin))
                    .collect::<Result<Vec<_>, _>>()?
                    .join(","),
                other => scalar_text(other, name, origin)?,
            };
            values.scalars.push((key.name, text));
        }
        Value::Path(_) => {
            let text = scalar_text(value, name, origin)?;
            values.scalars.push((key.name, within(directory, text)));
        }
    }
    Ok(())
}

/// A path written in the file: relative ones are taken from the file's directory.
fn within(directory: &Path, text: String) -> String {
    match Path::new(&text) {
        relative if !text.is_empty() && relative.is_relative() => {
            directory.join(relative).display().to_string()
        }
        _ => text,
    }
}

/// A `[[peers]]` table whose `url` is a `dns+` or `dnssrv+` address: a DNS source. Its
/// members are reached as `[pull]` says, so the table takes no other key.
fn dns_entry(
    entry: &toml::Value,
    index: usize,
    origin: &str,
) -> Result<Option<DnsSource>, ConfigError> {
    let at = format!("peers[{index}]");
    let Some(source) = entry
        .get("url")
        .and_then(toml::Value::as_str)
        .and_then(discovery::dns_source)
    else {
        return Ok(None);
    };
    let source = source.map_err(|p| ConfigError::new(origin, format!("{at}.url: {p}")))?;
    if let Some(other) = entry
        .as_table()
        .and_then(|table| table.keys().find(|key| *key != "url"))
    {
        return Err(ConfigError::new(
            origin,
            format!("{at}.{other}: a dns+ or dnssrv+ address takes no other key (its members are reached as [pull] says)"),
        ));
    }
    Ok(Some(source))
}

fn peer_entry(
    entry: &toml::Value,
    index: usize,
    origin: &str,
    directory: &Path,
) -> Result<PeerConfig, ConfigError> {
    let at = format!("peers[{index}]");
    let table = entry
        .as_table()
        .ok_or_else(|| ConfigError::new(origin, format!("{at}: must be a table with `url`")))?;
    let mut url = None;
    let mut name = None;
    // A table's access keys are the `pull.*` keys of the key table, for this peer alone:
    // they are applied to a configuration of their own, whose `pull` is the peer's.
    let mut own = Config::unset();
    for (key, value) in table {
        if let Some(access_key) = keys::find(&format!("pull.{key}")) {
            let mut text = scalar_text(value, &format!("{at}.{key}"), origin)?;
            if matches!(access_key.value, Value::Path(_)) {
                text = within(directory, text);
            }
            access_key
                .apply(&mut own, &text)
                .map_err(|p| ConfigError::new(origin, format!("{at}.{key}: {p}")))?;
            continue;
        }
        let text = value
            .as_str()
            .ok_or_else(|| ConfigError::new(origin, format!("{at}.{key}: must be a string")))?;
        match key.as_str() {
            "url" => {
                let parsed = base_url(text)
                    .map_err(|p| ConfigError::new(origin, format!("{at}.url: {p}")))?;
                url = Some(parsed);
            }
            "name" if text.trim().is_empty() => {
                return Err(ConfigError::new(
                    origin,
                    format!("{at}.name: must not be empty"),
                ))
            }
            "name" => name = Some(text.to_owned()),
            _ => {
                return Err(ConfigError::new(
                    origin,
                    format!("{at}: unknown key `{key}`"),
                ))
            }
        }
    }
    let url = url.ok_or_else(|| ConfigError::new(origin, format!("{at}.url: is required")))?;
    Ok(PeerConfig {
        access: Some(Box::new(own.pull)),
        ..PeerConfig::new(url, name)
    })
}

/// A scalar as the text every other source would give.
fn scalar_text(value: &toml::Value, key: &str, origin: &str) -> Result<String, ConfigError> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        _ => Err(ConfigError::new(
            origin,
            format!("{key}: must be a string or a number"),
        )),
    }
}
