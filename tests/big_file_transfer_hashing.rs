//! big_file_transfer's hashing is bounded, server in-process: requests for 100 different large
//! files run on the server's worker pool of 2 threads (`kingpin-worker-N`; no more threads
//! exist), fill its queue of 8, and the rest are refused at once; when the clients leave, the
//! hashing stops.
//!
//! The test runs in a child process of its own (this binary, re-run for that test alone), so
//! that the worker threads in the process are the test's server's and no other test's.

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

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use server::ServerOptions;
use util::{connect, wait_until};

const FILES: usize = 100;
const HASH_THREADS: usize = 2;
const HASH_QUEUE: usize = 8;
/// What kingpin names its worker threads (`kingpin-worker-N`).
const WORKER: &str = "kingpin-worker";

/// Names of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim_end().to_string())
        .collect()
}

/// For each of this process's worker threads (they only hash): its state (`R`, `S`, ...) and CPU time (user +
/// system, in clock ticks).
fn hashing_threads() -> Vec<(char, u64)> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| {
            let dir = t.ok()?.path();
            let name = std::fs::read_to_string(dir.join("comm")).ok()?;
            if !name.starts_with(WORKER) {
                return None;
            }
            let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
            // The fields after the ")" that closes the name: the state first, then utime and
            // stime 11 and 12 fields on (fields 3, 14 and 15 of the line).
            let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
            let ticks = fields[11].parse::<u64>().ok()? + fields[12].parse::<u64>().ok()?;
            Some((fields[0].chars().next()?, ticks))
        })
        .collect()
}

/// Reads whatever `s` has without waiting into `got`; true once a whole line is there.
fn poll_line(s: &mut TcpStream, got: &mut Vec<u8>) -> bool {
    let mut buf = [0; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got.contains(&b'\n'),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return got.contains(&b'\n'),
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// Runs [`hashing_child`] alone in a child process, bounded, and passes its output on.
#[test]
fn hashing_is_bounded_and_stops_when_clients_leave() {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "hashing_child", "--nocapture", "--test-threads", "1"])
        .env("BFT_HASHING_CHILD", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child test did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut out).unwrap();
    println!("{out}");
    assert!(status.success(), "the child test failed ({status})");
    assert!(out.contains("1 passed"), "the child test did not run");
}

/// The test itself; does nothing unless run by [`hashing_is_bounded_and_stops_when_clients_leave`].
#[test]
fn hashing_child() {
    if std::env::var_os("BFT_HASHING_CHILD").is_none() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    for i in 0..FILES {
        // 64 GiB each, sparse: created at once, minutes to hash.
        File::create(root.path().join(format!("f{i}"))).unwrap().set_len(64 << 30).unwrap();
    }
    std::fs::write(root.path().join("small"), b"small file").unwrap();
    let opts = ServerOptions {
        max_conns_per_ip: None,
        hash_threads: HASH_THREADS,
        hash_queue: HASH_QUEUE,
        ..ServerOptions::new(root.path(), "127.0.0.1:0".parse().unwrap())
    };
    let server = server::start(&opts).unwrap();

    let request = |i: usize| {
        let mut s = connect(server.local_addr());
        s.write_all(format!("GET 0 f{i}\n").as_bytes()).unwrap();
        s
    };
    // First one file per worker, until each worker hashes one: the queue is then empty, and
    // exactly HASH_QUEUE more files fit in it, whatever the timing.
    let mut clients: Vec<TcpStream> = (0..HASH_THREADS).map(request).collect();
    wait_until(Duration::from_secs(20), "every worker hashing", || server.hash_stats().running == HASH_THREADS);
    clients.extend((HASH_THREADS..FILES).map(request));
    let admitted = HASH_THREADS + HASH_QUEUE;
    wait_until(Duration::from_secs(20), "every request answered or admitted", || {
        let h = server.hash_stats();
        h.refused as usize + h.waiting == FILES
    });
    let h = server.hash_stats();
    assert_eq!(
        (h.running, h.queued, h.waiting, h.refused as usize),
        (HASH_THREADS, HASH_QUEUE, admitted, FILES - admitted),
        "{h:?}"
    );

    // The refused ones hear so at once: exactly FILES - admitted clients get an error line.
    let mut replies = vec![Vec::new(); FILES];
    for c in &clients {
        c.set_nonblocking(true).unwrap();
    }
    wait_until(Duration::from_secs(20), "the refusals", || {
        let lines = clients.iter_mut().zip(&mut replies).map(|(c, got)| poll_line(c, got)).filter(|&line| line).count();
        assert!(lines <= FILES - admitted, "{lines} replies, but only {} refusals", FILES - admitted);
        lines == FILES - admitted
    });
    for r in replies.iter().filter(|r| !r.is_empty()) {
        let line = String::from_utf8_lossy(r);
        assert!(line.starts_with("ERR server busy"), "{line:?}");
    }

    // No more worker threads than configured exist in this process.
    let hash_thread_count = thread_names().iter().filter(|n| n.starts_with(WORKER)).count();
    println!(
        "{FILES} different files requested: {hash_thread_count} worker threads, {} hashing, {} queued, {} refused",
        h.running, h.queued, h.refused
    );
    assert_eq!(hash_thread_count, HASH_THREADS, "{:?}", thread_names());

    // The clients leave: the hashing stops, within a chunk of each running file.
    drop(clients);
    wait_until(Duration::from_secs(20), "the hashing to stop", || {
        let h = server.hash_stats();
        h.running == 0 && h.queued == 0 && h.waiting == 0
    });
    let h = server.hash_stats();
    assert_eq!((h.cancelled as usize, h.hashed), (admitted, 0), "{h:?}");
    // And the workers sleep, and use no CPU any more.
    wait_until(Duration::from_secs(20), "the workers asleep", || {
        hashing_threads().iter().all(|&(state, _)| state == 'S')
    });
    let ticks = || hashing_threads().iter().map(|&(_, t)| t).sum::<u64>();
    let before = ticks();
    std::thread::sleep(Duration::from_millis(500));
    let after = ticks();
    println!("after the clients left: {h:?}; worker threads' CPU ticks over 0.5 s: {}", after - before);
    assert_eq!(after, before, "the workers still run");

    // The pool still works.
    let mut s = connect(server.local_addr());
    s.write_all(b"GET 0 small\n").unwrap();
    let reply = util::read_to_end(&mut s).unwrap();
    assert!(reply.starts_with(b"OK 10 ") && reply.ends_with(b"small file"), "{:?}", String::from_utf8_lossy(&reply));
    assert_eq!(server.hash_stats().hashed, 1);
    server.shutdown();
    server.join().unwrap();
}
