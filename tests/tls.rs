//! TLS as a layer (feature `tls`): the handler sees plaintext and meets a connection once its
//! handshake is done; bad peers (not TLS, a truncated or stalled handshake, an untrusted
//! certificate, a reset mid-record) close only their own connection; `close()` says
//! `close_notify`, the peer's `close_notify` is its end of stream; `send_file` streams through
//! the encryption; the client side connects to TLS targets.

mod util;

#[path = "../examples/common/tls.rs"]
mod tls_config;

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kingpin::{
    ClientConfig, CloseReason, Conn, ConnectFailure, EpollTPClient, EpollTPServer, IoHandler, ServerConfig,
    ServerHandle, Target, TlsError,
};
use parking_lot::Mutex;
use util::{connect, pattern, wait_until, IO_TIMEOUT};

/// What `on_connect` read of the handshake: ALPN protocol, SNI name, protocol version.
type Handshake = (Option<Vec<u8>>, Option<String>, Option<rustls::ProtocolVersion>);

/// What the server's handler saw.
#[derive(Default)]
struct Seen {
    connects: Mutex<Vec<Handshake>>,
    closes: Mutex<Vec<String>>,
    passive: Mutex<usize>,
    tls_errors: Mutex<Vec<TlsError>>,
    messages: Mutex<usize>,
}

/// Echoes plaintext; "bye\n" makes it answer "bye\n" and close.
struct Echo(Arc<Seen>);

impl IoHandler for Echo {
    type ConnState = ();

    fn on_connect(&mut self, conn: &mut Conn<'_>) {
        let tls = conn.tls().expect("a TLS connection");
        let alpn = tls.alpn_protocol().map(<[u8]>::to_vec);
        let sni = tls.server_name().map(str::to_owned);
        self.0.connects.lock().push((alpn, sni, tls.protocol_version()));
    }

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        *self.0.messages.lock() += 1;
        if conn.input().as_slice() == b"bye\n" {
            conn.input().clear();
            conn.send(b"bye\n");
            conn.close();
            return;
        }
        conn.send_input();
    }

    fn on_passively_closed(&mut self, _conn: &mut Conn<'_>) {
        *self.0.passive.lock() += 1;
    }

    fn on_closed(&mut self, _conn: &mut Conn<'_>, reason: &CloseReason) {
        self.0.closes.lock().push(reason.to_string());
    }

    fn on_tls_error(&mut self, _peer: SocketAddr, error: &TlsError) {
        self.0.tls_errors.lock().push(error.clone());
    }
}

/// A self-signed server certificate for localhost and 127.0.0.1, with ALPN http/1.1.
fn certificate() -> (Arc<rustls::ServerConfig>, String) {
    tls_config::self_signed(&[b"http/1.1"]).expect("certificate")
}

fn echo_server(config: ServerConfig) -> (ServerHandle<Echo>, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    (EpollTPServer::from_fn(config, move || Echo(s.clone())).start().expect("start"), seen)
}

fn tls_server(handshake_timeout: Duration) -> (ServerHandle<Echo>, Arc<Seen>, String) {
    let (config, pem) = certificate();
    let (server, seen) =
        echo_server(ServerConfig::default().threads(2).tls(config).tls_handshake_timeout(handshake_timeout));
    (server, seen, pem)
}

/// A client config trusting `pem`, limited to one protocol version when asked.
fn client_config(pem: &str, version: Option<&'static rustls::SupportedProtocolVersion>) -> Arc<rustls::ClientConfig> {
    let base = tls_config::client_config(pem, &[b"http/1.1"]).unwrap();
    let Some(version) = version else { return base };
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = base.alpn_protocols.clone();
    Arc::new(config)
}

use rustls::pki_types::pem::PemObject;

