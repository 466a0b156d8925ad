//! The game server: an [`IoHandler`] that greets each connection, seats it once it says
//! `HELLO`, checks every move with `rules.rs`, relays it to the opponent — wherever the
//! opponent's connection lives — and keeps the clocks and limits of `limits.rs`.
//!
//! # Threads and locks
//!
//! Each IO thread has its own [`ChessHandler`]; what they share is the [`Lobby`]
//! (`lobby.rs`: the waiting slot, each game behind its own lock) and a handle to every IO
//! loop. A move locks only its own game, answers the mover on its own connection, and reaches
//! the opponent with `ConnHandle::send`, queued to the opponent's IO thread — nothing polls.
//! Putting a player back in the queue must change that player's connection state, so it runs
//! on the player's own loop, sent there with `LoopHandle::run`.
//!
//! Ordering: a player's own replies (`OK`, `ERR`) are sent directly from its callback, and the
//! opponent's answer can only reach it through its loop's mailbox, which runs after that
//! callback; so a player always reads `OK` before the reply to its move.
//!
//! # Clocks
//!
//! Every limit is a per-connection timer, checked when it fires (a stale one does nothing):
//! the hello deadline and the wait deadline on the player's own connection; the move clock of
//! the side to move on the *other* player's connection, set when that player moved (or
//! joined: then it is the first move's clock), since that is the thread that knows when the
//! clock started. That timer is kept from move to move while it is due early enough, and set
//! again for the time left when it fires early.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use kingpin::{
    CloseReason, Conn, EpollTPServer, IoHandler, LoopCtx, LoopHandle, ServerConfig, ServerHandle, TimerId, TlsError,
};
use parking_lot::Mutex;

use crate::board::Side;
use crate::limits::{Limits, LineBudget, FLOOD_BACKLOG};
use crate::lobby::{count, turn_line, Game, Lobby, State};
use crate::protocol::{
    ByeReason, EndReason, ErrKind, Line, PlayerLines, Reply, Request, MAX_LINE, MAX_REFUSED, PROTOCOL,
};
use crate::rules::{check_move, in_check, status, Status};

/// Timer tags, one per kind of timer.
const TAG_HELLO: u64 = 1;
const TAG_WAIT: u64 = 2;
const TAG_CLOCK: u64 = 3;
const TAG_THROTTLE: u64 = 4;

/// What the IO threads share: the lobby, the limits, and a handle to each loop.
pub struct Shared {
    lobby: Arc<Lobby>,
    limits: Limits,
    /// Filled by each loop's `on_start`, before it serves a connection.
    loops: Vec<OnceLock<LoopHandle<ChessHandler>>>,
}

/// Where a connection stands.
#[derive(Default)]
enum Stage {
    /// Connected; no `HELLO` yet.
    #[default]
    Greeting,
    /// Said `HELLO`: waiting in a game, or playing it.
    Seated(Seat),
    /// Gave up its seat (the game ended, or the server is closing it); its lines are moot.
    Left,
}

/// What a connection remembers (the handler's typed `ConnState`).
#[derive(Default)]
pub struct Player {
    stage: Stage,
    /// Lines refused so far.
    refused: u32,
    /// Cuts the connection's input into lines (kingpin's `LinesCodec`); remembers an
    /// over-long line being dropped.
    lines: PlayerLines,
    budget: LineBudget,
    /// A line cut from the input but held back by the line rate.
    held: Option<Line>,
    hello_timer: Option<TimerId>,
    wait_timer: Option<TimerId>,
    /// The timer watching the opponent's move clock, and when it fires.
    clock_timer: Option<(TimerId, Instant)>,
    /// Set while lines are held back by the line rate.
    throttle_timer: Option<TimerId>,
}

/// A player's place: its game and its side.
#[derive(Clone)]
struct Seat {
    game: Arc<Mutex<Game>>,
    side: Side,
}

/// The server's handler, one per IO thread.
pub struct ChessHandler {
    shared: Arc<Shared>,
    lobby: Arc<Lobby>,
    limits: Limits,
    /// Paces the info lines about connections closed for misbehaving.
    close_log: Cell<CloseLog>,
    /// The `TURN` lines after a move, red's and black's, formatted once.
    turn_lines: [String; 2],
}

/// Paces the info lines about connections closed for misbehaving, so that an attack does not
/// write the log at its own rate: at most one a second per IO thread, saying how many closes
/// went unlogged since.
#[derive(Clone, Copy, Debug, Default)]
struct CloseLog {
    last: Option<Instant>,
    unlogged: u64,
}

