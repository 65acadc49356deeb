//! Unit tests of `keys`.

use super::*;
use crate::config::{Config, Sources};

fn load(flags: &[(&'static str, &str)]) -> Config {
    let mut all = vec![("node", "http://127.0.0.1:1")];
    all.extend_from_slice(flags);
    crate::config::load(&Sources::flags(&all)).unwrap()
}

#[test]
fn every_restart_key_is_found_in_the_serialized_configuration() {
    let config = serde_json::to_value(load(&[])).unwrap();
    for key in KEYS.iter().filter(|key| key.restart) {
        assert!(at_path(&config, key.name).is_some(), "{}", key.name);
    }
}

#[test]
fn a_reload_names_the_changed_keys_that_need_a_restart_and_only_those() {
    let old = load(&[]);
    let new = load(&[
        ("log_level", "debug"),
        ("listen", "127.0.0.1:9999"),
        ("interval", "10s"),
    ]);
    let at_start = RestartValues::of(&old);
    assert_eq!(
        changed_restart_keys(&at_start, &new),
        ["listen", "log_level"]
    );
    assert!(changed_restart_keys(&at_start, &old).is_empty());
}
