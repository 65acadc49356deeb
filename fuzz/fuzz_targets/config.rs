//! The configuration: a TOML file and `PEERSCOPE_*` / `NOVA_FED_*` variables, through the
//! whole layering and every rule. The input is `NAME=VALUE` lines for the environment,
//! a NUL byte, then the file's text.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Ok(input) = std::str::from_utf8(input) else {
        return;
    };
    let (variables, file) = input.split_once('\0').unwrap_or(("", input));
    let env: HashMap<String, String> = variables
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    if let Ok(config) = peerscope::config::load_text(file, "fuzz.toml", &env) {
        // What was accepted keeps the rules that span keys.
        assert!(config.timeout < config.interval);
        assert!(config.window >= config.interval);
        assert!(config.interval <= peerscope::config::duration::MAX_DURATION);
    }
});
