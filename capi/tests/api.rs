//! The C API driven through its exported functions, as a C program would call them: echo,
//! handles from other threads, the ownership rules, misuse (a kept `kp_conn *`, a handle freed
//! twice, a callback that returns an error), shutdown, and the client.
//!
//! Each test gives its handler its own state through `kp_handler.user` (no `create`), so tests
//! run in parallel without sharing anything.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kingpin_capi::*;

const WAIT: Duration = Duration::from_secs(10);

/// What a test's callbacks record and use.
#[derive(Default)]
struct State {
    connects: AtomicUsize,
    messages: AtomicUsize,
    closes: Mutex<Vec<(c_int, c_int)>>,
    creates: AtomicUsize,
    destroys: AtomicUsize,
    callbacks_after_free: AtomicUsize,
    freed: std::sync::atomic::AtomicBool,
    kept_conn: AtomicPtr<kp_conn>,
    stale_status: Mutex<Option<(c_int, String)>>,
    handles: Mutex<Option<Sender<usize>>>,
    server: AtomicPtr<kp_server>,
    client: AtomicPtr<kp_client>,
    free_in_callback: Mutex<Option<c_int>>,
    timer_tags: Mutex<Vec<u64>>,
    failed_targets: Mutex<Vec<(String, u16, u64, c_int)>>,
    tags: Mutex<Vec<u64>>,
}

fn state<'a>(user: *mut c_void) -> &'a State {
    // SAFETY: every handler of these tests has a `State` as its user, alive until the test
    // has freed its server or client.
    unsafe { &*(user as *const State) }
}

fn touch(s: &State) {
    if s.freed.load(SeqCst) {
        s.callbacks_after_free.fetch_add(1, SeqCst);
    }
}

fn last_error() -> String {
    // SAFETY: always a valid NUL-terminated string.
    unsafe { CStr::from_ptr(kp_last_error_message()) }.to_string_lossy().into_owned()
}

/// Echoes through `kp_conn_input` / `kp_conn_send` / `kp_conn_consume`; "fail" makes the
/// callback return 7, "stale" uses the `kp_conn *` kept from `on_connect`, "free" tries to
/// free the server from inside.
extern "C" fn echo_message(user: *mut c_void, conn: *mut kp_conn) -> c_int {
    let s = state(user);
    touch(s);
    s.messages.fetch_add(1, SeqCst);
    let mut len = 0;
    // SAFETY: `conn` is this callback's; `len` is writable.
    let data = unsafe { kp_conn_input(conn, &mut len) };
    // SAFETY: kp_conn_input returned `len` readable bytes at `data`, valid in this callback.
    let input = unsafe { std::slice::from_raw_parts(data, len) }.to_vec();
    if input.starts_with(b"fail") {
        return 7;
    }
    if input.starts_with(b"stale") {
        let kept = s.kept_conn.load(SeqCst);
        // SAFETY: deliberately a kept pointer: the library must refuse it.
        let status = unsafe { kp_conn_send(kept, b"x".as_ptr(), 1) };
        *s.stale_status.lock().unwrap() = Some((status, last_error()));
    }
    if input.starts_with(b"free") {
        // SAFETY: the server pointer is live (the test frees it after this).
        let status = unsafe { kp_server_free(s.server.load(SeqCst)) };
        *s.free_in_callback.lock().unwrap() = Some((status, last_error()).0);
    }
    // SAFETY: `conn` is this callback's; `data`/`len` are its input.
    assert_eq!(unsafe { kp_conn_send(conn, data, len) }, KP_OK);
    // SAFETY: as above.
    assert_eq!(unsafe { kp_conn_consume(conn, len) }, KP_OK);
    KP_OK
}

