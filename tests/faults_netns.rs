//! A bad network between two network namespaces this test creates: 5% of the packets into the
//! server's namespace dropped (`iptables -m statistic`), the server's egress shaped to
//! 20 Mbit/s (`tc tbf`). The kingpin echo server runs in one namespace, a kingpin client in the
//! other, each a re-executed copy of this test binary started with `ip netns exec` (a
//! network namespace belongs to a thread, so separate processes are the reliable way).
//!
//! Needs root and `ip`, `iptables`, `tc`; without them the test prints `skipped: <reason>`
//! and passes — unless `KINGPIN_REQUIRE_NETNS=1` (set by CI), which turns a skip into a
//! failure. Traffic stays on the veth pair between the two namespaces (10.200.x.1 and .2);
//! the namespaces, and with them the link and the rules, are deleted whatever happens.

mod util;

#[path = "util/child.rs"]
mod child;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use child::ChildProc;
use kingpin::{ClientConfig, CloseReason, Conn, ConnectFailure, EpollTPClient, EpollTPServer, IoHandler};
use kingpin::{ServerConfig, Target};
use parking_lot::Mutex;

/// Bytes the client streams through the echo server (and checks on the way back).
const TRANSFER: usize = 4 << 20;

/// Sent per `on_write_complete`.
const CHUNK: usize = 64 << 10;

/// Runs a command; `Err` with its output when it cannot run or fails.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program).args(args).output().map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The two namespaces of one test run; deleting them removes the veth pair, the iptables rule
/// and the qdisc with them.
struct Namespaces {
    server: String,
    client: String,
    created: Vec<String>,
}

