//! The big_file_transfer example end to end, server in-process: files of 0 B, 1 B, 1 MiB + 1
//! and 256 MiB arrive byte-exact (with `sendfile` and with buffered reads); 20 clients at once;
//! path escapes refused; a client killed halfway resumes; the server survives a client that
//! disconnects mid-stream; a corrupt partial file is caught by the checksum; concurrent
//! requests share one hash, across IO threads too; a request waiting for its checksum outlives
//! the idle timeout; `-o DIR`, curl's rate units, strict offsets and non-UTF-8 names.
//!
//! The symlink race and FIFOs are in `big_file_transfer_security.rs`, the bounded hashing in
//! `big_file_transfer_hashing.rs`, the binary's command line in `big_file_transfer_cli.rs`.

mod util;

#[path = "../examples/big_file_transfer/checksum.rs"]
mod checksum;
#[path = "../examples/big_file_transfer/client.rs"]
mod client;
#[path = "../examples/big_file_transfer/hashes.rs"]
mod hashes;
#[path = "../examples/big_file_transfer/os_error.rs"]
mod os_error;
#[path = "../examples/big_file_transfer/protocol.rs"]
mod protocol;
#[path = "../examples/big_file_transfer/server.rs"]
mod server;

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use checksum::hash_path;
use client::{destination, download, parse_rate, part_path, GetError, GetOptions};
use server::{Server, ServerOptions};
use util::{connect, wait_until};

const MIB: u64 = 1 << 20;

/// A served directory and a download directory, both removed at the end.
struct Fixture {
    root: tempfile::TempDir,
    out: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Fixture { root: tempfile::tempdir().unwrap(), out: tempfile::tempdir().unwrap() }
    }

    /// Writes `len` bytes of a pattern that never repeats at a 1 MiB period, in 1 MiB steps.
    fn file(&self, name: &str, len: u64) -> PathBuf {
        let path = self.root.path().join(name);
        let mut f = std::io::BufWriter::new(File::create(&path).unwrap());
        let base = util::pattern(MIB as usize, len);
        let mut chunk = base.clone();
        let mut left = len;
        let mut i = 0u64;
        while left > 0 {
            chunk[..8].copy_from_slice(&i.to_le_bytes());
            let n = left.min(MIB) as usize;
            f.write_all(&chunk[..n]).unwrap();
            left -= n as u64;
            i += 1;
        }
        f.flush().unwrap();
        path
    }

    fn options(&self) -> ServerOptions {
        ServerOptions { max_conns_per_ip: None, ..ServerOptions::new(self.root.path(), "127.0.0.1:0".parse().unwrap()) }
    }

    fn serve(&self, sendfile: bool) -> Server {
        server::start(&ServerOptions { sendfile, ..self.options() }).unwrap()
    }

    fn get(&self, server: &Server, path: impl AsRef<Path>, dest: impl AsRef<Path>) -> GetOptions {
        GetOptions {
            addr: server.local_addr().to_string(),
            path: path.as_ref().to_path_buf(),
            dest: self.out.path().join(dest),
            progress: false,
            limit_rate: None,
            timeout: util::IO_TIMEOUT,
            tls: None,
        }
    }

    /// A sparse file of `len` bytes: made at once, and slow to hash (the kernel hands out
    /// zeros at well under 10 GiB/s).
    fn sparse(&self, name: &str, len: u64) {
        File::create(self.root.path().join(name)).unwrap().set_len(len).unwrap();
    }
}

fn stop(server: Server) {
    server.shutdown();
    server.join().unwrap();
}

/// Sends a raw request line on a new connection and returns the reply line (bounded by the
/// socket's timeout), leaving the connection open.
fn request(server: &Server, line: &[u8]) -> (std::net::TcpStream, String) {
    let mut s = connect(server.local_addr());
    s.write_all(line).unwrap();
    let mut reply = Vec::new();
    let mut byte = [0];
    while reply.last() != Some(&b'\n') {
        match s.read(&mut byte) {
            Ok(1) => reply.push(byte[0]),
            other => panic!("no reply line to {:?}: {other:?}", String::from_utf8_lossy(line)),
        }
    }
    (s, String::from_utf8(reply).unwrap())
}