type Client = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A blocking rustls client (every read and write bounded by the socket's timeouts).
fn tls_connect(addr: SocketAddr, config: Arc<rustls::ClientConfig>, name: &str) -> Client {
    let conn = rustls::ClientConnection::new(config, name.to_owned().try_into().unwrap()).unwrap();
    rustls::StreamOwned::new(conn, connect(addr))
}

fn round_trip(c: &mut Client, data: &[u8]) -> Vec<u8> {
    c.write_all(data).expect("write");
    let mut got = vec![0; data.len()];
    c.read_exact(&mut got).expect("read the echo");
    got
}

#[test]
fn echo_over_tls_1_2_and_1_3_with_alpn_and_sni() {
    let (server, seen, pem) = tls_server(Duration::from_secs(10));
    for (version, expect) in [
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
    ] {
        let mut c = tls_connect(server.local_addr(), client_config(&pem, Some(version)), "localhost");
        for size in [1, 100, 16 * 1024, 100_000] {
            let data = pattern(size, size as u64);
            assert_eq!(round_trip(&mut c, &data), data, "{size} bytes over {expect:?}");
        }
        assert_eq!(c.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
        assert_eq!(c.conn.protocol_version(), Some(expect));
    }
    wait_until(IO_TIMEOUT, "two connects", || seen.connects.lock().len() == 2);
    let connects = seen.connects.lock().clone();
    assert_eq!(
        connects[0],
        (Some(b"http/1.1".to_vec()), Some("localhost".into()), Some(rustls::ProtocolVersion::TLSv1_3))
    );
    assert_eq!(connects[1].2, Some(rustls::ProtocolVersion::TLSv1_2));
    assert!(*seen.messages.lock() >= 8);
    let stats = server.stats();
    assert_eq!(stats.tls_handshakes, 2);
    assert_eq!(stats.tls_handshake_failures, 0);
    server.shutdown();
    server.join().unwrap();
}

/// `close()` sends `close_notify` after the last bytes: the client reads "bye" and a clean
/// end (rustls reports a truncation as an error); the client's own `close_notify` is the
/// server's `on_passively_closed`.
#[test]
fn close_sends_close_notify_and_the_peers_is_its_end_of_stream() {
    let (server, seen, pem) = tls_server(Duration::from_secs(10));
    let mut c = tls_connect(server.local_addr(), client_config(&pem, None), "localhost");
    c.write_all(b"bye\n").unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).expect("a clean close_notify, not a truncation");
    assert_eq!(got, b"bye\n");
    drop(c); // the server's close lingers until this end
    wait_until(IO_TIMEOUT, "the first close", || seen.closes.lock().len() == 1);

    let mut c = tls_connect(server.local_addr(), client_config(&pem, None), "localhost");
    assert_eq!(round_trip(&mut c, b"hi"), b"hi");
    c.conn.send_close_notify();
    c.flush().unwrap();
    wait_until(IO_TIMEOUT, "on_passively_closed", || *seen.passive.lock() == 1);
    wait_until(IO_TIMEOUT, "two closes", || seen.closes.lock().len() == 2);
    let closes = seen.closes.lock().clone();
    assert_eq!(closes, vec!["closed locally".to_string(), "closed by peer".to_string()]);
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).expect("the server's close_notify in answer");
    assert!(rest.is_empty());
    server.shutdown();
    server.join().unwrap();
}

