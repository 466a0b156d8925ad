//! Logging from C: the async logger hands whole lines to a C callback on its own thread, never
//! on the thread that logs, and never after `kp_log_shutdown`. (Its own test binary: a process
//! installs one logger.)

use std::ffi::{c_char, c_void, CString};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kingpin_capi::*;

/// The lines the callback got, with the name of the thread that ran it.
static LINES: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

extern "C" fn collect(user: *mut c_void, line: *const c_char, len: usize) {
    assert_eq!(user as usize, 0x5eed, "the user pointer given to kp_log_init");
    // SAFETY: the logger passes `len` readable bytes.
    let bytes = unsafe { std::slice::from_raw_parts(line.cast::<u8>(), len) };
    let thread = std::thread::current().name().unwrap_or("?").to_owned();
    LINES.lock().unwrap().push((String::from_utf8_lossy(bytes).into_owned(), thread));
}

#[test]
fn lines_reach_the_c_callback_on_the_logger_thread_until_shutdown() {
    // SAFETY: a valid callback and levels; NULL path.
    unsafe {
        assert_eq!(kp_log_init(KP_LOG_INFO, std::ptr::null(), Some(collect), 0x5eed as *mut c_void), KP_OK);
        assert_eq!(kp_log_init(KP_LOG_INFO, std::ptr::null(), None, std::ptr::null_mut()), KP_ERR_ALREADY);
        let hello = CString::new("hello from C").unwrap();
        let filtered = CString::new("too detailed").unwrap();
        assert_eq!(kp_log(KP_LOG_WARN, hello.as_ptr()), KP_OK);
        assert_eq!(kp_log(KP_LOG_DEBUG, filtered.as_ptr()), KP_OK);
        assert_eq!(kp_log(42, hello.as_ptr()), KP_ERR_INVALID_ARGUMENT);
        // Not UTF-8 (Latin-1 "café"): kept, the odd byte replaced.
        let latin1 = CString::new(b"caf\xe9 au lait".to_vec()).unwrap();
        assert_eq!(kp_log(KP_LOG_WARN, latin1.as_ptr()), KP_OK);
    }
    let end = Instant::now() + Duration::from_secs(10);
    while !LINES.lock().unwrap().iter().any(|(l, _)| l.contains("au lait")) {
        assert!(Instant::now() < end, "the line never reached the callback");
        std::thread::sleep(Duration::from_millis(10));
    }
    {
        let lines = LINES.lock().unwrap();
        let (line, thread) = lines.iter().find(|(l, _)| l.contains("hello from C")).unwrap();
        assert!(line.contains("WARN") && line.contains("kingpin::app"), "{line}");
        let me = std::thread::current().name().unwrap_or("").to_owned();
        assert_ne!(*thread, me, "the callback runs on the logger's thread");
        assert!(!lines.iter().any(|(l, _)| l.contains("too detailed")));
        assert!(lines.iter().any(|(l, _)| l.contains("caf\u{fffd} au lait")), "{lines:?}");
    }
    // Threads keep logging while the logger shuts down: whatever reaches the callback does so
    // on the logger's thread, and nothing after kp_log_shutdown has returned.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spammers: Vec<_> = (0..2)
        .map(|i| {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(format!("spammer-{i}"))
                .spawn(move || {
                    let line = CString::new(format!("spam from {i}")).unwrap();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        // SAFETY: a valid string.
                        unsafe { kp_log(KP_LOG_WARN, line.as_ptr()) };
                    }
                })
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(kp_log_shutdown(), KP_OK);
    let at_return = LINES.lock().unwrap().len();
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for s in spammers {
        s.join().unwrap();
    }
    assert_eq!(LINES.lock().unwrap().len(), at_return, "no callback after kp_log_shutdown returned");
    let threads: std::collections::BTreeSet<String> = LINES.lock().unwrap().iter().map(|(_, t)| t.clone()).collect();
    assert_eq!(threads.into_iter().collect::<Vec<_>>(), ["kingpin-logger"], "only the logger's thread calls out");
    let before = LINES.lock().unwrap().len();
    let after = CString::new("after shutdown").unwrap();
    // SAFETY: a valid string.
    assert_eq!(unsafe { kp_log(KP_LOG_ERROR, after.as_ptr()) }, KP_OK);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(LINES.lock().unwrap().len(), before, "no callback after kp_log_shutdown");
    assert_eq!(kp_log_shutdown(), KP_OK);
}
