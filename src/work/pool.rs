//! [`WorkerPool`]: a fixed set of named threads that run blocking work off the IO threads,
//! fed by a bounded queue.
//!
//! ```text
//!  IO thread ──try_send──▶ [ bounded queue ] ──▶ kingpin-worker-0 … kingpin-worker-N-1
//!      │  full: Err(Busy) at once                     │ runs the job (a panic is caught)
//!      └────────────◀── result through the loop's mailbox ◀┘
//! ```
//!
//! Threads start on demand — the first with the first job, another whenever more jobs wait
//! than workers are idle, up to the pool's size — so a pool nobody uses costs nothing.
//! Submitting never blocks: a full queue is [`Error::Busy`], a stopped pool [`Error::Stopped`]. At
//! [`WorkerPool::shutdown`] the pool takes no more jobs, the jobs still queued are *abandoned*
//! — each is told so instead of being run, so that whoever waits for it hears back — and the
//! running ones are waited for up to a deadline. Dropping the last handle of a pool without
//! shutting it down lets the workers finish what is queued and exit.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::{Condvar, Mutex, RwLock};

use crate::base::error::Error;
use crate::base::panic::panic_message;

/// How a queued job is called: to run, or to be told it never will (the pool stopped first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Run {
    /// Run the work now, on a worker.
    Now,
    /// The pool shut down before the job's turn: report that, do not run.
    Abandoned,
}

/// A queued job: called exactly once, with [`Run::Now`] or [`Run::Abandoned`].
pub(crate) type Job = Box<dyn FnOnce(Run) + Send>;

/// Counters of a [`WorkerPool`], as [`WorkerPool::stats`] reads them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Worker threads (0 until the first job starts them).
    pub threads: u64,
    /// Jobs waiting in the queue.
    pub queued: u64,
    /// Workers running a job now.
    pub busy: u64,
    /// Jobs run to the end (those that panicked included).
    pub completed: u64,
    /// Jobs that panicked (each caught; its worker lives on).
    pub panicked: u64,
    /// Jobs refused because the queue was full.
    pub rejected: u64,
    /// Jobs abandoned unrun because the pool shut down first.
    pub abandoned: u64,
}

/// A fixed set of worker threads with a bounded queue, for work that blocks: hashing files,
/// database calls, compression. Cloning it shares the pool.
///
/// From an IO thread, use it through [`crate::IoHandler::spawn_blocking`] or
/// [`crate::LoopCtx::spawn_blocking`], which bring the result back to the connection's loop. A
/// server or client owns one by default (see [`crate::ServerConfig::worker_threads`]); give
/// several the same pool with [`crate::ServerConfig::worker_pool`].
///
/// # Examples
///
/// ```
/// use std::sync::mpsc;
/// use std::time::Duration;
/// use kingpin::WorkerPool;
///
/// let pool = WorkerPool::new(2, 16);
/// let (tx, rx) = mpsc::channel();
/// pool.execute(move || tx.send(6 * 7).unwrap()).expect("the queue has room");
/// assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), 42);
/// assert!(pool.shutdown(Duration::from_secs(10)));
/// ```
#[derive(Clone)]
pub struct WorkerPool {
    handle: Arc<Handle>,
}

/// What the handles share; its drop (the last handle gone) closes the queue.
struct Handle {
    inner: Arc<Inner>,
}

impl Drop for Handle {
    /// The workers finish what is queued, then see the queue closed and exit.
    fn drop(&mut self) {
        self.inner.tx.write().take();
    }
}

struct Inner {
    /// Thread names are `{name}-{index}`.
    name: String,
    /// Most threads.
    threads: usize,
    /// The queue's sending side; `None` once the pool has shut down.
    tx: RwLock<Option<Sender<Job>>>,
    /// The queue's receiving side, cloned into each worker.
    rx: Receiver<Job>,
    /// Held while a thread is started, so that two submitters do not both add one.
    spawning: Mutex<()>,
    /// Index of the next thread.
    next_index: AtomicUsize,
    /// Workers alive, and a condition variable signalled as each exits.
    live: (Mutex<usize>, Condvar),
    /// The pool is shutting down: what is still queued is abandoned.
    closed: AtomicBool,
    running: AtomicUsize,
    completed: AtomicU64,
    panicked: AtomicU64,
    rejected: AtomicU64,
    abandoned: AtomicU64,
}

