//! Matchmaking and the games, shared by every IO thread: the waiting slot, each game's board,
//! players and move clock, and the server's counters.
//!
//! Lock order: the waiting slot before a game, and never two games at once. Replies to the
//! other player go through its [`ConnHandle`], which only queues them to its IO thread, so
//! they may be sent under a game's lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kingpin::{ConnHandle, Error};
use parking_lot::Mutex;

use crate::board::{Board, Side};
use crate::protocol::Reply;

/// Where a game stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Red is waiting for an opponent.
    Waiting,
    Playing,
    /// Ended with `END`; its players are being closed.
    Over,
    /// Called off before its first move: the player left behind was put back in the queue.
    Aborted,
}

/// One game, shared by its two players' connections.
pub struct Game {
    pub board: Board,
    /// Red's and black's connections (black's once it joined).
    players: [Option<ConnHandle>; 2],
    pub state: State,
    /// Moves made so far; the move clock's timers carry it, to tell a stale timer.
    pub plies: u32,
    /// When the side to move runs out of time (while playing).
    pub deadline: Instant,
}

impl Game {
    /// The connection of `side`'s player, if it has joined.
    pub fn player(&self, side: Side) -> Option<&ConnHandle> {
        self.players[side as usize].as_ref()
    }

    /// Sends `line` to `side`'s player, from any thread. A player that has just left cannot
    /// be reached; its own `on_closed` ends the game, so that error is ignored. A player whose
    /// output is full does not read what it is told: it is let go (its `on_closed` ends the
    /// game too).
    pub fn tell(&self, side: Side, line: &str) {
        if let Some(h) = self.player(side) {
            if let Err(Error::Full) = h.send(line.as_bytes()) {
                log::warn!("conn {}: not reading its moves, closing", h.id());
                let _ = h.close();
            }
        }
    }

    /// Closes `side`'s connection once what was sent to it is written.
    pub fn dismiss(&self, side: Side) {
        if let Some(h) = self.player(side) {
            let _ = h.close();
        }
    }

    /// Starts the clock of the side to move: it has `move_time` from `now`.
    pub fn start_clock(&mut self, now: Instant, move_time: Duration) {
        self.deadline = now + move_time;
    }
}

/// The `TURN` line for the side to move of `board`, who has `time` for it.
pub fn turn_line(board: &Board, time: Duration) -> String {
    format!("{}\n", Reply::Turn(board.turn(), time.as_millis().min(u64::MAX as u128) as u64))
}

/// Data shared by every IO thread: the waiting player, and counters.
#[derive(Default)]
pub struct Lobby {
    waiting: Mutex<Option<Arc<Mutex<Game>>>>,
    /// Games that began (both players present).
    pub games_started: AtomicU64,
    /// Games that ended with `END`, by any reason.
    pub games_finished: AtomicU64,
    /// Games called off before their first move; the player left behind was re-queued.
    pub games_requeued: AtomicU64,
    /// Moves accepted.
    pub moves: AtomicU64,
    /// Games whose two players live on different IO threads (their moves cross threads).
    pub cross_thread: AtomicU64,
    /// Players who ran out of time on the move clock.
    pub time_losses: AtomicU64,
    /// Connections closed for not saying `HELLO` in time.
    pub hello_timeouts: AtomicU64,
    /// Players closed for waiting longer than the wait timeout.
    pub wait_timeouts: AtomicU64,
    /// Connections closed after too many refused lines.
    pub closed_for_errors: AtomicU64,
    /// Connections closed for flooding (over the line rate with a backlog).
    pub closed_for_flooding: AtomicU64,
    /// Times a connection's lines were held back by the line rate.
    pub throttled: AtomicU64,
    /// Connections whose TLS handshake failed (not TLS, an untrusted certificate, too slow).
    pub tls_failures: AtomicU64,
}

/// Adds one to a counter.
pub fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Lobby {
    /// Whether a player is waiting for an opponent.
    pub fn has_waiting(&self) -> bool {
        self.waiting.lock().is_some()
    }

    /// Seats the player `me`: black in the waiting game if there is one — the game starts, red's
    /// clock runs for `first_move_time`, and red is told `START red` and `TURN` — else red in a
    /// new game that waits.
    pub fn join(&self, me: ConnHandle, first_move_time: Duration) -> (Arc<Mutex<Game>>, Side) {
        let mut waiting = self.waiting.lock();
        if let Some(game) = waiting.take() {
            let mut g = game.lock();
            if g.state == State::Waiting {
                if g.player(Side::Red).is_some_and(|red| red.loop_index() != me.loop_index()) {
                    count(&self.cross_thread);
                }
                g.players[Side::Black as usize] = Some(me);
                g.state = State::Playing;
                g.start_clock(Instant::now(), first_move_time);
                g.tell(Side::Red, &format!("{}\n{}", Reply::Start(Side::Red), turn_line(&g.board, first_move_time)));
                drop(g);
                count(&self.games_started);
                return (game, Side::Black);
            }
        }
        let game = Arc::new(Mutex::new(Game {
            board: Board::initial(),
            players: [Some(me), None],
            state: State::Waiting,
            plies: 0,
            deadline: Instant::now(),
        }));
        *waiting = Some(game.clone());
        (game, Side::Red)
    }

    /// Takes `game` out of the waiting slot; `false` if it was not there (an opponent joined
    /// it, or it was never waiting).
    pub fn unwait(&self, game: &Arc<Mutex<Game>>) -> bool {
        let mut waiting = self.waiting.lock();
        if waiting.as_ref().is_some_and(|g| Arc::ptr_eq(g, game)) {
            *waiting = None;
            true
        } else {
            false
        }
    }

    /// Marks the game over, counting it if it was being played.
    pub fn finish(&self, g: &mut Game) {
        if g.state == State::Playing {
            count(&self.games_finished);
        }
        g.state = State::Over;
    }

    /// Calls the game off before its first move; the caller puts the player left behind back
    /// in the queue.
    pub fn abort(&self, g: &mut Game) {
        if g.state == State::Playing {
            count(&self.games_requeued);
        }
        g.state = State::Aborted;
    }
}
