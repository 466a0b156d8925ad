//! The server's hashing: a fixed set of threads, a bounded line of files waiting for them, one
//! computation per file shared by every request for it, and a cache of the results.
//!
//! Hashing a 1 GiB file reads 1 GiB, so it never runs on an IO thread. A request whose checksum
//! is not cached gets a [`Ticket`] and a callback, called on a hashing thread once the checksum
//! is known. Requests for a file already queued or being hashed join that job. At most
//! `threads + queue` files are in progress; a request for one more is refused at once (the IO
//! thread never waits for room). Dropping the last ticket of a job — its connections all
//! closed — takes a queued job out of the line, or stops a running one within one
//! [`crate::checksum::HASH_CHUNK`], so nobody's leaving costs a disk read.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::checksum::{hash_file_range, FileKey};

/// Called with a checksum (or why there is none) once it is known, on a hashing thread.
pub type Waiter = Box<dyn FnOnce(Result<u64, String>) + Send>;

/// Beyond this many cached checksums the cache starts over (a bound, not a policy).
const MAX_CACHED: usize = 4096;

/// The answer to [`Hashes::lookup`].
pub enum Lookup {
    /// The checksum was cached; the waiter was dropped uncalled.
    Ready(u64),
    /// The waiter will be called; dropping the ticket first withdraws it.
    Pending(Ticket),
    /// Too many files are in progress (or the pool is shutting down): the reason, for the
    /// client. The waiter was dropped uncalled.
    Refused(String),
}

/// What the hashing threads did and are doing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HashStats {
    /// Hashing threads (fixed for the pool's life).
    pub threads: usize,
    /// Threads hashing a file now.
    pub running: usize,
    /// Files waiting for a thread.
    pub queued: usize,
    /// Requests waiting for a checksum.
    pub waiting: usize,
    /// Files a thread started hashing.
    pub started: u64,
    /// Files hashed to the end.
    pub hashed: u64,
    /// Files that could not be read to the end.
    pub failed: u64,
    /// Jobs dropped (queued) or stopped (running) because no request waited for them any more.
    pub cancelled: u64,
    /// Requests refused because `threads + queue` files were in progress.
    pub refused: u64,
    /// Checksums cached.
    pub cached: usize,
}

/// One file to hash, and who waits for it.
struct Job {
    id: u64,
    /// The requested path, for the log.
    name: String,
    /// A descriptor of the file, until a thread takes it.
    file: Option<File>,
    running: bool,
    waiters: Vec<(u64, Waiter)>,
    cancel: Arc<AtomicBool>,
}

#[derive(Default)]
struct State {
    done: HashMap<FileKey, u64>,
    /// Queued and running jobs; a cancelled job leaves at once, even while its thread winds down.
    jobs: HashMap<FileKey, Job>,
    queue: VecDeque<FileKey>,
    next_id: u64,
    shutdown: bool,
    stats: HashStats,
}

struct Shared {
    state: Mutex<State>,
    work: Condvar,
    /// Most jobs in progress: threads + queue.
    max_jobs: usize,
}

