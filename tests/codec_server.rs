//! The codecs on a real `EpollTPServer`: a handler that decodes lines with `Conn::decode` in
//! `on_message` and answers each with `Conn::encode`. Lines split across many writes come back
//! whole and in order; a line over the limit closes only its own connection, with
//! `CloseReason::Protocol`, after what was answered before it; an item the codec refuses to
//! encode leaves the connection working.

mod util;

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use kingpin::codec::LinesCodec;
use kingpin::{CloseReason, Conn, EpollTPServer, IoHandler, ServerConfig, ServerHandle};
use parking_lot::Mutex;
use util::{connect, pattern, read_n, read_to_end, wait_until, IO_TIMEOUT};

/// The codec's limit, in bytes per line.
const MAX: usize = 64;

/// How a connection closed: the reason's text, whether it was passive, whether `Protocol`.
type Closed = (String, bool, bool);

/// Echoes each line; a line "big" is answered with a line over the limit, which the codec
/// refuses, and then with "refused".
struct LineEcho {
    lines: LinesCodec,
    closes: Arc<Mutex<Vec<Closed>>>,
}

impl IoHandler for LineEcho {
    type ConnState = ();

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        while let Some(line) = conn.decode(&mut self.lines) {
            if line == b"big" {
                assert!(conn.encode(&mut self.lines, vec![b'x'; MAX + 1]).is_err(), "over the limit");
                conn.encode(&mut self.lines, "refused").expect("a short line");
            } else {
                conn.encode(&mut self.lines, &line).expect("an echoed line is within the limit");
            }
        }
    }

    fn on_closed(&mut self, _conn: &mut Conn<'_>, reason: &CloseReason) {
        let protocol = matches!(reason, CloseReason::Protocol(_));
        self.closes.lock().push((reason.to_string(), reason.is_passive(), protocol));
    }
}

fn start() -> (ServerHandle<LineEcho>, Arc<Mutex<Vec<Closed>>>) {
    let closes = Arc::new(Mutex::new(Vec::new()));
    let c = closes.clone();
    let server = EpollTPServer::from_fn(ServerConfig::default().threads(2), move || LineEcho {
        lines: LinesCodec::new(MAX),
        closes: c.clone(),
    })
    .start()
    .expect("start");
    (server, closes)
}

/// Writes `data` in pieces of 1 to 97 bytes, each its own `write`, on another thread, while
/// this one reads `expect.len()` bytes back.
fn send_in_pieces_and_read(s: &mut TcpStream, data: &[u8], expect: usize) -> Vec<u8> {
    let mut writer = s.try_clone().unwrap();
    std::thread::scope(|scope| {
        let w = scope.spawn(move || {
            let mut at = 0;
            let mut i = 0u64;
            while at < data.len() {
                i += 1;
                let n = ((i * 7919) % 97 + 1) as usize;
                let end = (at + n).min(data.len());
                writer.write_all(&data[at..end])?;
                at = end;
            }
            Ok::<(), std::io::Error>(())
        });
        let got = read_n(s, expect);
        w.join().unwrap().expect("write");
        got
    })
}

#[test]
fn lines_split_across_writes_come_back_whole_and_in_order() {
    let (server, closes) = start();
    let mut s = connect(server.local_addr());
    // 3,000 lines of 0..=MAX bytes (every length, the limit included), "\n" or "\r\n".
    let mut wire = Vec::new();
    let mut echo = Vec::new();
    for i in 0..3000u64 {
        let len = (i as usize * 13) % (MAX + 1);
        let line: Vec<u8> = pattern(len, i).into_iter().map(|b| b'a' + b % 26).collect();
        wire.extend_from_slice(&line);
        wire.extend_from_slice(if i % 3 == 0 { b"\r\n" } else { b"\n" });
        echo.extend_from_slice(&line);
        echo.push(b'\n');
    }
    let got = send_in_pieces_and_read(&mut s, &wire, echo.len());
    assert!(got == echo, "the echo differs from the lines sent");
    drop(s);
    wait_until(IO_TIMEOUT, "the connection closes", || closes.lock().len() == 1);
    assert_eq!(closes.lock()[0], ("closed by peer".to_string(), true, false));
    server.shutdown();
    server.join().unwrap();
}

#[test]
fn a_line_over_the_limit_closes_only_its_connection() {
    let (server, closes) = start();
    let addr = server.local_addr();
    let mut bad = connect(addr);
    let mut good = connect(addr);
    wait_until(IO_TIMEOUT, "both accepted", || server.stats().connections == 2);

    // Lines of exactly the limit pass on both.
    let full = [b'f'; MAX];
    for s in [&mut bad, &mut good] {
        s.write_all(&[&full[..], b"\r\n"].concat()).unwrap();
        assert_eq!(read_n(s, MAX + 1), [&full[..], b"\n"].concat());
    }

    // An item the codec refuses to encode leaves the connection working.
    good.write_all(b"big\n").unwrap();
    assert_eq!(read_n(&mut good, 8), b"refused\n");

    // A good line, then one byte over the limit with no end in sight: the good line is
    // answered, then the connection closes (end of stream, not a reset).
    bad.write_all(&[&b"first\n"[..], &[b'x'; MAX + 1]].concat()).unwrap();
    let rest = read_to_end(&mut bad).expect("an orderly end of stream after the answer");
    assert_eq!(rest, b"first\n");
    drop(bad);
    wait_until(IO_TIMEOUT, "the bad connection closes", || closes.lock().len() == 1);
    let (reason, passive, protocol) = closes.lock()[0].clone();
    assert!(protocol, "closed for {reason}");
    assert!(!passive, "a protocol error is this side's decision");
    assert_eq!(reason, format!("protocol error: frame too long: {} bytes, over the limit of {MAX}", MAX + 1));

    // The other connection still works.
    good.write_all(b"still here\n").unwrap();
    assert_eq!(read_n(&mut good, 11), b"still here\n");
    wait_until(IO_TIMEOUT, "one connection left", || server.stats().connections == 1);
    assert_eq!(closes.lock().len(), 1, "only the bad connection closed");

    drop(good);
    wait_until(IO_TIMEOUT, "the good connection closes", || closes.lock().len() == 2);
    server.shutdown();
    server.join().unwrap();
}

/// A flood without a newline is refused once it passes the limit, long before the input
/// limit (1 MiB) — the connection does not buffer the flood.
#[test]
fn a_flood_without_a_newline_is_cut_off_at_the_codec_limit() {
    let (server, closes) = start();
    let mut s = connect(server.local_addr());
    let flood = vec![b'z'; 256 * 1024];
    // The server may close while the flood is still being written: the write may fail.
    let _ = s.write_all(&flood);
    let _ = s.shutdown(std::net::Shutdown::Write);
    wait_until(Duration::from_secs(10), "the connection closes", || closes.lock().len() == 1);
    let (reason, _, protocol) = closes.lock()[0].clone();
    assert!(protocol, "closed for {reason}");
    assert!(reason.contains(&format!("over the limit of {MAX}")), "{reason}");
    server.shutdown();
    server.join().unwrap();
}
