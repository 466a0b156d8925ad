//! The timer queue of one IO loop: deadlines ordered in a `BTreeMap`, cancellation by id.
//!
//! The loop asks [`TimerQueue::next_deadline`] to size its `epoll_wait` timeout and pops what
//! has expired after each wait. Timers with equal deadlines fire in the order they were set.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Identifies a timer so that it can be cancelled. Returned by `run_after`/`run_every`/`set_timer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerId(pub(crate) u64);

impl TimerId {
    /// The id as a raw `u64`, e.g. to hand it through a C API or keep it in an integer map.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// The id whose [`TimerId::as_u64`] was `raw`. Ids are never reused within a loop, and a
    /// cancel reaches only timers of its own kind and owner ([`crate::Conn::cancel_timer`] those
    /// its connection set), so a value that named none of them cancels nothing.
    pub fn from_u64(raw: u64) -> Self {
        TimerId(raw)
    }
}

/// The top bit of an id: which of a loop's queues issued it.
const TAG_BIT: u64 = 1 << 63;

/// The timers a queue had issued at some moment (see [`TimerQueue::mark`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mark(u64);

/// A timer popped from the queue, to be run and maybe put back (when periodic).
pub(crate) struct Expired<T> {
    pub(crate) id: TimerId,
    pub(crate) deadline: Instant,
    pub(crate) period: Option<Duration>,
    pub(crate) task: T,
}

/// Deadline-ordered tasks of type `T`. Owned by one loop thread.
pub(crate) struct TimerQueue<T> {
    by_deadline: BTreeMap<(Instant, u64), (T, Option<Duration>)>,
    deadlines: HashMap<u64, Option<Instant>>,
    next_id: u64,
    tag: u64,
}

impl<T> TimerQueue<T> {
    /// A queue whose ids all carry `tag` in their top bit (so two queues never share an id).
    pub(crate) fn new(tag: bool) -> Self {
        TimerQueue {
            by_deadline: BTreeMap::new(),
            deadlines: HashMap::new(),
            next_id: 0,
            tag: if tag { TAG_BIT } else { 0 },
        }
    }

    /// Whether `id` was issued by this queue.
    pub(crate) fn owns(&self, id: TimerId) -> bool {
        id.0 & TAG_BIT == self.tag
    }

    /// Number of live timers (including one being run).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.deadlines.len()
    }

    /// Schedules `task` at `deadline`, then every `period` if given.
    pub(crate) fn insert(&mut self, deadline: Instant, period: Option<Duration>, task: T) -> TimerId {
        self.next_id += 1;
        let id = self.next_id | self.tag;
        self.by_deadline.insert((deadline, id), (task, period));
        self.deadlines.insert(id, Some(deadline));
        TimerId(id)
    }

    /// Whether `id` is still pending (or running, if periodic).
    pub(crate) fn contains(&self, id: TimerId) -> bool {
        self.deadlines.contains_key(&id.0)
    }

    /// The task of a pending timer (not one that fired, was cancelled, or is running now).
    pub(crate) fn task(&self, id: TimerId) -> Option<&T> {
        let deadline = (*self.deadlines.get(&id.0)?)?;
        self.by_deadline.get(&(deadline, id.0)).map(|(task, _)| task)
    }

    /// Cancels a timer; `false` if it already fired (one-shot) or was cancelled.
    pub(crate) fn cancel(&mut self, id: TimerId) -> bool {
        match self.deadlines.remove(&id.0) {
            Some(Some(deadline)) => {
                self.by_deadline.remove(&(deadline, id.0));
                true
            }
            // Running right now: removing it from `deadlines` stops `reschedule`.
            Some(None) => true,
            None => false,
        }
    }

    /// The deadline of the timer [`TimerQueue::pop_due`] would pop, if any.
    pub(crate) fn peek_due(&self, now: Instant, mark: Mark) -> Option<Instant> {
        let (&(deadline, id), _) = self.by_deadline.iter().next()?;
        (deadline <= now && id & !TAG_BIT <= mark.0).then_some(deadline)
    }

    /// The earliest deadline, if any.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.by_deadline.keys().next().map(|(d, _)| *d)
    }

    /// A mark of the timers set so far: [`TimerQueue::pop_due`] with it pops none set later.
    pub(crate) fn mark(&self) -> Mark {
        Mark(self.next_id)
    }

    /// Pops the earliest timer whose deadline is `<= now`.
    ///
    /// A periodic timer stays known (cancellable) while it runs; hand it back with
    /// [`TimerQueue::reschedule`].
    #[cfg(test)]
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<Expired<T>> {
        self.pop_due(now, Mark(u64::MAX))
    }

    /// Pops the earliest timer whose deadline is `<= now` and that was set before `mark`: a
    /// loop turn runs what was due when it began, so a timer that sets itself again with no
    /// delay runs once a turn instead of holding its thread forever.
    ///
    /// Timers set after the mark never come first among the due ones: they are due at the
    /// earliest at the `now` they were set with, and among equal deadlines the older come first.
    pub(crate) fn pop_due(&mut self, now: Instant, mark: Mark) -> Option<Expired<T>> {
        let (&(deadline, id), _) = self.by_deadline.iter().next()?;
        if deadline > now || id & !TAG_BIT > mark.0 {
            return None;
        }
        let (task, period) = self.by_deadline.remove(&(deadline, id))?;
        if period.is_some() {
            self.deadlines.insert(id, None);
        } else {
            self.deadlines.remove(&id);
        }
        Some(Expired { id: TimerId(id), deadline, period, task })
    }

    /// Removes every timer and returns their tasks, earliest first (e.g. to report what will
    /// never run at shutdown).
    pub(crate) fn take_all(&mut self) -> Vec<T> {
        self.deadlines.clear();
        std::mem::take(&mut self.by_deadline).into_values().map(|(task, _)| task).collect()
    }

    /// Puts a periodic timer back after it ran, unless it was cancelled meanwhile.
    ///
    /// The next deadline counts from the previous one (no drift), but never lies in the past.
    pub(crate) fn reschedule(&mut self, expired: Expired<T>, now: Instant) {
        let Some(period) = expired.period else { return };
        let Some(slot) = self.deadlines.get_mut(&expired.id.0) else { return };
        let mut next = after(expired.deadline, period);
        if next <= now {
            next = after(now, period);
        }
        *slot = Some(next);
        self.by_deadline.insert((next, expired.id.0), (expired.task, Some(period)));
    }
}

