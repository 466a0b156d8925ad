//! Crawler: fetches the URLs given on the command line concurrently with an `EpollTPClient` and
//! prints, for each, the status line, body size and time; a failed URL prints its error and
//! the crawl goes on.
//!
//! ```text
//! cargo run --example http_server &          # the default target
//! cargo run --example crawler                # crawls http://127.0.0.1:8080/ and a missing page
//! cargo run --example crawler -- http://127.0.0.1:8080/ http://127.0.0.1:1/
//! cargo run --example crawler -- --idle-timeout 2 http://127.0.0.1:8080/
//! ```
//!
//! `https://` URLs (port 443 unless given) are fetched over TLS 1.2 or 1.3 with ALPN
//! `http/1.1`. They need `--ca-file`, the root certificate(s) to trust in PEM: there is no
//! system root store here, and without it every `https://` URL fails with a line that says so.
//! A server whose certificate does not chain to those roots, or is not valid for the URL's host,
//! fails its URL (`TLS handshake: … invalid peer certificate …`). Against the http_server
//! example with a self-signed certificate:
//!
//! ```text
//! cargo run --example http_server -- --addr 127.0.0.1:8443 --self-signed &
//! cargo run --example crawler -- --ca-file kingpin-self-signed.pem https://localhost:8443/
//! ```
//!
//! No URL can hold the crawl: connecting, name lookup and the TLS handshake give up after
//! `--timeout`, and a connected server that sends nothing for `--idle-timeout` (it accepted and
//! went silent, or stalled mid-body) fails its URL. Ctrl+C stops the crawl and prints the
//! summary of what finished; a second Ctrl+C exits at once.
//!
//! Exit status: 0 when every URL was fetched (whatever its HTTP status), 1 otherwise (or on a
//! bad argument), 130 when stopped by Ctrl+C.

#[path = "../common/cli.rs"]
mod cli;
mod crawl;
#[path = "../common/tls.rs"]
mod tls;

use std::fs::File;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Fetch URLs concurrently and report status, size and time for each.
#[derive(Parser)]
struct Args {
    /// `http://` or `https://` URLs (default: the local http_server example).
    urls: Vec<String>,
    /// Root certificate(s) to trust for `https://` URLs (PEM); required for them, as there is
    /// no system root store.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// IO threads.
    #[arg(long, default_value_t = 2, value_parser = cli::at_least_one)]
    threads: usize,
    /// Connect, name-resolution and TLS handshake timeout, in seconds.
    #[arg(long, default_value = "5", value_parser = cli::seconds)]
    timeout: Duration,
    /// Longest a connected server may send nothing, in seconds, before its URL fails.
    #[arg(long, default_value = "30", value_parser = cli::seconds)]
    idle_timeout: Duration,
}

fn main() {
    let args = Args::parse();
    let control = crawl::Control::default();
    // First, so that every thread started later (the logger's too) leaves the signals to it.
    let on_signal = control.clone();
    kingpin::on_termination(move || on_signal.stop())
        .unwrap_or_else(|e| cli::fail("crawler", cli::context("cannot watch for Ctrl+C")(e)));
    let code = run(args, &control).unwrap_or_else(|e| cli::fail("crawler", e));
    std::process::exit(code)
}

/// Crawls; returns the exit status, or the one line to print for an error.
fn run(mut args: Args, control: &crawl::Control) -> Result<i32, String> {
    if args.urls.is_empty() {
        args.urls = vec!["http://127.0.0.1:8080/".into(), "http://127.0.0.1:8080/no-such-page".into()];
    }
    let tls = match &args.ca_file {
        Some(path) => {
            File::open(path).map_err(cli::context(format!("--ca-file {}: cannot read it", path.display())))?;
            let config = tls::client_config_from_file(path, &[b"http/1.1"])
                .map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
            Some(config)
        }
        None => None,
    };
    let _log = kingpin::LoggerBuilder::new().init().map_err(|e| e.to_string())?;
    println!("crawling {} URLs on {} IO threads", args.urls.len(), args.threads);
    let settings = crawl::Settings {
        connect_timeout: args.timeout,
        idle_timeout: args.idle_timeout,
        live: true,
        tls,
        ..crawl::Settings::new(args.threads)
    };
    let reports = crawl::crawl_with(&args.urls, &settings, control).map_err(cli::context("cannot start the client"))?;
    let unfinished = reports.iter().filter(|r| !r.finished).count();
    let failed = reports.iter().filter(|r| r.finished && r.outcome.is_err()).count();
    let ok = reports.iter().filter(|r| r.outcome.as_ref().is_ok_and(|f| (200..300).contains(&f.status))).count();
    let fetched = reports.len() - failed - unfinished;
    if control.is_stopped() {
        println!("interrupted: {fetched} fetched ({ok} with a 2xx status), {failed} failed, {unfinished} not finished");
        return Ok(130);
    }
    println!("{fetched} fetched ({ok} with a 2xx status), {failed} failed");
    Ok(if failed > 0 { 1 } else { 0 })
}
