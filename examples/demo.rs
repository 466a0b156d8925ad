//! `make demo`: starts the echo server on loopback, drives it with many connections for a few
//! seconds, and prints connections, messages/s, and whether every echoed byte matched.
//!
//! ```text
//! cargo run --release --example demo -- --connections 400 --seconds 3
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use clap::Parser;
use kingpin::{Conn, EpollTPServer, IoHandler, ServerConfig};

/// Drive a kingpin echo server on loopback and check every byte.
#[derive(Parser)]
struct Args {
    /// Concurrent client connections.
    #[arg(long, default_value_t = 400)]
    connections: usize,
    /// How long to drive the server.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Server IO threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Client threads (each drives connections/client-threads sockets).
    #[arg(long, default_value_t = 4)]
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

/// Ping-pongs over `n` connections: writes a message on each, then reads each echo back.
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
    while Instant::now() < until {
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
    }
    Ok(tally)
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    // Every client here comes from 127.0.0.1: lift the per-address cap meant for the internet.
    let config = ServerConfig::default().threads(args.threads).max_connections_per_ip(None);
    let server = EpollTPServer::from_fn(config, || Echo).start()?;
    let addr = server.local_addr();
    println!("kingpin echo server on {addr} ({} IO threads)", args.threads);
    println!(
        "driving it with {} connections from {} client threads for {:.1} s ...",
        args.connections, args.client_threads, args.seconds
    );
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(args.seconds);
    let per = args.connections.div_ceil(args.client_threads.max(1));
    let workers: Vec<_> = (0..args.client_threads)
        .map(|t| {
            let n = per.min(args.connections.saturating_sub(t * per));
            std::thread::spawn(move || drive(addr, n, until, t as u64 + 1))
        })
        .collect();
    let mut total = Tally::default();
    for w in workers {
        let t = w.join().expect("client thread panicked")?;
        total.messages += t.messages;
        total.bytes += t.bytes;
        total.mismatches += t.mismatches;
    }
    let secs = started.elapsed().as_secs_f64();
    let stats = server.stats();
    let spread: Vec<u64> = server.loop_stats().iter().map(|s| s.accepted).collect();
    println!("connections : {} (per IO thread: {spread:?})", stats.accepted);
    println!("messages    : {} echoed, {:.0} messages/s", total.messages, total.messages as f64 / secs);
    println!("throughput  : {:.1} MiB/s each way", total.bytes as f64 / secs / (1 << 20) as f64);
    server.shutdown();
    server.join()?;
    if total.mismatches == 0 && stats.bytes_out >= total.bytes {
        println!("verified    : every echoed byte matched ({} bytes)", total.bytes);
        Ok(())
    } else {
        println!("verified    : FAILED, {} messages differed", total.mismatches);
        std::process::exit(1);
    }
}
