//! Reaching connections and loops from other threads: ConnHandle, LoopHandle, stale handles.

mod util;

use std::time::Duration;

use kingpin::{EpollTPServer, Error, ServerConfig};
use util::{connect, echo_round_trip, read_n, wait_until, Record, RecordingEcho};

/// A thread that is not an IO thread sends to a connection through its handle.
#[test]
fn send_from_a_non_io_thread() {
    let record = Record::new();
    let r = record.clone();
    let server =
        EpollTPServer::from_fn(ServerConfig::default().threads(2), move || RecordingEcho(r.clone())).start().unwrap();
    let mut s = connect(server.local_addr());
    wait_until(Duration::from_secs(10), "connect recorded", || record.handles().len() == 1);
    let handle = record.handles().remove(0);
    std::thread::spawn(move || {
        for i in 0..100u32 {
            handle.send(format!("{i:03}\n").as_bytes()).unwrap();
        }
    })
    .join()
    .unwrap();
    let expected: String = (0..100u32).map(|i| format!("{i:03}\n")).collect();
    assert_eq!(read_n(&mut s, expected.len()), expected.as_bytes(), "in order, nothing lost");
}

/// A closure on one loop sends to a connection owned by another loop.
#[test]
fn send_from_another_loop() {
    let record = Record::new();
    let r = record.clone();
    let server =
        EpollTPServer::from_fn(ServerConfig::default().threads(2), move || RecordingEcho(r.clone())).start().unwrap();
    let mut s = connect(server.local_addr());
    wait_until(Duration::from_secs(10), "connect recorded", || record.handles().len() == 1);
    let (owner, handle) = record.connects.lock()[0].clone();
    let other = server.loops()[1 - owner].clone();
    let (tx, rx) = std::sync::mpsc::channel();
    other
        .run(move |_, ctx| {
            let result = handle.send(format!("from loop {}", ctx.loop_index()).as_bytes());
            tx.send(result.is_ok()).unwrap();
        })
        .unwrap();
    assert!(rx.recv_timeout(Duration::from_secs(10)).unwrap());
    assert_eq!(read_n(&mut s, 11), format!("from loop {}", 1 - owner).as_bytes());
}

/// A handle to a closed connection errors, and neither it nor the old id reaches the
/// connection that reuses the slot.
#[test]
fn stale_handle_errors_and_never_reaches_a_reused_slot() {
    let record = Record::new();
    let r = record.clone();
    let server =
        EpollTPServer::from_fn(ServerConfig::default().threads(1), move || RecordingEcho(r.clone())).start().unwrap();
    let first = connect(server.local_addr());
    wait_until(Duration::from_secs(10), "first connect", || record.handles().len() == 1);
    let stale = record.handles().remove(0);
    drop(first);
    wait_until(Duration::from_secs(10), "first closed", || stale.is_closed());
    assert!(matches!(stale.send(b"x"), Err(Error::Closed)));
    assert!(matches!(stale.close(), Err(Error::Closed)));

    let mut second = connect(server.local_addr());
    wait_until(Duration::from_secs(10), "second connect", || record.handles().len() == 2);
    let fresh = record.handles().remove(1);
    assert_ne!(fresh.id(), stale.id(), "same slot, new generation");
    // The loop drops a command for the stale id rather than touching the new connection.
    server.loops()[0].send(stale.id(), b"stale".to_vec()).unwrap();
    fresh.send(b"fresh").unwrap();
    assert_eq!(read_n(&mut second, 5), b"fresh");
    assert_eq!(echo_round_trip(&mut second, b"echo"), b"echo", "nothing else arrived in between");
}

/// After the server stops, handles report it instead of queueing into the void.
#[test]
fn handles_error_after_shutdown() {
    let record = Record::new();
    let r = record.clone();
    let server =
        EpollTPServer::from_fn(ServerConfig::default().threads(1), move || RecordingEcho(r.clone())).start().unwrap();
    let loop0 = server.loops()[0].clone();
    let _s = connect(server.local_addr());
    wait_until(Duration::from_secs(10), "connect", || record.handles().len() == 1);
    let handle = record.handles().remove(0);
    server.shutdown();
    server.join().unwrap();
    assert!(matches!(handle.send(b"x"), Err(Error::Closed)), "closed by the shutdown");
    assert!(matches!(loop0.run(|_, _| {}), Err(Error::LoopStopped)));
}
