//! Crawler: fetches the URLs given on the command line concurrently with an `EpollTPClient` and
//! prints, for each, the status line, body size and time; a failed URL prints its error and
//! the crawl goes on.
//!
//! ```text
//! cargo run --example http_server &          # the default target
//! cargo run --example crawler                # crawls http://127.0.0.1:8080/ and a missing page
//! cargo run --example crawler -- http://127.0.0.1:8080/ http://127.0.0.1:1/
//! ```
//!
//! Exit status: 0 when every URL was fetched (whatever its HTTP status), 1 otherwise.

mod crawl;

use std::time::Duration;

use clap::Parser;

/// Fetch URLs concurrently and report status, size and time for each.
#[derive(Parser)]
struct Args {
    /// `http://` URLs (default: the local http_server example).
    urls: Vec<String>,
    /// IO threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Connect and name-resolution timeout, in seconds.
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
}

fn main() -> std::io::Result<()> {
    let mut args = Args::parse();
    if args.urls.is_empty() {
        args.urls = vec!["http://127.0.0.1:8080/".into(), "http://127.0.0.1:8080/no-such-page".into()];
    }
    let _log = kingpin::LoggerBuilder::new().init().map_err(std::io::Error::other)?;
    println!("crawling {} URLs on {} IO threads", args.urls.len(), args.threads);
    let reports = crawl::crawl(&args.urls, args.threads, Duration::from_secs_f64(args.timeout), true)?;
    let failed = reports.iter().filter(|r| r.outcome.is_err()).count();
    let ok = reports.iter().filter(|r| r.outcome.as_ref().is_ok_and(|f| (200..300).contains(&f.status))).count();
    println!("{} fetched ({ok} with a 2xx status), {failed} failed", reports.len() - failed);
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}
