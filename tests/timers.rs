//! Timers: loop timers and connection timers fire in order and can be cancelled.

mod util;

use std::sync::mpsc;
use std::time::Duration;

use kingpin::{Conn, EpollTPServer, IoHandler, LoopCtx, ServerConfig};
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
