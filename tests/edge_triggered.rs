//! The edge-triggered mode (`edge_triggered(true)`): epoll reports a change once, so the loop
//! must remember sockets that may hold input. Each test is a case where forgetting one hangs or
//! loses bytes: a read that fills its room, a peer's end behind its data, reading resumed after a
//! pause (by the handler, by backpressure), many connections at once.

mod util;

use std::io::{Read, Write};
use std::net::Shutdown as NetShutdown;
use std::time::Duration;

use kingpin::{Conn, EpollTPServer, IoHandler, ServerConfig};
use util::{connect, echo_round_trip, pattern, read_n, read_to_end, wait_until, Record, RecordingEcho};

fn config() -> ServerConfig {
    ServerConfig::default().threads(2).edge_triggered(true)
}

/// Big messages: every read fills its room, so the rest must be read without a new edge.
#[test]
fn large_messages_echo_whole() {
    let record = Record::new();
    let r = record.clone();
    let server = EpollTPServer::from_fn(config(), move || RecordingEcho(r.clone())).start().unwrap();
    let mut s = connect(server.local_addr());
    for (i, size) in [1, 4096, 4097, 65_536, 1 << 20, 3 << 20].into_iter().enumerate() {
        let data = pattern(size, i as u64);
        assert_eq!(echo_round_trip(&mut s, &data), data, "{size} bytes");
    }
    server.shutdown();
    server.join().unwrap();
}

/// 200 connections at once, each echoing a few messages.
#[test]
fn many_connections_echo() {
    let record = Record::new();
    let r = record.clone();
    let server = EpollTPServer::from_fn(config(), move || RecordingEcho(r.clone())).start().unwrap();
    let mut conns: Vec<_> = (0..200).map(|_| connect(server.local_addr())).collect();
    for round in 0..3u64 {
        for (i, s) in conns.iter_mut().enumerate() {
            let data = pattern(100 + i, round * 1000 + i as u64);
            assert_eq!(echo_round_trip(s, &data), data);
        }
    }
    drop(conns);
    wait_until(Duration::from_secs(20), "all closed", || server.stats().connections == 0);
    assert_eq!(record.close_reasons().len(), 200);
}

/// Counts what it read; replies when the peer's end arrives.
struct CountThenReply(usize);

impl IoHandler for CountThenReply {
    type ConnState = ();

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        self.0 += conn.input().len();
        conn.input().clear();
    }

    fn on_passively_closed(&mut self, conn: &mut Conn<'_>) {
        conn.send(format!("got {} bytes", self.0).as_bytes());
    }
}

/// Data and the peer's end in one edge: the end is read after the data (`recv` stops at it).
#[test]
fn end_of_stream_behind_data_is_seen() {
    for size in [5, 100_000] {
        let server = EpollTPServer::from_fn(config().threads(1), || CountThenReply(0)).start().unwrap();
        let mut s = connect(server.local_addr());
        s.write_all(&vec![7; size]).unwrap();
        s.shutdown(NetShutdown::Write).unwrap();
        assert_eq!(read_to_end(&mut s).unwrap(), format!("got {size} bytes").as_bytes());
        server.shutdown();
        server.join().unwrap();
    }
}

/// Pauses reading on the first message, resumes from a timer; echoes everything.
struct Pauser(bool);

impl IoHandler for Pauser {
    type ConnState = ();

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        if !self.0 {
            self.0 = true;
            conn.pause_reading();
            conn.set_timer(Duration::from_millis(50), 0);
        }
        conn.send_input();
    }

    fn on_timer(&mut self, conn: &mut Conn<'_>, _tag: u64) {
        conn.resume_reading();
    }
}

/// Input that arrived while reading was paused is read when it resumes, with no new edge.
#[test]
fn input_during_a_pause_is_read_on_resume() {
    let server = EpollTPServer::from_fn(config().threads(1), || Pauser(false)).start().unwrap();
    let mut s = connect(server.local_addr());
    s.write_all(b"a").unwrap();
    assert_eq!(read_n(&mut s, 1), b"a");
    s.write_all(b"bcd").unwrap(); // arrives while paused; no further edge will come
    assert_eq!(read_n(&mut s, 3), b"bcd");
}

/// Echoes; its water marks are low so that a peer that does not read pauses it quickly.
struct Echo;

impl IoHandler for Echo {
    type ConnState = ();

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        conn.send_input();
    }
}

/// A peer that stops reading pauses the echo (backpressure); when it reads again, everything it
/// sent comes back, whole and in order.
#[test]
fn backpressure_pauses_and_resumes() {
    let cfg = config().threads(1).write_water_marks(256 << 10, 64 << 10);
    let server = EpollTPServer::from_fn(cfg, || Echo).start().unwrap();
    let mut s = connect(server.local_addr());
    let data = pattern(8 << 20, 42);
    let mut writer = s.try_clone().unwrap();
    let sent = data.clone();
    let w = std::thread::spawn(move || writer.write_all(&sent));
    // Let the server fill up and pause before reading anything.
    std::thread::sleep(Duration::from_millis(300));
    let mut got = vec![0; data.len()];
    s.read_exact(&mut got).unwrap();
    w.join().unwrap().unwrap();
    assert!(got == data, "bytes lost or reordered across the pause");
}
