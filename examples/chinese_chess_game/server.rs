//! The game server: an [`IoHandler`] that pairs players as they connect, checks every move
//! with `rules.rs`, and relays it to the opponent — wherever the opponent's connection lives.
//!
//! # Threads and locks
//!
//! Each IO thread has its own [`ChessHandler`]; what they share is the [`Lobby`]:
//!
//! - the waiting player's game, a `Mutex<Option<..>>` touched only on connect and disconnect;
//! - each game, an `Arc<Mutex<Game>>` held by its two players' connections (their state):
//!   a move locks only its own game. The game holds both players' [`ConnHandle`]s, so a move
//!   reaches the opponent with `ConnHandle::send`, queued to the opponent's IO thread whether
//!   that is this thread or another — nothing polls a shared map.
//!
//! Lock order: the waiting slot before a game, never the other way.
//!
//! Ordering: a player's own replies (`OK`, `ERR`) are sent directly from its callback, and the
//! opponent's answer can only reach it through its loop's mailbox, which runs after that
//! callback; so a player always reads `OK` before the reply to its move.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use kingpin::{CloseReason, Conn, ConnHandle, EpollTPServer, Error, IoHandler, ServerConfig, ServerHandle};
use parking_lot::Mutex;

use crate::board::{Board, Side};
use crate::protocol::{next_line, EndReason, ErrKind, Line, Reply, Request, MAX_LINE, MAX_MALFORMED};
use crate::rules::{check_move, in_check, status, Status};

/// Where a game stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Red is waiting for an opponent.
    Waiting,
    Playing,
    Over,
}

/// One game, shared by its two players' connections.
pub struct Game {
    board: Board,
    red: ConnHandle,
    black: Option<ConnHandle>,
    state: State,
}

impl Game {
    /// Sends `line` to `side`'s player, from any thread. A player that has just left cannot
    /// be reached; its own `on_closed` ends the game, so that error is ignored. A player whose
    /// output is full does not read what it is told: it is let go (its `on_closed` ends the
    /// game too).
    fn tell(&self, side: Side, line: &str) {
        let handle = if side == Side::Red { Some(&self.red) } else { self.black.as_ref() };
        if let Some(h) = handle {
            if let Err(Error::Full) = h.send(line.as_bytes()) {
                log::warn!("conn {}: not reading its moves, closing", h.id());
                let _ = h.close();
            }
        }
    }

    /// Closes `side`'s connection once what was sent to it is written.
    fn dismiss(&self, side: Side) {
        let handle = if side == Side::Red { Some(&self.red) } else { self.black.as_ref() };
        if let Some(h) = handle {
            let _ = h.close();
        }
    }
}

/// Data shared by every IO thread: the waiting player, and counters.
#[derive(Default)]
pub struct Lobby {
    waiting: Mutex<Option<Arc<Mutex<Game>>>>,
    /// Games that began (both players present).
    pub games_started: AtomicU64,
    /// Games that ended, by any reason.
    pub games_finished: AtomicU64,
    /// Moves accepted.
    pub moves: AtomicU64,
    /// Games whose two players live on different IO threads (their moves cross threads).
    pub cross_thread: AtomicU64,
}

impl Lobby {
    /// Whether a player is waiting for an opponent.
    pub fn has_waiting(&self) -> bool {
        self.waiting.lock().is_some()
    }

    /// Seats the player `me`: black in the waiting game if there is one (and tells red that the
    /// game starts), else red in a new game that waits.
    fn join(&self, me: ConnHandle) -> (Arc<Mutex<Game>>, Side) {
        let mut waiting = self.waiting.lock();
        if let Some(game) = waiting.take() {
            let mut g = game.lock();
            if g.state == State::Waiting {
                if g.red.loop_index() != me.loop_index() {
                    self.cross_thread.fetch_add(1, Ordering::Relaxed);
                }
                g.black = Some(me);
                g.state = State::Playing;
                g.tell(Side::Red, &format!("{}\n", Reply::Start(Side::Red)));
                drop(g);
                self.games_started.fetch_add(1, Ordering::Relaxed);
                return (game, Side::Black);
            }
        }
        let game = Arc::new(Mutex::new(Game { board: Board::initial(), red: me, black: None, state: State::Waiting }));
        *waiting = Some(game.clone());
        (game, Side::Red)
    }

    /// Marks the game over, counting it if it was being played.
    fn finish(&self, g: &mut Game) {
        if g.state == State::Playing {
            self.games_finished.fetch_add(1, Ordering::Relaxed);
        }
        g.state = State::Over;
    }
}

/// What a connection remembers (the handler's typed `ConnState`): its seat once it has
/// joined, its malformed-line count, and whether it is skipping an overlong line.
#[derive(Default)]
pub struct Player {
    seat: Option<Seat>,
    malformed: u32,
    skipping: bool,
}

/// A player's place: its game and its side.
struct Seat {
    game: Arc<Mutex<Game>>,
    side: Side,
}

/// The server's handler, one per IO thread.
pub struct ChessHandler {
    lobby: Arc<Lobby>,
}

