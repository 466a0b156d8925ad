//! Chinese chess (xiangqi) on kingpin: a server that pairs players and referees every move, a
//! terminal client for people, and a stress client that plays thousands of games at once.
//! See README.md in this folder for the protocol and the rules.
//!
//! ```text
//! cargo run --release --example chinese_chess_game -- server              # 127.0.0.1:8889
//! cargo run --release --example chinese_chess_game -- play                # in two terminals
//! cargo run --release --example chinese_chess_game -- stress --connections 400 --moves 20
//!
//! # over TLS, with a fresh self-signed certificate the clients are told to trust
//! cargo run --release --example chinese_chess_game -- server --self-signed chess-cert.pem
//! cargo run --release --example chinese_chess_game -- play --tls --ca-file chess-cert.pem
//! ```

mod board;
#[path = "../common/cli.rs"]
mod cli;
mod client;
mod flood;
mod limits;
mod lobby;
mod protocol;
mod rules;
mod server;
mod stress;
#[path = "../common/tls.rs"]
mod tls;
mod ui;
mod view;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use clap::{Parser, Subcommand};
use kingpin::Shutdown;

use limits::Limits;

/// The name errors are printed with.
const PROGRAM: &str = "chinese_chess_game";

/// How to start a server, as `server` is told it.
const START_SERVER: &str = "cargo run --release --example chinese_chess_game -- server";

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
        /// IO threads, at least 1 (default: one per CPU).
        #[arg(long, value_parser = cli::at_least_one)]
        threads: Option<usize>,
        /// Length of the accept queue (the kernel caps it at net.core.somaxconn).
        #[arg(long, default_value_t = 4096)]
        backlog: u32,
        /// Most connections open at once from one peer address (0: no limit) [default: 512].
        /// A load test from one host with more connections needs more, or 0.
        #[arg(long)]
        max_conns_per_ip: Option<usize>,
        /// Seconds a new connection has to say HELLO [default: 10].
        #[arg(long, value_parser = cli::seconds)]
        hello_timeout: Option<Duration>,
        /// Seconds a player may wait for an opponent [default: 600].
        #[arg(long, value_parser = cli::seconds)]
        wait_timeout: Option<Duration>,
        /// The move clock: seconds the side to move has, or it loses on time [default: 60].
        #[arg(long, value_parser = cli::seconds)]
        move_time: Option<Duration>,
        /// Seconds red has for the game's first move; if they run out, black is re-queued
        /// [default: 30].
        #[arg(long, value_parser = cli::seconds)]
        first_move_time: Option<Duration>,
        /// Lines per second one connection may send, sustained (0: no limit) [default: 10].
        #[arg(long, value_parser = rate)]
        line_rate: Option<f64>,
        /// Lines one connection may send at once before the rate applies [default: 40].
        #[arg(long, value_parser = cli::at_least_one)]
        line_burst: Option<usize>,
        #[command(flatten)]
        tls: ServerTls,
    },
    /// Play a game in this terminal.
    Play {
        /// The server's address.
        #[arg(long, default_value = protocol::DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Draw without ANSI colours (also when NO_COLOR is set).
        #[arg(long)]
        no_colour: bool,
        #[command(flatten)]
        tls: ClientTls,
    },
    /// Play many random games at once and report throughput, latency and errors.
    Stress {
        /// The server's address.
        #[arg(long, default_value = protocol::DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Connections (an even number: they play in pairs). More than the server's
        /// --max-conns-per-ip (512 by default) are refused.
        #[arg(long, default_value_t = 400)]
        connections: usize,
        /// Plies per game; then the side to move resigns.
        #[arg(long, default_value_t = 20)]
        moves: u32,
        /// Client IO threads.
        #[arg(long, default_value_t = 2, value_parser = cli::at_least_one)]
        threads: usize,
        /// Longest the run may take, in seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// Hostile connections beside the games: they flood MOVE lines without saying HELLO and
        /// reconnect each time the server closes them (0: none).
        #[arg(long, default_value_t = 0)]
        flooders: usize,
        #[command(flatten)]
        tls: ClientTls,
    },
}

