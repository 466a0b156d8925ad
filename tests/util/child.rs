//! Helper processes for the fault tests: the test binary re-executes itself to run one test
//! function as a separate process (a client to SIGKILL, a server under a lowered fd limit, a
//! peer inside a network namespace). The parent talks to it through stdin and stdout lines;
//! every wait is bounded and a child still running when its handle drops is killed.
//!
//! Include with `#[path = "util/child.rs"] mod child;`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Lines a child means for its parent start with this (the test harness prints its own lines
/// on the same stdout).
const MARK: &str = "@kingpin-child ";

/// Environment variable naming the role a re-executed test binary plays.
pub const ROLE_VAR: &str = "KINGPIN_CHILD_ROLE";

/// The role this process was started for, if it is a child at all; a child test function
/// returns at once when this is `None` (so in a normal test run it is a no-op).
pub fn role() -> Option<String> {
    std::env::var(ROLE_VAR).ok()
}

/// Environment variable `name`, which the parent must have set.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("child started without {name}"))
}

/// Sends a line to the parent: `key k1=v1 k2=v2 …`.
pub fn report(key: &str, fields: &[(&str, String)]) {
    let mut line = format!("{MARK}{key}");
    for (k, v) in fields {
        line.push_str(&format!(" {k}={v}"));
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

/// Exits the child process with status 86 after `limit`, whatever it is doing: an orphaned
/// helper never outlives a broken test for long.
pub fn watchdog(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("child: watchdog fired after {limit:?}");
        std::process::exit(86);
    });
}

/// Reads the parent's stdin lines on a thread of its own; `None` once stdin is closed.
pub fn stdin_lines() -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The byte at `offset` of the endless test stream (a multiplicative hash, so a shifted,
/// dropped or duplicated segment shows).
pub fn stream_byte(offset: u64) -> u8 {
    (offset.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

/// Fills `buf` with the stream bytes from `offset` on.
pub fn fill_stream(buf: &mut [u8], offset: u64) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = stream_byte(offset + i as u64);
    }
}

/// The position of the first byte of `buf` that is not the stream from `offset` on.
pub fn check_stream(buf: &[u8], offset: u64) -> Option<usize> {
    buf.iter().enumerate().position(|(i, &b)| b != stream_byte(offset + i as u64))
}

/// A parsed `key k=v …` line from a child.
#[derive(Debug, Clone)]
pub struct Report {
    pub key: String,
    pub fields: HashMap<String, String>,
}

impl Report {
    /// Field `name`, parsed; panics with the line if it is missing or malformed.
    pub fn get<T: std::str::FromStr>(&self, name: &str) -> T {
        self.fields
            .get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("child report {self:?}: no valid field {name}"))
    }
}

/// A running child: the test binary re-executed to run one test function.
pub struct ChildProc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    reader: Option<JoinHandle<()>>,
}

impl ChildProc {
    /// Starts the test binary running only `test` (with `ROLE_VAR=role` and `envs`), its
    /// stdin and stdout piped to us, its stderr shared. With `prefix` (e.g. `ip netns exec
    /// ns`), that command runs the binary.
    pub fn spawn(test: &str, role: &str, envs: &[(&str, String)], prefix: &[&str]) -> ChildProc {
        let exe = std::env::current_exe().expect("current_exe");
        let mut cmd = match prefix.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(ROLE_VAR, role)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawning child {test}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.find(MARK) {
                    if tx.send(line[at + MARK.len()..].to_string()).is_err() {
                        break;
                    }
                }
            }
        });
        let stdin = child.stdin.take();
        ChildProc { name: role.to_string(), child, stdin, lines, reader: Some(reader) }
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for the child's next report, which must be `key`.
    pub fn expect(&mut self, key: &str, timeout: Duration) -> Report {
        let line = match self.lines.recv_timeout(timeout) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                self.kill();
                panic!("child {}: no `{key}` report within {timeout:?}", self.name)
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait();
                panic!("child {}: exited ({status:?}) before reporting `{key}`", self.name)
            }
        };
        let mut words = line.split_whitespace();
        let got = words.next().unwrap_or_default().to_string();
        assert_eq!(got, key, "child {}: unexpected report {line:?}", self.name);
        let fields = words.filter_map(|w| w.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Report { key: got, fields }
    }

    /// Sends one line to the child's stdin.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}").and_then(|()| stdin.flush()).expect("writing to the child");
    }

    /// Closes the child's stdin (our "finish now" signal).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// SIGKILLs the child (if it still runs) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.join_reader();
    }

    /// Waits up to `timeout` for the child to exit; kills it and panics on timeout.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.join_reader();
                return status;
            }
            if Instant::now() >= deadline {
                self.kill();
                panic!("child {} still running after {timeout:?}; killed", self.name);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Once the child is gone its stdout ends; joining the reader closes our end of the pipe.
    fn join_reader(&mut self) {
        self.stdin = None;
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        self.join_reader();
    }
}
