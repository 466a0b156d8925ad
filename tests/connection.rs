//! One connection's life: half-close, resets, panics, the input limit, write completion.

mod util;

use std::io::{Read, Write};
use std::net::Shutdown as NetShutdown;
use std::sync::Arc;
use std::time::Duration;

use kingpin::{CloseReason, Conn, EpollTPServer, IoHandler, ServerConfig};
use parking_lot::Mutex;
use util::{connect, echo_round_trip, pattern, read_n, read_to_end, wait_until, Record, RecordingEcho};

/// Replies "got N bytes" when the peer finishes sending; with `delay`, from a timer later.
struct CountThenReply {
    seen: usize,
    delay: Option<Duration>,
}

impl IoHandler for CountThenReply {
    type ConnState = ();

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        self.seen += conn.input().len();
        let n = conn.input().len();
        conn.input().advance(n);
    }

    fn on_passively_closed(&mut self, conn: &mut Conn<'_>) {
        match self.delay {
            None => conn.send(format!("got {} bytes", self.seen).as_bytes()),
            Some(d) => {
                conn.set_timer(d, self.seen as u64);
            }
        }
    }

    fn on_timer(&mut self, conn: &mut Conn<'_>, seen: u64) {
        conn.send(format!("got {seen} bytes later").as_bytes());
        conn.close();
    }
}

/// The client shuts its write side; the server still delivers its reply, then closes.
#[test]
fn half_close_reply_is_delivered() {
    let server = EpollTPServer::from_fn(ServerConfig::default().threads(1), || CountThenReply { seen: 0, delay: None })
        .start()
        .unwrap();
    let mut s = connect(server.local_addr());
    s.write_all(&[7; 100_000]).unwrap();
    s.shutdown(NetShutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut s).unwrap(), b"got 100000 bytes");
}

/// With half-close allowed, the connection stays open after the peer's end of stream and a
/// reply computed later (from a timer) still arrives.
#[test]
fn half_close_allowed_keeps_connection_for_late_reply() {
    let config = ServerConfig::default().threads(1).allow_half_close(true);
    let server = EpollTPServer::from_fn(config, || CountThenReply { seen: 0, delay: Some(Duration::from_millis(50)) })
        .start()
        .unwrap();
    let mut s = connect(server.local_addr());
    s.write_all(b"12345").unwrap();
    s.shutdown(NetShutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut s).unwrap(), b"got 5 bytes later");
}

/// Streams 64 MiB to whoever says "big"; echoes anything else.
struct BigOrEcho(Arc<Record>);

impl IoHandler for BigOrEcho {
    type ConnState = ();

    fn on_connect(&mut self, conn: &mut Conn<'_>) {
        RecordingEcho(self.0.clone()).on_connect(conn);
    }

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        if conn.input().as_slice() == b"big" {
            conn.input().clear();
            let chunk = vec![0xAB; 1 << 20];
            for _ in 0..64 {
                conn.send(&chunk);
            }
        } else {
            conn.send_input();
        }
    }

    fn on_passively_closed(&mut self, conn: &mut Conn<'_>) {
        RecordingEcho(self.0.clone()).on_passively_closed(conn);
    }

    fn on_closed(&mut self, conn: &mut Conn<'_>, reason: &CloseReason) {
        RecordingEcho(self.0.clone()).on_closed(conn, reason);
    }
}

/// A peer that resets in the middle of a large write closes only its own connection (with
/// the error) while another connection on the same thread keeps echoing.
#[test]
fn peer_reset_mid_write_disturbs_no_other_connection() {
    let record = Record::new();
    let r = record.clone();
    let server =
        EpollTPServer::from_fn(ServerConfig::default().threads(1), move || BigOrEcho(r.clone())).start().unwrap();
    let mut other = connect(server.local_addr());
    assert_eq!(echo_round_trip(&mut other, b"before"), b"before");

    let mut victim = connect(server.local_addr());
    victim.write_all(b"big").unwrap();
    let _ = read_n(&mut victim, 1 << 20); // part of the transfer...
    drop(victim); // ...then close with unread data: the kernel sends RST.

    wait_until(Duration::from_secs(10), "victim closed", || !record.close_reasons().is_empty());
    let reasons = record.close_reasons();
    assert!(reasons[0].starts_with("io error"), "victim close reason {reasons:?}");
    assert_eq!(*record.passive.lock(), 1, "on_passively_closed for the reset");
    for i in 0..10u8 {
        let data = pattern(100_000, i as u64);
        assert_eq!(echo_round_trip(&mut other, &data), data);
    }
    assert_eq!(server.stats().connections, 1);
}