/// Peers that break the handshake in every way at once; each closes only its own connection,
/// counted and told to `on_tls_error`, never to `on_connect` or `on_closed`; a well-behaved
/// client is served throughout.
#[test]
fn bad_handshakes_close_only_their_own_connection() {
    let (server, seen, pem) = tls_server(Duration::from_millis(500));
    let addr = server.local_addr();
    let mut good = tls_connect(addr, client_config(&pem, None), "localhost");
    assert_eq!(round_trip(&mut good, b"warm"), b"warm");

    // Garbage instead of a ClientHello.
    let mut garbage = Vec::new();
    for _ in 0..20 {
        let mut s = connect(addr);
        s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        garbage.push(s);
    }
    // A ClientHello cut short, then silence (a slowloris on the handshake).
    let hello = client_hello();
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let mut s = connect(addr);
        s.write_all(&hello[..hello.len() / 2]).unwrap();
        stalled.push(s);
    }
    // Connected and silent.
    let silent: Vec<TcpStream> = (0..20).map(|_| connect(addr)).collect();
    // A client that does not trust the server's certificate.
    let (_, other_pem) = certificate();
    let untrusted = rustls::ClientConnection::new(client_config(&other_pem, None), "localhost".try_into().unwrap());
    let mut untrusted = rustls::StreamOwned::new(untrusted.unwrap(), connect(addr));
    let err = untrusted.write_all(b"x").and_then(|()| untrusted.flush()).and_then(|()| {
        let mut b = [0; 1];
        untrusted.read(&mut b).map(|_| ())
    });
    assert!(err.is_err(), "the client refuses the certificate");

    // Meanwhile the good client is served.
    for i in 0..50u32 {
        let data = pattern(1000, u64::from(i));
        assert_eq!(round_trip(&mut good, &data), data);
    }
    // The garbage gets an alert and a close; the stalled and the silent are closed by the
    // handshake timeout.
    for s in garbage.iter_mut().chain(stalled.iter_mut()) {
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest); // EOF or reset, bounded by the socket timeout
        assert!(rest.len() < 64, "at most an alert, got {} bytes", rest.len());
    }
    wait_until(IO_TIMEOUT, "61 handshake failures", || server.stats().tls_handshake_failures == 61);
    drop(silent);
    let errors = seen.tls_errors.lock().clone();
    assert!(errors.iter().filter(|e| matches!(e, TlsError::Protocol(_))).count() >= 21, "{errors:?}");
    assert_eq!(errors.iter().filter(|e| matches!(e, TlsError::HandshakeTimeout(_))).count(), 40, "{errors:?}");
    assert_eq!(seen.connects.lock().len(), 1, "only the good client reached on_connect");
    assert!(seen.closes.lock().is_empty(), "no on_closed for connections the handler never saw");
    assert_eq!(round_trip(&mut good, b"still here"), b"still here");
    server.shutdown();
    server.join().unwrap();
}

/// The bytes of a real ClientHello.
fn client_hello() -> Vec<u8> {
    let (_, pem) = certificate();
    let mut conn = rustls::ClientConnection::new(client_config(&pem, None), "localhost".try_into().unwrap()).unwrap();
    let mut out = Vec::new();
    conn.write_tls(&mut out).unwrap();
    assert!(out.len() > 100);
    out
}

/// A peer that sends half a record and resets; a 16 KiB record written one byte at a time.
#[test]
fn a_reset_mid_record_and_a_record_in_one_byte_writes() {
    let (server, seen, pem) = tls_server(Duration::from_secs(10));
    let addr = server.local_addr();
    let config = client_config(&pem, None);

    // A record split into 1-byte writes arrives whole.
    let mut conn = rustls::ClientConnection::new(config.clone(), "localhost".try_into().unwrap()).unwrap();
    let mut tcp = connect(addr);
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).unwrap();
    }
    let data = pattern(16 * 1024, 7);
    conn.writer().write_all(&data).unwrap();
    let mut wire = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut wire).unwrap();
    }
    for b in &wire {
        tcp.write_all(std::slice::from_ref(b)).unwrap();
    }
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    let mut got = vec![0; data.len()];
    stream.read_exact(&mut got).unwrap();
    assert_eq!(got, data);

    // Half a record, then a reset.
    let mut conn = rustls::ClientConnection::new(config.clone(), "localhost".try_into().unwrap()).unwrap();
    let mut tcp = connect(addr);
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).unwrap();
    }
    conn.writer().write_all(&pattern(10_000, 8)).unwrap();
    let mut wire = Vec::new();
    conn.write_tls(&mut wire).unwrap();
    tcp.write_all(&wire[..wire.len() / 2]).unwrap();
    socket2::SockRef::from(&tcp).set_linger(Some(Duration::ZERO)).unwrap();
    drop(tcp);
    wait_until(IO_TIMEOUT, "the reset connection closes", || seen.closes.lock().len() == 1);
    assert!(seen.closes.lock()[0].contains("io error"), "{:?}", seen.closes.lock());

    // The first connection is unharmed.
    assert_eq!(round_trip(&mut stream, b"after"), b"after");
    server.shutdown();
    server.join().unwrap();
}

/// Sends one file per connection with `send_file`, paced by `on_write_complete`.
struct FileServer(std::path::PathBuf);

#[derive(Default)]
struct Transfer {
    file: Option<File>,
    offset: u64,
    end: u64,
}

impl IoHandler for FileServer {
    type ConnState = Transfer;

    fn on_connect(&mut self, conn: &mut Conn<'_, Transfer>) {
        let file = File::open(&self.0).unwrap();
        let end = file.metadata().unwrap().len();
        *conn.state_mut() = Transfer { file: Some(file), offset: 0, end };
        self.on_write_complete(conn);
    }

