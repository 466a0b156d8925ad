//! The big_file_transfer example end to end, server in-process: files of 0 B, 1 B, 1 MiB + 1
//! and 256 MiB arrive byte-exact (with `sendfile` and with buffered reads); 20 clients at once;
//! path escapes refused; a client killed halfway resumes; the server survives a client that
//! disconnects mid-stream; a corrupt partial file is caught by the checksum.

mod util;

#[path = "../examples/big_file_transfer/checksum.rs"]
mod checksum;
#[path = "../examples/big_file_transfer/client.rs"]
mod client;
#[path = "../examples/big_file_transfer/protocol.rs"]
mod protocol;
#[path = "../examples/big_file_transfer/server.rs"]
mod server;

use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use checksum::{hash_path, ChecksumCache};
use client::{download, part_path, GetError, GetOptions};
use kingpin::ServerHandle;
use server::{FileServer, ServerOptions};
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

    fn serve(&self, sendfile: bool) -> (ServerHandle<FileServer>, Arc<ChecksumCache>) {
        let opts = ServerOptions {
            root: self.root.path().to_path_buf(),
            addr: "127.0.0.1:0".parse().unwrap(),
            threads: 2,
            sendfile,
            max_conns_per_ip: None,
        };
        let cache = Arc::new(ChecksumCache::default());
        (server::start_with_cache(&opts, cache.clone()).unwrap(), cache)
    }

    fn get(&self, server: &ServerHandle<FileServer>, path: &str, dest: &str) -> GetOptions {
        GetOptions {
            addr: server.local_addr().to_string(),
            path: path.into(),
            dest: self.out.path().join(dest),
            progress: false,
            limit_rate: None,
            timeout: util::IO_TIMEOUT,
        }
    }
}

fn stop(server: ServerHandle<FileServer>) {
    server.shutdown();
    server.join().unwrap();
}

/// Downloads `name` and checks it is the served file, byte for byte (by size and hash).
fn fetch_and_compare(fx: &Fixture, server: &ServerHandle<FileServer>, name: &str) {
    let opts = fx.get(server, name, name);
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
    let (server, _) = fx.serve(true);
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
    let (server, _) = fx.serve(false);
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
    let (server, cache) = fx.serve(true);
    let barrier = std::sync::Barrier::new(20);
    std::thread::scope(|s| {
        for i in 0..20 {
            let (fx, server, barrier) = (&fx, &server, &barrier);
            s.spawn(move || {
                let name = if i % 2 == 0 { "a" } else { "b" };
                let opts = fx.get(server, name, &format!("{name}.{i}"));
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
    assert_eq!(cache.hashed(), 2, "each file hashed once");
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
    std::os::unix::fs::symlink(fx.root.path().join("inside"), fx.root.path().join("link_in")).unwrap();
    std::fs::create_dir(fx.root.path().join("sub")).unwrap();
    let (server, _) = fx.serve(true);
    let secret = format!("../{}/secret", outside.path().file_name().unwrap().to_str().unwrap());
    for (path, why) in [
        ("../x", "'..' not allowed"),
        (secret.as_str(), "'..' not allowed"),
        ("sub/../../x", "'..' not allowed"),
        ("/etc/passwd", "absolute path not allowed"),
        ("link_out", "leads outside"),
        ("dir_out/secret", "leads outside"),
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
    // A symlink that stays inside the root is fine.
    fetch_and_compare(&fx, &server, "link_in");
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
    let (server, _) = fx.serve(true);
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
    let (server, _) = fx.serve(true);
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
    let (server, _) = fx.serve(true);
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
    let opts = ServerOptions {
        root: fx.root.path().to_path_buf(),
        addr: "127.0.0.1:0".parse().unwrap(),
        threads: 1,
        sendfile: true,
        max_conns_per_ip: None,
    };
    let server = server::start(&opts).unwrap();
    for request in [vec![b'x'; protocol::MAX_LINE + 10], b"PUT 0 x\n".to_vec()] {
        let mut s = connect(server.local_addr());
        s.write_all(&request).unwrap();
        let reply = util::read_to_end(&mut s).unwrap();
        assert!(reply.starts_with(b"ERR bad request"), "{}", String::from_utf8_lossy(&reply));
    }
    stop(server);
}
