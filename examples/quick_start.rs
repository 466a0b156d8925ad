//! Quick start: answers every connection with "Hello, kingpin!" and closes it once the answer
//! has been written.
//!
//! ```text
//! cargo run --example quick_start -- --addr 127.0.0.1:8888
//! nc 127.0.0.1 8888        # prints: Hello, kingpin!
//! ```

#[path = "common/cli.rs"]
mod cli;

use std::net::SocketAddr;

use clap::Parser;
use kingpin::{Conn, EpollTPServer, IoHandler, ServerConfig, SignalShutdown};

/// Say hello to every connection, then close it.
#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8888")]
    addr: SocketAddr,
    /// IO threads (default: one per CPU).
    #[arg(long, value_parser = cli::at_least_one)]
    threads: Option<usize>,
}

struct Hello;

impl IoHandler for Hello {
    type ConnState = ();

    fn on_connect(&mut self, conn: &mut Conn<'_>) {
        conn.send(b"Hello, kingpin!\n");
    }

    fn on_write_complete(&mut self, conn: &mut Conn<'_>) {
        conn.close();
    }
}

fn main() {
    run().unwrap_or_else(|e| cli::fail("quick_start", e));
}

/// Serves until Ctrl+C; a startup error comes back as the one line to print.
fn run() -> Result<(), String> {
    let args = Args::parse();
    // First, so that every thread started later (the logger's too) leaves the signals to it.
    let signals = SignalShutdown::install().map_err(cli::context("cannot watch for Ctrl+C"))?;
    let _log = kingpin::LoggerBuilder::new().init().map_err(|e| e.to_string())?;
    let mut config = ServerConfig::new(args.addr);
    if let Some(n) = args.threads {
        config = config.threads(n);
    }
    let server = EpollTPServer::from_fn(config, || Hello).start().map_err(|e| cli::cannot_listen(args.addr, &e))?;
    signals.arm(server.shutdown_handle());
    println!("quick_start listening on {} (Ctrl+C to stop)", server.local_addr());
    server.join().map_err(cli::context("stopped with an error"))?;
    println!("stopped");
    Ok(())
}