/// The server's TLS flags: a certificate and key from files, or a fresh self-signed one.
#[derive(clap::Args)]
struct ServerTls {
    /// Speak TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key", conflicts_with = "self_signed")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Speak TLS with a fresh self-signed certificate for localhost, 127.0.0.1 and ::1, written
    /// to FILE (PEM) for the clients to trust: `play --tls --ca-file FILE`.
    #[arg(long, value_name = "FILE")]
    self_signed: Option<PathBuf>,
}

/// Fails with one plain line (`cannot read key.pem: permission denied`) unless `path` can be
/// opened.
fn readable(path: &Path) -> Result<(), String> {
    std::fs::File::open(path).map(drop).map_err(|e| format!("cannot read {}: {}", path.display(), cli::describe(&e)))
}

/// The clients' TLS flags.
#[derive(clap::Args)]
struct ClientTls {
    /// Connect over TLS; needs --ca-file.
    #[arg(long, requires = "ca_file")]
    tls: bool,
    /// The certificate to trust (PEM): the server's own when it is self-signed, else its CA's.
    #[arg(long, value_name = "FILE", requires = "tls")]
    ca_file: Option<PathBuf>,
    /// The name the server's certificate must be valid for [default: the address of --addr,
    /// or localhost for an unspecified address].
    #[arg(long, value_name = "NAME", requires = "tls")]
    tls_name: Option<String>,
}

impl ServerTls {
    /// The server's rustls config, if it speaks TLS (a self-signed certificate is written out).
    fn config(&self) -> Result<Option<Arc<rustls::ServerConfig>>, String> {
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            readable(cert)?;
            readable(key)?;
            return tls::server_config_from_files(cert, key, &[]).map(Some);
        }
        let Some(path) = &self.self_signed else { return Ok(None) };
        let (config, pem) = tls::self_signed(&[])?;
        std::fs::write(path, pem).map_err(cli::context(format!("cannot write {}", path.display())))?;
        Ok(Some(config))
    }
}

impl ClientTls {
    /// The clients' TLS settings for a server at `addr`, if they speak TLS.
    fn config(&self, addr: SocketAddr) -> Result<Option<stress::TlsClient>, String> {
        let Some(ca_file) = self.ca_file.as_deref().filter(|_| self.tls) else { return Ok(None) };
        let pem = std::fs::read_to_string(ca_file).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => format!("{}: not a PEM file (it is not text)", ca_file.display()),
            _ => format!("cannot read {}: {}", ca_file.display(), cli::describe(&e)),
        })?;
        let config = tls::client_config(&pem, &[]).map_err(|e| format!("{}: {e}", ca_file.display()))?;
        let name = match &self.tls_name {
            Some(name) => name.clone(),
            None if addr.ip().is_unspecified() => "localhost".to_string(),
            None => addr.ip().to_string(),
        };
        stress::TlsClient::new(config, &name).map(Some)
    }
}

/// How a client is told to trust the self-signed certificate at `path`.
fn trust_hint(path: &Path) -> String {
    format!(
        "TLS with a self-signed certificate for localhost, 127.0.0.1 and ::1, written to {0}; clients trust it with: \
         --tls --ca-file {0}",
        path.display()
    )
}

/// Clap parser for a rate: a number, 0 or more.
fn rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 0.0 => Ok(r),
        _ => Err(format!("{s:?} is not a rate (a number of lines per second, 0 or more)")),
    }
}

