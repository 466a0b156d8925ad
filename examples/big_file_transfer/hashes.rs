//! The server's checksums: a cache of them, and the files being hashed, each computed once
//! for every request that waits for it, whichever IO thread the request came in on.
//!
//! ```text
//!  request ──▶ Hashes::request ── cached ──────────────────────────────▶ Ready(sum)
//!                  │ a job for this file already: join it ─────────────▶ Waiting(ticket)
//!                  └ none: `start(HashJob)` queues one (the server: on kingpin's worker
//!                    pool, with spawn_blocking); the pool is full ─────▶ Refused("server busy")
//!  worker:           HashJob::run hashes the file, caches the sum
//!  starter's loop:   Hashes::finish(job) hands back the waiters, to be told
//! ```
//!
//! This module runs no thread and knows no loop: the caller queues the job and tells the
//! waiters (`W`, whatever reaches a request: the server keeps a loop handle and a connection
//! id). Dropping a [`Ticket`] withdraws its request; when the last one goes — every request
//! for the file left — the job is cancelled: a queued job ends at its turn without reading, a
//! running one within one [`crate::checksum::HASH_CHUNK`].

use std::collections::HashMap;
use std::fs::File;
use std::sync::Arc;
use std::time::Instant;

use kingpin::{CancelToken, WorkerStats};
use parking_lot::Mutex;

use crate::checksum::{hash_file_range, FileKey};

/// Beyond this many cached checksums the cache starts over (a bound, not a policy).
const MAX_CACHED: usize = 4096;

/// Checksums known and being computed, shared by the IO threads (any thread may call it).
pub struct Hashes<W> {
    state: Mutex<State<W>>,
}

struct State<W> {
    done: HashMap<FileKey, u64>,
    /// Queued and running jobs; a cancelled job leaves at once, even before its worker notices.
    jobs: HashMap<FileKey, Job<W>>,
    next_id: u64,
    counts: Counts,
}

/// This module's own counters (the pool's are in [`WorkerStats`]).
#[derive(Clone, Copy, Default)]
struct Counts {
    running: usize,
    started: u64,
    hashed: u64,
    failed: u64,
    cancelled: u64,
    refused: u64,
}

/// A file in progress and the requests waiting for it.
struct Job<W> {
    id: u64,
    /// The requested path, for the log.
    name: String,
    waiters: Vec<(u64, W)>,
    /// Fired when the last waiter leaves.
    nobody_waits: CancelToken,
}

/// Names one job (a file may get a new job after its last one was cancelled).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobId {
    key: FileKey,
    n: u64,
}

/// The answer to [`Hashes::request`].
pub enum Lookup<W> {
    /// The checksum was cached.
    Ready(u64),
    /// The request waits for a job (joined, or just queued); the starter's completion calls
    /// [`Hashes::finish`], which hands the waiter back. Dropping the ticket withdraws it.
    Waiting(Ticket<W>),
    /// The job could not be queued: the reason, for the client.
    Refused(String),
}

/// A file to hash, handed to the `start` of [`Hashes::request`] to run on a worker.
pub struct HashJob<W> {
    hashes: Arc<Hashes<W>>,
    id: JobId,
    name: String,
    nobody_waits: CancelToken,
}

/// What a [`HashJob`] came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hashed {
    /// The file's checksum (also cached).
    Sum(u64),
    /// The file could not be read to the end: the reason, for the client.
    Failed(String),
    /// Stopped, or never started, because no request waited for it any more.
    Cancelled,
}

/// What the hashing did and is doing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HashStats {
    /// Worker threads (0 until the first file is hashed; from the pool).
    pub threads: usize,
    /// Files being hashed now.
    pub running: usize,
    /// Jobs waiting for a worker (from the pool; a cancelled job waits until its turn, when it
    /// ends without reading).
    pub queued: usize,
    /// Requests waiting for a checksum.
    pub waiting: usize,
    /// Files a worker started hashing.
    pub started: u64,
    /// Files hashed to the end.
    pub hashed: u64,
    /// Files that could not be read to the end.
    pub failed: u64,
    /// Jobs cancelled (queued or running) because no request waited for them any more.
    pub cancelled: u64,
    /// Requests refused because the worker pool's queue was full.
    pub refused: u64,
    /// Checksums cached.
    pub cached: usize,
}

