//! Spreading connections over the loops: each loop can see the others' counters and wake
//! them. The fair-share rule of the accept mutex and of the client's target pool lives here,
//! once.

use std::sync::Arc;

use crate::base::stats::LoopStats;
use crate::conn::inbox::Inbox;

/// One IO loop as the other loops see it: its counters and a way to wake it.
#[derive(Clone)]
pub(crate) struct LoopPeer {
    pub(crate) stats: Arc<LoopStats>,
    pub(crate) inbox: Arc<dyn Inbox>,
}

/// The loops of one server or client, by index.
#[derive(Clone)]
pub(crate) struct Peers(Arc<[LoopPeer]>);

impl Peers {
    pub(crate) fn new(peers: Vec<LoopPeer>) -> Self {
        Peers(peers.into())
    }

    /// Whether loop `me` holds more than its fair share of the group's `load` (nginx's
    /// `accept_disabled`, measured against the mean instead of free slots, so the balance
    /// holds at any load): more than `mean + max(mean / 8, 1)`. Loops that failed take no
    /// share.
    pub(crate) fn over_share(&self, me: usize, load: impl Fn(&LoopStats) -> u64) -> bool {
        let live = self.0.iter().filter(|p| !p.stats.is_failed()).count() as u64;
        if live < 2 {
            return false;
        }
        let mine = self.0.get(me).map_or(0, |p| load(&p.stats));
        let total: u64 = self.0.iter().map(|p| load(&p.stats)).sum();
        let share = total / live;
        mine > share + (share / 8).max(1)
    }

    /// Whether a loop other than `me` still runs (has not failed).
    pub(crate) fn others_live(&self, me: usize) -> bool {
        self.0.iter().enumerate().any(|(i, p)| i != me && !p.stats.is_failed())
    }

    /// Sum of `load` over all loops.
    pub(crate) fn total(&self, load: impl Fn(&LoopStats) -> u64) -> u64 {
        self.0.iter().map(|p| load(&p.stats)).sum()
    }

    /// Wakes the loop other than `me` with the least `load`, so that it takes over at once.
    pub(crate) fn wake_least_loaded(&self, me: usize, load: impl Fn(&LoopStats) -> u64) {
        let least = self
            .0
            .iter()
            .enumerate()
            .filter(|(i, p)| *i != me && !p.stats.is_failed())
            .min_by_key(|(_, p)| load(&p.stats));
        if let Some((_, peer)) = least {
            peer.inbox.wake();
        }
    }

    /// Wakes the first loop after `me` (in index order, wrapping) that is alive and not over
    /// its share, so that it takes its turn at accepting; false if there is none.
    pub(crate) fn wake_next_under_share(&self, me: usize, load: impl Fn(&LoopStats) -> u64 + Copy) -> bool {
        let n = self.0.len();
        let next =
            (1..n).map(|step| (me + step) % n).find(|&i| !self.0[i].stats.is_failed() && !self.over_share(i, load));
        match next {
            Some(i) => {
                self.0[i].inbox.wake();
                true
            }
            None => false,
        }
    }

    pub(crate) fn wake_all(&self) {
        for p in self.0.iter() {
            p.inbox.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::error::Error;
    use crate::conn::inbox::ConnCommand;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counter(AtomicUsize);
    impl Inbox for Counter {
        fn push_conn(&self, _: ConnCommand) -> Result<(), Error> {
            Ok(())
        }
        fn wake(&self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn fair_share_and_least_loaded() {
        let counters: Vec<Arc<Counter>> = (0..3).map(|_| Arc::new(Counter(AtomicUsize::new(0)))).collect();
        let stats: Vec<Arc<LoopStats>> = (0..3).map(|_| Arc::new(LoopStats::default())).collect();
        let peers = Peers::new(
            (0..3)
                .map(|i| LoopPeer { stats: stats[i].clone(), inbox: counters[i].clone() as Arc<dyn Inbox> })
                .collect(),
        );
        for _ in 0..20 {
            stats[0].on_open(true);
        }
        for _ in 0..4 {
            stats[1].on_open(true);
        }
        let open = |s: &LoopStats| s.open();
        assert_eq!(peers.total(open), 24);
        assert!(peers.over_share(0, open), "20 > 8 + 1");
        assert!(!peers.over_share(1, open));
        assert!(!peers.over_share(2, open));
        peers.wake_least_loaded(0, open);
        assert_eq!(counters[2].0.load(Ordering::Relaxed), 1, "loop 2 holds none");
        peers.wake_all();
        assert_eq!(counters.iter().map(|c| c.0.load(Ordering::Relaxed)).sum::<usize>(), 4);
        // The next in line after 1 is 2 (under its share); after 2, loop 0 is over its share,
        // so 1 is next.
        assert!(peers.wake_next_under_share(1, open));
        assert_eq!(counters[2].0.load(Ordering::Relaxed), 3);
        assert!(peers.wake_next_under_share(2, open));
        assert_eq!(counters[1].0.load(Ordering::Relaxed), 2);
        // A failed loop is skipped; with no one left under its share, nobody is woken.
        stats[2].on_loop_failed();
        assert!(!peers.wake_next_under_share(1, open), "0 is over its share, 2 has failed");
    }
}
