//! The big_file_transfer binaries over TLS, as a user runs them: a 256 MiB file arrives
//! byte-exact while the server's resident memory stays flat (over TLS kingpin's `send_file`
//! reads the file in bounded chunks and encrypts them, paced by `on_write_complete` as the
//! plain path is); a client that does not trust the server's certificate, or names it wrongly,
//! or speaks plain TCP to it, fails with one clear line and a non-zero exit, and the server
//! serves the next client; a download cut without `close_notify` (the server killed) keeps
//! its partial file and resumes. Every wait is bounded; a server left behind is killed.

#[path = "util/bin.rs"]
mod bin;
mod util;

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bin::{example, wait_bounded, KillOnDrop};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const MIB: u64 = 1 << 20;

/// How much the server's RSS may grow while it sends the 256 MiB file, over what it held
/// after a first small TLS download. Measured on the 2-core development VM (debug build):
/// 9.5–9.7 MiB before, at most 10.9–11.1 MiB during, so +1.4 MiB — the hashing worker's
/// 1 MiB buffer, a 64 KiB window of the file and its records, rustls's buffers. A server that
/// buffered the file, or read it ahead of the socket, would grow by up to 256 MiB; 32 MiB
/// leaves room for another allocator's or machine's arenas (more than 20 times what is used)
/// and still fails if an eighth of the file were held.
const MAX_GROWTH_MIB: u64 = 32;

/// The example binary, built once for the whole test run.
fn exe() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| example("big_file_transfer"))
}

/// A self-signed certificate for localhost and 127.0.0.1, with its key, both as PEM.
fn certificate() -> (String, String) {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let rcgen::CertifiedKey { cert, signing_key } = rcgen::generate_simple_self_signed(names).unwrap();
    (cert.pem(), signing_key.serialize_pem())
}

/// Writes `len` bytes that never repeat at a 1 MiB period (each MiB starts with its index).
fn write_file(path: &Path, len: u64) {
    let mut f = std::io::BufWriter::new(File::create(path).unwrap());
    let mut chunk = util::pattern(MIB as usize, len);
    let (mut left, mut i) = (len, 0u64);
    while left > 0 {
        chunk[..8].copy_from_slice(&i.to_le_bytes());
        let n = left.min(MIB) as usize;
        f.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
        i += 1;
    }
    f.flush().unwrap();
}

/// Whether two files hold the same bytes (compared 1 MiB at a time).
fn same_bytes(a: &Path, b: &Path) -> bool {
    let (mut a, mut b) = (File::open(a).unwrap(), File::open(b).unwrap());
    if a.metadata().unwrap().len() != b.metadata().unwrap().len() {
        return false;
    }
    let (mut x, mut y) = (vec![0; MIB as usize], vec![0; MIB as usize]);
    loop {
        let n = a.read(&mut x).unwrap();
        if n == 0 {
            return true;
        }
        b.read_exact(&mut y[..n]).unwrap();
        if x[..n] != y[..n] {
            return false;
        }
    }
}