extern "C" fn record_connect(user: *mut c_void, conn: *mut kp_conn) -> c_int {
    let s = state(user);
    touch(s);
    s.connects.fetch_add(1, SeqCst);
    s.kept_conn.store(conn, SeqCst);
    let mut tag = 0;
    // SAFETY: `conn` is this callback's.
    assert_eq!(unsafe { kp_conn_tag(conn, &mut tag) }, KP_OK);
    s.tags.lock().unwrap().push(tag);
    if let Some(tx) = s.handles.lock().unwrap().as_ref() {
        // SAFETY: `conn` is this callback's.
        let h = unsafe { kp_conn_handle(conn) };
        assert!(!h.is_null(), "{}", last_error());
        tx.send(h as usize).unwrap();
    }
    KP_OK
}

extern "C" fn record_closed(user: *mut c_void, _conn: *mut kp_conn, reason: c_int, detail: c_int) {
    let s = state(user);
    touch(s);
    s.closes.lock().unwrap().push((reason, detail));
}

fn handler(s: &State) -> kp_handler {
    kp_handler {
        user: s as *const State as *mut c_void,
        create: None,
        destroy: None,
        on_connect: Some(record_connect),
        on_message: Some(echo_message),
        on_write_complete: None,
        on_passively_closed: None,
        on_closed: Some(record_closed),
        on_timer: None,
        on_idle: None,
        on_high_water: None,
        on_low_water: None,
        on_connect_failed: None,
        on_loop: None,
    }
}

fn config(threads: usize) -> *mut kp_config {
    let c = kp_config_new();
    // SAFETY: a live config.
    unsafe {
        assert_eq!(kp_config_set_threads(c, threads), KP_OK);
        assert_eq!(kp_config_set_shutdown_timeout_ms(c, 2000), KP_OK);
    }
    c
}

