//! The write path gathers: the sends of one callback (or one batch of commands from other
//! threads) leave in one system call, large sends are not copied, and bytes never overtake one
//! another — in both epoll modes.

mod util;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use kingpin::{Conn, ConnId, EpollTPServer, IoHandler, LoopCtx, Parts, ServerConfig};
use parking_lot::Mutex;
use util::{connect, read_n, wait_until};

/// Answers every line with `ok <n>` (n counts the connection's lines), one send per line.
struct LineReply;

impl IoHandler for LineReply {
    type ConnState = u64;

    fn on_message(&mut self, conn: &mut Conn<'_, u64>) {
        let Parts { input, state: count, mut output } = conn.parts();
        while let Some(end) = input.find_eol() {
            input.advance(end + 1);
            *count += 1;
            output.send(format!("ok {count}\n").as_bytes());
        }
    }
}

fn server<H: IoHandler>(edge: bool, factory: impl Fn() -> H + Send + Sync + 'static) -> kingpin::ServerHandle<H> {
    EpollTPServer::from_fn(ServerConfig::default().threads(1).edge_triggered(edge), factory).start().unwrap()
}

/// 1,000 pipelined lines in one write: answered in order, with no more writes than reads
/// (one per read, not one per line).
#[test]
fn pipelined_lines_are_answered_with_one_write_per_read() {
    for edge in [false, true] {
        let server = server(edge, || LineReply);
        let mut s = connect(server.local_addr());
        let lines: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        s.write_all(lines.as_bytes()).unwrap();
        let expected: String = (1..=1000).map(|i| format!("ok {i}\n")).collect();
        let got = read_n(&mut s, expected.len());
        assert_eq!(String::from_utf8(got).unwrap(), expected, "edge-triggered: {edge}");
        let stats = server.stats();
        assert!(
            stats.write_calls <= stats.read_calls && stats.write_calls <= 20,
            "edge-triggered: {edge}: {} writes for {} reads and 1,000 replies",
            stats.write_calls,
            stats.read_calls
        );
        server.shutdown();
        server.join().unwrap();
    }
}

/// Remembers the ids of its connections, for closures sent from the test.
struct Ids(Arc<Mutex<Vec<ConnId>>>);

impl IoHandler for Ids {
    type ConnState = ();

    fn on_connect(&mut self, conn: &mut Conn<'_>) {
        self.0.lock().push(conn.id());
    }
}

/// A closure that sends 100 times to one connection makes one write.
#[test]
fn a_closure_sending_many_times_makes_one_write() {
    let ids = Arc::new(Mutex::new(Vec::new()));
    let i = ids.clone();
    let server = server(false, move || Ids(i.clone()));
    let mut s = connect(server.local_addr());
    wait_until(Duration::from_secs(10), "connected", || !ids.lock().is_empty());
    let id = ids.lock()[0];
    let before = server.stats().write_calls;
    server.loops()[0]
        .run(move |_h: &mut Ids, ctx: &mut LoopCtx<'_, Ids>| {
            let mut conn = ctx.conn(id).expect("open");
            for i in 0..100u8 {
                conn.send(&[b'a' + i % 26]);
            }
        })
        .unwrap();
    let got = read_n(&mut s, 100);
    assert_eq!(got, (0..100u8).map(|i| b'a' + i % 26).collect::<Vec<_>>());
    assert_eq!(server.stats().write_calls - before, 1, "one write for the whole closure");
    server.shutdown();
    server.join().unwrap();
}

/// Small, large, small: the large send goes out at once with the small one queued ahead of it,
/// the rest follows in order, whatever the socket takes at a time.
struct Sandwich;

impl IoHandler for Sandwich {
    type ConnState = ();

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        conn.input().clear();
        conn.send(b"head:");
        conn.send(&util::pattern(4 << 20, 7));
        conn.send(b":tail");
        conn.send(&util::pattern(20_000, 8));
        conn.close();
    }
}

#[test]
fn large_sends_keep_their_order_with_small_ones() {
    for edge in [false, true] {
        let server = server(edge, || Sandwich);
        let mut s = connect(server.local_addr());
        s.write_all(b"go").unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        let mut expected = b"head:".to_vec();
        expected.extend(util::pattern(4 << 20, 7));
        expected.extend_from_slice(b":tail");
        expected.extend(util::pattern(20_000, 8));
        assert_eq!(got.len(), expected.len(), "edge-triggered: {edge}");
        assert!(got == expected, "edge-triggered: {edge}: bytes reordered or damaged");
        server.shutdown();
        server.join().unwrap();
    }
}
