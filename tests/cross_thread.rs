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

/// A handle's sends respect backpressure: to a peer that does not read, they are refused with
/// `Error::Full` once the output waiting for it reaches the high water mark (before, they queued
/// without bound); nothing taken is lost, and sends are taken again once the peer has read.
#[test]
fn handle_sends_to_a_peer_that_does_not_read_are_refused_when_full() {
    const CHUNK: usize = 16 << 10;
    // 256 MiB: far past what the kernel's socket buffers and the high water mark hold.
    const MAX_CHUNKS: usize = 16 << 10;
    let record = Record::new();
    let r = record.clone();
    let server =
        EpollTPServer::from_fn(ServerConfig::default().threads(1), move || RecordingEcho(r.clone())).start().unwrap();
    let mut s = connect(server.local_addr());
    wait_until(Duration::from_secs(10), "connect recorded", || record.handles().len() == 1);
    let handle = record.handles().remove(0);
    assert!(handle.is_writable());

    let mut taken = 0usize;
    let mut full = false;
    for i in 0..MAX_CHUNKS {
        match handle.send(&util::pattern(CHUNK, i as u64)) {
            Ok(()) => taken += 1,
            Err(Error::Full) => {
                full = true;
                break;
            }
            Err(e) => panic!("send: {e}"),
        }
        if i % 64 == 63 {
            // Let the loop move the sends into the socket, as a real producer would.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert!(full, "{} MiB queued for a peer that never reads, never refused", (taken * CHUNK) >> 20);
    assert!(!handle.is_writable());
    let pending = handle.pending();
    assert!(pending >= 64 << 10, "refused with only {pending} bytes pending");
    assert!(taken * CHUNK < 32 << 20, "{} MiB taken before the first refusal", (taken * CHUNK) >> 20);
    eprintln!("refused after {} KiB taken, {pending} bytes pending", (taken * CHUNK) >> 10);

    // The peer reads: everything taken arrives, in order, and the handle is writable again.
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let expected: Vec<u8> = (0..taken).flat_map(|i| util::pattern(CHUNK, i as u64)).collect();
    assert!(read_n(&mut s, expected.len()) == expected, "what was taken arrives whole and in order");
    wait_until(Duration::from_secs(10), "writable again", || handle.is_writable());
    handle.send(b"again").unwrap();
    assert_eq!(read_n(&mut s, 5), b"again");
    wait_until(Duration::from_secs(10), "nothing pending", || handle.pending() == 0);
}