fn start(h: &kp_handler, threads: usize) -> (*mut kp_server, SocketAddr) {
    let c = config(threads);
    let mut server = std::ptr::null_mut();
    // SAFETY: live config and handler, writable out pointer.
    let status = unsafe { kp_server_start(c, h, &mut server) };
    // SAFETY: the config was copied by start.
    unsafe { kp_config_free(c) };
    assert_eq!(status, KP_OK, "{}", last_error());
    let mut buf = [0 as c_char; KP_ADDR_STRLEN];
    // SAFETY: a live server, a buffer of KP_ADDR_STRLEN.
    assert_eq!(unsafe { kp_server_local_addr(server, buf.as_mut_ptr(), buf.len()) }, KP_OK);
    // SAFETY: NUL-terminated by kp_server_local_addr.
    let addr = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap().parse().unwrap();
    // SAFETY: a live server.
    assert_eq!(unsafe { kp_server_port(server) }, SocketAddr::port(&addr));
    (server, addr)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

fn round_trip(s: &mut TcpStream, data: &[u8]) -> Vec<u8> {
    s.write_all(data).unwrap();
    let mut got = vec![0; data.len()];
    s.read_exact(&mut got).unwrap();
    got
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn free(server: *mut kp_server) {
    // SAFETY: a live server, not used afterwards.
    assert_eq!(unsafe { kp_server_free(server) }, KP_OK, "{}", last_error());
}

#[test]
fn echo_through_the_c_api_and_a_clean_free() {
    let s = State::default();
    let h = handler(&s);
    let (server, addr) = start(&h, 2);
    let mut clients: Vec<TcpStream> = (0..8).map(|_| connect(addr)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        let data: Vec<u8> = (0..10_000).map(|b| (b * 7 + i) as u8).collect();
        assert_eq!(round_trip(c, &data), data);
    }
    let mut stats = kp_stats::default();
    // SAFETY: live server, writable stats.
    assert_eq!(unsafe { kp_server_stats(server, &mut stats) }, KP_OK);
    assert_eq!(stats.accepted, 8);
    assert_eq!(stats.connections, 8);
    // SAFETY: a live server, waited for from this thread.
    unsafe {
        assert_eq!(kp_server_shutdown(server), KP_OK);
        assert_eq!(kp_server_wait(server), KP_OK);
        // The final counters of the run, after the wait.
        assert_eq!(kp_server_stats(server, &mut stats), KP_OK);
    }
    assert_eq!((stats.accepted, stats.closed, stats.connections), (8, 8, 0));
    assert_eq!((stats.bytes_in, stats.bytes_out), (80_000, 80_000));
    free(server);
    s.freed.store(true, SeqCst);
    // Every connection that got on_connect got on_closed, for the shutdown, before free returned.
    assert_eq!(s.connects.load(SeqCst), 8);
    let closes = s.closes.lock().unwrap().clone();
    assert_eq!(closes.len(), 8);
    assert!(closes.iter().all(|&(r, _)| r == KP_CLOSE_SHUTDOWN), "{closes:?}");
    for c in &mut clients {
        let mut rest = Vec::new();
        assert_eq!(c.read_to_end(&mut rest).unwrap(), 0, "closed by the server");
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(s.callbacks_after_free.load(SeqCst), 0);
}

#[test]
fn a_kp_conn_kept_after_its_callback_is_refused() {
    let s = State::default();
    let h = handler(&s);
    let (server, addr) = start(&h, 1);
    let mut c = connect(addr);
    assert_eq!(round_trip(&mut c, b"hello"), b"hello");
    // In a later callback of the same connection, on the same thread.
    assert_eq!(round_trip(&mut c, b"stale"), b"stale");
    let (status, message) = s.stale_status.lock().unwrap().clone().expect("the stale call ran");
    assert_eq!(status, KP_ERR_STALE_CONN);
    assert!(message.contains("not the one of the running callback"), "{message}");
    // On another thread, after every callback returned.
    let kept = s.kept_conn.load(SeqCst);
    // SAFETY: deliberately a kept pointer: the library must refuse it.
    assert_eq!(unsafe { kp_conn_send(kept, b"x".as_ptr(), 1) }, KP_ERR_STALE_CONN);
    let mut len = 99;
    // SAFETY: as above.
    assert!(unsafe { kp_conn_input(kept, &mut len) }.is_null());
    assert_eq!(len, 0);
    // SAFETY: as above.
    assert!(unsafe { kp_conn_handle(kept) }.is_null());
    assert_eq!(round_trip(&mut c, b"still served"), b"still served");
    free(server);
}

#[test]
fn a_callback_that_returns_an_error_closes_only_its_connection() {
    let s = State::default();
    let h = handler(&s);
    let (server, addr) = start(&h, 2);
    let mut good = connect(addr);
    let mut bad = connect(addr);
    assert_eq!(round_trip(&mut good, b"one"), b"one");
    bad.write_all(b"fail now").unwrap();
    let mut rest = Vec::new();
    bad.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "nothing echoed for the failed callback: {rest:?}");
    wait_until("on_closed of the failed connection", || !s.closes.lock().unwrap().is_empty());
    assert_eq!(s.closes.lock().unwrap()[0], (KP_CLOSE_CALLBACK_ERROR, 7));
    assert_eq!(round_trip(&mut good, b"two"), b"two");
    free(server);
}

#[test]
fn handles_send_from_other_threads_and_fail_cleanly_once_closed() {
    let s = State::default();
    let (tx, rx): (Sender<usize>, Receiver<usize>) = channel();
    *s.handles.lock().unwrap() = Some(tx);
    let h = handler(&s);
    let (server, addr) = start(&h, 2);
    let mut c = connect(addr);
    let handle = rx.recv_timeout(WAIT).unwrap() as *mut kp_handle;
    let raw = handle as usize;
    let sender = std::thread::spawn(move || {
        let h = raw as *const kp_handle;
        for i in 0..100u32 {
            let msg = format!("from another thread {i:03}\n");
            // SAFETY: a live handle, used from this thread only meanwhile.
            assert_eq!(unsafe { kp_handle_send(h, msg.as_ptr(), msg.len()) }, KP_OK, "{}", last_error());
        }
    });
    sender.join().unwrap();
    let mut got = vec![0; 100 * "from another thread 000\n".len()];
    c.read_exact(&mut got).unwrap();
    let text = String::from_utf8(got).unwrap();
    for (i, line) in text.lines().enumerate() {
        assert_eq!(line, format!("from another thread {i:03}"), "in order");
    }
    let (mut id, mut index) = (0u64, usize::MAX);
    // SAFETY: a live handle; writable outputs.
    assert_eq!(unsafe { kp_handle_id(handle, &mut id, &mut index) }, KP_OK);
    assert!(index < 2);
    // SAFETY: a live handle.
    let clone = unsafe { kp_handle_clone(handle) };
    drop(c);
    wait_until("the close seen by the handle", || {
        // SAFETY: a live handle.
        unsafe { kp_handle_is_closed(clone) == 1 }
    });
    // SAFETY: live handles.
    unsafe {
        assert_eq!(kp_handle_send(clone, b"late".as_ptr(), 4), KP_ERR_CLOSED);
        assert_eq!(kp_handle_is_writable(clone), 0);
        assert_eq!(kp_handle_free(handle), KP_OK);
    }
    free(server);
    // A handle outlives its server: its calls fail, its free works.
    // SAFETY: a live handle.
    unsafe {
        assert!(kp_handle_send(clone, b"x".as_ptr(), 1) < 0);
        assert_eq!(kp_handle_free(clone), KP_OK);
    }
}

#[test]
#[cfg(debug_assertions)]
fn a_handle_freed_twice_is_caught_in_debug_builds() {
    let s = State::default();
    let (tx, rx) = channel();
    *s.handles.lock().unwrap() = Some(tx);
    let h = handler(&s);
    let (server, addr) = start(&h, 1);
    let _c = connect(addr);
    let handle = rx.recv_timeout(WAIT).unwrap() as *mut kp_handle;
    // SAFETY: the first free is legitimate; the second and the send after it are the misuse
    // debug builds detect (the memory is quarantined, not reused).
    unsafe {
        assert_eq!(kp_handle_free(handle), KP_OK);
        assert_eq!(kp_handle_free(handle), KP_ERR_BAD_HANDLE);
        assert!(last_error().contains("freed already"), "{}", last_error());
        assert_eq!(kp_handle_send(handle, b"x".as_ptr(), 1), KP_ERR_BAD_HANDLE);
        assert_eq!(kp_handle_free(std::ptr::null_mut()), KP_OK);
    }
    free(server);
}

#[test]
fn freeing_the_last_handle_closes_a_connection_whose_owner_asked() {
    extern "C" fn owning_connect(user: *mut c_void, conn: *mut kp_conn) -> c_int {
        // SAFETY: `conn` is this callback's.
        assert_eq!(unsafe { kp_conn_close_on_last_handle(conn) }, KP_OK);
        record_connect(user, conn)
    }
    let s = State::default();
    let (tx, rx) = channel();
    *s.handles.lock().unwrap() = Some(tx);
    let mut h = handler(&s);
    h.on_connect = Some(owning_connect);
    let (server, addr) = start(&h, 1);
    let mut c = connect(addr);
    let first = rx.recv_timeout(WAIT).unwrap() as *mut kp_handle;
    // SAFETY: live handles.
    let second = unsafe { kp_handle_clone(first) };
    // SAFETY: live handles, each freed once.
    unsafe {
        assert_eq!(kp_handle_send(first, b"bye\n".as_ptr(), 4), KP_OK);
        assert_eq!(kp_handle_free(first), KP_OK);
    }
    let mut bye = vec![0; 4];
    c.read_exact(&mut bye).unwrap();
    assert_eq!(&bye, b"bye\n");
    // One handle left: still open.
    assert_eq!(round_trip(&mut c, b"ping"), b"ping");
    // SAFETY: the last handle, freed once.
    assert_eq!(unsafe { kp_handle_free(second) }, KP_OK);
    let mut tail = Vec::new();
    c.read_to_end(&mut tail).unwrap();
    assert!(tail.is_empty());
    wait_until("on_closed", || !s.closes.lock().unwrap().is_empty());
    assert_eq!(s.closes.lock().unwrap()[0].0, KP_CLOSE_LOCAL);
    free(server);
}

#[test]
fn freeing_a_server_from_its_own_callback_is_refused() {
    let s = State::default();
    let h = handler(&s);
    let (server, addr) = start(&h, 1);
    s.server.store(server, SeqCst);
    let mut c = connect(addr);
    assert_eq!(round_trip(&mut c, b"free me"), b"free me");
    assert_eq!(*s.free_in_callback.lock().unwrap(), Some(KP_ERR_WRONG_THREAD));
    assert_eq!(round_trip(&mut c, b"still here"), b"still here");
    free(server);
}

#[test]
fn no_callback_runs_after_free_returns_and_each_thread_destroys_its_user() {
    extern "C" fn create(user: *mut c_void, _index: usize) -> *mut c_void {
        state(user).creates.fetch_add(1, SeqCst);
        let name = std::thread::current().name().unwrap_or("").to_owned();
        assert!(name.starts_with("kingpin-io"), "create runs on the IO thread, not {name:?}");
        user
    }
    extern "C" fn destroy(user: *mut c_void) {
        let s = state(user);
        touch(s);
        s.destroys.fetch_add(1, SeqCst);
    }
    let s = State::default();
    let mut h = handler(&s);
    h.create = Some(create);
    h.destroy = Some(destroy);
    let (server, addr) = start(&h, 3);
    // Busy connections while the server is freed: a client thread keeps sending.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..6)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut c = connect(addr);
                let mut buf = [0u8; 4096];
                while !stop.load(SeqCst) {
                    if c.write_all(&[1u8; 4096]).is_err() || c.read(&mut buf).map_or(true, |n| n == 0) {
                        break;
                    }
                }
            })
        })
        .collect();
    wait_until("six connections", || s.connects.load(SeqCst) == 6);
    free(server);
    s.freed.store(true, SeqCst);
    assert_eq!(s.creates.load(SeqCst), 3);
    assert_eq!(s.destroys.load(SeqCst), 3);
    assert_eq!(s.closes.lock().unwrap().len(), 6);
    stop.store(true, SeqCst);
    for t in load {
        t.join().unwrap();
    }
    // A callback that came late would have had time to show itself.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(s.callbacks_after_free.load(SeqCst), 0);
}