    fn on_write_complete(&mut self, conn: &mut Conn<'_, Transfer>) {
        let kingpin::Parts { state: t, mut output, .. } = conn.parts();
        let Some(file) = &t.file else { return };
        let chunk = (t.end - t.offset).min(1 << 20) as usize;
        match output.send_file(file, &mut t.offset, chunk) {
            Ok(_) if t.offset >= t.end => conn.close(),
            Ok(_) => {}
            Err(e) => panic!("send_file: {e}"),
        }
    }
}

/// A file streamed through TLS arrives byte-exact, and the server never holds more than about
/// the window of it in user space, however slowly the client reads.
#[test]
fn send_file_streams_through_tls_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let data = pattern(8 << 20, 42);
    std::fs::write(&path, &data).unwrap();
    let (config, pem) = certificate();
    let p = path.clone();
    let server = EpollTPServer::from_fn(ServerConfig::default().threads(1).tls(config), move || FileServer(p.clone()))
        .start()
        .unwrap();
    let mut c = tls_connect(server.local_addr(), client_config(&pem, None), "localhost");
    let mut got = Vec::with_capacity(data.len());
    let mut buf = vec![0; 4096];
    let mut most_buffered = 0;
    loop {
        let n = c.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if got.len() % (256 << 10) < 4096 {
            std::thread::sleep(Duration::from_millis(5)); // a slow reader now and then
            most_buffered = most_buffered.max(server.stats().buffered_bytes);
        }
    }
    assert_eq!(got.len(), data.len());
    assert!(got == data, "byte-exact");
    // Pooled buffers count too: a window of 64 KiB plus records and the pool's spares.
    assert!(most_buffered < 1 << 20, "held {most_buffered} bytes in buffers");
    server.shutdown();
    server.join().unwrap();
}

/// The client side: a kingpin client speaks TLS to a kingpin server (first message sent once
/// the handshake is done), and a server it does not trust is a failed connect.
#[derive(Default)]
struct ClientSeen {
    replies: Mutex<Vec<Vec<u8>>>,
    failures: Mutex<Vec<String>>,
    tls_errors: Mutex<usize>,
    alpn: Mutex<Vec<Option<Vec<u8>>>>,
}

struct Asker(Arc<ClientSeen>);

impl IoHandler for Asker {
    type ConnState = ();

    fn on_connect(&mut self, conn: &mut Conn<'_>) {
        self.0.alpn.lock().push(conn.tls().and_then(|t| t.alpn_protocol().map(<[u8]>::to_vec)));
        conn.send(b"second\n");
    }

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        if conn.input().find_eol().is_some() && conn.input().as_slice().ends_with(b"second\n") {
            let reply = conn.input().as_slice().to_vec();
            conn.input().clear();
            self.0.replies.lock().push(reply);
            conn.close();
        }
    }

    fn on_connect_failed(&mut self, _target: &Target, failure: &ConnectFailure) {
        self.0.failures.lock().push(failure.to_string());
    }

    fn on_tls_error(&mut self, _peer: SocketAddr, _error: &TlsError) {
        *self.0.tls_errors.lock() += 1;
    }
}

