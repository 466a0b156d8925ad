//! Timers: loop timers and connection timers fire in order and can be cancelled, and a timer
//! that sets itself again with no delay cannot hold its thread.

mod util;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use kingpin::{Conn, EpollTPServer, IdleAction, IdleKind, IoHandler, LoopCtx, ServerConfig};
use util::{connect, read_n};

struct Nothing;
impl IoHandler for Nothing {
    type ConnState = ();
}

/// One-shot loop timers fire in deadline order (ties in the order set); a cancelled one never
/// fires.
#[test]
fn loop_timers_fire_in_order_and_cancel() {
    let server = EpollTPServer::from_fn(ServerConfig::default().threads(1), || Nothing).start().unwrap();
    let (tx, rx) = mpsc::channel::<&'static str>();
    server.loops()[0]
        .run(move |_, ctx: &mut LoopCtx<'_, Nothing>| {
            for (ms, name) in [(30, "c"), (10, "a"), (20, "b1"), (20, "b2")] {
                let tx = tx.clone();
                ctx.run_after(Duration::from_millis(ms), move |_, _| tx.send(name).unwrap());
            }
            let t = tx.clone();
            let cancelled = ctx.run_after(Duration::from_millis(15), move |_, _| t.send("cancelled").unwrap());
            assert!(ctx.cancel_timer(cancelled));
            assert!(!ctx.cancel_timer(cancelled));
        })
        .unwrap();
    let got: Vec<_> = (0..4).map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap()).collect();
    assert_eq!(got, ["a", "b1", "b2", "c"]);
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err(), "the cancelled timer never fires");
    server.shutdown();
    server.join().unwrap();
}

/// Connection timers: fire with their tag in order; cancelled ones never fire.
struct Ticker;

impl IoHandler for Ticker {
    type ConnState = ();

    fn on_connect(&mut self, conn: &mut Conn<'_>) {
        conn.set_timer(Duration::from_millis(30), 3);
        conn.set_timer(Duration::from_millis(10), 1);
        let dropped = conn.set_timer(Duration::from_millis(20), 99);
        conn.set_timer(Duration::from_millis(20), 2);
        assert!(conn.cancel_timer(dropped));
    }

    fn on_timer(&mut self, conn: &mut Conn<'_>, tag: u64) {
        conn.send(&[tag as u8]);
    }
}

#[test]
fn connection_timers_fire_in_order_with_tags() {
    let server = EpollTPServer::from_fn(ServerConfig::default().threads(1), || Ticker).start().unwrap();
    let mut s = connect(server.local_addr());
    assert_eq!(read_n(&mut s, 3), [1, 2, 3]);
}

/// A periodic timer that cancels itself after three ticks fires exactly three times.
#[test]
fn periodic_timer_cancels_itself() {
    let server = EpollTPServer::from_fn(ServerConfig::default().threads(1), || Nothing).start().unwrap();
    let (tx, rx) = mpsc::channel::<u32>();
    server.loops()[0]
        .run(move |_, ctx| {
            let mut n = 0;
            let id = std::rc::Rc::new(std::cell::Cell::new(None));
            let me = id.clone();
            let t = ctx.run_every(Duration::from_millis(2), move |_, ctx| {
                n += 1;
                tx.send(n).unwrap();
                if n == 3 {
                    assert!(ctx.cancel_timer(me.get().unwrap()));
                }
            });
            id.set(Some(t));
        })
        .unwrap();
    let got: Vec<_> = (0..3).map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap()).collect();
    assert_eq!(got, [1, 2, 3]);
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err(), "no tick after cancel");
}

/// Echoes; keeps idle connections (the heartbeat case), counting how often it was asked.
struct KeepEcho(Arc<AtomicU64>);

impl IoHandler for KeepEcho {
    type ConnState = ();

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        conn.send_input();
    }

    fn on_idle(&mut self, _conn: &mut Conn<'_>, _kind: IdleKind) -> IdleAction {
        self.0.fetch_add(1, Ordering::Relaxed);
        IdleAction::Keep
    }

    fn on_timer(&mut self, conn: &mut Conn<'_>, tag: u64) {
        self.0.fetch_add(1, Ordering::Relaxed);
        if tag == ZERO_AGAIN {
            conn.set_timer(Duration::ZERO, ZERO_AGAIN);
        }
    }

    fn on_connect(&mut self, conn: &mut Conn<'_>) {
        if conn.loop_index() == 0 && self.0.load(Ordering::Relaxed) == 0 {
            self.0.fetch_add(1, Ordering::Relaxed);
            conn.set_timer(Duration::ZERO, ZERO_AGAIN);
        }
    }
}

/// Timer tag of a connection timer that sets itself again with no delay.
const ZERO_AGAIN: u64 = 7;

