//! Integration tests of `run_with_timeout` and the cancellable variants.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use kingpin::{run_cancellable, run_cancellable_with, run_with_timeout, CancelToken, ContextError};

const BOUND: Duration = Duration::from_secs(30);

#[test]
fn value_before_the_deadline() {
    let v = run_with_timeout(BOUND, || "done".to_string()).unwrap();
    assert_eq!(v, "done");
    assert!(!run_cancellable(BOUND, |t| t.is_cancelled()).unwrap());
}

#[test]
fn timeout_after_the_deadline_and_the_function_runs_on() {
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel();
    let start = Instant::now();
    let r = run_with_timeout(Duration::from_millis(50), move || {
        let _ = release_rx.recv_timeout(BOUND);
        done_tx.send(()).unwrap();
        7
    });
    assert!(matches!(r, Err(ContextError::TimedOut(d)) if d == Duration::from_millis(50)));
    assert!(start.elapsed() < BOUND);
    release_tx.send(()).unwrap();
    done_rx.recv_timeout(BOUND).expect("the detached function finishes on its own");
}

#[test]
fn the_token_is_cancelled_at_the_deadline() {
    let (tx, rx) = mpsc::channel();
    let r = run_cancellable(Duration::from_millis(50), move |token| {
        let cancelled = token.sleep(BOUND);
        tx.send(cancelled).unwrap();
    });
    assert!(matches!(r, Err(ContextError::TimedOut(_))));
    assert!(rx.recv_timeout(BOUND).unwrap(), "the function saw the cancellation");
}

#[test]
fn the_caller_may_cancel_early() {
    let token = CancelToken::new();
    let stopped = Arc::new(AtomicBool::new(false));
    let (s, t) = (stopped.clone(), token.clone());
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        t.cancel();
    });
    let r = run_cancellable_with(token, BOUND, move |token| {
        let mut steps = 0u64;
        while !token.sleep(Duration::from_millis(1)) {
            steps += 1;
        }
        s.store(true, Ordering::SeqCst);
        steps
    });
    canceller.join().unwrap();
    assert!(r.is_ok());
    assert!(stopped.load(Ordering::SeqCst));
}

#[test]
fn a_panic_is_an_error_not_a_hang() {
    let r = run_with_timeout(BOUND, || -> u32 { panic!("bad input {}", 3) });
    match r {
        Err(ContextError::Panicked(msg)) => assert_eq!(msg, "bad input 3"),
        other => panic!("unexpected {other:?}"),
    }
    let r = run_cancellable(BOUND, |_| -> u32 { std::panic::panic_any(5u8) });
    assert!(matches!(r, Err(ContextError::Panicked(m)) if m == "non-string panic payload"));
}

#[test]
fn stuck_functions_do_not_starve_later_calls_and_nested_calls_get_a_worker() {
    // Eight functions that outlive their caller's deadline hold eight workers...
    let release = Arc::new(AtomicBool::new(false));
    for _ in 0..8 {
        let r = release.clone();
        let stuck = run_with_timeout(Duration::from_millis(10), move || {
            while !r.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        assert!(matches!(stuck, Err(ContextError::TimedOut(_))));
    }
    // ...and later calls still get one (the pool grows), as do calls made from inside a call.
    let outer: Vec<_> = (0..8)
        .map(|i| std::thread::spawn(move || run_with_timeout(BOUND, move || run_with_timeout(BOUND, move || i * 2))))
        .collect();
    for (i, t) in outer.into_iter().enumerate() {
        assert_eq!(t.join().unwrap().unwrap().unwrap(), i * 2);
    }
    assert_eq!(kingpin::context::resolve("127.0.0.1:80", Duration::from_millis(1)).unwrap()[0].port(), 80);
    release.store(true, Ordering::SeqCst);
}