#[test]
fn a_kingpin_client_speaks_tls_and_refuses_an_untrusted_server() {
    let (server, _seen, pem) = tls_server(Duration::from_secs(10));
    let port = server.local_addr().port();
    let (_, other_pem) = certificate();
    let seen = Arc::new(ClientSeen::default());
    let s = seen.clone();
    let trusting =
        EpollTPClient::from_fn(ClientConfig::default().threads(1).tls(client_config(&pem, None)), move || {
            Asker(s.clone())
        })
        .start()
        .unwrap();
    for _ in 0..5 {
        trusting.add(Target::new("127.0.0.1", port).tls("localhost").first_message(b"first\n".to_vec())).unwrap();
    }
    let s = seen.clone();
    let wary =
        EpollTPClient::from_fn(ClientConfig::default().threads(1).tls(client_config(&other_pem, None)), move || {
            Asker(s.clone())
        })
        .start()
        .unwrap();
    wary.add(Target::new("127.0.0.1", port).tls("localhost")).unwrap();
    // A TLS target on a client without a TLS config fails clearly.
    let s = seen.clone();
    let plain = EpollTPClient::from_fn(ClientConfig::default().threads(1), move || Asker(s.clone())).start().unwrap();
    plain.add(Target::new("127.0.0.1", port).tls("localhost")).unwrap();

    wait_until(IO_TIMEOUT, "5 replies and 2 failures", || {
        seen.replies.lock().len() == 5 && seen.failures.lock().len() == 2
    });
    for r in seen.replies.lock().iter() {
        assert_eq!(r, b"first\nsecond\n");
    }
    assert!(seen.alpn.lock().iter().all(|a| a.as_deref() == Some(&b"http/1.1"[..])));
    let failures = seen.failures.lock().clone();
    assert!(failures.iter().any(|f| f.contains("TLS handshake") && f.contains("certificate")), "{failures:?}");
    assert!(failures.iter().any(|f| f.contains("no TLS config")), "{failures:?}");
    assert_eq!(*seen.tls_errors.lock(), 1);
    for c in [trusting, wary, plain] {
        c.shutdown();
        c.join().unwrap();
    }
    server.shutdown();
    server.join().unwrap();
}

/// An idle TLS connection holds no buffer of its own between messages: the loop's buffered
/// bytes fall back to what it held before, pooled buffers aside.
#[test]
fn an_idle_tls_connection_holds_no_buffer() {
    let (server, _seen, pem) = tls_server(Duration::from_secs(10));
    let mut clients: Vec<Client> =
        (0..50).map(|_| tls_connect(server.local_addr(), client_config(&pem, None), "localhost")).collect();
    for c in &mut clients {
        assert_eq!(round_trip(c, &pattern(20_000, 1)), pattern(20_000, 1));
    }
    // Buffers in use are counted per connection; idle, each holds none. What remains is the
    // pools' spares (at most 4 MiB per loop), not 50 × (input + output + ciphertext).
    let deadline = Instant::now() + IO_TIMEOUT;
    let held = loop {
        let held = server.stats().buffered_bytes;
        if held <= 2 * (4 << 20) || Instant::now() > deadline {
            break held;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(held <= 2 * (4 << 20), "{held} bytes buffered with 50 idle connections");
    drop(clients);
    server.shutdown();
    server.join().unwrap();
}

/// Reading a garbage connection to its end never blocks the test: the server closes it.
#[test]
fn a_plain_text_client_gets_an_alert_not_a_hang() {
    let (server, _seen, _pem) = tls_server(Duration::from_secs(10));
    let mut s = connect(server.local_addr());
    s.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff]).unwrap(); // a handshake record header, too long
    s.write_all(&[0u8; 100]).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => {}
        Err(e) => assert_ne!(e.kind(), ErrorKind::WouldBlock, "timed out: the server kept the connection"),
    }
    server.shutdown();
    server.join().unwrap();
}

/// A client whose target refuses the handshake with a fatal alert (and then neither reads nor
/// closes) fails that connect, and lets the connection go: the first message that waited for
/// the handshake is not held as pending output forever.
#[test]
fn a_client_with_a_first_message_lets_a_failed_handshake_go() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let squatter = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]).unwrap(); // fatal handshake_failure
        std::thread::sleep(Duration::from_secs(8)); // holds the socket, never reads
    });
    let (_, pem) = certificate();
    let seen = Arc::new(ClientSeen::default());
    let s = seen.clone();
    let config = ClientConfig::default()
        .threads(1)
        .tls(client_config(&pem, None))
        .tls_handshake_timeout(Duration::from_secs(60))
        .linger_timeout(Duration::from_millis(200));
    let client = EpollTPClient::from_fn(config, move || Asker(s.clone())).start().unwrap();
    client.add(Target::new("127.0.0.1", port).tls("localhost").first_message(vec![b'x'; 100_000])).unwrap();
    // Long before the squatter lets go (8 s) or the handshake timeout (60 s).
    wait_until(Duration::from_secs(5), "the failed connect", || seen.failures.lock().len() == 1);
    assert!(seen.failures.lock()[0].contains("TLS handshake: received fatal alert"), "{:?}", seen.failures.lock());
    wait_until(Duration::from_secs(1), "the connection to close", || client.stats().connections == 0);
    assert_eq!(client.stats().tls_handshake_failures, 1);
    client.shutdown();
    client.join().unwrap();
    squatter.join().unwrap();
}

