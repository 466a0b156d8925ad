//! Example binaries run by tests: built up to date, killed if a test fails, waited for within
//! a bound. Included with `#[path = "util/bin.rs"] mod bin;` by the tests that run them.
#![allow(dead_code)] // not every test uses every item

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
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
