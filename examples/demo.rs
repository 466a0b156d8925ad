//! `make demo`: starts the echo server on loopback, drives it with many connections for a few
//! seconds, and prints connections, messages/s, and whether every echoed byte matched.
//!
//! ```text
//! cargo run --release --example demo -- --connections 400 --seconds 3
//! ```
//!
//! The verdict comes from what the clients received: every message is read back in full and
//! compared byte for byte, and every connection echoes at least one. Exit status 1 if any
//! byte differed or a client failed.

#[path = "common/cli.rs"]
mod cli;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use clap::Parser;
use kingpin::{Conn, EpollTPServer, IoHandler, ServerConfig};

/// Drive a kingpin echo server on loopback and check every byte.
#[derive(Parser)]
struct Args {
    /// Concurrent client connections.
    #[arg(long, default_value_t = 400, value_parser = cli::at_least_one)]
    connections: usize,
    /// How long to drive the server, in seconds.
    #[arg(long, default_value = "3", value_parser = cli::seconds)]
    seconds: Duration,
    /// Server IO threads.
    #[arg(long, default_value_t = 2, value_parser = cli::at_least_one)]
    threads: usize,
    /// Client threads, each driving its share of the connections (never more threads than
    /// connections: a thread without one would have nothing to wait on).
    #[arg(long, default_value_t = 4, value_parser = cli::at_least_one)]
    client_threads: usize,
}

struct Echo;

impl IoHandler for Echo {
    type ConnState = ();

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        conn.send_input();
    }
}

/// Totals of one client thread.
#[derive(Default)]
struct Tally {
    messages: u64,
    bytes: u64,
    mismatches: u64,
}

/// Ping-pongs over `n` connections until `until`, at least one round: writes a message on
/// each, then reads each echo back in full and compares it.
fn drive(addr: SocketAddr, n: usize, until: Instant, seed: u64) -> std::io::Result<Tally> {
    let mut conns = (0..n)
        .map(|_| {
            let s = TcpStream::connect(addr)?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            Ok(s)
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut tally = Tally::default();
    let mut x = seed | 1;
    let mut sent = Vec::with_capacity(n);
    let mut got = vec![0u8; 4096];
    loop {
        sent.clear();
        for s in &mut conns {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = 16 + (x % 1024) as usize;
            let msg: Vec<u8> = (0..len).map(|i| (x as usize + i) as u8).collect();
            s.write_all(&msg)?;
            sent.push(msg);
        }
        for (s, msg) in conns.iter_mut().zip(&sent) {
            let echoed = &mut got[..msg.len()];
            s.read_exact(echoed)?;
            if echoed != &msg[..] {
                tally.mismatches += 1;
            }
            tally.messages += 1;
            tally.bytes += msg.len() as u64;
        }
        if Instant::now() >= until {
            return Ok(tally);
        }
    }
}

/// How many of `connections` client thread `t` of `threads` drives: an even split, the first
/// ones taking one more when it does not divide.
fn share(connections: usize, threads: usize, t: usize) -> usize {
    connections / threads + usize::from(t < connections % threads)
}

fn main() {
    let args = Args::parse();
    // Every client here comes from 127.0.0.1: lift the per-address cap meant for the internet.
    let config = ServerConfig::default().threads(args.threads).max_connections_per_ip(None);
    let server = EpollTPServer::from_fn(config, || Echo)
        .start()
        .unwrap_or_else(|e| cli::fail("demo", cli::context("cannot start the echo server")(e)));
    let addr = server.local_addr();
    let client_threads = args.client_threads.min(args.connections);
    println!("kingpin echo server on {addr} ({} IO threads)", args.threads);
    println!(
        "driving it with {} connections from {client_threads} client threads for {:.1} s ...",
        args.connections,
        args.seconds.as_secs_f64()
    );
    let started = Instant::now();
    let until = started + args.seconds;
    let workers: Vec<_> = (0..client_threads)
        .map(|t| {
            let n = share(args.connections, client_threads, t);
            std::thread::spawn(move || drive(addr, n, until, t as u64 + 1))
        })
        .collect();
    let mut total = Tally::default();
    let mut errors = Vec::new();
    for w in workers {
        match w.join().expect("client thread panicked") {
            Ok(t) => {
                total.messages += t.messages;
                total.bytes += t.bytes;
                total.mismatches += t.mismatches;
            }
            Err(e) => errors.push(cli::describe(&e)),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let stats = server.stats();
    let spread: Vec<u64> = server.loop_stats().iter().map(|s| s.accepted).collect();
    println!("connections : {} (per IO thread: {spread:?})", stats.accepted);
    println!("messages    : {} echoed, {:.0} messages/s", total.messages, total.messages as f64 / secs);
    println!("throughput  : {:.1} MiB/s each way", total.bytes as f64 / secs / (1 << 20) as f64);
    server.shutdown();
    let stopped = server.join();
    // The verdict rests on what the clients read back, never on the server's counters (which
    // an IO thread may not have updated yet when the last echo arrives).
    if !errors.is_empty() {
        println!("verified    : FAILED, {} of {client_threads} client threads stopped: {}", errors.len(), errors[0]);
        std::process::exit(1);
    }
    if total.mismatches > 0 {
        println!("verified    : FAILED, {} of {} messages differed", total.mismatches, total.messages);
        std::process::exit(1);
    }
    println!("verified    : every echoed byte matched ({} messages, {} bytes)", total.messages, total.bytes);
    if let Err(e) = stopped {
        cli::fail("demo", cli::context("the server stopped with an error")(e));
    }
}

#[cfg(test)]
mod tests {
    use super::share;

    #[test]
    fn shares_give_every_thread_a_connection() {
        for (conns, threads) in [(3, 3), (5, 4), (400, 4), (7, 1)] {
            let shares: Vec<usize> = (0..threads).map(|t| share(conns, threads, t)).collect();
            assert_eq!(shares.iter().sum::<usize>(), conns);
            assert!(shares.iter().all(|&n| n >= 1), "{shares:?}");
        }
    }
}