/// Downloads `name` and checks it is the served file, byte for byte (by size and hash).
fn fetch_and_compare(fx: &Fixture, server: &Server, name: &str) {
    let opts = fx.get(server, name, name.replace('/', "_"));
    let outcome = download(&opts).unwrap_or_else(|e| panic!("{name}: {e}"));
    let src = fx.root.path().join(name);
    let len = std::fs::metadata(&src).unwrap().len();
    assert_eq!(outcome.size, len);
    assert_eq!(std::fs::metadata(&opts.dest).unwrap().len(), len, "{name}: size");
    assert_eq!(hash_path(&opts.dest).unwrap(), hash_path(&src).unwrap(), "{name}: content");
    assert!(!part_path(&opts.dest).exists(), "{name}: .part left behind");
}

#[test]
fn files_arrive_byte_exact_with_sendfile() {
    let t = Instant::now();
    let fx = Fixture::new();
    for (name, len) in [("empty", 0), ("one", 1), ("mib_plus_one", MIB + 1), ("big", 256 * MIB)] {
        fx.file(name, len);
    }
    let server = fx.serve(true);
    for name in ["empty", "one", "mib_plus_one", "big"] {
        fetch_and_compare(&fx, &server, name);
    }
    assert_eq!(server.stats().connections, 0);
    stop(server);
    eprintln!("256 MiB and small files with sendfile: {:.2?}", t.elapsed());
}

#[test]
fn files_arrive_byte_exact_with_buffered_reads() {
    let fx = Fixture::new();
    for (name, len) in [("empty", 0), ("one", 1), ("mib_plus_one", MIB + 1), ("sixteen", 16 * MIB + 3)] {
        fx.file(name, len);
    }
    let server = fx.serve(false);
    for name in ["empty", "one", "mib_plus_one", "sixteen"] {
        fetch_and_compare(&fx, &server, name);
    }
    stop(server);
}

/// Twenty downloads at once of two files; each file is hashed once.
#[test]
fn twenty_clients_at_once() {
    let fx = Fixture::new();
    fx.file("a", 8 * MIB + 5);
    fx.file("b", 3 * MIB);
    let server = fx.serve(true);
    let barrier = std::sync::Barrier::new(20);
    std::thread::scope(|s| {
        for i in 0..20 {
            let (fx, server, barrier) = (&fx, &server, &barrier);
            s.spawn(move || {
                let name = if i % 2 == 0 { "a" } else { "b" };
                let opts = fx.get(server, name, format!("{name}.{i}"));
                barrier.wait();
                download(&opts).unwrap_or_else(|e| panic!("client {i}: {e}"));
            });
        }
    });
    for i in 0..20 {
        let name = if i % 2 == 0 { "a" } else { "b" };
        let got = fx.out.path().join(format!("{name}.{i}"));
        assert_eq!(hash_path(&got).unwrap(), hash_path(&fx.root.path().join(name)).unwrap(), "client {i}");
    }
    assert_eq!(server.hash_stats().hashed, 2, "each file hashed once");
    stop(server);
}

#[test]
fn path_escapes_are_refused() {
    let fx = Fixture::new();
    fx.file("inside", 10);
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"secret").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), fx.root.path().join("link_out")).unwrap();
    std::os::unix::fs::symlink(outside.path(), fx.root.path().join("dir_out")).unwrap();
    // Relative symlinks that stay inside, also through `..` in the target, are followed.
    std::os::unix::fs::symlink("inside", fx.root.path().join("link_in")).unwrap();
    std::fs::create_dir(fx.root.path().join("sub")).unwrap();
    std::os::unix::fs::symlink("../inside", fx.root.path().join("sub/link_up")).unwrap();
    std::os::unix::fs::symlink("..", fx.root.path().join("sub/parent")).unwrap();
    // One climbing out with `..` is refused, and so is any absolute one, even into the root:
    // the kernel resolves nothing from `/` beneath the root.
    let depth = fx.root.path().components().count();
    let climb = format!("{}{}", "../".repeat(depth), outside.path().join("secret").display());
    std::os::unix::fs::symlink(&climb, fx.root.path().join("link_climb")).unwrap();
    std::os::unix::fs::symlink(fx.root.path().join("inside"), fx.root.path().join("link_abs_in")).unwrap();
    let server = fx.serve(true);
    let secret = format!("../{}/secret", outside.path().file_name().unwrap().to_str().unwrap());
    for (path, why) in [
        ("../x", "'..' not allowed"),
        (secret.as_str(), "'..' not allowed"),
        ("sub/../../x", "'..' not allowed"),
        ("/etc/passwd", "absolute path not allowed"),
        ("link_out", "leads outside"),
        ("dir_out/secret", "leads outside"),
        ("link_climb", "leads outside"),
        ("sub/parent/link_climb", "leads outside"),
        ("link_abs_in", "leads outside"),
        ("missing", "no such file"),
        ("sub", "not a regular file"),
    ] {
        let opts = fx.get(&server, path, "refused");
        match download(&opts) {
            Err(GetError::Refused(reason)) => assert!(reason.contains(why), "{path}: {reason}"),
            other => panic!("{path}: expected a refusal, got {other:?}"),
        }
        assert!(!opts.dest.exists() && !part_path(&opts.dest).exists(), "{path}: a file was written");
    }
    for path in ["link_in", "sub/link_up", "sub/parent/inside", "sub/parent/sub/link_up"] {
        fetch_and_compare(&fx, &server, path);
    }
    stop(server);
}

