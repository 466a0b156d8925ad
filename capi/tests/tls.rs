//! TLS through the C API: a server with a certificate and key from PEM files, a client that
//! trusts their root, ALPN, and what fails — an untrusted certificate, files that are not what
//! they should be, a TLS target on a client without TLS, a peer that speaks no TLS.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use kingpin_capi::*;

/// What the callbacks of one test saw.
#[derive(Default)]
struct Seen {
    /// `kp_conn_tls` in on_connect: its result and the ALPN protocol.
    tls: Mutex<Vec<(c_int, String)>>,
    /// Bytes a client received.
    received: Mutex<Vec<u8>>,
    /// Targets that failed: tag and errno.
    failed: Mutex<Vec<(u64, c_int)>>,
}

fn seen<'a>(user: *mut c_void) -> &'a Seen {
    // SAFETY: every handler here has a `Seen` as its user, alive until its server or client
    // is freed.
    unsafe { &*(user as *const Seen) }
}

fn last_error() -> String {
    // SAFETY: always a valid NUL-terminated string.
    unsafe { CStr::from_ptr(kp_last_error_message()) }.to_string_lossy().into_owned()
}

extern "C" fn note_tls(user: *mut c_void, conn: *mut kp_conn) -> c_int {
    let mut alpn = [0 as c_char; 32];
    // SAFETY: `conn` is this callback's; the buffer is 32 bytes.
    let is_tls = unsafe { kp_conn_tls(conn, alpn.as_mut_ptr(), alpn.len()) };
    // SAFETY: NUL-terminated by kp_conn_tls.
    let alpn = unsafe { CStr::from_ptr(alpn.as_ptr()) }.to_string_lossy().into_owned();
    seen(user).tls.lock().unwrap().push((is_tls, alpn));
    KP_OK
}

extern "C" fn echo(_user: *mut c_void, conn: *mut kp_conn) -> c_int {
    // SAFETY: `conn` is this callback's.
    unsafe { kp_conn_send_input(conn) }
}

extern "C" fn keep_and_close(user: *mut c_void, conn: *mut kp_conn) -> c_int {
    let mut len = 0;
    // SAFETY: `conn` is this callback's; the input is `len` bytes, valid in this callback.
    let data = unsafe { kp_conn_input(conn, &mut len) };
    // SAFETY: as above.
    let bytes = unsafe { std::slice::from_raw_parts(data, len) };
    let mut received = seen(user).received.lock().unwrap();
    received.extend_from_slice(bytes);
    let done = received.len() >= "hello over TLS".len();
    // SAFETY: `conn` is this callback's.
    unsafe {
        kp_conn_consume(conn, len);
        if done {
            kp_conn_close(conn);
        }
    }
    KP_OK
}

extern "C" fn failed(user: *mut c_void, _host: *const c_char, _port: u16, tag: u64, os_error: c_int, _attempts: u32) {
    seen(user).failed.lock().unwrap().push((tag, os_error));
}

fn handler(seen: &Seen, on_message: kp_conn_fn) -> kp_handler {
    kp_handler {
        user: seen as *const Seen as *mut c_void,
        create: None,
        destroy: None,
        on_connect: Some(note_tls),
        on_message,
        on_write_complete: None,
        on_passively_closed: None,
        on_closed: None,
        on_timer: None,
        on_idle: None,
        on_high_water: None,
        on_low_water: None,
        on_connect_failed: Some(failed),
        on_loop: None,
    }
}

/// A fresh self-signed certificate for localhost and 127.0.0.1, written as cert.pem and
/// key.pem into `dir`.
fn certificate(dir: &Path, prefix: &str) -> (CString, CString) {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let rcgen::CertifiedKey { cert, signing_key } = rcgen::generate_simple_self_signed(names).unwrap();
    let (cert_path, key_path) = (dir.join(format!("{prefix}cert.pem")), dir.join(format!("{prefix}key.pem")));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, signing_key.serialize_pem()).unwrap();
    let c = |p: &Path| CString::new(p.to_str().unwrap()).unwrap();
    (c(&cert_path), c(&key_path))
}

fn stats(server: *const kp_server) -> kp_stats {
    let mut s = kp_stats::default();
    // SAFETY: a live server, writable stats.
    assert_eq!(unsafe { kp_server_stats(server, &mut s) }, KP_OK);
    s
}

