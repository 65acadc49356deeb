//! HTTP basic auth against bcrypt hashes, without handing clients a CPU lever.
//!
//! bcrypt is slow on purpose (tens of milliseconds a check), so every check that is not
//! needed is skipped, and the checks that are needed are budgeted:
//! - a (user, password, hash) once verified is remembered, so a scraper or the page pays
//!   once, not at every request; a pair once refused is remembered too, so repeating a
//!   wrong password costs nothing;
//! - a client (by IP address) with [`SUSPECT_AFTER`] failures within [`FAILURE_WINDOW`]
//!   is suspect: its checks go through a lane of their own, at most one at a time and
//!   [`SUSPECT_CHECKS_PER_SECOND`] a second for all suspects together; beyond that it is
//!   answered `429` at once. Clients in good standing have their own lane, one check at a
//!   time, so a flood from suspects never makes a legitimate first scrape wait;
//! - an unknown user is checked against a configured hash all the same, so user names
//!   cannot be told apart by how long a refusal takes;
//! - the cost of a hash is capped at load ([`crate::config::web::MAX_BCRYPT_COST`]), so
//!   a check never takes long and shutdown never waits on one for more than a moment.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use hyper::header::HeaderValue;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::sync;

/// Failures within this window count towards making a client suspect.
pub(crate) const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// This many failures within the window make a client suspect.
pub(crate) const SUSPECT_AFTER: u32 = 5;
/// bcrypt checks a second for all suspect clients together.
pub(crate) const SUSPECT_CHECKS_PER_SECOND: u32 = 2;
/// Remembered verifications, refusals and clients are forgotten all at once beyond this
/// many (each is 32 bytes, or an address and a count).
const REMEMBERED: usize = 4096;

/// What a request's credentials are worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allowed,
    Refused,
    /// A suspect client over the budget: answered `429` without a check.
    Throttled,
}

/// A verdict, and how it was reached.
enum Decided {
    /// Without a bcrypt check: remembered, no credentials, or over the budget.
    Remembered(Verdict),
    Checked(Verdict),
}

/// Shared with the tasks that run the checks: a client that goes away mid-check neither
/// frees its lane nor leaves the check uncounted (the check runs to its end, in a task
/// of its own, holding the permit).
#[derive(Default)]
pub(crate) struct BasicAuth(Arc<Checks>);

pub(crate) struct Checks {
    verified: Mutex<HashSet<[u8; 32]>>,
    refused: Mutex<HashSet<[u8; 32]>>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
    /// One check at a time for clients in good standing.
    good_standing: Arc<Semaphore>,
    /// One check at a time for suspects, and no more than the budget allows.
    suspects: Arc<Semaphore>,
    suspect_budget: Mutex<Budget>,
}

/// A client's recent failures.
#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    first: Instant,
}

/// Checks granted to suspects in the current second.
struct Budget {
    second_started: Instant,
    granted: u32,
}

impl Default for Checks {
    fn default() -> Self {
        Checks {
            verified: Mutex::default(),
            refused: Mutex::default(),
            failures: Mutex::default(),
            good_standing: Arc::new(Semaphore::new(1)),
            suspects: Arc::new(Semaphore::new(1)),
            suspect_budget: Mutex::new(Budget {
                second_started: Instant::now(),
                granted: 0,
            }),
        }
    }
}

impl BasicAuth {
    /// Whether `header` (`Authorization`) names one of `users` (non-empty) with its
    /// password, for a request from `client`; and whether a bcrypt check was run for it.
    pub(crate) async fn check(
        &self,
        users: &BTreeMap<String, String>,
        header: Option<&HeaderValue>,
        client: IpAddr,
    ) -> (Verdict, bool) {
        match self.0.decide(users, header, client).await {
            Decided::Remembered(verdict) => (verdict, false),
            Decided::Checked(verdict) => (verdict, true),
        }
    }
}

