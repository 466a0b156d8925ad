//! `Conn::send_file`: zero-copy file streaming paced by `on_write_complete`, behind buffered
//! output, against a slow reader, a file error, and a peer that resets mid-stream.

mod util;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use kingpin::{CloseReason, Conn, EpollTPServer, IoHandler, ServerConfig};
use parking_lot::Mutex;
use util::{connect, pattern, read_n, read_to_end, wait_until};

/// What the streaming handler saw.
#[derive(Default)]
struct Seen {
    /// `on_write_complete` calls.
    completions: usize,
    /// `send_file` calls that sent nothing.
    zero_sends: usize,
    /// `send_file` errors.
    errors: Vec<String>,
    /// Close reasons.
    closes: Vec<String>,
    /// Errors taken for the file's (the connection still open): the handler fell back.
    fallbacks: usize,
}

/// Streams `path` from `offset` to its end to every client, after an optional buffered
/// preamble, `chunk` bytes per `send_file`.
struct FileStreamer {
    path: std::path::PathBuf,
    preamble: Vec<u8>,
    chunk: usize,
    /// The file is opened write-only, so `sendfile` fails; the handler falls back to `send`.
    write_only: bool,
    seen: Arc<Mutex<Seen>>,
}

struct Transfer {
    file: File,
    offset: u64,
    end: u64,
}

impl FileStreamer {
    fn pump(&mut self, conn: &mut Conn<'_, Option<Transfer>>) {
        let Some(mut t) = conn.state_mut().take() else { return };
        let max = (t.end - t.offset).min(self.chunk as u64) as usize;
        match conn.send_file(&t.file, &mut t.offset, max) {
            Ok(0) if max > 0 => self.seen.lock().zero_sends += 1,
            Ok(_) => {}
            Err(e) => {
                self.seen.lock().errors.push(e.to_string());
                if !conn.is_closing() {
                    self.seen.lock().fallbacks += 1;
                    conn.send(b"fallback");
                    conn.close();
                }
                return;
            }
        }
        if t.offset >= t.end {
            conn.close();
        } else {
            *conn.state_mut() = Some(t);
        }
    }
}

impl IoHandler for FileStreamer {
    type ConnState = Option<Transfer>;

    fn on_connect(&mut self, conn: &mut Conn<'_, Option<Transfer>>) {
        let file = if self.write_only {
            OpenOptions::new().write(true).open(&self.path).unwrap()
        } else {
            File::open(&self.path).unwrap()
        };
        let end = std::fs::metadata(&self.path).unwrap().len();
        *conn.state_mut() = Some(Transfer { file, offset: 0, end });
        if self.preamble.is_empty() {
            self.pump(conn);
        } else {
            conn.send(&self.preamble);
            // Buffered output is ahead: this must send nothing and keep the order.
            let mut t = conn.state_mut().take().unwrap();
            let max = (t.end - t.offset).min(self.chunk as u64) as usize;
            assert_eq!(conn.send_file(&t.file, &mut t.offset, max).unwrap_or(usize::MAX), 0);
            assert_eq!(t.offset, 0);
            *conn.state_mut() = Some(t);
        }
    }

    fn on_write_complete(&mut self, conn: &mut Conn<'_, Option<Transfer>>) {
        self.seen.lock().completions += 1;
        self.pump(conn);
    }

    fn on_closed(&mut self, _conn: &mut Conn<'_, Option<Transfer>>, reason: &CloseReason) {
        self.seen.lock().closes.push(reason.to_string());
    }
}

fn temp_file(data: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(data).unwrap();
    f.flush().unwrap();
    f
}

fn start(
    path: &std::path::Path,
    preamble: Vec<u8>,
    chunk: usize,
    write_only: bool,
) -> (kingpin::ServerHandle<FileStreamer>, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s = seen.clone();
    let path = path.to_path_buf();
    let server = EpollTPServer::from_fn(ServerConfig::default().threads(1), move || FileStreamer {
        path: path.clone(),
        preamble: preamble.clone(),
        chunk,
        write_only,
        seen: s.clone(),
    })
    .start()
    .unwrap();
    (server, seen)
}

/// A file larger than any socket buffer arrives byte-exact, through a reader that starts late
/// (so `send_file` meets a full socket); while the socket is full the handler is not called in
/// a loop, and every byte counts in the stats.
#[test]
fn streams_a_file_paced_by_write_complete() {
    let data = pattern(16 << 20, 1);
    let file = temp_file(&data);
    let chunk = 256 << 10;
    let (server, seen) = start(file.path(), Vec::new(), chunk, false);
    let mut s = connect(server.local_addr());
    std::thread::sleep(Duration::from_millis(300)); // the socket fills up meanwhile
    let got = read_to_end(&mut s).unwrap();
    assert!(got == data, "received {} bytes, differing from the file", got.len());
    wait_until(Duration::from_secs(10), "close", || !seen.lock().closes.is_empty());
    let seen = seen.lock();
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
    // One call per chunk, plus one per wait for room: never a busy loop.
    let chunks = data.len() / chunk;
    assert!(seen.completions <= 4 * chunks, "{} completions for {chunks} chunks", seen.completions);
    assert!(seen.zero_sends <= chunks, "{} empty sends", seen.zero_sends);
    assert_eq!(seen.closes, [CloseReason::Local.to_string()]);
    assert_eq!(server.stats().bytes_out, data.len() as u64);
}

