//! What a reload cannot apply: the keys that need a restart, compared with the values
//! they had when the process started.

use super::KEYS;
use crate::config::Config;

/// The values of the keys that need a restart, as a configuration had them: all a
/// reloader keeps of the configuration it started with (not the whole of it, which holds
/// every listed peer). A key's value is found at its dotted path in the configuration's
/// serialized form (a test holds every such path to exist).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RestartValues(Vec<(&'static str, Option<serde_json::Value>)>);

impl RestartValues {
    pub(crate) fn of(config: &Config) -> RestartValues {
        let serialized = serde_json::to_value(config).unwrap_or_default();
        RestartValues(
            KEYS.iter()
                .filter(|key| key.restart)
                .map(|key| (key.name, at_path(&serialized, key.name).cloned()))
                .collect(),
        )
    }
}

/// The keys that need a restart whose values differ between `old` and `new`: what a
/// reload from `old` to `new` cannot apply.
pub(crate) fn changed_restart_keys(old: &RestartValues, new: &Config) -> Vec<&'static str> {
    let new = RestartValues::of(new);
    old.0
        .iter()
        .zip(&new.0)
        .filter(|(old, new)| old != new)
        .map(|(old, _)| old.0)
        .collect()
}

/// The value at a dotted key path (`checkpoint.path`) of a serialized configuration.
pub(super) fn at_path<'v>(
    value: &'v serde_json::Value,
    path: &str,
) -> Option<&'v serde_json::Value> {
    path.split('.')
        .try_fold(value, |value, part| value.get(part))
}
