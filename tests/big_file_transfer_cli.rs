//! The big_file_transfer binary as a user runs it: startup errors are one clear line and a
//! non-zero exit; `get -o DIR` puts the file in the directory; `--limit-rate` takes curl's
//! units; a file name that is not UTF-8 can be asked for on the command line.

#[path = "util/bin.rs"]
mod bin;
mod util;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{ChildStdout, Command, ExitStatus, Stdio};
use std::time::Duration;

use bin::{example, wait_bounded, KillOnDrop};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// What a finished run printed.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs the example with `args` to its end (at most 60 s), capturing its output.
fn run<I, S>(exe: &Path, args: I, cwd: &Path) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut child = Command::new(exe)
        .args(args)
        .current_dir(cwd)
        .env("KINGPIN_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read both pipes on threads, so a chatty child cannot block on a full pipe.
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
    let status = wait_bounded(&mut child, Duration::from_secs(60), "big_file_transfer");
    Run { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() }
}

/// A server on a free loopback port serving `root`; returns it, the address it printed, and
/// its stdout.
fn serve(exe: &Path, root: &Path) -> (KillOnDrop, SocketAddr, BufReader<ChildStdout>) {
    let mut child = KillOnDrop(Some(
        Command::new(exe)
            .args([OsStr::new("serve"), OsStr::new("--addr"), OsStr::new("127.0.0.1:0"), OsStr::new("--root")])
            .arg(root)
            .env("KINGPIN_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    ));
    let mut out = BufReader::new(child.0.as_mut().and_then(|c| c.stdout.take()).unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .split_whitespace()
        .find_map(|w| w.parse::<SocketAddr>().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (child, addr, out)
}

/// Ctrl+C: the server stops cleanly (bounded) and says so.
fn interrupt(mut guard: KillOnDrop, mut out: BufReader<ChildStdout>) -> String {
    let mut child = guard.0.take().expect("running");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let status = wait_bounded(&mut child, Duration::from_secs(20), "the server after SIGINT");
    assert!(status.success(), "exit status {status}");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("stopped"), "{rest:?}");
    rest
}

#[test]
fn startup_errors_are_one_clear_line() {
    let exe = example("big_file_transfer");
    let root = tempfile::tempdir().unwrap();
    let (first, addr, out) = serve(&exe, root.path());

    let second =
        run(&exe, ["serve", "--addr", &addr.to_string(), "--root", root.path().to_str().unwrap()], root.path());
    assert_eq!(second.status.code(), Some(1), "{}", second.stderr);
    assert_eq!(second.stderr, format!("big_file_transfer: cannot listen on {addr}: address already in use\n"));

    let missing = root.path().join("missing");
    let r = run(&exe, ["serve", "--addr", "127.0.0.1:0", "--root", missing.to_str().unwrap()], root.path());
    assert_eq!(r.status.code(), Some(1));
    assert_eq!(r.stderr, format!("big_file_transfer: cannot serve {}: no such file or directory\n", missing.display()));

    let file = root.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let r = run(&exe, ["serve", "--addr", "127.0.0.1:0", "--root", file.to_str().unwrap()], root.path());
    assert_eq!(r.status.code(), Some(1));
    assert_eq!(r.stderr, format!("big_file_transfer: cannot serve {}: not a directory\n", file.display()));

    // Zero threads (or a queue of none) is an error, not a silent 1: the server does not start.
    for flag in ["--threads", "--hash-threads", "--hash-queue"] {
        let r = run(
            &exe,
            ["serve", "--addr", "127.0.0.1:0", "--root", root.path().to_str().unwrap(), flag, "0"],
            root.path(),
        );
        assert!(!r.status.success(), "{flag} 0 accepted: {}", r.stdout);
        assert!(r.stdout.is_empty(), "{flag} 0: the server started: {}", r.stdout);
        assert!(r.stderr.contains(flag) && r.stderr.contains("at least 1"), "{flag} 0: {}", r.stderr);
    }
    interrupt(first, out);
}

#[test]
fn get_into_a_directory_with_curl_rate_units() {
    let exe = example("big_file_transfer");
    let root = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let big = util::pattern(3 << 20, 7);
    std::fs::write(root.path().join("big.bin"), &big).unwrap();
    std::fs::create_dir(root.path().join("sub")).unwrap();
    std::fs::write(root.path().join("sub/small.bin"), b"small").unwrap();
    let odd_name = OsStr::from_bytes(b"caf\xe9 \xff.bin");
    std::fs::write(root.path().join(odd_name), b"not UTF-8").unwrap();
    let (server, addr, out) = serve(&exe, root.path());
    let addr = addr.to_string();
    let out_path = out_dir.path().to_str().unwrap().to_string();
    let with_slash = format!("{out_path}/");
    let get = |args: &[&OsStr]| {
        let mut all: Vec<&OsStr> = vec![OsStr::new("get"), OsStr::new("-q"), OsStr::new("--addr"), OsStr::new(&addr)];
        all.extend_from_slice(args);
        run(&exe, all, out_dir.path())
    };

    // An existing directory: the file goes in it under its own name, the download checked
    // first, nothing else left behind.
    let r = get(&[
        OsStr::new("big.bin"),
        OsStr::new("-o"),
        OsStr::new(&out_path),
        OsStr::new("--limit-rate"),
        OsStr::new("50M"),
    ]);
    assert!(r.status.success(), "{}", r.stderr);
    assert_eq!(std::fs::read(out_dir.path().join("big.bin")).unwrap(), big);
    let r = get(&[
        OsStr::new("sub/small.bin"),
        OsStr::new("-o"),
        OsStr::new(&with_slash),
        OsStr::new("--limit-rate"),
        OsStr::new("1.5G"),
    ]);
    assert!(r.status.success(), "{}", r.stderr);
    assert_eq!(std::fs::read(out_dir.path().join("small.bin")).unwrap(), b"small");
    // A name that is not UTF-8, into the current directory.
    let r = get(&[odd_name]);
    assert!(r.status.success(), "{}", r.stderr);
    assert_eq!(std::fs::read(out_dir.path().join(odd_name)).unwrap(), b"not UTF-8");
    let mut names: Vec<_> = std::fs::read_dir(out_dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, [OsStr::new("big.bin"), OsStr::new(odd_name), OsStr::new("small.bin")]);

    // A directory that does not exist: an error before anything is downloaded.
    let r = get(&[OsStr::new("big.bin"), OsStr::new("-o"), OsStr::new(&format!("{out_path}/missing/"))]);
    assert_eq!(r.status.code(), Some(1));
    assert!(r.stderr.contains("no such file or directory"), "{}", r.stderr);
    assert_eq!(std::fs::read_dir(out_dir.path()).unwrap().count(), 3);

    // Rates: curl's units, and nothing else.
    for bad in ["5X", "0", "1.2.3", "fast"] {
        let r = get(&[
            OsStr::new("big.bin"),
            OsStr::new("--limit-rate"),
            OsStr::new(bad),
            OsStr::new("-o"),
            OsStr::new("x"),
        ]);
        assert_eq!(r.status.code(), Some(2), "--limit-rate {bad}: {}", r.stderr);
        assert!(r.stderr.contains("--limit-rate"), "{}", r.stderr);
    }
    interrupt(server, out);
}