/// The hashing threads; dropping (or [`HashPool::shutdown`]) stops and joins them.
pub struct HashPool {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

/// What IO threads hold to ask the pool for checksums (cheap to clone).
#[derive(Clone)]
pub struct Hashes(Arc<Shared>);

/// A request's place among a job's waiters; dropping it withdraws the request, and the job
/// when it was the last.
pub struct Ticket {
    shared: Arc<Shared>,
    key: FileKey,
    job: u64,
    waiter: u64,
}

impl HashPool {
    /// Starts `threads` hashing threads (named `bft-hash-<i>`) with room for `queue` more files
    /// waiting for them.
    ///
    /// # Errors
    /// `threads` is 0, or the system refused a thread (the ones started are stopped).
    pub fn new(threads: usize, queue: usize) -> io::Result<HashPool> {
        if threads == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "at least one hashing thread is needed"));
        }
        let state = State { stats: HashStats { threads, ..HashStats::default() }, ..State::default() };
        let shared = Arc::new(Shared { state: Mutex::new(state), work: Condvar::new(), max_jobs: threads + queue });
        let mut pool = HashPool { shared, threads: Vec::with_capacity(threads) };
        for i in 0..threads {
            let shared = pool.shared.clone();
            let thread = std::thread::Builder::new().name(format!("bft-hash-{i}")).spawn(move || work(&shared))?;
            pool.threads.push(thread);
        }
        Ok(pool)
    }

    /// The handle the IO threads use.
    pub fn hashes(&self) -> Hashes {
        Hashes(self.shared.clone())
    }

    /// Stops the threads (a running job stops within one chunk; waiters are dropped uncalled)
    /// and waits for them.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let dropped = {
            let mut st = self.shared.state.lock();
            st.shutdown = true;
            st.queue.clear();
            st.jobs.drain().map(|(_, job)| job).collect::<Vec<_>>()
        };
        for job in &dropped {
            job.cancel.store(true, Ordering::Relaxed);
        }
        drop(dropped);
        self.shared.work.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for HashPool {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Hashes {
    /// The checksum of the file version `key` if cached; else arranges for `waiter` to be called
    /// with it, hashing `file` (which must be that version) unless a job for it is already in
    /// progress; or refuses when the pool is full. `name` is for the log.
    ///
    /// Any thread; it never reads the file and never waits for the hashing threads.
    pub fn lookup(&self, key: FileKey, file: &File, name: &str, waiter: Waiter) -> Lookup {
        let mut st = self.0.state.lock();
        if st.shutdown {
            return Lookup::Refused("server shutting down".into());
        }
        if let Some(&sum) = st.done.get(&key) {
            return Lookup::Ready(sum);
        }
        let waiter_id = st.next_id;
        st.next_id += 1;
        if let Some(job) = st.jobs.get_mut(&key) {
            job.waiters.push((waiter_id, waiter));
            return Lookup::Pending(Ticket { shared: self.0.clone(), key, job: job.id, waiter: waiter_id });
        }
        if st.jobs.len() >= self.0.max_jobs {
            st.stats.refused += 1;
            return Lookup::Refused(format!(
                "server busy: {} files are being hashed or waiting for it; try again later",
                st.jobs.len()
            ));
        }
        let file = match file.try_clone() {
            Ok(f) => f,
            Err(e) => return Lookup::Refused(format!("cannot hash {name}: {}", crate::os_error::describe(&e))),
        };
        let job_id = st.next_id;
        st.next_id += 1;
        let job = Job {
            id: job_id,
            name: name.to_string(),
            file: Some(file),
            running: false,
            waiters: vec![(waiter_id, waiter)],
            cancel: Arc::default(),
        };
        st.jobs.insert(key, job);
        st.queue.push_back(key);
        drop(st);
        self.0.work.notify_one();
        Lookup::Pending(Ticket { shared: self.0.clone(), key, job: job_id, waiter: waiter_id })
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> HashStats {
        let st = self.0.state.lock();
        HashStats {
            queued: st.queue.len(),
            waiting: st.jobs.values().map(|j| j.waiters.len()).sum(),
            cached: st.done.len(),
            ..st.stats
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut st = self.shared.state.lock();
        let Some(job) = st.jobs.get_mut(&self.key).filter(|j| j.id == self.job) else {
            return; // the job finished (or was cancelled) already
        };
        let Some(at) = job.waiters.iter().position(|(id, _)| *id == self.waiter) else { return };
        let waiter = job.waiters.swap_remove(at);
        if !job.waiters.is_empty() {
            drop(st);
            drop(waiter);
            return;
        }
        let job = st.jobs.remove(&self.key).expect("just found");
        if job.running {
            job.cancel.store(true, Ordering::Relaxed);
        } else {
            st.queue.retain(|k| *k != self.key);
        }
        st.stats.cancelled += 1;
        drop(st);
        log::info!("hashing {} cancelled: no request waits for it any more", job.name);
        drop((waiter, job));
    }
}

/// A hashing thread: takes the next queued job, hashes it, calls its waiters.
fn work(shared: &Shared) {
    loop {
        let (key, id, file, cancel, name) = {
            let mut st = shared.state.lock();
            loop {
                if st.shutdown {
                    return;
                }
                if let Some(key) = st.queue.pop_front() {
                    let job = st.jobs.get_mut(&key).expect("a queued job is in the table");
                    job.running = true;
                    let taken =
                        (key, job.id, job.file.take().expect("taken once"), job.cancel.clone(), job.name.clone());
                    st.stats.running += 1;
                    st.stats.started += 1;
                    break taken;
                }
                shared.work.wait(&mut st);
            }
        };
        let started = Instant::now();
        let result = hash_file_range(&file, key.size, &cancel);
        drop(file);
        let mut st = shared.state.lock();
        st.stats.running -= 1;
        let result = match result {
            Ok(None) => continue, // cancelled: counted, and the job removed, by whoever cancelled it
            Ok(Some(sum)) => {
                st.stats.hashed += 1;
                if st.done.len() >= MAX_CACHED {
                    st.done.clear();
                }
                st.done.insert(key, sum);
                Ok(sum)
            }
            Err(e) => {
                st.stats.failed += 1;
                Err(format!("cannot hash {name}: {}", crate::os_error::describe(&e)))
            }
        };
        // This job's waiters; or, if this job was cancelled and requested again meanwhile, the
        // new job's, unless another thread is on it already.
        let job = match st.jobs.get(&key) {
            Some(j) if j.id == id || (!j.running && result.is_ok()) => st.jobs.remove(&key),
            _ => None,
        };
        if let Some(j) = &job {
            if j.id != id {
                st.queue.retain(|k| *k != key);
            }
        }
        let n = st.stats.hashed;
        drop(st);
        log::info!(
            "hashed {name} ({} bytes) in {:.2?}: {result:x?} ({n} files hashed so far)",
            key.size,
            started.elapsed()
        );
        for (_, waiter) in job.map(|j| j.waiters).unwrap_or_default() {
            waiter(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::mpsc;
    use std::time::Duration;

    fn file_with(data: &[u8]) -> (File, FileKey) {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(data).unwrap();
        let key = FileKey::new(&f.metadata().unwrap());
        (f, key)
    }

    #[test]
    fn hashes_once_for_many_requests_then_caches() {
        let (file, key) = file_with(b"hello");
        let pool = HashPool::new(1, 4).unwrap();
        let hashes = pool.hashes();
        let (tx, rx) = mpsc::channel();
        let mut tickets = Vec::new();
        for _ in 0..3 {
            let tx = tx.clone();
            match hashes.lookup(key, &file, "hello", Box::new(move |r| tx.send(r).unwrap())) {
                Lookup::Pending(t) => tickets.push(t),
                Lookup::Ready(_) => {} // the thread was quick
                Lookup::Refused(r) => panic!("{r}"),
            }
        }
        let want = xxhash_rust::xxh3::xxh3_64(b"hello");
        for _ in &tickets {
            assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), Ok(want));
        }
        assert!(matches!(hashes.lookup(key, &file, "hello", Box::new(|_| {})), Lookup::Ready(s) if s == want));
        drop(tickets);
        let stats = hashes.stats();
        assert_eq!((stats.started, stats.hashed, stats.cancelled, stats.cached), (1, 1, 0, 1));
        pool.shutdown();
    }

    #[test]
    fn full_pool_refuses_and_dropped_tickets_cancel() {
        // Three files, one thread and a line of one: the third is refused, whatever the timing.
        let pool = HashPool::new(1, 1).unwrap();
        let hashes = pool.hashes();
        let big = tempfile::tempfile().unwrap();
        big.set_len(1 << 40).unwrap(); // sparse: hashing it would take minutes
        let other = tempfile::tempfile().unwrap();
        other.set_len(1 << 40).unwrap();
        let third = tempfile::tempfile().unwrap();
        let [kb, ko, kt] = [&big, &other, &third].map(|f| FileKey::new(&f.metadata().unwrap()));
        let Lookup::Pending(t1) = hashes.lookup(kb, &big, "big", Box::new(|_| {})) else { panic!() };
        let Lookup::Pending(t2) = hashes.lookup(ko, &other, "other", Box::new(|_| {})) else { panic!() };
        let Lookup::Refused(reason) = hashes.lookup(kt, &third, "third", Box::new(|_| {})) else { panic!() };
        assert!(reason.contains("server busy"), "{reason}");
        drop((t1, t2));
        let deadline = Instant::now() + Duration::from_secs(10);
        while hashes.stats().running > 0 {
            assert!(Instant::now() < deadline, "hashing did not stop: {:?}", hashes.stats());
            std::thread::sleep(Duration::from_millis(1));
        }
        let stats = hashes.stats();
        assert_eq!((stats.queued, stats.waiting, stats.cancelled, stats.refused, stats.hashed), (0, 0, 2, 1, 0));
        pool.shutdown();
    }
}
