//! What the server allows its players, with the defaults of a server facing the internet:
//! how long a connection may take to say `HELLO`, wait for an opponent, and think over a move;
//! how fast it may send lines; how many connections one address may hold. And the token
//! bucket that enforces the line rate.

use std::time::{Duration, Instant};

/// The server's limits on its players. `Limits::default()` is what `server` runs with unless
/// told otherwise on the command line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// Longest a new connection may take to send `HELLO` (a port scanner or a connection
    /// that never speaks is closed then, with `BYE hello_timeout`). Counted from the
    /// connect, however the bytes trickle in. Default 10 s.
    pub hello_timeout: Duration,
    /// Longest a player may wait for an opponent (`BYE wait_timeout`). Default 10 minutes.
    pub wait_timeout: Duration,
    /// The move clock: the side to move must move within this, or lose on time
    /// (`END <other> time`). Default 60 s, the step time of the usual xiangqi apps.
    pub move_time: Duration,
    /// The clock of the game's first move, red's: shorter than the move clock, as nothing is
    /// to be thought over yet. If it runs out, no game was played: red is closed with
    /// `END black time` and black is put back in the queue. Default 30 s.
    pub first_move_time: Duration,
    /// Lines a connection may send per second, sustained (0: no limit). Default 10: no person
    /// types that fast. Beyond the burst, lines wait in the input until the rate allows them;
    /// a connection with more than [`FLOOD_BACKLOG`] bytes waiting is closed with
    /// `BYE flooding`.
    pub line_rate: f64,
    /// Lines a connection may send at once before the rate applies. Default 40: far more than
    /// a person sends at once, and a stress client's whole game up to 76 plies (a line per own
    /// move, with `HELLO` and `RESIGN`).
    pub line_burst: u32,
    /// Most connections open at once from one address (`None`: no limit). Default 512: far
    /// more than the players of one household or office, 2.5% of a 20,000-descriptor
    /// process; a load test from one host with more connections needs more (or none).
    pub max_conns_per_ip: Option<usize>,
}

/// Bytes of unread input a throttled connection may hold before it is closed as a flood: 16
/// lines of the longest kind, more than a person ever has in flight.
pub const FLOOD_BACKLOG: usize = 4096;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            hello_timeout: Duration::from_secs(10),
            wait_timeout: Duration::from_secs(600),
            move_time: Duration::from_secs(60),
            first_move_time: Duration::from_secs(30),
            line_rate: 10.0,
            line_burst: 40,
            max_conns_per_ip: Some(512),
        }
    }
}

/// A token bucket of lines: full (`burst` tokens) at the start, refilled at `rate` tokens per
/// second, one token per line. Kept in each connection's state; times come from the caller,
/// so it is tested without a clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct LineBudget {
    tokens: f64,
    /// When `tokens` was last brought up to date; `None` before the first line.
    at: Option<Instant>,
}

impl LineBudget {
    /// Takes a token for one line at `now`. `Err(wait)`: none left; one will be there after
    /// `wait`. A `rate` of 0 (or less) means no limit.
    pub fn take(&mut self, now: Instant, rate: f64, burst: u32) -> Result<(), Duration> {
        if rate <= 0.0 || rate.is_nan() {
            return Ok(());
        }
        let burst = f64::from(burst.max(1));
        self.tokens = match self.at {
            None => burst,
            Some(at) => (self.tokens + now.saturating_duration_since(at).as_secs_f64() * rate).min(burst),
        };
        self.at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            // At least a millisecond, so a timer set for it never fires before the token.
            let wait = Duration::try_from_secs_f64((1.0 - self.tokens) / rate).unwrap_or(Duration::MAX);
            Err(wait.max(Duration::from_millis(1)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut b = LineBudget::default();
        for _ in 0..3 {
            assert_eq!(b.take(t0, 10.0, 3), Ok(()));
        }
        let wait = b.take(t0, 10.0, 3).unwrap_err();
        assert!(wait > ms(90) && wait <= ms(100), "{wait:?}");
        assert!(b.take(t0 + ms(50), 10.0, 3).is_err(), "half a token is not a token");
        assert_eq!(b.take(t0 + ms(100), 10.0, 3), Ok(()));
        // A long pause refills to the burst, not beyond.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(b.take(later, 10.0, 3), Ok(()));
        }
        assert!(b.take(later, 10.0, 3).is_err());
        // Rate 0: no limit.
        let mut free = LineBudget::default();
        assert!((0..10_000).all(|_| free.take(t0, 0.0, 1).is_ok()));
    }
}