/// A request's place among a job's waiters; dropping it withdraws the request, and cancels the
/// job when it was the last.
pub struct Ticket<W> {
    hashes: Arc<Hashes<W>>,
    job: JobId,
    waiter: u64,
}

impl<W> Hashes<W> {
    /// No checksum known, no job.
    pub fn new() -> Arc<Self> {
        let state = State { done: HashMap::new(), jobs: HashMap::new(), next_id: 0, counts: Counts::default() };
        Arc::new(Hashes { state: Mutex::new(state) })
    }

    /// The checksum of the file version `key` if cached; else adds `waiter` to the job for it,
    /// calling `start` with a new [`HashJob`] when there is none. `start` queues the job and
    /// must not block: it runs under this table's lock, so that nobody joins a job that then
    /// fails to be queued. `name` is for the log.
    ///
    /// Any thread; it never reads the file.
    pub fn request<F>(self: &Arc<Self>, key: FileKey, name: &str, waiter: W, start: F) -> Lookup<W>
    where
        F: FnOnce(HashJob<W>) -> Result<(), kingpin::Error>,
    {
        let mut st = self.state.lock();
        if let Some(&sum) = st.done.get(&key) {
            return Lookup::Ready(sum);
        }
        let waiter_id = st.next_id;
        st.next_id += 1;
        if let Some(job) = st.jobs.get_mut(&key) {
            job.waiters.push((waiter_id, waiter));
            let job = JobId { key, n: job.id };
            return Lookup::Waiting(Ticket { hashes: self.clone(), job, waiter: waiter_id });
        }
        let job = JobId { key, n: st.next_id };
        st.next_id += 1;
        let nobody_waits = CancelToken::new();
        let work = HashJob { hashes: self.clone(), id: job, name: name.to_owned(), nobody_waits: nobody_waits.clone() };
        match start(work) {
            Ok(()) => {}
            Err(kingpin::Error::Busy) => {
                st.counts.refused += 1;
                return Lookup::Refused("server busy: too many files are being hashed; try again later".into());
            }
            Err(kingpin::Error::Stopped) => return Lookup::Refused("server shutting down".into()),
            Err(e) => return Lookup::Refused(format!("cannot hash {name}: {e}")),
        }
        let waiters = vec![(waiter_id, waiter)];
        st.jobs.insert(key, Job { id: job.n, name: name.to_owned(), waiters, nobody_waits });
        Lookup::Waiting(Ticket { hashes: self.clone(), job, waiter: waiter_id })
    }

    /// Ends `job` (its outcome came back, or never will): the requests that still wait for it,
    /// to be told. Empty if it was cancelled meanwhile. Any thread.
    pub fn finish(&self, job: JobId) -> Vec<W> {
        let mut st = self.state.lock();
        if st.jobs.get(&job.key).is_some_and(|j| j.id == job.n) {
            let j = st.jobs.remove(&job.key).expect("just found");
            return j.waiters.into_iter().map(|(_, w)| w).collect();
        }
        Vec::new()
    }

    /// The counters, with the worker pool's (`workers`).
    pub fn stats(&self, workers: WorkerStats) -> HashStats {
        let st = self.state.lock();
        let c = st.counts;
        HashStats {
            threads: workers.threads as usize,
            running: c.running,
            queued: workers.queued as usize,
            waiting: st.jobs.values().map(|j| j.waiters.len()).sum(),
            started: c.started,
            hashed: c.hashed,
            failed: c.failed,
            cancelled: c.cancelled,
            refused: c.refused,
            cached: st.done.len(),
        }
    }
}

