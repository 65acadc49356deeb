//! Members found by discovery (SPEC §10): per source, its last good members and what its
//! refreshes found. A failed refresh keeps the source's members — a resolver blip never
//! empties a federation — and a valid answer, smaller or not, replaces them.

use std::collections::{BTreeMap, HashSet};
use std::time::SystemTime;

use crate::config::discovery::{source_name, DiscoveryConfig};
use crate::config::PeerConfig;
use crate::figures::view::SourceView;
use crate::timeline::unix_seconds;

/// The discovery sources in force and what they found.
#[derive(Default)]
pub(super) struct Discovered {
    pub(super) config: DiscoveryConfig,
    /// By source (its text as configured, or the http_sd URL), in configuration order.
    sources: Vec<(String, Source)>,
}

#[derive(Default)]
struct Source {
    /// The last good answer's members; `None` before the first.
    members: Option<Vec<PeerConfig>>,
    /// Refreshes by outcome: `ok` or the failure's class.
    refreshes: BTreeMap<&'static str, u64>,
    last_success: Option<SystemTime>,
    last_error: Option<String>,
}

impl Discovered {
    /// Takes a (re)loaded configuration: sources that stay keep their members and
    /// counters, removed ones are forgotten with their members.
    pub(super) fn set_config(&mut self, config: &DiscoveryConfig) {
        let names: Vec<String> = config
            .dns
            .iter()
            .map(|source| source.text.clone())
            .chain(config.http_sd.iter().map(source_name))
            .collect();
        let mut old = std::mem::take(&mut self.sources);
        for name in names {
            // A source listed twice is one source (one series per source on /metrics).
            if self.sources.iter().any(|(n, _)| *n == name) {
                continue;
            }
            let source = match old.iter().position(|(n, _)| *n == name) {
                Some(index) => old.swap_remove(index).1,
                None => Source::default(),
            };
            self.sources.push((name, source));
        }
        self.config = config.clone();
    }

    /// Records one refresh; whether the members changed.
    pub(super) fn record(
        &mut self,
        name: &str,
        result: Result<Vec<PeerConfig>, (&'static str, String)>,
    ) -> bool {
        // A source removed by a reload while its lookup ran: nothing to record.
        let Some((_, source)) = self.sources.iter_mut().find(|(n, _)| n == name) else {
            return false;
        };
        match result {
            Ok(members) => {
                *source.refreshes.entry("ok").or_default() += 1;
                source.last_success = Some(SystemTime::now());
                source.last_error = None;
                let changed = source.members.as_ref() != Some(&members);
                if changed {
                    tracing::info!(discovery = %name, members = members.len(), "discovery: members changed");
                }
                source.members = Some(members);
                changed
            }
            Err((class, detail)) => {
                *source.refreshes.entry(class).or_default() += 1;
                if source.last_error.as_ref() != Some(&detail) {
                    tracing::warn!(discovery = %name, outcome = class, %detail, "discovery refresh failed; the source's last members stay");
                }
                source.last_error = Some(detail);
                false
            }
        }
    }

    /// Each source, for `/metrics` and `/status`.
    pub(super) fn view(&self) -> Vec<SourceView> {
        self.sources
            .iter()
            .map(|(name, source)| SourceView {
                source: name.clone(),
                members: source.members.as_ref().map_or(0, Vec::len),
                refreshes: source
                    .refreshes
                    .iter()
                    .map(|(outcome, count)| (*outcome, *count))
                    .collect(),
                last_success_timestamp_seconds: source.last_success.map(unix_seconds),
                last_error: source.last_error.clone(),
            })
            .collect()
    }
}

/// The configured peers, then every source's members, each URL once (the first listing
/// wins); with each, whether discovery found it.
pub(super) fn merge(configured: &[PeerConfig], discovered: &Discovered) -> Vec<(PeerConfig, bool)> {
    let mut seen: HashSet<&reqwest::Url> = HashSet::new();
    let configured = configured.iter().map(|peer| (peer, false));
    let found = discovered
        .sources
        .iter()
        .filter_map(|(_, source)| source.members.as_ref())
        .flatten()
        .map(|peer| (peer, true));
    configured
        .chain(found)
        .filter(|(peer, _)| seen.insert(&peer.url))
        .map(|(peer, found)| (peer.clone(), found))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::discovery::dns_source;

    fn peer(url: &str) -> PeerConfig {
        PeerConfig::new(url.parse().unwrap(), None)
    }

    fn config(sources: &[&str]) -> DiscoveryConfig {
        DiscoveryConfig {
            dns: sources
                .iter()
                .map(|s| dns_source(s).unwrap().unwrap())
                .collect(),
            ..DiscoveryConfig::default()
        }
    }

    #[test]
    fn a_failed_refresh_keeps_the_members_and_a_smaller_answer_replaces_them() {
        let mut discovered = Discovered::default();
        discovered.set_config(&config(&["dnssrv+peers.test"]));
        let both = vec![peer("http://a.test:1"), peer("http://b.test:1")];
        assert!(discovered.record("dnssrv+peers.test", Ok(both.clone())));
        assert!(!discovered.record("dnssrv+peers.test", Ok(both)));
        assert!(!discovered.record("dnssrv+peers.test", Err(("timeout", "no answer".into()))));
        assert_eq!(merge(&[], &discovered).len(), 2);
        assert!(discovered.record("dnssrv+peers.test", Ok(vec![peer("http://a.test:1")])));
        assert_eq!(merge(&[], &discovered).len(), 1);
        let view = &discovered.view()[0];
        assert_eq!(view.members, 1);
        assert_eq!(view.refreshes, [("ok", 3), ("timeout", 1)]);
        assert!(view.last_error.is_none() && view.last_success_timestamp_seconds.is_some());
    }

    #[test]
    fn configured_peers_come_first_and_each_url_is_listed_once() {
        let mut discovered = Discovered::default();
        discovered.set_config(&config(&["dns+peers.test:1", "dnssrv+peers.test"]));
        discovered.record(
            "dns+peers.test:1",
            Ok(vec![peer("http://10.0.0.1:1"), peer("http://10.0.0.2:1")]),
        );
        discovered.record(
            "dnssrv+peers.test",
            Ok(vec![peer("http://10.0.0.2:1"), peer("http://10.0.0.3:1")]),
        );
        let merged = merge(&[peer("http://10.0.0.1:1")], &discovered);
        let urls: Vec<(&str, bool)> = merged.iter().map(|(p, d)| (p.url.as_str(), *d)).collect();
        assert_eq!(
            urls,
            [
                ("http://10.0.0.1:1/", false),
                ("http://10.0.0.2:1/", true),
                ("http://10.0.0.3:1/", true)
            ]
        );
        // A source listed twice is looked up and shown once.
        discovered.set_config(&config(&["dnssrv+peers.test", "dnssrv+peers.test"]));
        assert_eq!(discovered.view().len(), 1);
        // A reload that drops a source drops its members; the other keeps its own.
        discovered.set_config(&config(&["dnssrv+peers.test"]));
        assert_eq!(merge(&[], &discovered).len(), 2);
        assert!(!discovered.record("dns+peers.test:1", Ok(vec![])));
    }
}
