//! Chinese chess (xiangqi) on kingpin: a server that pairs players and referees every move, a
//! terminal client for people, and a stress client that plays thousands of games at once.
//! See README.md in this folder for the protocol and the rules.
//!
//! ```text
//! cargo run --release --example chinese_chess_game -- server              # 127.0.0.1:8889
//! cargo run --release --example chinese_chess_game -- play                # in two terminals
//! cargo run --release --example chinese_chess_game -- stress --connections 2000 --moves 20
//! ```

mod board;
mod client;
mod protocol;
mod rules;
mod server;
mod stress;
mod view;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use clap::{Parser, Subcommand};
use kingpin::Shutdown;

/// Chinese chess over kingpin.
#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Pair players as they connect and referee their games.
    Server {
        /// Address to listen on.
        #[arg(long, default_value = protocol::DEFAULT_ADDR)]
        addr: SocketAddr,
        /// IO threads (default: one per CPU).
        #[arg(long)]
        threads: Option<usize>,
        /// Length of the accept queue (the kernel caps it at net.core.somaxconn).
        #[arg(long, default_value_t = 4096)]
        backlog: u32,
        /// Most connections open at once from one peer address (0: no limit). The default
        /// leaves room for `stress` with its default 2,000 players from one host.
        #[arg(long, default_value_t = 2500)]
        max_conns_per_ip: usize,
    },
    /// Play a game in this terminal.
    Play {
        /// The server's address.
        #[arg(long, default_value = protocol::DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Draw without ANSI colours (also when NO_COLOR is set).
        #[arg(long)]
        no_colour: bool,
    },
    /// Play many random games at once and report throughput, latency and errors.
    Stress {
        /// The server's address.
        #[arg(long, default_value = protocol::DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Connections (an even number: they play in pairs).
        #[arg(long, default_value_t = 2000)]
        connections: usize,
        /// Plies per game; then the side to move resigns.
        #[arg(long, default_value_t = 20)]
        moves: u32,
        /// Client IO threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Longest the run may take, in seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// Extra connections that flood moves out of turn beside the games (even; 0: none).
        #[arg(long, default_value_t = 0)]
        flooders: usize,
    },
}

fn serve(addr: SocketAddr, threads: Option<usize>, backlog: u32, max_conns_per_ip: usize) -> std::io::Result<()> {
    let stop = Arc::new(OnceLock::<Shutdown>::new());
    let on_signal = stop.clone();
    kingpin::on_termination(move || {
        if let Some(s) = on_signal.get() {
            s.shutdown();
        }
    })?;
    // After on_termination, so the logger's thread inherits the blocked signals too.
    let _log = kingpin::LoggerBuilder::new().init().map_err(std::io::Error::other)?;
    let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let (server, lobby) = server::start(addr, threads, backlog, (max_conns_per_ip > 0).then_some(max_conns_per_ip))?;
    let _ = stop.set(server.shutdown_handle());
    println!("chess server on {} with {threads} IO threads (Ctrl+C to stop)", server.local_addr());
    // A line every few seconds while games are being played.
    std::thread::spawn(move || {
        let mut last = (0, 0, 0, false);
        loop {
            std::thread::sleep(Duration::from_secs(5));
            let now = (
                lobby.games_started.load(Ordering::Relaxed),
                lobby.games_finished.load(Ordering::Relaxed),
                lobby.moves.load(Ordering::Relaxed),
                lobby.has_waiting(),
            );
            if now != last {
                println!(
                    "games started {} ({} across IO threads), finished {}, moves {}{}",
                    now.0,
                    lobby.cross_thread.load(Ordering::Relaxed),
                    now.1,
                    now.2,
                    if now.3 { ", a player is waiting" } else { "" }
                );
                last = now;
            }
        }
    });
    server.join()?;
    println!("stopped");
    Ok(())
}

fn main() {
    let result = match Args::parse().command {
        Command::Server { addr, threads, backlog, max_conns_per_ip } => serve(addr, threads, backlog, max_conns_per_ip),
        Command::Play { addr, no_colour } => client::play(addr, !no_colour),
        Command::Stress { addr, connections, moves, threads, timeout, flooders } => {
            let opts = stress::StressOptions {
                addr,
                connections,
                moves,
                threads,
                timeout: Duration::from_secs(timeout),
                flooders,
            };
            println!("stress: {connections} connections to {addr}, {moves} plies per game, {threads} IO threads");
            stress::run(&opts).map(|report| {
                println!("{report}");
                if report.errors > 0 {
                    std::process::exit(1);
                }
            })
        }
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}