impl<W> HashJob<W> {
    /// The job, for [`Hashes::finish`].
    pub fn id(&self) -> JobId {
        self.id
    }

    /// Hashes `file` (the version the job was requested for) on this thread, a worker's, and
    /// caches the sum. `started_for` is the worker job's token: it fires when the connection
    /// that started the job closes. That alone is no reason to stop, as other requests may
    /// wait for the same file; hashing stops once no request waits any more either.
    pub fn run(self, file: &File, started_for: &CancelToken) -> Hashed {
        let HashJob { hashes, id, name, nobody_waits } = self;
        {
            let mut st = hashes.state.lock();
            if let Some(&sum) = st.done.get(&id.key) {
                return Hashed::Sum(sum); // an earlier job for the file, cancelled late, finished
            }
            if nobody_waits.is_cancelled() {
                return Hashed::Cancelled; // every request left while this one was queued
            }
            st.counts.running += 1;
            st.counts.started += 1;
        }
        let began = Instant::now();
        let result = hash_file_range(file, id.key.size, || started_for.is_cancelled() && nobody_waits.is_cancelled());
        let mut st = hashes.state.lock();
        st.counts.running -= 1;
        let hashed = match result {
            Ok(None) => return Hashed::Cancelled, // counted by the ticket that cancelled it
            Ok(Some(sum)) => {
                st.counts.hashed += 1;
                if st.done.len() >= MAX_CACHED {
                    st.done.clear();
                }
                st.done.insert(id.key, sum);
                Hashed::Sum(sum)
            }
            Err(e) => {
                st.counts.failed += 1;
                Hashed::Failed(format!("cannot hash {name}: {}", crate::os_error::describe(&e)))
            }
        };
        let n = st.counts.hashed;
        drop(st);
        log::info!(
            "hashed {name} ({} bytes) in {:.2?}: {hashed:x?} ({n} files hashed so far)",
            id.key.size,
            began.elapsed()
        );
        hashed
    }
}

