//! The PROXY protocol on a server (`ServerConfig::proxy_protocol`): the header is read before
//! `on_connect` (and before TLS), the handler sees the client's address, the balancer's stays
//! readable, the per-address cap counts clients, and connections without a valid header are
//! closed before the handler meets them; a client sends one with `Target::proxy_header`.

mod util;

#[path = "../examples/common/tls.rs"]
mod tls_config;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kingpin::{
    encode_proxy_v1, encode_proxy_v2, encode_proxy_v2_local, ClientConfig, Conn, EpollTPClient, EpollTPServer,
    IoHandler, ProxyProtocol, ServerConfig, ServerHandle, Target,
};
use parking_lot::Mutex;
use util::{connect, read_n, wait_until, IO_TIMEOUT};

/// (peer_addr, proxied_by) of every connection the handler met.
type Met = Arc<Mutex<Vec<(SocketAddr, Option<SocketAddr>)>>>;

struct Echo(Met);

impl IoHandler for Echo {
    type ConnState = ();

    fn on_connect(&mut self, conn: &mut Conn<'_>) {
        self.0.lock().push((conn.peer_addr(), conn.proxied_by()));
    }

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        conn.send_input();
    }
}

fn server(config: ServerConfig) -> (ServerHandle<Echo>, Met) {
    let met: Met = Arc::default();
    let m = met.clone();
    (EpollTPServer::from_fn(config.threads(1), move || Echo(m.clone())).start().unwrap(), met)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn v1_and_v2_headers_name_the_client_even_split_into_single_bytes() {
    let (server, met) = server(ServerConfig::default().proxy_protocol(ProxyProtocol::Required));
    let balancer = server.local_addr();
    let mut c = connect(balancer);
    let mut first = encode_proxy_v1(addr("203.0.113.7:40000"), addr("198.51.100.1:443"));
    first.extend_from_slice(b"hello");
    c.write_all(&first).unwrap();
    assert_eq!(read_n(&mut c, 5), b"hello");

    let mut c6 = connect(balancer);
    let header = encode_proxy_v2(addr("[2001:db8::5]:5555"), addr("[2001:db8::1]:443"));
    for b in &header {
        c6.write_all(std::slice::from_ref(b)).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    c6.write_all(b"six").unwrap();
    assert_eq!(read_n(&mut c6, 3), b"six");

    let mut local = connect(balancer);
    local.write_all(&encode_proxy_v2_local()).unwrap();
    local.write_all(b"check").unwrap();
    assert_eq!(read_n(&mut local, 5), b"check");

    let me = c.local_addr().unwrap();
    let got = met.lock().clone();
    assert_eq!(got[0], (addr("203.0.113.7:40000"), Some(me)));
    assert_eq!(got[1].0, addr("[2001:db8::5]:5555"));
    assert_eq!(got[2], (local.local_addr().unwrap(), Some(local.local_addr().unwrap())), "LOCAL keeps the TCP peer");
    server.shutdown();
    server.join().unwrap();
}

#[test]
fn connections_without_a_valid_header_never_reach_the_handler() {
    let config = ServerConfig::default()
        .proxy_protocol(ProxyProtocol::Required)
        .tls_handshake_timeout(Duration::from_millis(300));
    let (server, met) = server(config);
    let balancer = server.local_addr();
    let mut good = connect(balancer);
    good.write_all(&encode_proxy_v1(addr("192.0.2.1:1"), addr("192.0.2.2:2"))).unwrap();
    let mut bad: Vec<(&str, Vec<u8>)> = vec![
        ("no header", b"GET / HTTP/1.1\r\n\r\n".to_vec()),
        ("malformed v1", b"PROXY TCP4 1.2.3.400 1.2.3.4 1 2\r\n".to_vec()),
        ("v1 without its end", vec![b'P', b'R', b'O', b'X', b'Y', b' ']),
    ];
    let mut oversized = encode_proxy_v2(addr("1.2.3.4:1"), addr("1.2.3.4:2"));
    oversized[14..16].copy_from_slice(&5000u16.to_be_bytes());
    bad.push(("oversized v2", oversized));
    let mut sockets = Vec::new();
    for (what, bytes) in &bad {
        let mut s = connect(balancer);
        s.write_all(bytes).unwrap();
        sockets.push((what, s));
    }
    let silent = connect(balancer); // sends nothing: the deadline closes it
    for (what, s) in &mut sockets {
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        assert!(rest.is_empty(), "{what}: the server answered {rest:?}");
    }
    wait_until(IO_TIMEOUT, "five failures", || server.stats().proxy_header_failures == 5);
    drop(silent);
    good.write_all(b"fine").unwrap();
    assert_eq!(read_n(&mut good, 4), b"fine");
    assert_eq!(met.lock().len(), 1, "only the good connection reached on_connect");
    server.shutdown();
    server.join().unwrap();
}

#[test]
fn optional_headers_serve_plain_clients_too() {
    let (server, met) = server(ServerConfig::default().proxy_protocol(ProxyProtocol::Optional));
    let mut plain = connect(server.local_addr());
    plain.write_all(b"plain").unwrap();
    assert_eq!(read_n(&mut plain, 5), b"plain");
    let mut proxied = connect(server.local_addr());
    proxied.write_all(&encode_proxy_v1(addr("192.0.2.9:9"), addr("192.0.2.2:2"))).unwrap();
    proxied.write_all(b"x").unwrap();
    assert_eq!(read_n(&mut proxied, 1), b"x");
    let got = met.lock().clone();
    assert_eq!(got[0], (plain.local_addr().unwrap(), None));
    assert_eq!(got[1].0, addr("192.0.2.9:9"));
    server.shutdown();
    server.join().unwrap();
}

/// The per-address cap counts the clients the headers name, not the balancer (which would
/// otherwise hit the cap with its first clients).
#[test]
fn the_per_address_cap_counts_clients_not_the_balancer() {
    let config = ServerConfig::default().proxy_protocol(ProxyProtocol::Required).max_connections_per_ip(Some(2));
    let (server, _met) = server(config);
    let open = |client: &str| {
        let mut s = connect(server.local_addr());
        s.write_all(&encode_proxy_v2(addr(client), addr("192.0.2.2:80"))).unwrap();
        s.write_all(b"?").unwrap();
        s
    };
    let mut held = Vec::new();
    for i in 0..6 {
        let mut s = open(&format!("198.51.100.{i}:1000"));
        assert_eq!(read_n(&mut s, 1), b"?", "six clients through one balancer");
        held.push(s);
    }
    for _ in 0..2 {
        let mut s = open("203.0.113.50:1");
        assert_eq!(read_n(&mut s, 1), b"?");
        held.push(s);
    }
    let mut third = open("203.0.113.50:1");
    let mut rest = Vec::new();
    let _ = third.read_to_end(&mut rest);
    assert!(rest.is_empty(), "the third connection of one client is refused");
    wait_until(IO_TIMEOUT, "the refusal counted", || server.stats().refused_per_ip == 1);
    server.shutdown();
    server.join().unwrap();
}

/// The header comes before TLS; a kingpin client sends one with `Target::proxy_header`.
#[test]
fn a_header_before_tls_from_a_kingpin_client() {
    let (tls, pem) = tls_config::self_signed(&[]).unwrap();
    let (server, met) = server(ServerConfig::default().proxy_protocol(ProxyProtocol::Required).tls(tls));
    struct Ask(Arc<Mutex<Vec<u8>>>);
    impl IoHandler for Ask {
        type ConnState = ();
        fn on_connect(&mut self, conn: &mut Conn<'_>) {
            conn.send(b"through");
        }
        fn on_message(&mut self, conn: &mut Conn<'_>) {
            self.0.lock().extend_from_slice(conn.input().as_slice());
            conn.input().clear();
            if self.0.lock().len() >= 7 {
                conn.close();
            }
        }
    }
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let config = ClientConfig::default().threads(1).tls(tls_config::client_config(&pem, &[]).unwrap());
    let client = EpollTPClient::from_fn(config, move || Ask(g.clone())).start().unwrap();
    let target = Target::new("127.0.0.1", server.local_addr().port())
        .tls("localhost")
        .proxy_header(encode_proxy_v2(addr("192.0.2.77:7777"), addr("192.0.2.1:443")));
    client.add(target).unwrap();
    wait_until(IO_TIMEOUT, "the echo over TLS", || got.lock().len() >= 7);
    assert_eq!(&*got.lock(), b"through");
    assert_eq!(met.lock()[0].0, addr("192.0.2.77:7777"));
    client.shutdown();
    client.join().unwrap();
    server.shutdown();
    server.join().unwrap();
}
