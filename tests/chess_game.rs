//! The chinese_chess_game example end to end: a scripted game to checkmate between two
//! clients through the server (with an out-of-turn move, an illegal move and malformed lines
//! along the way), a player leaving mid-game, a flood of malformed lines, and the stress
//! client with 2,000 connections. Every read is bounded by the socket's timeout. The limits
//! (timeouts, move clock, line rate) are tested in `chess_limits.rs`.

mod util;

#[path = "../examples/chinese_chess_game/board.rs"]
#[allow(dead_code)]
mod board;
#[path = "../examples/common/cli.rs"]
mod cli;
#[path = "../examples/chinese_chess_game/flood.rs"]
#[allow(dead_code)]
mod flood;
#[path = "../examples/chinese_chess_game/limits.rs"]
#[allow(dead_code)]
mod limits;
#[path = "../examples/chinese_chess_game/lobby.rs"]
#[allow(dead_code)]
mod lobby;
#[path = "../examples/chinese_chess_game/protocol.rs"]
#[allow(dead_code)]
mod protocol;
#[path = "../examples/chinese_chess_game/rules.rs"]
#[allow(dead_code)]
mod rules;
#[path = "../examples/chinese_chess_game/server.rs"]
#[allow(dead_code)]
mod server;
#[path = "../examples/chinese_chess_game/stress.rs"]
#[allow(dead_code)]
mod stress;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use board::{Board, Move};

/// What the stress client tells to start a server (the binary's `main.rs` has it too).
const START_SERVER: &str = "cargo run --release --example chinese_chess_game -- server";
use limits::Limits;
use rules::{check_move, status, Status};

/// A player on a blocking socket whose reads time out (see `util::connect`).
struct Client {
    name: &'static str,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr, name: &'static str) -> Client {
        let s = util::connect(addr);
        Client { name, writer: s.try_clone().unwrap(), reader: BufReader::new(s) }
    }

    /// Connects, reads the greeting and says HELLO.
    fn hello(addr: SocketAddr, name: &'static str) -> Client {
        let mut c = Client::connect(addr, name);
        c.expect("WELCOME kingpin-chess");
        c.send("HELLO kingpin-chess");
        c
    }

    fn send(&mut self, line: &str) {
        self.writer.write_all(format!("{line}\n").as_bytes()).unwrap();
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).unwrap_or_else(|e| panic!("{}: read: {e}", self.name));
        assert!(n > 0, "{}: end of stream while expecting a line", self.name);
        line.trim_end().to_string()
    }

    fn expect(&mut self, want: &str) {
        assert_eq!(self.line(), want, "{} read an unexpected line", self.name);
    }

    fn expect_prefix(&mut self, prefix: &str) -> String {
        let line = self.line();
        assert!(line.starts_with(prefix), "{}: expected {prefix:?}…, got {line:?}", self.name);
        line
    }

    fn expect_closed(&mut self) {
        let mut rest = String::new();
        let n = self.reader.read_line(&mut rest).unwrap_or_else(|e| panic!("{}: read: {e}", self.name));
        assert_eq!(n, 0, "{}: expected end of stream, got {rest:?}", self.name);
    }
}

/// The shortest mate from the opening (found by search with rules.rs): red's cannon takes on
/// c6, black's advisor blocks its own general's escape, red's cannon takes on c9 and mates
/// along the back rank over the advisor on d9.
const MATE: [&str; 5] = ["b2 c2", "b7 c7", "c2 c6", "f9 e8", "c6 c9"];

#[test]
fn the_mating_line_is_a_checkmate_by_the_rules() {
    let mut board = Board::initial();
    for (i, m) in MATE.iter().enumerate() {
        let mv = Move::parse(m).unwrap();
        assert_eq!(check_move(&board, mv), Ok(()), "{m}");
        board.apply(mv);
        let want = if i + 1 == MATE.len() { Status::Checkmate } else { Status::Ongoing };
        assert_eq!(status(&board), want, "after {m}");
    }
}

/// A server on a free port with the default limits (no per-address cap: tests connect from
/// one address).
fn start(threads: usize) -> (kingpin::ServerHandle<server::ChessHandler>, std::sync::Arc<lobby::Lobby>) {
    let limits = Limits { max_conns_per_ip: None, ..Limits::default() };
    server::start("127.0.0.1:0".parse().unwrap(), threads, 4096, limits, None).unwrap()
}

/// The `TURN` line with the default move clock.
fn turn(side: &str) -> String {
    format!("TURN {side} {}", Limits::default().move_time.as_millis())
}

/// The `TURN` line of the game's first move, with its default clock.
fn first_turn() -> String {
    format!("TURN red {}", Limits::default().first_move_time.as_millis())
}