#[test]
fn bad_arguments_get_a_status_and_a_message() {
    let c = kp_config_new();
    let bad = CString::new("not an address").unwrap();
    // SAFETY: a live config and valid strings; NULLs are the point.
    unsafe {
        assert_eq!(kp_config_set_addr(c, bad.as_ptr()), KP_ERR_INVALID_ARGUMENT);
        assert!(last_error().contains("not an IP:PORT address"), "{}", last_error());
        assert_eq!(kp_config_set_addr(c, std::ptr::null()), KP_ERR_INVALID_ARGUMENT);
        assert_eq!(kp_config_set_threads(c, 0), KP_ERR_INVALID_ARGUMENT);
        assert_eq!(kp_config_set_water_marks(c, 10, 10), KP_ERR_INVALID_ARGUMENT);
        assert_eq!(kp_config_set_threads(std::ptr::null_mut(), 1), KP_ERR_INVALID_ARGUMENT);
        assert_eq!(kp_config_set_accept_strategy(c, 9), KP_ERR_INVALID_ARGUMENT);
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = CString::new(taken.local_addr().unwrap().to_string()).unwrap();
        assert_eq!(kp_config_set_addr(c, addr.as_ptr()), KP_OK);
        let s = State::default();
        let h = handler(&s);
        let mut server = 1usize as *mut kp_server;
        assert_eq!(kp_server_start(c, &h, &mut server), KP_ERR_IO);
        assert!(server.is_null());
        assert!(last_error().to_lowercase().contains("in use"), "{}", last_error());
        assert_eq!(kp_server_start(c, std::ptr::null(), &mut server), KP_ERR_INVALID_ARGUMENT);
        assert_eq!(kp_server_free(std::ptr::null_mut()), KP_OK);
        kp_config_free(c);
        let name = CStr::from_ptr(kp_status_name(KP_ERR_FULL)).to_str().unwrap();
        assert_eq!(name, "KP_ERR_FULL");
        let name = CStr::from_ptr(kp_close_reason_name(KP_CLOSE_CALLBACK_ERROR)).to_str().unwrap();
        assert_eq!(name, "KP_CLOSE_CALLBACK_ERROR");
    }
}