impl WorkerPool {
    /// A pool of `threads` workers (at least 1) named `kingpin-worker-N`, with room for
    /// `queue` waiting jobs (at least 1). The threads start with the first job.
    pub fn new(threads: usize, queue: usize) -> Self {
        Self::named("kingpin-worker", threads, queue)
    }

    /// Like [`WorkerPool::new`], with threads named `{name}-N`.
    pub fn named(name: &str, threads: usize, queue: usize) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(queue.max(1));
        let inner = Arc::new(Inner {
            name: name.to_owned(),
            threads: threads.max(1),
            tx: RwLock::new(Some(tx)),
            rx,
            spawning: Mutex::new(()),
            next_index: AtomicUsize::new(0),
            live: (Mutex::new(0), Condvar::new()),
            closed: AtomicBool::new(false),
            running: AtomicUsize::new(0),
            completed: AtomicU64::new(0),
            panicked: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            abandoned: AtomicU64::new(0),
        });
        WorkerPool { handle: Arc::new(Handle { inner }) }
    }

    fn inner(&self) -> &Arc<Inner> {
        &self.handle.inner
    }

    /// Runs `f` on a worker. It never blocks the caller. A panic in `f` is caught, logged and
    /// counted; the worker lives on. If the pool shuts down before its turn, `f` is dropped
    /// unrun.
    ///
    /// # Errors
    /// [`Error::Busy`] when the queue is full, [`Error::Stopped`] after
    /// [`shutdown`](Self::shutdown); `f` is dropped unrun.
    pub fn execute<F: FnOnce() + Send + 'static>(&self, f: F) -> Result<(), Error> {
        self.submit(Box::new(move |run| {
            if run == Run::Now {
                f();
            }
        }))
    }

    /// Queues `job`; it is called exactly once, on a worker, unless this returns an error
    /// (then it is dropped uncalled).
    pub(crate) fn submit(&self, job: Job) -> Result<(), Error> {
        let inner = self.inner();
        if *inner.live.0.lock() == 0 {
            // The first worker (or one after a failed start): without it the job would wait
            // for nobody, so its failure is the caller's error.
            self.add_worker()?;
        }
        let sent = match inner.tx.read().as_ref() {
            None => return Err(Error::Stopped),
            Some(tx) => tx.try_send(job),
        };
        match sent {
            Ok(()) => {
                if self.wants_worker() {
                    // Best effort: the workers there are take the job in time.
                    let _ = self.add_worker();
                }
                Ok(())
            }
            Err(TrySendError::Full(_)) => {
                inner.rejected.fetch_add(1, Ordering::Relaxed);
                Err(Error::Busy)
            }
            Err(TrySendError::Disconnected(_)) => Err(Error::Stopped),
        }
    }

    /// More jobs wait than workers are idle, and the pool may grow.
    fn wants_worker(&self) -> bool {
        let inner = self.inner();
        let live = *inner.live.0.lock();
        let idle = live.saturating_sub(inner.running.load(Ordering::Relaxed));
        live < inner.threads && inner.rx.len() > idle
    }

    /// Starts one more worker, unless the pool is at its size or shut down.
    fn add_worker(&self) -> Result<(), Error> {
        let inner = self.inner();
        let _one_at_a_time = inner.spawning.lock();
        if inner.closed.load(Ordering::Acquire) {
            return Err(Error::Stopped);
        }
        if *inner.live.0.lock() >= inner.threads {
            return Ok(());
        }
        let index = inner.next_index.fetch_add(1, Ordering::Relaxed);
        *inner.live.0.lock() += 1;
        let worker = inner.clone();
        let spawned = std::thread::Builder::new().name(format!("{}-{index}", inner.name)).spawn(move || work(&worker));
        if let Err(e) = spawned {
            *inner.live.0.lock() -= 1;
            log::error!(target: "kingpin::work", "cannot start worker {}-{index}: {e}", inner.name);
            return Err(Error::Io(e));
        }
        Ok(())
    }

    /// Counts and logs a panic that a job caught itself (to report it to its completion).
    pub(crate) fn note_panic(&self, msg: &str) {
        self.inner().panicked.fetch_add(1, Ordering::Relaxed);
        log::error!(target: "kingpin::work", "a job panicked: {msg}");
    }

    /// The pool's counters now.
    pub fn stats(&self) -> WorkerStats {
        let i = &**self.inner();
        WorkerStats {
            threads: *i.live.0.lock() as u64,
            queued: i.rx.len() as u64,
            busy: i.running.load(Ordering::Relaxed) as u64,
            completed: i.completed.load(Ordering::Relaxed),
            panicked: i.panicked.load(Ordering::Relaxed),
            rejected: i.rejected.load(Ordering::Relaxed),
            abandoned: i.abandoned.load(Ordering::Relaxed),
        }
    }

    /// Whether [`shutdown`](Self::shutdown) has begun.
    pub fn is_shut_down(&self) -> bool {
        self.inner().closed.load(Ordering::Acquire)
    }

    /// Stops the pool: no more jobs are taken, those still queued are abandoned (a job of
    /// [`crate::IoHandler::spawn_blocking`] then reports [`crate::JobError::Shutdown`]), and
    /// the running ones are waited for up to `timeout`. Returns whether every worker has
    /// ended; those still running a job past the timeout end after it, detached. Idempotent.
    pub fn shutdown(&self, timeout: Duration) -> bool {
        let deadline = crate::base::timer::after(Instant::now(), timeout);
        let inner = self.inner();
        {
            // Under the spawning lock: no worker starts after this.
            let _no_new_worker = inner.spawning.lock();
            inner.closed.store(true, Ordering::Release);
        }
        // Dropping the sender lets each worker's `recv` end once the queue is empty.
        inner.tx.write().take();
        let (live, cv) = &inner.live;
        let mut n = live.lock();
        while *n > 0 {
            if cv.wait_until(&mut n, deadline).timed_out() {
                break;
            }
        }
        *n == 0
    }
}

