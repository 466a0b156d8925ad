//! Echo server: sends every byte back. The load tools and benchmarks drive this one.
//!
//! ```text
//! cargo run --release --example echo_server -- --addr 127.0.0.1:9000 --threads 4
//! ```

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use clap::Parser;
use kingpin::{Conn, EpollTPServer, IoHandler, ServerConfig, Shutdown};

/// Echo every byte back to its sender.
#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    addr: SocketAddr,
    /// IO threads (default: one per CPU).
    #[arg(long)]
    threads: Option<usize>,
}

struct Echo;

impl IoHandler for Echo {
    fn on_message(&mut self, conn: &mut Conn<'_>) {
        conn.send_input();
    }
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let stop = Arc::new(OnceLock::<Shutdown>::new());
    let on_signal = stop.clone();
    kingpin::on_termination(move || {
        if let Some(s) = on_signal.get() {
            s.shutdown();
        }
    })?;
    // After on_termination, so the logger's thread inherits the blocked signals too.
    let _log = kingpin::LoggerBuilder::new().init().map_err(std::io::Error::other)?;
    let mut config = ServerConfig::new(args.addr);
    if let Some(n) = args.threads {
        config = config.threads(n);
    }
    let server = EpollTPServer::from_fn(config, || Echo).start()?;
    let _ = stop.set(server.shutdown_handle());
    println!(
        "echo_server listening on {} with {} IO threads (Ctrl+C to stop)",
        server.local_addr(),
        server.loops().len()
    );
    server.join()?;
    println!("stopped");
    Ok(())
}