impl<W> Drop for Ticket<W> {
    fn drop(&mut self) {
        let mut st = self.hashes.state.lock();
        let Some(job) = st.jobs.get_mut(&self.job.key).filter(|j| j.id == self.job.n) else {
            return; // the job finished (or was cancelled) already
        };
        let Some(at) = job.waiters.iter().position(|(id, _)| *id == self.waiter) else { return };
        let waiter = job.waiters.swap_remove(at);
        if !job.waiters.is_empty() {
            drop(st);
            drop(waiter);
            return;
        }
        let job = st.jobs.remove(&self.job.key).expect("just found");
        job.nobody_waits.cancel();
        st.counts.cancelled += 1;
        drop(st);
        log::info!("hashing {} cancelled: no request waits for it any more", job.name);
        drop((waiter, job));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::mpsc;
    use std::time::Duration;

    fn file_with(data: &[u8]) -> (Arc<File>, FileKey) {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(data).unwrap();
        let key = FileKey::new(&f.metadata().unwrap());
        (Arc::new(f), key)
    }

    /// A `start` that runs the job on a thread of its own and sends its outcome on `tx`.
    fn on_a_thread(
        file: &Arc<File>,
        tx: &mpsc::Sender<(JobId, Hashed)>,
    ) -> impl FnOnce(HashJob<u32>) -> Result<(), kingpin::Error> {
        let (file, tx) = (file.clone(), tx.clone());
        move |job| {
            let id = job.id();
            std::thread::spawn(move || tx.send((id, job.run(&file, &CancelToken::new()))).unwrap());
            Ok(())
        }
    }

    #[test]
    fn hashes_once_for_many_requests_then_caches() {
        let (file, key) = file_with(b"hello");
        let hashes = Hashes::new();
        let (tx, rx) = mpsc::channel();
        // Held back until three requests wait: the first starts the job, the others join it.
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let held = {
            let (file, tx) = (file.clone(), tx.clone());
            move |job: HashJob<u32>| {
                let id = job.id();
                std::thread::spawn(move || {
                    go_rx.recv().unwrap();
                    tx.send((id, job.run(&file, &CancelToken::new()))).unwrap();
                });
                Ok(())
            }
        };
        let Lookup::Waiting(t0) = hashes.request(key, "hello", 0, held) else { panic!("not queued") };
        let mut tickets = vec![t0];
        for w in 1..3 {
            match hashes.request(key, "hello", w, |_| panic!("a second job")) {
                Lookup::Waiting(t) => tickets.push(t),
                _ => panic!("not joined"),
            }
        }
        assert_eq!(hashes.stats(WorkerStats::default()).waiting, 3);
        go_tx.send(()).unwrap();
        let want = xxhash_rust::xxh3::xxh3_64(b"hello");
        let (id, outcome) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(outcome, Hashed::Sum(want));
        let mut waiters = hashes.finish(id);
        waiters.sort_unstable();
        assert_eq!(waiters, [0, 1, 2]);
        assert!(hashes.finish(id).is_empty(), "finished once");
        assert!(matches!(hashes.request(key, "hello", 9, on_a_thread(&file, &tx)), Lookup::Ready(s) if s == want));
        drop(tickets);
        let stats = hashes.stats(WorkerStats::default());
        assert_eq!((stats.started, stats.hashed, stats.cancelled, stats.waiting, stats.cached), (1, 1, 0, 0, 1));
    }

    #[test]
    fn a_full_pool_refuses_and_the_last_ticket_cancels() {
        let (file, key) = file_with(b"data");
        let hashes = Hashes::<u32>::new();
        let Lookup::Refused(reason) = hashes.request(key, "f", 0, |_| Err(kingpin::Error::Busy)) else { panic!() };
        assert!(reason.starts_with("server busy"), "{reason}");
        assert_eq!(hashes.stats(WorkerStats::default()).refused, 1);

        // Two requests, both leave before the job runs: cancelled, and it reads nothing.
        let mut queued = None;
        let Lookup::Waiting(t1) = hashes.request(key, "f", 1, |job| {
            queued = Some(job);
            Ok(())
        }) else {
            panic!()
        };
        let Lookup::Waiting(t2) = hashes.request(key, "f", 2, |_| panic!("a second job")) else { panic!() };
        drop(t1);
        assert_eq!(hashes.stats(WorkerStats::default()).cancelled, 0, "one request still waits");
        drop(t2);
        let job = queued.unwrap();
        let id = job.id();
        assert_eq!(job.run(&file, &CancelToken::new()), Hashed::Cancelled);
        assert!(hashes.finish(id).is_empty());
        let stats = hashes.stats(WorkerStats::default());
        assert_eq!((stats.started, stats.cancelled, stats.waiting, stats.cached), (0, 1, 0, 0));

        // A running job stops once its starter's token has fired and nobody waits.
        let big = Arc::new(tempfile::tempfile().unwrap());
        big.set_len(1 << 40).unwrap(); // sparse: hashing it would take minutes
        let big_key = FileKey::new(&big.metadata().unwrap());
        let token = CancelToken::new();
        let (tx, rx) = mpsc::channel();
        let start = {
            let (big, token) = (big.clone(), token.clone());
            move |job: HashJob<u32>| {
                std::thread::spawn(move || tx.send(job.run(&big, &token)).unwrap());
                Ok(())
            }
        };
        let Lookup::Waiting(ticket) = hashes.request(big_key, "big", 3, start) else { panic!() };
        let deadline = Instant::now() + Duration::from_secs(10);
        while hashes.stats(WorkerStats::default()).running == 0 {
            assert!(Instant::now() < deadline, "never started");
            std::thread::sleep(Duration::from_millis(1));
        }
        token.cancel();
        drop(ticket);
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), Hashed::Cancelled);
        let stats = hashes.stats(WorkerStats::default());
        assert_eq!((stats.running, stats.started, stats.cancelled, stats.hashed), (0, 1, 2, 0));
    }
}
