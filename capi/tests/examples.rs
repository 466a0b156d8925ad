//! The C and C++ example servers, built with CMake against the installed package
//! (`find_package(kingpin)`), driven by a Rust load client: byte-exact echo over 1,000
//! connections, sends from a C++ `std::thread` through handles, a graceful stop on SIGINT
//! with exit status 0 — and the C++ one again under AddressSanitizer and LeakSanitizer, which
//! must report nothing.
//!
//! Skipped, with the reason printed, where `cmake` or `g++` is missing — except under CI (`CI`
//! or `KINGPIN_REQUIRE_NETNS` set), where that is a failure.

#[path = "../../tests/util/bin.rs"]
mod bin;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bin::{stdout_lines, wait_bounded, KillOnDrop};

/// Every wait of these tests is bounded by this.
const BOUND: Duration = Duration::from_secs(60);

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Whether the tools are here; outside CI a missing one skips the test with a printed reason.
fn tools_present() -> bool {
    let missing: Vec<&str> = ["cmake", "g++"].into_iter().filter(|t| !have(t)).collect();
    if missing.is_empty() {
        return true;
    }
    let ci = std::env::var_os("CI").is_some() || std::env::var_os("KINGPIN_REQUIRE_NETNS").is_some();
    assert!(!ci, "{missing:?} missing under CI: .ci/run installs them");
    eprintln!("skipped: {missing:?} not installed (apt-get install -y cmake g++)");
    false
}

/// The cargo target directory and profile this test was built in (the library is there).
fn target_and_profile() -> (PathBuf, String) {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let profile = profile_dir.file_name().unwrap().to_string_lossy().into_owned();
    (profile_dir.parent().unwrap().to_path_buf(), profile)
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Installs the library (as `make install` does) and builds the examples with CMake, once per
/// variant; returns the build directory.
fn build(sanitize: bool) -> PathBuf {
    static BUILDS: Mutex<Vec<(bool, PathBuf)>> = Mutex::new(Vec::new());
    static INSTALL: OnceLock<PathBuf> = OnceLock::new();
    let mut builds = BUILDS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, dir)) = builds.iter().find(|(s, _)| *s == sanitize) {
        return dir.clone();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let (target, profile) = target_and_profile();
    let work = target.join("capi-examples");
    let prefix = INSTALL.get_or_init(|| {
        let prefix = work.join("prefix");
        // `cargo test` builds this crate's cdylib and staticlib with the rlib these tests link,
        // in PROFILE/deps (only `cargo build` copies them up to PROFILE/): install those, so
        // the examples run against the library of this very build, in a fresh clone too.
        run(
            Command::new(root.join("capi/install.sh"))
                .arg(&prefix)
                .arg(&profile)
                .env("KINGPIN_LIB_DIR", target.join(&profile).join("deps")),
            "capi/install.sh",
        );
        prefix
    });
    let dir = work.join(if sanitize { "build-asan" } else { "build" });
    run(
        Command::new("cmake")
            .arg("-S")
            .arg(root.join("examples/cpp"))
            .arg("-B")
            .arg(&dir)
            .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display()))
            .arg("-DCMAKE_BUILD_TYPE=Release")
            .arg(format!("-DKINGPIN_SANITIZE={}", if sanitize { "ON" } else { "OFF" })),
        "cmake configure",
    );
    run(Command::new("cmake").arg("--build").arg(&dir).arg("-j2"), "cmake --build");
    builds.push((sanitize, dir.clone()));
    dir
}

/// A running example server: its address, its stdout lines, its stderr file.
struct Running {
    child: KillOnDrop,
    addr: SocketAddr,
    lines: Receiver<String>,
    stderr: PathBuf,
}

fn start(binary: &Path, args: &[&str], env: &[(&str, &str)]) -> Running {
    let stderr = binary.with_extension(format!("stderr-{}", std::process::id()));
    let stderr_file = std::fs::File::create(&stderr).unwrap();
    let mut child = Command::new(binary)
        .args(["--addr", "127.0.0.1:0", "--threads", "2"])
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(stderr_file)
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
    let lines = stdout_lines(child.stdout.take().unwrap());
    let first = lines.recv_timeout(BOUND).expect("the first line, with the address");
    let addr = first
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {first:?}"));
    Running { child: KillOnDrop(Some(child)), addr, lines, stderr }
}

impl Running {
    /// SIGINT, then the exit status 0 and the last line it printed (`stopped: …`).
    fn stop(mut self) -> (String, String) {
        let mut child = self.child.0.take().unwrap();
        // SAFETY: kill only signals our own child.
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
        let status = wait_bounded(&mut child, BOUND, "the example after SIGINT");
        let stderr = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let _ = std::fs::remove_file(&self.stderr);
        assert!(status.success(), "exit status {status}; stderr:\n{stderr}");
        let last = self.lines.iter().last().unwrap_or_default();
        (last, stderr)
    }
}

