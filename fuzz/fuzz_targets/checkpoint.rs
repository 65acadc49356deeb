//! The checkpoint: decoded, and what decodes restored into a real store and reconciler
//! (restoring turns saved Unix times into instants, where a damaged value could overflow).
//! The store is configured with the checkpoint's own peers, so every saved peer is
//! restored rather than skipped as "no longer configured".
#![no_main]

use libfuzzer_sys::fuzz_target;
use peerscope::act::Reconciler;
use peerscope::config::{self, Config, NoEnvironment, Sources};
use peerscope::ops::checkpoint;
use peerscope::store::Store;
use peerscope::timeline::Anchor;

/// A configuration listing `urls` as peers, or none if they do not make a valid one.
fn config_for(urls: &[&str]) -> Option<Config> {
    let sources = Sources {
        file: None,
        flags: vec![
            ("node", "http://127.0.0.1:8000".to_owned()),
            ("peers", urls.join(",")),
        ],
        env: &NoEnvironment,
    };
    config::load(&sources).ok()
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(payload) = checkpoint::decode(bytes, "fuzz.json") else {
        return;
    };
    let urls: Vec<&str> = payload
        .store
        .peers
        .iter()
        .take(16)
        .map(|p| p.url.as_str())
        .collect();
    let Some(config) = config_for(&urls).or_else(|| config_for(&["http://127.0.0.1:8001"])) else {
        return;
    };
    let store = Store::new(&config);
    let reconciler = Reconciler::new(config.reconcile.clone());
    let anchor = Anchor::now();
    store.restore(&payload.store, &anchor);
    reconciler.restore(&payload.reconcile, &anchor);
    let _ = store.view(anchor.instant);
    let _ = reconciler.view(anchor.instant);
});