/// Re-run by `killed_client_resumes` as a child process: downloads slowly until killed.
#[test]
fn child_download() {
    let (Ok(addr), Ok(dest)) = (std::env::var("BFT_CHILD_ADDR"), std::env::var("BFT_CHILD_DEST")) else {
        return; // not the child
    };
    let opts = GetOptions {
        addr,
        path: "big".into(),
        dest: dest.into(),
        progress: false,
        limit_rate: Some(8 * MIB),
        timeout: util::IO_TIMEOUT,
        tls: None,
    };
    let _ = download(&opts);
}

/// A client killed (SIGKILL) halfway leaves a `.part` file; the next run resumes from it and
/// the result verifies.
#[test]
fn killed_client_resumes() {
    let fx = Fixture::new();
    let size = 32 * MIB;
    fx.file("big", size);
    let server = fx.serve(true);
    let dest = fx.out.path().join("big");
    let part = part_path(&dest);
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_download", "--nocapture", "--test-threads", "1"])
        .env("BFT_CHILD_ADDR", server.local_addr().to_string())
        .env("BFT_CHILD_DEST", &dest)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let len = || std::fs::metadata(&part).map_or(0, |m| m.len());
    wait_until(Duration::from_secs(20), "child halfway", || len() >= 4 * MIB);
    child.kill().unwrap();
    child.wait().unwrap();
    let have = len();
    assert!(have >= 4 * MIB && have < size, "killed with {have} bytes");
    assert!(!dest.exists());

    let outcome = download(&fx.get(&server, "big", "big")).unwrap();
    assert_eq!(outcome.resumed_from, have);
    assert_eq!(hash_path(&dest).unwrap(), hash_path(&fx.root.path().join("big")).unwrap());
    stop(server);
}

/// Clients that vanish mid-stream (reset, and a plain close) do not disturb the server: their
/// connections go, and the next client downloads the file whole.
#[test]
fn server_survives_a_client_that_disconnects_mid_stream() {
    let fx = Fixture::new();
    fx.file("big", 64 * MIB);
    let server = fx.serve(true);
    for half_close in [false, true] {
        let mut s = connect(server.local_addr());
        s.write_all(protocol::Request { path: "big".into(), offset: 0 }.to_line().as_bytes()).unwrap();
        let mut got = vec![0; 2 * MIB as usize];
        s.read_exact(&mut got).unwrap();
        if half_close {
            s.shutdown(std::net::Shutdown::Write).unwrap();
        }
        drop(s); // unread bytes: the kernel resets the connection
    }
    wait_until(Duration::from_secs(10), "dropped connections closed", || server.stats().connections == 0);
    fetch_and_compare(&fx, &server, "big");
    stop(server);
}

