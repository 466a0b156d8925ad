//! A server that accepts connections and never answers (nor closes them): what a client must
//! not wait on forever. Include with `#[path = "util/silent.rs"] mod silent;`.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest the accepting thread runs, whatever the test does.
const LIFETIME: Duration = Duration::from_secs(120);

/// Accepts on a loopback port and holds every connection, silent, until dropped.
pub struct SilentServer {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SilentServer {
    /// Listens on 127.0.0.1, port 0.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (accepted, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let (n, halt) = (accepted.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            let deadline = Instant::now() + LIFETIME;
            while !halt.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((s, _)) => {
                        held.push(s);
                        n.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(1)),
                    Err(e) => panic!("accept: {e}"),
                }
            }
        });
        SilentServer { addr, accepted, stop, thread: Some(thread) }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until it has accepted `n` connections; panics after `timeout`.
    pub fn wait_accepted(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.accepted.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "the silent server accepted no connection in {timeout:?}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
