//! The server's connection limit. At most [`MAX_CONNECTIONS`] are open; when one more
//! arrives, one that is not inside a request is closed to make room: first the oldest that
//! never sent a whole request (a slowloris client, a flood), then the oldest idle
//! keep-alive. So a flood of hostile clients cannot lock a scraper out: its connection
//! sends its request at once and is protected while it runs, and between scrapes its
//! keep-alive connection outranks every connection that never completed a request (closing
//! it anyway would fail the scraper's next request on it). Only when every open connection
//! is inside a request is the new one closed instead.
//! Each such closing is counted (`peerscope_http_connections_shed_total`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::sync;
use tokio_util::sync::CancellationToken;

/// Connections open at once. A scraper, probes and an operator need a handful; the limit,
/// with the per-connection buffer cap, bounds the memory a flood can take.
pub(crate) const MAX_CONNECTIONS: usize = 512;

/// The open connections, oldest first.
#[derive(Clone, Default)]
pub(crate) struct Connections {
    shared: Arc<Mutex<Open>>,
}

#[derive(Default)]
struct Open {
    next_id: u64,
    /// By id, so by age.
    slots: BTreeMap<u64, Slot>,
}

struct Slot {
    close: CancellationToken,
    requests_in_flight: Arc<AtomicUsize>,
}

impl Slot {
    fn idle(&self) -> bool {
        self.requests_in_flight.load(Ordering::Acquire) & IN_FLIGHT == 0
    }

    fn served(&self) -> bool {
        self.requests_in_flight.load(Ordering::Acquire) & SERVED != 0
    }
}

/// The counter's high bit: the connection has had a whole request.
const SERVED: usize = 1 << (usize::BITS - 1);
/// The counter's other bits: requests in flight.
const IN_FLIGHT: usize = !SERVED;

/// One admitted connection: closes when `closed()` fires, leaves the table when dropped.
pub(crate) struct Admitted {
    id: u64,
    close: CancellationToken,
    requests_in_flight: Arc<AtomicUsize>,
    connections: Connections,
}

/// What admitting a new connection took.
pub(crate) enum Admission {
    /// Admitted; `shed` is true when the oldest idle connection was closed for it.
    Admitted { connection: Admitted, shed: bool },
    /// Every open connection is inside a request: the new one is closed.
    Refused,
}

impl Connections {
    /// Admits a new connection, making room as the module says.
    pub(crate) fn admit(&self, limit: usize) -> Admission {
        let mut open = sync::lock(&self.shared);
        let mut shed = false;
        if open.slots.len() >= limit {
            let oldest_idle = |served: bool| {
                open.slots
                    .iter()
                    .find(|(_, slot)| slot.idle() && slot.served() == served)
                    .map(|(id, _)| *id)
            };
            let idle = oldest_idle(false).or_else(|| oldest_idle(true));
            let Some(idle) = idle else {
                return Admission::Refused;
            };
            if let Some(slot) = open.slots.remove(&idle) {
                slot.close.cancel();
            }
            shed = true;
        }
        let id = open.next_id;
        open.next_id += 1;
        let (close, requests_in_flight) = (CancellationToken::new(), Arc::default());
        open.slots.insert(
            id,
            Slot {
                close: close.clone(),
                requests_in_flight: Arc::clone(&requests_in_flight),
            },
        );
        Admission::Admitted {
            connection: Admitted {
                id,
                close,
                requests_in_flight,
                connections: self.clone(),
            },
            shed,
        }
    }

    /// Connections open now.
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        sync::lock(&self.shared).slots.len()
    }
}

impl Admitted {
    /// Fires when the connection was chosen to make room.
    pub(crate) fn closed(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.close.cancelled()
    }

    /// A handle for the request handlers of this connection: a connection with a request
    /// in flight is never shed.
    pub(crate) fn requests(&self) -> RequestCounter {
        RequestCounter(Arc::clone(&self.requests_in_flight))
    }
}

/// Counts the requests in flight on one connection (cheap to clone into a service).
#[derive(Clone)]
pub(crate) struct RequestCounter(Arc<AtomicUsize>);

impl RequestCounter {
    pub(crate) fn enter(&self) -> InRequest {
        self.0.fetch_or(SERVED, Ordering::AcqRel);
        self.0.fetch_add(1, Ordering::AcqRel);
        InRequest(Arc::clone(&self.0))
    }
}

/// A request in flight; dropped when its response is ready.
pub(crate) struct InRequest(Arc<AtomicUsize>);

impl Drop for InRequest {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = sync::lock(&self.connections.shared);
        open.slots.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(admission: Admission) -> (Admitted, bool) {
        match admission {
            Admission::Admitted { connection, shed } => (connection, shed),
            Admission::Refused => panic!("refused"),
        }
    }

    #[test]
    fn at_the_limit_the_oldest_idle_connection_makes_room() {
        let connections = Connections::default();
        let (oldest, _) = admitted(connections.admit(3));
        let (busy, _) = admitted(connections.admit(3));
        let (third, shed) = admitted(connections.admit(3));
        assert!(!shed);
        // The oldest is inside a request: the next oldest idle one goes instead.
        let in_request = oldest.requests().enter();
        let (_fourth, shed) = admitted(connections.admit(3));
        assert!(shed);
        assert!(!oldest.close.is_cancelled());
        assert!(busy.close.is_cancelled());
        drop(busy);
        assert_eq!(connections.open(), 3);
        drop(in_request);
        // `oldest` has served a request; `third` never sent one: it goes first.
        let (_fifth, shed) = admitted(connections.admit(3));
        assert!(shed && third.close.is_cancelled() && !oldest.close.is_cancelled());
    }

    #[test]
    fn a_connection_that_never_sent_a_request_goes_before_an_idle_keep_alive() {
        let connections = Connections::default();
        let (scraper, _) = admitted(connections.admit(2));
        drop(scraper.requests().enter()); // one scrape done; now idle between scrapes
        let (silent, _) = admitted(connections.admit(2));
        let (_flood, shed) = admitted(connections.admit(2));
        assert!(shed && silent.close.is_cancelled() && !scraper.close.is_cancelled());
    }

    #[test]
    fn when_every_connection_is_in_a_request_the_new_one_is_refused() {
        let connections = Connections::default();
        let (only, _) = admitted(connections.admit(1));
        let _request = only.requests().enter();
        assert!(matches!(connections.admit(1), Admission::Refused));
        assert_eq!(connections.open(), 1);
    }
}
