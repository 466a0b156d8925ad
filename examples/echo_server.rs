//! Echo server: sends every byte back. The load tools and benchmarks drive this one.
//!
//! ```text
//! cargo run --release --example echo_server -- --addr 127.0.0.1:9000 --threads 4
//! ```

use std::net::SocketAddr;

use clap::Parser;
use kingpin::{Conn, EpollTPServer, IoHandler, ServerConfig, SignalShutdown};

/// Echo every byte back to its sender.
#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    addr: SocketAddr,
    /// IO threads (default: one per CPU).
    #[arg(long)]
    threads: Option<usize>,
    /// How connections are watched: `edge` (EPOLLET) or `level` (default: the library's).
    #[arg(long, value_parser = ["edge", "level"])]
    epoll: Option<String>,
    /// Most connections open at once from one peer address (0: no limit). One address cannot
    /// take every descriptor (IPv6 peers count by /64).
    #[arg(long, default_value_t = 256)]
    max_conns_per_ip: usize,
}

struct Echo;

impl IoHandler for Echo {
    type ConnState = ();

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        conn.send_input();
    }
}

pub fn main() -> std::io::Result<()> {
    let args = Args::parse();
    // First, so that every thread started later (the logger's too) leaves the signals to it.
    let signals = SignalShutdown::install()?;
    let _log = kingpin::LoggerBuilder::new().init().map_err(std::io::Error::other)?;
    let per_ip = (args.max_conns_per_ip > 0).then_some(args.max_conns_per_ip);
    let mut config = ServerConfig::new(args.addr).max_connections_per_ip(per_ip);
    if let Some(n) = args.threads {
        config = config.threads(n);
    }
    if let Some(mode) = &args.epoll {
        config = config.edge_triggered(mode == "edge");
    }
    let server = EpollTPServer::from_fn(config, || Echo).start()?;
    signals.arm(server.shutdown_handle());
    println!(
        "echo_server listening on {} with {} IO threads (Ctrl+C to stop)",
        server.local_addr(),
        server.loops().len()
    );
    server.join()?;
    println!("stopped");
    Ok(())
}