/// A partial file that does not match the server's file is caught at the end: a clear error
/// (exit status 2), the partial file removed, nothing renamed into place.
#[test]
fn corrupt_partial_file_fails_the_checksum() {
    let fx = Fixture::new();
    fx.file("f", 2 * MIB);
    let server = fx.serve(true);
    let opts = fx.get(&server, "f", "f");
    std::fs::write(part_path(&opts.dest), vec![0xAB; MIB as usize]).unwrap();
    let err = download(&opts).unwrap_err();
    assert!(matches!(err, GetError::Checksum { resumed: true, .. }), "{err:?}");
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
    assert!(!opts.dest.exists() && !part_path(&opts.dest).exists());
    // Run again: from scratch, and right.
    fetch_and_compare(&fx, &server, "f");

    // A partial file longer than the served one: refused with a hint.
    std::fs::write(part_path(&opts.dest), vec![0; 3 * MIB as usize]).unwrap();
    match download(&opts) {
        Err(GetError::Refused(reason)) => assert!(reason.contains("delete it to start over"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    stop(server);
}

/// A request line that never ends is refused; an unknown verb too.
#[test]
fn malformed_requests_are_refused() {
    let fx = Fixture::new();
    let opts = ServerOptions { threads: 1, ..fx.options() };
    let server = server::start(&opts).unwrap();
    for request in [vec![b'x'; protocol::MAX_LINE + 10], b"PUT 0 x\n".to_vec()] {
        let mut s = connect(server.local_addr());
        s.write_all(&request).unwrap();
        let reply = util::read_to_end(&mut s).unwrap();
        assert!(reply.starts_with(b"ERR bad request"), "{}", String::from_utf8_lossy(&reply));
    }
    stop(server);
}

/// Ten requests for one file while the only worker thread is busy: they all join one job,
/// and once the worker is free the file is hashed once for all of them.
#[test]
fn concurrent_requests_share_one_hash() {
    let fx = Fixture::new();
    fx.sparse("huge", 1 << 40);
    fx.file("f", 8 * MIB + 1);
    let server = server::start(&ServerOptions { hash_threads: 1, ..fx.options() }).unwrap();
    // Occupy the only worker; nothing is sent back until it is done with "huge".
    let mut blocker = connect(server.local_addr());
    blocker.write_all(b"GET 0 huge\n").unwrap();
    wait_until(Duration::from_secs(10), "the thread hashing huge", || server.hash_stats().running == 1);
    std::thread::scope(|s| {
        let clients: Vec<_> = (0..10)
            .map(|i| {
                let opts = fx.get(&server, "f", format!("f.{i}"));
                s.spawn(move || download(&opts).unwrap_or_else(|e| panic!("client {i}: {e}")))
            })
            .collect();
        wait_until(Duration::from_secs(10), "ten requests waiting on one queued job", || {
            let h = server.hash_stats();
            h.queued == 1 && h.waiting == 11
        });
        drop(blocker); // "huge" is cancelled; the thread takes "f"
        for c in clients {
            c.join().unwrap();
        }
    });
    for i in 0..10 {
        assert_eq!(
            hash_path(&fx.out.path().join(format!("f.{i}"))).unwrap(),
            hash_path(&fx.root.path().join("f")).unwrap()
        );
    }
    let h = server.hash_stats();
    eprintln!("{h:?}");
    assert_eq!((h.started, h.hashed, h.cancelled, h.refused, h.running, h.waiting), (2, 1, 1, 0, 0, 0), "{h:?}");
    stop(server);
}

/// Requests for one file on both IO threads share one job: it is started on one loop, and its
/// completion there reaches the requests waiting on the other. The connections are accepted
/// one at a time, so the accept balance spreads them over both loops.
#[test]
fn requests_on_both_io_threads_share_one_hash() {
    let fx = Fixture::new();
    fx.sparse("huge", 1 << 40);
    fx.file("f", 3 * MIB + 7);
    let server = server::start(&ServerOptions { threads: 2, hash_threads: 1, ..fx.options() }).unwrap();
    let mut blocker = connect(server.local_addr());
    blocker.write_all(b"GET 0 huge\n").unwrap();
    wait_until(Duration::from_secs(10), "the worker hashing huge", || server.hash_stats().running == 1);
    let mut clients = Vec::new();
    for i in 0..8 {
        clients.push(connect(server.local_addr()));
        wait_until(Duration::from_secs(10), "the connection accepted", || server.stats().connections == i + 2);
    }
    // At least two connections on each loop, one of them perhaps the blocker: requests for "f"
    // on both.
    let per_loop: Vec<u64> = server.loop_stats().iter().map(|s| s.connections).collect();
    assert!(per_loop.len() == 2 && per_loop.iter().all(|&n| n >= 2), "connections per loop: {per_loop:?}");
    for c in &mut clients {
        c.write_all(b"GET 0 f\n").unwrap();
    }
    wait_until(Duration::from_secs(10), "eight requests waiting on one queued job", || {
        let h = server.hash_stats();
        h.queued == 1 && h.waiting == 9
    });
    drop(blocker); // "huge" is cancelled; the worker takes "f"
    let want = std::fs::read(fx.root.path().join("f")).unwrap();
    let sum = hash_path(&fx.root.path().join("f")).unwrap();
    for (i, c) in clients.iter_mut().enumerate() {
        let reply = util::read_to_end(c).unwrap();
        let nl = reply.iter().position(|&b| b == b'\n').unwrap_or_else(|| panic!("client {i}: no reply line"));
        let head = protocol::Reply::parse(std::str::from_utf8(&reply[..nl]).unwrap()).unwrap();
        assert_eq!(head, protocol::Reply::Ok { size: want.len() as u64, checksum: sum, offset: 0 }, "client {i}");
        assert!(reply[nl + 1..] == want[..], "client {i}: the bytes differ");
    }
    let h = server.hash_stats();
    assert_eq!((h.started, h.hashed, h.cancelled, h.refused, h.waiting), (2, 1, 1, 0, 0), "{h:?}");
    stop(server);
}

/// A connection that says nothing is closed after the idle timeout; one that waits for its
/// file's checksum (silent because the server is busy) is not, and gets its file.
#[test]
fn idle_timeout_spares_requests_waiting_for_a_checksum() {
    let fx = Fixture::new();
    fx.sparse("huge", 1 << 40);
    fx.file("f", MIB);
    let idle = Duration::from_millis(300);
    let server = server::start(&ServerOptions { hash_threads: 1, idle_timeout: idle, ..fx.options() }).unwrap();
    let mut silent = connect(server.local_addr());
    let mut blocker = connect(server.local_addr());
    blocker.write_all(b"GET 0 huge\n").unwrap();
    wait_until(Duration::from_secs(10), "the thread hashing huge", || server.hash_stats().running == 1);
    let mut waiting = connect(server.local_addr());
    waiting.write_all(b"GET 0 f\n").unwrap();
    wait_until(Duration::from_secs(10), "f queued", || server.hash_stats().queued == 1);
    // The silent connection is closed (bounded by the socket timeout)...
    assert_eq!(util::read_to_end(&mut silent).unwrap(), b"");
    // ...alone: for five more idle periods the waiting ones stay.
    wait_until(Duration::from_secs(10), "the idle close counted", || server.stats().closed_idle == 1);
    std::thread::sleep(idle * 5);
    assert_eq!(server.stats().closed_idle, 1, "a connection waiting for a checksum was closed as idle");
    assert_eq!(server.hash_stats().waiting, 2);
    drop(blocker);
    let reply = util::read_to_end(&mut waiting).unwrap();
    assert!(reply.starts_with(b"OK 1048576 "), "{:?}", String::from_utf8_lossy(&reply[..reply.len().min(80)]));
    stop(server);
}

/// `-o` naming an existing directory puts the file in it under its own name (also with a
/// trailing `/`); a destination that is a directory, or in none, fails before any request.
#[test]
fn output_directory_gets_the_file_under_its_own_name() {
    let fx = Fixture::new();
    fx.file("big.bin", 3 * MIB);
    std::fs::create_dir(fx.root.path().join("sub")).unwrap();
    fx.file("sub/inner.bin", 10);
    let server = fx.serve(true);
    let out = fx.out.path();
    let with_slash = PathBuf::from(format!("{}/", out.display()));
    assert_eq!(destination(Path::new("big.bin"), Some(out)).unwrap(), out.join("big.bin"));
    assert_eq!(destination(Path::new("sub/inner.bin"), Some(&with_slash)).unwrap(), out.join("inner.bin"));
    assert_eq!(destination(Path::new("sub/inner.bin"), None).unwrap(), PathBuf::from("inner.bin"));
    assert_eq!(destination(Path::new("big.bin"), Some(&out.join("new"))).unwrap(), out.join("new"));
    assert!(destination(Path::new("big.bin"), Some(&out.join("missing/"))).is_err());
    assert!(destination(Path::new("sub/.."), None).is_err());
    for (path, output) in [("big.bin", out), ("sub/inner.bin", with_slash.as_path())] {
        let dest = destination(Path::new(path), Some(output)).unwrap();
        let mut opts = fx.get(&server, path, "unused");
        opts.dest = dest.clone();
        download(&opts).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(hash_path(&dest).unwrap(), hash_path(&fx.root.path().join(path)).unwrap());
    }
    let mut names: Vec<_> = std::fs::read_dir(out).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["big.bin", "inner.bin"], "nothing else (no .part) in the directory");

    // A directory as the destination itself, or a destination in no directory: refused
    // before connecting.
    let accepted = server.stats().accepted;
    for dest in [out.to_path_buf(), with_slash.clone(), out.join("missing/file")] {
        let mut opts = fx.get(&server, "big.bin", "unused");
        opts.dest = dest.clone();
        match download(&opts) {
            Err(GetError::Io(what, _)) => assert!(what.contains("cannot write"), "{dest:?}: {what}"),
            other => panic!("{dest:?}: {other:?}"),
        }
    }
    assert_eq!(server.stats().accepted, accepted, "a doomed download connected");
    assert!(!part_path(out).exists() && !out.join(".part").exists());
    stop(server);
}

#[test]
fn rates_take_curl_units() {
    for (s, want) in [
        ("1", 1),
        ("1000000", 1_000_000),
        ("200k", 200 << 10),
        ("200K", 200 << 10),
        ("50M", 50 << 20),
        ("50m", 50 << 20),
        ("1.5G", 3 << 29),
        ("2g", 2 << 30),
        ("1T", 1 << 40),
        ("2p", 2 << 50),
        ("0.5k", 512),
        ("1.25", 1),
    ] {
        assert_eq!(parse_rate(s), Ok(want), "{s}");
    }
    for s in [
        "",
        "k",
        "0",
        "0k",
        "0.0001",
        "-5",
        "+5",
        "5X",
        "5MB",
        "1e6",
        "1.",
        ".5k",
        "1.2.3",
        " 5",
        "5 M",
        "99999999999T",
    ] {
        assert!(parse_rate(s).is_err(), "{s:?} accepted");
    }
}

/// Offsets are plain decimal digits: `+5`, `0x5`, ` 5` are refused by the server.
#[test]
fn offsets_are_plain_digits() {
    let fx = Fixture::new();
    fx.file("f", 100);
    let server = fx.serve(true);
    for line in [&b"GET +5 f\n"[..], b"GET 0x5 f\n", b"GET  5 f\n", b"GET 5_0 f\n", b"GET -0 f\n"] {
        let (_, reply) = request(&server, line);
        assert!(reply.starts_with("ERR bad request"), "{:?}: {reply:?}", String::from_utf8_lossy(line));
    }
    let (_, reply) = request(&server, b"GET 5 f\n");
    assert!(reply.starts_with("OK 100 ") && reply.ends_with(" 5\n"), "{reply:?}");
    stop(server);
}

/// File names that are not UTF-8 (or hold `%`, spaces, a newline) can be requested, and the
/// default destination keeps the name's bytes.
#[test]
fn names_need_not_be_utf8() {
    let fx = Fixture::new();
    let names: [&[u8]; 4] = [b"caf\xe9.bin", b"\xff\xfe raw", b"100% new\nline", "d\u{e9}j\u{e0} vu".as_bytes()];
    for (i, name) in names.iter().enumerate() {
        std::fs::write(fx.root.path().join(OsStr::from_bytes(name)), util::pattern(1000 + i, i as u64)).unwrap();
    }
    let server = fx.serve(true);
    for name in names {
        let name = Path::new(OsStr::from_bytes(name));
        let dest = destination(name, Some(fx.out.path())).unwrap();
        assert_eq!(dest.file_name().unwrap().as_bytes(), name.as_os_str().as_bytes());
        let mut opts = fx.get(&server, name, "unused");
        opts.dest = dest.clone();
        download(&opts).unwrap_or_else(|e| panic!("{name:?}: {e}"));
        assert_eq!(hash_path(&dest).unwrap(), hash_path(&fx.root.path().join(name)).unwrap(), "{name:?}");
    }
    // Raw bytes from a hand-typed request work too; a bad escape is refused.
    let (_, reply) = request(&server, b"GET 0 caf\xe9.bin\n");
    assert!(reply.starts_with("OK 1000 "), "{reply:?}");
    let (_, reply) = request(&server, b"GET 0 caf%e.bin\n");
    assert!(reply.starts_with("ERR bad request"), "{reply:?}");
    stop(server);
}