#[test]
fn a_tls_server_and_client_echo_and_refuse_what_they_should() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path(), "");
    let (other_cert, _) = certificate(dir.path(), "other-");
    let alpn = CString::new("kp-echo, http/1.1").unwrap();

    let server_seen = Seen::default();
    let sh = handler(&server_seen, Some(echo));
    let c = kp_config_new();
    let mut server = std::ptr::null_mut();
    // SAFETY: live config and handler, valid strings.
    unsafe {
        assert_eq!(kp_config_set_threads(c, 2), KP_OK);
        assert_eq!(kp_config_set_tls_server(c, cert.as_ptr(), key.as_ptr(), alpn.as_ptr()), KP_OK, "{}", last_error());
        assert_eq!(kp_server_start(c, &sh, &mut server), KP_OK, "{}", last_error());
        kp_config_free(c);
    }
    // SAFETY: a live server.
    let port = unsafe { kp_server_port(server) };

    // A peer that speaks no TLS is closed without reaching the handler; others are served.
    let mut plain = TcpStream::connect(("127.0.0.1", port)).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    plain.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut rest = Vec::new();
    let _ = plain.read_to_end(&mut rest);

    // A client trusting the server's certificate, and one trusting another.
    let run_client = |ca: &CString, tag: u64| -> Seen {
        let client_seen = Seen::default();
        let ch = handler(&client_seen, Some(keep_and_close));
        let c = kp_config_new();
        let mut client = std::ptr::null_mut();
        let host = CString::new("127.0.0.1").unwrap();
        let name = CString::new("localhost").unwrap();
        let hello = b"hello over TLS";
        // SAFETY: live config, handler and client; valid strings and bytes.
        unsafe {
            assert_eq!(kp_config_set_threads(c, 1), KP_OK);
            assert_eq!(kp_config_set_tls_client(c, ca.as_ptr(), alpn.as_ptr()), KP_OK, "{}", last_error());
            assert_eq!(kp_client_start(c, &ch, &mut client), KP_OK, "{}", last_error());
            kp_config_free(c);
            let status =
                kp_client_connect_tls(client, host.as_ptr(), port, name.as_ptr(), hello.as_ptr(), hello.len(), tag);
            assert_eq!(status, KP_OK, "{}", last_error());
            assert_eq!(kp_client_wait_idle(client, 10_000), 1);
            assert_eq!(kp_client_free(client), KP_OK);
        }
        client_seen
    };
    let trusted = run_client(&cert, 1);
    assert_eq!(*trusted.received.lock().unwrap(), b"hello over TLS");
    assert_eq!(*trusted.tls.lock().unwrap(), vec![(1, "kp-echo".to_string())], "TLS, ALPN agreed");
    assert!(trusted.failed.lock().unwrap().is_empty());

    let untrusted = run_client(&other_cert, 2);
    assert!(untrusted.received.lock().unwrap().is_empty());
    assert!(untrusted.tls.lock().unwrap().is_empty(), "no on_connect");
    assert_eq!(*untrusted.failed.lock().unwrap(), vec![(2, libc::EPROTO)]);

    // The server sees the untrusting client's alert after that client has given up.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while stats(server).connections > 0 {
        assert!(std::time::Instant::now() < deadline, "connections left open: {:?}", stats(server));
        std::thread::sleep(Duration::from_millis(5));
    }
    let s = stats(server);
    assert_eq!(s.tls_handshakes, 1, "{s:?}");
    assert_eq!(s.tls_handshake_failures, 2, "the plain peer and the untrusting client: {s:?}");
    assert_eq!(s.accepted, 3);
    assert_eq!(*server_seen.tls.lock().unwrap(), vec![(1, "kp-echo".to_string())], "only the good client met");
    // SAFETY: a live server, not used after.
    assert_eq!(unsafe { kp_server_free(server) }, KP_OK);
}

#[test]
fn tls_files_and_settings_that_are_wrong_are_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path(), "");
    let (_, other_key) = certificate(dir.path(), "other-");
    let missing = CString::new(dir.path().join("missing.pem").to_str().unwrap()).unwrap();
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let not_pem = CString::new(not_pem.to_str().unwrap()).unwrap();
    let c = kp_config_new();
    // SAFETY: a live config and valid strings; the NULLs are the point.
    unsafe {
        assert_eq!(kp_config_set_tls_server(c, missing.as_ptr(), key.as_ptr(), std::ptr::null()), KP_ERR_IO);
        assert!(last_error().contains("cannot read"), "{}", last_error());
        assert_eq!(
            kp_config_set_tls_server(c, not_pem.as_ptr(), key.as_ptr(), std::ptr::null()),
            KP_ERR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("no certificate"), "{}", last_error());
        assert_eq!(
            kp_config_set_tls_server(c, cert.as_ptr(), not_pem.as_ptr(), std::ptr::null()),
            KP_ERR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("no private key"), "{}", last_error());
        assert_eq!(
            kp_config_set_tls_server(c, cert.as_ptr(), other_key.as_ptr(), std::ptr::null()),
            KP_ERR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("do not go together"), "{}", last_error());
        assert_eq!(
            kp_config_set_tls_server(c, std::ptr::null(), key.as_ptr(), std::ptr::null()),
            KP_ERR_INVALID_ARGUMENT
        );
        assert_eq!(kp_config_set_tls_client(c, not_pem.as_ptr(), std::ptr::null()), KP_ERR_INVALID_ARGUMENT);
        // A client started without TLS refuses a TLS target at once.
        let seen = Seen::default();
        let h = handler(&seen, None);
        let mut client = std::ptr::null_mut();
        assert_eq!(kp_client_start(c, &h, &mut client), KP_OK);
        let host = CString::new("127.0.0.1").unwrap();
        assert_eq!(
            kp_client_connect_tls(client, host.as_ptr(), 1, std::ptr::null(), std::ptr::null(), 0, 0),
            KP_ERR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("kp_config_set_tls_client"), "{}", last_error());
        assert_eq!(kp_client_free(client), KP_OK);
        kp_config_free(c);
    }
}