/// Whether an echo on the same thread as a runaway timer comes back within `limit`.
fn echo_within(addr: std::net::SocketAddr, limit: Duration) -> bool {
    let mut s = connect(addr);
    s.set_read_timeout(Some(limit)).unwrap();
    s.write_all(b"still served?").unwrap();
    let mut got = [0u8; 13];
    s.read_exact(&mut got).is_ok() && &got == b"still served?"
}

/// Fails the test if the echo did not come back; a frozen loop would never let the server's
/// shutdown finish, so the server is then left behind instead of joined.
fn assert_served<H: IoHandler>(server: kingpin::ServerHandle<H>, served: bool) {
    if !served {
        std::mem::forget(server);
        panic!("the loop did not answer an echo within 2 s: a timer holds its thread");
    }
    server.shutdown_handle().shutdown_with_timeout(Duration::ZERO);
    server.join().unwrap();
}

/// Sets a loop timer that sets itself again with no delay, until `stop`.
fn rearm(ctx: &mut LoopCtx<'_, KeepEcho>, runs: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    ctx.run_after(Duration::ZERO, move |_, ctx| {
        runs.fetch_add(1, Ordering::Relaxed);
        if !stop.load(Ordering::Relaxed) {
            rearm(ctx, runs, stop);
        }
    });
}

/// A loop timer that re-arms itself with no delay runs once a turn, not forever within one:
/// the thread's connections are still served.
#[test]
fn a_zero_delay_loop_timer_does_not_freeze_its_thread() {
    let server =
        EpollTPServer::from_fn(ServerConfig::default().threads(1), || KeepEcho(Arc::default())).start().unwrap();
    let (runs, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let (r, s) = (runs.clone(), stop.clone());
    server.loops()[0].run(move |_, ctx| rearm(ctx, r, s)).unwrap();
    util::wait_until(Duration::from_secs(10), "the timer runs", || runs.load(Ordering::Relaxed) > 100);
    let served = echo_within(server.local_addr(), Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    assert_served(server, served);
}

/// The same for a connection timer set again from `on_timer`, and for a zero idle timeout
/// whose handler keeps the connection (a zero timeout counts as the minimum, 1 ms).
#[test]
fn zero_delay_connection_and_idle_timers_do_not_freeze_their_thread() {
    for idle in [false, true] {
        let count = Arc::new(AtomicU64::new(if idle { 1 } else { 0 }));
        let c = count.clone();
        let mut config = ServerConfig::default().threads(1);
        if idle {
            config = config.idle_timeouts(kingpin::IdleTimeouts::all(Duration::ZERO));
        }
        let server = EpollTPServer::from_fn(config, move || KeepEcho(c.clone())).start().unwrap();
        let _runaway = connect(server.local_addr());
        util::wait_until(Duration::from_secs(10), "the timer runs", || count.load(Ordering::Relaxed) > 100);
        let served = echo_within(server.local_addr(), Duration::from_secs(2));
        assert_served(server, served);
    }
}

/// A connection cancels only timers it set: not another connection's, not the loop's own idle
/// check, whatever id it is given (ids are small integers, easy to guess or forge).
#[derive(Default)]
struct Poacher {
    /// The first connection's timer, which the second one tries to cancel.
    victim: Option<kingpin::TimerId>,
}

impl IoHandler for Poacher {
    type ConnState = ();

    fn on_connect(&mut self, conn: &mut Conn<'_>) {
        let mine = conn.set_timer(Duration::from_millis(150), 7);
        match self.victim {
            None => self.victim = Some(mine),
            Some(victim) => {
                let answer =
                    [
                        u8::from(conn.cancel_timer(victim)),
                        // The ids just below this connection's own: its idle check among them.
                        u8::from((1..=4).any(|back| {
                            conn.cancel_timer(kingpin::TimerId::from_u64(mine.as_u64().saturating_sub(back)))
                        })),
                    ];
                conn.send(&answer);
                assert!(conn.cancel_timer(mine), "its own timer it may cancel");
            }
        }
    }

    fn on_timer(&mut self, conn: &mut Conn<'_>, tag: u64) {
        conn.send(&[tag as u8]);
    }
}

#[test]
fn a_connection_cancels_only_its_own_timers() {
    let config =
        ServerConfig::default().threads(1).idle_timeouts(kingpin::IdleTimeouts::read(Duration::from_millis(400)));
    let server = EpollTPServer::from_fn(config, Poacher::default).start().unwrap();
    let mut first = connect(server.local_addr());
    first.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let mut second = connect(server.local_addr());
    second.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(read_n(&mut second, 2), [0, 0], "neither the other's timer nor a loop timer was cancelled");
    assert_eq!(read_n(&mut first, 1), [7], "the first connection's timer still fired");
    // The second connection's idle check still runs: it is closed for reading nothing.
    let mut rest = Vec::new();
    assert_eq!(second.read_to_end(&mut rest).unwrap(), 0);
    server.shutdown();
    server.join().unwrap();
}