/// Counts what comes back, and closes once `expect` bytes have.
struct Counter(Arc<Mutex<Vec<u8>>>, usize);

impl IoHandler for Counter {
    type ConnState = ();

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        let mut got = self.0.lock();
        got.extend_from_slice(conn.input().as_slice());
        conn.input().clear();
        if got.len() >= self.1 {
            conn.close();
        }
    }
}

/// A first message far above the high water mark waits for the handshake without pausing it
/// (the handshake is read whatever the backpressure), then arrives whole.
#[test]
fn a_first_message_above_the_high_water_mark_goes_out_after_the_handshake() {
    let (server, _seen, pem) = tls_server(Duration::from_secs(10));
    let first = pattern(300_000, 9);
    let got = Arc::new(Mutex::new(Vec::new()));
    let (g, n) = (got.clone(), first.len());
    let client = EpollTPClient::from_fn(ClientConfig::default().threads(1).tls(client_config(&pem, None)), move || {
        Counter(g.clone(), n)
    })
    .start()
    .unwrap();
    client
        .add(Target::new("127.0.0.1", server.local_addr().port()).tls("localhost").first_message(first.clone()))
        .unwrap();
    wait_until(IO_TIMEOUT, "the echo of the first message", || got.lock().len() >= first.len());
    assert!(*got.lock() == first);
    client.shutdown();
    client.join().unwrap();
    server.shutdown();
    server.join().unwrap();
}

/// Small sends gathered, a large one sealed at once, more small ones, an echo from the input
/// and a send after it: over TLS every byte arrives in the order sent.
struct Mixer;

impl IoHandler for Mixer {
    type ConnState = ();

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        if conn.input_len() < 4 {
            return;
        }
        for i in 0..100u32 {
            conn.send(format!("a{i};").as_bytes());
        }
        conn.send(&pattern(20_000, 3));
        for i in 0..100u32 {
            conn.send(format!("b{i};").as_bytes());
        }
        conn.send_input();
        conn.send(b"end");
    }
}

#[test]
fn gathered_small_sends_large_sends_and_echoes_keep_their_order() {
    let (config, pem) = certificate();
    let server = EpollTPServer::from_fn(ServerConfig::default().threads(1).tls(config), || Mixer).start().unwrap();
    let mut expect = Vec::new();
    for i in 0..100u32 {
        expect.extend_from_slice(format!("a{i};").as_bytes());
    }
    expect.extend_from_slice(&pattern(20_000, 3));
    for i in 0..100u32 {
        expect.extend_from_slice(format!("b{i};").as_bytes());
    }
    expect.extend_from_slice(b"ping");
    expect.extend_from_slice(b"end");
    let mut c = tls_connect(server.local_addr(), client_config(&pem, None), "localhost");
    for _ in 0..3 {
        c.write_all(b"ping").unwrap();
        let mut got = vec![0; expect.len()];
        c.read_exact(&mut got).unwrap();
        assert!(got == expect, "the bytes arrived out of order");
    }
    server.shutdown();
    server.join().unwrap();
}

/// A connection closed at once with nothing pending (here by an idle timeout) still says
/// `close_notify`: the peer reads a clean end, not a truncation.
#[test]
fn an_idle_close_says_close_notify() {
    let (config, pem) = certificate();
    let (server, seen) = echo_server(
        ServerConfig::default()
            .threads(1)
            .tls(config)
            .idle_timeouts(kingpin::IdleTimeouts::read(Duration::from_millis(300))),
    );
    let mut c = tls_connect(server.local_addr(), client_config(&pem, None), "localhost");
    assert_eq!(round_trip(&mut c, b"hello"), b"hello");
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).expect("a clean close_notify, not a truncation");
    assert!(rest.is_empty());
    wait_until(IO_TIMEOUT, "the idle close", || seen.closes.lock().len() == 1);
    assert!(seen.closes.lock()[0].contains("idle"), "{:?}", seen.closes.lock());
    server.shutdown();
    server.join().unwrap();
}

/// Sends 4 MiB in one `send` when asked ("go").
struct Big;