#[test]
fn timers_and_idle_timeouts_reach_the_c_callbacks() {
    extern "C" fn arm(user: *mut c_void, conn: *mut kp_conn) -> c_int {
        let mut id = 0;
        // SAFETY: `conn` is this callback's.
        unsafe {
            assert_eq!(kp_conn_set_timer(conn, 10, 42, &mut id), KP_OK);
            assert_eq!(kp_conn_set_timer(conn, 60_000, 43, &mut id), KP_OK);
            assert_eq!(kp_conn_cancel_timer(conn, id), 1);
            assert_eq!(kp_conn_cancel_timer(conn, id), 0);
        }
        record_connect(user, conn)
    }
    extern "C" fn timer(user: *mut c_void, conn: *mut kp_conn, tag: u64) -> c_int {
        state(user).timer_tags.lock().unwrap().push(tag);
        let msg = format!("tick {tag}\n");
        // SAFETY: `conn` is this callback's.
        unsafe { kp_conn_send(conn, msg.as_ptr(), msg.len()) }
    }
    let s = State::default();
    let mut h = handler(&s);
    h.on_connect = Some(arm);
    h.on_timer = Some(timer);
    let c = config(1);
    // SAFETY: a live config.
    assert_eq!(unsafe { kp_config_set_idle_timeouts_ms(c, 300, 0, 0) }, KP_OK);
    let mut server = std::ptr::null_mut();
    // SAFETY: live config and handler.
    assert_eq!(unsafe { kp_server_start(c, &h, &mut server) }, KP_OK);
    // SAFETY: copied by start.
    unsafe { kp_config_free(c) };
    // SAFETY: a live server.
    let port = unsafe { kp_server_port(server) };
    let mut conn = connect(SocketAddr::from(([127, 0, 0, 1], port)));
    let mut got = vec![0; "tick 42\n".len()];
    conn.read_exact(&mut got).unwrap();
    assert_eq!(got, b"tick 42\n");
    // Nothing read for 300 ms: a NULL on_idle closes it.
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).unwrap();
    wait_until("on_closed", || !s.closes.lock().unwrap().is_empty());
    assert_eq!(s.closes.lock().unwrap()[0], (KP_CLOSE_IDLE, KP_IDLE_READ));
    assert_eq!(*s.timer_tags.lock().unwrap(), vec![42]);
    free(server);
}