impl Checks {
    async fn decide(
        self: &Arc<Self>,
        users: &BTreeMap<String, String>,
        header: Option<&HeaderValue>,
        client: IpAddr,
    ) -> Decided {
        let client = network_of(client);
        let Some((user, password)) = header.and_then(credentials) else {
            return Decided::Remembered(Verdict::Refused);
        };
        // An unknown user is checked against a real hash, so that its refusal takes as
        // long as a wrong password's.
        let (hash, known) = match users.get(&user) {
            Some(hash) => (hash, true),
            None => match users.values().next() {
                Some(decoy) => (decoy, false),
                None => return Decided::Remembered(Verdict::Refused),
            },
        };
        let key = digest(&user, &password, hash);
        if sync::lock(&self.verified).contains(&key) {
            return Decided::Remembered(Verdict::Allowed);
        }
        if sync::lock(&self.refused).contains(&key) {
            return Decided::Remembered(Verdict::Refused);
        }
        let Some(permit) = self.lane_for(client).await else {
            return Decided::Remembered(Verdict::Throttled);
        };
        let now = Instant::now();
        let hash = hash.clone();
        let checks = Arc::clone(self);
        let check = tokio::spawn(async move {
            let matches = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                bcrypt::verify(password, &hash)
            })
            .await
            .is_ok_and(|verified| verified.unwrap_or(false))
                && known;
            checks.remember(key, matches, client, now);
            matches
        });
        let matches = check.await.unwrap_or(false);
        Decided::Checked(if matches {
            Verdict::Allowed
        } else {
            Verdict::Refused
        })
    }

    /// A permit to run one check for `client`: in the good-standing lane, or within the
    /// suspects' budget (`None` when it is spent). Standing is looked at again once the
    /// good-standing permit is granted: a client's requests queued there while its
    /// first guesses failed move to the suspects' lane.
    async fn lane_for(&self, client: IpAddr) -> Option<OwnedSemaphorePermit> {
        if !self.is_suspect(client, Instant::now()) {
            let permit = Arc::clone(&self.good_standing).acquire_owned().await.ok()?;
            if !self.is_suspect(client, Instant::now()) {
                return Some(permit);
            }
        }
        if !self.grant_suspect_check(Instant::now()) {
            return None;
        }
        Arc::clone(&self.suspects).acquire_owned().await.ok()
    }

    /// Remembers a checked pair, and counts a failure against its client.
    fn remember(&self, key: [u8; 32], matches: bool, client: IpAddr, now: Instant) {
        let remembered = if matches {
            &self.verified
        } else {
            self.count_failure(client, now);
            &self.refused
        };
        let mut remembered = sync::lock(remembered);
        if remembered.len() >= REMEMBERED {
            remembered.clear();
        }
        remembered.insert(key);
    }

    fn is_suspect(&self, client: IpAddr, now: Instant) -> bool {
        sync::lock(&self.failures).get(&client).is_some_and(|f| {
            now.duration_since(f.first) < FAILURE_WINDOW && f.count >= SUSPECT_AFTER
        })
    }

    fn count_failure(&self, client: IpAddr, now: Instant) {
        let mut failures = sync::lock(&self.failures);
        if failures.len() >= REMEMBERED && !failures.contains_key(&client) {
            failures.retain(|_, f| now.duration_since(f.first) < FAILURE_WINDOW);
            if failures.len() >= REMEMBERED {
                failures.clear();
            }
        }
        let entry = failures.entry(client).or_insert(Failures {
            count: 0,
            first: now,
        });
        if now.duration_since(entry.first) >= FAILURE_WINDOW {
            *entry = Failures {
                count: 0,
                first: now,
            };
        }
        entry.count = entry.count.saturating_add(1);
    }

    /// Whether the suspects' budget has a check left in this second (and takes it).
    fn grant_suspect_check(&self, now: Instant) -> bool {
        let mut budget = sync::lock(&self.suspect_budget);
        if now.duration_since(budget.second_started) >= Duration::from_secs(1) {
            budget.second_started = now;
            budget.granted = 0;
        }
        if budget.granted >= SUSPECT_CHECKS_PER_SECOND {
            return false;
        }
        budget.granted += 1;
        true
    }
}

