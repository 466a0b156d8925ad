//! Echo correctness under many concurrent connections, and how connections spread over the IO
//! threads.

mod util;

use std::net::TcpStream;
use std::time::Duration;

use kingpin::{EpollTPServer, ServerConfig};
use util::{connect, echo_round_trip, pattern, wait_until, Record, RecordingEcho};

/// 1,000 connections open at once, each echoing a message of a random size up to 1 MiB; every
/// byte is checked.
#[test]
fn thousand_concurrent_connections_echo_every_byte() {
    const CONNS: usize = 1000;
    const WORKERS: usize = 16;
    let record = Record::new();
    let r = record.clone();
    let server =
        EpollTPServer::from_fn(ServerConfig::default().threads(4), move || RecordingEcho(r.clone())).start().unwrap();
    let addr = server.local_addr();
    let mut conns: Vec<TcpStream> = (0..CONNS).map(|_| connect(addr)).collect();
    wait_until(Duration::from_secs(20), "all connections accepted", || server.stats().connections == CONNS as u64);

    let total: usize = std::thread::scope(|scope| {
        let per = CONNS.div_ceil(WORKERS);
        let workers: Vec<_> = conns
            .chunks_mut(per)
            .enumerate()
            .map(|(w, chunk)| {
                scope.spawn(move || {
                    let mut bytes = 0;
                    for (i, s) in chunk.iter_mut().enumerate() {
                        let seed = (w * per + i) as u64;
                        // Log-uniform sizes from 1 B to 1 MiB: many small, some large.
                        let size = ((1usize << 20) >> (seed * 7919 % 21)).max(1) - (seed as usize % 3);
                        let data = pattern(size.max(1), seed);
                        assert_eq!(echo_round_trip(s, &data), data, "connection {seed} echoed wrong bytes");
                        bytes += data.len();
                    }
                    bytes
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    // The counters are updated just after each send: the clients may read first.
    wait_until(Duration::from_secs(10), "byte counters settle", || {
        let s = server.stats();
        s.bytes_in == total as u64 && s.bytes_out == total as u64
    });
    assert_eq!(server.stats().accepted, CONNS as u64);
    drop(conns);
    wait_until(Duration::from_secs(20), "all connections closed", || server.stats().connections == 0);
    assert_eq!(record.close_reasons().len(), CONNS);
    assert!(record.close_reasons().iter().all(|r| r == "closed by peer"), "{:?}", record.close_reasons());
    server.shutdown();
    server.join().unwrap();
}

/// With 4 IO threads, no thread gets more than twice its share of connections — both for a
/// burst and for connections that arrive one at a time.
#[test]
fn connections_spread_over_all_io_threads() {
    const THREADS: usize = 4;
    let server =
        EpollTPServer::from_fn(ServerConfig::default().threads(THREADS), || util::RecordingEcho(Record::new()))
            .start()
            .unwrap();
    let addr = server.local_addr();

    // A burst.
    let burst: Vec<TcpStream> = (0..400).map(|_| connect(addr)).collect();
    wait_until(Duration::from_secs(20), "burst accepted", || server.stats().connections == 400);
    let per_loop: Vec<u64> = server.loop_stats().iter().map(|s| s.connections).collect();
    eprintln!("burst spread: {per_loop:?}");
    assert!(per_loop.iter().all(|&n| n <= 2 * 400 / THREADS as u64), "burst spread {per_loop:?}");

    // One at a time: each is accepted (and answers) before the next connects.
    drop(burst);
    wait_until(Duration::from_secs(20), "burst closed", || server.stats().connections == 0);
    let mut slow = Vec::new();
    for i in 0..100u8 {
        let mut s = connect(addr);
        assert_eq!(echo_round_trip(&mut s, &[i]), [i]);
        slow.push(s);
    }
    let per_loop: Vec<u64> = server.loop_stats().iter().map(|s| s.connections).collect();
    assert_eq!(per_loop.iter().sum::<u64>(), 100);
    eprintln!("one-at-a-time spread: {per_loop:?}");
    assert!(per_loop.iter().all(|&n| n <= 2 * 100 / THREADS as u64), "one-at-a-time spread {per_loop:?}");
    drop(slow);
    server.shutdown();
    server.join().unwrap();
}