#[test]
fn a_client_connects_with_a_first_message_and_reports_what_failed() {
    extern "C" fn failed(user: *mut c_void, host: *const c_char, port: u16, tag: u64, os_error: c_int, _attempts: u32) {
        // SAFETY: NUL-terminated, valid during the callback.
        let host = unsafe { CStr::from_ptr(host) }.to_string_lossy().into_owned();
        state(user).failed_targets.lock().unwrap().push((host, port, tag, os_error));
    }
    extern "C" fn client_message(user: *mut c_void, conn: *mut kp_conn) -> c_int {
        let s = state(user);
        s.messages.fetch_add(1, SeqCst);
        // SAFETY: the client is live while its callbacks run. Waiting here would wait for
        // this very callback: refused.
        let waited = unsafe { kp_client_wait_idle(s.client.load(SeqCst), 10_000) };
        *s.free_in_callback.lock().unwrap() = Some(waited);
        // SAFETY: `conn` is this callback's.
        unsafe { kp_conn_close(conn) }
    }
    let server_state = State::default();
    let sh = handler(&server_state);
    let (server, addr) = start(&sh, 1);
    let closed_port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let s = State::default();
    let mut h = handler(&s);
    h.on_message = Some(client_message);
    h.on_connect_failed = Some(failed);
    let c = config(2);
    let mut client = std::ptr::null_mut();
    let host = CString::new("127.0.0.1").unwrap();
    // SAFETY: live config, handler, client and strings.
    unsafe {
        assert_eq!(kp_client_start(c, &h, &mut client), KP_OK, "{}", last_error());
        s.client.store(client, SeqCst);
        kp_config_free(c);
        assert_eq!(kp_client_connect(client, host.as_ptr(), addr.port(), b"hi".as_ptr(), 2, 5), KP_OK);
        assert_eq!(kp_client_connect(client, host.as_ptr(), closed_port, std::ptr::null(), 0, 6), KP_OK);
        assert_eq!(kp_client_wait_idle(client, 10_000), 1);
        assert_eq!(kp_client_free(client), KP_OK);
    }
    assert_eq!(*s.tags.lock().unwrap(), vec![5]);
    assert_eq!(s.messages.load(SeqCst), 1, "the echo of the first message");
    assert_eq!(*s.free_in_callback.lock().unwrap(), Some(KP_ERR_WRONG_THREAD));
    assert_eq!(*s.failed_targets.lock().unwrap(), vec![("127.0.0.1".to_owned(), closed_port, 6, libc::ECONNREFUSED)]);
    free(server);
}

