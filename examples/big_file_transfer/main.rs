//! Big file transfer: a kingpin server that streams files with `sendfile(2)` (never loading
//! them whole), and a client that downloads one with a progress bar, resumes a partial
//! download, and verifies size and XXH3-64 checksum before renaming it into place.
//!
//! ```text
//! cargo run --release --example big_file_transfer -- serve --root /srv/files
//! cargo run --release --example big_file_transfer -- get some/file.iso -o file.iso
//! ```
//!
//! Exit status of `get`: 0 when the file arrived and verified; 1 on an error (refused,
//! connection lost — run again to resume); 2 when the checksum does not match.

mod checksum;
mod client;
mod protocol;
mod server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use clap::{Parser, Subcommand};
use kingpin::Shutdown;

/// Stream big files over TCP, resumable and verified.
#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the files under a directory.
    Serve {
        /// Directory whose files are served; nothing outside it is.
        #[arg(long)]
        root: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8890")]
        addr: SocketAddr,
        /// IO threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Read files in bounded chunks instead of using sendfile(2).
        #[arg(long)]
        no_sendfile: bool,
        /// Most connections open at once from one peer address (0: no limit). One address cannot
        /// take every descriptor (IPv6 peers count by /64).
        #[arg(long, default_value_t = 64)]
        max_conns_per_ip: usize,
    },
    /// Download one file.
    Get {
        /// Path of the file under the server's root.
        path: String,
        /// The server.
        #[arg(long, default_value = "127.0.0.1:8890")]
        addr: String,
        /// Where to write it (default: the file's name, in the current directory).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Read at most this many bytes per second.
        #[arg(long)]
        limit_rate: Option<u64>,
        /// Connect timeout and longest silence from the server, in seconds.
        #[arg(long, default_value_t = 60.0)]
        timeout: f64,
        /// No progress bar.
        #[arg(short, long)]
        quiet: bool,
    },
}

fn main() {
    match Cli::parse().command {
        Command::Serve { root, addr, threads, no_sendfile, max_conns_per_ip } => {
            let stop = Arc::new(OnceLock::<Shutdown>::new());
            let on_signal = stop.clone();
            kingpin::on_termination(move || {
                if let Some(s) = on_signal.get() {
                    s.shutdown();
                }
            })
            .unwrap_or_else(|e| fail(&format!("cannot catch signals: {e}"), 1));
            // After on_termination, so every thread inherits the blocked signals.
            let _log = kingpin::LoggerBuilder::new().init();
            let opts = server::ServerOptions {
                root,
                addr,
                threads,
                sendfile: !no_sendfile,
                max_conns_per_ip: (max_conns_per_ip > 0).then_some(max_conns_per_ip),
            };
            let server = server::start(&opts).unwrap_or_else(|e| fail(&format!("cannot start: {e}"), 1));
            let _ = stop.set(server.shutdown_handle());
            println!("serving {} on {} ({threads} IO threads)", opts.root.display(), server.local_addr());
            if let Err(e) = server.join() {
                fail(&format!("server failed: {e}"), 1);
            }
        }
        Command::Get { path, addr, output, limit_rate, timeout, quiet } => {
            let dest = output.unwrap_or_else(|| {
                PathBuf::from(std::path::Path::new(&path).file_name().unwrap_or_else(|| fail("no file name", 1)))
            });
            let opts = client::GetOptions {
                addr,
                path,
                dest,
                progress: !quiet,
                limit_rate,
                timeout: Duration::from_secs_f64(timeout),
            };
            match client::download(&opts) {
                Ok(o) => {
                    let secs = o.transfer.as_secs_f64();
                    let mib = (o.size - o.resumed_from) as f64 / (1 << 20) as f64;
                    let resumed = if o.resumed_from > 0 {
                        format!(", resumed from byte {}", o.resumed_from)
                    } else {
                        String::new()
                    };
                    println!(
                        "{}: {} bytes{resumed}, {mib:.1} MiB in {secs:.2} s ({:.0} MiB/s), xxh3 {:016x} verified in {:.2} s",
                        opts.dest.display(),
                        o.size,
                        mib / secs.max(1e-9),
                        o.checksum,
                        o.verify.as_secs_f64()
                    );
                }
                Err(e) => fail(&e.to_string(), e.exit_code()),
            }
        }
    }
}

fn fail(msg: &str, code: i32) -> ! {
    eprintln!("big_file_transfer: {msg}");
    std::process::exit(code)
}