fn serve(
    addr: SocketAddr,
    threads: Option<usize>,
    backlog: u32,
    limits: Limits,
    tls: &ServerTls,
) -> Result<(), String> {
    let tls_config = tls.config()?;
    let stop = Arc::new(OnceLock::<Shutdown>::new());
    let on_signal = stop.clone();
    kingpin::on_termination(move || {
        if let Some(s) = on_signal.get() {
            s.shutdown();
        }
    })
    .map_err(cli::context("cannot watch for Ctrl+C"))?;
    // After on_termination, so the logger's thread inherits the blocked signals too.
    let _log = kingpin::LoggerBuilder::new().init().map_err(|e| format!("cannot start the logger: {e}"))?;
    let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let over_tls = if tls_config.is_some() { ", over TLS" } else { "" };
    let (server, lobby) =
        server::start(addr, threads, backlog, limits, tls_config).map_err(|e| cli::cannot_listen(addr, &e))?;
    let _ = stop.set(server.shutdown_handle());
    println!("chess server on {} with {threads} IO threads{over_tls} (Ctrl+C to stop)", server.local_addr());
    if let Some(path) = &tls.self_signed {
        println!("{}", trust_hint(path));
    }
    let per_ip = limits.max_conns_per_ip.map_or("no limit".to_string(), |n| n.to_string());
    let rate = match limits.line_rate {
        r if r > 0.0 => format!("{r} lines/s after a burst of {}", limits.line_burst),
        _ => "no line limit".to_string(),
    };
    println!(
        "limits: HELLO within {:?}, waiting {:?}, {:?} per move ({:?} for the first), {rate}, connections per \
         address: {per_ip}",
        limits.hello_timeout, limits.wait_timeout, limits.move_time, limits.first_move_time
    );
    // A line every few seconds while something happens.
    std::thread::spawn(move || {
        let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let mut last = None;
        loop {
            std::thread::sleep(Duration::from_secs(5));
            let l = &lobby;
            let now = format!(
                "games started {} ({} across IO threads), finished {}, requeued {}, moves {}; closed: {} no HELLO, \
                 {} waited too long, {} lost on time, {} too many errors, {} flooding{}; throttled {}{}",
                get(&l.games_started),
                get(&l.cross_thread),
                get(&l.games_finished),
                get(&l.games_requeued),
                get(&l.moves),
                get(&l.hello_timeouts),
                get(&l.wait_timeouts),
                get(&l.time_losses),
                get(&l.closed_for_errors),
                get(&l.closed_for_flooding),
                match get(&l.tls_failures) {
                    0 => String::new(),
                    n => format!(", {n} failed TLS handshakes"),
                },
                get(&l.throttled),
                if l.has_waiting() { "; a player is waiting" } else { "" }
            );
            if last.as_ref() != Some(&now) {
                println!("{now}");
                last = Some(now);
            }
        }
    });
    server.join().map_err(cli::context("the server stopped with an error"))?;
    println!("stopped");
    Ok(())
}

fn main() {
    match Args::parse().command {
        Command::Server {
            addr,
            threads,
            backlog,
            max_conns_per_ip,
            hello_timeout,
            wait_timeout,
            move_time,
            first_move_time,
            line_rate,
            line_burst,
            tls,
        } => {
            let d = Limits::default();
            let limits = Limits {
                hello_timeout: hello_timeout.unwrap_or(d.hello_timeout),
                wait_timeout: wait_timeout.unwrap_or(d.wait_timeout),
                move_time: move_time.unwrap_or(d.move_time),
                first_move_time: first_move_time.unwrap_or(d.first_move_time),
                line_rate: line_rate.unwrap_or(d.line_rate),
                line_burst: line_burst.map_or(d.line_burst, |n| n.min(u32::MAX as usize) as u32),
                max_conns_per_ip: max_conns_per_ip.map_or(d.max_conns_per_ip, |n| (n > 0).then_some(n)),
            };
            if let Err(e) = serve(addr, threads, backlog, limits, &tls) {
                cli::fail(PROGRAM, e);
            }
        }
        Command::Play { addr, no_colour, tls } => {
            let tls = tls.config(addr).unwrap_or_else(|e| cli::fail(PROGRAM, e));
            match client::play(addr, !no_colour, tls.as_ref()) {
                Ok(outcome) => std::process::exit(outcome.exit_code()),
                Err(e) => cli::fail(PROGRAM, cli::describe(&e)),
            }
        }
        Command::Stress { addr, connections, moves, threads, timeout, flooders, tls } => {
            let tls = tls.config(addr).unwrap_or_else(|e| {
                eprintln!("{PROGRAM}: {e}");
                std::process::exit(2) // could not run, as below
            });
            let over_tls = if tls.is_some() { " over TLS" } else { "" };
            let opts = stress::StressOptions {
                addr,
                connections,
                moves,
                threads,
                timeout: Duration::from_secs(timeout),
                flooders,
                tls,
            };
            println!(
                "stress: {connections} connections to {addr}{over_tls}, {moves} plies per game, {threads} IO threads"
            );
            match stress::run(&opts) {
                Ok(report) => {
                    println!("{report}");
                    std::process::exit(i32::from(report.errors > 0));
                }
                Err(e) => {
                    eprintln!("{PROGRAM}: {}", cli::describe(&e));
                    std::process::exit(2);
                }
            }
        }
    }
}