impl CloseLog {
    /// Shortest time between two info lines.
    const EVERY: Duration = Duration::from_secs(1);

    /// A close at `now`: `Some(n)`: log it at info level, with the `n` closes not logged since;
    /// `None`: not now (debug level only).
    fn note(&mut self, now: Instant) -> Option<u64> {
        if self.last.is_some_and(|t| now.saturating_duration_since(t) < Self::EVERY) {
            self.unlogged += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
}

/// Sends one reply line on `conn`.
fn send(conn: &mut Conn<'_, Player>, reply: &Reply) {
    conn.send(format!("{reply}\n").as_bytes());
}

/// The seat of the player on `conn`, if it is seated.
fn seat_of(conn: &Conn<'_, Player>) -> Option<Seat> {
    match &conn.state().stage {
        Stage::Seated(seat) => Some(seat.clone()),
        _ => None,
    }
}

/// Cancels the timer in `slot`, if any.
fn cancel(conn: &mut Conn<'_, Player>, slot: fn(&mut Player) -> &mut Option<TimerId>) {
    if let Some(id) = slot(conn.state_mut()).take() {
        conn.cancel_timer(id);
    }
}

impl ChessHandler {
    /// A handler sharing `shared` with the other IO threads.
    pub fn new(shared: &Arc<Shared>) -> Self {
        ChessHandler {
            shared: shared.clone(),
            lobby: shared.lobby.clone(),
            limits: shared.limits,
            close_log: Cell::new(CloseLog::default()),
            turn_lines: [Side::Red, Side::Black].map(|side| {
                let ms = shared.limits.move_time.as_millis().min(u64::MAX as u128) as u64;
                format!("{}\n", Reply::Turn(side, ms))
            }),
        }
    }

    /// Cuts the lines waiting in `conn`'s input with its [`PlayerLines`] decoder and handles
    /// them, as fast as the line rate allows. Lines beyond it stay in the input until the rate
    /// allows them (a timer; the first one, already cut, is held aside); a connection whose
    /// waiting input passes [`FLOOD_BACKLOG`] meanwhile is closed as a flood.
    fn process(&self, conn: &mut Conn<'_, Player>) {
        let (rate, burst) = (self.limits.line_rate, self.limits.line_burst);
        while !conn.is_closing() {
            if conn.state().throttle_timer.is_some() {
                if conn.input_len() > FLOOD_BACKLOG {
                    let why = format!("flooding, over {rate} lines/s with {} bytes waiting", conn.input_len());
                    self.log_close(conn, &why);
                    count(&self.lobby.closed_for_flooding);
                    self.bye(conn, ByeReason::Flooding);
                }
                break;
            }
            let line = match conn.state_mut().held.take() {
                Some(line) => line,
                None => {
                    // The decoder is the connection's state, which `Conn::decode` cannot
                    // borrow beside the connection: copied out, and back with what it learnt.
                    let mut lines = conn.state().lines;
                    let line = conn.decode(&mut lines);
                    conn.state_mut().lines = lines;
                    let Some(line) = line else { break };
                    line
                }
            };
            let player = conn.state_mut();
            match player.budget.take(Instant::now(), rate, burst) {
                Ok(()) => self.line(conn, line),
                Err(wait) => {
                    count(&self.lobby.throttled);
                    player.held = Some(line);
                    let id = conn.set_timer(wait, TAG_THROTTLE);
                    conn.state_mut().throttle_timer = Some(id);
                }
            }
        }
        if conn.is_closing() {
            conn.input().clear();
        }
    }

    /// Handles one line.
    fn line(&self, conn: &mut Conn<'_, Player>, line: Line) {
        match line {
            Line::Text(text) => match Request::parse(&text) {
                Ok(req) => self.request(conn, req),
                Err(why) => self.refuse(conn, ErrKind::Malformed, why),
            },
            Line::TooLong => self.refuse(conn, ErrKind::Malformed, format!("line longer than {MAX_LINE} bytes")),
            Line::Invalid => self.refuse(conn, ErrKind::Malformed, "line is not UTF-8".into()),
        }
    }

    /// Answers a refused line; closes the connection after [`MAX_REFUSED`] of them.
    fn refuse(&self, conn: &mut Conn<'_, Player>, kind: ErrKind, why: String) {
        let player = conn.state_mut();
        player.refused += 1;
        let refused = player.refused;
        send(conn, &Reply::Err(kind, why));
        if refused >= MAX_REFUSED {
            self.log_close(conn, &format!("{refused} refused lines"));
            count(&self.lobby.closed_for_errors);
            self.bye(conn, ByeReason::Errors);
        }
    }

    /// The player on `conn` leaves its seat, for `why`: when its connection closes, or as soon
    /// as the server decides to close it (its opponent need not wait for the close to linger
    /// out). A waiting game is given up; before the first move the opponent goes back to the
    /// queue; after it, the opponent wins.
    fn leave(&self, conn: &mut Conn<'_, Player>, why: &dyn std::fmt::Display) {
        let Stage::Seated(seat) = std::mem::replace(&mut conn.state_mut().stage, Stage::Left) else { return };
        log::debug!("{} ({}) left: {why}", conn.peer_addr(), seat.side);
        self.lobby.unwait(&seat.game);
        let mut g = seat.game.lock();
        let other = seat.side.opponent();
        match g.state {
            State::Waiting => g.state = State::Over,
            State::Playing if g.plies == 0 => {
                // The opponent's connection state changes, so this runs on its own loop.
                self.lobby.abort(&mut g);
                let Some(h) = g.player(other).cloned() else { return };
                drop(g);
                let game = seat.game.clone();
                if let Some(lp) = self.shared.loops.get(h.loop_index()).and_then(OnceLock::get) {
                    let _ = lp.run(move |handler, ctx| {
                        if let Some(mut conn) = ctx.conn(h.id()) {
                            handler.requeue(&mut conn, &game, EndReason::OpponentLeft);
                        }
                    });
                }
            }
            State::Playing => {
                g.tell(other, &format!("{}\n", Reply::End(other, EndReason::OpponentLeft)));
                g.dismiss(other);
                self.lobby.finish(&mut g);
            }
            State::Over | State::Aborted => {}
        }
    }

    /// Logs why `conn` is closed for misbehaving: at info level at most once a second per IO
    /// thread (with how many were closed meanwhile), every one at debug level.
    fn log_close(&self, conn: &Conn<'_, Player>, why: &str) {
        let mut pace = self.close_log.get();
        match pace.note(Instant::now()) {
            None => log::debug!("closing {}: {why}", conn.peer_addr()),
            Some(0) => log::info!("closing {}: {why}", conn.peer_addr()),
            Some(n) => {
                log::info!("closing {}: {why} ({n} more closed for misbehaving since the last line)", conn.peer_addr())
            }
        }
        self.close_log.set(pace);
    }

    /// Says `BYE`, gives up the player's seat (its opponent is told at once), and closes.
    fn bye(&self, conn: &mut Conn<'_, Player>, reason: ByeReason) {
        send(conn, &Reply::Bye(reason));
        self.leave(conn, &format_args!("BYE {}", reason.name()));
        conn.close();
    }

    /// Seats the player on `conn`: it waits (its wait deadline starts) or its game starts
    /// (and it watches red's clock).
    fn seat(&self, conn: &mut Conn<'_, Player>) {
        let first = self.limits.first_move_time;
        let (game, side) = self.lobby.join(conn.handle(), first);
        if side == Side::Red {
            send(conn, &Reply::Wait);
            cancel(conn, |p| &mut p.wait_timer);
            let id = conn.set_timer(self.limits.wait_timeout, TAG_WAIT);
            conn.state_mut().wait_timer = Some(id);
        } else {
            let turn = turn_line(&game.lock().board, first);
            conn.send(format!("{}\n{turn}", Reply::Start(Side::Black)).as_bytes());
            self.watch_clock(conn, first);
        }
        conn.state_mut().stage = Stage::Seated(Seat { game, side });
    }

    /// Watches the opponent's move clock from this connection: makes sure a timer fires by
    /// `delay` from now. One already due by then is kept — when it fires early it is set again
    /// for the time left — so a move costs no timer work in the usual case.
    fn watch_clock(&self, conn: &mut Conn<'_, Player>, delay: Duration) {
        let due = Instant::now() + delay;
        match conn.state().clock_timer {
            Some((_, at)) if at <= due => return,
            Some((id, _)) => {
                conn.cancel_timer(id);
            }
            None => {}
        }
        let id = conn.set_timer(delay, TAG_CLOCK);
        conn.state_mut().clock_timer = Some((id, due));
    }

    /// Stops watching the opponent's move clock.
    fn unwatch_clock(&self, conn: &mut Conn<'_, Player>) {
        if let Some((id, _)) = conn.state_mut().clock_timer.take() {
            conn.cancel_timer(id);
        }
    }

    /// Carries out one well-formed request of the player on `conn`.
    fn request(&self, conn: &mut Conn<'_, Player>, req: Request) {
        match conn.state().stage {
            Stage::Greeting if req == Request::Hello => {
                cancel(conn, |p| &mut p.hello_timer);
                return self.seat(conn);
            }
            Stage::Greeting => return self.refuse(conn, ErrKind::NoHello, format!("say HELLO {PROTOCOL} first")),
            Stage::Seated(_) | Stage::Left => {}
        }
        let mv = match req {
            Request::Hello => return self.refuse(conn, ErrKind::Malformed, "HELLO was already said".into()),
            Request::Resign => None,
            Request::Move(mv) => Some(mv),
        };
        let Some(Seat { game, side }) = seat_of(conn) else { return };
        let mut g = game.lock();
        match g.state {
            State::Waiting => {
                drop(g);
                return self.refuse(conn, ErrKind::NoGame, "waiting for an opponent".into());
            }
            // The END has been sent and the connection is closing, or the REQUEUE is on its
            // way to this player: the line is moot, not wrong.
            State::Over | State::Aborted => return,
            State::Playing => {}
        }
        let (mine, theirs, end) = match mv {
            None => {
                let end = format!("{}\n", Reply::End(side.opponent(), EndReason::Resign));
                (end.clone(), end, true)
            }
            Some(mv) => {
                if g.board.turn() != side {
                    let text = format!("it is {}'s turn", g.board.turn());
                    drop(g);
                    return self.refuse(conn, ErrKind::NotYourTurn, text);
                }
                if let Err(why) = check_move(&g.board, mv) {
                    drop(g);
                    return self.refuse(conn, ErrKind::Illegal, why.to_string());
                }
                g.board.apply(mv);
                g.plies += 1;
                count(&self.lobby.moves);
                let (mut mine, mut theirs) = (format!("{}\n", Reply::Ok), format!("{}\n", Reply::Move(mv)));
                let outcome = match status(&g.board) {
                    Status::Ongoing => None,
                    Status::Checkmate => Some(EndReason::Checkmate),
                    Status::Stalemate => Some(EndReason::Stalemate),
                };
                let mut tail = String::new();
                if in_check(&g.board, g.board.turn()) {
                    tail = format!("{}\n", Reply::Check);
                }
                match outcome {
                    Some(reason) => tail += &format!("{}\n", Reply::End(side, reason)),
                    None => {
                        g.start_clock(Instant::now(), self.limits.move_time);
                        tail += &self.turn_lines[g.board.turn() as usize];
                    }
                }
                mine += &tail;
                theirs += &tail;
                (mine, theirs, outcome.is_some())
            }
        };
        conn.send(mine.as_bytes());
        g.tell(side.opponent(), &theirs);
        if end {
            self.lobby.finish(&mut g);
            g.dismiss(side.opponent());
            conn.close();
        } else {
            drop(g);
            self.watch_clock(conn, self.limits.move_time);
        }
    }

    /// The timer watching the opponent's move clock fired on `conn`.
    fn clock_fired(&self, conn: &mut Conn<'_, Player>) {
        conn.state_mut().clock_timer = None;
        let Some(Seat { game, side: me }) = seat_of(conn) else { return };
        let mut g = game.lock();
        if g.state != State::Playing || g.board.turn() == me {
            return; // this player's own turn (its next move sets a timer again), or game over
        }
        let now = Instant::now();
        if now < g.deadline {
            let rest = g.deadline - now;
            drop(g);
            return self.watch_clock(conn, rest);
        }
        let slow = me.opponent();
        count(&self.lobby.time_losses);
        let end = format!("{}\n", Reply::End(me, EndReason::Time));
        g.tell(slow, &end);
        g.dismiss(slow);
        if g.plies == 0 {
            // Red never made the first move: no game was played; this player goes back to
            // the queue instead of winning a game that never was.
            self.lobby.abort(&mut g);
            drop(g);
            self.requeue(conn, &game, EndReason::Time);
        } else {
            self.lobby.finish(&mut g);
            drop(g);
            conn.send(end.as_bytes());
            conn.close();
        }
    }

    /// Puts the player on `conn` back in the queue after `game` was called off, if it is still
    /// seated in that game. Runs on the player's own loop.
    fn requeue(&self, conn: &mut Conn<'_, Player>, game: &Arc<Mutex<Game>>, reason: EndReason) {
        let seated_there = seat_of(conn).is_some_and(|s| Arc::ptr_eq(&s.game, game));
        if conn.is_closing() || !seated_there {
            return;
        }
        self.unwatch_clock(conn);
        send(conn, &Reply::Requeue(reason));
        self.seat(conn);
    }
}

impl IoHandler for ChessHandler {
    type ConnState = Player;

    fn on_start(&mut self, ctx: &mut LoopCtx<'_, Self>) {
        let _ = self.shared.loops[ctx.loop_index()].set(ctx.handle());
    }

    fn on_connect(&mut self, conn: &mut Conn<'_, Player>) {
        send(conn, &Reply::Welcome);
        let id = conn.set_timer(self.limits.hello_timeout, TAG_HELLO);
        conn.state_mut().hello_timer = Some(id);
    }

    fn on_message(&mut self, conn: &mut Conn<'_, Player>) {
        self.process(conn);
    }

    fn on_timer(&mut self, conn: &mut Conn<'_, Player>, tag: u64) {
        if conn.is_closing() {
            return;
        }
        match tag {
            TAG_HELLO => {
                conn.state_mut().hello_timer = None;
                if matches!(conn.state().stage, Stage::Greeting) {
                    log::debug!("closing {}: no HELLO within {:?}", conn.peer_addr(), self.limits.hello_timeout);
                    count(&self.lobby.hello_timeouts);
                    self.bye(conn, ByeReason::HelloTimeout);
                }
            }
            TAG_WAIT => {
                conn.state_mut().wait_timer = None;
                let Some(Seat { game, .. }) = seat_of(conn) else { return };
                // Still in the slot: nobody came. (Taken out of it: an opponent joined.)
                if self.lobby.unwait(&game) {
                    game.lock().state = State::Over;
                    count(&self.lobby.wait_timeouts);
                    self.bye(conn, ByeReason::WaitTimeout);
                }
            }
            TAG_CLOCK => self.clock_fired(conn),
            TAG_THROTTLE => {
                conn.state_mut().throttle_timer = None;
                self.process(conn);
            }
            _ => {}
        }
    }

    fn on_tls_error(&mut self, _peer: SocketAddr, _error: &TlsError) {
        // kingpin has logged it; the counter goes on the status line.
        count(&self.lobby.tls_failures);
    }

    fn on_closed(&mut self, conn: &mut Conn<'_, Player>, reason: &CloseReason) {
        self.leave(conn, reason);
    }
}

/// Starts a chess server on `addr` with `threads` IO threads, an accept queue of `backlog`,
/// and `limits`; returns it and its lobby (for the counters).
///
/// # Errors
/// When the address cannot be bound, or threads cannot start.
/// Starts a server on `addr`; with `tls`, every connection speaks TLS, and a connection has
/// the hello timeout for its handshake too.
///
/// # Errors
/// When the address cannot be bound.
pub fn start(
    addr: SocketAddr,
    threads: usize,
    backlog: u32,
    limits: Limits,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> io::Result<(ServerHandle<ChessHandler>, Arc<Lobby>)> {
    let lobby = Arc::new(Lobby::default());
    let shared = Arc::new(Shared {
        lobby: lobby.clone(),
        limits,
        loops: (0..threads.max(1)).map(|_| OnceLock::new()).collect(),
    });
    let mut config = ServerConfig::new(addr)
        .threads(threads)
        .backlog(backlog)
        .max_input_buffer(64 * 1024)
        .max_connections_per_ip(limits.max_conns_per_ip);
    if let Some(tls) = tls {
        // A handshake that does not finish is a connection that does not say HELLO.
        config = config.tls(tls).tls_handshake_timeout(limits.hello_timeout);
    }
    let server = EpollTPServer::new(config, shared, ChessHandler::new).start()?;
    Ok((server, lobby))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_are_logged_at_most_once_a_second_with_the_count_of_the_rest() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut pace = CloseLog::default();
        assert_eq!(pace.note(t0), Some(0));
        assert!((1..=500).all(|i| pace.note(t0 + ms(i)).is_none()));
        assert_eq!(pace.note(t0 + ms(1000)), Some(500));
        assert_eq!(pace.note(t0 + ms(1500)), None);
        assert_eq!(pace.note(t0 + ms(5000)), Some(1));
    }
}
