//! The file checksum (XXH3-64, streamed in bounded chunks) and the server's cache of it.
//!
//! Hashing a 1 GiB file reads 1 GiB, so the server never does it on an IO thread: a request
//! whose checksum is not cached registers a callback and one helper thread per file hashes it
//! (requests for a file already being hashed wait for the same thread). The result is cached by
//! (path, inode, size, mtime), so a file changed in place is hashed again.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use xxhash_rust::xxh3::Xxh3;

/// Bytes read per step while hashing: memory stays flat whatever the file size.
pub const HASH_CHUNK: usize = 1 << 20;

/// XXH3-64 of everything `reader` yields, read in [`HASH_CHUNK`] steps.
///
/// # Errors
/// A read error.
pub fn hash_reader(mut reader: impl Read) -> io::Result<u64> {
    let mut hasher = Xxh3::new();
    let mut buf = vec![0; HASH_CHUNK];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(hasher.digest()),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// XXH3-64 of the file at `path`.
///
/// # Errors
/// When the file cannot be opened or read.
pub fn hash_path(path: &Path) -> io::Result<u64> {
    hash_reader(File::open(path)?)
}

/// XXH3-64 of the first `len` bytes of `file`, read with `pread` (the file position is
/// untouched, so the same descriptor may be streamed meanwhile).
///
/// # Errors
/// A read error, or the file being shorter than `len`.
pub fn hash_file_range(file: &File, len: u64) -> io::Result<u64> {
    let mut hasher = Xxh3::new();
    let mut buf = vec![0; HASH_CHUNK];
    let mut at = 0;
    while at < len {
        let want = (len - at).min(HASH_CHUNK as u64) as usize;
        match file.read_at(&mut buf[..want], at) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while hashing")),
            Ok(n) => {
                hasher.update(&buf[..n]);
                at += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hasher.digest())
}

/// What identifies one version of a file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileKey {
    path: PathBuf,
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

impl FileKey {
    /// The key of the file at canonical `path` with metadata `meta`.
    pub fn new(path: &Path, meta: &Metadata) -> Self {
        FileKey {
            path: path.to_path_buf(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        }
    }
}

/// Called with a checksum once it is known, on the hashing thread.
pub type Waiter = Box<dyn FnOnce(Result<u64, String>) + Send>;

enum Entry {
    Done(u64),
    Hashing(Vec<Waiter>),
}

/// Checksums by file version, shared by every IO thread of a server.
#[derive(Default)]
pub struct ChecksumCache {
    entries: Mutex<HashMap<FileKey, Entry>>,
    /// Files hashed so far (cache misses).
    hashed: AtomicU64,
}

/// Beyond this many cached checksums the cache starts over (a bound, not a policy).
const MAX_ENTRIES: usize = 4096;

impl ChecksumCache {
    /// The cached checksum of `key`, or `None` after arranging for `waiter` to be called with
    /// it once a helper thread has hashed `file` (which must be the version `key` names).
    ///
    /// Any thread; it never reads the file itself.
    pub fn get_or_hash(self: &Arc<Self>, key: FileKey, file: &File, waiter: Waiter) -> Option<u64> {
        let mut entries = self.entries.lock().unwrap();
        match entries.get_mut(&key) {
            Some(Entry::Done(sum)) => return Some(*sum),
            Some(Entry::Hashing(waiters)) => {
                waiters.push(waiter);
                return None;
            }
            None => {}
        }
        let file = match file.try_clone() {
            Ok(f) => f,
            Err(e) => {
                drop(entries);
                waiter(Err(format!("cannot hash: {e}")));
                return None;
            }
        };
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| matches!(e, Entry::Hashing(_)));
        }
        entries.insert(key.clone(), Entry::Hashing(vec![waiter]));
        drop(entries);
        let cache = self.clone();
        let spawned = std::thread::Builder::new().name("bft-hash".into()).spawn({
            let key = key.clone();
            move || {
                let started = std::time::Instant::now();
                let result = hash_file_range(&file, key.size).map_err(|e| format!("cannot hash: {e}"));
                let n = cache.hashed.fetch_add(1, Ordering::Relaxed) + 1;
                log::info!(
                    "hashed {} ({} bytes) in {:.2?}: {result:x?} ({n} files hashed so far)",
                    key.path.display(),
                    key.size,
                    started.elapsed()
                );
                cache.finish(&key, result);
            }
        });
        if let Err(e) = spawned {
            self.finish(&key, Err(format!("cannot start a hashing thread: {e}")));
        }
        None
    }

    /// Records the outcome for `key` and calls its waiters (outside the lock).
    fn finish(&self, key: &FileKey, result: Result<u64, String>) {
        let waiters = {
            let mut entries = self.entries.lock().unwrap();
            let old = match result {
                Ok(sum) => entries.insert(key.clone(), Entry::Done(sum)),
                Err(_) => entries.remove(key),
            };
            match old {
                Some(Entry::Hashing(w)) => w,
                _ => Vec::new(),
            }
        };
        for waiter in waiters {
            waiter(result.clone());
        }
    }

    /// How many files have been hashed (each version once, however many requests).
    #[allow(dead_code)] // read by the tests
    pub fn hashed(&self) -> u64 {
        self.hashed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn range_hash_matches_stream_hash() {
        let mut f = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..3 * HASH_CHUNK + 7).map(|i| (i * 31 % 251) as u8).collect();
        f.write_all(&data).unwrap();
        let whole = xxhash_rust::xxh3::xxh3_64(&data);
        assert_eq!(hash_file_range(&f, data.len() as u64).unwrap(), whole);
        assert_eq!(hash_reader(&data[..]).unwrap(), whole);
        assert!(hash_file_range(&f, data.len() as u64 + 1).is_err());
    }

    #[test]
    fn cache_hashes_once() {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(b"hello").unwrap();
        let file = File::open(tmp.path()).unwrap();
        let key = FileKey::new(tmp.path(), &file.metadata().unwrap());
        let cache = Arc::new(ChecksumCache::default());
        let (tx, rx) = mpsc::channel();
        let (tx2, rx2) = (tx.clone(), tx.clone());
        let first = cache.get_or_hash(key.clone(), &file, Box::new(move |r| tx.send(r).unwrap()));
        let second = cache.get_or_hash(key.clone(), &file, Box::new(move |r| tx2.send(r).unwrap()));
        let want = xxhash_rust::xxh3::xxh3_64(b"hello");
        for got in [first, second] {
            let got = got.unwrap_or_else(|| rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap());
            assert_eq!(got, want);
        }
        assert_eq!(cache.get_or_hash(key, &file, Box::new(move |_| drop(rx2))), Some(want));
        assert_eq!(cache.hashed(), 1);
    }
}