/// The resident set of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// `serve --addr 127.0.0.1:0 --root <root> <tls...>`; returns it, its address, and its stdout
/// after the first line.
fn serve(root: &Path, tls: &[&str]) -> (KillOnDrop, SocketAddr, BufReader<ChildStdout>) {
    let mut child = KillOnDrop(Some(
        Command::new(exe())
            .args(["serve", "--addr", "127.0.0.1:0", "--threads", "2", "--root"])
            .arg(root)
            .args(tls)
            .env("KINGPIN_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    ));
    let mut out = BufReader::new(child.0.as_mut().and_then(|c| c.stdout.take()).unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.contains(" over TLS "), "{line:?}");
    let addr = line
        .split_whitespace()
        .find_map(|w| w.parse::<SocketAddr>().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (child, addr, out)
}

/// Ctrl+C: the server stops cleanly (bounded) and says so.
fn interrupt(mut guard: KillOnDrop, mut out: BufReader<ChildStdout>) {
    let mut child: Child = guard.0.take().expect("running");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let status = wait_bounded(&mut child, Duration::from_secs(20), "the server after SIGINT");
    assert!(status.success(), "exit status {status}");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("stopped"), "{rest:?}");
}

/// What a finished `get` printed.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// `get -q --addr <addr> <args...>` to its end (at most 120 s), in `cwd`.
fn get(addr: SocketAddr, args: &[&str], cwd: &Path) -> Run {
    let mut child = Command::new(exe())
        .args(["get", "-q", "--addr", &addr.to_string()])
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = wait_bounded(&mut child, Duration::from_secs(120), "big_file_transfer get");
    Run { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() }
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_256_mib_file_arrives_byte_exact_over_tls_with_the_server_memory_flat() {
    let started = Instant::now();
    let root = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let (cert, key) = certificate();
    let (cert_file, key_file) = (keys.path().join("cert.pem"), keys.path().join("key.pem"));
    std::fs::write(&cert_file, cert).unwrap();
    std::fs::write(&key_file, key).unwrap();
    write_file(&root.path().join("small"), MIB + 1);
    write_file(&root.path().join("big"), 256 * MIB);
    let (server, addr, stdout) =
        serve(root.path(), &["--tls-cert", path_str(&cert_file), "--tls-key", path_str(&key_file)]);
    let pid = server.0.as_ref().unwrap().id();
    let trust = ["--tls", "--ca-file", path_str(&cert_file)];

    // A first small download: the server has made a TLS session and streamed through it once.
    let at_start = rss_kib(pid);
    let r = get(addr, &[&trust[..], &["small"]].concat(), out.path());
    assert!(r.status.success(), "{}", r.stderr);
    assert!(same_bytes(&root.path().join("small"), &out.path().join("small")));
    let before = rss_kib(pid);

    // The big one, the server's RSS sampled every 5 ms meanwhile.
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let (mut peak, mut samples) = (0, 0);
            while !done.load(Ordering::Relaxed) {
                peak = rss_kib(pid).max(peak);
                samples += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            (peak, samples)
        })
    };
    let t = Instant::now();
    let r = get(addr, &[&trust[..], &["big", "-o", "big.copy"]].concat(), out.path());
    let transfer = t.elapsed();
    done.store(true, Ordering::Relaxed);
    let (peak, samples) = sampler.join().unwrap();
    assert!(r.status.success(), "{}", r.stderr);
    assert!(r.stdout.contains("268435456 bytes") && r.stdout.contains("verified"), "{}", r.stdout);
    assert!(same_bytes(&root.path().join("big"), &out.path().join("big.copy")), "the copy differs");
    let after = rss_kib(pid);
    let mib = |kib: u64| kib as f64 / 1024.0;
    eprintln!(
        "256 MiB over TLS in {transfer:.2?}: server RSS {:.1} MiB at start, {:.1} MiB before, at most {:.1} MiB \
         during ({samples} samples), {:.1} MiB after; whole test {:.2?}",
        mib(at_start),
        mib(before),
        mib(peak),
        mib(after),
        started.elapsed()
    );
    assert!(samples >= 5, "only {samples} RSS samples: the transfer was not watched");
    let growth = peak.saturating_sub(before);
    assert!(growth < MAX_GROWTH_MIB * 1024, "the server's RSS grew by {:.1} MiB while sending 256 MiB", mib(growth));
    interrupt(server, stdout);
}

#[test]
fn clients_that_cannot_trust_the_server_fail_clearly_and_the_server_serves_on() {
    let root = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    write_file(&root.path().join("f"), MIB + 1);
    let cert_file = keys.path().join("server.pem");
    let (mut server, addr, mut stdout) = serve(root.path(), &["--self-signed", path_str(&cert_file)]);
    let mut hint = String::new();
    stdout.read_line(&mut hint).unwrap();
    let trust_it = format!("--tls --ca-file {}", cert_file.display());
    assert!(hint.contains("self-signed") && hint.contains(&trust_it), "{hint:?}");
    // Another certificate: not the server's.
    let wrong_file = keys.path().join("wrong.pem");
    std::fs::write(&wrong_file, certificate().0).unwrap();

    let one_line = |r: &Run, what: &str| {
        assert_eq!(r.status.code(), Some(1), "{what}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{what}: one line: {}", r.stderr);
        assert!(r.stderr.starts_with("big_file_transfer: "), "{what}: {}", r.stderr);
        assert!(!r.stderr.contains("panicked") && !r.stderr.contains("os error"), "{what}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{what}: {}", r.stdout);
    };
    let r = get(addr, &["--tls", "--ca-file", path_str(&wrong_file), "f"], out.path());
    one_line(&r, "untrusted certificate");
    let failed = format!("TLS handshake with {addr} failed: invalid peer certificate");
    assert!(r.stderr.contains(&failed) && r.stderr.contains("--ca-file"), "{}", r.stderr);

    let r = get(addr, &["--tls", "--ca-file", path_str(&cert_file), "--tls-name", "files.example", "f"], out.path());
    one_line(&r, "a name the certificate is not for");
    assert!(
        r.stderr.contains("not valid for name \"files.example\"") && r.stderr.contains("--tls-name"),
        "{}",
        r.stderr
    );

    let r = get(addr, &["f"], out.path());
    one_line(&r, "plain TCP");
    assert!(r.stderr.contains("without a complete reply") && r.stderr.contains("--tls"), "{}", r.stderr);

    let missing = keys.path().join("missing.pem");
    let r = get(addr, &["--tls", "--ca-file", path_str(&missing), "f"], out.path());
    one_line(&r, "no CA file");
    assert!(r.stderr.contains("cannot read") && r.stderr.contains("no such file or directory"), "{}", r.stderr);

    let r = get(addr, &["--ca-file", path_str(&cert_file), "f"], out.path());
    assert_eq!(r.status.code(), Some(2), "--ca-file without --tls: {}", r.stderr);
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0, "a failed download left a file");

    // The server is still there, and serves a client that trusts it.
    assert!(server.0.as_mut().unwrap().try_wait().unwrap().is_none(), "the server exited");
    let r = get(addr, &["--tls", "--ca-file", path_str(&cert_file), "f"], out.path());
    assert!(r.status.success(), "{}", r.stderr);
    assert!(same_bytes(&root.path().join("f"), &out.path().join("f")));
    // By its default name too: the host of --addr (127.0.0.1), or localhost.
    let r =
        get(addr, &["--tls", "--ca-file", path_str(&cert_file), "--tls-name", "localhost", "f", "-o", "g"], out.path());
    assert!(r.status.success(), "{}", r.stderr);
    assert!(same_bytes(&root.path().join("f"), &out.path().join("g")));
    let names: Vec<PathBuf> = std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    interrupt(server, stdout);
}

/// A server that dies mid-stream ends the TLS connection without `close_notify`: the client
/// says the connection ended early and keeps the partial file, and the next run resumes it
/// from a new server, byte-exact.
#[test]
fn a_download_cut_without_close_notify_resumes() {
    let root = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let (cert, key) = certificate();
    let (cert_file, key_file) = (keys.path().join("cert.pem"), keys.path().join("key.pem"));
    std::fs::write(&cert_file, cert).unwrap();
    std::fs::write(&key_file, key).unwrap();
    write_file(&root.path().join("f"), 32 * MIB);
    let tls = ["--tls-cert", path_str(&cert_file), "--tls-key", path_str(&key_file)];
    let (mut server, addr, _) = serve(root.path(), &tls);

    let mut client = Command::new(exe())
        .args(["get", "-q", "--addr", &addr.to_string(), "--tls", "--ca-file", path_str(&cert_file)])
        .args(["--limit-rate", "8M", "f"])
        .current_dir(out.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = client.stderr.take().unwrap();
    let err = std::thread::spawn(move || std::io::read_to_string(err).unwrap_or_default());
    let mut client = KillOnDrop(Some(client));
    let part = out.path().join("f.part");
    util::wait_until(Duration::from_secs(20), "2 MiB downloaded", || {
        std::fs::metadata(&part).map_or(0, |m| m.len()) >= 2 * MIB
    });
    let mut dead = server.0.take().unwrap();
    dead.kill().unwrap();
    dead.wait().unwrap();
    let status = wait_bounded(client.0.as_mut().unwrap(), Duration::from_secs(20), "get after the server died");
    let err = err.join().unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("connection ended after") && err.contains("run again to resume"), "{err}");
    let have = std::fs::metadata(&part).unwrap().len();
    assert!((2 * MIB..32 * MIB).contains(&have), "{have}");

    let (server, addr, stdout) = serve(root.path(), &tls);
    let r = get(addr, &["--tls", "--ca-file", path_str(&cert_file), "f"], out.path());
    assert!(r.status.success(), "{}", r.stderr);
    assert!(r.stdout.contains(&format!("resumed from byte {have}")), "{}", r.stdout);
    assert!(same_bytes(&root.path().join("f"), &out.path().join("f")));
    interrupt(server, stdout);
}
