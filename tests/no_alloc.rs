//! The hot path does not allocate: once warm, echoing a message costs the IO thread no heap
//! allocation. Alone in its own test binary because it installs a counting global allocator.

mod util;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use kingpin::{Conn, EpollTPServer, IoHandler, LoopCtx, ServerConfig};
use util::{connect, echo_round_trip};

/// Counts allocations made on threads that marked themselves as IO threads.
struct Counting;

static IO_ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static IS_IO_THREAD: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if IS_IO_THREAD.with(Cell::get) {
            IO_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if IS_IO_THREAD.with(Cell::get) {
            IO_ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Echo;

impl IoHandler for Echo {
    type ConnState = ();

    fn on_start(&mut self, _ctx: &mut LoopCtx<'_, Self>) {
        IS_IO_THREAD.with(|f| f.set(true));
    }

    fn on_message(&mut self, conn: &mut Conn<'_>) {
        conn.send_input();
    }
}

#[test]
fn echo_hot_path_does_not_allocate() {
    let server = EpollTPServer::from_fn(ServerConfig::default().threads(1), || Echo).start().unwrap();
    let mut conns: Vec<_> = (0..10).map(|_| connect(server.local_addr())).collect();
    let msg = [42u8; 100];
    // Warm up: buffers enter the pool, lists reach their working size.
    for _ in 0..100 {
        for c in &mut conns {
            assert_eq!(echo_round_trip(c, &msg), msg);
        }
    }
    let before = IO_ALLOCS.load(Ordering::Relaxed);
    for _ in 0..1000 {
        for c in &mut conns {
            assert_eq!(echo_round_trip(c, &msg), msg);
        }
    }
    let after = IO_ALLOCS.load(Ordering::Relaxed);
    assert_eq!(after - before, 0, "the IO thread allocated while echoing 10,000 warm messages");
    assert!(before > 0, "the counter does count IO-thread allocations");
}