/// (user, password) from `Basic <base64 user:password>`.
fn credentials(header: &HeaderValue) -> Option<(String, String)> {
    let encoded = header.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn digest(user: &str, password: &str, hash: &str) -> [u8; 32] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [user, password, hash] {
        context.update(&(part.len() as u64).to_le_bytes());
        context.update(part.as_bytes());
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(context.finish().as_ref());
    key
}

/// The client a failure counts against: an IPv4 address, or an IPv6 address's /64 — a host
/// is usually given a whole /64, and counting each of its 2^64 addresses apart would let it
/// rotate out of suspicion with every guess. (An IPv4-mapped IPv6 address is its IPv4.)
fn network_of(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(_) => client,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from_bits(
                v6.to_bits() & !u128::from(u64::MAX),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> HeaderValue {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));

    #[tokio::test]
    async fn only_the_right_password_of_a_known_user_passes_and_both_are_remembered() {
        let users = BTreeMap::from([("alice".to_owned(), bcrypt::hash("s3cret", 4).unwrap())]);
        let auth = BasicAuth::default();
        let check = |header: Option<HeaderValue>| {
            let (auth, users) = (&auth, &users);
            async move { auth.check(users, header.as_ref(), CLIENT).await.0 }
        };
        assert_eq!(check(None).await, Verdict::Refused);
        assert_eq!(check(Some(basic("alice", "wrong"))).await, Verdict::Refused);
        assert_eq!(check(Some(basic("bob", "s3cret"))).await, Verdict::Refused);
        assert_eq!(
            check(Some(HeaderValue::from_static("Bearer s3cret"))).await,
            Verdict::Refused
        );
        assert_eq!(
            sync::lock(&auth.0.refused).len(),
            2,
            "both guesses remembered"
        );
        assert_eq!(
            check(Some(basic("alice", "s3cret"))).await,
            Verdict::Allowed
        );
        assert_eq!(sync::lock(&auth.0.verified).len(), 1);
        assert_eq!(
            check(Some(basic("alice", "s3cret"))).await,
            Verdict::Allowed
        );
        // A changed hash (a reload) does not match what was remembered for the old one.
        let changed = BTreeMap::from([("alice".to_owned(), bcrypt::hash("other", 4).unwrap())]);
        assert_eq!(
            auth.check(&changed, Some(&basic("alice", "s3cret")), CLIENT)
                .await
                .0,
            Verdict::Refused
        );
    }

    /// Review finding (issue 19): suspects were keyed by the exact address, so a client
    /// with an IPv6 /64 left suspicion with every new address.
    #[tokio::test]
    async fn addresses_of_one_ipv6_64_are_one_client() {
        let users = BTreeMap::from([("alice".to_owned(), bcrypt::hash("s3cret", 4).unwrap())]);
        let auth = BasicAuth::default();
        let address =
            |host: u16| IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, host));
        for guess in 0..SUSPECT_AFTER {
            let header = basic("alice", &format!("guess-{guess}"));
            auth.check(&users, Some(&header), address(guess as u16))
                .await;
        }
        assert!(auth.0.is_suspect(network_of(address(999)), Instant::now()));
        let elsewhere = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1));
        assert!(!auth.0.is_suspect(network_of(elsewhere), Instant::now()));
        let mapped = "::ffff:10.0.0.1".parse::<IpAddr>().unwrap();
        assert_eq!(network_of(mapped), CLIENT);
    }

    #[tokio::test]
    async fn a_client_that_keeps_failing_is_budgeted_and_others_are_not() {
        let users = BTreeMap::from([("alice".to_owned(), bcrypt::hash("s3cret", 4).unwrap())]);
        let auth = BasicAuth::default();
        let mut verdicts = Vec::new();
        for guess in 0..40 {
            let header = basic("alice", &format!("guess-{guess}"));
            verdicts.push(auth.check(&users, Some(&header), CLIENT).await.0);
        }
        let throttled = verdicts
            .iter()
            .filter(|v| **v == Verdict::Throttled)
            .count();
        let checked = verdicts.len() - throttled;
        // SUSPECT_AFTER in good standing, then at most the budget per second (the loop
        // runs within a second or two at cost 4).
        assert!(throttled >= 25, "{verdicts:?}");
        assert!(checked <= SUSPECT_AFTER as usize + 3 * 2, "{verdicts:?}");
        // Another client is in good standing: checked at once.
        let other = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(
            auth.check(&users, Some(&basic("alice", "s3cret")), other)
                .await
                .0,
            Verdict::Allowed
        );
        // The suspect is checked again once its budget second has passed.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(
            auth.check(&users, Some(&basic("alice", "s3cret")), CLIENT)
                .await
                .0,
            Verdict::Allowed
        );
    }
}