/// A worker: runs jobs until the queue is closed and empty; after shutdown it abandons what is
/// left instead of running it.
fn work(inner: &Inner) {
    while let Ok(job) = inner.rx.recv() {
        if inner.closed.load(Ordering::Acquire) {
            inner.abandoned.fetch_add(1, Ordering::Relaxed);
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| job(Run::Abandoned))) {
                log::error!(target: "kingpin::work", "abandoning a job panicked: {}", panic_message(&*payload));
            }
            continue;
        }
        inner.running.fetch_add(1, Ordering::Relaxed);
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| job(Run::Now))) {
            inner.panicked.fetch_add(1, Ordering::Relaxed);
            log::error!(target: "kingpin::work", "a job panicked: {}", panic_message(&*payload));
        }
        inner.running.fetch_sub(1, Ordering::Relaxed);
        inner.completed.fetch_add(1, Ordering::Relaxed);
    }
    let (live, cv) = &inner.live;
    *live.lock() -= 1;
    cv.notify_all();
}

impl fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerPool")
            .field("name", &self.inner().name)
            .field("threads", &self.inner().threads)
            .field("capacity", &self.inner().rx.capacity())
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    const WAIT: Duration = Duration::from_secs(10);

    #[test]
    fn runs_jobs_on_named_threads() {
        let pool = WorkerPool::new(2, 8);
        assert_eq!(pool.stats().threads, 0, "no thread before the first job");
        let (tx, rx) = mpsc::channel();
        for _ in 0..4 {
            let tx = tx.clone();
            pool.execute(move || tx.send(std::thread::current().name().map(str::to_owned)).unwrap()).unwrap();
        }
        for _ in 0..4 {
            let name = rx.recv_timeout(WAIT).unwrap().unwrap();
            assert!(name.starts_with("kingpin-worker-"), "{name}");
        }
        assert!((1..=2).contains(&pool.stats().threads), "started on demand, at most 2");
        assert!(pool.shutdown(WAIT));
        assert_eq!(pool.stats().threads, 0);
    }

    #[test]
    fn a_full_queue_is_busy_at_once() {
        let pool = WorkerPool::new(1, 2);
        let (hold_tx, hold_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel();
        pool.execute(move || {
            started_tx.send(()).unwrap();
            let _ = hold_rx.recv_timeout(WAIT);
        })
        .unwrap();
        started_rx.recv_timeout(WAIT).unwrap();
        pool.execute(|| {}).unwrap();
        pool.execute(|| {}).unwrap();
        let before = Instant::now();
        assert!(matches!(pool.execute(|| {}), Err(Error::Busy)));
        assert!(before.elapsed() < Duration::from_secs(1), "never waits for room");
        let s = pool.stats();
        assert_eq!((s.queued, s.busy, s.rejected), (2, 1, 1));
        hold_tx.send(()).unwrap();
        assert!(pool.shutdown(WAIT));
    }

    #[test]
    fn a_panicking_job_leaves_its_worker_alive() {
        let pool = WorkerPool::new(1, 4);
        pool.execute(|| panic!("job blew up")).unwrap();
        let (tx, rx) = mpsc::channel();
        pool.execute(move || tx.send(std::thread::current().id()).unwrap()).unwrap();
        rx.recv_timeout(WAIT).unwrap();
        assert_eq!(pool.stats().panicked, 1);
        assert_eq!(pool.stats().threads, 1);
        assert!(pool.shutdown(WAIT));
    }

    #[test]
    fn shutdown_abandons_the_queued_and_waits_for_the_running() {
        let pool = WorkerPool::new(1, 8);
        let (started_tx, started_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (ran_tx, ran_rx) = mpsc::channel();
        let ran = ran_tx.clone();
        pool.execute(move || {
            started_tx.send(()).unwrap();
            let _ = release_rx.recv_timeout(WAIT);
            ran.send("running").unwrap();
        })
        .unwrap();
        started_rx.recv_timeout(WAIT).unwrap();
        let (told_tx, told_rx) = mpsc::channel();
        for _ in 0..3 {
            let told = told_tx.clone();
            pool.submit(Box::new(move |run| told.send(run).unwrap())).unwrap();
        }
        let stopper = {
            let pool = pool.clone();
            std::thread::spawn(move || pool.shutdown(WAIT))
        };
        // Shut down while one runs: it is not cut short; the queued ones are told.
        let until = Instant::now() + WAIT;
        while !pool.is_shut_down() {
            assert!(Instant::now() < until, "shutdown began");
            std::thread::yield_now();
        }
        assert!(matches!(pool.execute(|| {}), Err(Error::Stopped)));
        release_tx.send(()).unwrap();
        assert!(stopper.join().unwrap(), "every worker ended");
        assert_eq!(ran_rx.recv_timeout(WAIT).unwrap(), "running");
        let told: Vec<Run> = told_rx.try_iter().collect();
        assert_eq!(told, vec![Run::Abandoned; 3]);
        assert_eq!(pool.stats().abandoned, 3);
    }

    #[test]
    fn shutdown_gives_up_on_a_job_past_the_timeout() {
        let pool = WorkerPool::new(1, 1);
        let (started_tx, started_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        pool.execute(move || {
            started_tx.send(()).unwrap();
            let _ = release_rx.recv_timeout(WAIT);
        })
        .unwrap();
        started_rx.recv_timeout(WAIT).unwrap();
        assert!(!pool.shutdown(Duration::from_millis(50)), "the running job outlives the timeout");
        release_tx.send(()).unwrap();
    }

    #[test]
    fn grows_while_every_worker_is_busy_up_to_its_size() {
        let pool = WorkerPool::new(3, 16);
        let (release_tx, release_rx) = crossbeam_channel::unbounded::<()>();
        let (started_tx, started_rx) = mpsc::channel();
        for _ in 0..5 {
            let (release, started) = (release_rx.clone(), started_tx.clone());
            pool.execute(move || {
                started.send(()).unwrap();
                let _ = release.recv_timeout(WAIT);
            })
            .unwrap();
        }
        for _ in 0..3 {
            started_rx.recv_timeout(WAIT).unwrap();
        }
        let s = pool.stats();
        assert_eq!((s.threads, s.busy, s.queued), (3, 3, 2), "three at work, no fourth thread");
        drop(release_tx);
        assert!(pool.shutdown(WAIT));
    }

    #[test]
    fn dropping_the_last_handle_ends_the_workers_after_the_queue() {
        let pool = WorkerPool::new(2, 8);
        let (tx, rx) = mpsc::channel();
        for i in 0..4 {
            let tx = tx.clone();
            pool.execute(move || tx.send(i).unwrap()).unwrap();
        }
        let inner = pool.inner().clone();
        drop(pool);
        let mut got: Vec<i32> = (0..4).map(|_| rx.recv_timeout(WAIT).unwrap()).collect();
        got.sort_unstable();
        assert_eq!(got, vec![0, 1, 2, 3], "what was queued still runs");
        let until = Instant::now() + WAIT;
        while *inner.live.0.lock() > 0 {
            assert!(Instant::now() < until, "the workers exit");
            std::thread::yield_now();
        }
    }
}
