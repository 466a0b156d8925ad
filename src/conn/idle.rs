//! Idle timeouts per connection, like netty's `IdleStateHandler`: read-idle, write-idle and
//! all-idle, checked lazily by one timer per connection, so traffic costs no timer work.

use std::time::{Duration, Instant};

use crate::base::timer::{self, TimerId};

/// How long a connection may go without reading, writing, or either, before
/// [`crate::IoHandler::on_idle`] fires. `None` disables a kind.
///
/// Set a default in the config and override it per connection with
/// [`crate::Conn::set_idle_timeouts`].
///
/// # Examples
///
/// ```
/// use kingpin::{IdleTimeouts, ServerConfig};
/// use std::time::Duration;
///
/// // Drop a peer that sends nothing for 30 s (e.g. a slowloris).
/// let config = ServerConfig::default().idle_timeouts(IdleTimeouts::read(Duration::from_secs(30)));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdleTimeouts {
    /// Longest time without a byte read.
    pub read: Option<Duration>,
    /// Longest time without a byte written.
    pub write: Option<Duration>,
    /// Longest time without a byte read or written.
    pub all: Option<Duration>,
}

impl IdleTimeouts {
    /// Only a read-idle timeout.
    pub fn read(d: Duration) -> Self {
        IdleTimeouts { read: Some(d), ..Default::default() }
    }

    /// Only a write-idle timeout.
    pub fn write(d: Duration) -> Self {
        IdleTimeouts { write: Some(d), ..Default::default() }
    }

    /// Only an all-idle timeout.
    pub fn all(d: Duration) -> Self {
        IdleTimeouts { all: Some(d), ..Default::default() }
    }

    /// Whether any kind is enabled.
    pub fn is_enabled(&self) -> bool {
        self.read.is_some() || self.write.is_some() || self.all.is_some()
    }

    /// The timeouts as applied: each at least [`IdleTimeouts::MIN`].
    pub(crate) fn clamped(self) -> Self {
        let at_least = |d: Option<Duration>| d.map(|d| d.max(Self::MIN));
        IdleTimeouts { read: at_least(self.read), write: at_least(self.write), all: at_least(self.all) }
    }

    /// The shortest timeout applied; a shorter one (zero included) counts as this, so that a
    /// handler that keeps an idle connection is not called again within the same turn.
    pub const MIN: Duration = Duration::from_millis(1);
}

/// Which idle timeout fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdleKind {
    /// Nothing was read for the read-idle timeout.
    Read,
    /// Nothing was written for the write-idle timeout.
    Write,
    /// Nothing was read or written for the all-idle timeout.
    All,
}

/// What to do with a connection whose idle timeout fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleAction {
    /// Close it now (pending output is discarded), with [`crate::CloseReason::Idle`].
    Close,
    /// Keep it; the timeout starts over.
    Keep,
}

/// The idle bookkeeping of one connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IdleState {
    pub(crate) timeouts: IdleTimeouts,
    pub(crate) last_read: Instant,
    /// When each kind last fired (or the connection started): idleness counts from the later
    /// of this and the last activity, so a kept connection is not reported again at once.
    pub(crate) since: [Instant; 3],
    /// The pending idle check.
    pub(crate) timer: Option<TimerId>,
}

impl IdleState {
    pub(crate) fn new(timeouts: IdleTimeouts, now: Instant) -> Self {
        IdleState { timeouts, last_read: now, since: [now; 3], timer: None }
    }

    fn kinds(&self) -> [(IdleKind, Option<Duration>); 3] {
        [
            (IdleKind::Read, self.timeouts.read),
            (IdleKind::Write, self.timeouts.write),
            (IdleKind::All, self.timeouts.all),
        ]
    }

    fn last_activity(&self, kind: IdleKind, last_write: Instant) -> Instant {
        let (i, last) = match kind {
            IdleKind::Read => (0, self.last_read),
            IdleKind::Write => (1, last_write),
            IdleKind::All => (2, self.last_read.max(last_write)),
        };
        last.max(self.since[i])
    }

    /// The first kind whose timeout has passed at `now`, if any.
    pub(crate) fn expired(&self, now: Instant, last_write: Instant) -> Option<IdleKind> {
        self.kinds().into_iter().find_map(|(kind, d)| {
            let d = d?;
            (now.duration_since(self.last_activity(kind, last_write)) >= d).then_some(kind)
        })
    }

    /// Restarts `kind`'s timeout at `now` (after it fired and the handler kept the connection).
    pub(crate) fn restart(&mut self, kind: IdleKind, now: Instant) {
        self.since[kind as usize] = now;
    }

    /// When the next check is due, if any kind is enabled.
    pub(crate) fn next_check(&self, last_write: Instant) -> Option<Instant> {
        self.kinds()
            .into_iter()
            .filter_map(|(kind, d)| Some(timer::after(self.last_activity(kind, last_write), d?)))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_follows_activity_and_restarts() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = IdleState::new(IdleTimeouts { read: Some(ms(100)), write: None, all: Some(ms(300)) }, t0);
        assert_eq!(s.next_check(t0), Some(t0 + ms(100)));
        assert_eq!(s.expired(t0 + ms(99), t0), None);
        assert_eq!(s.expired(t0 + ms(100), t0), Some(IdleKind::Read));
        s.last_read = t0 + ms(50);
        assert_eq!(s.expired(t0 + ms(100), t0), None);
        assert_eq!(s.next_check(t0), Some(t0 + ms(150)));
        s.restart(IdleKind::Read, t0 + ms(200));
        assert_eq!(s.expired(t0 + ms(250), t0 + ms(260)), None);
        // Writing keeps all-idle away but not read-idle.
        assert_eq!(s.expired(t0 + ms(400), t0 + ms(390)), Some(IdleKind::Read));
        s.restart(IdleKind::Read, t0 + ms(400));
        assert_eq!(s.expired(t0 + ms(450), t0 + ms(390)), None);
        assert!(!IdleTimeouts::default().is_enabled());
        assert!(IdleTimeouts::write(ms(1)).is_enabled());
    }
}
