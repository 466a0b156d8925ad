//! Big file transfer: a kingpin server that streams files with `sendfile(2)` (never loading
//! them whole), and a client that downloads one with a progress bar, resumes a partial
//! download, and verifies size and XXH3-64 checksum before renaming it into place.
//!
//! ```text
//! cargo run --release --example big_file_transfer -- serve --root /srv/files
//! cargo run --release --example big_file_transfer -- get some/file.iso -o file.iso
//!
//! # over TLS, with a fresh self-signed certificate the client is told to trust
//! cargo run --release --example big_file_transfer -- serve --root /srv/files --self-signed files-cert.pem
//! cargo run --release --example big_file_transfer -- get some/file.iso --tls --ca-file files-cert.pem
//! ```
//!
//! Exit status of `get`: 0 when the file arrived and verified; 1 on an error (refused,
//! connection lost — run again to resume); 2 when the checksum does not match.

mod checksum;
mod client;
mod hashes;
mod os_error;
mod protocol;
mod server;
#[path = "../common/tls.rs"]
mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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
        /// Directory whose files are served; nothing outside it is (the kernel checks every
        /// lookup).
        #[arg(long)]
        root: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8890")]
        addr: SocketAddr,
        /// IO threads (at least 1).
        #[arg(long, default_value_t = 2, value_parser = at_least_one)]
        threads: usize,
        /// Read files in bounded chunks instead of using sendfile(2).
        #[arg(long)]
        no_sendfile: bool,
        /// Most connections open at once from one peer address (0: no limit). One address cannot
        /// take every descriptor (IPv6 peers count by /64).
        #[arg(long, default_value_t = 64)]
        max_conns_per_ip: usize,
        /// Threads of the worker pool that computes checksums (at least 1); no more ever run.
        #[arg(long, default_value_t = 2, value_parser = at_least_one)]
        hash_threads: usize,
        /// Files that may wait for a worker (at least 1); a request for one more is refused
        /// ("server busy").
        #[arg(long, default_value_t = 64, value_parser = at_least_one)]
        hash_queue: usize,
        /// Close a connection that reads and writes nothing for this many seconds (one waiting
        /// for its file's checksum is kept).
        #[arg(long, default_value_t = 60.0, value_parser = positive_seconds)]
        idle_timeout: f64,
        #[command(flatten)]
        tls: ServerTls,
    },
    /// Download one file.
    Get {
        /// Path of the file under the server's root (any bytes, UTF-8 or not).
        path: PathBuf,
        /// The server.
        #[arg(long, default_value = "127.0.0.1:8890")]
        addr: String,
        /// Where to write it: a file, or an existing directory to put it in under its own name
        /// (default: its name, in the current directory).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Read at most this many bytes per second: a number with an optional k, M, G, T or P
        /// suffix (1024-based, as curl's), e.g. 200k, 50M, 1.5G.
        #[arg(long, value_parser = client::parse_rate)]
        limit_rate: Option<u64>,
        /// Connect timeout and longest silence from the server, in seconds.
        #[arg(long, default_value_t = 60.0, value_parser = positive_seconds)]
        timeout: f64,
        /// No progress bar.
        #[arg(short, long)]
        quiet: bool,
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
    /// to FILE (PEM) for the clients to trust: `get --tls --ca-file FILE`.
    #[arg(long, value_name = "FILE")]
    self_signed: Option<PathBuf>,
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
        std::fs::write(path, pem)
            .map_err(|e| format!("cannot write {}: {}", path.display(), os_error::describe(&e)))?;
        Ok(Some(config))
    }
}

/// Fails with one plain line (`cannot read key.pem: permission denied`) unless `path` can be
/// opened.
fn readable(path: &Path) -> Result<(), String> {
    std::fs::File::open(path)
        .map(drop)
        .map_err(|e| format!("cannot read {}: {}", path.display(), os_error::describe(&e)))
}

