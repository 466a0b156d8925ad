//! Example binaries run by tests: built up to date, killed if a test fails, waited for within
//! a bound. Included with `#[path = "util/bin.rs"] mod bin;` by the tests that run them.
#![allow(dead_code)] // not every test uses every item

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, ExitStatus};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// The path of an example binary built next to this test, brought up to date first (cargo
/// builds examples only when asked, so one left from an older build would be tested).
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "--quiet", "--example", name]);
    if profile_dir.ends_with("release") {
        build.arg("--release");
    }
    assert!(build.status().unwrap().success(), "building example {name}");
    profile_dir.join("examples").join(name)
}

/// The lines a child prints, read by a thread of their own: waiting for one can be bounded
/// (`recv_timeout`), even when the pipe stays open without a line (a process the child
/// started may hold it).
pub fn stdout_lines(stdout: ChildStdout) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Kills the child if a test fails before stopping it, so no server outlives its test.
pub struct KillOnDrop(pub Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits for the child to exit, at most `bound`; kills it and panics after.
pub fn wait_bounded(child: &mut Child, bound: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {bound:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