/// `conns` connections, each doing `rounds` round trips of varied sizes (up to 16 KiB), every
/// byte checked; the connections are spread over 20 threads, each holding its share open at
/// once. Returns the bytes echoed.
fn load(addr: SocketAddr, conns: usize, rounds: usize) -> u64 {
    let threads = 20;
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                let mut streams: Vec<TcpStream> = (t..conns)
                    .step_by(threads)
                    .map(|_| {
                        let s = TcpStream::connect(addr).expect("connect");
                        s.set_read_timeout(Some(BOUND)).unwrap();
                        s
                    })
                    .collect();
                let mut echoed = 0u64;
                for round in 0..rounds {
                    for (i, s) in streams.iter_mut().enumerate() {
                        let len = 1 + (i * 7919 + round * 104_729 + t * 31) % 16_384;
                        let data: Vec<u8> = (0..len).map(|b| (b ^ i ^ round ^ t) as u8).collect();
                        s.write_all(&data).unwrap();
                        let mut got = vec![0; len];
                        s.read_exact(&mut got).unwrap();
                        assert!(got == data, "connection {i} of thread {t}, round {round}: wrong bytes");
                        echoed += len as u64;
                    }
                }
                echoed
            })
        })
        .collect();
    workers.into_iter().map(|w| w.join().expect("a load thread failed")).sum()
}

/// The numbers of `stopped: accepted A, closed C, …`.
fn field(line: &str, name: &str) -> u64 {
    line.trim_start_matches("stopped: ")
        .split(", ")
        .find_map(|part| part.trim().strip_prefix(name).and_then(|n| n.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {name:?} in {line:?}"))
}

#[test]
fn the_cpp_echo_server_serves_1000_connections_byte_exact() {
    if !tools_present() {
        return;
    }
    let server = start(&build(false).join("kingpin_echo_cpp"), &["--max-conns-per-ip", "0"], &[]);
    let echoed = load(server.addr, 1000, 3);
    let (last, stderr) = server.stop();
    println!("C++ echo: {echoed} bytes echoed over 1,000 connections; {last}");
    assert_eq!(field(&last, "accepted"), 1000, "{last}\n{stderr}");
    assert_eq!(field(&last, "closed"), 1000, "{last}");
    assert_eq!(field(&last, "bytes in"), echoed, "{last}");
    assert_eq!(field(&last, "bytes out"), echoed, "{last}");
}

#[test]
fn the_cpp_echo_server_sends_from_a_std_thread_through_handles() {
    if !tools_present() {
        return;
    }
    let server = start(&build(false).join("kingpin_echo_cpp"), &["--echo-from-thread", "--max-conns-per-ip", "0"], &[]);
    let echoed = load(server.addr, 1000, 3);
    let (last, _) = server.stop();
    println!("C++ echo from a std::thread: {echoed} bytes over 1,000 connections; {last}");
    assert_eq!(field(&last, "accepted"), 1000, "{last}");
    assert_eq!(field(&last, "bytes out"), echoed, "{last}");
    assert!(field(&last, "cross-thread sends") >= 3000, "every echo went through a handle: {last}");
}

#[test]
fn the_c_echo_server_serves_1000_connections_byte_exact() {
    if !tools_present() {
        return;
    }
    let server = start(&build(false).join("kingpin_echo_c"), &[], &[]);
    let echoed = load(server.addr, 1000, 3);
    let (last, _) = server.stop();
    println!("C echo: {echoed} bytes echoed over 1,000 connections; {last}");
    assert_eq!(field(&last, "accepted"), 1000, "{last}");
    assert_eq!(field(&last, "closed"), 1000, "{last}");
}

#[test]
fn under_address_sanitizer_the_cpp_example_reports_no_error_and_no_leak() {
    if !tools_present() {
        return;
    }
    let dir = build(true);
    for mode in [&[][..], &["--echo-from-thread"][..]] {
        let server = start(
            &dir.join("kingpin_echo_cpp"),
            mode,
            &[("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=86")],
        );
        let echoed = load(server.addr, 200, 3);
        let (last, stderr) = server.stop();
        println!("C++ echo {mode:?} under ASan: {echoed} bytes over 200 connections; {last}");
        assert!(
            !stderr.contains("AddressSanitizer") && !stderr.contains("LeakSanitizer"),
            "the sanitizers reported:\n{stderr}"
        );
        assert_eq!(field(&last, "accepted"), 200, "{last}");
    }
}

/// Clients that send, end their side and read to the end get every byte back — also when the
/// replies come from another thread (half-close keeps the connection until they are sent).
#[test]
fn half_closing_clients_get_every_reply() {
    if !tools_present() {
        return;
    }
    let dir = build(false);
    let cases: [(&str, &[&str]); 3] =
        [("kingpin_echo_cpp", &["--echo-from-thread"]), ("kingpin_echo_cpp", &[]), ("kingpin_echo_c", &[])];
    for (binary, args) in cases {
        let server = start(&dir.join(binary), args, &[]);
        let clients: Vec<_> = (0..50)
            .map(|i| {
                let addr = server.addr;
                std::thread::spawn(move || {
                    let data: Vec<u8> = (0..10_000 + i * 37).map(|b| (b ^ i) as u8).collect();
                    let mut s = TcpStream::connect(addr).unwrap();
                    s.set_read_timeout(Some(BOUND)).unwrap();
                    s.write_all(&data).unwrap();
                    s.shutdown(std::net::Shutdown::Write).unwrap();
                    let mut got = Vec::new();
                    s.read_to_end(&mut got).unwrap();
                    got == data
                })
            })
            .collect();
        let whole = clients.into_iter().map(|c| c.join().unwrap_or(false)).filter(|&ok| ok).count();
        let (last, _) = server.stop();
        assert_eq!(whole, 50, "{binary} {args:?}: {whole} of 50 half-closing clients got their whole echo; {last}");
    }
}
