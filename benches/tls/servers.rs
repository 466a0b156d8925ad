//! The servers under test: kingpin's `http_server` and `echo_server` over TLS, nginx with the
//! same certificate, and a tokio-rustls echo server; how to start each pinned to CPU 1, and
//! which cipher suite a client gets from it.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::process::{child_setup, Server};
use crate::Cert;

/// Set in a server child: which server to run.
pub const SERVE_ENV: &str = "KINGPIN_TLS_BENCH_SERVE";

/// A TLS server under test.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub enum ServerKind {
    /// `examples/http_server` with `--tls-cert/--tls-key`.
    KingpinHttp,
    /// nginx, one worker process, `return 200 "Hello, kingpin!"` over `ssl`.
    Nginx,
    /// `examples/echo_server` with `--tls-cert/--tls-key`.
    KingpinEcho,
    /// tokio + tokio-rustls (`peers/tokio_rustls_echo.rs`).
    TokioRustls,
}

impl ServerKind {
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::KingpinHttp => "kingpin http_server",
            ServerKind::Nginx => "nginx",
            ServerKind::KingpinEcho => "kingpin echo_server",
            ServerKind::TokioRustls => "tokio-rustls echo",
        }
    }
}

/// Starts `kind` on loopback, pinned to CPU 1 when `pin`; its stderr goes to `log`.
pub fn start(kind: ServerKind, pin: bool, cert: &Cert, log: &Path) -> io::Result<Server> {
    let (c, k) = (cert.cert.display().to_string(), cert.key.display().to_string());
    let mut cmd = Command::new(std::env::current_exe()?);
    let common =
        ["--addr", "127.0.0.1:0", "--threads", "1", "--max-conns-per-ip", "0", "--tls-cert", &c, "--tls-key", &k];
    match kind {
        ServerKind::KingpinHttp => {
            Server::spawn(cmd.env(SERVE_ENV, "kingpin-http").args(common), kind.name(), pin, log)
        }
        ServerKind::KingpinEcho => {
            Server::spawn(cmd.env(SERVE_ENV, "kingpin-echo").args(common), kind.name(), pin, log)
        }
        ServerKind::TokioRustls => Server::spawn(
            cmd.env(SERVE_ENV, "tokio-rustls").args(["--addr", "127.0.0.1:0", "--tls-cert", &c, "--tls-key", &k]),
            kind.name(),
            pin,
            log,
        ),
        ServerKind::Nginx => start_nginx(cert, pin),
    }
}

/// A free port on loopback (bound and released: nginx takes it a moment later).
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// nginx with one worker (no master), TLS 1.3, the session cache and tickets as Debian ships
/// them, room for the idle shape's connections.
fn start_nginx(cert: &Cert, pin: bool) -> io::Result<Server> {
    let dir = cert.dir.join("nginx");
    fs::create_dir_all(&dir)?;
    let port = free_port()?;
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\nworker_rlimit_nofile 30000;\n\
         error_log {dir}/error.log warn;\npid {dir}/nginx.pid;\n\
         events {{ worker_connections 20000; }}\n\
         http {{\n  access_log off;\n  server_tokens off;\n  keepalive_requests 100000000;\n  keepalive_timeout 300s;\n\
           server {{\n    listen 127.0.0.1:{port} ssl;\n    ssl_certificate {cert};\n    ssl_certificate_key {key};\n\
             ssl_protocols TLSv1.3;\n    default_type text/plain;\n\
             location = / {{ return 200 \"Hello, kingpin!\"; }}\n  }}\n}}\n",
        dir = dir.display(),
        cert = cert.cert.display(),
        key = cert.key.display(),
    );
    let path = dir.join("nginx.conf");
    fs::write(&path, conf)?;
    let mut cmd = Command::new("nginx");
    cmd.args(["-p", &dir.display().to_string(), "-c", &path.display().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    child_setup(&mut cmd, pin.then_some(1));
    let server = Server::from_child(cmd.spawn()?, ([127, 0, 0, 1], port).into());
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(server.addr).is_err() {
        if Instant::now() > deadline {
            let log = fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            return Err(io::Error::other(format!("nginx did not start listening: {log}")));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(server)
}

/// A rustls client config trusting the bench's certificate, offering the suites in rustls's
/// (and OpenSSL's) default order.
pub fn client_config(pem: &str) -> io::Result<Arc<rustls::ClientConfig>> {
    crate::tls_config::client_config(pem, &[b"http/1.1"]).map_err(io::Error::other)
}

/// Connects a rustls client and completes the handshake (bounded by socket timeouts).
pub fn connect(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
) -> io::Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(30)))?;
    tcp.set_nodelay(true)?;
    let conn = rustls::ClientConnection::new(config.clone(), "localhost".try_into().map_err(io::Error::other)?)
        .map_err(io::Error::other)?;
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// The protocol and cipher suite a rustls client (OpenSSL's default suite order) gets.
pub fn negotiated(addr: SocketAddr, pem: &str) -> io::Result<String> {
    let mut s = connect(addr, &client_config(pem)?)?;
    let suite = s.conn.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite())).unwrap_or_default();
    let version = s.conn.protocol_version().map(|v| format!("{v:?}")).unwrap_or_default();
    // A request, so that an HTTP server is not left waiting (and an echo answers it).
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
    let mut buf = [0; 256];
    let _ = s.read(&mut buf)?;
    Ok(format!("{version}, {suite}"))
}