/// The client's TLS flags.
#[derive(clap::Args)]
struct ClientTls {
    /// Connect over TLS; needs --ca-file.
    #[arg(long, requires = "ca_file")]
    tls: bool,
    /// The certificate to trust (PEM): the server's own when it is self-signed, else its CA's.
    #[arg(long, value_name = "FILE", requires = "tls")]
    ca_file: Option<PathBuf>,
    /// The name the server's certificate must be valid for [default: the host of --addr, or
    /// localhost for an unspecified address].
    #[arg(long, value_name = "NAME", requires = "tls")]
    tls_name: Option<String>,
}

impl ClientTls {
    /// The download's TLS settings for a server at `addr`, if it speaks TLS.
    fn options(&self, addr: &str) -> Result<Option<client::TlsOptions>, String> {
        let Some(ca_file) = self.ca_file.as_deref().filter(|_| self.tls) else { return Ok(None) };
        let pem = std::fs::read_to_string(ca_file).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => format!("{}: not a PEM file (it is not text)", ca_file.display()),
            _ => format!("cannot read {}: {}", ca_file.display(), os_error::describe(&e)),
        })?;
        let config = tls::client_config(&pem, &[]).map_err(|e| format!("{}: {e}", ca_file.display()))?;
        let name = self.tls_name.clone().unwrap_or_else(|| client::default_tls_name(addr));
        client::TlsOptions::new(config, &name).map(Some)
    }
}

/// A count that must be at least 1.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// A number of seconds: positive and finite.
fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() && x < 1e9 => Ok(x),
        Ok(_) => Err("must be a positive number of seconds".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn main() {
    match Cli::parse().command {
        Command::Serve {
            root,
            addr,
            threads,
            no_sendfile,
            max_conns_per_ip,
            hash_threads,
            hash_queue,
            idle_timeout,
            tls,
        } => {
            let stop = Arc::new(OnceLock::<Shutdown>::new());
            let on_signal = stop.clone();
            kingpin::on_termination(move || {
                if let Some(s) = on_signal.get() {
                    s.shutdown();
                }
            })
            .unwrap_or_else(|e| fail(&format!("cannot catch signals: {}", os_error::describe(&e)), 1));
            // After on_termination, so every thread inherits the blocked signals.
            let _log = kingpin::LoggerBuilder::new().init();
            let tls_config = tls.config().unwrap_or_else(|e| fail(&e, 1));
            let over_tls = if tls_config.is_some() { " over TLS" } else { "" };
            let opts = server::ServerOptions {
                threads,
                sendfile: !no_sendfile,
                max_conns_per_ip: (max_conns_per_ip > 0).then_some(max_conns_per_ip),
                hash_threads,
                hash_queue,
                idle_timeout: Duration::from_secs_f64(idle_timeout),
                tls: tls_config,
                ..server::ServerOptions::new(root, addr)
            };
            let server = server::start(&opts).unwrap_or_else(|e| fail(&e.to_string(), 1));
            let _ = stop.set(server.shutdown_handle());
            println!(
                "serving {} on {}{over_tls} ({threads} IO threads, {hash_threads} worker threads for checksums)",
                opts.root.display(),
                server.local_addr()
            );
            if let Some(path) = &tls.self_signed {
                println!(
                    "TLS with a self-signed certificate for localhost, 127.0.0.1 and ::1, written to {0}; clients \
                     trust it with: --tls --ca-file {0}",
                    path.display()
                );
            }
            match server.join() {
                Ok(h) => println!(
                    "stopped; checksums: {} files hashed, {} cancelled (nobody waited any more), {} requests refused (busy)",
                    h.hashed, h.cancelled, h.refused
                ),
                Err(e) => fail(&format!("server failed: {}", os_error::describe(&e)), 1),
            }
        }
        Command::Get { path, addr, output, limit_rate, timeout, quiet, tls } => {
            let dest = client::destination(&path, output.as_deref()).unwrap_or_else(|e| fail(&e.to_string(), 1));
            let tls = tls.options(&addr).unwrap_or_else(|e| fail(&e, 1));
            let opts = client::GetOptions {
                addr,
                path,
                dest,
                progress: !quiet,
                limit_rate,
                timeout: Duration::from_secs_f64(timeout),
                tls,
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
