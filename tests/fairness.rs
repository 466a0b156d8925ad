//! Per-turn fairness: a connection reads at most a bounded amount per loop turn, so a peer that
//! floods cannot hold its IO thread while the other connections wait. (The latency this buys
//! under a flood is measured by `make bench`, not timed here.)

mod util;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use kingpin::{Conn, EpollTPServer, IoHandler, ServerConfig};
use parking_lot::Mutex;
use util::{connect, echo_round_trip, wait_until};

/// Keeps what comes (up to 512 KiB, then drops it all) and records the most bytes one
/// `on_message` was handed; a line starting with `!` is echoed instead.
#[derive(Default)]
struct Sink {
    most: Arc<Mutex<usize>>,
    total: Arc<Mutex<usize>>,
}

#[derive(Default)]
struct Seen(usize);

impl IoHandler for Sink {
    type ConnState = Seen;

    fn on_message(&mut self, conn: &mut Conn<'_, Seen>) {
        if conn.input().as_slice().first() == Some(&b'!') {
            conn.send_input();
            return;
        }
        let len = conn.input_len();
        let new = len - conn.state().0;
        *self.total.lock() += new;
        let mut most = self.most.lock();
        *most = (*most).max(new);
        if len > 512 << 10 {
            conn.input().clear();
            conn.state_mut().0 = 0;
        } else {
            conn.state_mut().0 = len;
        }
    }
}

/// Pushes `bytes` at the server as fast as it takes them, then waits until it has seen them all;
/// returns the most one `on_message` was handed.
fn flood(config: ServerConfig, bytes: usize) -> usize {
    let (most, total) = (Arc::new(Mutex::new(0)), Arc::new(Mutex::new(0)));
    let (m, t) = (most.clone(), total.clone());
    let server =
        EpollTPServer::from_fn(config.threads(1), move || Sink { most: m.clone(), total: t.clone() }).start().unwrap();
    let mut s = connect(server.local_addr());
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..bytes >> 20 {
        s.write_all(&chunk).unwrap();
    }
    wait_until(Duration::from_secs(20), "all read", || *total.lock() == bytes);
    // The loop still serves others at once.
    let mut other = connect(server.local_addr());
    assert_eq!(echo_round_trip(&mut other, b"!ping"), b"!ping");
    let most = *most.lock();
    most
}

/// A flood is read in bites of at most `max_read_per_turn` (64 KiB by default) — before, one
/// read took whatever the input buffer had room for and 64 KiB more, so a handler that keeps
/// its input (a large frame in progress) was handed hundreds of KiB per turn.
#[test]
fn a_flood_is_read_in_bounded_bites() {
    let most = flood(ServerConfig::default(), 32 << 20);
    eprintln!("default: at most {most} bytes in one turn");
    assert!(most <= 64 << 10, "{most} bytes read in one turn");
    let most = flood(ServerConfig::default().max_read_per_turn(16 << 10), 16 << 20);
    eprintln!("max_read_per_turn 16 KiB: at most {most} bytes in one turn");
    assert!(most <= 16 << 10, "{most} bytes read in one turn");
}