/// Waits longer than this (about a century) are as good as "never"; capping them keeps
/// `Instant` arithmetic from overflowing when a user passes e.g. `Duration::MAX`.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `now + wait`, where a wait too long to represent means "a century from now" (never, in
/// practice) instead of an overflow panic.
pub(crate) fn after(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait.min(FOREVER)).unwrap_or(now)
}

/// Rounds a wait up to whole milliseconds for `epoll_wait` (never 0 for a non-zero wait, so a
/// timer is not polled in a busy loop just before its deadline).
pub(crate) fn timeout_ms(wait: Duration) -> i32 {
    let ms = wait.as_nanos().div_ceil(1_000_000);
    ms.min(i32::MAX as u128) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_in_deadline_order_then_insertion_order() {
        let mut q = TimerQueue::new(false);
        let t0 = Instant::now();
        q.insert(t0 + Duration::from_millis(20), None, "c");
        q.insert(t0 + Duration::from_millis(10), None, "a");
        q.insert(t0 + Duration::from_millis(10), None, "b");
        assert_eq!(q.next_deadline(), Some(t0 + Duration::from_millis(10)));
        assert!(q.pop_expired(t0).is_none());
        let order: Vec<_> = std::iter::from_fn(|| q.pop_expired(t0 + Duration::from_secs(1)).map(|e| e.task)).collect();
        assert_eq!(order, ["a", "b", "c"]);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn cancel_and_periodic() {
        let mut q = TimerQueue::new(true);
        let t0 = Instant::now();
        let one = q.insert(t0, None, 1);
        let every = q.insert(t0, Some(Duration::from_millis(5)), 2);
        assert!(q.owns(one) && q.owns(every));
        assert!(!TimerQueue::<u8>::new(false).owns(one));
        assert!(q.cancel(one));
        assert!(!q.cancel(one));
        let e = q.pop_expired(t0).unwrap();
        assert_eq!(e.task, 2);
        q.reschedule(e, t0);
        assert_eq!(q.next_deadline(), Some(t0 + Duration::from_millis(5)));
        let e = q.pop_expired(t0 + Duration::from_millis(5)).unwrap();
        assert!(q.cancel(every), "cancel while running");
        q.reschedule(e, t0);
        assert_eq!(q.next_deadline(), None);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn huge_waits_do_not_overflow() {
        let now = Instant::now();
        assert!(after(now, Duration::MAX) > now + Duration::from_secs(3600 * 24 * 365));
        assert_eq!(after(now, Duration::from_secs(1)), now + Duration::from_secs(1));
    }

    #[test]
    fn timeout_rounds_up() {
        assert_eq!(timeout_ms(Duration::ZERO), 0);
        assert_eq!(timeout_ms(Duration::from_nanos(1)), 1);
        assert_eq!(timeout_ms(Duration::from_micros(1500)), 2);
        assert_eq!(timeout_ms(Duration::from_secs(u64::MAX)), i32::MAX);
    }

    #[test]
    fn a_pass_runs_only_what_was_set_before_it() {
        let mut q = TimerQueue::new(false);
        let t0 = Instant::now();
        q.insert(t0, None, "old");
        let mark = q.mark();
        q.insert(t0, None, "new, due at once");
        assert_eq!(q.peek_due(t0, mark), Some(t0));
        assert_eq!(q.pop_due(t0, mark).map(|e| e.task), Some("old"));
        assert_eq!(q.peek_due(t0, mark), None, "set after the mark: the next pass");
        assert!(q.pop_due(t0, mark).is_none());
        assert_eq!(q.pop_due(t0, q.mark()).map(|e| e.task), Some("new, due at once"));
    }
}
