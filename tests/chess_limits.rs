//! The chess server's limits on its players: the hello deadline, the wait deadline, the move
//! clock, re-queueing a player whose game was called off before its first move, refused lines
//! counted toward the five that close a connection, the line rate, and the stress client's
//! flooders beside real games. Deadlines are shortened to a few hundred milliseconds; every
//! read is bounded by the socket's timeout, and no test asserts how long anything took.

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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kingpin::ServerHandle;

/// What the stress client tells to start a server (the binary's `main.rs` has it too).
const START_SERVER: &str = "cargo run --release --example chinese_chess_game -- server";
use limits::Limits;
use lobby::Lobby;
use server::ChessHandler;

/// A player on a blocking socket whose reads time out (see `util::connect`).
struct Client {
    name: &'static str,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    /// Connects and reads the greeting.
    fn connect(addr: SocketAddr, name: &'static str) -> Client {
        let s = util::connect(addr);
        let mut c = Client { name, writer: s.try_clone().unwrap(), reader: BufReader::new(s) };
        c.expect("WELCOME kingpin-chess");
        c
    }

    /// Connects and says HELLO.
    fn hello(addr: SocketAddr, name: &'static str) -> Client {
        let mut c = Client::connect(addr, name);
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

    fn expect_closed(&mut self) {
        let mut rest = String::new();
        let n = self.reader.read_line(&mut rest).unwrap_or_else(|e| panic!("{}: read: {e}", self.name));
        assert_eq!(n, 0, "{}: expected end of stream, got {rest:?}", self.name);
    }
}

/// A server on a free port with `limits` (and no per-address cap unless they set one).
fn start(limits: Limits) -> (ServerHandle<ChessHandler>, Arc<Lobby>) {
    server::start("127.0.0.1:0".parse().unwrap(), 2, 1024, limits, None).unwrap()
}

/// The default limits without the per-address cap (every test connects from one address).
fn limits() -> Limits {
    Limits { max_conns_per_ip: None, ..Limits::default() }
}

fn stop(server: ServerHandle<ChessHandler>) {
    server.shutdown();
    server.join().unwrap();
}

fn wait_for(counter: &AtomicU64, n: u64, what: &str) {
    util::wait_until(Duration::from_secs(10), what, || counter.load(Ordering::Relaxed) == n);
}

/// Pairs two players: `red` waits, `black` joins; both read `START` and red's `TURN`.
fn pair(addr: SocketAddr, turn: &str) -> (Client, Client) {
    let mut red = Client::hello(addr, "red");
    red.expect("WAIT");
    let mut black = Client::hello(addr, "black");
    black.expect("START black");
    black.expect(turn);
    red.expect("START red");
    red.expect(turn);
    (red, black)
}

#[test]
fn silent_and_trickling_connections_are_closed_at_the_hello_deadline() {
    let (server, lobby) = start(Limits { hello_timeout: Duration::from_millis(200), ..limits() });
    let mut silent = Client::connect(server.local_addr(), "silent");
    // Bytes without a newline do not put the deadline off.
    let mut trickle = Client::connect(server.local_addr(), "trickle");
    trickle.writer.write_all(b"HEL").unwrap();
    for c in [&mut silent, &mut trickle] {
        c.expect("BYE hello_timeout");
        c.expect_closed();
    }
    wait_for(&lobby.hello_timeouts, 2, "two hello timeouts counted");
    assert!(!lobby.has_waiting(), "neither was seated");
    stop(server);
}

#[test]
fn a_player_nobody_comes_for_is_closed_at_the_wait_deadline() {
    let (server, lobby) = start(Limits { wait_timeout: Duration::from_millis(200), ..limits() });
    let mut lonely = Client::hello(server.local_addr(), "lonely");
    lonely.expect("WAIT");
    lonely.expect("BYE wait_timeout");
    lonely.expect_closed();
    wait_for(&lobby.wait_timeouts, 1, "the wait timeout counted");
    assert!(!lobby.has_waiting());
    // The next player waits in its turn; it is not paired with the one that left.
    let mut next = Client::hello(server.local_addr(), "next");
    next.expect("WAIT");
    stop(server);
}

#[test]
fn a_connection_that_never_says_hello_is_never_paired() {
    let (server, _lobby) = start(Limits { hello_timeout: Duration::from_secs(60), ..limits() });
    let addr = server.local_addr();
    let _scanner = Client::connect(addr, "scanner");
    let mut fuzzer = Client::connect(addr, "fuzzer");
    fuzzer.send("MOVE h2 e2");
    fuzzer.expect("ERR no_hello say HELLO kingpin-chess first");
    fuzzer.send("GET / HTTP/1.0");
    let line = fuzzer.line();
    assert!(line.starts_with("ERR malformed"), "{line}");
    // Neither took the waiting seat: the first player waits, the second is paired with it.
    let (mut red, _black) = pair(addr, "TURN red 30000");
    red.send("MOVE h2 e2");
    red.expect("OK");
    stop(server);
}

#[test]
fn the_move_clock_runs_out_and_the_slow_player_loses_on_time() {
    // Only black's clock is short: red's first move has the default 30 s, whatever the load.
    let (server, lobby) = start(Limits { move_time: Duration::from_millis(300), ..limits() });
    let (mut red, mut black) = pair(server.local_addr(), "TURN red 30000");
    red.send("MOVE h2 e2");
    red.expect("OK");
    red.expect("TURN black 300");
    black.expect("MOVE h2 e2");
    black.expect("TURN black 300");
    // Black does not answer.
    for c in [&mut red, &mut black] {
        c.expect("END red time");
        c.expect_closed();
    }
    wait_for(&lobby.time_losses, 1, "the time loss counted");
    wait_for(&lobby.games_finished, 1, "the game counted as finished");
    stop(server);
}

/// Black's timer watching red's long first-move clock gives way to the short move clock once
/// black has moved: red, silent after that, loses on time. Black must answer red within the
/// move clock; a test thread slower than that is tried again with a longer clock, so that
/// the outcome does not depend on how fast the test runs.
#[test]
fn a_short_move_clock_after_a_long_first_move_clock_still_runs_out() {
    for move_time in [1, 4, 16].map(Duration::from_secs) {
        let limits = Limits { move_time, first_move_time: Duration::from_secs(60), ..limits() };
        let (server, lobby) = start(limits);
        let ms = move_time.as_millis();
        let (mut red, mut black) = pair(server.local_addr(), "TURN red 60000");
        red.send("MOVE h2 e2");
        red.expect("OK");
        red.expect(&format!("TURN black {ms}"));
        black.expect("MOVE h2 e2");
        black.expect(&format!("TURN black {ms}"));
        black.send("MOVE h9 g7");
        let answer = black.line();
        if answer == "END red time" {
            eprintln!("black's answer came after {move_time:?}; trying a longer clock");
            stop(server);
            continue;
        }
        assert_eq!(answer, "OK");
        red.expect("MOVE h9 g7");
        for c in [&mut red, &mut black] {
            c.expect(&format!("TURN red {ms}"));
        }
        for c in [&mut red, &mut black] {
            c.expect("END black time");
            c.expect_closed();
        }
        wait_for(&lobby.time_losses, 1, "the time loss counted");
        return stop(server);
    }
    panic!("black never answered within 16 s");
}

#[test]
fn red_who_never_makes_the_first_move_loses_and_black_is_requeued() {
    let (server, lobby) = start(Limits { first_move_time: Duration::from_millis(300), ..limits() });
    let addr = server.local_addr();
    let (mut squatter, mut victim) = pair(addr, "TURN red 300");
    squatter.expect("END black time");
    squatter.expect_closed();
    victim.expect("REQUEUE time");
    victim.expect("WAIT");
    assert_eq!(lobby.games_requeued.load(Ordering::Relaxed), 1);
    assert_eq!(lobby.games_finished.load(Ordering::Relaxed), 0, "a game never begun is not a finished game");
    // The victim plays the next player, as red this time (its own first-move clock is short
    // too, so nothing more is asserted after the pairing).
    let mut next = Client::hello(addr, "next");
    next.expect("START black");
    next.expect("TURN red 300");
    victim.expect("START red");
    victim.expect("TURN red 300");
    stop(server);
}

#[test]
fn a_player_whose_opponent_leaves_before_the_first_move_is_requeued_and_paired_again() {
    let (server, lobby) = start(limits());
    let addr = server.local_addr();
    // Black leaves: red goes back to the queue and plays the next player.
    let (mut red, black) = pair(addr, "TURN red 30000");
    drop(black);
    red.expect("REQUEUE opponent_left");
    red.expect("WAIT");
    let mut next = Client::hello(addr, "next");
    next.expect("START black");
    next.expect("TURN red 30000");
    red.expect("START red");
    red.expect("TURN red 30000");
    red.send("MOVE h2 e2");
    red.expect("OK");
    next.expect("MOVE h2 e2");

    // Red leaves: black goes back to the queue, now the one who waits (and plays red).
    let (red2, mut black2) = pair(addr, "TURN red 30000");
    drop(red2);
    black2.expect("REQUEUE opponent_left");
    black2.expect("WAIT");
    let mut third = Client::hello(addr, "third");
    third.expect("START black");
    black2.expect("START red");
    assert_eq!(lobby.games_requeued.load(Ordering::Relaxed), 2);
    stop(server);
}

#[test]
fn refused_moves_count_toward_the_limit_like_malformed_lines() {
    let (server, lobby) = start(limits());
    let addr = server.local_addr();
    // Out of turn, five times: closed; the game had begun, so the opponent wins.
    let (mut red, mut black) = pair(addr, "TURN red 30000");
    red.send("MOVE h2 e2");
    red.expect("OK");
    red.expect("TURN black 60000");
    for _ in 0..protocol::MAX_REFUSED {
        red.send("MOVE e2 e6");
        red.expect("ERR not_your_turn it is black's turn");
    }
    red.expect("BYE errors");
    red.expect_closed();
    black.expect("MOVE h2 e2");
    black.expect("TURN black 60000");
    black.expect("END black opponent_left");
    black.expect_closed();
    drop((red, black)); // closed: the server's lingering closes end at once

    // Illegal moves, five times: closed; no move was made, so the opponent is re-queued.
    let (mut red, mut black) = pair(addr, "TURN red 30000");
    for _ in 0..protocol::MAX_REFUSED {
        red.send("MOVE e0 e2");
        red.expect("ERR illegal the general moves one point along a line");
    }
    red.expect("BYE errors");
    red.expect_closed();
    black.expect("REQUEUE opponent_left");
    black.expect("WAIT");
    wait_for(&lobby.closed_for_errors, 2, "two connections closed for errors");
    drop(red);
    stop(server);
}

#[test]
fn lines_beyond_the_rate_wait_and_a_flood_is_closed() {
    // One token every 100 s after a burst of two: what is held back stays held in this test.
    let (server, lobby) = start(Limits { line_rate: 0.01, line_burst: 2, ..limits() });
    let addr = server.local_addr();
    let (_red, mut black) = pair(addr, "TURN red 30000");
    // HELLO took black's first token; the first move its second; the next one waits.
    black.send("MOVE a9 a8\nMOVE a9 a8");
    black.expect("ERR not_your_turn it is red's turn");
    wait_for(&lobby.throttled, 1, "a line held back");

    // A flood: held back too, until more is waiting than a person ever sends.
    let mut flood = Client::connect(addr, "flood");
    let mut bytes = b"HELLO kingpin-chess\n".to_vec();
    bytes.extend(b"MOVE a0 a1\n".repeat(800));
    flood.writer.write_all(&bytes).unwrap();
    flood.expect("WAIT");
    flood.expect("ERR no_game waiting for an opponent");
    flood.expect("BYE flooding");
    flood.expect_closed();
    wait_for(&lobby.closed_for_flooding, 1, "the flood closed");
    stop(server);
}

#[test]
fn a_line_held_back_by_the_rate_is_answered_later() {
    let (server, _lobby) = start(Limits { line_rate: 20.0, line_burst: 1, ..limits() });
    let mut c = Client::hello(server.local_addr(), "quick");
    c.expect("WAIT");
    // Beyond the burst: held for a token, then answered, and the connection stays.
    c.send("MOVE a0 a1\nMOVE a0 a1");
    c.expect("ERR no_game waiting for an opponent");
    c.expect("ERR no_game waiting for an opponent");
    stop(server);
}

#[test]
fn flooders_are_closed_and_every_game_beside_them_completes() {
    // The server's real defaults, per-address cap included.
    let (server, lobby) = start(Limits::default());
    let opts = stress::StressOptions {
        addr: server.local_addr(),
        connections: 40,
        moves: 20,
        threads: 1,
        timeout: Duration::from_secs(60),
        flooders: 5,
        tls: None,
    };
    let report = stress::run(&opts).unwrap();
    eprintln!("{report}");
    assert_eq!(report.errors, 0, "{report}");
    assert_eq!(report.games_completed, 20, "{report}");
    let flood = report.flood.as_ref().expect("a flood report");
    assert_eq!(flood.never_closed, 0, "{report}");
    assert!(flood.closed >= 5 && flood.byes >= 1, "{report}");
    assert!(flood.max_answered <= u64::from(protocol::MAX_REFUSED), "{report}");
    assert!(lobby.closed_for_errors.load(Ordering::Relaxed) >= 5);
    stop(server);
}
