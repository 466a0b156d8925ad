//! Behind a real load balancer: HAProxy (Debian's `haproxy`) in front of three `echo_server`
//! backends with `send-proxy-v2` and health checks, driven by clients from several loopback
//! addresses. The backends see the clients' addresses; `kill -9` of one backend under load
//! fails only its own connections in flight, the others take the new ones, and it rejoins
//! when restarted; a rolling restart of all three (each handing over with `SIGUSR2`) under
//! continuous load fails no request.
//!
//! Skipped, with the reason printed, where `haproxy` is not installed — except under CI
//! (`CI` or `KINGPIN_REQUIRE_NETNS` set), where that is a failure.

#[path = "util/bin.rs"]
mod bin;
#[path = "util/echo_load.rs"]
mod echo_load;
mod util;

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bin::{example, KillOnDrop};
use parking_lot::Mutex;
use util::{wait_until, IO_TIMEOUT};

/// Everything the backends printed (stdout and stderr, successors included).
type Lines = Arc<Mutex<Vec<String>>>;

fn collect(stream: impl Read + Send + 'static, lines: &Lines) {
    let lines = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            lines.lock().push(line);
        }
    });
}

/// A backend on `port` (0: any), whose output goes to `lines`; returns it and its address.
fn backend(port: u16, lines: &Lines) -> (KillOnDrop, SocketAddr) {
    static BIN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let bin = BIN.get_or_init(|| example("echo_server"));
    let mut child = Command::new(bin)
        .args(["--addr", &format!("127.0.0.1:{port}"), "--threads", "1", "--max-conns-per-ip", "0"])
        .args(["--proxy-protocol", "required"])
        .env("KINGPIN_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let addr: SocketAddr =
        first.split("listening on ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap().parse().unwrap();
    lines.lock().push(first);
    collect(out, lines);
    collect(child.stderr.take().unwrap(), lines);
    (KillOnDrop(Some(child)), addr)
}

fn haproxy_missing() -> Option<String> {
    let ok = Command::new("haproxy").arg("-v").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    if ok {
        return None;
    }
    let why = "haproxy is not installed (apt-get install haproxy)".to_string();
    if std::env::var_os("CI").is_some() || std::env::var_os("KINGPIN_REQUIRE_NETNS").is_some() {
        panic!("{why}: required here");
    }
    Some(why)
}

fn start_haproxy(dir: &std::path::Path, backends: &[SocketAddr]) -> (KillOnDrop, SocketAddr) {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let servers: String = backends
        .iter()
        .enumerate()
        .map(|(i, a)| format!("  server s{i} {a} send-proxy-v2 check inter 100ms fall 1 rise 1\n"))
        .collect();
    let cfg = format!(
        "global\n  maxconn 4096\ndefaults\n  mode tcp\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n\
         retries 3\n  option redispatch\nfrontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
         backend be\n  balance roundrobin\n{servers}"
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, cfg).unwrap();
    let child = Command::new("haproxy")
        .args(["-db", "-f", path.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    wait_until(IO_TIMEOUT, "haproxy to listen", || std::net::TcpStream::connect(addr).is_ok());
    (KillOnDrop(Some(child)), addr)
}

/// Clients from 127.0.0.2 to 127.0.0.9, so that the backends can tell them apart.
fn client_ip(i: u64) -> Option<Ipv4Addr> {
    Some(Ipv4Addr::new(127, 0, 0, 2 + (i % 8) as u8))
}

fn pid_of(child: &KillOnDrop) -> u32 {
    child.0.as_ref().unwrap().id()
}

#[test]
fn three_backends_behind_haproxy_survive_a_kill_and_a_rolling_restart() {
    if let Some(why) = haproxy_missing() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lines: Lines = Arc::default();
    let mut backends: Vec<(KillOnDrop, SocketAddr)> = (0..3).map(|_| backend(0, &lines)).collect();
    let addrs: Vec<SocketAddr> = backends.iter().map(|b| b.1).collect();
    let (_haproxy, front) = start_haproxy(dir.path(), &addrs);
    // All three up (health checks every 100 ms).
    std::thread::sleep(Duration::from_millis(500));

    // 1. Load; the backends see the clients' own addresses.
    let load = Arc::new(echo_load::Load::default());
    let clients = echo_load::start(front, 24, client_ip, &load);
    std::thread::sleep(Duration::from_secs(2));
    let errors = echo_load::finish(&load, clients);
    assert!(errors.is_empty(), "before any fault: {errors:?}");
    {
        let seen = lines.lock();
        for ip in 2..10 {
            let needle = format!("connection from 127.0.0.{ip}:");
            assert!(seen.iter().any(|l| l.contains(&needle)), "no backend saw a client from 127.0.0.{ip}");
        }
        assert!(!seen.iter().any(|l| l.contains("bad PROXY")), "a backend refused a header");
    }
    eprintln!("steady: {}", load.summary());

    // 2. kill -9 one backend under load: only its connections in flight fail; new ones go to
    //    the others; it rejoins once restarted on its port.
    let load = Arc::new(echo_load::Load::default());
    let clients = echo_load::start(front, 24, client_ip, &load);
    std::thread::sleep(Duration::from_secs(1));
    let victim = addrs[0];
    backends[0].0 .0.as_mut().unwrap().kill().unwrap();
    let _ = backends[0].0 .0.as_mut().unwrap().wait();
    std::thread::sleep(Duration::from_millis(700)); // HAProxy marks it down (fall 1, inter 100 ms)
    let failed_after_kill = load.failed.load(Relaxed);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        load.failed.load(Relaxed),
        failed_after_kill,
        "new connections failed after the kill: {}",
        load.summary()
    );
    assert!(failed_after_kill <= 24, "more failures than connections in flight: {}", load.summary());
    let before_rejoin = lines.lock().len();
    backends[0] = backend(victim.port(), &lines);
    wait_until(IO_TIMEOUT, "the restarted backend to get connections", || {
        let seen = lines.lock();
        seen[before_rejoin..].iter().any(|l| l.contains("connection from 127.0.0."))
    });
    let errors = echo_load::finish(&load, clients);
    eprintln!(
        "kill -9 and rejoin: {} ({} errors, all on the killed backend's connections)",
        load.summary(),
        errors.len()
    );
    for e in &errors {
        assert!(e.contains("ended after") || e.contains("closed before"), "an unexpected failure: {e}");
    }

    // 3. A rolling restart of all three under load: each hands its listener to a successor and
    //    drains; not one request fails.
    let load = Arc::new(echo_load::Load::default());
    let clients = echo_load::start(front, 24, client_ip, &load);
    std::thread::sleep(Duration::from_millis(500));
    let mut successors = Vec::new();
    for b in &mut backends {
        let pid = pid_of(&b.0);
        let mark = lines.lock().len();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGUSR2).unwrap();
        let deadline = Instant::now() + IO_TIMEOUT;
        let new_pid = loop {
            let found = lines.lock()[mark..].iter().find_map(|l| {
                l.split("handed over to process ")
                    .nth(1)
                    .and_then(|r| r.split(';').next())
                    .and_then(|p| p.parse::<u32>().ok())
            });
            if let Some(p) = found {
                break p;
            }
            assert!(Instant::now() < deadline, "backend {pid} did not hand over");
            std::thread::sleep(Duration::from_millis(10));
        };
        successors.push(new_pid);
        bin::wait_bounded(b.0 .0.as_mut().unwrap(), Duration::from_secs(15), "a backend draining after its handover");
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_millis(500));
    let errors = echo_load::finish(&load, clients);
    eprintln!("rolling restart: {}", load.summary());
    assert_eq!(load.refused.load(Relaxed), 0);
    assert!(errors.is_empty(), "failed requests during the rolling restart: {:?}", &errors[..errors.len().min(5)]);
    for pid in successors {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
    }
}
