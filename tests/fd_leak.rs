//! No descriptor outlives the server. Alone in its own test binary, so no other test opens
//! descriptors while this one counts them.

mod util;

use std::time::Duration;

use kingpin::{EpollTPServer, ServerConfig};
use util::{connect, echo_round_trip, wait_until, Record, RecordingEcho};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn no_fd_left_open_after_shutdown() {
    let before = open_fds();
    let record = Record::new();
    let r = record.clone();
    let server =
        EpollTPServer::from_fn(ServerConfig::default().threads(4), move || RecordingEcho(r.clone())).start().unwrap();
    let mut clients: Vec<_> = (0..200).map(|_| connect(server.local_addr())).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(echo_round_trip(c, &[i as u8; 10]), [i as u8; 10]);
    }
    // Half of them leave before shutdown, half are closed by it.
    clients.truncate(100);
    wait_until(Duration::from_secs(10), "100 closed", || server.stats().connections == 100);
    server.shutdown();
    server.join().unwrap();
    drop(clients);
    drop(record); // holds ConnHandles (which keep no fd, but let go of everything anyway)
    assert_eq!(open_fds(), before, "descriptors leaked");
}