#[test]
fn stats_are_read_while_another_thread_waits_and_after() {
    let s = State::default();
    let h = handler(&s);
    let (server, addr) = start(&h, 2);
    let raw = server as usize;
    // SAFETY: a live server; freed only after this thread is joined.
    let waiter = std::thread::spawn(move || unsafe { kp_server_wait(raw as *const kp_server) });
    let mut c = connect(addr);
    assert_eq!(round_trip(&mut c, b"counted"), b"counted");
    std::thread::sleep(Duration::from_millis(100));
    let mut stats = kp_stats::default();
    // SAFETY: a live server, writable stats.
    assert_eq!(unsafe { kp_server_stats(server, &mut stats) }, KP_OK, "{}", last_error());
    assert_eq!((stats.accepted, stats.connections, stats.bytes_in), (1, 1, 7));
    // SAFETY: a live server.
    assert_eq!(unsafe { kp_server_shutdown(server) }, KP_OK);
    assert_eq!(waiter.join().unwrap(), KP_OK);
    // SAFETY: as above.
    assert_eq!(unsafe { kp_server_stats(server, &mut stats) }, KP_OK);
    assert_eq!((stats.accepted, stats.closed, stats.connections), (1, 1, 0));
    free(server);
}

#[test]
fn threads_blocked_in_wait_return_when_another_frees_the_server() {
    let s = State::default();
    let h = handler(&s);
    let (server, addr) = start(&h, 2);
    let raw = server as usize;
    let waiters: Vec<_> = (0..8)
        // SAFETY: the server is live when each waiter enters; the free below lets them return.
        .map(|_| std::thread::spawn(move || unsafe { kp_server_wait(raw as *const kp_server) }))
        .collect();
    let mut c = connect(addr);
    assert_eq!(round_trip(&mut c, b"before the free"), b"before the free");
    std::thread::sleep(Duration::from_millis(100));
    free(server);
    for w in waiters {
        assert_eq!(w.join().unwrap(), KP_OK);
    }
}