impl IoHandler for Big {
    type ConnState = ();

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        if conn.input().as_slice().ends_with(b"go") {
            conn.input().clear();
            conn.send(&pattern(4 << 20, 11));
        }
    }
}

/// Edge-triggered, a send of more records than rustls hands over in one write (64) still all
/// goes out: the socket is taken as full only when it refuses.
#[test]
fn edge_triggered_large_sends_over_tls_all_arrive() {
    let (config, pem) = certificate();
    let server = EpollTPServer::from_fn(ServerConfig::default().threads(1).tls(config).edge_triggered(true), || Big)
        .start()
        .unwrap();
    let mut c = tls_connect(server.local_addr(), client_config(&pem, None), "localhost");
    c.write_all(b"go").unwrap();
    let mut got = vec![0; 4 << 20];
    c.read_exact(&mut got).expect("the whole 4 MiB");
    assert!(got == pattern(4 << 20, 11));
    server.shutdown();
    server.join().unwrap();
}

/// An edge-triggered TLS connection that goes idle holds no ciphertext buffer.
#[test]
fn edge_triggered_idle_tls_connections_hold_no_buffer() {
    let (config, pem) = certificate();
    let (server, _seen) = echo_server(ServerConfig::default().threads(1).tls(config).edge_triggered(true));
    let mut clients: Vec<Client> =
        (0..100).map(|_| tls_connect(server.local_addr(), client_config(&pem, None), "localhost")).collect();
    for c in &mut clients {
        let data = pattern(100_000, 5);
        assert!(round_trip(c, &data) == data);
    }
    // The pool keeps at most 4 MiB; 100 idle connections each keeping 64 KiB would be 6.4 MB.
    let deadline = Instant::now() + IO_TIMEOUT;
    let held = loop {
        let held = server.stats().buffered_bytes;
        if held <= 4 << 20 || Instant::now() > deadline {
            break held;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(held <= 4 << 20, "{held} bytes buffered by 100 idle connections");
    drop(clients);
    server.shutdown();
    server.join().unwrap();
}

/// A client closing (here: shutting down) during a handshake that cannot complete drops the
/// first message that waited for it instead of holding the close until the deadline.
#[test]
fn a_close_during_the_handshake_does_not_wait_for_it() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mute = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        std::thread::sleep(Duration::from_secs(3)); // reads nothing, answers nothing
        drop(s);
    });
    let (_, pem) = certificate();
    let seen = Arc::new(ClientSeen::default());
    let s = seen.clone();
    let config =
        ClientConfig::default().threads(1).tls(client_config(&pem, None)).shutdown_timeout(Duration::from_secs(30));
    let client = EpollTPClient::from_fn(config, move || Asker(s.clone())).start().unwrap();
    client.add(Target::new("127.0.0.1", port).tls("localhost").first_message(b"hello".to_vec())).unwrap();
    wait_until(IO_TIMEOUT, "the connection", || client.stats().connections == 1);
    client.shutdown();
    wait_until(IO_TIMEOUT, "the failure report", || seen.failures.lock().len() == 1);
    let failure = seen.failures.lock()[0].clone();
    assert!(!failure.contains("deadline"), "the close waited for the deadline: {failure}");
    client.join().unwrap();
    mute.join().unwrap();
}

/// A loop's context does not hand out a connection still in its handshake.
#[test]
fn the_loop_context_does_not_reach_a_connection_in_its_handshake() {
    let (server, _seen, _pem) = tls_server(Duration::from_secs(10));
    let mut s = connect(server.local_addr());
    s.write_all(&client_hello()[..20]).unwrap();
    wait_until(IO_TIMEOUT, "the connection", || server.stats().connections == 1);
    let (tx, rx) = std::sync::mpsc::channel();
    server.loops()[0]
        .run(move |_h, ctx| {
            let ids = ctx.conn_ids();
            let _ = tx.send(ids);
        })
        .unwrap();
    let ids = rx.recv_timeout(IO_TIMEOUT).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    server.loops()[1]
        .run(move |_h, ctx| {
            let _ = tx.send(ctx.conn_ids());
        })
        .unwrap();
    let more = rx.recv_timeout(IO_TIMEOUT).unwrap();
    assert!(ids.is_empty() && more.is_empty(), "met before on_connect: {ids:?} {more:?}");
    drop(s);
    server.shutdown();
    server.join().unwrap();
}
