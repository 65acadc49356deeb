//! The peers file (Prometheus `file_sd` JSON).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &[u8]| {
    if let Ok(peers) = peerscope::config::peers_file::parse(text, "fuzz.json") {
        for peer in peers {
            assert!(
                matches!(peer.url.scheme(), "http" | "https"),
                "{}",
                peer.url
            );
            assert!(!peer.label.is_empty());
        }
    }
});