/// Bytes buffered by `send` go out before the file's, whatever the socket takes.
#[test]
fn waits_for_buffered_output() {
    let data = pattern(3 << 20, 2);
    let file = temp_file(&data);
    let preamble = vec![b'h'; 4 << 20]; // more than the socket takes at once
    let (server, seen) = start(file.path(), preamble.clone(), 1 << 20, false);
    let mut s = connect(server.local_addr());
    std::thread::sleep(Duration::from_millis(100));
    let got = read_to_end(&mut s).unwrap();
    assert_eq!(got.len(), preamble.len() + data.len());
    assert!(got[..preamble.len()] == preamble[..], "preamble damaged");
    assert!(got[preamble.len()..] == data[..], "file bytes damaged or reordered");
    assert!(seen.lock().errors.is_empty());
    assert_eq!(server.stats().bytes_out, got.len() as u64);
}

/// An empty file: nothing to send, the connection closes cleanly.
#[test]
fn empty_file() {
    let file = temp_file(b"");
    let (server, _seen) = start(file.path(), b"header\n".to_vec(), 1 << 20, false);
    let mut s = connect(server.local_addr());
    assert_eq!(read_to_end(&mut s).unwrap(), b"header\n");
}

/// A file error (here: not open for reading) is returned and leaves the connection usable.
#[test]
fn file_error_leaves_the_connection_usable() {
    let file = temp_file(b"some bytes");
    let (server, seen) = start(file.path(), Vec::new(), 1 << 20, true);
    let mut s = connect(server.local_addr());
    assert_eq!(read_to_end(&mut s).unwrap(), b"fallback");
    wait_until(Duration::from_secs(10), "close", || !seen.lock().closes.is_empty());
    let seen = seen.lock();
    assert_eq!(seen.errors.len(), 1);
    assert_eq!(seen.closes, [CloseReason::Local.to_string()]);
}

/// A peer that resets mid-stream closes that connection with an error; the server goes on
/// streaming to the next client.
#[test]
fn peer_reset_mid_stream_closes_the_connection() {
    let data = pattern(32 << 20, 3);
    let file = temp_file(&data);
    let (server, seen) = start(file.path(), Vec::new(), 1 << 20, false);
    {
        let mut s = connect(server.local_addr());
        assert_eq!(read_n(&mut s, 1 << 20), &data[..1 << 20]);
        // Unread bytes make the close a reset.
    }
    wait_until(Duration::from_secs(10), "reset noticed", || !seen.lock().closes.is_empty());
    assert!(seen.lock().closes[0].contains("error") || seen.lock().closes[0].contains("peer"));
    let mut s = connect(server.local_addr());
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert!(got == data, "second client got {} bytes", got.len());
    assert_eq!(seen.lock().fallbacks, 0, "a socket error taken for the file's: {:?}", seen.lock().errors);
    // The server's close lingers until this side closes too.
    drop(s);
    wait_until(Duration::from_secs(10), "no connection left", || server.stats().connections == 0);
}

/// A client that half-closes after its request (`nc -N`) still gets the whole file: a stream in
/// progress holds the connection open as buffered output does.
#[test]
fn a_half_closing_client_gets_the_whole_file() {
    let data = pattern(16 << 20, 4);
    let file = temp_file(&data);
    let (server, seen) = start(file.path(), Vec::new(), 1 << 20, false);
    for _ in 0..5 {
        let mut s = connect(server.local_addr());
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let got = read_to_end(&mut s).unwrap();
        assert_eq!(got.len(), data.len(), "truncated");
        assert!(got == data, "damaged");
    }
    wait_until(Duration::from_secs(10), "five closes", || seen.lock().closes.len() == 5);
    assert!(seen.lock().closes.iter().all(|r| r == "closed locally"), "{:?}", seen.lock().closes);
}

/// A file truncated under the transfer ends it with an error the handler sees, instead of
/// empty sends on every turn.
#[test]
fn a_file_truncated_under_the_transfer_is_an_error() {
    let data = pattern(64 << 20, 5);
    let file = temp_file(&data);
    let (server, seen) = start(file.path(), Vec::new(), 1 << 20, false);
    let mut s = connect(server.local_addr());
    assert_eq!(read_n(&mut s, 1 << 20), &data[..1 << 20]);
    std::fs::OpenOptions::new().write(true).open(file.path()).unwrap().set_len(2 << 20).unwrap();
    let _ = read_to_end(&mut s);
    wait_until(Duration::from_secs(10), "the handler saw the error", || !seen.lock().errors.is_empty());
    let seen = seen.lock();
    assert!(seen.errors[0].contains("ends before"), "{:?}", seen.errors);
    assert_eq!(seen.zero_sends, 0, "asked again and again");
    assert_eq!(seen.fallbacks, 1, "a file error leaves the connection to the handler");
    drop(seen);
    drop(s);
    wait_until(Duration::from_secs(10), "closed", || server.stats().connections == 0);
}
