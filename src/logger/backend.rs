//! The backend thread: swaps the producers' buffers out and writes them to the sink.
//!
//! One round: wait (timer, half-full buffer, flush or shutdown), lock the sink, then for every
//! producer swap its buffer with the backend's empty spare under the producer's lock, and
//! write the full one with only the sink locked. After the round the sink is flushed, the
//! producers of exited threads are forgotten, and the flush requests seen at the start of the
//! round are marked complete. On shutdown the last round also closes every producer, so that
//! later lines are written synchronously, in order after the buffered ones.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use log::Level;

use super::line::{self, Clock};
use super::shared::Shared;
use super::sink::Sink;
use super::staging::Producer;

/// The backend's own state between rounds.
struct Backend {
    /// An empty buffer handed to the next producer in exchange for its full one.
    spare: Vec<u8>,
    /// The backend's own lines (dropped counts, sink recovery).
    notes: Vec<u8>,
    /// Timestamp cache for `notes`.
    clock: Clock,
    /// Thread field of the backend's lines.
    thread: Box<[u8]>,
    /// The producers of the current round.
    round: Vec<Arc<Producer>>,
    /// Errors and lost bytes of the current run of sink failures.
    failing: Option<(u64, u64)>,
}

/// Body of the backend thread.
pub(super) fn run(shared: Arc<Shared>) {
    let name = std::thread::current().name().map(str::to_owned);
    let mut b = Backend {
        spare: Vec::new(),
        notes: Vec::new(),
        clock: Clock::new(),
        thread: line::thread_field(crate::sys::gettid(), name.as_deref()),
        round: Vec::new(),
        failing: None,
    };
    loop {
        let (stopping, flush_req) = wait_for_work(&shared);
        let mut sink = shared.sink.lock();
        b.round.clear();
        {
            let mut r = shared.registry.lock();
            r.closed |= stopping;
            b.round.extend(r.producers.iter().cloned());
        }
        b.round.push(shared.orphan.clone());
        let mut exited = Vec::new();
        for p in std::mem::take(&mut b.round) {
            let dead = p.dead.load(Ordering::Acquire);
            b.drain(&shared, &p, &mut sink, stopping);
            if dead {
                exited.push(p);
            }
        }
        if sink.flush().is_err() {
            shared.sink_error();
        }
        if !exited.is_empty() {
            shared.registry.lock().producers.retain(|p| !exited.iter().any(|e| Arc::ptr_eq(p, e)));
        }
        if stopping {
            shared.stopped.store(true, Ordering::Release);
        }
        drop(sink);
        let mut d = shared.done.lock();
        d.flushed = d.flushed.max(flush_req);
        d.stopped = stopping;
        shared.done_cv.notify_all();
        if stopping {
            return;
        }
    }
}

/// Sleeps until a round is due; returns whether to stop and the flush request to complete.
fn wait_for_work(shared: &Shared) -> (bool, u64) {
    let mut w = shared.wake.lock();
    if !w.pending && !w.stopping {
        shared.wake_cv.wait_for(&mut w, shared.interval);
    }
    w.pending = false;
    (w.stopping, w.flush_req)
}

impl Backend {
    /// Takes `p`'s buffer (closing `p` when `close`) and writes it, then any dropped count.
    fn drain(&mut self, shared: &Shared, p: &Producer, sink: &mut Sink, close: bool) {
        let dropped = {
            let mut st = p.state.lock();
            if !st.buf.is_empty() {
                std::mem::swap(&mut st.buf, &mut self.spare);
            }
            if close {
                st.closed = true;
                st.buf = Vec::new(); // the thread may keep its registration: free the memory
            }
            std::mem::take(&mut st.dropped)
        };
        p.space.notify_all();
        if !self.spare.is_empty() {
            let chunk = std::mem::take(&mut self.spare);
            self.write(shared, sink, &chunk);
            self.spare = chunk;
            self.spare.clear();
        }
        if dropped > 0 {
            shared.dropped.fetch_add(dropped, Ordering::Relaxed);
            let who = String::from_utf8_lossy(&p.thread);
            let msg = format!("dropped {dropped} lines from {}(backend behind)", who);
            self.note(shared, sink, &msg);
        }
    }

    /// Writes one of the backend's own WARN lines.
    fn note(&mut self, shared: &Shared, sink: &mut Sink, msg: &str) {
        self.format_note(msg);
        let notes = std::mem::take(&mut self.notes);
        self.write(shared, sink, &notes);
        self.notes = notes;
    }

    /// Formats one of the backend's own WARN lines into `notes`.
    fn format_note(&mut self, msg: &str) {
        self.notes.clear();
        let args = format_args!("{msg}");
        let (now, target) = (SystemTime::now(), "kingpin::logger");
        line::write_line(&mut self.notes, &mut self.clock, now, Level::Warn, &self.thread, target, &args);
    }

    /// Writes `bytes`; after a run of failures, first a line saying how much was lost.
    fn write(&mut self, shared: &Shared, sink: &mut Sink, bytes: &[u8]) {
        if let Some((errors, lost)) = self.failing {
            self.format_note(&format!("sink failed {errors} times; {lost} bytes of log lines lost"));
            let notes = std::mem::take(&mut self.notes);
            if self.write_raw(shared, sink, &notes) {
                self.failing = None;
            }
            self.notes = notes;
        }
        self.write_raw(shared, sink, bytes);
    }

    /// Writes `bytes`, counting a failure (and noting the first of a run on stderr).
    fn write_raw(&mut self, shared: &Shared, sink: &mut Sink, bytes: &[u8]) -> bool {
        let Err(e) = sink.write_all(bytes) else {
            return true;
        };
        shared.sink_error();
        let (errors, lost) = self.failing.get_or_insert((0, 0));
        if *errors == 0 && !sink.is_stderr() {
            let _ = writeln!(std::io::stderr(), "kingpin::logger: the log sink failed: {e}; lines are lost");
        }
        *errors += 1;
        *lost += bytes.len() as u64;
        false
    }
}
