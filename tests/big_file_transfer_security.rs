//! big_file_transfer against a hostile local user, server in-process: a directory swapped with
//! a symlink to the outside while requests run never serves an outside file; FIFOs (and other
//! non-regular files) are refused at once without blocking an IO thread.

mod util;

#[allow(dead_code)]
#[path = "../examples/big_file_transfer/checksum.rs"]
mod checksum;
#[allow(dead_code)]
#[path = "../examples/big_file_transfer/client.rs"]
mod client;
#[allow(dead_code)]
#[path = "../examples/big_file_transfer/hashes.rs"]
mod hashes;
#[allow(dead_code)]
#[path = "../examples/big_file_transfer/os_error.rs"]
mod os_error;
#[allow(dead_code)]
#[path = "../examples/big_file_transfer/protocol.rs"]
mod protocol;
#[allow(dead_code)]
#[path = "../examples/big_file_transfer/server.rs"]
mod server;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::fcntl::{renameat2, OFlag, RenameFlags};
use nix::sys::stat::Mode;
use server::{Server, ServerOptions};
use util::connect;

fn serve(root: &std::path::Path) -> Server {
    server::start(&ServerOptions { max_conns_per_ip: None, ..ServerOptions::new(root, "127.0.0.1:0".parse().unwrap()) })
        .unwrap()
}

/// Shuts the server down and waits for it, bounded: a server whose IO threads are stuck
/// fails the test instead of hanging it.
fn stop_within(server: Server, limit: Duration) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        server.shutdown();
        let _ = tx.send(server.join());
    });
    match rx.recv_timeout(limit) {
        Ok(result) => {
            result.unwrap();
        }
        Err(_) => panic!("the server did not shut down within {limit:?}"),
    }
}

/// What one request got.
enum Outcome {
    Served(Vec<u8>),
    Refused(String),
}

/// `GET 0 <path>` on a new connection: the body, or the refusal (bounded by the socket's
/// timeout).
fn get(server: &Server, path: &str) -> Outcome {
    let mut s = connect(server.local_addr());
    s.write_all(format!("GET 0 {path}\n").as_bytes()).unwrap();
    let reply = util::read_to_end(&mut s).unwrap_or_else(|e| panic!("GET {path}: no reply: {e}"));
    let end = reply.iter().position(|&b| b == b'\n').unwrap_or_else(|| panic!("GET {path}: {reply:?}"));
    let line = String::from_utf8_lossy(&reply[..end]).into_owned();
    if let Some(reason) = line.strip_prefix("ERR ") {
        return Outcome::Refused(reason.to_string());
    }
    assert!(line.starts_with("OK "), "GET {path}: {line:?}");
    Outcome::Served(reply[end + 1..].to_vec())
}

/// `root/d/x` holds "public"; `root/l` is a symlink to a directory outside whose `x` holds a
/// secret. A thread swaps `d` and `l` (renameat2 RENAME_EXCHANGE) as fast as it can while
/// clients request `d/x`: every request gets "public" or a refusal, never the secret. (With
/// a check of the canonical path followed by an `open` of the name, some 20% leaked.)
#[test]
fn symlink_swap_race_never_serves_an_outside_file() {
    const SECRET: &[u8] = b"SECRET from outside the root";
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("x"), SECRET).unwrap();
    std::fs::create_dir(root.path().join("d")).unwrap();
    std::fs::write(root.path().join("d/x"), b"public").unwrap();
    std::os::unix::fs::symlink(outside.path(), root.path().join("l")).unwrap();
    let server = serve(root.path());

    let dir =
        nix::fcntl::open(root.path(), OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).unwrap();
    let stop = AtomicBool::new(false);
    let swaps = AtomicU64::new(0);
    let (mut requests, mut served, mut refused, mut leaks) = (0u64, 0u64, 0u64, 0u64);
    let started = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                renameat2(&dir, "d", &dir, "l", RenameFlags::RENAME_EXCHANGE).unwrap();
                swaps.fetch_add(1, Ordering::Relaxed);
            }
        });
        // At least 3 s, and until both outcomes were seen (so the race was really run), but
        // never more than 30 s.
        while started.elapsed() < Duration::from_secs(3) || served == 0 || refused == 0 {
            assert!(started.elapsed() < Duration::from_secs(30), "the race never ran both ways");
            requests += 1;
            match get(&server, "d/x") {
                Outcome::Served(body) if body == b"public" => served += 1,
                Outcome::Served(body) => {
                    leaks += 1;
                    assert_eq!(body, SECRET, "neither file");
                }
                Outcome::Refused(reason) => {
                    assert!(reason.contains("leads outside") || reason.contains("try again"), "{reason}");
                    refused += 1;
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    let swaps = swaps.load(Ordering::Relaxed);
    println!(
        "symlink swap race: {requests} requests in {:.1?}, {served} served, {refused} refused, {leaks} leaks ({swaps} swaps)",
        started.elapsed()
    );
    assert_eq!(leaks, 0, "{leaks} of {requests} requests served the file outside the root");
    stop_within(server, Duration::from_secs(20));
}

/// A FIFO in the root is refused at once (opening it for reading would wait for a writer),
/// twice — as many as the server has IO threads — and the server goes on serving and stops
/// when asked.
#[test]
fn fifo_is_refused_without_blocking() {
    let root = tempfile::tempdir().unwrap();
    nix::unistd::mkfifo(&root.path().join("fifo"), Mode::S_IRUSR | Mode::S_IWUSR).unwrap();
    std::fs::write(root.path().join("f"), b"regular").unwrap();
    // Not dropped if the test fails: a server whose IO threads are stuck in `open` could not
    // be joined, and the test would hang instead of failing.
    let server = std::mem::ManuallyDrop::new(serve(root.path()));
    for _ in 0..2 {
        match get(&server, "fifo") {
            Outcome::Refused(reason) => assert!(reason.contains("not a regular file"), "{reason}"),
            Outcome::Served(body) => panic!("a FIFO was served: {body:?}"),
        }
    }
    // Both at once as well, on fresh connections.
    std::thread::scope(|s| {
        let both: Vec<_> = (0..2).map(|_| s.spawn(|| matches!(get(&server, "fifo"), Outcome::Refused(_)))).collect();
        for h in both {
            assert!(h.join().unwrap());
        }
    });
    match get(&server, "f") {
        Outcome::Served(body) => assert_eq!(body, b"regular"),
        Outcome::Refused(reason) => panic!("{reason}"),
    }
    stop_within(std::mem::ManuallyDrop::into_inner(server), Duration::from_secs(20));
}
