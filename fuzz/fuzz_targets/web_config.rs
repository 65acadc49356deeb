//! The web configuration file (exporter-toolkit YAML). Paths it names are taken from a
//! directory that does not exist, so relative ones fail to read, as a missing file would.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &[u8]| {
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let directory = std::path::Path::new("/nonexistent/peerscope-fuzz");
    if let Ok(web) = peerscope::config::web::parse(text, directory) {
        for user in web.users.keys() {
            assert!(!user.is_empty() && !user.contains(':'), "{user:?}");
        }
        // What /status shows of it: the user names, never the hashes.
        let shown = serde_json::to_string(&web).unwrap();
        for hash in web.users.values() {
            assert!(!shown.contains(hash.as_str()));
        }
    }
});
