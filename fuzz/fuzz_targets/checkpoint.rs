//! The checkpoint: decoded, and what decodes restored into a real store and reconciler
//! (restoring turns saved Unix times into instants, where a damaged value could overflow).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use peerscope::act::Reconciler;
use peerscope::config::{self, Config, Sources};
use peerscope::ops::checkpoint;
use peerscope::store::Store;
use peerscope::timeline::Anchor;

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        config::load(&Sources::flags(&[
            ("node", "http://127.0.0.1:8000"),
            ("peers", "a=http://127.0.0.1:8001,b=http://127.0.0.1:8002"),
        ]))
        .expect("the fuzz target's configuration is valid")
    })
}

fuzz_target!(|bytes: &[u8]| {
    if let Ok(payload) = checkpoint::decode(bytes, "fuzz.json") {
        let store = Store::new(config());
        let reconciler = Reconciler::new(config().reconcile.clone());
        let anchor = Anchor::now();
        store.restore(&payload.store, &anchor);
        reconciler.restore(&payload.reconcile, &anchor);
        let _ = store.view(anchor.instant);
        let _ = reconciler.view(anchor.instant);
    }
});