/// Panics on "boom"; echoes otherwise.
struct Boom;

impl IoHandler for Boom {
    type ConnState = ();

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        if conn.input().as_slice().starts_with(b"boom") {
            panic!("boom requested by peer");
        }
        conn.send_input();
    }
}

/// A panic in a callback closes that connection; the thread keeps serving the others.
#[test]
fn panicking_handler_closes_only_its_connection() {
    let server = EpollTPServer::from_fn(ServerConfig::default().threads(1), || Boom).start().unwrap();
    let mut good = connect(server.local_addr());
    let mut bad = connect(server.local_addr());
    assert_eq!(echo_round_trip(&mut good, b"hi"), b"hi");
    bad.write_all(b"boom").unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(bad.read(&mut buf).unwrap_or(0), 0, "panicking connection is closed");
    assert_eq!(echo_round_trip(&mut good, b"still here"), b"still here");
    assert_eq!(server.stats().panics, 1);
}

/// Never consumes its input.
struct Hoarder(Arc<Mutex<Vec<String>>>);

impl IoHandler for Hoarder {
    type ConnState = ();

    fn on_closed(&mut self, _conn: &mut Conn<'_>, reason: &CloseReason) {
        self.0.lock().push(reason.to_string());
    }
}

/// A peer that sends more than the input limit without it being consumed is closed with a
/// reason; the limit is counted in the stats.
#[test]
fn input_limit_closes_the_offender() {
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let r = reasons.clone();
    let config = ServerConfig::default().threads(1).max_input_buffer(64 * 1024);
    let server = EpollTPServer::from_fn(config, move || Hoarder(r.clone())).start().unwrap();
    let mut s = connect(server.local_addr());
    // The write may fail once the server closes; what matters is that it closes.
    let _ = s.write_all(&[b'x'; 1 << 20]);
    wait_until(Duration::from_secs(10), "offender closed", || !reasons.lock().is_empty());
    assert_eq!(reasons.lock()[0], CloseReason::InputLimit.to_string());
    assert_eq!(server.stats().closed_by_limit, 1);
}

/// Counts write completions and sends `n` chunks, the next one from each completion.
struct Streamer {
    left: usize,
    completions: Arc<Mutex<usize>>,
}

impl IoHandler for Streamer {
    type ConnState = ();

    fn on_connect(&mut self, conn: &mut Conn<'_>) {
        conn.send(&[1; 100_000]);
        self.left -= 1;
    }

    fn on_write_complete(&mut self, conn: &mut Conn<'_>) {
        *self.completions.lock() += 1;
        if self.left == 0 {
            conn.close();
        } else {
            self.left -= 1;
            conn.send(&[1; 100_000]);
        }
    }
}

/// `on_write_complete` fires once per drained send, whether it was written at once or
/// queued, so a streamer can pace itself by it; close after it loses nothing.
#[test]
fn write_complete_paces_a_stream() {
    let completions = Arc::new(Mutex::new(0));
    let c = completions.clone();
    let server = EpollTPServer::from_fn(ServerConfig::default().threads(1), move || Streamer {
        left: 50,
        completions: c.clone(),
    })
    .start()
    .unwrap();
    let mut s = connect(server.local_addr());
    let all = read_to_end(&mut s).unwrap();
    assert_eq!(all.len(), 50 * 100_000);
    assert_eq!(*completions.lock(), 50);
}