#[test]
fn scripted_game_to_checkmate_with_refused_lines() {
    let (server, lobby) = start(2);
    let mut red = Client::hello(server.local_addr(), "red");
    red.expect("WAIT");
    red.send("MOVE h2 e2");
    red.expect("ERR no_game waiting for an opponent");
    let mut black = Client::hello(server.local_addr(), "black");
    black.expect("START black");
    black.expect(&first_turn());
    red.expect("START red");
    red.expect(&first_turn());

    // Refused lines go to their sender only: black's next line is red's first real move.
    // Four for red and two for black: fewer than the five that close a connection.
    black.send("MOVE b7 c7");
    black.expect("ERR not_your_turn it is red's turn");
    black.send("HELLO kingpin-chess");
    black.expect("ERR malformed HELLO was already said");
    red.send("MOVE b0 d1");
    red.expect("ERR illegal the horse's leg is blocked at c0");
    red.send("MOVE e0 e2");
    red.expect("ERR illegal the general moves one point along a line");
    red.send(&"x".repeat(300));
    red.expect("ERR malformed line longer than 256 bytes");

    for (i, m) in MATE.iter().enumerate() {
        let (mover, other) = if i % 2 == 0 { (&mut red, &mut black) } else { (&mut black, &mut red) };
        mover.send(&format!("MOVE {m}"));
        mover.expect("OK");
        other.expect(&format!("MOVE {m}"));
        if i + 1 < MATE.len() {
            let next = if i % 2 == 0 { "black" } else { "red" };
            mover.expect(&turn(next));
            other.expect(&turn(next));
        }
    }
    for c in [&mut red, &mut black] {
        c.expect("CHECK");
        c.expect("END red checkmate");
        c.expect_closed();
    }
    util::wait_until(Duration::from_secs(10), "the game counted as finished", || {
        lobby.games_finished.load(Ordering::Relaxed) == 1
    });
    assert_eq!(lobby.moves.load(Ordering::Relaxed), MATE.len() as u64);
    server.shutdown();
    server.join().unwrap();
}

#[test]
fn opponent_is_told_when_a_player_leaves() {
    let (server, lobby) = start(2);
    let addr = server.local_addr();

    // A player who leaves while waiting is not paired with the next one.
    let mut early = Client::hello(addr, "early");
    early.expect("WAIT");
    drop(early);
    util::wait_until(Duration::from_secs(10), "the waiting player removed", || !lobby.has_waiting());

    // Once the first move is made, leaving ends the game (before it, see chess_limits.rs).
    let mut red = Client::hello(addr, "red");
    red.expect("WAIT");
    let mut black = Client::hello(addr, "black");
    black.expect("START black");
    black.expect(&first_turn());
    red.expect("START red");
    red.expect(&first_turn());
    red.send("MOVE h2 e2");
    red.expect("OK");
    red.expect(&turn("black"));
    black.expect("MOVE h2 e2");
    black.expect(&turn("black"));
    drop(black);
    red.expect("END red opponent_left");
    red.expect_closed();

    // Resigning ends a game too, for both, even before the first move.
    let mut a = Client::hello(addr, "a");
    a.expect("WAIT");
    let mut b = Client::hello(addr, "b");
    b.expect("START black");
    b.expect(&first_turn());
    a.expect("START red");
    a.expect(&first_turn());
    b.send("RESIGN");
    for c in [&mut b, &mut a] {
        c.expect("END red resign");
        c.expect_closed();
    }
    assert_eq!(lobby.games_finished.load(Ordering::Relaxed), 2);
    server.shutdown();
    server.join().unwrap();
}

#[test]
fn too_many_malformed_lines_close_the_connection() {
    let (server, lobby) = start(1);
    let mut c = Client::connect(server.local_addr(), "garbage");
    c.expect("WELCOME kingpin-chess");
    c.send("one\ntwo\n\u{ff}\nMOVE z9 a0\nfive");
    for _ in 0..protocol::MAX_REFUSED {
        c.expect_prefix("ERR malformed");
    }
    c.expect("BYE errors");
    c.expect_closed();
    assert_eq!(lobby.closed_for_errors.load(Ordering::Relaxed), 1);
    server.shutdown();
    server.join().unwrap();
}

#[test]
fn stress_client_plays_1000_games_on_2000_connections() {
    let started = Instant::now();
    let (server, lobby) = start(2);
    let opts = stress::StressOptions {
        addr: server.local_addr(),
        connections: 2000,
        moves: 16,
        threads: 2,
        timeout: Duration::from_secs(25),
        flooders: 0,
        tls: None,
    };
    let report = stress::run(&opts).unwrap();
    eprintln!("{report}");
    eprintln!(
        "server: {} games, {} with players on different IO threads; whole test {:.2} s",
        lobby.games_started.load(Ordering::Relaxed),
        lobby.cross_thread.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(report.errors, 0, "{report}");
    assert_eq!(report.requeued, 0, "{report}");
    assert_eq!(report.connected, 2000);
    assert_eq!(report.games_completed, 1000);
    assert!(report.moves > 1000 && report.moves <= 16_000, "{report}");
    assert_eq!(lobby.games_finished.load(Ordering::Relaxed), 1000);
    server.shutdown();
    server.join().unwrap();
}

#[test]
fn stress_client_without_a_server_says_so() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let opts = stress::StressOptions {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        connections: 2,
        moves: 4,
        threads: 1,
        timeout: Duration::from_secs(10),
        flooders: 0,
        tls: None,
    };
    let err = stress::run(&opts).unwrap_err().to_string();
    assert!(err.starts_with("cannot reach the chess server at 127.0.0.1:"), "{err}");
    assert!(err.contains(": connection refused (start one with: cargo run"), "{err}");
}