impl ChessHandler {
    /// A handler sharing `lobby` with the other IO threads.
    pub fn new(lobby: &Arc<Lobby>) -> Self {
        ChessHandler { lobby: lobby.clone() }
    }

    /// Carries out one well-formed request of the player on `conn`.
    fn request(&self, conn: &mut Conn<'_, Player>, req: Request) {
        let Some(seat) = &conn.state().seat else { return };
        let (game, side) = (seat.game.clone(), seat.side);
        let mut g = game.lock();
        match g.state {
            State::Waiting => return send(conn, &Reply::Err(ErrKind::NoGame, "waiting for an opponent".into())),
            State::Over => return, // the END has been sent; the connection is closing
            State::Playing => {}
        }
        let (mine, theirs, end) = match req {
            Request::Resign => {
                let end = Reply::End(side.opponent(), EndReason::Resign).to_string();
                (end.clone() + "\n", end + "\n", true)
            }
            Request::Move(mv) => {
                if g.board.turn() != side {
                    let text = format!("it is {}'s turn", g.board.turn());
                    return send(conn, &Reply::Err(ErrKind::NotYourTurn, text));
                }
                if let Err(why) = check_move(&g.board, mv) {
                    return send(conn, &Reply::Err(ErrKind::Illegal, why.to_string()));
                }
                g.board.apply(mv);
                self.lobby.moves.fetch_add(1, Ordering::Relaxed);
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
                if let Some(reason) = outcome {
                    tail += &format!("{}\n", Reply::End(side, reason));
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
        }
    }

    /// Answers a malformed line; closes the connection after [`MAX_MALFORMED`] of them.
    fn malformed(&self, conn: &mut Conn<'_, Player>, why: String) {
        let player = conn.state_mut();
        player.malformed += 1;
        let count = player.malformed;
        send(conn, &Reply::Err(ErrKind::Malformed, why));
        if count >= MAX_MALFORMED {
            log::info!("closing {}: {count} malformed lines", conn.peer_addr());
            conn.close();
        }
    }
}

/// Sends one reply line on `conn`.
fn send(conn: &mut Conn<'_, Player>, reply: &Reply) {
    conn.send(format!("{reply}\n").as_bytes());
}

impl IoHandler for ChessHandler {
    type ConnState = Player;

    fn on_connect(&mut self, conn: &mut Conn<'_, Player>) {
        send(conn, &Reply::Welcome);
        let me = conn.handle();
        let (game, side) = self.lobby.join(me);
        send(conn, &if side == Side::Red { Reply::Wait } else { Reply::Start(Side::Black) });
        conn.state_mut().seat = Some(Seat { game, side });
    }

    fn on_message(&mut self, conn: &mut Conn<'_, Player>) {
        if conn.state().seat.is_none() {
            return;
        }
        let mut skipping = conn.state().skipping;
        while !conn.is_closing() {
            let Some(line) = next_line(conn.input(), &mut skipping) else { break };
            match line {
                Line::Text(text) => match Request::parse(&text) {
                    Ok(req) => self.request(conn, req),
                    Err(why) => self.malformed(conn, why),
                },
                Line::TooLong => self.malformed(conn, format!("line longer than {MAX_LINE} bytes")),
                Line::Invalid => self.malformed(conn, "line is not UTF-8".into()),
            }
        }
        if conn.is_closing() {
            conn.input().clear();
        }
        conn.state_mut().skipping = skipping;
    }

    fn on_closed(&mut self, conn: &mut Conn<'_, Player>, reason: &CloseReason) {
        let Some(p) = conn.state_mut().seat.take() else { return };
        log::debug!("{} ({}) left: {reason}", conn.peer_addr(), p.side);
        {
            let mut waiting = self.lobby.waiting.lock();
            if waiting.as_ref().is_some_and(|g| Arc::ptr_eq(g, &p.game)) {
                *waiting = None;
            }
        }
        let mut g = p.game.lock();
        if g.state == State::Playing {
            let other = p.side.opponent();
            g.tell(other, &format!("{}\n", Reply::End(other, EndReason::OpponentLeft)));
            g.dismiss(other);
        }
        self.lobby.finish(&mut g);
    }
}

/// Starts a chess server on `addr` with `threads` IO threads and an accept queue of
/// `backlog`; returns it and its lobby (for the counters).
///
/// # Errors
/// When the address cannot be bound, or threads cannot start.
pub fn start(
    addr: SocketAddr,
    threads: usize,
    backlog: u32,
    max_conns_per_ip: Option<usize>,
) -> io::Result<(ServerHandle<ChessHandler>, Arc<Lobby>)> {
    let lobby = Arc::new(Lobby::default());
    let config = ServerConfig::new(addr)
        .threads(threads)
        .backlog(backlog)
        .max_input_buffer(64 * 1024)
        .max_connections_per_ip(max_conns_per_ip);
    let server = EpollTPServer::new(config, lobby.clone(), ChessHandler::new).start()?;
    Ok((server, lobby))
}