impl Namespaces {
    fn create(&mut self, name: &str) -> Result<(), String> {
        let _ = run("ip", &["netns", "del", name]); // a leftover of a killed run with our pid
        run("ip", &["netns", "add", name])?;
        self.created.push(name.to_string());
        Ok(())
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in self.created.drain(..) {
            if let Err(e) = run("ip", &["netns", "del", &ns]) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

/// Runs a command and returns its standard output.
fn output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "`{program} {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The number after `word` in `text` (e.g. `overlimits 12`), or after-less: the first number
/// of the line containing `word` (e.g. the packet count of the `DROP` rule).
fn number_near(text: &str, word: &str) -> u64 {
    let line = text.lines().find(|l| l.contains(word)).unwrap_or_else(|| panic!("no {word:?} in {text}"));
    let mut words = line.split_whitespace();
    let n = if line.trim_start().starts_with(|c: char| c.is_ascii_digit()) {
        words.next()
    } else {
        words.skip_while(|w| *w != word).nth(1)
    };
    n.and_then(|n| n.trim_matches(|c: char| !c.is_ascii_digit()).parse().ok())
        .unwrap_or_else(|| panic!("no number near {word:?} in {line:?}"))
}

/// Builds the two namespaces and the bad link between them. Returns the server's address.
fn setup(ns: &mut Namespaces) -> Result<String, String> {
    for tool in [["ip", "-V"], ["iptables", "-V"], ["tc", "-V"]] {
        run(tool[0], &tool[1..]).map_err(|e| format!("{} not usable: {e}", tool[0]))?;
    }
    let (a, b) = (ns.server.clone(), ns.client.clone());
    ns.create(&a).map_err(|e| format!("cannot create a network namespace (not root?): {e}"))?;
    ns.create(&b)?;
    let pid = std::process::id();
    let (va, vb) = (format!("kpa{pid}"), format!("kpb{pid}"));
    let subnet = format!("10.200.{}", pid % 250);
    let (ip_a, ip_b) = (format!("{subnet}.1"), format!("{subnet}.2"));
    // Created inside namespace A and its peer moved to B at once: it never sits in ours.
    run("ip", &["-n", &a, "link", "add", &va, "type", "veth", "peer", "name", &vb, "netns", &b])?;
    run("ip", &["-n", &a, "addr", "add", &format!("{ip_a}/24"), "dev", &va])?;
    run("ip", &["-n", &b, "addr", "add", &format!("{ip_b}/24"), "dev", &vb])?;
    for (n, dev) in [(&a, &va), (&b, &vb)] {
        run("ip", &["-n", n, "link", "set", dev, "up"])?;
        run("ip", &["-n", n, "link", "set", "lo", "up"])?;
    }
    let drop_rule = ["-A", "INPUT", "-m", "statistic", "--mode", "random", "--probability", "0.05", "-j", "DROP"];
    run("ip", &[&["netns", "exec", &a, "iptables"][..], &drop_rule[..]].concat())
        .map_err(|e| format!("iptables statistic match not usable: {e}"))?;
    run(
        "ip",
        &["netns", "exec", &a, "tc", "qdisc", "add", "dev", &va, "root", "tbf", "rate", "20mbit", "burst", "32kbit"]
            .into_iter()
            .chain(["latency", "400ms"])
            .collect::<Vec<_>>(),
    )
    .map_err(|e| format!("tc tbf not usable: {e}"))?;
    Ok(ip_a)
}

/// 4 MiB echoed between two network namespaces over a link that drops 5% of the packets into
/// the server and shapes its output to 20 Mbit/s: TCP recovers the losses under kingpin's
/// server and client, and every byte comes back in order — connect, backpressure and
/// streaming through `on_write_complete` all work on a slow, lossy path.
#[test]
fn echo_through_lossy_shaped_link_between_namespaces() {
    let pid = std::process::id();
    let mut ns = Namespaces { server: format!("kpsrv{pid}"), client: format!("kpcli{pid}"), created: Vec::new() };
    let server_ip = match setup(&mut ns) {
        Ok(ip) => ip,
        Err(reason) => {
            assert!(std::env::var("KINGPIN_REQUIRE_NETNS").as_deref() != Ok("1"), "netns test required: {reason}");
            println!("skipped: {reason}");
            return;
        }
    };
    let started = Instant::now();
    let wait = Duration::from_secs(60);
    let mut server = ChildProc::spawn(
        "child_netns_echo_server",
        "netns_echo_server",
        &[("KINGPIN_ADDR", format!("{server_ip}:0"))],
        &["ip", "netns", "exec", &ns.server],
    );
    let addr: SocketAddr = server.expect("ready", Duration::from_secs(20)).get("addr");
    let mut client = ChildProc::spawn(
        "child_netns_echo_client",
        "netns_echo_client",
        &[("KINGPIN_TARGET", addr.to_string())],
        &["ip", "netns", "exec", &ns.client],
    );
    let done = client.expect("verified", wait);
    assert_eq!(done.get::<usize>("bytes"), TRANSFER);
    assert!(client.wait(Duration::from_secs(10)).success(), "client exits cleanly");
    server.close_stdin();
    let bye = server.expect("bye", Duration::from_secs(20));
    assert_eq!(bye.get::<u64>("panics"), 0);
    assert!(server.wait(Duration::from_secs(10)).success(), "server exits cleanly");
    // The faults were real: packets were dropped and the shaper held packets back.
    let rules = output("ip", &["netns", "exec", &ns.server, "iptables", "-L", "INPUT", "-v", "-n", "-x"]);
    let dropped = number_near(&rules, "DROP");
    let veth = format!("kpa{pid}");
    let qdisc = output("ip", &["netns", "exec", &ns.server, "tc", "-s", "qdisc", "show", "dev", &veth]);
    let overlimits = number_near(&qdisc, "overlimits");
    assert!(dropped > 0, "no packet dropped: {rules}");
    assert!(overlimits > 0, "the shaper never held a packet back: {qdisc}");
    println!(
        "netns: {} MiB echoed through 5% loss ({dropped} packets dropped) + 20 Mbit/s ({overlimits} overlimits) \
         in {} ms (test total {:?})",
        TRANSFER >> 20,
        done.get::<u64>("ms"),
        started.elapsed()
    );
}

/// Echoes.
struct Echo;

impl IoHandler for Echo {
    type ConnState = ();

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        conn.send_input();
    }
}

/// Child role `netns_echo_server`: an echo server on `KINGPIN_ADDR`; reports `ready` with its
/// address, and `bye` with its stats once stdin closes and it has shut down.
#[test]
fn child_netns_echo_server() {
    if child::role().as_deref() != Some("netns_echo_server") {
        return;
    }
    child::watchdog(Duration::from_secs(120));
    let addr: SocketAddr = child::env("KINGPIN_ADDR").parse().unwrap();
    let server = EpollTPServer::from_fn(ServerConfig::new(addr).threads(2), || Echo).start().unwrap();
    child::report("ready", &[("addr", server.local_addr().to_string())]);
    let stdin = child::stdin_lines();
    while stdin.recv().is_ok() {}
    let stats = server.stats();
    server.shutdown();
    server.join().unwrap();
    child::report("bye", &[("panics", stats.panics.to_string()), ("accepted", stats.accepted.to_string())]);
}

/// How the client's one stream ended.
type Outcome = Arc<Mutex<Option<Result<(), String>>>>;

/// Streams [`TRANSFER`] bytes in chunks, each sent when the previous one has gone to the
/// kernel, and checks every echoed byte; closes when all came back.
struct Streamer {
    sent: usize,
    received: usize,
    outcome: Outcome,
}

impl Streamer {
    fn send_next(&mut self, conn: &mut Conn<'_>) {
        if self.sent < TRANSFER {
            let mut chunk = vec![0u8; CHUNK.min(TRANSFER - self.sent)];
            child::fill_stream(&mut chunk, self.sent as u64);
            conn.send(&chunk);
            self.sent += chunk.len();
        }
    }

    fn finish(&self, result: Result<(), String>) {
        self.outcome.lock().get_or_insert(result);
    }
}

impl IoHandler for Streamer {
    type ConnState = ();

    fn on_connect(&mut self, conn: &mut Conn<'_>) {
        self.send_next(conn);
    }

    fn on_write_complete(&mut self, conn: &mut Conn<'_>) {
        self.send_next(conn);
    }

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        let input = conn.input();
        if let Some(at) = child::check_stream(input.as_slice(), self.received as u64) {
            self.finish(Err(format!("echo corrupted at byte {}", self.received + at)));
            conn.force_close();
            return;
        }
        self.received += input.len();
        input.clear();
        if self.received > TRANSFER {
            self.finish(Err(format!("{} bytes echoed, {TRANSFER} sent", self.received)));
            conn.force_close();
        } else if self.received == TRANSFER {
            self.finish(Ok(()));
            conn.close();
        }
    }

    fn on_closed(&mut self, _conn: &mut Conn<'_>, reason: &CloseReason) {
        self.finish(Err(format!("closed after {} of {TRANSFER} bytes: {reason}", self.received)));
    }

    fn on_connect_failed(&mut self, target: &Target, failure: &ConnectFailure) {
        self.finish(Err(format!("connect to {target:?} failed: {failure}")));
    }
}

/// Child role `netns_echo_client`: a kingpin client that streams [`TRANSFER`] bytes through the
/// echo server at `KINGPIN_TARGET` and checks them; reports `verified` and exits 0, or panics.
#[test]
fn child_netns_echo_client() {
    if child::role().as_deref() != Some("netns_echo_client") {
        return;
    }
    child::watchdog(Duration::from_secs(120));
    let target: SocketAddr = child::env("KINGPIN_TARGET").parse().unwrap();
    let outcome = Outcome::default();
    let o = outcome.clone();
    let started = Instant::now();
    let config = ClientConfig::default().threads(1).connect_timeout(Duration::from_secs(15));
    let client = EpollTPClient::from_fn(config, move || Streamer { sent: 0, received: 0, outcome: o.clone() });
    let client = client.start().unwrap();
    client.add(Target::new(target.ip().to_string(), target.port())).unwrap();
    let idle = client.wait_idle(Duration::from_secs(90));
    let elapsed = started.elapsed();
    client.shutdown();
    client.join().unwrap();
    assert!(idle, "transfer did not finish within 90 s");
    let result = outcome.lock().clone().expect("the stream ended somehow");
    result.unwrap_or_else(|e| panic!("transfer failed: {e}"));
    child::report("verified", &[("bytes", TRANSFER.to_string()), ("ms", elapsed.as_millis().to_string())]);
}
